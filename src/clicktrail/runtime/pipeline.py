"""The composed processors: what happens to an accepted event, for every runtime.

Three keyed stages, as on Kafka: the *event stage* (keyed by click / impression
id) deduplicates, resolves click ids, judges clicks and the conversions whose
click it knows, and scores clicks with the per-action models, which learn from
the attributed conversions routed back to it by click id; the *user stage*
(keyed by user) attributes and judges the conversions it matched by user; the
*brand stage* (keyed by brand) watches brand bidding, so one brand's auctions
meet in one place; auction-insights rows imported from advertisers' exports
join them there. The embedded runtime calls them in a row; the Faust app runs
them as agents joined by the touches, brand and labels topics. State comes from
``stores`` (a dict per name here, a Faust Table per name there).
A conversion's verdict rides on its records to its attributed rows, and so does a
later revision of it (``runtime/revisions.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from clicktrail.config import ConfigError, Registry
from clicktrail.config.registry import AttributionSettings
from clicktrail.contracts import (
    AnyEvent,
    AttributedConversion,
    AuctionInsight,
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
from clicktrail.processors.fraud.anomaly import PartnerAnomaly
from clicktrail.processors.models import ActionModels, dumps, loads
from clicktrail.processors.models.online import OnlineModels, prior_rates
from clicktrail.processors.watermark import BEGINNING, EventClock
from clicktrail.runtime.revisions import Revisions, verdict_mark

Forwarded = Touch | ResolvedConversion
EventStageInput = AnyEvent | AuctionInsight
BrandInput = Impression | Click | AuctionInsight
StoreFactory = Callable[[str], StateStore]
BRAND_STAGE_STATE = (*BRAND_STATE, "brand_seen", "insights_seen")
STATE_NAMES = (
    "dedup", "clicks", "pending", "orphans", "paths", "conversions", "waiting",
    "user_conversions", "revisable",
    "model_pending", *FRAUD_STATE, *BRAND_STAGE_STATE,
)  # fmt: skip
USER_STAGE_STATE = ("paths", "conversions", "waiting", "user_conversions")
JUDGED_IN_EVENT_STAGE = (
    "found",
    "rejoined",
)  # the others are judged where the user stage credits them
INSIGHTS_WINDOW = timedelta(days=400)
"""How long an imported auction-insights row is remembered: exports cover weeks or months
and are imported again when they overlap, long after the 7 days events are kept for."""


def memory_stores(name: str) -> StateStore:
    return {}


@dataclass
class StageResult:
    stored: list[BaseModel] = field(default_factory=list)
    forwarded: list[Forwarded] = field(default_factory=list)
    brand: list[tuple[str, BrandInput]] = field(default_factory=list)
    """Events for the brand stage, with the brand they are keyed by."""


class Pipeline:
    def __init__(
        self,
        registry: Registry,
        stores: StoreFactory = memory_stores,
        models: ActionModels | None = None,
        learned: Mapping[str, object] | None = None,
        wall: Callable[[], float] | None = None,
    ) -> None:
        """``models`` and ``learned`` (see :meth:`learned_state`): what a checkpoint
        restored (fresh when None). ``wall``: a live runtime's monotonic clock, so a
        quiet input goes idle after ``event_time.idle_seconds`` (None: replays, where
        only message counts decide)."""
        self.registry = registry
        self.stores: dict[str, StateStore] = {}
        """Every state store by name, as created: what a restart under a changed registry
        carries over (``runtime/snapshots.py``)."""
        stores = self._recording(stores)
        self.dedup = Dedup(stores("dedup"))
        self.insights_seen = Dedup(stores("insights_seen"), window=INSIGHTS_WINDOW)
        self.clicks = ClickResolver(
            stores("clicks"),
            stores("pending"),
            stores("orphans"),
            grace_for=self._grace,
            partner_ids=frozenset(
                k for k, p in registry.partners.items() if p.click_ids == "partner"
            ),
        )
        self.attributor = Attributor(
            stores("paths"),
            stores("conversions"),
            stores("waiting"),
            stores("user_conversions"),
            campaigns=registry.campaigns,
            actions=registry.actions,
            grace_for=self._grace,
        )
        anomaly = (learned or {}).get("partner_anomaly")
        self.fraud = FraudDetector(
            registry, stores, anomaly=anomaly if isinstance(anomaly, PartnerAnomaly) else None
        )
        self.models = OnlineModels(registry, stores("model_pending"), models)
        self.revisions = Revisions(stores("revisable"))
        try:
            self.brand = BrandConflictDetector(registry, state=stores)
        except BrandConfigError as error:
            raise ConfigError(str(error)) from None
        self.brand_seen = Dedup(stores("brand_seen"))
        timing = registry.event_time
        self.clock = EventClock(
            allowed_lateness=timedelta(seconds=timing.allowed_lateness_seconds),
            max_jump=timedelta(seconds=timing.max_jump_seconds),
            confirmations=timing.confirmations,
            idle_messages=timing.idle_messages,
            idle_seconds=timing.idle_seconds,
            wall=wall,
        )
        self._split: set[str] = set()
        self._settled = BEGINNING
        """The watermark of the last settling pass: conversions up to a grace before it
        have been credited, so labels up to there can be decided."""
        graces = [c.attribution.conversion_grace_seconds for c in registry.campaigns.values()]
        self._longest_grace = timedelta(
            seconds=max([AttributionSettings().conversion_grace_seconds, *graces])
        )

    @property
    def watermark(self) -> datetime:
        """Event time the pipeline has reached (see :mod:`clicktrail.processors.watermark`)."""
        return self.clock.watermark

    def declare_inputs(self, source: str, event_types: Iterable[str]) -> None:
        """``source`` is read as one input per event type, and these types will come (a
        replayed file: see :meth:`EventClock.declare`)."""
        self._split.add(source)
        for event_type in sorted(event_types):
            self.clock.declare(f"{source}/{event_type}")

    def _input_of(self, origin: str, event_type: str) -> str:
        source = origin.rpartition("@")[0]
        return f"{source}/{event_type}" if source in self._split else source

    def refresh_clock(self) -> None:
        """Let inputs that went quiet by the wall clock stop holding the watermark."""
        self.clock.refresh()

    def _recording(self, stores: StoreFactory) -> StoreFactory:
        def named(name: str) -> StateStore:
            store = self.stores[name] = stores(name)
            return store

        return named

    def _grace(self, conversion: Conversion) -> timedelta:
        campaign = self.registry.campaigns.get(conversion.campaign_id or "")
        settings = campaign.attribution if campaign else AttributionSettings()
        return timedelta(seconds=settings.conversion_grace_seconds)

    # -- event stage ---------------------------------------------------------------------

    def on_event(self, event: EventStageInput, origin: str) -> StageResult:
        if isinstance(event, AuctionInsight):
            key = self.brand.route(event)
            return StageResult(brand=[(key, event)] if key is not None else [])
        if not self.dedup.admit(event.event_id, event.ts, origin):
            return StageResult()
        self.clock.observe(self._input_of(origin, event.type), event.ts)
        stored: list[BaseModel] = [event]
        brand: list[tuple[str, BrandInput]] = []
        if isinstance(event, Click):
            judged, counts = self.fraud.judge_click(event)
            stored += judged
            stored.append(self._score(event, judged, counts))
            forwarded = [*self.clicks.on_click(event), *self.revisions.of(judged, None)]
        elif isinstance(event, Conversion):
            forwarded = self.clicks.on_conversion(event)
        elif isinstance(event, Impression):
            forwarded = [Touch.of(event)] if event.user.user_id else []
        if isinstance(event, Impression | Click):
            key = self.brand.route(event)
            brand = [(key, event)] if key is not None else []
        verdicts, forwarded = self._judge_found(forwarded)
        return StageResult(stored=[*stored, *verdicts], forwarded=forwarded, brand=brand)

    def _score(
        self, click: Click, verdicts: list[FraudVerdict], counts: dict[str, int]
    ) -> BaseModel:
        """Scores for the click, its flood-window counts among the features; rejected clicks
        (this one, or earlier ones a flood verdict convicts now) are kept out of training."""
        rejected = {
            v.subject_id for v in verdicts if v.subject_type == "click" and v.action == "reject"
        }
        for click_id in rejected - {click.click_id}:
            self.models.mark_fraud(click_id)
        return self.models.on_click(click, rejected=click.click_id in rejected, counts=counts)

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
        """Partners whose fraud windows closed (cheap; run often). A window closes once the
        watermark is a conversion grace past its end: conversions judged when their grace
        runs out (orphans, user matches) still count in the window of their own time, so
        the windows do not depend on when the stages tick."""
        return list(self.fraud.close_windows(self.watermark - self._longest_grace))

    def housekeep(self) -> int:
        """Forget state past its retention: sweeps over every key, so run it rarely."""
        return (
            self.dedup.expire(self.watermark)
            + self.insights_seen.expire(self.watermark)
            + self.clicks.forget(self.watermark)
            + self.attributor.expire(self.watermark)
            + self.fraud.expire(self.watermark)
            + self.brand.forget(self.watermark)
            + self.brand_seen.expire(self.watermark)
            + self.revisions.expire(self.watermark)
        )

    def drain(self) -> list[Forwarded]:
        """End of input: nothing more will come, so no conversion waits any longer."""
        self.clock.finish()
        return [*self.clicks.drain(), *self.attributor.settle(END_OF_TIME)]

    def learn_due(self) -> list[BaseModel]:
        """Labels whose deadline passed a conversion grace behind the watermark the user
        stage last settled at; quality rows when due (cheap between sweeps; run often).
        A conversion matched by user waits there until a settling pass finds its grace
        over, so its label can reach the click long after the conversion's time: deciding
        at the watermark itself learned such labels as negatives (on the simulator, half
        the installs, all matched by user, were lost so)."""
        return list(self.models.due(self.watermark, self._settled - self._longest_grace))

    def learned_state(self) -> tuple[ActionModels, dict[str, object]]:
        """What a checkpoint keeps: the per-action models, and the other learned objects."""
        return self.models.models, {"partner_anomaly": self.fraud.partners.model}

    def under(self, registry: Registry) -> Pipeline:
        """This state under a changed registry (a restart after a config edit): the state
        stores and the learned models carry over (an action new to the registry starts
        fresh), and so does the event clock while its settings are the same; everything
        derived from the registry is built from the new one."""
        restored = loads(
            dumps(*self.learned_state()), sorted(registry.actions), priors=prior_rates(registry)
        )
        fresh = Pipeline(
            registry,
            stores=lambda name: self.stores.get(name, {}),
            models=restored.models,
            learned=restored.extras,
        )
        if registry.event_time == self.registry.event_time:
            fresh.clock = self.clock
            fresh._settled = self._settled
        return fresh

    def report_models(self) -> list[BaseModel]:
        """Quality rows now (end of input, after the drained conversions were labelled)."""
        return list(self.models.report(self.watermark))

    def on_label(self, row: AttributedConversion, origin: str) -> list[BaseModel]:
        """An attributed conversion back at its click's stage: a positive example. Each
        (click, action) is learned once whatever message brings it, so ``origin`` is
        not needed (it keeps the signature every stage handler has)."""
        self.models.on_label(row)
        return []

    @staticmethod
    def labels_of(rows: list[BaseModel]) -> list[AttributedConversion]:
        """The rows of a user stage that label a click (to route back by ``click_id``)."""
        return [
            row
            for row in rows
            if isinstance(row, AttributedConversion) and row.touch == "click" and row.click_id
        ]

    # -- brand stage ---------------------------------------------------------------------

    def on_brand(self, item: BrandInput, origin: str) -> list[BaseModel]:
        """Brand conflicts an event or export row changed; an event forwarded twice (a
        retried event stage) counts once, as its second copy arrives from another message."""
        if isinstance(item, AuctionInsight):
            return self._insight(item, origin)
        if not self.brand_seen.admit(item.event_id, item.ts, origin):
            return []
        return list(self.brand(item))

    def final_conflicts(self) -> list[BaseModel]:
        """Conflicts whose counts moved since their last record, as they stand (end of input,
        clean stop): a stored row otherwise keeps the counts of its last alert threshold."""
        return list(self.brand.catch_up())

    def _insight(self, row: AuctionInsight, origin: str) -> list[BaseModel]:
        """Counted once however often its export is imported; a report row is not stream
        time, so it leaves the watermark alone. It is remembered from the later of its day
        and the watermark, so an old row imported today is not forgotten at once."""
        if not self.insights_seen.admit(row.row_id, max(row.ts, self.watermark), origin):
            return []
        return list(self.brand(row))

    # -- user stage ----------------------------------------------------------------------

    def on_forwarded(self, record: Forwarded, origin: str) -> list[BaseModel]:
        if isinstance(record, Touch):
            out: list[BaseModel] = []
            for retouched in self.attributor.on_touch(record, origin):
                out += self._recredit(retouched, origin)
            return out
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
        judged, mark = self._judge(record, click)
        if mark and self.attributor.mark(record, **mark):
            rows = [row.model_copy(update=mark) for row in rows]
        return [*rows, *self._revise_others(judged, record, origin), *judged]

    def _recredit(self, record: ResolvedConversion, origin: str) -> list[BaseModel]:
        """A conversion a late touch takes part in: judged with the click its path credits
        now (its verdict revised even when that clears it), then credited anew."""
        judged, mark = self._judge(record, record.click)
        rows = self.attributor.recredit(record.model_copy(update=mark), origin)
        return [*rows, *self._revise_others(judged, record, origin), *judged]

    def _judge(
        self, record: ResolvedConversion, click: Touch | None
    ) -> tuple[list[FraudVerdict], dict[str, str]]:
        """The conversion judged with the click it credits (remembered, so a later
        conviction of that click revises it), and the mark its verdict puts on its rows."""
        judged = self.fraud.on_conversion(record.model_copy(update={"click": click}))
        if click is not None:
            self.revisions.remember(record)
        return judged, _conversion_mark(judged, record.conversion.event_id)

    def _revise_others(
        self, judged: list[FraudVerdict], record: ResolvedConversion, origin: str
    ) -> list[AttributedConversion]:
        """New versions of the click's other conversions its new verdict convicts."""
        rows: list[AttributedConversion] = []
        for revised in self.revisions.of(judged, record.conversion.event_id):
            rows += self.attributor.revise(revised, origin)
        return rows

    def tick_users(self) -> list[Forwarded]:
        """Conversions whose wait for a touch is over; they go through the user stage
        again, as messages of their own (cheap; run often)."""
        self._settled = self.watermark
        return list(self.attributor.settle(self.watermark))


def _conversion_mark(verdicts: list[FraudVerdict], event_id: str) -> dict[str, str]:
    """A flagged conversion's action and strongest reason, as fields of its records;
    empty when its verdict is ok (or it has none)."""
    for verdict in verdicts:
        if verdict.subject_type == "conversion" and verdict.subject_id == event_id:
            return verdict_mark(verdict)
    return {}
