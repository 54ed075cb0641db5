"""The embedded runtime: intake, in-process bus, processors and ClickHouse sink in one process.

Used by ``clicktrail run`` and ``clicktrail replay`` and by the tests; it runs
the very same :class:`Pipeline` as the Faust workers, both stages in a row.
Under ``clicktrail run`` processing happens on a thread of its own
(:class:`~clicktrail.runtime.background.BackgroundProcessing`) while the event
loop publishes and reads the live models through :attr:`EmbeddedRuntime.models_lock`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel

from clicktrail.bus.durable import DurableBus
from clicktrail.bus.eventlog import EventLog
from clicktrail.bus.memory import InProcessBus, Message
from clicktrail.bus.topics import DEAD_LETTERS
from clicktrail.config import Registry
from clicktrail.contracts import AnyEvent
from clicktrail.processors.intake import Clock, Rejection, utc_now
from clicktrail.processors.models.online import prior_rates
from clicktrail.runtime.checkpoints import ModelCheckpoint, write_atomically
from clicktrail.runtime.gate import IntakeGate, IntakeStats
from clicktrail.runtime.metrics import StageCounts
from clicktrail.runtime.models_lock import ModelsLock
from clicktrail.runtime.pipeline import Forwarded, Pipeline
from clicktrail.runtime.snapshots import SNAPSHOT_EVERY_SECONDS, RuntimeState, Snapshots
from clicktrail.runtime.wiring import build_intake, publish_report_settings
from clicktrail.sinks.alerts import AlertService, alert_source
from clicktrail.sinks.clickhouse import ClickHouseSink
from clicktrail.sinks.store import Store

log = structlog.get_logger(__name__)

TICK_EVERY = 2_000
"""Messages between settling passes (conversions whose grace is over, partner windows, due
labels): often enough that a user-matched conversion is credited long before its click's
label horizon closes, and counted in messages, so a backlog read out of order (all
conversions before their clicks) does not orphan conversions early."""
LEARN_EVENT_TIME = timedelta(minutes=1)
"""Event time between label passes in between: labels are due by event time, and a short or
slow stream must not wait for TICK_EVERY messages. Each pass first credits the conversions
matched by user whose grace is over: a label waits for them (see ``Pipeline.learn_due``)."""
SNAPSHOT_FILE = "state.snapshot"
LOG_DIR = "log"
SOURCE_FILE = "source"
HOUSEKEEP_EVERY = 500_000  # messages between retention sweeps
CHUNK = 200
"""Messages processed per hold of the models lock: a few milliseconds of work, so a
``/v1/score`` read waits at most that long; the sink is flushed between chunks, never
under the lock."""


class EmbeddedRuntime:
    def __init__(
        self,
        registry: Registry,
        store: Store,
        *,
        sink: ClickHouseSink | None = None,
        clock: Clock = utc_now,
        source: str | None = None,
        alerts: AlertService | None = None,
        checkpoint: ModelCheckpoint | None = None,
        data_dir: Path | None = None,
        snapshot_every: float = SNAPSHOT_EVERY_SECONDS,
    ) -> None:
        """``checkpoint``: where the per-action models are restored from and saved to
        (None: they live as long as the process). ``data_dir``: durable mode (``clicktrail
        run``): accepted events go to an event log there before they are acknowledged,
        and the whole state is snapshotted there every ``snapshot_every`` seconds; a
        restart restores it and processes the log from where it left off."""
        self.registry = registry
        self.store = store
        self.checkpoint = checkpoint
        self.snapshots: Snapshots | None = None
        state: RuntimeState | None = None
        if data_dir is not None:
            self.snapshots = Snapshots(data_dir / SNAPSHOT_FILE, every_seconds=snapshot_every)
            state = self.snapshots.load(registry)
        self.models_lock = ModelsLock()
        if state is not None:
            self.pipeline = state.pipeline
        else:
            restored = (
                checkpoint.load(sorted(registry.actions), priors=prior_rates(registry))
                if checkpoint
                else None
            )
            self.pipeline = Pipeline(
                registry,
                models=restored.models if restored else None,
                learned=restored.extras if restored else None,
            )
        self.snapshot_offset = state.offset if state else 0
        """The last log record the saved state reflects (durable mode)."""
        self.bus: InProcessBus
        if data_dir is not None:
            events = EventLog(data_dir / LOG_DIR, after=self.snapshot_offset)
            self.bus = DurableBus(events, log_source(data_dir))
        else:
            self.bus = InProcessBus(source)
        self.gate = IntakeGate(build_intake(registry, clock), self.bus)
        self.sink = sink or ClickHouseSink(store)
        self._alert_state: dict[str, Any] = state.alert_state if state else {}
        self.alerts = alerts or AlertService(registry.alerts, state=self._alert_state)
        publish_report_settings(registry, store)
        self.counts = StageCounts()
        self.processed = state.processed if state else 0
        self.backlog = False
        """Set while reading a backlog (``clicktrail replay``): more input is always waiting,
        so the sink writes by size, not every second."""
        self._learned = state.learned if state else self.pipeline.watermark
        self._last: tuple[str, int] | None = state.last if state else None
        if isinstance(self.bus, DurableBus):
            replayed = self.bus.recover(self.snapshot_offset)
            log.info("state.log_replay", after=self.snapshot_offset, records=replayed)

    @property
    def unsnapshotted(self) -> int:
        """Logged records the saved state does not reflect: what a restart reprocesses."""
        if isinstance(self.bus, DurableBus):
            return self.bus.log.last - self.snapshot_offset
        return 0

    @property
    def stats(self) -> IntakeStats:
        return self.gate.stats

    def submit_raw(self, raw: bytes | str, source: str) -> AnyEvent | Rejection:
        return self.gate.submit_raw(raw, source)

    def submit(self, data: Any, source: str) -> AnyEvent | Rejection:
        return self.gate.submit(data, source)

    def process(self, limit: int | None = None) -> int:
        """Run queued messages through both stages into the sink; returns messages handled.

        At most ``limit`` messages (None: until the queue is empty), :data:`CHUNK` at a
        time under the models lock; due sink batches are written between chunks.
        """
        handled = 0
        while limit is None or handled < limit:
            size = CHUNK if limit is None else min(CHUNK, limit - handled)
            with self.models_lock.writing():
                done = self._process_chunk(size)
            handled += done
            if self.sink.due(idle=self._idle()):
                self.flush()
            if done == 0:
                break
        return handled

    def _process_chunk(self, size: int) -> int:
        """Up to ``size`` messages; stops early when a sink batch is due (written outside
        the models lock by the caller)."""
        handled = 0
        for message in self.bus.drain(size):
            self._handle(message)
            handled += 1
            self.processed += 1
            if self.processed % TICK_EVERY == 0:
                self._tick(message.source, message.offset)
            elif self.pipeline.watermark - self._learned >= LEARN_EVENT_TIME:
                self._settle(message.source, message.offset)
            if self.processed % HOUSEKEEP_EVERY == 0:
                self.pipeline.housekeep()
            if self.sink.due(idle=self._idle()):
                break
        return handled

    def _idle(self) -> bool:
        return not self.backlog and self.bus.depth() == 0

    def _tick(self, src: str, offset: int) -> None:
        self._forward(self.pipeline.tick(), src, offset, "timer")
        self._forward(self.pipeline.tick_users(), src, offset, "timer")
        self._store(self.pipeline.partner_verdicts(), src, offset, "timer")
        self._learn(src, offset)

    def _settle(self, src: str, offset: int) -> None:
        """Between ticks: conversions matched by user whose grace is over are credited, then
        the labels they decide are learned (conversions waiting for their click keep the
        TICK_EVERY cadence)."""
        self._forward(self.pipeline.tick_users(), src, offset, "timer")
        self._learn(src, offset)

    def _learn(self, src: str, offset: int) -> None:
        self._learned = self.pipeline.watermark
        self._store(self.pipeline.learn_due(), src, offset, "timer")

    def flush(self, *, checkpoint: bool = False) -> None:
        """Write buffered rows, with the alert deliveries finished so far; checkpoint the
        models when it is time (or now, with ``checkpoint``)."""
        for alert in self.alerts.take():
            self.sink.add(alert, *alert_source(alert))
        self.sink.flush()
        if self.snapshots is not None:
            self._snapshot(self.snapshots, now=checkpoint)
        if self.checkpoint is None:
            return
        if checkpoint:
            self.checkpoint.save(*self.pipeline.learned_state())
        else:
            self.checkpoint.save_if_due(*self.pipeline.learned_state())

    def _snapshot(self, snapshots: Snapshots, *, now: bool) -> None:
        """Save the state with the last record it reflects (every row of the records up
        to it was just written): in a child process while running, here at a stop. Once
        it is on disk, the log forgets what it holds."""
        done = snapshots.poll()
        if now or snapshots.due():
            state = RuntimeState(
                offset=self._last[1] if self._last is not None else self.snapshot_offset,
                pipeline=self.pipeline,
                processed=self.processed,
                learned=self._learned,
                last=self._last,
                alert_state=self._alert_state,
            )
            if now:
                done = snapshots.wait() or done
                snapshots.save(state)
                done = state.offset
            else:
                snapshots.start(state)
        if done is not None:
            self.snapshot_offset = done
            if isinstance(self.bus, DurableBus):
                self.bus.log.release(done)

    def _store(self, records: list[BaseModel], src: str, offset: int, stage: str = "timer") -> None:
        """Rows for ClickHouse; conflicts and partner verdicts also to the alerting."""
        self.counts.sent(stage, "store", records)
        self.sink.add_all(records, src, offset)
        self.alerts.observe(records)

    def _handle(self, message: Message) -> None:
        src, offset = message.source, message.offset
        self._last = (src, offset)
        counts = self.counts
        if message.topic == DEAD_LETTERS:
            counts.took("dead_letter")
            counts.dead(getattr(message.record, "reason", ""))
            counts.sent("dead_letter", "store", [message.record])
            self.sink.add(message.record, src, offset)
            return
        counts.took("event")
        result = self.pipeline.on_event(message.record, message.origin)  # type: ignore[arg-type]
        self._store(result.stored, src, offset, "event")
        counts.sent("event", "brand", [event for _, event in result.brand])
        for _, event in result.brand:
            counts.took("brand")
            self._store(self.pipeline.on_brand(event, message.origin), src, offset, "brand")
        self._forward(result.forwarded, src, offset, "event")

    def _forward(
        self, records: Iterable[Forwarded], src: str, offset: int, stage: str = "timer"
    ) -> None:
        """Each record is a message of its own, as on the touches topic: the user stage
        takes a repeated origin for a redelivery, so a conversion and its status update
        settled together must not share one (the update would be lost)."""
        counts = self.counts
        for n, record in enumerate(records):
            origin = f"{src}@{offset}/{n}"
            counts.out[stage, "user", record.type] += 1
            counts.took("user")
            out: list[BaseModel] = self.pipeline.on_forwarded(record, origin)
            self._store(out, src, offset, "user")
            labels = self.pipeline.labels_of(out)
            counts.sent("user", "label", labels)
            for row in labels:
                counts.took("label")
                self._store(self.pipeline.on_label(row, origin), src, offset, "label")

    def close(self, *, end_of_input: bool = False) -> None:
        """Process what is queued and write everything out.

        ``end_of_input`` (replay): nothing more will arrive, so conversions still
        waiting for their click are settled as orphans now. Alert deliveries under
        way get their retry budget before their records are written.
        """
        self.bus.flush()
        self.process()
        if self._last is not None:  # conflicts hold their final counts, not the last alert's
            src, offset = self._last
            self._store(self.pipeline.final_conflicts(), src, offset + 1, "timer")
        if end_of_input and self._last is not None:
            src, offset = self._last
            self._forward(self.pipeline.drain(), src, offset + 1, "timer")
            self._store(self.pipeline.partner_verdicts(), src, offset + 1, "timer")
            self._store(self.pipeline.report_models(), src, offset + 1, "timer")
            self.alerts.final_digests()
        self.alerts.close()
        self.flush(checkpoint=True)
        if isinstance(self.bus, DurableBus):
            self.bus.close()


def log_source(data_dir: Path) -> str:
    """The origin name of this data directory's log, made once: a new directory (its log
    numbered from 1 again) must not have its rows skipped as ones the store already has."""
    path = data_dir / SOURCE_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        source = f"log:{uuid.uuid4().hex[:12]}"
        write_atomically(path, source.encode())
        return source
