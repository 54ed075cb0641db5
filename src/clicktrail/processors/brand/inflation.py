"""Head-to-head presence and how much each offender raises the official CPC.

An auction is the set of search ads shown for one query: impressions on the same placement
(engine) and keyword within ``auction_seconds`` of each other, whoever's user id each
tracker stamped on them (an affiliate's pixel and the ad platform never share one). The
official ad in it carries the official campaign's price for that auction: its bid
(``cpc_bid``, which automated bidding raises with the competition) and, when the searcher
clicks it, the click's ``cost`` (the click names its impression, so it finds the auction
whichever arrives first).

Per (brand, keyword) the ledger keeps, for each price series (bids, click costs), the sums
of an ordinary least-squares fit of the official price on which offenders were present:
``price = a + sum_j b_j x_j``. With parties present independently, ``b_j`` is the price
with offender j minus the price without, so ``b_j / (mean price - b_j * share_j)`` is j's
relative raise, whatever else bids; when offenders come and go together the joint fit
keeps one from taking credit for another. Of the two series the one with the smaller
standard error answers: constant (manual) bids carry no signal and are never used.

Sums are integers (micro-units of money), and an auction's contribution is taken back and
re-added whenever an ad or a click of it arrives late, so the ledger ends the same whatever
the delivery order. Values are plain dicts so any changelogged table can hold them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from clicktrail.contracts import StateStore

Row = dict[str, Any]
MIN_SAMPLES = 5
AUCTION_TTL_SECONDS = 3600.0
AUCTION_SECONDS = 1.0
"""Ads of one query reach the tracker within this of each other (one bucket of time)."""
MICRO = 1_000_000
SERIES = ("bid", "cost")


@dataclass(frozen=True, slots=True)
class CpcEstimate:
    head_to_head: int
    """Auctions in which the offender's ad and the official ad were both shown."""
    clicks_with: int
    """Official clicks from those auctions."""
    cost_with: float
    """What those clicks cost."""
    inflation: float | None
    """Relative raise of the official CPC when the offender is present (0.25 = +25 %)."""
    samples: int = 0
    """Priced auctions with the offender behind ``inflation`` (bids or clicks)."""


def _micro(value: float) -> int:
    return round(value * MICRO)


def _empty() -> Row:
    return {"n": 0, "sy": 0, "syy": 0, "x": {}, "xx": {}, "xy": {}}


class CpcLedger:
    """Auctions in flight (``auctions``) and price regressions per brand keyword (``cpc``)."""

    def __init__(
        self,
        auctions: StateStore,
        cpc: StateStore,
        *,
        min_samples: int = MIN_SAMPLES,
        auction_seconds: float = AUCTION_SECONDS,
    ) -> None:
        if min_samples < 1:
            raise ValueError("min_samples must be at least 1")
        if auction_seconds <= 0:
            raise ValueError("auction_seconds must be positive")
        self.auctions = auctions
        self.cpc = cpc
        self.min_samples = min_samples
        self.auction_seconds = auction_seconds

    def saw(
        self,
        *,
        brand: str | None,
        keyword: str,
        placement: str,
        ts: datetime,
        official: bool,
        offenders: list[tuple[str, str]],
        impression_id: str = "",
        bid: float | None = None,
    ) -> None:
        """One search impression: the official ad (for ``brand``) or offenders' ads."""
        if not official and not offenders:
            return  # nobody the ledger tracks
        bucket = math.floor(ts.timestamp() / self.auction_seconds)
        key = f"a|{placement}|{keyword}|{bucket}"
        entry = self.auctions.get(key) or {
            "ts": bucket * self.auction_seconds,
            "keyword": keyword,
            "brand": None,
            "parties": [],
            "bids": {},
            "costs": {},
        }
        before = _contributions(entry)
        parties = {tuple(p) for p in entry["parties"]}.union(offenders)
        entry["parties"] = sorted([list(p) for p in parties])
        if official and brand is not None:
            entry["brand"] = entry["brand"] or brand
            if impression_id:
                if bid is not None:
                    entry["bids"] = {**entry["bids"], impression_id: _micro(bid)}
                link = f"i|{impression_id}"
                pending = self.auctions.get(link)
                if pending is not None and "cost" in pending:
                    entry["costs"] = {**entry["costs"], impression_id: pending["cost"]}
                self.auctions[link] = {"ts": entry["ts"], "auction": key}
        self._move(entry, before)
        self.auctions[key] = entry  # reassign: changelogged tables need a set

    def paid(self, *, impression_id: str | None, cost: float, ts: datetime) -> None:
        """An official click's cost, for the auction its impression was shown in.

        A click that arrives before its impression (streams reorder: ads and clicks travel
        on different partitions) waits under the impression's id for it."""
        if not impression_id:
            return
        link = f"i|{impression_id}"
        found = self.auctions.get(link)
        if found is None or "auction" not in found:
            self.auctions[link] = {"ts": ts.timestamp(), "cost": _micro(cost)}
            return
        entry = self.auctions.get(found["auction"])
        if entry is None:
            return  # the auction was forgotten: too late to count
        before = _contributions(entry)
        entry["costs"] = {**entry["costs"], impression_id: _micro(cost)}
        self._move(entry, before)
        self.auctions[found["auction"]] = entry

    def estimate(self, brand: str, keyword: str, offender: str) -> CpcEstimate:
        row = self.cpc.get(f"{brand}|{keyword}")
        if row is None:
            return CpcEstimate(0, 0, 0.0, None)
        cost = row["cost"]
        best: tuple[float, float, int] | None = None
        for series in SERIES:
            fit = _fit(row[series], offender, self.min_samples)
            if fit is not None and (best is None or fit[1] < best[1]):
                best = fit
        return CpcEstimate(
            head_to_head=row["shown"]["x"].get(offender, 0),
            clicks_with=cost["x"].get(offender, 0),
            cost_with=cost["xy"].get(offender, 0) / MICRO,
            inflation=None if best is None else best[0],
            samples=0 if best is None else best[2],
        )

    def forget(self, watermark: datetime, ttl_seconds: float = AUCTION_TTL_SECONDS) -> int:
        """Drop auctions older than ``ttl_seconds``: their ads and clicks have come by now.
        Returns how many auctions went (clicks waiting for an impression go too)."""
        horizon = watermark.timestamp() - ttl_seconds
        stale = [k for k, v in self.auctions.items() if v["ts"] < horizon]
        for key in stale:
            del self.auctions[key]
        return sum(1 for key in stale if key.startswith("a|"))

    def _move(self, entry: Row, before: list[tuple[str, list[str], int]]) -> None:
        """Replace an auction's old contribution to its keyword's sums by its new one."""
        after = _contributions(entry)
        if after == before:
            return
        key = f"{entry['brand']}|{entry['keyword']}"
        row = self.cpc.get(key) or {name: _empty() for name in ("shown", *SERIES)}
        for sign, rows in ((-1, before), (1, after)):
            for series, present, price in rows:
                _add(row[series], present, price, sign)
        self.cpc[key] = row


def _contributions(entry: Row) -> list[tuple[str, list[str], int]]:
    """The rows an auction adds to its keyword's sums: (series, offenders present, price).
    Two official ads in one bucket (two queries a second apart) count as the first by id."""
    brand = entry["brand"]
    if brand is None:
        return []
    present = sorted({o for b, o in entry["parties"] if b == brand})
    rows = [("shown", present, 0)]
    for series, prices in (("bid", entry["bids"]), ("cost", entry["costs"])):
        if prices:
            rows.append((series, present, prices[min(prices)]))
    return rows


def _add(stats: Row, present: list[str], price: int, sign: int) -> None:
    stats["n"] += sign
    stats["sy"] += sign * price
    stats["syy"] += sign * price * price
    for i, offender in enumerate(present):
        stats["x"][offender] = stats["x"].get(offender, 0) + sign
        stats["xy"][offender] = stats["xy"].get(offender, 0) + sign * price
        for other in present[i + 1 :]:
            pair = f"{offender}|{other}"
            stats["xx"][pair] = stats["xx"].get(pair, 0) + sign


def _fit(stats: Row, offender: str, min_samples: int) -> tuple[float, float, int] | None:
    """``(inflation, its relative standard error, auctions with)`` for ``offender`` from one
    price series, or None when the series cannot tell (too few auctions with or without
    it, or prices that never vary)."""
    n = stats["n"]
    with_it = stats["x"].get(offender, 0)
    if with_it < min_samples or n - with_it < min_samples:
        return None
    names = sorted(o for o, count in stats["x"].items() if count > 0)
    k = len(names)
    if n - k - 1 <= 0 or n * stats["syy"] - stats["sy"] ** 2 <= 0:
        return None
    # Centred cross products, exact in integers: n * (X'X - n mean mean'), etc.
    xx = np.empty((k, k))
    xy = np.empty(k)
    for i, a in enumerate(names):
        xa = stats["x"][a]
        xy[i] = n * stats["xy"].get(a, 0) - xa * stats["sy"]
        for j, b in enumerate(names):
            pair = stats["x"][a] if a == b else stats["xx"].get(f"{min(a, b)}|{max(a, b)}", 0)
            xx[i, j] = n * pair - xa * stats["x"][b]
    inverse = np.linalg.pinv(xx)
    beta = inverse @ xy
    residual = (n * stats["syy"] - stats["sy"] ** 2 - float(beta @ xy)) / n
    variance = max(residual, 0.0) / (n - k - 1)
    j = names.index(offender)
    b = float(beta[j])
    without = stats["sy"] / n - b * with_it / n  # mean price had the offender stayed away
    if without <= 0:
        return None
    error = math.sqrt(max(variance * n * float(inverse[j, j]), 0.0))
    return b / without, error / without, with_it
