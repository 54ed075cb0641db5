"""A Faust table as the pipeline's :class:`~clicktrail.contracts.StateStore`.

Faust keeps a table key in the partition of the event being processed: reads
look in that partition's store and writes go to that partition's changelog.
That is right while handling an event, but housekeeping (expiry) sweeps every
key of every local partition. So keys are stored as ``partition|key``, and a
key touched outside its partition is handled with that partition standing in
as the current event.

Writes are held in a write-back buffer until :meth:`FaustState.flush`, which the
runtime calls once per batch before it acknowledges the batch: a counter bumped a
hundred times in a batch costs one changelog message, not a hundred, and what is
acknowledged has its state written either way.
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


_DELETED = object()


class FaustState(MutableMapping[str, Any]):
    """``follows``: a store whose keys are the same ids, held in the same partitions, so
    a key this store has not seen yet, touched by a sweep (no current event), goes where
    the other store keeps it (a conversion moved from waiting to orphaned on a timer)."""

    def __init__(self, table: Any, source_topic: str, follows: FaustState | None = None) -> None:
        self.table = table
        self.source_topic = source_topic
        self.follows = follows
        self._where: dict[str, int] = {}
        self._dirty: dict[str, tuple[int, Any]] = {}

    def _current_partition(self) -> int:
        event = current_event()
        if event is None:
            raise RuntimeError("table state used outside of stream processing")
        return int(event.message.partition)

    def _partition(self, key: str) -> int:
        partition = self._where.get(key)
        if partition is None and self.follows is not None:
            partition = self.follows._where.get(key)
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
        held = self._dirty.get(key)
        if held is not None:
            if held[1] is _DELETED:
                raise KeyError(key)
            return held[1]
        partition = self._partition(key)
        with self._in(partition):
            value = self.table.get(f"{partition}|{key}")
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        partition = self._partition(key)
        self._dirty[key] = (partition, value)
        self._where[key] = partition

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._dirty[key] = (self._partition(key), _DELETED)

    def flush(self) -> int:
        """Write the held changes to the table (and so to its changelog); returns how many."""
        dirty, self._dirty = self._dirty, {}
        for key, (partition, value) in dirty.items():
            with self._in(partition):
                if value is _DELETED:
                    self.table.pop(f"{partition}|{key}", None)
                    self._where.pop(key, None)
                else:
                    self.table[f"{partition}|{key}"] = value
        return len(dirty)

    def __iter__(self) -> Iterator[str]:
        return iter([key for key, _ in self.items()])

    def __len__(self) -> int:
        return len(self.items())

    def locate(self) -> int:
        """Learn the partition of every stored key. A key decided by whichever partition's
        batch was current (the alert state: what was announced per key) is otherwise
        looked up in the current partition after a restart, and missed there."""
        return len(self.items())

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        """One pass over the stores and the held changes (the inherited view would look
        every key up again)."""
        pairs = []
        for stored, value in list(self.table.items()):
            partition, _, key = str(stored).partition("|")
            self._where[key] = int(partition)
            if key not in self._dirty:
                pairs.append((key, value))
        pairs += [(key, value) for key, (_, value) in self._dirty.items() if value is not _DELETED]
        return pairs
