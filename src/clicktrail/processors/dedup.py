"""Drop events sent twice (same ``event_id``) while letting a *redelivered* message through.

A sender that retries produces a second message with the same event id: that
is a duplicate. A worker that restarts reads the very same message again:
that is a redelivery, and it must be processed as the first time (its rows
are skipped by the sink if they were already written). The message identity
(``origin``: topic/partition/offset, or file/line) tells the two apart.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from clicktrail.contracts import StateStore

DEFAULT_WINDOW = timedelta(days=7)


class Dedup:
    def __init__(self, seen: StateStore, window: timedelta = DEFAULT_WINDOW) -> None:
        if window <= timedelta(0):
            raise ValueError("dedup window must be positive")
        self.seen = seen
        self.window = window
        self.dropped = 0

    def admit(self, event_id: str, ts: datetime, origin: str) -> bool:
        """True if the event is new or a redelivery of the message that first carried it."""
        first = self.seen.get(event_id)
        if first is None:
            self.seen[event_id] = [origin, ts.timestamp()]
            return True
        if first[0] == origin:
            return True
        self.dropped += 1
        return False

    def expire(self, watermark: datetime) -> int:
        """Forget ids older than the window; a re-send after that is accepted again."""
        horizon = (watermark - self.window).timestamp()
        stale = [key for key, (_, ts) in self.seen.items() if ts < horizon]
        for key in stale:
            del self.seen[key]
        return len(stale)
