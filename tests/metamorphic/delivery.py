"""Delivery orders of one event stream, each a pure function of the lines and a seed.

The lines are ``events.jsonl`` as ``clicktrail simulate`` writes it: one event per line,
impressions and clicks with epoch-millisecond ``ts``, conversions (and their status
updates) with RFC 3339 ``ts``. Every function returns new lists of the very same bytes
(a duplicate is an exact copy: same ``event_id``), so the pipeline sees nothing a real
transport could not deliver; only the order and the number of copies change. The same
seed gives the same order.

What each one stands for, and which field it reads:

- :func:`time_order`: the ideal transport, by ``ts``. The simulator's own file is *not*
  this: it is already in a delivery order (late lines, duplicates, clicks after their
  conversion; docs/simulator.md, *Delivery*), so the reference is the sorted stream.
- :func:`bounded_shuffle`: a transport with bounded out-of-orderness, the case watermarks
  with an allowed lateness are built for. Reads ``ts`` to keep each swap within
  ``max_seconds`` of event time, and positions to keep it within ``max_positions``.
- :func:`with_duplicates`: at-least-once senders and retried batches. Copies are placed
  anywhere, also far *ahead* of the original (the copy arrives first and carries an event
  time hours beyond the stream around it, as a lagging source makes the others look).
- :func:`conversions_first`: a backlog read topic by topic (the conversions topic drained
  before the clicks and impressions topics), the worst case for joining a conversion to
  its click. Reads ``type``.
- :func:`two_workers`: two partitions (or two embedded consumers). Each line goes to the
  partition Kafka's default partitioner gives its key (``clicktrail.bus.topics.
  partition_key``: ``click_id`` for clicks and conversions that carry one, else the user,
  else ``event_id``; ``impression_id`` for impressions), each partition keeps its order,
  and the two are read in a seeded interleaving. A conversion reported by user id and its
  click usually land on different partitions, so their relative order is lost.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from clicktrail.bus.partitioner import murmur2
from clicktrail.bus.topics import partition_key
from clicktrail.processors.intake import Intake, Rejection

Lines = list[bytes]
_FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)
PARSER = Intake(clock=lambda: _FAR_FUTURE)
"""Only to build the event a partition key is computed from; no clock bound applies."""


def event_time(line: bytes) -> float:
    """``ts`` in seconds: epoch milliseconds (impressions, clicks) or RFC 3339 (conversions)."""
    ts = orjson.loads(line).get("ts")
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return ts / 1000
    if isinstance(ts, str):
        return datetime.fromisoformat(ts).timestamp()
    raise ValueError(f"no event time in {line[:80]!r}")


def event_type(line: bytes) -> str:
    kind = orjson.loads(line).get("type")
    return kind if isinstance(kind, str) else ""


def time_order(lines: Sequence[bytes]) -> Lines:
    """By event time; ties keep the input order (a copy stays next to its original)."""
    return sorted(lines, key=event_time)


def bounded_shuffle(
    lines: Sequence[bytes], *, seed: int, max_positions: int, max_seconds: float
) -> Lines:
    """Shuffled so that a line passes another only within ``max_positions`` positions and
    ``max_seconds`` of event time.

    Line ``i`` may be delayed past the ``w_i`` lines right after it, where ``w_i`` is how
    many of them lie within ``max_seconds`` of it (at most ``max_positions``); its new key
    is ``i + u * (w_i + 1)`` with ``u`` uniform in [0, 1). A line ``j > i`` delivered
    before it has ``j <= key_j < key_i < i + w_i + 1``: one of those ``w_i``. So every
    inversion is bounded in both positions and event time, and nothing moves more than
    ``max_positions``.
    """
    if max_positions < 0 or max_seconds < 0:
        raise ValueError("bounds must not be negative")
    times = [event_time(line) for line in lines]
    rng = random.Random(seed)
    keys: list[float] = []
    for i, ts in enumerate(times):
        reach = 0
        while (
            reach < max_positions
            and i + reach + 1 < len(times)
            and abs(times[i + reach + 1] - ts) <= max_seconds
        ):
            reach += 1
        keys.append(i + rng.random() * (reach + 1))
    order = sorted(range(len(lines)), key=lambda i: (keys[i], i))
    return [lines[i] for i in order]


def with_duplicates(lines: Sequence[bytes], *, seed: int, share: float) -> Lines:
    """About ``share`` of the lines twice: each copy at a uniformly drawn position of the
    whole stream, so half the copies arrive before their original, many far ahead of it."""
    if not 0 <= share <= 1:
        raise ValueError("share must be within [0, 1]")
    rng = random.Random(seed)
    keyed: list[tuple[int, int, float, bytes]] = [(i, 1, 0.0, line) for i, line in enumerate(lines)]
    for line in lines:
        if rng.random() < share:
            keyed.append((rng.randint(0, len(lines)), 0, rng.random(), line))
    keyed.sort(key=lambda k: k[:3])  # a copy at position p goes before original line p
    return [k[3] for k in keyed]


def conversions_first(lines: Sequence[bytes]) -> Lines:
    """Every conversion (status updates included), then the clicks and impressions; each
    group in its input order."""
    conversions = [line for line in lines if event_type(line) == "conversion"]
    others = [line for line in lines if event_type(line) != "conversion"]
    return conversions + others


def partition_of(line: bytes, partitions: int) -> int:
    """The partition of the line's Kafka key (``partition_key``, murmur2 as the Java client
    and Faust hash it). A line the intake refuses has no key and goes to partition 0 (on
    Kafka it would never reach a topic: the edge dead-letters it)."""
    event = PARSER.parse(line)
    if isinstance(event, Rejection):
        return 0
    return (murmur2(partition_key(event).encode()) & 0x7FFFFFFF) % partitions


def two_workers(lines: Sequence[bytes], *, seed: int, partitions: int = 2) -> Lines:
    """Split by partition, each partition in its input order, read in a seeded interleaving
    drawn uniformly among all interleavings (each next line comes from a partition with
    probability proportional to what it has left), so one partition runs ahead of the
    other by a random walk's distance, as two consumers do."""
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    streams: list[Lines] = [[] for _ in range(partitions)]
    for line in lines:
        streams[partition_of(line, partitions)].append(line)
    rng = random.Random(seed)
    cursors = [0] * partitions
    out: Lines = []
    left = len(lines)
    while left:
        pick = rng.randrange(left)
        for p, stream in enumerate(streams):
            remaining = len(stream) - cursors[p]
            if pick < remaining:
                out.append(stream[cursors[p]])
                cursors[p] += 1
                break
            pick -= remaining
        left -= 1
    return out
