"""The in-process bus with an on-disk log in front: nothing is seen before it is durable.

``publish`` (on the event loop) appends a record to the :class:`EventLog` and holds it;
:meth:`DurableBus.commit` waits until it is fsynced, then hands it to the processors.
Requests commit together: while one fsync runs, the requests arriving meanwhile wait for
the next, which covers them all (group commit), so the cost per event falls as the load
rises and an answer waits about two fsyncs at most. Holding records back until they are
on disk is what makes "acknowledged" and "will be processed" one thing: a crash can
lose only what no client was told was taken.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from pydantic import BaseModel

from clicktrail.bus.codec import deserialize, serialize
from clicktrail.bus.eventlog import EventLog
from clicktrail.bus.memory import InProcessBus, Message


class DurableBus(InProcessBus):
    def __init__(self, log: EventLog, source: str) -> None:
        """``source``: the same name on every start over this log, so a record read
        again after a restart has the origin it had before."""
        super().__init__(source)
        self.log = log
        self._held: deque[Message] = deque()
        self._release_lock = threading.Lock()
        self._syncing: asyncio.Future[None] | None = None

    def begin_source(self, source: str) -> None:
        raise RuntimeError("a durable bus numbers its messages by its log, one source")

    def publish(self, topic: str, key: str, record: BaseModel) -> None:
        seq = self.log.append(topic, key, serialize(record))
        self._held.append(Message(topic, key, record, self.source, seq))
        self.published += 1

    @property
    def unsynced(self) -> int:
        return len(self._held)

    async def commit(self) -> None:
        """Return once every record published before the call is on disk (and queued
        for the processors). Raises ``OSError`` when the disk refuses."""
        target = self.log.last
        while self.log.synced < target:
            if self._syncing is None:
                self._syncing = asyncio.ensure_future(self._sync())
            await asyncio.shield(self._syncing)

    async def _sync(self) -> None:
        try:
            self._release(await asyncio.to_thread(self.log.sync))
        finally:
            self._syncing = None

    def flush(self) -> None:
        """Sync and release now, from any thread (at shutdown)."""
        self._release(self.log.sync())

    def _release(self, upto: int) -> None:
        with self._release_lock:
            held, queue = self._held, self._queue
            while held and held[0].offset <= upto:
                queue.append(held.popleft())

    def recover(self, after: int) -> int:
        """Queue the logged records after ``after`` (what the restored state does not
        reflect) with the offsets they had; returns how many."""
        count = 0
        for seq, topic, key, value in self.log.read(after):
            self._queue.append(Message(topic, key, deserialize(topic, value), self.source, seq))
            count += 1
        return count

    def close(self) -> None:
        self.flush()
        self.log.close()
