"""Batched, idempotent writes of records to their ClickHouse tables.

``add`` only buffers; ``flush`` writes one insert per table. A batch stays in
the buffer until ClickHouse has acknowledged it, and carries a deduplication
token derived from its content, so a retried batch is never counted twice.
When the buffer outgrows ``max_buffered`` the sink raises
:class:`SinkBackpressure` and the runtime slows down instead of eating memory.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import structlog
from pydantic import BaseModel

from clicktrail.contracts import SinkBackpressure
from clicktrail.sinks.rows import TABLE_FOR_TYPE, TableShape, describe, flatten
from clicktrail.sinks.store import Store

log = structlog.get_logger(__name__)

_ID_COLUMN = {"impressions": "event_id", "clicks": "event_id", "conversions": "event_id"}


def dedup_token(table: str, rows: list[tuple[Any, ...]], id_index: int | None) -> str:
    digest = hashlib.blake2b(table.encode(), digest_size=16)
    if id_index is not None:
        for row in rows:
            digest.update(str(row[id_index]).encode())
            digest.update(b"\0")
    else:
        digest.update(orjson.dumps(rows, default=str))
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_rows < 1 or max_seconds <= 0 or max_buffered < max_rows:
            raise ValueError("need max_rows >= 1, max_seconds > 0, max_buffered >= max_rows")
        self.store = store
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.max_buffered = max_buffered
        self.clock = clock
        self._shapes: dict[str, TableShape] = {}
        self._batches: dict[str, list[tuple[Any, ...]]] = {}
        self._oldest: float | None = None
        self.rows_written = 0

    @property
    def buffered(self) -> int:
        return sum(len(rows) for rows in self._batches.values())

    def _shape(self, table: str, record: BaseModel) -> TableShape:
        shape = self._shapes.get(table)
        if shape is None:
            shape = describe(self.store, table, set(type(record).model_fields))
            self._shapes[table] = shape
        return shape

    def add(self, record: BaseModel) -> None:
        table = TABLE_FOR_TYPE[getattr(record, "type", "")]
        if self.buffered >= self.max_buffered:
            raise SinkBackpressure(f"{self.buffered} rows waiting for ClickHouse")
        row = self._shape(table, record).row(flatten(record))
        self._batches.setdefault(table, []).append(row)
        if self._oldest is None:
            self._oldest = self.clock()

    def add_all(self, records: Iterable[BaseModel]) -> None:
        for record in records:
            self.add(record)

    def due(self) -> bool:
        """True when a batch is big enough or old enough to write."""
        if self._oldest is None:
            return False
        if self.clock() - self._oldest >= self.max_seconds:
            return True
        return any(len(rows) >= self.max_rows for rows in self._batches.values())

    def flush(self) -> int:
        """Write every buffered batch; a failed table keeps its rows for the next try."""
        written = 0
        for table in list(self._batches):
            rows = self._batches[table]
            shape = self._shapes[table]
            for start in range(0, len(rows), self.max_rows):
                chunk = rows[start : start + self.max_rows]
                id_col = _ID_COLUMN.get(table)
                id_index = shape.columns.index(id_col) if id_col else None
                try:
                    self.store.insert(
                        table, chunk, shape.columns, dedup_token(table, chunk, id_index)
                    )
                except Exception:
                    self._batches[table] = rows[start:]
                    raise
                written += len(chunk)
            del self._batches[table]
        self._oldest = None if not self._batches else self._oldest
        self.rows_written += written
        if written:
            log.debug("sink.flushed", rows=written)
        return written
