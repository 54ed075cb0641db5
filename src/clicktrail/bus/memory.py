"""In-process bus for the embedded runtime: topics are queues in memory.

Delivery is synchronous and in publish order, which makes replays
deterministic; there is no serialization on this path.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterator

from pydantic import BaseModel

Handler = Callable[[str, BaseModel], None]


class InProcessBus:
    def __init__(self) -> None:
        self._queues: dict[str, deque[tuple[str, BaseModel]]] = defaultdict(deque)
        self.published = 0

    def publish(self, topic: str, key: str, record: BaseModel) -> None:
        self._queues[topic].append((key, record))
        self.published += 1

    def flush(self) -> None:
        """Nothing to flush: records are in memory as soon as they are published."""

    def depth(self, topic: str | None = None) -> int:
        if topic is not None:
            return len(self._queues[topic])
        return sum(len(q) for q in self._queues.values())

    def drain(self, topic: str) -> Iterator[tuple[str, BaseModel]]:
        """Yield and remove queued records of one topic, including ones added meanwhile."""
        queue = self._queues[topic]
        while queue:
            yield queue.popleft()
