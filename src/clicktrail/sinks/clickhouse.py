"""Batched, exactly-once writes of records to their ClickHouse tables.

``add`` only buffers; ``flush`` writes one insert per table. Every row carries
the message that produced it (``src``, ``src_offset``). Inserts are atomic and
a source's messages are processed in order, so the highest offset stored per
(table, src) tells what is already written: after a crash, redelivered
messages produce rows at or below it, and those are dropped here. A batch
stays buffered until ClickHouse acknowledges it and carries a deduplication
token, so a retried insert is not counted twice either. When the buffer
outgrows ``max_buffered`` the sink raises :class:`SinkBackpressure`.

That bookkeeping holds only if every insert carries each of its messages whole: a
message split over two inserts has its later rows dropped as "already stored" once
the first insert raised the mark (and, after a crash between the two, on replay).
So a message is added in one :meth:`ClickHouseSink.add_all` call (or several inside
:meth:`ClickHouseSink.together`), and adds and the buffer swap of
:meth:`ClickHouseSink.flush` hold one lock: the Faust worker flushes on an executor
thread while its agents go on adding on the event loop. The insert itself runs
outside that lock, so adding never waits for ClickHouse.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from pydantic import BaseModel

from clicktrail.contracts import SinkBackpressure
from clicktrail.sinks.rows import TABLE_FOR_TYPE, TableShape, describe
from clicktrail.sinks.store import Store
from clicktrail.telemetry import Histogram

log = structlog.get_logger(__name__)

INSERT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BACKLOG_SECONDS = 10.0
"""How long rows may wait for a full batch while a backlog is read."""


def dedup_token(table: str, rows: list[tuple[Any, ...]], src_index: int, offset_index: int) -> str:
    """Same messages, same token: ClickHouse drops a retried insert of the same batch."""
    digest = hashlib.blake2b(table.encode(), digest_size=16)
    for row in rows:
        digest.update(f"{row[src_index]}@{row[offset_index]}\0".encode())
    return digest.hexdigest()


class ClickHouseSink:
    """Buffer records per table and insert them in large, time-bounded batches."""

    def __init__(
        self,
        store: Store,
        *,
        max_rows: int = 10_000,
        max_seconds: float = 1.0,
        max_buffered: int = 500_000,
        max_backlog_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_rows < 1 or max_seconds <= 0 or max_buffered < max_rows:
            raise ValueError("need max_rows >= 1, max_seconds > 0, max_buffered >= max_rows")
        if max_backlog_seconds is None:
            max_backlog_seconds = max(BACKLOG_SECONDS, max_seconds)
        if max_backlog_seconds < max_seconds:
            raise ValueError("need max_backlog_seconds >= max_seconds")
        self.store = store
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.max_backlog_seconds = max_backlog_seconds
        self.max_buffered = max_buffered
        self.clock = clock
        self._shapes: dict[str, TableShape] = {}
        self._batches: dict[str, list[tuple[Any, ...]]] = {}
        self._written: dict[tuple[str, str], int] = {}  # (table, src) -> highest offset stored
        self._oldest: float | None = None
        self._lock = threading.RLock()  # the buffer and the marks: adds vs. a flush's swap
        self._flushing = threading.Lock()  # one flush at a time: each source's inserts in order
        self.written: Counter[str] = Counter()  # rows inserted, per table
        self.skipped: Counter[str] = Counter()  # rows already stored, per table
        self.insert_seconds = Histogram(INSERT_BUCKETS)
        self.insert_failures = 0

    @property
    def rows_written(self) -> int:
        return self.written.total()

    @property
    def rows_skipped(self) -> int:
        return self.skipped.total()

    @property
    def buffered(self) -> int:
        with self._lock:
            return sum(len(rows) for rows in self._batches.values())

    def _shape(self, table: str, record: BaseModel) -> TableShape:
        shape = self._shapes.get(table)
        if shape is None:
            shape = describe(self.store, table, set(type(record).model_fields))
            self._shapes[table] = shape
        return shape

    def _high_water(self, table: str, src: str) -> int:
        key = (table, src)
        high = self._written.get(key)
        if high is None:
            rows = self.store.rows(
                f"SELECT max(src_offset), count() FROM {self.store.database}.{table} "
                "WHERE src = {src:String}",
                {"src": src},
            )
            high = self._written[key] = int(rows[0][0]) if rows and rows[0][1] else -1
        return high

    def add(self, record: BaseModel, src: str, offset: int) -> bool:
        """Buffer the one row produced by message ``src@offset``; False if it is already
        stored. A message with several rows goes through :meth:`add_all`."""
        return self.add_all((record,), src, offset) == 1

    def add_all(self, records: Iterable[BaseModel], src: str, offset: int) -> int:
        """Buffer every row produced by message ``src@offset``, all in the same batch;
        returns how many were not already stored. Raises :class:`SinkBackpressure`
        before buffering any of them when the buffer is full, so a message is never
        half in it."""
        with self._lock:
            rows: list[tuple[str, tuple[Any, ...]]] = []
            for record in records:
                table = TABLE_FOR_TYPE[getattr(record, "type", "")]
                if offset <= self._high_water(table, src):
                    self.skipped[table] += 1
                    continue
                rows.append((table, self._shape(table, record).row(record, src, offset)))
            if not rows:
                return 0
            if self.buffered >= self.max_buffered:
                raise SinkBackpressure(f"{self.buffered} rows waiting for ClickHouse")
            for table, row in rows:
                self._batches.setdefault(table, []).append(row)
            if self._oldest is None:
                self._oldest = self.clock()
            return len(rows)

    @contextmanager
    def together(self) -> Iterator[None]:
        """Every add inside lands in the same batch: for a message whose rows are added
        in more than one call. No flush takes the buffer meanwhile, so keep it short
        and never wait inside it for anything a flush holds."""
        with self._lock:
            yield

    def due(self, *, idle: bool = True) -> bool:
        """True when a batch is big enough or old enough to write.

        Under a backlog (``idle`` False: more input is already waiting) batches are written
        by size, and by time only past ``max_backlog_seconds``: the slower the pipeline, the
        smaller time-bound inserts get, and small inserts were a quarter of a replay's time."""
        with self._lock:
            if self._oldest is None:
                return False
            age = self.clock() - self._oldest
            if age >= (self.max_seconds if idle else self.max_backlog_seconds):
                return True
            return any(len(rows) >= self.max_rows for rows in self._batches.values())

    def flush(self) -> int:
        """Write every buffered batch, one insert per table; a failed table keeps its rows.

        Safe beside adds from another thread: the batches are taken out under the lock
        adds hold, so they carry whole messages, and rows added meanwhile wait for the
        next flush. Flushes are serialized, so a source's inserts stay in order. A mark
        is raised only after its insert, to offsets that insert carried.
        """
        with self._flushing:
            with self._lock:
                batches, self._batches = self._batches, {}
                self._oldest = None
            written = 0
            try:
                for table in list(batches):
                    rows = batches[table]
                    shape = self._shapes[table]
                    src_index = shape.columns.index("src")
                    offset_index = shape.columns.index("src_offset")
                    token = dedup_token(table, rows, src_index, offset_index)
                    started = time.perf_counter()
                    try:
                        self.store.insert(table, rows, shape.columns, token)
                    except Exception:
                        self.insert_failures += 1
                        raise
                    self.insert_seconds.observe(time.perf_counter() - started)
                    with self._lock:
                        self.written[table] += len(rows)
                        for row in rows:
                            key = (table, row[src_index])
                            if row[offset_index] > self._written.get(key, -1):
                                self._written[key] = row[offset_index]
                    written += len(rows)
                    del batches[table]
            finally:
                with self._lock:
                    for table, rows in batches.items():  # not written: before newer rows
                        self._batches[table] = rows + self._batches.get(table, [])
                    if self._batches and self._oldest is None:
                        self._oldest = self.clock()
        if written:
            log.debug("sink.flushed", rows=written)
        return written
