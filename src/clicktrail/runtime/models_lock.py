"""Who may touch the live models: the processing thread per chunk of messages, readers between.

The embedded runtime learns from its stream on a thread of its own while
``/v1/score`` reads the same River models from the event loop; River models
are plain dicts and mutating one while it is read can raise or give a torn
score. The processing thread holds this lock for one chunk of messages (a few
hundred, milliseconds of work), so a reader waits at most that long.

A plain ``threading.Lock`` is not fair: the processing thread releases it and
takes it again before a woken reader gets the GIL, and a reader could wait for
a whole backlog. Readers that block therefore announce themselves, and the
writer, after each chunk, lets them in before it takes the lock again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

HANDOVER_WAIT = 0.05
"""Seconds the writer waits at most for announced readers to take the lock; a reader that
announced itself and went away must not stall processing."""
_NAP = 0.0002


class ModelsLock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = threading.Lock()
        self._waiting = 0

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Held by processing for one chunk; on release, waiting readers go first."""
        with self._lock:
            yield
        if self._waiting:
            deadline = time.monotonic() + HANDOVER_WAIT
            while self._waiting and time.monotonic() < deadline:
                time.sleep(_NAP)

    def try_reading(self) -> bool:
        """Take the lock if it is free right now (then call :meth:`done`); never blocks."""
        return self._lock.acquire(blocking=False)

    def done(self) -> None:
        self._lock.release()

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Wait for the lock, ahead of the writer's next chunk. Not for the event loop."""
        with self._count:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._count:
                self._waiting -= 1
        try:
            yield
        finally:
            self._lock.release()
