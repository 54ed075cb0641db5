"""The Faust runtime: the same :class:`Pipeline` as the embedded runner, on Kafka.

Two agents, as two keyed stages: the event stage consumes impressions, clicks
and conversions (keyed by click / impression id) and forwards touches and
resolved conversions to the touches topic keyed by user; the user stage
attributes. A third agent stores dead letters. Agents work in batches
(``take_events``) and write to ClickHouse before the batch is acknowledged, so
offsets are committed only for stored work; the sink drops rows a redelivered
message would write twice. Scale out with partitions and worker processes.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
import structlog
from faust.streams import _current_event
from pydantic import BaseModel

from clicktrail.bus.codec import deserialize, serialize
from clicktrail.bus.topics import (
    CLICKS,
    CONVERSIONS,
    DEAD_LETTERS,
    IMPRESSIONS,
    TOUCHES,
    user_key,
)
from clicktrail.config import Registry
from clicktrail.contracts import AnyEvent, DeadLetter, StateStore
from clicktrail.runtime.faust_state import FaustState
from clicktrail.runtime.pipeline import STATE_NAMES, USER_STAGE_STATE, Forwarded, Pipeline
from clicktrail.runtime.wiring import publish_report_settings
from clicktrail.sinks.clickhouse import ClickHouseSink
from clicktrail.sinks.store import StoreError

log = structlog.get_logger(__name__)


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

    def __post_init__(self) -> None:
        if self.partitions < 1 or self.batch_size < 1 or self.batch_seconds <= 0:
            raise ValueError("partitions and batch_size must be >= 1, batch_seconds > 0")


def default_table_store() -> str:
    """RocksDB (via rocksdict) keeps tables on local disk across restarts; else memory,
    which rebuilds from the changelog topics on start."""
    try:
        import rocksdict  # noqa: F401
    except ImportError:
        return "memory://"
    return "rocksdb://"


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
        )
        self.tables = {
            name: self.app.Table(name, default=None, partitions=settings.partitions)
            for name in STATE_NAMES
        }
        self._states: list[FaustState] = []
        self.pipeline = Pipeline(registry, stores=self._store)
        self.events_topic = self._raw_topic(IMPRESSIONS, CLICKS, CONVERSIONS)
        self.touches_topic = self._raw_topic(TOUCHES)
        self.dead_topic = self._raw_topic(DEAD_LETTERS)
        self._flushing = asyncio.Lock()
        self.app.agent(self.events_topic, name="event-stage")(self._event_stage)
        self.app.agent(self.touches_topic, name="user-stage")(self._user_stage)
        self.app.agent(self.dead_topic, name="dead-letters")(self._dead_letters)
        self.app.timer(settings.tick_seconds)(self._tick)
        self.app.timer(settings.housekeep_seconds)(self._housekeep)

    def _raw_topic(self, *names: str) -> Any:
        """Topics carry the bytes the edge produced; the agents (de)serialize them."""
        return self.app.topic(
            *names,
            partitions=self.settings.partitions,
            key_serializer="raw",
            value_serializer="raw",
        )

    def _store(self, name: str) -> StateStore:
        source = TOUCHES if name in USER_STAGE_STATE else CLICKS
        state = FaustState(self.tables[name], source)
        self._states.append(state)
        return state

    def _write_state(self) -> None:
        """Held state changes to the tables (and their changelogs), before any ack."""
        for state in self._states:
            state.flush()

    # -- agents --------------------------------------------------------------------------

    async def _event_stage(self, stream: Any) -> None:
        async for batch in stream.take_events(
            self.settings.batch_size, self.settings.batch_seconds
        ):
            forwards: list[Forwarded] = []
            for event in batch:
                _current_event.set(weakref.ref(event))
                src, offset = _origin(event)
                try:
                    record: AnyEvent = deserialize(event.message.topic, event.value)  # type: ignore[assignment]
                except ValueError as error:
                    self.sink.add(_poison(event.message.topic, error, event.value), src, offset)
                    continue
                try:
                    result = self.pipeline.on_event(record, f"{src}@{offset}")
                except Exception as error:  # one bad record must not stop the stream
                    log.exception("worker.processing_failed", src=src, offset=offset)
                    self.sink.add(_failed(event.message.topic, error, event.value), src, offset)
                    continue
                self.sink.add_all(result.stored, src, offset)
                forwards.extend(result.forwarded)
            if batch:
                src, offset = _origin(batch[-1])
                self.sink.add_all(self.pipeline.partner_verdicts(), src, offset)
            self._write_state()
            await self._forward(forwards)
            await self._flush()

    async def _user_stage(self, stream: Any) -> None:
        async for batch in stream.take_events(
            self.settings.batch_size, self.settings.batch_seconds
        ):
            for event in batch:
                _current_event.set(weakref.ref(event))
                src, offset = _origin(event)
                try:
                    record = deserialize(TOUCHES, event.value)
                except ValueError as error:
                    self.sink.add(_poison(TOUCHES, error, event.value), src, offset)
                    continue
                try:
                    rows: list[BaseModel] = self.pipeline.on_forwarded(
                        record,  # type: ignore[arg-type]
                        f"{src}@{offset}",
                    )
                except Exception as error:  # one bad record must not stop the stream
                    log.exception("worker.processing_failed", src=src, offset=offset)
                    self.sink.add(_failed(TOUCHES, error, event.value), src, offset)
                    continue
                self.sink.add_all(rows, src, offset)
            self._write_state()
            await self._flush()

    async def _dead_letters(self, stream: Any) -> None:
        async for batch in stream.take_events(
            self.settings.batch_size, self.settings.batch_seconds
        ):
            for event in batch:
                src, offset = _origin(event)
                try:
                    letter = deserialize(DEAD_LETTERS, event.value)
                except ValueError as error:
                    letter = _poison(DEAD_LETTERS, error, event.value)
                self.sink.add(letter, src, offset)
            self._write_state()
            await self._flush()

    async def _tick(self) -> None:
        """Housekeeping on a timer, so waiting conversions settle even when traffic stops."""
        try:
            released = [*self.pipeline.tick(), *self.pipeline.tick_users()]
        except Exception:  # housekeeping must never stop the worker
            log.exception("worker.tick_failed")
            return
        finally:
            self._write_state()
        await self._forward(released)

    async def _housekeep(self) -> None:
        try:
            forgotten = self.pipeline.housekeep()
        except Exception:  # housekeeping must never stop the worker
            log.exception("worker.housekeeping_failed")
            return
        finally:
            self._write_state()
        log.info("worker.housekeeping", forgotten=forgotten)

    # -- plumbing ------------------------------------------------------------------------

    async def _forward(self, records: Sequence[Forwarded]) -> None:
        """Send to the user stage and wait for the broker, before the batch is acked."""
        pending = [
            await self.touches_topic.send(key=user_key(r).encode(), value=serialize(r))
            for r in records
        ]
        if pending:
            await asyncio.gather(*pending)

    async def _flush(self) -> None:
        """Write buffered rows; while ClickHouse is down, wait (the batch stays unacked)."""
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
