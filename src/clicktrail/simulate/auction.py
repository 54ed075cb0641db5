"""Search auctions on brand, misspelled and generic keywords, and their auction-insights trace.

Every party present in an auction raises the official campaign's CPC by its
own known factor (multiplicatively), so "CPC with vs without offender X" is
exactly ``1 + inflation`` of X. Parties the tracker never sees (rivals, and
the affiliate bidding through its own ad account) still show up in the
advertiser's auction-insights export, under their display domain.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from clicktrail.simulate.timing import DAY_MS, iso
from clicktrail.simulate.world import Bidder, Keyword

POSITION_WEIGHTS = (0.62, 0.22, 0.1, 0.04, 0.02)
SEARCH_CTR = {"brand": 0.5, "misspelled": 0.3, "generic": 0.07}
CSV_FIELDS = (
    "date", "account", "campaign", "keyword", "display_domain",
    "impression_share", "overlap_rate", "position_above_rate", "outranking_share",
)  # fmt: skip


def rank(
    rng: random.Random, bidders: tuple[Bidder, ...], frac: float, brand: float
) -> list[Bidder]:
    """The parties present in one auction, best ad rank first."""
    present = []
    for bidder in bidders:
        if not bidder.active_from <= frac < bidder.active_to:
            continue
        presence = bidder.presence
        if bidder.role == "offender":
            presence = min(0.95, presence * brand)
        if rng.random() < presence:
            noise = 0.6 + 0.8 * rng.random()  # quality and bid vary per auction
            present.append((bidder.strength * noise, bidder.name, bidder))
    present.sort(key=lambda entry: (-entry[0], entry[1]))
    return [bidder for _, _, bidder in present]


def official_cpc(rng: random.Random, keyword: Keyword, ranked: list[Bidder]) -> float:
    factor = 1.0
    for bidder in ranked:
        if bidder.role != "official":
            factor *= 1.0 + bidder.inflation
    noise = 0.9 + 0.2 * rng.random()
    return round(max(0.05, keyword.base_cpc * factor * noise), 2)


def choose(rng: random.Random, ranked: list[Bidder]) -> Bidder:
    """Which ad the searcher clicks: mostly the top one."""
    weights = POSITION_WEIGHTS[: len(ranked)]
    point = rng.random() * sum(weights)
    for bidder, weight in zip(ranked, weights, strict=False):
        point -= weight
        if point < 0:
            return bidder
    return ranked[len(weights) - 1]


class AuctionInsights:
    """Per day, official campaign and keyword: how often each other display domain showed."""

    def __init__(self) -> None:
        self._auctions: dict[tuple[int, str, str], list[int]] = {}
        self._rivals: dict[tuple[int, str, str, str], list[int]] = {}

    def record(self, ts: int, official: Bidder, keyword: str, ranked: list[Bidder]) -> None:
        day = ts // DAY_MS
        totals = self._auctions.setdefault((day, official.name, keyword), [0, 0])
        totals[0] += 1
        mine = next((i for i, b in enumerate(ranked) if b.role == "official"), None)
        if mine is not None:
            totals[1] += 1
        for position, bidder in enumerate(ranked):
            if bidder.role == "official":
                continue
            row = self._rivals.setdefault((day, official.name, keyword, bidder.domain), [0, 0, 0])
            row[0] += 1  # shown
            if mine is not None:
                row[1] += 1  # shown together with the official ad
                row[2] += position < mine  # above it

    def write_csv(self, path: Path, accounts: dict[str, str]) -> int:
        """Write the export; returns the number of rows."""
        rows = 0
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(CSV_FIELDS)
            for (day, campaign, keyword, domain), row in sorted(self._rivals.items()):
                auctions, official_shown = self._auctions[(day, campaign, keyword)]
                shown, together, above = row
                outranked = official_shown - above  # official shown, and above or alone
                writer.writerow(
                    (
                        iso(day * DAY_MS)[:10],
                        accounts[campaign],
                        campaign,
                        keyword,
                        domain,
                        _rate(shown, auctions),
                        _rate(together, official_shown),
                        _rate(above, together),
                        _rate(outranked, auctions),
                    )
                )
                rows += 1
        return rows


def _rate(part: int, whole: int) -> str:
    return f"{part / whole:.4f}" if whole else ""
