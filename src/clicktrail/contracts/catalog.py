"""Every record type by its ``type`` field: one list for the schemas, the bus and the sink."""

from __future__ import annotations

from pydantic import BaseModel

from clicktrail.contracts.events import Click, Conversion, Impression
from clicktrail.contracts.insights import AuctionInsight
from clicktrail.contracts.internal import ResolvedConversion, Touch
from clicktrail.contracts.records import (
    Alert,
    AttributedConversion,
    BrandConflict,
    ClickScores,
    DeadLetter,
    FraudVerdict,
    ModelQuality,
)

PUBLIC_RECORDS: dict[str, type[BaseModel]] = {
    "impression": Impression,
    "click": Click,
    "conversion": Conversion,
    "auction_insight": AuctionInsight,
    "attributed_conversion": AttributedConversion,
    "fraud_verdict": FraudVerdict,
    "brand_conflict": BrandConflict,
    "alert": Alert,
    "dead_letter": DeadLetter,
    "model_quality": ModelQuality,
    "click_scores": ClickScores,
}
"""The public contract: a JSON Schema each in ``schemas/events``."""

RECORD_TYPES: dict[str, type[BaseModel]] = {
    **PUBLIC_RECORDS,
    "touch": Touch,
    "resolved_conversion": ResolvedConversion,
}
"""Everything that travels on a topic, internal stage records included."""
