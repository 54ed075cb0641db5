"""The brand-conflict processor: events and auction-insights rows in, ``BrandConflict`` out.

Pure: state lives in three ``StateStore`` mappings (``BRAND_STATE``) with JSON values, so a
Faust table or a dict holds them. Every search impression also feeds the auction ledger
(who was present, the official bid), every official search click its cost, so a conflict
carries whether it is head-to-head and how much it raises the official CPC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from clicktrail.config.registry import Registry
from clicktrail.contracts import (
    AuctionInsight,
    BrandConflict,
    Click,
    Conversion,
    Impression,
    StateStore,
)
from clicktrail.processors.brand.auction_insights import InsightRule
from clicktrail.processors.brand.conflicts import ConflictBook, SeverityPolicy
from clicktrail.processors.brand.inflation import MIN_SAMPLES, CpcEstimate, CpcLedger
from clicktrail.processors.brand.matching import normalize
from clicktrail.processors.brand.signals import Hit, SignalRules

BRAND_STATE = ("brand_conflicts", "brand_auctions", "brand_cpc")
"""State names, in the order the constructor's ``state`` factory is asked for them."""


class BrandConflictDetector:
    """Call with an impression, click or auction-insights row; returns changed conflicts."""

    def __init__(
        self,
        registry: Registry,
        state: Callable[[str], StateStore],
        *,
        policy: SeverityPolicy | None = None,
        min_samples: int = MIN_SAMPLES,
        generic_words: tuple[str, ...] = (),
    ) -> None:
        self.rules = SignalRules(registry, generic_words)
        self.insights = InsightRule(registry, self.rules.matcher)
        conflicts, auctions, cpc = (state(name) for name in BRAND_STATE)
        self.book = ConflictBook(conflicts, policy)
        self.ledger = CpcLedger(auctions, cpc, min_samples=min_samples)
        self._official_brand: dict[str, str] = {}
        for key, brand in registry.brands.items():
            for campaign in brand.official_campaigns:
                self._official_brand.setdefault(campaign, key)
        self.last_hits: list[Hit] = []

    def __call__(
        self, item: Impression | Click | Conversion | AuctionInsight
    ) -> list[BrandConflict]:
        if isinstance(item, AuctionInsight):
            return self.on_insight(item)
        if isinstance(item, Conversion):
            return []
        return self.on_event(item)

    def on_event(self, event: Impression | Click) -> list[BrandConflict]:
        hits = self.rules(event)
        self.last_hits = hits
        if event.keyword is not None:
            self._feed_ledger(event, hits)
        return self._update(hits)

    def on_insight(self, row: AuctionInsight) -> list[BrandConflict]:
        """Every call counts a row: callers drop re-imported rows by ``insight_id`` first."""
        hit = self.insights(row)
        self.last_hits = [hit] if hit is not None else []
        if hit is None:
            return []
        key, entry = self.book.add(hit)
        if row.overlap_rate and not entry.get("head_to_head"):
            entry["head_to_head"] = True
            self.book.conflicts[key] = entry
        return self._emit(key, entry)

    def route(self, item: Impression | Click | AuctionInsight) -> str | None:
        """Repartition key: events and export rows with the same brand must reach the same
        detector state; ``None`` means the item can be skipped."""
        if isinstance(item, AuctionInsight):
            return self.insights.route(item)
        return self.rules.route(item)

    def snapshot(self) -> list[BrandConflict]:
        """Every conflict as it stands now (reports, end of a replay)."""
        return [
            self.book.record(key, entry, self._estimate(entry))
            for key, entry in sorted(self.book.conflicts.items())
        ]

    def catch_up(self) -> list[BrandConflict]:
        """Every conflict whose state moved since its last record, as it stands now.

        Records are emitted on material changes only, so a stored row keeps the counts and
        ``last_seen`` of the last threshold it crossed; call this at the end of input and on
        a clean stop so the rows hold the final state. Each conflict returned is stamped as
        emitted: a second call returns nothing until more evidence arrives."""
        out = []
        for key, entry in sorted(self.book.conflicts.items()):
            cpc = self._estimate(entry)
            record = self.book.record(key, entry, cpc)
            if not self.book.is_current(entry, record):
                self.book.stamp(key, entry, cpc, record)
                out.append(record)
        return out

    def forget(self, watermark: datetime) -> int:
        """Drop auctions whose clicks are long due; call on a timer."""
        return self.ledger.forget(watermark)

    def _feed_ledger(self, event: Impression | Click, hits: list[Hit]) -> None:
        brand = self._official_brand.get(event.campaign_id)
        if isinstance(event, Click):
            if brand is not None and event.cost is not None:
                self.ledger.paid(impression_id=event.impression_id, cost=event.cost, ts=event.ts)
            return
        keyword = normalize(event.keyword or "")
        if not keyword:
            return
        self.ledger.saw(
            brand=brand,
            keyword=keyword,
            placement=event.placement or "",
            ts=event.ts,
            official=brand is not None,
            offenders=[(h.brand, h.offender_id) for h in hits],
            impression_id=event.impression_id,
            bid=event.cpc_bid,
        )

    def _update(self, hits: list[Hit]) -> list[BrandConflict]:
        out = []
        for hit in hits:
            key, entry = self.book.add(hit)
            out.extend(self._emit(key, entry))
        return out

    def _emit(self, key: str, entry: dict[str, object]) -> list[BrandConflict]:
        cpc = self._estimate(entry)
        if not self.book.material(key, entry, cpc):
            return []
        record = self.book.record(key, entry, cpc)
        self.book.stamp(key, entry, cpc, record)
        return [record]

    def _estimate(self, entry: dict[str, object]) -> CpcEstimate:
        return self.ledger.estimate(
            str(entry["brand"]), str(entry["keyword"]), str(entry["offender_id"])
        )
