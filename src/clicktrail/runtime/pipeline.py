"""The composed processors: what happens to an accepted event, for every runtime.

Two keyed stages, as on Kafka: the *event stage* (keyed by click / impression
id) deduplicates and resolves click ids; the *user stage* (keyed by user)
attributes. The embedded runtime calls both in a row; the Faust app runs them
as two agents joined by the touches topic. State comes from ``stores`` (a
dict per name here, a Faust Table per name there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from clicktrail.config import Registry
from clicktrail.config.registry import AttributionSettings
from clicktrail.contracts import AnyEvent, Click, Conversion, Impression, StateStore
from clicktrail.contracts.internal import ResolvedConversion, Touch
from clicktrail.processors.attribution import Attributor
from clicktrail.processors.clicks import END_OF_TIME, ClickResolver
from clicktrail.processors.dedup import Dedup

Forwarded = Touch | ResolvedConversion
StoreFactory = Callable[[str], StateStore]
STATE_NAMES = ("dedup", "clicks", "pending", "paths", "conversions", "waiting")
USER_STAGE_STATE = ("paths", "conversions", "waiting")
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)


def memory_stores(name: str) -> StateStore:
    return {}


@dataclass
class StageResult:
    stored: list[BaseModel] = field(default_factory=list)
    forwarded: list[Forwarded] = field(default_factory=list)


class Pipeline:
    def __init__(self, registry: Registry, stores: StoreFactory = memory_stores) -> None:
        self.registry = registry
        self.dedup = Dedup(stores("dedup"))
        self.clicks = ClickResolver(stores("clicks"), stores("pending"), grace_for=self._grace)
        self.attributor = Attributor(
            stores("paths"),
            stores("conversions"),
            stores("waiting"),
            campaigns=registry.campaigns,
            actions=registry.actions,
            grace_for=self._grace,
        )
        self.watermark = BEGINNING

    def _grace(self, conversion: Conversion) -> timedelta:
        campaign = self.registry.campaigns.get(conversion.campaign_id or "")
        settings = campaign.attribution if campaign else AttributionSettings()
        return timedelta(seconds=settings.conversion_grace_seconds)

    # -- event stage ---------------------------------------------------------------------

    def on_event(self, event: AnyEvent, origin: str) -> StageResult:
        if not self.dedup.admit(event.event_id, event.ts, origin):
            return StageResult()
        self.watermark = max(self.watermark, event.ts)
        if isinstance(event, Click):
            forwarded = self.clicks.on_click(event)
        elif isinstance(event, Conversion):
            forwarded = self.clicks.on_conversion(event)
        elif isinstance(event, Impression):
            forwarded = [Touch.of(event)] if event.user.user_id else []
        return StageResult(stored=[event], forwarded=forwarded)

    def tick(self) -> list[Forwarded]:
        """Conversions whose grace ran out at the current watermark (cheap; run often)."""
        return self.clicks.expire(self.watermark)

    def housekeep(self) -> int:
        """Forget state past its retention: sweeps over every key, so run it rarely."""
        return (
            self.dedup.expire(self.watermark)
            + self.clicks.forget(self.watermark)
            + self.attributor.expire(self.watermark)
        )

    def drain(self) -> list[Forwarded]:
        """End of input: nothing more will come, so no conversion waits any longer."""
        return [*self.clicks.drain(), *self.attributor.settle(END_OF_TIME)]

    # -- user stage ----------------------------------------------------------------------

    def on_forwarded(self, record: Forwarded, origin: str) -> list[BaseModel]:
        if isinstance(record, Touch):
            return list(self.attributor.on_touch(record, origin))
        return list(self.attributor.on_conversion(record, origin))

    def tick_users(self) -> list[Forwarded]:
        """Conversions whose wait for a touch is over; they go through the user stage
        again, as messages of their own (cheap; run often)."""
        return list(self.attributor.settle(self.watermark))
