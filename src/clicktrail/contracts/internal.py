"""Records that travel between processing stages (on internal topics in Kafka).

Attribution runs in two keyed stages: the click stage (keyed by ``click_id``)
knows every click and resolves a postback's click id; the user stage (keyed
by user) knows each user's touch path and credits conversions. These records
carry what the second stage needs from the first.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from clicktrail.contracts.common import Contract, EventTime, Id, ShortText
from clicktrail.contracts.events import Channel, Click, Conversion, DeviceType, Impression


class Touch(Contract):
    """A click or an impression, reduced to what attribution needs."""

    type: Literal["touch"] = "touch"
    kind: Literal["click", "impression"]
    touch_id: Id
    event_id: Id
    ts: EventTime
    user_id: Id | None = None
    campaign_id: Id
    advertiser_id: Id | None = None
    partner_id: Id
    channel: Channel | None = None
    country: str | None = None
    device_type: DeviceType | None = None
    impression_id: Id | None = None

    @classmethod
    def of(cls, event: Click | Impression) -> Touch:
        """Built from a validated event, so its fields are not validated again."""
        user = event.user
        return cls.model_construct(
            kind=event.type,
            touch_id=event.click_id if isinstance(event, Click) else event.impression_id,
            event_id=event.event_id,
            ts=event.ts,
            user_id=user.user_id,
            campaign_id=event.campaign_id,
            advertiser_id=event.advertiser_id,
            partner_id=event.partner_id,
            channel=event.channel,
            country=user.country,
            device_type=user.device_type,
            impression_id=event.impression_id,
        )


class ResolvedConversion(Contract):
    """A conversion after its click id was looked up (or its grace period ran out)."""

    type: Literal["resolved_conversion"] = "resolved_conversion"
    conversion: Conversion
    click: Touch | None = None
    lookup: Literal[
        "found", "unknown_click", "no_click", "settled", "revised", "rejoined", "retouched"
    ] = Field(
        description="found: its click is known; unknown_click: the click never came; "
        "no_click: match by user; settled: waited for the user's touches, credit what is "
        "there; revised: credited before, only its fraud verdict is new; rejoined: it "
        "left as an orphan and its click came after all (a late or reordered click); "
        "retouched: credited by its user's path before a touch that preceded it arrived"
    )
    fraud_action: Literal["ok", "suspicious", "reject"] = Field(
        "ok",
        description="The conversion's verdict when the click stage could judge it (or "
        "its revision)",
    )
    fraud_reason: ShortText | None = Field(
        None, description="The strongest reason of that verdict, when it is not ok"
    )

    @property
    def user_id(self) -> str | None:
        if self.click is not None and self.click.user_id:
            return self.click.user_id
        return self.conversion.user.user_id
