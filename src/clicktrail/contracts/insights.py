"""One row of an advertiser's auction-insights export, as it travels on the bus.

Ad platforms export, per day and keyword of a campaign, the other display domains seen in
its auctions and how often. The tracker never sees an affiliate's own search ads; the brand's
domain (or a lookalike) among those competitors is the trace they leave. Exports overlap and
get imported twice, so every row carries an id derived from its identity (date, account,
campaign, keyword, display domain): the same row always has the same id, and the pipeline
counts it once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from clicktrail.contracts.common import Contract, Id, ShortText

Rate = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Name = Annotated[ShortText, Field(min_length=1)]
Domain = Annotated[
    str,
    Field(
        max_length=253,
        pattern=r"^[^\s/:@\x00-\x1f\x7f-\x9f\u2028\u2029]+\.[^\s/:@\x00-\x1f\x7f-\x9f\u2028\u2029]+$",
        description="Display domain, e.g. acme.example: lower-cased, no scheme or path",
    ),
    AfterValidator(str.lower),
]
FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2100, 1, 1)


def insight_id(
    date: dt.date, account: str, campaign: str, keyword: str, display_domain: str
) -> str:
    """The row's identity as an id: the same export row gives the same id on every import."""
    identity = json.dumps([date.isoformat(), account, campaign, keyword, display_domain])
    return f"ai-{hashlib.sha256(identity.encode()).hexdigest()[:24]}"


class AuctionInsight(Contract):
    """Another display domain in one campaign's auctions for one keyword on one day."""

    type: Literal["auction_insight"] = "auction_insight"
    insight_id: Id | None = Field(
        None,
        description="Derived from date, account, campaign, keyword and display_domain (the "
        "deduplication key); filled in when absent, refused when it differs",
    )
    date: dt.date = Field(description="The day the row reports (the account's time zone)")
    account: Name = Field(description="Ad account that exported the report")
    campaign: Name = Field(description="The advertiser's campaign whose auctions are reported")
    keyword: Name = Field(description="Keyword of the campaign, as exported")
    display_domain: Domain
    impression_share: Rate | None = Field(
        None, description="Share of the auctions in which this domain's ad showed"
    )
    overlap_rate: Rate | None = Field(
        None, description="How often its ad showed when the campaign's ad showed"
    )
    position_above_rate: Rate | None = Field(
        None, description="How often its ad was above the campaign's when both showed"
    )
    outranking_share: Rate | None = Field(
        None, description="How often the campaign's ad was above it or showed alone"
    )

    @field_validator("date")
    @classmethod
    def _plausible_day(cls, value: dt.date) -> dt.date:
        if not FIRST_DAY <= value < LAST_DAY:
            raise ValueError("date must be between 2000-01-01 and 2099-12-31")
        return value

    @model_validator(mode="after")
    def _derive_id(self) -> AuctionInsight:
        derived = insight_id(
            self.date, self.account, self.campaign, self.keyword, self.display_domain
        )
        if self.insight_id is None:
            object.__setattr__(self, "insight_id", derived)
        elif self.insight_id != derived:
            raise ValueError(
                "insight_id does not match date, account, campaign, keyword and "
                "display_domain; leave it out to have it derived"
            )
        return self

    @property
    def row_id(self) -> str:
        """``insight_id``, always set once the row is validated."""
        return self.insight_id or ""

    @property
    def ts(self) -> dt.datetime:
        """The start of the reported day in UTC: when the evidence was seen, to a day."""
        return dt.datetime(self.date.year, self.date.month, self.date.day, tzinfo=dt.UTC)
