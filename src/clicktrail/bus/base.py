"""What the rest of the system needs from a message bus: publish a record to a topic."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel


class Producer(Protocol):
    """Publishes records; Kafka serializes them, the in-process bus hands them over."""

    def publish(self, topic: str, key: str, record: BaseModel) -> None: ...

    def flush(self) -> None: ...
