"""The edge's Kafka producer (records in, batches out, spool when the broker is away).

The producer is aiokafka's (measured faster than kafka-python's for this load:
see ``clicktrail.bench.edge.producer_throughput``), driven through its batch
API: ``publish`` only appends to a queue, and a task on the same event loop
serializes, partitions (murmur2, like the Java client and Faust) and ships
record batches every few milliseconds. When the broker is unreachable or
slow, accepted records go to the :class:`~clicktrail.bus.spool.Spool`
instead and are replayed in order once it answers. kafka-python is used for
administration only (:mod:`clicktrail.bus.admin`).

``await durable()`` is what an acknowledgement waits for: every record published
before the call is then acked by the broker (``acks=all``) or written to the
spool and synced. Callers arriving together share one pump round, one broker
round trip and one fsync (group commit). A record whose batch has waited
``spool_after_s`` for the broker is spooled and synced without waiting any longer,
so an acknowledgement never waits much more than that for a slow or absent broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import structlog
from pydantic import BaseModel

from clicktrail.bus.codec import serialize
from clicktrail.bus.partitioner import partition_for
from clicktrail.bus.spool import Spool, SpoolPosition, SpoolRecord

log = structlog.get_logger(__name__)


def best_compression() -> str:
    """lz4 when its codec is installed (cheapest per byte of CPU), then zstd, else gzip."""
    from aiokafka.codec import has_lz4, has_zstd

    if has_lz4():
        return "lz4"
    if has_zstd():
        return "zstd"
    return "gzip"


# ---------------------------------------------------------------- producer

Mode = Literal["direct", "spooling"]


@dataclass(eq=False, slots=True)
class _Round:
    """Records taken from the queue together (a contiguous run of publishes): durable
    once each is acked by the broker or spooled and synced."""

    end: int
    """Publish number of its last record."""
    left: int
    """Its records not yet durable."""


Entry = tuple[bytes | None, bytes, float, _Round]  # key, value, time accepted, round
Item = tuple[str, str, BaseModel, float]  # topic, key, record, time accepted
_E = TypeVar("_E", bound=tuple[Any, ...])
LatencyObserver = Callable[[float, int], None]
DISPATCH_ROUND = 1024  # records serialized and handed over per pump round
DELIVERY_ROUNDS = 5  # tries of one spool chunk before the replayer backs off
RESTART_AFTER = 3  # failed chunks in a row before the Kafka client is replaced


@dataclass(frozen=True)
class KafkaSettings:
    """Producer tuning; the defaults suit an edge that must never wait for the broker."""

    bootstrap: str
    client_id: str = "clicktrail-edge"
    compression: str | None = None
    linger_ms: float = 5.0
    max_batch_bytes: int = 1 << 20
    request_timeout_ms: int = 30_000
    spool_after_s: float = 1.0
    """A record whose batch the broker has not acked this long is spooled (and synced,
    for an acknowledgement waiting on it), and so are new records until the spool is
    replayed: the most an acknowledgement waits for a slow or absent broker."""
    replay_chunk: int = 5_000
    retry_backoff_s: float = 0.5
    max_backoff_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.bootstrap.strip():
            raise ValueError("bootstrap must name at least one broker (host:port)")
        if self.compression not in (None, "gzip", "lz4", "zstd", "snappy"):
            raise ValueError(f"unsupported compression {self.compression!r}")
        if self.linger_ms <= 0 or self.spool_after_s <= 0 or self.retry_backoff_s <= 0:
            raise ValueError("linger_ms, spool_after_s and retry_backoff_s must be positive")
        if self.replay_chunk < 1 or self.max_batch_bytes < 256 << 10:
            raise ValueError("replay_chunk must be >= 1 and max_batch_bytes >= 256 KiB")


@dataclass
class BusCounters:
    delivered: int = 0
    spooled: int = 0
    replayed: int = 0
    failed_batches: int = 0
    spooled_in_flight: int = 0
    """Spooled while their batch waited for the broker's answer (see ``_spool_overdue``)."""
    landed_anyway: int = 0
    """Of those, acked by the broker after all: skipped by the replay."""


class KafkaBus:
    """A :class:`~clicktrail.bus.base.Producer` that ships to Kafka or, failing that, the spool.

    Lives on one asyncio loop: ``await start()`` there, ``publish`` from it,
    ``await close()`` on the way out. Records delivered directly are acked by
    the broker (``acks=all``, idempotent producer, so retries after a broker
    restart are not written twice); records that met a failed or slow broker
    are spooled and replayed in spool order.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        spool: Spool,
        *,
        on_delivered: LatencyObserver | None = None,
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.counters = BusCounters()
        self.mode: Mode = "spooling" if spool.depth else "direct"
        self._compression = settings.compression or best_compression()
        self._observe = on_delivered
        self._pending: deque[Item] = deque()
        self._inflight: dict[asyncio.Future[Any], tuple[float, str, list[Entry]]] = {}
        self._producer: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._dispatching = 0  # records taken from the queue, not yet handed over or spooled
        # durability: publishes are numbered; a round is a run of them taken together
        self._published = 0
        self._taken = 0
        self._durable = 0  # every record up to this number is acked or spooled and synced
        self._rounds: deque[_Round] = deque()
        self._unsynced: dict[_Round, int] = {}  # spooled, not yet synced by us
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._doubtful: set[asyncio.Future[Any]] = set()
        """In-flight batches spooled because the broker was slow: they may still land."""
        self._landed_twice: Counter[tuple[str, bytes, bytes]] = Counter()
        """Spooled records whose batch was acked after all: the replay skips them."""
        self._synced_at = time.monotonic()

    # ------------------------------------------------------------ interface

    def observe(self, observer: LatencyObserver) -> None:
        """Call ``observer(seconds, records)`` when a batch is acknowledged."""
        self._observe = observer

    def publish(self, topic: str, key: str, record: BaseModel) -> None:
        self._pending.append((topic, key, record, time.monotonic()))
        self._published += 1

    async def durable(self) -> None:
        """Return once every record published before the call is acked by the broker or
        appended to the spool and synced. Concurrent callers share the pump's next round
        (one send per partition, one fsync); a broker slower than ``spool_after_s``
        has the records spooled instead, so this waits about that long at most."""
        target = self._published
        if self._durable >= target:
            return
        if self.spool.closed:  # closed: whatever was not acked is on disk
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        await future

    def flush(self) -> None:
        """Put everything not yet handed to the Kafka client into the spool, on disk."""
        self._spool_pending()
        self._sync_spool()

    @property
    def pending(self) -> int:
        """Records accepted and not yet acknowledged by the broker or spooled."""
        in_flight = sum(len(m) for _, _, m in self._inflight.values())
        return len(self._pending) + self._dispatching + in_flight

    async def start(self) -> None:
        if not await self._connect():
            self._enter_spooling("broker unreachable at start")
        self._tasks = [
            asyncio.create_task(self._pump(), name="kafka-bus-pump"),
            asyncio.create_task(self._replayer(), name="kafka-bus-replay"),
        ]

    async def reachable(self, timeout: float = 2.0) -> bool:
        """Does a broker answer a metadata request right now?"""
        if self._producer is None:
            return False
        try:
            metadata = await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout)
        except Exception:
            return False
        return bool(metadata.brokers())

    async def drain(self, timeout: float) -> bool:
        """Wait until every accepted record is acknowledged by the broker (True) or time is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pending and not self.spool.depth:
                return True
            await asyncio.sleep(0.02)
        return False

    async def close(self, timeout: float = 10.0) -> None:
        """Ship or spool everything, then stop: what the broker has not acked is on disk."""
        if self._closing:
            return
        deadline = time.monotonic() + timeout
        self._closing = True
        pump, replayer = self._tasks or (None, None)
        if pump is not None:
            # the pump ends after its current round; every wait in a round is bounded
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(pump, max(0.1, deadline - time.monotonic()))
        await self._dispatch()
        if replayer is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(replayer, max(0.1, deadline - time.monotonic()))
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=max(0.1, deadline - time.monotonic()))
        for future, (_, topic, entries) in list(self._inflight.items()):
            if future not in self._doubtful:  # those are in the spool already
                self._spool_entries(topic, entries)
        self._inflight.clear()
        self._doubtful.clear()
        self._spool_pending()
        self._sync_spool()
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), 2.0)
        self.spool.close()
        self._release_waiters()
        log.info("kafka_bus.closed", spooled_left=self.spool.depth, **vars(self.counters))

    # ----------------------------------------------------------- connection

    async def _connect(self) -> bool:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap,
            client_id=self.settings.client_id,
            acks="all",
            enable_idempotence=True,
            compression_type=self._compression,
            # the pump lingers already: a batch handed over is whole, and an acknowledgement
            # waits on it (a client linger added 5 ms to every durable())
            linger_ms=0,
            max_batch_size=self.settings.max_batch_bytes,
            max_request_size=max(4 << 20, self.settings.max_batch_bytes),
            request_timeout_ms=self.settings.request_timeout_ms,
            retry_backoff_ms=200,
        )
        try:
            await asyncio.wait_for(producer.start(), self.settings.request_timeout_ms / 1000)
        except Exception as error:
            log.warning("kafka_bus.connect_failed", error=repr(error))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 2.0)
            return False
        self._producer = producer
        log.info("kafka_bus.connected", bootstrap=self.settings.bootstrap)
        return True

    async def _partitions(self, topic: str) -> list[int]:
        known = self._producer.client.cluster.partitions_for_topic(topic)
        if not known:
            known = await asyncio.wait_for(
                self._producer.partitions_for(topic), self.settings.spool_after_s
            )
        return sorted(known)

    # ------------------------------------------------------------- shipping

    async def _pump(self) -> None:
        linger = self.settings.linger_ms / 1000
        while not self._closing:
            # a full round is shipped without waiting: rounds stay short so requests interleave
            await asyncio.sleep(0 if len(self._pending) >= DISPATCH_ROUND else linger)
            try:
                await self._dispatch()
                self._check_slow()
                self._maybe_sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kafka_bus.pump_failed")

    async def _dispatch(self) -> None:
        if not self._pending:
            return
        if len(self._pending) <= DISPATCH_ROUND or self._closing:
            items, self._pending = self._pending, deque()
        else:
            take = self._pending.popleft
            items = deque(take() for _ in range(DISPATCH_ROUND))
        round_ = self._take(len(items))
        if self.mode == "spooling" or self._producer is None:
            self._spool_items(items, round_)
            return
        self._dispatching += len(items)
        try:
            await self._dispatch_direct(items, round_)
        finally:
            self._dispatching = 0

    async def _dispatch_direct(self, items: deque[Item], round_: _Round) -> None:
        by_topic: dict[str, list[Entry]] = {}
        for topic, key, record, accepted in items:
            by_topic.setdefault(topic, []).append(
                (key.encode() if key else None, serialize(record), accepted, round_)
            )
        for topic, entries in by_topic.items():
            if self.mode == "spooling":
                self._spool_entries(topic, entries)
                self._dispatching -= len(entries)
                continue
            try:
                partitions = await self._partitions(topic)
            except Exception as error:
                self._enter_spooling(f"no metadata for {topic}: {error!r}")
                self._spool_entries(topic, entries)
                self._dispatching -= len(entries)
                continue
            for partition, group in self._by_partition(entries, partitions).items():
                await self._ship(topic, partition, group)

    def _by_partition(self, entries: list[Entry], partitions: list[int]) -> dict[int, list[Entry]]:
        groups: dict[int, list[Entry]] = {}
        for entry in entries:
            groups.setdefault(partition_for(entry[0], partitions), []).append(entry)
        return groups

    async def _ship(self, topic: str, partition: int, entries: list[Entry]) -> None:
        """Direct path: hand batches to the client; a refusal or a wait spools them."""
        for batch, members in self._batches(entries):
            if self.mode == "spooling":
                self._spool_entries(topic, members)
                self._dispatching -= len(members)
                continue
            try:
                future = await asyncio.wait_for(
                    self._producer.send_batch(batch, topic, partition=partition),
                    self.settings.spool_after_s,
                )
            except Exception as error:
                self._enter_spooling(f"send to {topic}[{partition}] failed: {error!r}")
                self._spool_entries(topic, members)
                self._dispatching -= len(members)
                continue
            self._inflight[future] = (time.monotonic(), topic, members)
            self._dispatching -= len(members)
            future.add_done_callback(self._on_batch_done)

    def _batches(self, entries: list[_E]) -> Iterable[tuple[Any, list[_E]]]:
        """Record batches for one partition; entries are ``(key, value, tag, ...)`` tuples."""
        batch = self._producer.create_batch()
        members: list[_E] = []
        for entry in entries:
            if batch.append(key=entry[0], value=entry[1], timestamp=None) is None:
                if members:
                    yield batch, members
                batch, members = self._producer.create_batch(), []
                if batch.append(key=entry[0], value=entry[1], timestamp=None) is None:
                    log.error("kafka_bus.record_too_large", size=len(entry[1]))
                    continue
            members.append(entry)
        if members:
            yield batch, members

    def _on_batch_done(self, future: asyncio.Future[Any]) -> None:
        item = self._inflight.pop(future, None)
        if item is None:
            return
        _, topic, members = item
        failed = future.cancelled() or future.exception() is not None
        if future in self._doubtful:  # spooled already: a failure changes nothing
            self._doubtful.discard(future)
            if not failed:
                self._landed_twice.update((topic, key or b"", value) for key, value, *_ in members)
                self.counters.landed_anyway += len(members)
            return
        if failed:
            self.counters.failed_batches += 1
            error = "cancelled" if future.cancelled() else repr(future.exception())
            self._enter_spooling(f"batch to {topic} failed: {error}")
            self._spool_entries(topic, members)
            return
        self.counters.delivered += len(members)
        for round_, count in Counter(member[3] for member in members).items():
            self._settle(round_, count)
        if self._observe is not None:
            now = time.monotonic()
            self._observe(now - members[0][2], len(members))

    def _check_slow(self) -> None:
        """Spool new records when the broker (or this process) falls behind by spool_after_s,
        and the batches that waited that long for their ack."""
        now = time.monotonic()
        limit = self.settings.spool_after_s
        if self._inflight:
            self._spool_overdue(now - limit)
        if self.mode == "spooling":
            return
        if self._pending and now - self._pending[0][3] > limit:
            self._enter_spooling("records wait longer than spool_after_s to be shipped")
            return
        if self._inflight:
            oldest = min(started for started, _, _ in self._inflight.values())
            if now - oldest > limit:
                self._enter_spooling("broker slower than spool_after_s")

    def _spool_overdue(self, before: float) -> None:
        """Batches still unacked after ``spool_after_s`` are spooled too, so nothing waits on
        the broker longer than that. They may still land: the replay waits for their
        outcome and skips those that did (see :meth:`_replayer`)."""
        overdue = 0
        for future, (started, topic, members) in list(self._inflight.items()):
            if started < before and future not in self._doubtful and not future.done():
                self._doubtful.add(future)
                self._spool_entries(topic, members)
                overdue += len(members)
        if overdue:
            self.counters.spooled_in_flight += overdue
            log.warning("kafka_bus.spooled_in_flight", records=overdue)

    def _enter_spooling(self, reason: str) -> None:
        if self.mode != "spooling":
            log.warning("kafka_bus.spooling", reason=reason)
        self.mode = "spooling"

    # -------------------------------------------------------------- spooling

    def _spool_items(self, items: deque[Item], round_: _Round) -> None:
        for topic, key, record, _ in items:
            self.spool.append(topic, key.encode(), serialize(record))
        self.counters.spooled += len(items)
        self._unsynced[round_] = self._unsynced.get(round_, 0) + len(items)

    def _spool_entries(self, topic: str, entries: list[Entry]) -> None:
        for key, value, _, round_ in entries:
            self.spool.append(topic, key or b"", value)
            self._unsynced[round_] = self._unsynced.get(round_, 0) + 1
        self.counters.spooled += len(entries)

    def _spool_pending(self) -> None:
        items, self._pending = self._pending, deque()
        if items:
            self._spool_items(items, self._take(len(items)))

    # ------------------------------------------------------------ durability

    def _take(self, count: int) -> _Round:
        """The next ``count`` publishes leave the queue together."""
        self._taken += count
        round_ = _Round(end=self._taken, left=count)
        self._rounds.append(round_)
        return round_

    def _settle(self, round_: _Round, count: int) -> None:
        """``count`` records of the round are durable; wake who waited for them."""
        round_.left -= count
        while self._rounds and self._rounds[0].left <= 0:
            self._durable = self._rounds.popleft().end
        self._release_waiters()

    def _release_waiters(self) -> None:
        durable = self._published if self.spool.closed else self._durable
        while self._waiters and self._waiters[0][0] <= durable:
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)

    def _sync_spool(self) -> None:
        """Sync the spool (one fsync for every record appended so far) and settle them."""
        if self.spool.closed:
            return
        self.spool.sync()
        self._synced_at = time.monotonic()
        unsynced, self._unsynced = self._unsynced, {}
        for round_, count in unsynced.items():
            self._settle(round_, count)

    def _maybe_sync(self) -> None:
        """Once per pump round: at once when someone waits on spooled records (group
        commit), else on the spool's fsync interval, so a quiet tail gets synced too."""
        if self._unsynced:
            waited = bool(self._waiters)
            if waited or time.monotonic() - self._synced_at >= self.spool.fsync_interval:
                self._sync_spool()
        else:
            self.spool.maybe_sync()

    async def _replayer(self) -> None:
        """While spooling: deliver the spool in order, then go back to direct shipping.

        A chunk is committed once every record in it is acked; records acked before
        a failure are not sent again while this process lives.
        """
        backoff = self.settings.retry_backoff_s
        failures = 0
        chunk: tuple[list[SpoolRecord], SpoolPosition, list[int]] | None = None
        while not self._closing:
            if self.mode != "spooling":
                await asyncio.sleep(0.05)
                continue
            if self._producer is None and not await self._connect():
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff_s)
                continue
            await self._dispatch()
            if chunk is None:
                if self._doubtful:
                    await self._await_doubtful()
                    continue
                records, end = self.spool.read(self.settings.replay_chunk)
                if not records:
                    self.mode = "direct"
                    log.info("kafka_bus.direct", replayed=self.counters.replayed)
                    continue
                chunk = (records, end, self._not_landed(records))
            records, end, remaining = chunk
            failed = await self._deliver(records, remaining)
            if not failed:
                self.spool.commit(end, len(records))
                self.counters.replayed += len(records)
                chunk = None
                backoff = self.settings.retry_backoff_s
                failures = 0
                continue
            chunk = (records, end, failed)
            failures += 1
            if failures % RESTART_AFTER == 0 and not self._closing:
                await self._restart_producer()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.settings.max_backoff_s)

    async def _await_doubtful(self) -> None:
        """Spooled batches still in flight: a replay now could write them twice, so it waits
        for their outcome. A client that never gives one (past ``request_timeout_ms``) is
        replaced, and their records are replayed (at least once, as after a crash)."""
        started = min(
            (self._inflight[f][0] for f in self._doubtful if f in self._inflight),
            default=0.0,
        )
        if time.monotonic() - started < self.settings.request_timeout_ms / 1000:
            await asyncio.sleep(0.02)
            return
        log.warning("kafka_bus.spooled_batches_unresolved", batches=len(self._doubtful))
        for future in self._doubtful:
            self._inflight.pop(future, None)
        self._doubtful.clear()
        await self._restart_producer()

    def _not_landed(self, records: list[SpoolRecord]) -> list[int]:
        """Indices of spooled records to deliver: not those a late ack already landed."""
        indices = []
        for index, record in enumerate(records):
            landed = (record.topic, record.key, record.value)
            if self._landed_twice[landed] > 0:
                self._landed_twice[landed] -= 1
                if not self._landed_twice[landed]:
                    del self._landed_twice[landed]
                continue
            indices.append(index)
        return indices

    async def _restart_producer(self) -> None:
        """A client that keeps failing (e.g. its idempotence state broke) is replaced."""
        old, self._producer = self._producer, None
        log.warning("kafka_bus.restarting_producer")
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.stop(), 2.0)

    async def _deliver(self, records: list[SpoolRecord], indices: list[int]) -> list[int]:
        """A few rounds of sending the given records; returns those still not acked."""
        remaining = indices
        backoff = self.settings.retry_backoff_s
        for _ in range(DELIVERY_ROUNDS):
            remaining = await self._deliver_once(records, remaining)
            if not remaining or self._closing:
                break
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.settings.max_backoff_s)
        return remaining

    async def _deliver_once(self, records: list[SpoolRecord], indices: list[int]) -> list[int]:
        by_topic: dict[str, list[int]] = {}
        for index in indices:
            by_topic.setdefault(records[index].topic, []).append(index)
        waiting: list[tuple[asyncio.Future[Any], list[int]]] = []
        failed: list[int] = []
        for topic, members in by_topic.items():
            try:
                partitions = await self._partitions(topic)
            except Exception:
                failed.extend(members)
                continue
            groups: dict[int, list[int]] = {}
            for index in members:
                key = records[index].key or None
                groups.setdefault(partition_for(key, partitions), []).append(index)
            for partition, group in groups.items():
                entries = [(records[i].key or None, records[i].value, i) for i in group]
                for batch, sent in self._batches(entries):
                    chunk = [i for _, _, i in sent]
                    try:
                        future = await asyncio.wait_for(
                            self._producer.send_batch(batch, topic, partition=partition),
                            self.settings.request_timeout_ms / 1000,
                        )
                    except Exception:
                        failed.extend(chunk)
                        continue
                    waiting.append((future, chunk))
        results = await asyncio.gather(*(f for f, _ in waiting), return_exceptions=True)
        for result, (_, chunk) in zip(results, waiting, strict=True):
            if isinstance(result, BaseException):
                failed.extend(chunk)
        return sorted(failed)
