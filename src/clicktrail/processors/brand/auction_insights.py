"""Auction-insights exports: parse them strictly, and spot the brand's own domain competing.

Advertisers export these per day and keyword from their ad platform; the tracker never sees
an offender's own-account search ads, but the official campaign sees their display domain
in its auctions. The brand's own domain (or a lookalike) as a "competitor" on the brand's
keywords is the classic trace of an affiliate bidding on the brand.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date

from pydantic import ValidationError

from clicktrail.config.registry import Registry
from clicktrail.contracts import AuctionInsight
from clicktrail.processors.brand.matching import BrandMatcher, domain_of, normalize
from clicktrail.processors.brand.signals import Hit

COLUMNS = (
    "date",
    "account",
    "campaign",
    "keyword",
    "display_domain",
    "impression_share",
    "overlap_rate",
    "position_above_rate",
    "outranking_share",
)
RATES = COLUMNS[5:]
NOT_APPLICABLE = ("", "--")
"""How exports write a rate that has no meaning (position above when the ads never met)."""


class AuctionInsightsError(ValueError):
    """A malformed export; the message names the row (1 = header) and the column."""

    def __init__(self, message: str, row: int, column: str | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


def _fail(row: int, column: str, problem: str) -> AuctionInsightsError:
    return AuctionInsightsError(f"row {row}, column {column!r}: {problem}", row, column)


def _rate(value: str, row: int, column: str) -> float | None:
    if value in NOT_APPLICABLE:
        return None
    try:
        return float(value)
    except ValueError:
        raise _fail(row, column, f"{value!r} is not a number") from None


def _day(value: str, row: int) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(row, "date", f"{value!r} is not YYYY-MM-DD") from None


def _record(cells: dict[str, str], row: int) -> AuctionInsight:
    """Cells as text -> the contract, which checks ranges, lengths and emptiness."""
    domain = domain_of(cells["display_domain"])
    if domain is None or "." not in domain:
        raise _fail(row, "display_domain", f"{cells['display_domain']!r} is not a domain")
    try:
        return AuctionInsight(
            date=_day(cells["date"], row),
            account=cells["account"],
            campaign=cells["campaign"],
            keyword=cells["keyword"],
            display_domain=domain,
            **{column: _rate(cells[column], row, column) for column in RATES},
        )
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        column = str(first["loc"][0]) if first["loc"] else "?"
        raise _fail(row, column, str(first["msg"]).removeprefix("Value error, ")) from None


def parse_auction_insights(text: str | Iterable[str]) -> list[AuctionInsight]:
    """Every row of an auction-insights CSV (header required, columns as exported), or an
    :class:`AuctionInsightsError` for the first malformed one: an export is used whole."""
    lines = io.StringIO(text) if isinstance(text, str) else text
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
        if header is None or tuple(h.strip().lstrip("\ufeff") for h in header) != COLUMNS:
            raise AuctionInsightsError(
                f"row 1: header must be {','.join(COLUMNS)}; got {header}", 1
            )
        rows = []
        for number, values in enumerate(reader, start=2):
            if not values:
                continue
            if len(values) != len(COLUMNS):
                raise AuctionInsightsError(
                    f"row {number}: expected {len(COLUMNS)} columns, got {len(values)}", number
                )
            cells = dict(zip(COLUMNS, (v.strip() for v in values), strict=True))
            rows.append(_record(cells, number))
    except csv.Error as error:
        raise AuctionInsightsError(f"row {reader.line_num}: {error}", reader.line_num) from None
    return rows


class InsightRule:
    """The brand's own or a lookalike domain among the competitors of its official campaign."""

    def __init__(self, registry: Registry, matcher: BrandMatcher) -> None:
        self.matcher = matcher
        self._brand_of: dict[str, str] = {}
        for key, brand in registry.brands.items():
            for name in (*brand.official_campaigns, *brand.official_accounts):
                self._brand_of.setdefault(name, key)

    def route(self, row: AuctionInsight) -> str | None:
        """The brand whose official campaign (or account) exported the row."""
        return self._brand_of.get(row.campaign) or self._brand_of.get(row.account)

    def __call__(self, row: AuctionInsight) -> Hit | None:
        brand = self.route(row)
        found = self.matcher.domain_brand(row.display_domain)
        if brand is None or found is None or found[0] != brand or not row.impression_share:
            return None
        return Hit(
            brand=brand,
            offender_kind="domain",
            offender_id=row.display_domain,
            signal="auction_insights",
            keyword=normalize(row.keyword),
            subject_type="auction_insights",
            subject_id=row.row_id,
            ts=row.ts,
            channel="search",
            offender_domain=row.display_domain,
            campaign_id=row.campaign,
        )
