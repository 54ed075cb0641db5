"""In-process bus for the embedded runtime: one queue, drained in publish order.

Every message gets an origin ``source@offset`` like a Kafka message has
topic/partition/offset: offsets count up per source, so replaying the same
file gives the same origins, which is what makes a re-run idempotent.

One producer thread and one consumer thread may use it at once (``clicktrail
run``: the event loop publishes, the processing thread drains): the queue is a
``deque``, whose ``append`` and ``popleft`` are atomic, and the offset counters
are only ever written by the producer.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    key: str
    record: BaseModel
    source: str
    offset: int

    @property
    def origin(self) -> str:
        return f"{self.source}@{self.offset}"


class InProcessBus:
    def __init__(self, source: str | None = None) -> None:
        self._queue: deque[Message] = deque()
        self.source = source or f"run:{uuid.uuid4().hex[:12]}"
        self._offset = 0
        self.published = 0

    def begin_source(self, source: str) -> None:
        """Messages published from now on belong to ``source``, numbered from 1."""
        self.source = source
        self._offset = 0

    def publish(self, topic: str, key: str, record: BaseModel) -> None:
        self._offset += 1
        self._queue.append(Message(topic, key, record, self.source, self._offset))
        self.published += 1

    def flush(self) -> None:
        """Nothing to flush: records are in memory as soon as they are published."""

    def depth(self) -> int:
        return len(self._queue)

    def drain(self, limit: int | None = None) -> Iterator[Message]:
        """Yield and remove queued messages in publish order, including ones added meanwhile;
        at most ``limit`` of them (None: until the queue is empty)."""
        queue = self._queue
        left = -1 if limit is None else limit
        while left != 0:
            try:
                message = queue.popleft()
            except IndexError:
                return
            left -= 1
            yield message
