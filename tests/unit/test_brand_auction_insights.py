"""Auction-insights exports: strict parsing into the contract, and the own-domain rule."""

from __future__ import annotations

import pytest
from tests.unit.test_brand_detector import registry

from clicktrail.contracts import AuctionInsight
from clicktrail.processors.brand import AuctionInsightsError, parse_auction_insights
from clicktrail.processors.brand.detector import BrandConflictDetector

HEADER = (
    "date,account,campaign,keyword,display_domain,impression_share,overlap_rate,"
    "position_above_rate,outranking_share\n"
)


def rows(*lines: str) -> str:
    return HEADER + "".join(line + "\n" for line in lines)


class TestParse:
    def test_reads_rows_into_the_contract(self) -> None:
        """Rates become floats (``--`` none), domains bare and lower-cased, blank lines skipped."""
        [row] = parse_auction_insights(
            rows(
                "",
                "2026-03-01,nw-ads,nw-search,northwind,https://www.NorthWind.example/x,0.3,0.31,--,0.9",
            )
        )
        assert isinstance(row, AuctionInsight)
        assert (row.display_domain, row.overlap_rate, row.position_above_rate) == (
            "northwind.example",
            0.31,
            None,
        )
        assert row.insight_id is not None and row.insight_id.startswith("ai-")

    def test_the_same_row_has_the_same_id_in_any_export(self) -> None:
        """The id follows date, account, campaign, keyword and domain, not the line or rates."""
        line = "2026-03-01,nw-ads,nw-search,northwind,northwind.example,0.3,0.3,0.1,0.9"
        other = "2026-03-01,nw-ads,nw-search,northwind,summitgear.example,0.3,0.3,0.1,0.9"
        [first] = parse_auction_insights(rows(line))
        _, again = parse_auction_insights(rows(other, line.replace("0.3,0.3", "0.4,0.2")))
        assert again.insight_id == first.insight_id
        ids = {
            r.insight_id
            for r in parse_auction_insights(
                rows(
                    line,
                    line.replace("2026-03-01", "2026-03-02"),
                    line.replace("nw-ads", "nw-ads-2"),
                    line.replace("nw-search,", "nw-generic,"),
                    line.replace(",northwind,", ",northwind shoes,"),
                    other,
                )
            )
        }
        assert len(ids) == 6, "each part of the identity changes the id"

    def test_a_bom_from_spreadsheet_exports_is_ignored(self) -> None:
        assert len(parse_auction_insights("\ufeff" + rows("2026-03-01,a,c,k,d.example,,,,"))) == 1

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            (
                "2026-03-01,nw-ads,nw-search,northwind,x.example,0.3,lots,0.1,0.9",
                "row 3, column 'overlap_rate': 'lots' is not a number",
            ),
            (
                "2026-03-01,nw-ads,nw-search,northwind,x.example,0.3,1.5,0.1,0.9",
                "row 3, column 'overlap_rate': Input should be less than or equal to 1",
            ),
            (
                "2026-03-01,nw-ads,nw-search,northwind,x.example,nan,0.3,0.1,0.9",
                "row 3, column 'impression_share': Input should be a finite number",
            ),
            (
                "1999-12-31,nw-ads,nw-search,northwind,x.example,0.3,0.3,0.1,0.9",
                "row 3, column 'date': date must be between",
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
        with pytest.raises(AuctionInsightsError, match=message.replace("(", r"\(")) as caught:
            parse_auction_insights(rows(good, line))
        assert caught.value.row == 3
        column = message.partition("column '")[2].partition("'")[0] or None
        assert caught.value.column == column

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
    assert own.evidence_ids == [parsed[0].insight_id, parsed[1].insight_id]
    assert own.insight_rows == 2 and (own.impressions, own.clicks) == (0, 0)
    assert own.first_seen.day == 1 and own.last_seen.day == 2
