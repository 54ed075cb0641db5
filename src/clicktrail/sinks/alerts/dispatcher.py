"""Delivery with retries that never lets one bad destination hold up the rest.

Every destination of an alert is its own task with its own retry budget: a receiver
that hangs costs at most ``attempts x timeout`` plus backoff, and only to itself.
Each attempt becomes an ``Alert`` record, so the ``alerts`` table shows what happened.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from clicktrail.config.registry import AlertSettings
from clicktrail.contracts import StateStore
from clicktrail.contracts.records import Alert
from clicktrail.sinks.alerts.destinations import DeliveryError, Destination, build_destinations
from clicktrail.sinks.alerts.digest import DailyDigest
from clicktrail.sinks.alerts.payloads import AlertMessage, announced
from clicktrail.sinks.alerts.routing import AlertRouter, Decision, Delivery

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter: ``base * 2**(n-1)``, capped, then cut by
    up to ``jitter`` so that many alerts failing together do not retry in lockstep."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Pause after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling * (1 - self.jitter * rng.random())


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AlertDispatcher:
    """Routes, deduplicates and delivers alerts; ``add``/``flush`` like every sink."""

    router: AlertRouter
    destinations: Mapping[str, Destination]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 8
    sleep: Sleep = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], datetime] = _now
    pending: list[tuple[AlertMessage, Decision]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        known = set(self.destinations)
        missing = {k for r in self.router.settings.routes for k in r.destinations} - known
        if missing:
            raise ValueError(f"no destination built for {sorted(missing)}")
        self._slots = asyncio.Semaphore(self.concurrency)
        self.digest = DailyDigest(self.router)
        self._last: dict[tuple[str, str], asyncio.Task[Any]] = {}

    @classmethod
    def from_settings(
        cls,
        settings: AlertSettings,
        client: httpx.AsyncClient,
        state: StateStore | None = None,
        policy: RetryPolicy | None = None,
        log_level: str = "warning",
    ) -> AlertDispatcher:
        return cls(
            AlertRouter(settings, state),
            build_destinations(settings, client, log_level),
            policy or RetryPolicy(),
        )

    def add(self, message: AlertMessage) -> None:
        """Decide now (in order, so repeats are recognised), deliver at ``flush``."""
        self.pending.extend(self.decide_all(message))

    async def flush(self) -> list[Alert]:
        """Deliver everything added so far; the batch is cleared even if delivery raises."""
        batch, self.pending = self.pending, []
        results = await asyncio.gather(*(self.deliver(m, d) for m, d in batch))
        return [alert for records in results for alert in records]

    async def dispatch(self, message: AlertMessage) -> list[Alert]:
        results = [await self.deliver(m, d) for m, d in self.decide_all(message)]
        return [alert for records in results for alert in records]

    def decide(self, message: AlertMessage) -> Decision:
        """Route and compare with what was announced at the alert's event time, so a
        replay or a restarted worker decides exactly as the first run did."""
        if message.kind == "digest":
            raise ValueError("digests are made by the dispatcher, not decided")
        return self.router.decide(
            message.kind,
            message.dedup_key,
            message.severity,
            message.brand,
            message.ts,
            clear=message.clear,
        )

    def decide_all(self, message: AlertMessage) -> list[tuple[AlertMessage, Decision]]:
        """The digests of the days before the message's, then the message itself (as
        announced, its change held for the digests of the routes that collect it)."""
        out = self.digest.due(message.ts)
        decision = self.decide(message)
        message = announced(message, decision.change, decision.severity)
        if decision.digests:
            self.digest.add(message, decision.digests)
        return [*out, (message, decision)]

    def final_digests(self) -> list[tuple[AlertMessage, Decision]]:
        """At the end of the input: every digest still collecting, though its day is open."""
        return self.digest.due(None)

    async def deliver(self, message: AlertMessage, decision: Decision) -> list[Alert]:
        """Every destination of a decision, each with its own retries; one record per attempt.
        A change held for a digest is recorded as ``digested`` for the digest's destination."""
        message = announced(message, decision.change, decision.severity)
        held = [
            self._record(
                message,
                d,
                status="digested",
                attempt=1,
                error=None,
                body=self.destinations[d.destination].render(message),
            )
            for d in decision.digests
        ]
        if decision.suppressed:
            return [
                self._record(
                    message,
                    d,
                    status="suppressed",
                    attempt=1,
                    error=decision.reason,
                    body=self.destinations[d.destination].render(message),
                )
                for d in decision.deliveries
            ]
        results = await asyncio.gather(*(self._deliver(message, d) for d in decision.deliveries))
        return held + [alert for records in results for alert in records]

    async def _deliver(self, message: AlertMessage, delivery: Delivery) -> list[Alert]:
        """After the previous alert of the same key to the same destination, so a receiver
        never hears an escalation before the alert it escalates; other destinations and
        keys do not wait (deliveries start in the order they were decided)."""
        lane = (message.dedup_key, delivery.destination)
        previous = self._last.get(lane)
        current = asyncio.current_task()
        if current is not None:
            self._last[lane] = current
        try:
            if previous is not None:
                await asyncio.wait([previous])
            return await self._attempts(message, delivery)
        finally:
            if self._last.get(lane) is current:
                del self._last[lane]

    async def _attempts(self, message: AlertMessage, delivery: Delivery) -> list[Alert]:
        destination = self.destinations[delivery.destination]
        body = destination.render(message)
        records: list[Alert] = []
        for attempt in range(1, self.policy.attempts + 1):
            error = await self._attempt(destination, message, body)
            if error is None:
                records.append(
                    self._record(
                        message, delivery, status="sent", attempt=attempt, error=None, body=body
                    )
                )
                return records
            last = attempt == self.policy.attempts or not error.retryable
            status = "failed" if last else "retrying"
            records.append(
                self._record(
                    message, delivery, status=status, attempt=attempt, error=str(error), body=body
                )
            )
            if last:
                return records
            await self.sleep(self.policy.delay(attempt, self.rng))
        return records

    async def _attempt(
        self, destination: Destination, message: AlertMessage, body: bytes
    ) -> DeliveryError | None:
        async with self._slots:
            try:
                async with asyncio.timeout(self.policy.timeout):
                    await destination.deliver(message, body)
            except TimeoutError:
                return DeliveryError(f"timed out after {self.policy.timeout:g}s")
            except DeliveryError as exc:
                return exc
            except Exception as exc:  # a bug in one destination must not sink the others
                return DeliveryError(f"{type(exc).__name__}: {exc}", retryable=False)
        return None

    def _record(
        self,
        message: AlertMessage,
        delivery: Delivery,
        *,
        status: str,
        attempt: int,
        error: str | None,
        body: bytes | str,
    ) -> Alert:
        return Alert.model_validate(
            {
                "alert_id": message.alert_id,
                "ts": self.clock(),
                "kind": message.kind,
                "dedup_key": message.dedup_key,
                "route": delivery.route,
                "destination": delivery.destination,
                "severity": message.severity,
                "status": status,
                "attempt": attempt,
                "error": None if error is None else error[:2048],
                "payload": body.decode() if isinstance(body, bytes) else body,
            }
        )
