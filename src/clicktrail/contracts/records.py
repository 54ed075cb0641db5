"""Records the pipeline derives from events.

These travel on their own topics and land in their own ClickHouse tables;
they are part of the public contract just like the events themselves.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from clicktrail.contracts.common import (
    ActionName,
    Contract,
    CountryCode,
    CurrencyCode,
    Diagnostic,
    EventTime,
    Id,
    Money,
    ShortText,
)
from clicktrail.contracts.events import Channel, ConversionStatus, DeviceType


class AttributionModel(StrEnum):
    last_click = "last_click"
    first_click = "first_click"
    linear = "linear"
    time_decay = "time_decay"
    position_based = "position_based"


class AttributedConversion(Contract):
    """A conversion with the touch it credits: one row per credited touch."""

    type: Literal["attributed_conversion"] = "attributed_conversion"
    conversion_id: Id
    txid: Id | None = None
    action: ActionName
    status: ConversionStatus
    original_status: ConversionStatus
    revenue: Money
    payout: Money
    currency: CurrencyCode
    conversion_ts: EventTime
    touch: Literal["click", "view", "none"] = Field(
        description="click- or view-through credit; none for an orphan conversion"
    )
    click_id: Id | None = None
    impression_id: Id | None = None
    click_ts: EventTime | None = None
    campaign_id: Id | None = None
    advertiser_id: Id | None = None
    partner_id: Id | None = None
    channel: Channel | None = None
    country: CountryCode | None = None
    device_type: DeviceType | None = None
    model: AttributionModel = AttributionModel.last_click
    weight: float = Field(1.0, ge=0, le=1)
    ctit_seconds: float | None = Field(None, description="Click (or view) to conversion time")
    fraud_action: Literal["ok", "suspicious", "reject"] = Field(
        "ok",
        description="The conversion's fraud verdict; status updates keep it, and it grows "
        "(in a new version) when the conversion's click is convicted later",
    )
    fraud_reason: ShortText | None = Field(
        None,
        description="Strongest reason of that verdict when it is not ok (forged_click_id, "
        "ctit_too_short, ...), the way Adjust passes {rejection_reason} on",
    )
    version: int = Field(
        1, ge=1, description="1 when first attributed, +1 per status/amount update"
    )
    previous_status: ConversionStatus | None = None
    previous_revenue: Money = 0.0
    previous_payout: Money = 0.0
    previous_fraud_action: Literal["ok", "suspicious", "reject"] | None = Field(
        None, description="fraud_action before this version (None on version 1)"
    )
    previous_weight: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of credit this row had in the version before: its weight on a "
        "status update, 0 for a row new in this version (version 1, or a click found after "
        "the conversion left as an orphan); a row a new version takes credit from comes "
        "again with weight 0, so the rollups add weight - previous_weight",
    )


class VerdictAction(StrEnum):
    ok = "ok"
    suspicious = "suspicious"
    reject = "reject"


class FraudVerdict(Contract):
    """Why a click, conversion or partner was judged; reasons are machine codes."""

    type: Literal["fraud_verdict"] = "fraud_verdict"
    verdict_id: Id
    ts: EventTime
    subject_type: Literal["impression", "click", "conversion", "partner"]
    subject_id: Id
    partner_id: Id | None = None
    campaign_id: Id | None = None
    score: float = Field(ge=0, le=1)
    reasons: list[ShortText] = Field(default_factory=list)
    action: VerdictAction
    rule_version: ShortText = "1"


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class BrandConflict(Contract):
    """Someone not authorized was seen bidding on or using a brand."""

    type: Literal["brand_conflict"] = "brand_conflict"
    conflict_id: Id
    brand_id: Id
    official_campaign_id: Id | None = None
    offender_kind: Literal["partner", "advertiser", "campaign", "domain"]
    offender_id: ShortText
    offender_domain: ShortText | None = None
    channel: Channel | None = None
    signal: ShortText = Field(
        description="term, misspelled_term, domain, paid_click_id, serp_referrer, auction_insights"
    )
    keywords: list[ShortText] = Field(default_factory=list)
    first_seen: EventTime
    last_seen: EventTime
    impressions: int = Field(0, ge=0)
    clicks: int = Field(0, ge=0)
    insight_rows: int = Field(
        0, ge=0, description="Auction-insights rows (day x keyword x account) showing the offender"
    )
    head_to_head: bool = False
    est_cpc_inflation: float | None = Field(None, description="Relative CPC increase, 0.25 = +25%")
    cost_impact: Money | None = None
    severity: Severity = Severity.warning
    evidence_ids: list[Id] = Field(default_factory=list, max_length=100)


class Alert(Contract):
    """One delivery attempt of a warning to one destination."""

    type: Literal["alert"] = "alert"
    alert_id: Id
    ts: EventTime
    kind: Literal["brand_conflict", "fraud_share", "anomaly", "digest"]
    dedup_key: ShortText
    route: ShortText
    destination: ShortText
    severity: Severity
    status: Literal["sent", "failed", "retrying", "suppressed", "digested"] = Field(
        description="digested: held for the destination's daily digest; suppressed: a "
        "repeat within the cool-down, only in rows written before alerts announced "
        "verdict changes alone"
    )
    attempt: int = Field(1, ge=1)
    error: Diagnostic | None = None
    payload: str = Field(description="The JSON body that was (or would have been) sent")


class DeadLetter(Contract):
    """Input that could not be accepted, kept with the reason so nothing is lost."""

    type: Literal["dead_letter"] = "dead_letter"
    received_at: datetime
    source: ShortText = Field(description="replay:<file>, edge:<endpoint>, topic:<name>")
    reason: ShortText = Field(description="Machine-readable reason code, e.g. invalid_json")
    message: Diagnostic = Field(description="Human-readable explanation")
    event_type: ShortText | None = None
    event_id: ShortText | None = None
    payload: str = Field(description="The raw input, truncated to 64 KiB")


class ModelQuality(Contract):
    """Progressive-validation quality of one per-action model at one moment."""

    type: Literal["model_quality"] = "model_quality"
    ts: EventTime
    action: ActionName
    model: ShortText
    examples: int = Field(ge=0)
    positives: int = Field(ge=0)
    auc: float | None = None
    log_loss: float | None = None
    calibration_error: float | None = None
    base_rate: float | None = None
    top_features: list[ShortText] = Field(
        default_factory=list,
        description="Strongest weights as 'feature:+0.123', largest magnitude first",
    )


class ClickScores(Contract):
    """The per-action conversion probabilities a click was given when it arrived."""

    type: Literal["click_scores"] = "click_scores"
    click_id: Id
    ts: EventTime
    campaign_id: Id
    partner_id: Id | None = None
    model: ShortText = Field(description="Model kind and feature-set version")
    scores: dict[ActionName, float] = Field(description="P(action | click) per action")
    learned: bool = Field(description="False when fraud keeps the click out of training")
