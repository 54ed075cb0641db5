"""A Faust table as the pipeline's :class:`~clicktrail.contracts.StateStore`.

Faust keeps a table key in the partition of the event being processed: reads
look in that partition's store and writes go to that partition's changelog.
That is right while handling an event, but housekeeping (expiry) sweeps every
key of every local partition. So keys are stored as ``partition|key``, and a
key touched outside its partition is handled with that partition standing in
as the current event.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, MutableMapping
from types import SimpleNamespace
from typing import Any

from faust.streams import _current_event, current_event


class _PartitionEvent:
    """Just enough of an event for Faust to pick a table partition."""

    def __init__(self, topic: str, partition: int) -> None:
        self.message = SimpleNamespace(topic=topic, partition=partition)


class FaustState(MutableMapping[str, Any]):
    def __init__(self, table: Any, source_topic: str) -> None:
        self.table = table
        self.source_topic = source_topic
        self._where: dict[str, int] = {}

    def _current_partition(self) -> int:
        event = current_event()
        if event is None:
            raise RuntimeError("table state used outside of stream processing")
        return int(event.message.partition)

    def _partition(self, key: str) -> int:
        partition = self._where.get(key)
        return self._current_partition() if partition is None else partition

    @contextlib.contextmanager
    def _in(self, partition: int) -> Iterator[None]:
        event = current_event()
        if event is not None and event.message.partition == partition:
            yield
            return
        stand_in = _PartitionEvent(self.source_topic, partition)
        token = _current_event.set(weakref.ref(stand_in))  # type: ignore[arg-type]
        try:
            yield
        finally:
            _current_event.reset(token)

    def __getitem__(self, key: str) -> Any:
        partition = self._partition(key)
        with self._in(partition):
            value = self.table.get(f"{partition}|{key}")
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        partition = self._partition(key)
        with self._in(partition):
            self.table[f"{partition}|{key}"] = value
        self._where[key] = partition

    def __delitem__(self, key: str) -> None:
        partition = self._partition(key)
        with self._in(partition):
            del self.table[f"{partition}|{key}"]
        self._where.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        for stored in list(self.table.keys()):
            partition, _, key = str(stored).partition("|")
            self._where[key] = int(partition)
            yield key

    def __len__(self) -> int:
        return len(self.table)

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        """One pass over the stores (the inherited view would look every key up again)."""
        pairs = []
        for stored, value in list(self.table.items()):
            partition, _, key = str(stored).partition("|")
            self._where[key] = int(partition)
            pairs.append((key, value))
        return pairs
