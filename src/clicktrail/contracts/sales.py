"""The advertiser's own sales, and how each order compares with what was tracked.

An advertiser's CRM or shop exports its orders (order id, date, amount, currency,
status). Reconciliation holds them against the tracked conversions: the order id is the
``txid`` a postback reported. A :class:`SaleOrder` is one validated row of such an
export; a :class:`TrackedConversion` is what the store knows of one conversion; a
:class:`ReconciliationRecord` is one (order, conversion) pair with its outcome, the row
of the ``reconciliation`` table.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator

from clicktrail.contracts.common import (
    ActionName,
    Contract,
    CurrencyCode,
    EventTime,
    Id,
    Money,
    ShortText,
)
from clicktrail.contracts.events import ConversionStatus

SALE_STATUS_WORDS: dict[str, ConversionStatus] = {}
for _status, _words in {
    ConversionStatus.approved: (
        "approved",
        "paid",
        "completed",
        "complete",
        "shipped",
        "delivered",
        "fulfilled",
        "confirmed",
        "success",
        "sale",
    ),
    ConversionStatus.rejected: (
        "rejected",
        "refunded",
        "refund",
        "cancelled",
        "canceled",
        "chargeback",
        "charged_back",
        "charge_back",
        "returned",
        "declined",
        "failed",
        "void",
        "voided",
    ),
    ConversionStatus.pending: ("pending", "processing", "on_hold", "hold", "new", "open"),
}.items():
    for _word in _words:
        SALE_STATUS_WORDS[_word] = _status


def sale_status(value: Any) -> Any:
    """A CRM's status word as a conversion status: paid/shipped -> approved,
    refunded/cancelled/chargeback -> rejected, processing -> pending."""
    if not isinstance(value, str):
        return value
    word = value.strip().lower().replace("-", "_").replace(" ", "_")
    status = SALE_STATUS_WORDS.get(word)
    if status is None:
        raise ValueError(
            f"status {value[:40]!r} is not one we know; use paid/completed/shipped, "
            "refunded/cancelled/chargeback or pending/processing"
        )
    return status.value


def _day_or_time(value: Any) -> Any:
    """A bare date (YYYY-MM-DD, as most exports write it) is that day's midnight UTC."""
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            return value
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).isoformat()
    return value


class SaleOrder(Contract):
    """One order of the advertiser's export, validated."""

    type: Literal["sale_order"] = "sale_order"
    order_id: Id = Field(description="The shop's order id: the txid its postback reported")
    ts: EventTime = Field(description="Order date (YYYY-MM-DD is midnight UTC) or time")
    amount: Money = Field(description="Order total as sold")
    currency: CurrencyCode
    status: ConversionStatus = Field(
        description="approved (paid, completed, shipped), rejected (refunded, cancelled, "
        "chargeback) or pending (processing)"
    )
    user_id: Id | None = Field(
        None, description="Hashed user id or e-mail hash, to match conversions without txid"
    )
    advertiser_id: Id | None = Field(None, description="Whose order; the importer's when absent")

    @field_validator("status", mode="before")
    @classmethod
    def _status_word(cls, value: Any) -> Any:
        return sale_status(value)

    @field_validator("ts", mode="before")
    @classmethod
    def _bare_date(cls, value: Any) -> Any:
        return _day_or_time(value)


class TrackedConversion(Contract):
    """A conversion as the store knows it: as tracked, and as it stands now.

    ``tracked_*`` are the amounts and status the tracking reported (its postbacks), which
    is what an order is compared with, so a second import of the same file judges the
    same way; ``status``, ``revenue`` and ``payout`` are the current state, which tells
    whether an order still changes anything. The routing fields (``click_id``,
    ``user_id``, raw ``advertiser_id``, ``campaign_id``, ``partner_id``) are the first
    report's, so an update travels to the same state as the conversion did.
    """

    conversion_id: Id
    txid: Id | None = None
    action: ActionName
    ts: EventTime
    latest_ts: EventTime = Field(description="Time of the conversion's newest report")
    advertiser_id: Id | None = None
    campaign_id: Id | None = None
    partner_id: Id | None = None
    click_id: Id | None = None
    user_id: Id | None = None
    credited_campaign_id: Id | None = None
    credited_partner_id: Id | None = None
    currency: CurrencyCode
    status: ConversionStatus
    revenue: Money
    payout: Money
    tracked_status: ConversionStatus
    tracked_revenue: Money


class Outcome(StrEnum):
    matched = "matched"
    amount_difference = "amount_difference"
    currency_mismatch = "currency_mismatch"
    refunded = "refunded"
    tracked_not_sold = "tracked_not_sold"
    sold_not_tracked = "sold_not_tracked"


class ReconciliationRecord(Contract):
    """One order and the conversion it was matched to (either may be missing)."""

    type: Literal["reconciliation"] = "reconciliation"
    import_id: Id
    advertiser_id: Id
    pair_key: ShortText = Field(
        description="conversion id, or 'order:<order id>' for an order nothing tracked: "
        "the table's key, so importing again replaces the pair's row"
    )
    outcome: Outcome
    match: Literal["txid", "user_time", ""] = ""
    order_id: ShortText = ""
    conversion_id: ShortText = ""
    txid: ShortText = ""
    action: ShortText = ""
    partner_id: ShortText = ""
    campaign_id: ShortText = ""
    sale_status: ShortText = ""
    tracked_status: ShortText = ""
    sold_amount: Money = 0.0
    sold_currency: ShortText = ""
    tracked_revenue: Money = 0.0
    tracked_currency: ShortText = ""
    payout: Money = 0.0
    amount_difference: float = Field(0.0, description="sold - tracked, same currency only")
    order_ts: EventTime | None = None
    conversion_ts: EventTime | None = None
    ts: EventTime = Field(description="When the import ran")
    updated: bool = Field(False, description="A status/amount update was sent for it")
