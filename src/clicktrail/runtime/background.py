"""The embedded runtime's processing on a thread of its own, for ``clicktrail run``.

Processing a large batch and writing it to ClickHouse takes seconds; on the
event loop that is seconds in which no pixel, redirect or ``/healthz`` is
answered. This thread drains the in-process bus, writes due sink batches and
flushes on a timer; the loop only publishes. It owns the pipeline while it
runs: at :meth:`BackgroundProcessing.stop` it processes what is queued,
flushes and closes the runtime, so no accepted event is lost at a clean
shutdown.
"""

from __future__ import annotations

import sys
import threading
import time

import structlog

from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import StoreError

log = structlog.get_logger(__name__)

PROCESS_INTERVAL = 0.01
"""Seconds the thread sleeps when the bus is empty: the latency an event waits at most."""
FLUSH_INTERVAL = 0.5
"""Seconds between sink flushes while events trickle in (a full batch is written at once)."""
STEP = 2_000
"""Messages per step between looks at the flush timer and the stop request."""
SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits for it, while processing runs.

The event loop shares the GIL with this thread (and with the batch-validation worker):
woken by a request, it waits until the holder is made to drop the GIL, after Python's
switch interval, 5 ms by default, and a request takes a few such wake-ups. At 1 ms,
``/healthz`` p99 under a 10,000-event batch measured about 11 ms instead of 20-30 ms
(``clicktrail bench --only loop``, two cores)."""


class BackgroundProcessing:
    def __init__(
        self,
        runtime: EmbeddedRuntime,
        *,
        interval: float = PROCESS_INTERVAL,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.runtime = runtime
        self.interval = interval
        self.flush_interval = flush_interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._switch_interval = sys.getswitchinterval()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("processing is already started")
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))
        # daemon: a process leaving without stop() (a crash) must not hang on this thread;
        # stop() is what writes everything out
        self._thread = threading.Thread(target=self._run, name="clicktrail-processing", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Process what is queued, flush, close the runtime; blocks until done (call it
        from a worker thread, not the event loop). Re-raises what closing raised."""
        if self._thread is None:
            self.runtime.close()
            return
        self._stopping.set()
        self._thread.join()
        sys.setswitchinterval(self._switch_interval)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        runtime = self.runtime
        last_flush = time.monotonic()
        while not self._stopping.is_set():
            try:
                handled = runtime.process(STEP) if runtime.bus.depth() else 0
                if time.monotonic() - last_flush >= self.flush_interval:
                    last_flush = time.monotonic()
                    runtime.flush()
            except StoreError as error:
                handled = 0
                log.warning("sink.flush_failed", error=str(error))
            except Exception:
                handled = 0
                log.exception("edge.processing_failed")
            if not handled:
                self._stopping.wait(self.interval)
        try:
            runtime.close()
        except BaseException as error:
            self._error = error
