"""Batched, exactly-once writes of records to their ClickHouse tables.

``add`` only buffers; ``flush`` writes one insert per table. Every row carries
the message that produced it (``src``, ``src_offset``). Inserts are atomic and
a source's messages are processed in order, so the highest offset stored per
(table, src) tells what is already written: after a crash, redelivered
messages produce rows at or below it, and those are dropped here. A batch
stays buffered until ClickHouse acknowledges it and carries a deduplication
token, so a retried insert is not counted twice either. When the buffer
outgrows ``max_buffered`` the sink raises :class:`SinkBackpressure`.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
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
        self.rows_written = 0
        self.rows_skipped = 0
        self.written: Counter[str] = Counter()  # rows inserted, per table
        self.skipped: Counter[str] = Counter()  # rows already stored, per table
        self.insert_seconds = Histogram(INSERT_BUCKETS)
        self.insert_failures = 0

    @property
    def buffered(self) -> int:
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
        """Buffer a row produced by message ``src@offset``; False if it is already stored."""
        table = TABLE_FOR_TYPE[getattr(record, "type", "")]
        if offset <= self._high_water(table, src):
            self.rows_skipped += 1
            self.skipped[table] += 1
            return False
        if self.buffered >= self.max_buffered:
            raise SinkBackpressure(f"{self.buffered} rows waiting for ClickHouse")
        self._batches.setdefault(table, []).append(
            self._shape(table, record).row(record, src, offset)
        )
        if self._oldest is None:
            self._oldest = self.clock()
        return True

    def add_all(self, records: Iterable[BaseModel], src: str, offset: int) -> None:
        for record in records:
            self.add(record, src, offset)

    def due(self, *, idle: bool = True) -> bool:
        """True when a batch is big enough or old enough to write.

        Under a backlog (``idle`` False: more input is already waiting) batches are written
        by size, and by time only past ``max_backlog_seconds``: the slower the pipeline, the
        smaller time-bound inserts get, and small inserts were a quarter of a replay's time."""
        if self._oldest is None:
            return False
        age = self.clock() - self._oldest
        if age >= (self.max_seconds if idle else self.max_backlog_seconds):
            return True
        return any(len(rows) >= self.max_rows for rows in self._batches.values())

    def flush(self) -> int:
        """Write every buffered batch, one insert per table; a failed table keeps its rows.

        Call it between messages, never in the middle of one: all rows of a message
        must land in the same insert for the offset bookkeeping to hold. Batches are
        taken out first, so rows added meanwhile (from another thread's loop) wait for
        the next flush; callers serialize flushes so a source's inserts stay in order.
        """
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
                self.written[table] += len(rows)
                for row in rows:
                    key = (table, row[src_index])
                    if row[offset_index] > self._written.get(key, -1):
                        self._written[key] = row[offset_index]
                written += len(rows)
                del batches[table]
        finally:
            for table, rows in batches.items():  # not written: back in front of newer rows
                self._batches[table] = rows + self._batches.get(table, [])
            if self._batches and self._oldest is None:
                self._oldest = self.clock()
        self.rows_written += written
        if written:
            log.debug("sink.flushed", rows=written)
        return written
