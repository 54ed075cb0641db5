"""Auction-insights exports: strict parsing and the own-domain-as-competitor rule."""

from __future__ import annotations

import pytest
from tests.unit.test_brand_detector import registry

from clicktrail.processors.brand import AuctionInsightsError, parse_auction_insights
from clicktrail.processors.brand.detector import BrandConflictDetector

HEADER = (
    "date,account,campaign,keyword,display_domain,impression_share,overlap_rate,"
    "position_above_rate,outranking_share\n"
)


def rows(*lines: str) -> str:
    return HEADER + "".join(line + "\n" for line in lines)


class TestParse:
    def test_reads_rows(self) -> None:
        """Rates become floats, domains are lower-cased, blank lines are skipped."""
        [row] = parse_auction_insights(
            rows("2026-03-01,nw-ads,nw-search,northwind,NorthWind.example,0.3,0.31,0.1,0.9", "")
        )
        assert (row.row, row.display_domain, row.overlap_rate) == (2, "northwind.example", 0.31)

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            (
                "2026-03-01,nw-ads,nw-search,northwind,x.example,0.3,lots,0.1,0.9",
                "row 3, column 'overlap_rate': 'lots' is not a number",
            ),
            (
                "2026-03-01,nw-ads,nw-search,northwind,x.example,0.3,1.5,0.1,0.9",
                "row 3, column 'overlap_rate': 1.5 is not in",
            ),
            (
                "01/03/2026,nw-ads,nw-search,northwind,x.example,0.3,0.3,0.1,0.9",
                "row 3, column 'date'",
            ),
            ("2026-03-01,nw-ads,nw-search,,x.example,0.3,0.3,0.1,0.9", "row 3, column 'keyword'"),
            (
                "2026-03-01,nw-ads,nw-search,northwind,not a domain,0.3,0.3,0.1,0.9",
                "row 3, column 'display_domain'",
            ),
            ("2026-03-01,nw-ads,nw-search,northwind", "row 3: expected 9 columns, got 4"),
        ],
    )
    def test_malformed_rows_name_row_and_column(self, line: str, message: str) -> None:
        """The error says which line of the file (header = row 1) and which column."""
        good = "2026-03-01,nw-ads,nw-search,northwind,x.example,0.3,0.3,0.1,0.9"
        with pytest.raises(AuctionInsightsError, match=message.replace("(", r"\(")):
            parse_auction_insights(rows(good, line))

    def test_wrong_header(self) -> None:
        """A file that is not an auction-insights export fails on row 1."""
        with pytest.raises(AuctionInsightsError, match="row 1: header"):
            parse_auction_insights("a,b,c\n1,2,3\n")


def test_own_or_lookalike_domain_competing_is_a_conflict() -> None:
    """The brand's own domain and a lookalike are conflicts; an ordinary rival is not."""
    detector = BrandConflictDetector(registry(), lambda name: {})
    parsed = parse_auction_insights(
        rows(
            "2026-03-01,nw-ads,nw-search,northwind,northwind.example,0.3,0.3,0.1,0.9",
            "2026-03-02,nw-ads,nw-search,northwind,northwind.example,0.2,0.2,0.1,0.9",
            "2026-03-01,nw-ads,nw-search,rain jacket,northwind-deals.example,0.3,0.3,0.1,0.9",
            "2026-03-01,nw-ads,nw-search,northwind,summitgear.example,0.3,0.3,0.1,0.9",
            "2026-03-01,other-ads,other,northwind,northwind.example,0.3,0.3,0.1,0.9",
        )
    )
    for row in parsed:
        detector(row)
    conflicts = {(c.offender_id, tuple(c.keywords)): c for c in detector.snapshot()}
    assert set(conflicts) == {
        ("northwind.example", ("northwind",)),
        ("northwind-deals.example", ("rain jacket",)),
    }
    own = conflicts[("northwind.example", ("northwind",))]
    assert (own.signal, own.offender_kind, own.head_to_head) == ("auction_insights", "domain", True)
    assert own.evidence_ids == ["ai-2026-03-01-2", "ai-2026-03-02-3"]
    assert own.first_seen.day == 1 and own.last_seen.day == 2
