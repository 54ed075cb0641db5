"""Public contracts: pydantic events, derived records and layer interfaces.

Imports no other clicktrail layer; every other layer imports it.
"""

from clicktrail.contracts.common import SCHEMA_VERSION
from clicktrail.contracts.events import (
    EVENT_ADAPTER,
    EVENT_TYPES,
    Channel,
    Click,
    Conversion,
    ConversionStatus,
    DeviceType,
    Event,
    Impression,
    UserContext,
)
from clicktrail.contracts.insights import AuctionInsight
from clicktrail.contracts.protocols import Processor, Sink, SinkBackpressure, StateStore
from clicktrail.contracts.records import (
    Alert,
    AttributedConversion,
    AttributionModel,
    BrandConflict,
    ClickScores,
    DeadLetter,
    FraudVerdict,
    ModelQuality,
    Severity,
    VerdictAction,
)

AnyEvent = Impression | Click | Conversion

__all__ = [
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "Alert",
    "AnyEvent",
    "AttributedConversion",
    "AttributionModel",
    "AuctionInsight",
    "BrandConflict",
    "Channel",
    "Click",
    "ClickScores",
    "Conversion",
    "ConversionStatus",
    "DeadLetter",
    "DeviceType",
    "Event",
    "FraudVerdict",
    "Impression",
    "ModelQuality",
    "Processor",
    "Severity",
    "Sink",
    "SinkBackpressure",
    "StateStore",
    "UserContext",
    "VerdictAction",
]
