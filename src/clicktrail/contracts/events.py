"""The public event contract: impressions, clicks and conversions.

Pixels, redirects, postbacks and server-side senders all produce these three
shapes; every later stage (join, attribution, fraud, brand conflict, models,
ClickHouse) consumes exactly them. Version changes go through
``schema_version`` and the generated JSON Schemas in ``schemas/events``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, field_validator, model_validator

from clicktrail.contracts.common import (
    SCHEMA_VERSION,
    ActionName,
    Contract,
    CountryCode,
    CurrencyCode,
    EventTime,
    Id,
    IpAddress,
    Money,
    ShortText,
    Text,
)


class Channel(StrEnum):
    search = "search"
    display = "display"
    social = "social"
    affiliate = "affiliate"
    email = "email"
    video = "video"
    native = "native"
    push = "push"
    other = "other"


class DeviceType(StrEnum):
    desktop = "desktop"
    mobile = "mobile"
    tablet = "tablet"
    ctv = "ctv"
    other = "other"


class ConversionStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


STANDARD_ACTIONS = ("lead", "signup", "add_to_cart", "purchase", "install")
PAID_CLICK_ID_PARAMS = ("gclid", "gbraid", "wbraid", "msclkid", "fbclid", "ttclid", "yclid")


class UserContext(Contract):
    """Who saw or clicked, as far as the sender knows. Never raw PII downstream.

    ``ip`` may arrive raw at the intake; it is truncated or hashed there
    (see the ``privacy`` settings) before the event reaches any topic or table.
    """

    user_id: Id | None = Field(None, description="Hashed cookie or device id")
    ip: IpAddress | None = Field(None, description="IP address; truncated or hashed at intake")
    user_agent: Text | None = None
    country: CountryCode | None = None
    device_type: DeviceType | None = None
    os: ShortText | None = None
    segments: list[ShortText] = Field(default_factory=list, max_length=64)


def _type_required(schema: dict[str, Any]) -> None:
    """The intake refuses an event without ``type`` (missing_type): the schema says so too."""
    schema["required"] = ["type", *schema.get("required", [])]


class _Event(Contract):
    model_config = ConfigDict(json_schema_extra=_type_required)

    event_id: Id = Field(description="Unique per event: the deduplication key")
    ts: EventTime
    schema_version: int = Field(
        SCHEMA_VERSION, description="Contract version", json_schema_extra={"const": SCHEMA_VERSION}
    )
    user: UserContext = Field(default_factory=UserContext)

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(
                f"unsupported schema_version {value}; this build reads {SCHEMA_VERSION}"
            )
        return value


class Impression(_Event):
    """An ad was shown (tracking pixel, ad server log, search auction row)."""

    type: Literal["impression"] = "impression"
    impression_id: Id
    campaign_id: Id
    advertiser_id: Id | None = None
    partner_id: Id = Field(description="Publisher, affiliate or contractor that placed the ad")
    channel: Channel = Channel.other
    keyword: ShortText | None = Field(None, description="Search term, if any")
    ad_domain: ShortText | None = Field(None, description="Display URL domain of the ad")
    landing_url: Text | None = None
    placement: ShortText | None = None
    creative_id: Id | None = None
    cost: Money | None = Field(None, description="What this impression cost, if known")
    cpc_bid: Money | None = None
    position: float | None = Field(None, ge=0, le=100)


class Click(_Event):
    """A click went through our redirect (or was reported by a partner)."""

    type: Literal["click"] = "click"
    click_id: Id = Field(description="Minted and signed by the edge when it redirects")
    impression_id: Id | None = None
    campaign_id: Id
    advertiser_id: Id | None = None
    partner_id: Id
    channel: Channel = Channel.other
    sub_ids: dict[ShortText, ShortText] = Field(
        default_factory=dict, max_length=20, json_schema_extra={"additionalProperties": False}
    )
    keyword: ShortText | None = None
    ad_domain: ShortText | None = None
    landing_url: Text | None = None
    referrer: Text | None = None
    placement: ShortText | None = None
    creative_id: Id | None = None
    paid_click_ids: dict[ShortText, ShortText] = Field(
        default_factory=dict,
        max_length=10,
        description="gclid / msclkid / fbclid / ttclid ... seen on the landing URL",
        json_schema_extra={"additionalProperties": False},
    )
    cost: Money | None = None


class Conversion(_Event):
    """A target action reported by a postback, a conversion pixel or a server."""

    type: Literal["conversion"] = "conversion"
    conversion_id: Id | None = Field(None, description="Defaults to event_id")
    txid: Id | None = Field(None, description="The advertiser's transaction id")
    click_id: Id | None = None
    campaign_id: Id | None = None
    advertiser_id: Id | None = None
    partner_id: Id | None = None
    action: ActionName
    status: ConversionStatus = ConversionStatus.pending
    revenue: Money = 0.0
    currency: CurrencyCode = "USD"
    payout: Money = 0.0

    @model_validator(mode="after")
    def _default_conversion_id(self) -> Conversion:
        if self.conversion_id is None:
            object.__setattr__(self, "conversion_id", self.event_id)
        return self


Event = Annotated[Impression | Click | Conversion, Field(discriminator="type")]
EVENT_TYPES: dict[str, type[Impression | Click | Conversion]] = {
    "impression": Impression,
    "click": Click,
    "conversion": Conversion,
}
EVENT_ADAPTER: TypeAdapter[Impression | Click | Conversion] = TypeAdapter(Event)
