"""The Faust runtime: the same :class:`Pipeline` as the embedded runner, on Kafka.

Three agents, as three keyed stages: the event stage consumes impressions,
clicks and conversions (keyed by click / impression id) and imported
auction-insights rows, and forwards touches and resolved conversions to the
touches topic keyed by user, and what may concern a brand to the brand topic
keyed by brand; the user stage attributes; the brand stage watches brand
bidding; attributed conversions go back to their click's partition on the
labels topic, where the per-action models learn from them. A fifth agent stores
dead letters. The models are checkpointed to the data directory on a timer and
restored at start. Agents work in batches
(``take_events``) and write to ClickHouse before the batch is acknowledged, so
offsets are committed only for stored work; the sink drops rows a redelivered
message would write twice. Scale out with partitions and worker processes.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import faust
import structlog
from faust.streams import _current_event
from pydantic import BaseModel

from clicktrail.bus.codec import deserialize, serialize
from clicktrail.bus.topics import (
    AUCTION_INSIGHTS,
    BRAND,
    CLICKS,
    CONVERSIONS,
    DEAD_LETTERS,
    IMPRESSIONS,
    LABELS,
    TOUCHES,
    user_key,
)
from clicktrail.config import Registry
from clicktrail.contracts import (
    AttributedConversion,
    DeadLetter,
    StateStore,
)
from clicktrail.processors.models import dumps
from clicktrail.processors.models.online import prior_rates
from clicktrail.runtime.checkpoints import ModelCheckpoint
from clicktrail.runtime.faust_rocksdb import use_for_rocksdb_urls
from clicktrail.runtime.faust_state import FaustState
from clicktrail.runtime.metrics import StageCounts, consumer_lag, expose
from clicktrail.runtime.metrics_http import serve
from clicktrail.runtime.pipeline import (
    BRAND_STAGE_STATE,
    STATE_NAMES,
    USER_STAGE_STATE,
    BrandInput,
    EventStageInput,
    Forwarded,
    Pipeline,
)
from clicktrail.runtime.wiring import publish_report_settings
from clicktrail.sinks.alerts import AlertService, alert_source
from clicktrail.sinks.clickhouse import ClickHouseSink
from clicktrail.sinks.store import StoreError
from clicktrail.telemetry import MetricsRegistry

log = structlog.get_logger(__name__)

R = TypeVar("R")
ALERT_STATE = "alert_routes"  # what was alerted when, per dedup key
ALIVE_FILE = "alive"
"""Touched in the data directory on a timer: a container healthcheck reads its age."""
ALIVE_SECONDS = 10.0


@dataclass(frozen=True)
class WorkerSettings:
    bootstrap: str
    partitions: int = 4
    app_id: str = "clicktrail"
    data_dir: str = "var/worker"
    table_store: str = "memory://"
    batch_size: int = 5_000
    batch_seconds: float = 0.5
    tick_seconds: float = 5.0
    housekeep_seconds: float = 600.0
    checkpoint_seconds: float = 60.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    """Where the worker serves ``/metrics`` (None: nowhere; 0: a free port)."""
    session_timeout: float = 45.0
    """Seconds without heartbeats before the group gives a dead worker's partitions to the
    others: how long a killed worker's partitions wait (Kafka's own default since 3.0)."""
    instance_id: str | None = None
    """Static group membership (``group.instance.id``, KIP-345): a worker restarted under
    the same id takes its partitions back at once, without a rebalance, instead of waiting
    out its dead self's session. None: dynamic membership (a clean stop leaves the group,
    a killed worker's partitions wait ``session_timeout``)."""

    def __post_init__(self) -> None:
        if self.partitions < 1 or self.batch_size < 1 or self.batch_seconds <= 0:
            raise ValueError("partitions and batch_size must be >= 1, batch_seconds > 0")
        if not 6 <= self.session_timeout <= 300:
            raise ValueError("session_timeout must be between 6 and 300 seconds")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError("metrics_port must be between 0 and 65535")
        if self.instance_id is not None and not INSTANCE_ID.fullmatch(self.instance_id):
            raise ValueError("instance_id: 1-200 letters, digits, '.', '_' or '-'")


INSTANCE_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")
INSTANCE_FILE = "instance-id"
"""In the data directory: the worker's static group membership id, made once."""


def instance_id(data_dir: str | Path) -> str:
    """The static membership id of the worker that owns ``data_dir``, made on first use.

    Identity follows the state: a worker restarted on its data directory (its RocksDB
    tables, its model checkpoint) is the same group member and gets its partitions back
    without a rebalance. Two workers must never share a data directory, nor a copy of
    one, or the broker fences one of them (it stops with ``FencedInstanceIdError``)."""
    path = Path(data_dir) / INSTANCE_FILE
    try:
        found = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        found = ""
    if INSTANCE_ID.fullmatch(found):
        return found
    made = f"{socket.gethostname()[:40]}-{uuid.uuid4().hex[:12]}"
    made = re.sub(r"[^A-Za-z0-9._-]", "-", made)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(made + "\n", encoding="utf-8")
    tmp.replace(path)
    return made


CO_LOCATED = {"orphans": "pending"}
"""Stores keyed by the same click ids as another: a conversion that leaves ``pending`` as
an orphan on a timer is kept in the partition it waited in."""


def default_table_store() -> str:
    """RocksDB (via rocksdict) keeps tables on local disk across restarts; else memory,
    which rebuilds from the changelog topics on start. ``rocksdb://`` is served by
    :mod:`clicktrail.runtime.faust_rocksdb`."""
    try:
        import rocksdict  # noqa: F401
    except ImportError:
        return "memory://"
    return "rocksdb://"


def _millis(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _origin(event: Any) -> tuple[str, int]:
    message = event.message
    return f"{message.topic}/{message.partition}", int(message.offset)


def _dead_letter(reason: str, topic: str, error: Exception, raw: bytes) -> DeadLetter:
    return DeadLetter(
        received_at=datetime.now(UTC),
        source=f"topic:{topic}",
        reason=reason,
        message=f"{type(error).__name__}: {error}"[:2048],
        payload=raw.decode("utf-8", errors="replace")[:65_536],
    )


def _poison(topic: str, error: Exception, raw: bytes) -> DeadLetter:
    """A message that is not a record of the topic's kind."""
    return _dead_letter("poison_message", topic, error, raw)


def _failed(topic: str, error: Exception, raw: bytes) -> DeadLetter:
    """A valid record whose processing raised: kept with the error, the stream goes on."""
    return _dead_letter("processing_error", topic, error, raw)


class FaustRuntime:
    """Builds the Faust app around one pipeline, one sink and the topics."""

    def __init__(self, registry: Registry, sink: ClickHouseSink, settings: WorkerSettings) -> None:
        self.settings = settings
        self.sink = sink
        publish_report_settings(registry, sink.store)
        use_for_rocksdb_urls()  # rebalances short enough to keep the group membership
        self.app = faust.App(
            settings.app_id,
            broker=f"kafka://{settings.bootstrap}",
            store=settings.table_store,
            datadir=settings.data_dir,
            topic_partitions=settings.partitions,
            key_serializer="json",  # tables; topics below carry raw bytes
            value_serializer="json",
            web_enabled=False,
            consumer_auto_offset_reset="earliest",
            broker_commit_every=1_000,
            broker_commit_interval=1.0,
            producer_linger=0.02,
            producer_max_batch_size=1 << 20,
            table_key_index_size=10,
            broker_session_timeout=settings.session_timeout,
            broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
            consumer_group_instance_id=settings.instance_id,
        )
        self.tables = {
            name: self.app.Table(name, default=None, partitions=settings.partitions)
            for name in (*STATE_NAMES, ALERT_STATE)
        }
        self._states: dict[str, FaustState] = {}
        self.checkpoint = ModelCheckpoint(Path(settings.data_dir) / "models.ckpt")
        restored = self.checkpoint.load(sorted(registry.actions), priors=prior_rates(registry))
        self.pipeline = Pipeline(
            registry,
            stores=self._store,
            models=restored.models,
            learned=restored.extras,
            wall=time.monotonic,
        )
        self._models_src = f"models:{settings.app_id}:{socket.gethostname()}"
        self.alerts = AlertService(registry.alerts, state=self._store(ALERT_STATE))
        self.events_topic = self._raw_topic(IMPRESSIONS, CLICKS, CONVERSIONS, AUCTION_INSIGHTS)
        self.touches_topic = self._raw_topic(TOUCHES)
        self.brand_topic = self._raw_topic(BRAND)
        self.labels_topic = self._raw_topic(LABELS)
        self.dead_topic = self._raw_topic(DEAD_LETTERS)
        self._flushing = asyncio.Lock()
        self._brand_batches = self._brand_batches_seen = 0
        self._alert_keys_located = False
        self.counts = StageCounts()
        self.metrics = MetricsRegistry()
        expose(
            self.metrics,
            counts=self.counts,
            sink=sink,
            alerts=self.alerts,
            labels=self.pipeline.models.labels,
            clock=self.pipeline.clock,
        )
        self.metrics.collect(lambda: consumer_lag(self.app.consumer))
        self.metrics_server: asyncio.Server | None = None
        if settings.metrics_port is not None:
            self.app.task(self._serve_metrics)
        self.app.agent(self.events_topic, name="event-stage")(self._event_stage)
        self.app.agent(self.touches_topic, name="user-stage")(self._user_stage)
        self.app.agent(self.brand_topic, name="brand-stage")(self._brand_stage)
        self.app.agent(self.labels_topic, name="label-stage")(self._label_stage)
        self.app.agent(self.dead_topic, name="dead-letters")(self._dead_letters)
        self.app.timer(settings.tick_seconds)(self._tick)
        self.app.timer(settings.housekeep_seconds)(self._housekeep)
        self.app.timer(settings.checkpoint_seconds)(self._checkpoint)
        self.alive = Path(settings.data_dir) / ALIVE_FILE
        self.app.timer(ALIVE_SECONDS)(self._touch_alive)
        self.app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]

    def changelog_topics(self) -> list[str]:
        """The topics the tables are kept in: as many partitions as the topics they follow."""
        return [table.changelog_topic.get_topic_name() for table in self.tables.values()]

    def _raw_topic(self, *names: str) -> Any:
        """Topics carry the bytes the edge produced; the agents (de)serialize them."""
        return self.app.topic(
            *names,
            partitions=self.settings.partitions,
            key_serializer="raw",
            value_serializer="raw",
        )

    def _store(self, name: str) -> StateStore:
        source = (
            TOUCHES if name in USER_STAGE_STATE else BRAND if name in BRAND_STAGE_STATE else CLICKS
        )
        follows = self._states.get(CO_LOCATED.get(name, ""))
        state = self._states[name] = FaustState(self.tables[name], source, follows=follows)
        return state

    def _write_state(self) -> None:
        """Held state changes to the tables (and their changelogs), before any ack."""
        for state in self._states.values():
            state.flush()

    # -- agents --------------------------------------------------------------------------

    def _batches(self, stream: Any) -> Any:
        return stream.take_events(self.settings.batch_size, self.settings.batch_seconds)

    def _each(
        self, stage: str, batch: Sequence[Any], accepts: Any, handle: Callable[[Any, str], R]
    ) -> Iterator[tuple[R, str, int]]:
        """Each message of a batch read, checked and handled, with its source and offset;
        the caller's loop body runs while the message is still the current event (table
        partitions follow it). A message that is not a record the stage accepts is poison,
        one whose handling raises a processing error: both become dead letters and the
        stream goes on."""
        self.counts.took(stage, len(batch))
        for event in batch:
            _current_event.set(weakref.ref(event))
            src, offset = _origin(event)
            topic = event.message.topic
            try:
                record = deserialize(topic, event.value)
                if not isinstance(record, accepts):
                    raise ValueError(f"a {type(record).__name__} does not belong on {topic}")
            except ValueError as error:
                self._dead_letter(_poison(topic, error, event.value), src, offset, stage)
                continue
            try:
                result = handle(record, f"{src}@{offset}")
            except Exception as error:  # one bad record must not stop the stream
                log.exception("worker.processing_failed", src=src, offset=offset)
                self._dead_letter(_failed(topic, error, event.value), src, offset, stage)
                continue
            yield result, src, offset

    async def _event_stage(self, stream: Any) -> None:
        async for batch in self._batches(stream):
            forwards: list[Forwarded] = []
            brand: list[tuple[str, BrandInput]] = []
            # the partner verdicts share the last message's offset: its rows, one batch
            with self.sink.together():
                each = self._each("event", batch, EventStageInput, self.pipeline.on_event)
                for result, src, offset in each:
                    self._store_rows(result.stored, src, offset, "event")
                    forwards.extend(result.forwarded)
                    brand.extend(result.brand)
                if batch:
                    src, offset = _origin(batch[-1])
                    self._store_rows(self.pipeline.partner_verdicts(), src, offset, "timer")
            self.counts.sent("event", "user", forwards)
            self.counts.sent("event", "brand", [item for _, item in brand])
            self._write_state()
            await self._forward(forwards)
            await self._send(self.brand_topic, brand)
            await self._flush()

    async def _user_stage(self, stream: Any) -> None:
        async for batch in self._batches(stream):
            labels: list[tuple[str, BaseModel]] = []
            each = self._each("user", batch, Forwarded, self.pipeline.on_forwarded)
            for rows, src, offset in each:
                self._store_rows(rows, src, offset, "user")
                labels += [(str(row.click_id), row) for row in self.pipeline.labels_of(rows)]
            self.counts.sent("user", "label", [row for _, row in labels])
            self._write_state()
            await self._send(self.labels_topic, labels)
            await self._flush()

    async def _brand_stage(self, stream: Any) -> None:
        async for batch in self._batches(stream):
            self._brand_batches += 1
            for rows, src, offset in self._each("brand", batch, BrandInput, self.pipeline.on_brand):
                self._store_rows(rows, src, offset, "brand")
            self._write_state()
            await self._flush()

    async def _label_stage(self, stream: Any) -> None:
        async for batch in self._batches(stream):
            for rows, src, offset in self._each(
                "label", batch, AttributedConversion, self.pipeline.on_label
            ):
                self._store_rows(rows, src, offset, "label")
            self._write_state()
            await self._flush()

    async def _dead_letters(self, stream: Any) -> None:
        async for batch in stream.take_events(
            self.settings.batch_size, self.settings.batch_seconds
        ):
            self.counts.took("dead_letter", len(batch))
            for event in batch:
                src, offset = _origin(event)
                try:
                    letter = deserialize(DEAD_LETTERS, event.value)
                except ValueError as error:
                    letter = _poison(DEAD_LETTERS, error, event.value)
                self._dead_letter(letter, src, offset, "dead_letter")
            self._write_state()
            await self._flush()

    async def _tick(self) -> None:
        """Housekeeping on a timer, so waiting conversions settle even when traffic stops."""
        try:
            self.pipeline.refresh_clock()
            released = [*self.pipeline.tick(), *self.pipeline.tick_users()]
            quality = self.pipeline.learn_due()
        except Exception:  # housekeeping must never stop the worker
            log.exception("worker.tick_failed")
            return
        finally:
            self._write_state()
        self.counts.sent("timer", "user", released)
        self.counts.sent("timer", "store", quality)
        # snapshots by event time: the watermark orders them; one message, one add
        self.sink.add_all(quality, self._models_src, _millis(self.pipeline.watermark))
        final = self._conflicts_at_rest()
        await self._forward(released)
        if quality or final or self.alerts.finished:
            await self._flush()  # traffic may have paused: nothing else would write these

    def _conflicts_at_rest(self) -> list[BaseModel]:
        """When the brand stage read nothing since the last tick, its conflicts are written
        as they stand: a row otherwise keeps the counts of its last alert threshold until
        the next one. (A clean stop cannot do it: by then the tables read back empty.)
        A source of their own, its offsets the time, so each pause's rows land once."""
        if self._brand_batches != self._brand_batches_seen:
            self._brand_batches_seen = self._brand_batches
            return []
        try:
            final = self.pipeline.final_conflicts()
            self._write_state()
        except Exception:  # the rows keep their last threshold's counts until next time
            log.exception("worker.final_conflicts_failed")
            return []
        if final:
            source = f"at-rest:{self.settings.app_id}"
            self._store_rows(final, source, time.time_ns() // 1000, "timer")
        return final

    async def _on_shutdown(self, app: Any, *args: Any, **kwargs: Any) -> None:
        """Consumers are stopped: keep the models, give alerts under way a moment."""
        if self.metrics_server is not None:
            self.metrics_server.close()
        await self._checkpoint()
        await asyncio.get_running_loop().run_in_executor(None, self.alerts.close, 5.0)

    async def _checkpoint(self) -> None:
        """Serialized here, on the loop the agents learn on (a model pickled on another
        thread while an agent updates it is torn); only the file write leaves the loop."""
        data = dumps(*self.pipeline.learned_state())
        await asyncio.get_running_loop().run_in_executor(None, self.checkpoint.write, data)

    async def _touch_alive(self) -> None:
        """Proof that the event loop turns, for a healthcheck (docker-compose.yml)."""
        self.alive.parent.mkdir(parents=True, exist_ok=True)
        self.alive.touch()

    async def _housekeep(self) -> None:
        try:
            forgotten = self.pipeline.housekeep()
        except Exception:  # housekeeping must never stop the worker
            log.exception("worker.housekeeping_failed")
            return
        finally:
            self._write_state()
        clock = self.pipeline.clock
        log.info(
            "worker.housekeeping",
            forgotten=forgotten,
            watermark=clock.watermark.isoformat(),
            watermark_delay_seconds=round(clock.delay_seconds(), 3),
            late_events=clock.stats.late,
            early_events=clock.stats.early,
            inputs=clock.stats.inputs,
        )

    # -- plumbing ------------------------------------------------------------------------

    async def _serve_metrics(self) -> None:
        """``/metrics`` on a port of its own, on the worker's loop (started with it)."""
        port = self.settings.metrics_port or 0
        self.metrics_server = await serve(self.metrics, self.settings.metrics_host, port)
        bound = self.metrics_server.sockets[0].getsockname()
        log.info("worker.metrics", url=f"http://{bound[0]}:{bound[1]}/metrics")

    def _dead_letter(self, letter: BaseModel, src: str, offset: int, stage: str) -> None:
        self.counts.dead(getattr(letter, "reason", ""))
        self.counts.sent(stage, "store", [letter])
        self.sink.add(letter, src, offset)

    def _store_rows(
        self, records: Sequence[BaseModel], src: str, offset: int, stage: str = "timer"
    ) -> None:
        """Rows for ClickHouse; conflicts and partner verdicts also to the alerting.

        Every row of a message in this one call (or inside ``sink.together()``): another
        agent's flush runs on an executor thread meanwhile, and a message split between
        two of its inserts would lose the rows added after the first."""
        self.counts.sent(stage, "store", records)
        self.sink.add_all(records, src, offset)
        if not self._alert_keys_located:  # tables are recovered before the first batch
            self._alert_keys_located = True
            self._states[ALERT_STATE].locate()
        self.alerts.observe(records)

    async def _forward(self, records: Sequence[Forwarded]) -> None:
        """Send to the user stage and wait for the broker, before the batch is acked."""
        await self._send(self.touches_topic, [(user_key(r), r) for r in records])

    async def _send(self, topic: Any, keyed: Sequence[tuple[str, BaseModel]]) -> None:
        """Send to a next stage and wait for the broker, before the batch is acked."""
        pending = [await topic.send(key=key.encode(), value=serialize(r)) for key, r in keyed]
        if pending:
            await asyncio.gather(*pending)

    async def _flush(self) -> None:
        """Write buffered rows; while ClickHouse is down, wait (the batch stays unacked)."""
        for alert in self.alerts.take():
            self.sink.add(alert, *alert_source(alert))
        delay = 0.5
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with self._flushing:  # one insert at a time keeps each source in order
                    await loop.run_in_executor(None, self.sink.flush)
                return
            except StoreError as error:
                log.warning("worker.store_unavailable", error=str(error), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
