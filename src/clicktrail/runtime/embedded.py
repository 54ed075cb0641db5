"""The embedded runtime: intake, in-process bus, processors and ClickHouse sink in one process.

Used by ``clicktrail run`` and ``clicktrail replay`` and by the tests; it runs
the very same processors as the Faust workers.
"""

from __future__ import annotations

from typing import Any

import structlog

from clicktrail.bus.memory import InProcessBus
from clicktrail.bus.topics import DEAD_LETTERS, EVENT_TOPICS
from clicktrail.config import Registry
from clicktrail.contracts import AnyEvent, DeadLetter
from clicktrail.processors.intake import Clock, Rejection, utc_now
from clicktrail.runtime.gate import IntakeGate, IntakeStats
from clicktrail.runtime.wiring import ProcessingChain, build_intake
from clicktrail.sinks.clickhouse import ClickHouseSink
from clicktrail.sinks.store import Store

log = structlog.get_logger(__name__)


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
        self.chain = ProcessingChain(registry)
        self.bus = InProcessBus()
        self.gate = IntakeGate(build_intake(registry, clock), self.bus)
        self.sink = sink or ClickHouseSink(store)

    @property
    def stats(self) -> IntakeStats:
        return self.gate.stats

    def submit_raw(self, raw: bytes | str, source: str) -> AnyEvent | Rejection:
        return self.gate.submit_raw(raw, source)

    def submit(self, data: Any, source: str) -> AnyEvent | Rejection:
        return self.gate.submit(data, source)

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
