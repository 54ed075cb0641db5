"""The embedded runtime: intake, in-process bus, processors and ClickHouse sink in one process.

Used by ``clicktrail run`` and ``clicktrail replay`` and by the tests; it runs
the very same processors as the Faust workers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import structlog

from clicktrail.bus.memory import InProcessBus
from clicktrail.bus.topics import DEAD_LETTERS, EVENT_TOPICS, partition_key, topic_for
from clicktrail.config import Registry
from clicktrail.contracts import AnyEvent, DeadLetter
from clicktrail.processors.intake import Clock, Rejection, utc_now
from clicktrail.runtime.wiring import ProcessingChain, build_intake
from clicktrail.sinks.clickhouse import ClickHouseSink
from clicktrail.sinks.store import Store

log = structlog.get_logger(__name__)


@dataclass
class IntakeStats:
    read: int = 0
    accepted: int = 0
    dead_lettered: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "dead_lettered": self.dead_lettered,
            "reasons": dict(self.reasons),
        }


class EmbeddedRuntime:
    def __init__(
        self,
        registry: Registry,
        store: Store,
        *,
        sink: ClickHouseSink | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.registry = registry
        self.store = store
        self.intake = build_intake(registry, clock)
        self.chain = ProcessingChain(registry)
        self.bus = InProcessBus()
        self.sink = sink or ClickHouseSink(store)
        self.stats = IntakeStats()

    def submit_raw(self, raw: bytes | str, source: str) -> AnyEvent | Rejection:
        """One JSON document from a file line or a request body."""
        return self._settle(self.intake.parse(raw), raw, source)

    def submit(self, data: Any, source: str) -> AnyEvent | Rejection:
        """One already-decoded JSON value."""
        return self._settle(self.intake.validate(data), data, source)

    def _settle(self, result: AnyEvent | Rejection, raw: Any, source: str) -> AnyEvent | Rejection:
        self.stats.read += 1
        if isinstance(result, Rejection):
            self.stats.dead_lettered += 1
            self.stats.reasons[result.reason] += 1
            letter = self.intake.dead_letter(result, raw, source)
            self.bus.publish(DEAD_LETTERS, letter.event_id or "", letter)
        else:
            self.stats.accepted += 1
            self.bus.publish(topic_for(result), partition_key(result), result)
        return result

    def process(self) -> int:
        """Run queued events through the processors into the sink; returns events handled."""
        handled = 0
        for topic in EVENT_TOPICS.values():
            for _key, event in self.bus.drain(topic):
                self.sink.add_all(self.chain(event))  # type: ignore[arg-type]
                handled += 1
        for _key, letter in self.bus.drain(DEAD_LETTERS):
            assert isinstance(letter, DeadLetter)
            self.sink.add(letter)
        if self.sink.due():
            self.sink.flush()
        return handled

    def close(self) -> None:
        """Process what is queued and write everything out."""
        self.process()
        self.sink.flush()
