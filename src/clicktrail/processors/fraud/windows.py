"""Event-time sliding-window counts per key, bounded, in a ``StateStore``.

A key's entry is ``{"b": [[bucket, count], ...], "held": [[ts, id, campaign], ...]}``:
counts in fixed buckets (``window / buckets`` seconds each, only those inside the
window are kept) and the ids counted while the key was still under its limit, so the
click that crosses the limit can convict the ones before it. Both lists are bounded
(by the bucket count and the limit), and ``expire`` drops keys whose newest bucket
left the window, so the state follows the active keys, not the history.

Counts are per partition: in a multi-worker run a key's clicks spread over the
partitions of the stage (keyed by click id), so each worker sees a share of them and
crosses the limit later, unless a stage keyed by the counted key (IP, device) is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clicktrail.contracts import StateStore

KEEP_WINDOWS = 4
"""Buckets (and held ids) a key keeps, in windows: beyond the window either side of the
newest item, so items out of order by hours still count together."""


@dataclass(frozen=True, slots=True)
class Count:
    """The key's count in the window after adding, and the held ids it now convicts."""

    total: int
    released: list[tuple[str, str]]


class SlidingCounter:
    def __init__(
        self, store: StateStore, *, window_seconds: float, limit: int, buckets: int = 12
    ) -> None:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        if limit < 1 or buckets < 1:
            raise ValueError("limit and buckets must be at least 1")
        self.store = store
        self.window = window_seconds
        self.limit = limit
        self.width = window_seconds / buckets
        self.buckets = buckets

    def add(self, key: str, ts: float, item_id: str, campaign_id: str) -> Count:
        """Count one item at event time ``ts``. The total is taken over the buckets within
        one window on either side of ``ts``, so a late item still sees its own burst, and
        nothing is dropped for being far from this item: an item delivered hours ahead of
        its time (a resent copy) must not erase the key's present, nor the present erase
        it. The state stays bounded by :data:`KEEP_WINDOWS` windows of buckets and held
        ids per key; ``expire`` drops what the watermark has left behind."""
        entry: dict[str, Any] = self.store.get(key) or {"b": [], "held": []}
        bucket = int(ts // self.width)
        buckets: dict[int, int] = {int(b): int(c) for b, c in entry["b"]}
        buckets[bucket] = buckets.get(bucket, 0) + 1
        kept = sorted(buckets.items())[-KEEP_WINDOWS * self.buckets :]
        total = sum(c for b, c in kept if abs(b - bucket) * self.width < self.window)
        near = [h for h in entry["held"] if abs(ts - h[0]) < self.window]
        far = [h for h in entry["held"] if abs(ts - h[0]) >= self.window]
        released: list[tuple[str, str]] = []
        if total > self.limit:
            released = [(h[1], h[2]) for h in near]
            held = far
        else:
            held = [*far, *near, [ts, item_id, campaign_id]]
        held = sorted(held, key=lambda h: h[0])[-KEEP_WINDOWS * self.limit :]
        self.store[key] = {"b": [[b, c] for b, c in kept], "held": held}
        return Count(total, released)

    def expire(self, watermark: float) -> int:
        """Forget what the watermark left behind: buckets and held ids older than one
        window before it, and keys with nothing left."""
        horizon = int((watermark - self.window) // self.width)
        gone = 0
        for key, entry in list(self.store.items()):
            buckets = [b for b in entry["b"] if b[0] >= horizon]
            if not buckets:
                del self.store[key]
                gone += 1
            elif len(buckets) < len(entry["b"]):
                held = [h for h in entry["held"] if h[0] >= watermark - self.window]
                self.store[key] = {"b": buckets, "held": held}
        return gone
