"""What the edge hands events to: the embedded runtime, or a bus producer (Kafka).

Endpoints only ever call ``submit`` / ``reject``, or ``validate`` then ``settle``
(all go through the :class:`~clicktrail.runtime.gate.IntakeGate`); the backend
owns what happens next and how to tell whether it is ready. ``validate`` is the
only one a worker thread may call: publishing stays on the event loop (the Kafka
bus hands its queue to the broker from the loop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol

from clicktrail.bus.base import Producer
from clicktrail.bus.durable import DurableBus
from clicktrail.bus.kafka import KafkaBus
from clicktrail.config import Registry
from clicktrail.contracts import AnyEvent, AuctionInsight
from clicktrail.edge.metrics import EdgeMetrics
from clicktrail.processors.intake import Rejection
from clicktrail.runtime.background import BackgroundProcessing
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.runtime.gate import IntakeGate
from clicktrail.runtime.metrics import expose, expose_intake
from clicktrail.runtime.wiring import build_intake
from clicktrail.sinks.store import StoreError


class EdgeBackend(Protocol):
    name: str
    gate: IntakeGate
    registry: Registry

    def submit(self, data: Any, source: str) -> AnyEvent | Rejection: ...

    def submit_raw(self, raw: bytes, source: str) -> AnyEvent | Rejection: ...

    def validate(self, item: Any) -> AnyEvent | Rejection: ...

    def settle(
        self, result: AnyEvent | Rejection, raw: Any, source: str
    ) -> AnyEvent | Rejection: ...

    def reject(self, rejection: Rejection, raw: Any, source: str) -> None: ...

    def submit_insights(self, rows: Sequence[AuctionInsight]) -> int: ...

    def bind(self, metrics: EdgeMetrics) -> None: ...

    async def durable(self) -> None:
        """Return once everything submitted before the call is durable: what an answer
        acknowledges survives a crash of this process. Raises ``OSError`` if it cannot be."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ready(self) -> tuple[bool, str]: ...


class BusBackend:
    """Gate over any producer; subclasses add a lifecycle. Alone it suits tests."""

    name = "bus"

    def __init__(self, registry: Registry, producer: Producer) -> None:
        self.registry = registry
        self.producer = producer
        self.gate = IntakeGate(build_intake(registry), producer)
        self.metrics = EdgeMetrics()

    def bind(self, metrics: EdgeMetrics) -> None:
        self.metrics = metrics
        expose_intake(metrics, self.gate.stats)

    def submit(self, data: Any, source: str) -> AnyEvent | Rejection:
        return self.gate.submit(data, source)

    def submit_raw(self, raw: bytes, source: str) -> AnyEvent | Rejection:
        return self.gate.submit_raw(raw, source)

    def validate(self, item: Any) -> AnyEvent | Rejection:
        return self.gate.validate(item)

    def settle(self, result: AnyEvent | Rejection, raw: Any, source: str) -> AnyEvent | Rejection:
        return self.gate.settle(result, raw, source)

    def reject(self, rejection: Rejection, raw: Any, source: str) -> None:
        self.gate.reject(rejection, raw, source)

    def submit_insights(self, rows: Sequence[AuctionInsight]) -> int:
        return self.gate.submit_insights(rows)

    async def durable(self) -> None:
        """A bare producer keeps nothing of its own to make durable."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.producer.flush()

    async def ready(self) -> tuple[bool, str]:
        return True, "ready"


class KafkaBackend(BusBackend):
    """Scale-out edge: events go to Kafka (or the spool while Kafka is away)."""

    name = "kafka"

    def __init__(self, registry: Registry, bus: KafkaBus) -> None:
        super().__init__(registry, bus)
        self.bus = bus

    def bind(self, metrics: EdgeMetrics) -> None:
        super().bind(metrics)
        bus = self.bus
        bus.observe(metrics.produce.observe)
        metrics.gauge(
            "clicktrail_edge_queue_depth", "Records waiting for a broker ack.", lambda: bus.pending
        )
        metrics.gauge(
            "clicktrail_edge_spool_depth", "Records in the local spool.", lambda: bus.spool.depth
        )
        metrics.gauge(
            "clicktrail_edge_spool_bytes", "Bytes in the local spool.", lambda: bus.spool.size_bytes
        )
        metrics.gauge(
            "clicktrail_edge_spooling",
            "1 while new records go to the spool instead of Kafka.",
            lambda: float(bus.mode == "spooling"),
        )

    async def start(self) -> None:
        await self.bus.start()

    async def stop(self) -> None:
        await self.bus.close()

    async def durable(self) -> None:
        """Everything submitted before the call is acked by Kafka or synced to the spool."""
        await self.bus.durable()

    async def ready(self) -> tuple[bool, str]:
        if await self.bus.reachable():
            return True, "ready"
        return False, f"kafka unreachable; spooling ({self.bus.spool.depth} records)"


class EmbeddedBackend:
    """``clicktrail run``: the in-process bus, processed on a thread of its own.

    The loop only publishes; processing and ClickHouse writes run on
    :class:`BackgroundProcessing`, started and stopped with the server, so a big batch
    does not hold up pixels, redirects or ``/healthz``.
    """

    name = "embedded"

    def __init__(self, runtime: EmbeddedRuntime) -> None:
        self.runtime = runtime
        self.registry = runtime.registry
        self.gate = runtime.gate
        self.metrics = EdgeMetrics()
        self.processing = BackgroundProcessing(runtime)

    def bind(self, metrics: EdgeMetrics) -> None:
        self.metrics = metrics
        metrics.gauge(
            "clicktrail_edge_queue_depth",
            "Events waiting for the in-process processors.",
            self.runtime.bus.depth,
        )
        metrics.gauge("clicktrail_edge_spool_depth", "Records in the local spool.", lambda: 0)
        runtime = self.runtime
        if runtime.snapshots is not None:
            snapshots = runtime.snapshots
            metrics.gauge(
                "clicktrail_state_snapshot_seconds",
                "How long the last state snapshot took (processing waits for it).",
                lambda: snapshots.last_seconds,
            )
            metrics.gauge(
                "clicktrail_event_log_records",
                "Logged events the last snapshot does not reflect: what a restart reprocesses.",
                lambda: runtime.unsnapshotted,
            )
        expose(
            metrics,
            counts=runtime.counts,
            sink=runtime.sink,
            alerts=runtime.alerts,
            labels=runtime.pipeline.models.labels,
            clock=runtime.pipeline.clock,
            intake=runtime.gate.stats,
        )

    def submit(self, data: Any, source: str) -> AnyEvent | Rejection:
        started = time.perf_counter()
        result = self.gate.submit(data, source)
        self.metrics.produce.observe(time.perf_counter() - started)
        return result

    def submit_raw(self, raw: bytes, source: str) -> AnyEvent | Rejection:
        started = time.perf_counter()
        result = self.gate.submit_raw(raw, source)
        self.metrics.produce.observe(time.perf_counter() - started)
        return result

    def validate(self, item: Any) -> AnyEvent | Rejection:
        return self.gate.validate(item)

    def settle(self, result: AnyEvent | Rejection, raw: Any, source: str) -> AnyEvent | Rejection:
        started = time.perf_counter()
        result = self.gate.settle(result, raw, source)
        self.metrics.produce.observe(time.perf_counter() - started)
        return result

    def reject(self, rejection: Rejection, raw: Any, source: str) -> None:
        self.gate.reject(rejection, raw, source)

    def submit_insights(self, rows: Sequence[AuctionInsight]) -> int:
        return self.gate.submit_insights(rows)

    async def durable(self) -> None:
        """On disk in the event log (``clicktrail run`` with a data directory); without
        one (tests, benchmarks) events live as long as the process."""
        bus = self.runtime.bus
        if isinstance(bus, DurableBus):
            await bus.commit()

    async def start(self) -> None:
        self.processing.start()

    async def stop(self) -> None:
        """Process what is queued, flush and close, off the loop (it can take seconds)."""
        await asyncio.to_thread(self.processing.stop)

    async def ready(self) -> tuple[bool, str]:
        try:
            await asyncio.to_thread(self.runtime.store.rows, "SELECT 1")
        except StoreError as error:
            return False, f"store unavailable: {error}"
        return True, "ready"
