"""The composed processors: what happens to an accepted event, for every runtime.

Two keyed stages, as on Kafka: the *event stage* (keyed by click / impression
id) deduplicates, resolves click ids, judges clicks and the conversions whose
click it knows, and watches brand bidding; the *user stage* (keyed by user)
attributes and judges the conversions it matched by user. The embedded runtime
calls both in a row; the Faust app runs them as two agents joined by the
touches topic. State comes from ``stores`` (a dict per name here, a Faust
Table per name there). A conversion's verdict rides on its records to its
attributed rows, and so does a later revision of it (``runtime/revisions.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from clicktrail.config import ConfigError, Registry
from clicktrail.config.registry import AttributionSettings
from clicktrail.contracts import (
    AnyEvent,
    AttributedConversion,
    Click,
    Conversion,
    FraudVerdict,
    Impression,
    StateStore,
)
from clicktrail.contracts.internal import ResolvedConversion, Touch
from clicktrail.processors.attribution import Attributor
from clicktrail.processors.brand import BRAND_STATE, BrandConfigError, BrandConflictDetector
from clicktrail.processors.clicks import END_OF_TIME, ClickResolver
from clicktrail.processors.dedup import Dedup
from clicktrail.processors.fraud import FRAUD_STATE, FraudDetector, credited_touch
from clicktrail.runtime.revisions import Revisions, verdict_mark

Forwarded = Touch | ResolvedConversion
StoreFactory = Callable[[str], StateStore]
STATE_NAMES = (
    "dedup", "clicks", "pending", "paths", "conversions", "waiting", "revisable", *FRAUD_STATE,
    *BRAND_STATE,
)  # fmt: skip
USER_STAGE_STATE = ("paths", "conversions", "waiting")
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
JUDGED_IN_EVENT_STAGE = ("found",)  # the others are judged where the user stage credits them


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
        self.fraud = FraudDetector(registry, stores)
        self.revisions = Revisions(stores("revisable"))
        try:
            self.brand = BrandConflictDetector(registry, state=stores)
        except BrandConfigError as error:
            raise ConfigError(str(error)) from None
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
        stored: list[BaseModel] = [event]
        if isinstance(event, Click):
            judged = self.fraud.on_click(event)
            stored += [*judged, *self._brand(event)]
            forwarded = [*self.clicks.on_click(event), *self.revisions.of(judged, None)]
        elif isinstance(event, Conversion):
            forwarded = self.clicks.on_conversion(event)
        elif isinstance(event, Impression):
            stored += self._brand(event)
            forwarded = [Touch.of(event)] if event.user.user_id else []
        verdicts, forwarded = self._judge_found(forwarded)
        return StageResult(stored=[*stored, *verdicts], forwarded=forwarded)

    def _brand(self, event: Impression | Click) -> list[BaseModel]:
        return list(self.brand(event)) if self.brand.route(event) is not None else []

    def _judge_found(self, records: list[Forwarded]) -> tuple[list[FraudVerdict], list[Forwarded]]:
        """Judge conversions whose click this stage knows; their verdict rides along."""
        verdicts: list[FraudVerdict] = []
        out: list[Forwarded] = []
        for record in records:
            judged_record = record
            if isinstance(record, ResolvedConversion) and record.lookup in JUDGED_IN_EVENT_STAGE:
                event_id = record.conversion.event_id
                judged = self.fraud.on_conversion(record)
                self.revisions.remember(record)
                verdicts += judged
                if mark := _conversion_mark(judged, event_id):
                    judged_record = record.model_copy(update=mark)
                out += self.revisions.of(judged, event_id)
            out.append(judged_record)
        return verdicts, out

    def tick(self) -> list[Forwarded]:
        """Conversions whose grace ran out at the current watermark (cheap; run often)."""
        return self.clicks.expire(self.watermark)

    def partner_verdicts(self) -> list[BaseModel]:
        """Partners whose fraud windows closed at the watermark (cheap; run often)."""
        return list(self.fraud.close_windows(self.watermark))

    def housekeep(self) -> int:
        """Forget state past its retention: sweeps over every key, so run it rarely."""
        return (
            self.dedup.expire(self.watermark)
            + self.clicks.forget(self.watermark)
            + self.attributor.expire(self.watermark)
            + self.fraud.expire(self.watermark)
            + self.brand.forget(self.watermark)
            + self.revisions.expire(self.watermark)
        )

    def drain(self) -> list[Forwarded]:
        """End of input: nothing more will come, so no conversion waits any longer."""
        return [*self.clicks.drain(), *self.attributor.settle(END_OF_TIME)]

    # -- user stage ----------------------------------------------------------------------

    def on_forwarded(self, record: Forwarded, origin: str) -> list[BaseModel]:
        if isinstance(record, Touch):
            return list(self.attributor.on_touch(record, origin))
        if record.lookup == "revised":
            return list(self.attributor.revise(record, origin))
        rows: list[AttributedConversion] = self.attributor.on_conversion(record, origin)
        if record.lookup in JUDGED_IN_EVENT_STAGE or self.attributor.is_waiting(record):
            return list(rows)
        return self._judge_credited(record, rows, origin)

    def _judge_credited(
        self, record: ResolvedConversion, rows: list[AttributedConversion], origin: str
    ) -> list[BaseModel]:
        """A conversion matched here (by user, or orphaned) is judged with what it credits.

        The verdict marks the conversion's rows when it is the conversion's first report;
        a status update is judged too (its verdict is stored) but its rows keep the
        conversion's verdict, as they do when the click stage judged it, so the rollups'
        flagged figures change only by the update's difference.
        """
        click = next((t for t in map(credited_touch, rows) if t is not None), None)
        judged = self.fraud.on_conversion(record.model_copy(update={"click": click}))
        event_id = record.conversion.event_id
        if click is not None:
            self.revisions.remember(record)
        mark = _conversion_mark(judged, event_id)
        if mark and self.attributor.mark(record, **mark):
            rows = [row.model_copy(update=mark) for row in rows]
        for revised in self.revisions.of(judged, event_id):  # the click's other conversions
            rows += self.attributor.revise(revised, origin)
        return [*rows, *judged]

    def tick_users(self) -> list[Forwarded]:
        """Conversions whose wait for a touch is over; they go through the user stage
        again, as messages of their own (cheap; run often)."""
        return list(self.attributor.settle(self.watermark))


def _conversion_mark(verdicts: list[FraudVerdict], event_id: str) -> dict[str, str]:
    """A flagged conversion's action and strongest reason, as fields of its records;
    empty when its verdict is ok (or it has none)."""
    for verdict in verdicts:
        if verdict.subject_type == "conversion" and verdict.subject_id == event_id:
            return verdict_mark(verdict)
    return {}
