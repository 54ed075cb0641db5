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
from dataclasses import dataclass
from datetime import UTC, date, datetime

from clicktrail.config.registry import Registry
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


@dataclass(frozen=True, slots=True)
class InsightRow:
    row: int
    date: date
    account: str
    campaign: str
    keyword: str
    display_domain: str
    impression_share: float | None
    overlap_rate: float | None
    position_above_rate: float | None
    outranking_share: float | None


def _rate(value: str, row: int, column: str) -> float | None:
    if value in NOT_APPLICABLE:
        return None
    try:
        rate = float(value)
    except ValueError:
        raise AuctionInsightsError(
            f"row {row}, column {column!r}: {value!r} is not a number"
        ) from None
    if not 0.0 <= rate <= 1.0:
        raise AuctionInsightsError(f"row {row}, column {column!r}: {rate} is not in [0, 1]")
    return rate


def parse_auction_insights(text: str | Iterable[str]) -> list[InsightRow]:
    """Rows of an auction-insights CSV (header required, columns as exported)."""
    lines = io.StringIO(text) if isinstance(text, str) else text
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        raise AuctionInsightsError(f"row 1: header must be {','.join(COLUMNS)}; got {header}")
    rows = []
    for number, values in enumerate(reader, start=2):
        if not values:
            continue
        if len(values) != len(COLUMNS):
            raise AuctionInsightsError(
                f"row {number}: expected {len(COLUMNS)} columns, got {len(values)}"
            )
        cells = dict(zip(COLUMNS, (v.strip() for v in values), strict=True))
        for column in COLUMNS[1:5]:
            if not cells[column]:
                raise AuctionInsightsError(f"row {number}, column {column!r}: empty")
        try:
            day = date.fromisoformat(cells["date"])
        except ValueError:
            raise AuctionInsightsError(
                f"row {number}, column 'date': {cells['date']!r} is not YYYY-MM-DD"
            ) from None
        domain = domain_of(cells["display_domain"])
        if domain is None or "." not in domain:
            raise AuctionInsightsError(
                f"row {number}, column 'display_domain': {cells['display_domain']!r} "
                "is not a domain"
            )
        rates = [_rate(cells[c], number, c) for c in RATES]
        rows.append(
            InsightRow(
                number, day, cells["account"], cells["campaign"], cells["keyword"], domain, *rates
            )
        )
    return rows


class InsightRule:
    """The brand's own or a lookalike domain among the competitors of its official campaign."""

    def __init__(self, registry: Registry, matcher: BrandMatcher) -> None:
        self.matcher = matcher
        self._brand_of: dict[str, str] = {}
        for key, brand in registry.brands.items():
            for name in (*brand.official_campaigns, *brand.official_accounts):
                self._brand_of.setdefault(name, key)

    def __call__(self, row: InsightRow) -> Hit | None:
        brand = self._brand_of.get(row.campaign) or self._brand_of.get(row.account)
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
            subject_id=f"ai-{row.date.isoformat()}-{row.row}",
            ts=datetime(row.date.year, row.date.month, row.date.day, tzinfo=UTC),
            channel="search",
            offender_domain=row.display_domain,
            campaign_id=row.campaign,
        )
