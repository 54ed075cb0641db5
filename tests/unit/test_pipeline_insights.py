"""Auction-insights rows in the composed pipeline: through the event stage to the brand
stage (keyed by the brand whose official campaign exported them), once per row."""

from __future__ import annotations

from datetime import datetime

from clicktrail.config import Registry
from clicktrail.config.registry import EventTimeSettings
from clicktrail.contracts import AuctionInsight, BrandConflict, Impression
from clicktrail.processors.brand import parse_auction_insights
from clicktrail.processors.watermark import BEGINNING
from clicktrail.runtime.pipeline import Pipeline

EXPORT = (
    "date,account,campaign,keyword,display_domain,impression_share,overlap_rate,"
    "position_above_rate,outranking_share\n"
    "2026-03-01,acme-google-ads,acme-brand-search,acme shoes,acme.example,0.3,0.4,0.2,0.6\n"
    "2026-03-02,acme-google-ads,acme-brand-search,acme shoes,acme.example,0.2,0.3,0.1,0.7\n"
    "2026-03-01,acme-google-ads,acme-brand-search,acme shoes,rival-shoes.example,0.5,0.5,0.5,0.5\n"
)


def rows() -> list[AuctionInsight]:
    return parse_auction_insights(EXPORT)


def later_event(ts: str) -> Impression:
    return Impression(
        event_id=f"i-{ts}", ts=ts, impression_id=f"imp-{ts}", campaign_id="x", partner_id="p"
    )


def conflicts(pipeline: Pipeline, items: list[AuctionInsight], source: str) -> list[BrandConflict]:
    out = []
    for offset, row in enumerate(items, 1):
        result = pipeline.on_event(row, f"{source}@{offset}")
        assert result.forwarded == [] and result.stored == [], "only the brand stage sees them"
        for _, item in result.brand:
            stored = pipeline.on_brand(item, f"{source}@{offset}")
            out += [r for r in stored if isinstance(r, BrandConflict)]
    return out


class TestInsightsInThePipeline:
    def test_the_brand_domain_competing_becomes_a_conflict(
        self, example_registry: Registry
    ) -> None:
        """The own domain is a conflict; a rival is not; the watermark stays where it was."""
        pipeline = Pipeline(example_registry)
        found = conflicts(pipeline, rows(), "import-1")
        assert {(c.brand_id, c.offender_id, c.signal) for c in found} == {
            ("acme", "acme.example", "auction_insights")
        }
        assert found[0].insight_rows == 1
        assert pipeline.watermark == BEGINNING

    def test_a_reimport_counts_nothing_twice(self, example_registry: Registry) -> None:
        pipeline = Pipeline(example_registry)
        conflicts(pipeline, rows(), "import-1")
        assert conflicts(pipeline, rows(), "import-2") == []
        [snapshot] = pipeline.brand.snapshot()
        assert snapshot.insight_rows == 2
        assert pipeline.insights_seen.dropped == 3

    def test_rows_are_remembered_from_their_import_not_their_day(
        self, example_registry: Registry
    ) -> None:
        """An old row imported today survives the sweeps of the next 400 days of stream time."""
        exact = EventTimeSettings(allowed_lateness_seconds=0, confirmations=1)
        pipeline = Pipeline(example_registry.model_copy(update={"event_time": exact}))
        pipeline.on_event(later_event("2026-06-01T00:00:00Z"), "events@1")
        conflicts(pipeline, rows(), "import-1")
        pipeline.on_event(later_event("2027-05-01T00:00:00Z"), "events@2")
        pipeline.housekeep()
        assert conflicts(pipeline, rows(), "import-2") == []
        assert pipeline.brand.snapshot()[0].insight_rows == 2

        pipeline.on_event(later_event("2027-08-01T00:00:00Z"), "events@3")
        pipeline.housekeep()
        assert pipeline.watermark == datetime.fromisoformat("2027-08-01T00:00:00+00:00")
        assert conflicts(pipeline, rows(), "import-3") != [], "past the window: counted again"
