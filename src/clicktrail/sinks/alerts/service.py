"""Alerting beside the pipeline: decided in the stage, delivered on a thread of its own.

A stage hands over the records it produced (``observe``); the routing and dedup
decision is taken there and then, in stream order, with its state in the stage's
``StateStore``, so a replay or a restarted worker decides exactly as before.
Delivery (HTTP, SMTP, retries with backoff) runs on a private event loop in a
daemon thread: a destination that is down or hangs costs the pipeline nothing.
The attempt records come back through ``take`` for the ClickHouse sink; each is
written under its own source, ``alert:<alert id>:<destination>`` at offset
``attempt``, so a record is stored once however often the sink is retried.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, deque
from collections.abc import Iterable
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures

import httpx
import structlog
from pydantic import BaseModel

from clicktrail.config.registry import AlertSettings
from clicktrail.contracts import StateStore
from clicktrail.contracts.records import Alert
from clicktrail.sinks.alerts.dispatcher import AlertDispatcher, RetryPolicy
from clicktrail.sinks.alerts.payloads import AlertMessage, alert_messages
from clicktrail.sinks.alerts.routing import Decision

log = structlog.get_logger(__name__)


def alert_source(alert: Alert) -> tuple[str, int]:
    """Where an attempt record is written from: one source per (alert, destination)."""
    return f"alert:{alert.alert_id}:{alert.destination}", alert.attempt


class AlertService:
    """``observe`` records, ``take`` the attempt records, ``close`` at shutdown."""

    def __init__(
        self,
        settings: AlertSettings,
        state: StateStore | None = None,
        policy: RetryPolicy | None = None,
        log_level: str = "warning",
    ) -> None:
        """``log_level``: the level ``log`` destinations write alerts at."""
        self.settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None  # made with the thread, on first use
        self._client = httpx.AsyncClient(trust_env=False)
        self.dispatcher = AlertDispatcher.from_settings(
            settings, self._client, state, policy, log_level
        )
        self._thread: threading.Thread | None = None
        self._outstanding: set[Future[list[Alert]]] = set()
        self._done: deque[Alert] = deque()
        self._lock = threading.Lock()
        self._closed = False
        self.outcomes: Counter[tuple[str, str]] = Counter()
        """Attempt records finished, by (destination, status): sent, retrying, failed,
        suppressed, digested (for ``/metrics``)."""

    @property
    def enabled(self) -> bool:
        return bool(self.settings.routes)

    def observe(self, records: Iterable[BaseModel]) -> int:
        """Decide on every alert in ``records`` and start delivering; never waits.
        Returns how many deliveries started."""
        if not self.enabled:
            return 0
        if self._closed:
            log.warning("alerts.closed", dropped=len(alert_messages(records)))
            return 0
        started = 0
        for message in alert_messages(records):
            started += self._start(self.dispatcher.decide_all(message))
        return started

    def final_digests(self) -> int:
        """End of input (a replay): send the digests still collecting. Returns how many
        deliveries started."""
        if not self.enabled or self._closed:
            return 0
        return self._start(self.dispatcher.final_digests())

    def _start(self, decided: list[tuple[AlertMessage, Decision]]) -> int:
        started = 0
        for message, decision in decided:
            if not (decision.deliveries or decision.digests):
                continue
            future = asyncio.run_coroutine_threadsafe(
                self.dispatcher.deliver(message, decision), self._running_loop()
            )
            with self._lock:
                self._outstanding.add(future)
            future.add_done_callback(self._collect)
            started += 1
        return started

    def take(self) -> list[Alert]:
        """Attempt records of the deliveries finished since the last call."""
        with self._lock:
            taken = list(self._done)
            self._done.clear()
        return taken

    @property
    def finished(self) -> int:
        """Attempt records waiting to be taken."""
        with self._lock:
            return len(self._done)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._outstanding)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the deliveries under way; True if all ended."""
        with self._lock:
            outstanding = set(self._outstanding)
        if not outstanding:
            return True
        _, not_done = wait_futures(outstanding, timeout=timeout)
        return not not_done

    def close(self, timeout: float | None = None) -> None:
        """Give deliveries under way their retry budget (or ``timeout``), then stop for good."""
        self._closed = True
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        budget = self.worst_case() if timeout is None else timeout
        if not self.wait(budget):
            log.warning("alerts.undelivered_at_close", pending=self.pending)
        asyncio.run_coroutine_threadsafe(self._client.aclose(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    def worst_case(self) -> float:
        """Longest one delivery can take: every attempt timing out, every backoff at its cap."""
        policy = self.dispatcher.policy
        backoff = sum(
            min(policy.max_delay, policy.base_delay * 2**n) for n in range(policy.attempts - 1)
        )
        return policy.attempts * policy.timeout + backoff + 1.0

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="clicktrail-alerts", daemon=True
            )
            self._thread.start()
        return self._loop

    def _collect(self, future: Future[list[Alert]]) -> None:
        try:
            records = future.result()
        except Exception:  # delivery never raises by design; a bug must not lose the rest
            log.exception("alerts.delivery_crashed")
            records = []
        with self._lock:
            self._outstanding.discard(future)
            self._done.extend(records)
            for record in records:
                self.outcomes[record.destination, record.status] += 1
        for record in records:
            if record.status == "failed":
                log.warning(
                    "alerts.delivery_failed",
                    destination=record.destination,
                    alert_id=record.alert_id,
                    error=record.error,
                )
