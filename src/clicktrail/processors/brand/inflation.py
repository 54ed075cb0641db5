"""Head-to-head presence and the official CPC with vs. without an offender in the auction.

A search auction shows up as impressions sharing keyword, user and timestamp; the official
click that follows says what the brand paid. Sums are kept per (brand, keyword): official
CPC overall and in auctions where each offender was present, so "without" is the rest.
Since the ad platform multiplies the official CPC by ``1 + inflation`` for each party
present, ``mean(with) / mean(without) - 1`` estimates that party's inflation whatever else
bids. Values are plain lists and dicts so any changelogged table can hold them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from clicktrail.contracts import StateStore

Row = dict[str, Any]
MIN_SAMPLES = 5
AUCTION_TTL_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class CpcEstimate:
    head_to_head: int
    clicks_with: int
    cost_with: float
    inflation: float | None


def _auction_key(keyword: str, user: str) -> str:
    return f"{keyword}|{user}"


def _ledger_key(brand: str, keyword: str) -> str:
    return f"{brand}|{keyword}"


class CpcLedger:
    """Auctions in flight (``auctions``) and official CPC sums per brand keyword (``cpc``)."""

    def __init__(
        self, auctions: StateStore, cpc: StateStore, *, min_samples: int = MIN_SAMPLES
    ) -> None:
        if min_samples < 1:
            raise ValueError("min_samples must be at least 1")
        self.auctions = auctions
        self.cpc = cpc
        self.min_samples = min_samples

    def saw(
        self,
        *,
        brand: str | None,
        keyword: str,
        user: str,
        ts: datetime,
        official: bool,
        offenders: list[tuple[str, str]],
    ) -> None:
        """One search impression: the official ad (for ``brand``) or offenders' ads."""
        if not official and not offenders:
            return  # nobody the ledger tracks: must not reset the auction it belongs to
        key = _auction_key(keyword, user)
        stamp = ts.timestamp()
        entry = self.auctions.get(key)
        if entry is None or (entry["ts"] != stamp and not entry.get("early")):
            entry = {"ts": stamp, "official": None, "parties": [], "paid": []}
        entry["ts"], entry["early"] = stamp, False
        parties = {tuple(p) for p in entry["parties"]}
        fresh = [p for p in offenders if p not in parties]
        if official and brand is not None and entry["official"] is None:
            entry["official"] = brand
            fresh_h2h = [p for p in parties if p[0] == brand]
        else:
            fresh_h2h = [p for p in fresh if p[0] == entry["official"]]
        for offender_brand, offender in fresh_h2h:
            self._bump(offender_brand, keyword, partial(_h2h, offender=offender))
        for paid_brand, cost in entry.get("paid", []):  # clicks that came before this ad
            for offender_brand, offender in fresh:
                if offender_brand == paid_brand:
                    self._bump(paid_brand, keyword, partial(_with, offender=offender, cost=cost))
        entry["parties"] = sorted(parties.union(fresh))
        self.auctions[key] = entry  # reassign: changelogged tables need a set

    def paid(self, *, brand: str, keyword: str, user: str, cost: float, ts: datetime) -> None:
        """An official click's cost, attributed to every offender present in its auction.

        The click is remembered with its auction: an offender's ad that arrives after it
        (streams reorder: the ads and the click travel on different partitions) is still
        credited with it. A click before any ad opens the auction early."""
        key = _auction_key(keyword, user)
        entry = self.auctions.get(key)
        if entry is None:
            entry = {
                "ts": ts.timestamp(),
                "official": None,
                "parties": [],
                "paid": [],
                "early": True,
            }
        present = [p[1] for p in entry["parties"] if p[0] == brand]

        def add(row: Row) -> None:
            row["all"] = [row["all"][0] + cost, row["all"][1] + 1]
            for offender in present:
                _with(row, offender, cost)

        self._bump(brand, keyword, add)
        entry["paid"] = [*entry.get("paid", []), [brand, cost]]
        self.auctions[key] = entry

    def estimate(self, brand: str, keyword: str, offender: str) -> CpcEstimate:
        row = self.cpc.get(_ledger_key(brand, keyword))
        if row is None:
            return CpcEstimate(0, 0, 0.0, None)
        cost_with, n_with = row["with"].get(offender, [0.0, 0])
        cost_without = row["all"][0] - cost_with
        n_without = row["all"][1] - n_with
        inflation = None
        if n_with >= self.min_samples and n_without >= self.min_samples and cost_without > 0:
            inflation = (cost_with / n_with) / (cost_without / n_without) - 1
        return CpcEstimate(row["h2h"].get(offender, 0), n_with, cost_with, inflation)

    def forget(self, watermark: datetime, ttl_seconds: float = AUCTION_TTL_SECONDS) -> int:
        """Drop auctions older than ``ttl_seconds``: their clicks have come by now."""
        horizon = watermark.timestamp() - ttl_seconds
        stale = [k for k, v in self.auctions.items() if v["ts"] < horizon]
        for key in stale:
            del self.auctions[key]
        return len(stale)

    def _bump(self, brand: str, keyword: str, change: Callable[[Row], None]) -> None:
        key = _ledger_key(brand, keyword)
        row = self.cpc.get(key) or {"all": [0.0, 0], "with": {}, "h2h": {}}
        change(row)
        self.cpc[key] = row


def _with(row: Row, offender: str, cost: float) -> None:
    total, n = row["with"].get(offender, [0.0, 0])
    row["with"][offender] = [total + cost, n + 1]


def _h2h(row: Row, offender: str) -> None:
    row["h2h"][offender] = row["h2h"].get(offender, 0) + 1
