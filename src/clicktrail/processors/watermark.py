"""Event time for a pipeline fed by disorderly inputs: watermarks with bounded out-of-orderness.

The pipeline's clock decides when a conversion has waited long enough for its click, when
a partner's hourly window closes and when a click's label is due. Taking it from the latest
event seen lets one early event (a duplicate resent days later, a device with its clock
ahead) end every wait at once. So, as Flink's and Kafka Streams' watermarks do:

* each **input** (a topic-partition, a replayed file) keeps the latest event time it has
  seen, and its watermark is that time minus the **allowed lateness**
  (``event_time.allowed_lateness_seconds``): events up to that much out of order are
  not late;
* an event more than ``event_time.max_jump_seconds`` ahead of its input's clock is
  **early**: processed like any other, but it moves the clock only when
  ``event_time.confirmations`` early events come in a row (traffic resuming after a
  quiet spell), and then only to the earliest of them. An input's clock starts at the
  earliest of its first ``confirmations`` events for the same reason;
* the pipeline's watermark is the **minimum over active inputs**, and it never goes
  back. An input can be declared before it sends anything (a replayed file is split into
  one input per event type, the types found in it): until it starts, the watermark stays
  where it is, so a file that lists every conversion before any click reads its clicks
  on time, as a consumer of two topics would. An input is idle, and left out, when it
  sent nothing in the last ``event_time.idle_messages`` messages (deterministic:
  replays) or, in a live runtime that gives the clock a wall clock, for
  ``event_time.idle_seconds`` (Flink's
  ``withIdleness``: a Kafka partition that went quiet must not hold every wait open).
  When every input is idle the stream has paused with everything read, and the
  watermark moves to the latest input's, early events included (so waits end when
  traffic stops: the last events of a sparse partition are often far apart; live events
  cannot be more than ``intake.max_future_skew_seconds`` ahead of the wall clock).

An event behind the watermark is **late**: it is still processed (a late click re-joins
the conversions that left without it), and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
"""Before any input's clock has started (the contract refuses earlier event times)."""


@dataclass(slots=True)
class InputClock:
    """The clock of one input: its latest trusted event time, and the early run so far."""

    latest: float | None = None
    pending: list[float] = field(default_factory=list)
    """Before the clock starts: its first events; after: the current run of early ones."""
    last_message: int = 0
    last_wall: float = 0.0
    declared: bool = False
    """Known to come before it sent anything (a replayed file's event types): until it
    starts, or goes idle, it holds the watermark where it is."""


@dataclass(slots=True)
class ClockStats:
    events: int = 0
    late: int = 0
    early: int = 0
    inputs: int = 0


class EventClock:
    """Watermarks per input and for the pipeline; pure, one instance per pipeline."""

    def __init__(
        self,
        *,
        allowed_lateness: timedelta = timedelta(minutes=5),
        max_jump: timedelta = timedelta(hours=6),
        confirmations: int = 3,
        idle_messages: int = 50_000,
        idle_seconds: float = 60.0,
        wall: Callable[[], float] | None = None,
    ) -> None:
        """``wall``: a monotonic wall clock, for live runtimes only; without it idleness
        counts messages alone and the clock is a pure function of its input."""
        if allowed_lateness < timedelta(0) or max_jump <= timedelta(0):
            raise ValueError("allowed lateness must be >= 0 and the maximum jump > 0")
        if confirmations < 1 or idle_messages < 1:
            raise ValueError("confirmations and idle_messages must be at least 1")
        if idle_seconds <= 0:
            raise ValueError("idle_seconds must be > 0")
        self.lateness = allowed_lateness.total_seconds()
        self.max_jump = max_jump.total_seconds()
        self.confirmations = confirmations
        self.idle_messages = idle_messages
        self.idle_seconds = idle_seconds
        self.wall = wall
        self.inputs: dict[str, InputClock] = {}
        self.messages = 0
        self._watermark = BEGINNING.timestamp()
        self.stats = ClockStats()

    @property
    def watermark(self) -> datetime:
        return datetime.fromtimestamp(self._watermark, UTC)

    def observe(self, source: str, ts: datetime) -> bool:
        """Take one event of ``source`` into account; True when it is late."""
        at = ts.timestamp()
        self.messages += 1
        self.stats.events += 1
        clock = self.inputs.get(source)
        if clock is None:
            clock = self.inputs[source] = InputClock()
            self.stats.inputs = len(self.inputs)
        clock.last_message = self.messages
        now = self.wall() if self.wall is not None else 0.0
        clock.last_wall = now
        late = at < self._watermark
        if late:
            self.stats.late += 1
        self._advance(clock, at)
        self._recompute(now)
        return late

    def _advance(self, clock: InputClock, at: float) -> None:
        if clock.latest is None:
            clock.pending.append(at)
            if len(clock.pending) >= self.confirmations:
                clock.latest = min(clock.pending)
                clock.pending = []
            return
        if at <= clock.latest:
            clock.pending = []
            return
        if at - clock.latest <= self.max_jump:
            clock.latest = at
            clock.pending = []
            return
        self.stats.early += 1
        clock.pending.append(at)
        if len(clock.pending) >= self.confirmations:
            clock.latest = min(clock.pending)
            clock.pending = []

    def declare(self, source: str) -> None:
        """An input that will come (see :attr:`InputClock.declared`)."""
        if source not in self.inputs:
            now = self.wall() if self.wall is not None else 0.0
            self.inputs[source] = InputClock(
                last_message=self.messages, last_wall=now, declared=True
            )
            self.stats.inputs = len(self.inputs)

    def refresh(self) -> None:
        """Re-check which inputs went idle by the wall clock (a live runtime's timer calls
        this: with no traffic, no event would)."""
        self._recompute(self.wall() if self.wall is not None else 0.0)

    def _recompute(self, now: float) -> None:
        horizon = self.messages - self.idle_messages
        quiet_since = now - self.idle_seconds if self.wall is not None else None

        def active(clock: InputClock) -> bool:
            recent = clock.last_message > horizon
            return recent and (quiet_since is None or clock.last_wall > quiet_since)

        inputs = [c for c in self.inputs.values() if active(c)]
        if any(c.declared and c.latest is None for c in inputs):
            return  # a declared input has not started: nothing can be known to be late
        marks = [c.latest - self.lateness for c in inputs if c.latest is not None]
        if marks:
            self._watermark = max(self._watermark, min(marks))
        elif quiet_since is not None and not inputs:  # all quiet: what was sent has been read
            paused = [
                max([*([c.latest] if c.latest is not None else []), *c.pending]) - self.lateness
                for c in self.inputs.values()
                if c.latest is not None or c.pending
            ]
            if paused:
                self._watermark = max(self._watermark, *paused)

    def finish(self) -> None:
        """End of input (a replay read to its end): nothing can be late any more, so the
        watermark moves up to the latest trusted event time, as a bounded source's final
        watermark does. Early events that never found company stay outliers."""
        latest = [c.latest for c in self.inputs.values() if c.latest is not None]
        starting = [min(c.pending) for c in self.inputs.values() if c.latest is None and c.pending]
        marks = latest or starting
        if marks:
            self._watermark = max(self._watermark, *marks)

    def watermark_seconds(self) -> float:
        """The watermark as Unix seconds (for the metrics)."""
        return self._watermark

    def delay_seconds(self) -> float:
        """How far the watermark trails the latest trusted event time (for the metrics)."""
        latest = [c.latest for c in self.inputs.values() if c.latest is not None]
        return max(latest) - self._watermark if latest else 0.0
