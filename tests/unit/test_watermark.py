"""The pipeline's clock: watermarks with bounded out-of-orderness, robust to early events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clicktrail.processors.watermark import BEGINNING, EventClock

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def clock(**kw: object) -> EventClock:
    settings = {"allowed_lateness": timedelta(minutes=5), "confirmations": 3, **kw}
    return EventClock(**settings)  # type: ignore[arg-type]


def feed(c: EventClock, source: str, *minutes: float) -> list[bool]:
    return [c.observe(source, at(m)) for m in minutes]


class TestOneInput:
    def test_starts_at_the_earliest_of_its_first_events_minus_the_lateness(self) -> None:
        c = clock()
        feed(c, "a", 10, 4)
        assert c.watermark == BEGINNING, "not started before `confirmations` events"
        feed(c, "a", 12)
        assert c.watermark == at(4 - 5)

    def test_follows_the_latest_event_minus_the_lateness(self) -> None:
        c = clock()
        feed(c, "a", 0, 1, 2, 30, 29, 31)
        assert c.watermark == at(31 - 5)

    def test_one_early_event_moves_nothing(self) -> None:
        c = clock()
        feed(c, "a", 0, 1, 2)
        feed(c, "a", 3 * 24 * 60)  # a duplicate three days ahead
        feed(c, "a", 3, 4)
        assert c.watermark == at(4 - 5)
        assert c.stats.early == 1

    def test_early_events_in_a_row_are_traffic_resuming(self) -> None:
        c = clock()
        feed(c, "a", 0, 1, 2)
        day = 24 * 60
        feed(c, "a", day + 2, day + 1, day + 3)
        assert c.watermark == at(day + 1 - 5), "to the earliest of the run"

    def test_an_ordinary_event_breaks_an_early_run(self) -> None:
        c = clock()
        feed(c, "a", 0, 1, 2)
        day = 24 * 60
        feed(c, "a", day, day + 1, 3, day + 2)
        assert c.watermark == at(3 - 5)

    def test_late_events_are_counted_and_move_nothing_back(self) -> None:
        c = clock()
        feed(c, "a", 0, 1, 2, 20)
        assert feed(c, "a", 2) == [True]
        assert c.watermark == at(15)
        assert c.stats.late == 1


class TestInputs:
    def test_the_watermark_is_the_slowest_active_input(self) -> None:
        c = clock()
        feed(c, "a", 0, 1, 2)
        feed(c, "b", 0, 1, 2)
        feed(c, "a", 60)
        feed(c, "b", 10)
        assert c.watermark == at(10 - 5)

    def test_an_idle_input_stops_holding_it_back(self) -> None:
        c = clock(idle_messages=5)
        feed(c, "b", 0, 1, 2)
        feed(c, "a", 10, 11, 12, 13)
        assert c.watermark == at(0 - 5), "b sent something 4 messages ago: still active"
        feed(c, "a", 14)
        assert c.watermark == at(14 - 5)

    def test_never_goes_back(self) -> None:
        c = clock()
        feed(c, "a", 50, 51, 52)
        before = c.watermark
        feed(c, "b", 0, 1, 2)
        assert c.watermark == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"allowed_lateness": timedelta(seconds=-1)},
        {"max_jump": timedelta(0)},
        {"confirmations": 0},
        {"idle_messages": 0},
        {"idle_seconds": 0},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EventClock(**kwargs)  # type: ignore[arg-type]


def test_the_end_of_input_moves_the_watermark_to_the_latest_event() -> None:
    c = clock()
    feed(c, "a", 0, 1, 2, 30)
    feed(c, "a", 3 * 24 * 60)  # an outlier that never found company
    c.finish()
    assert c.watermark == at(30)


class WallClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def two_inputs(wall: WallClock | None = None) -> EventClock:
    """Input "a" at minutes 0-2, input "b" at minutes 30-32, both at wall second 0."""
    c = clock(idle_seconds=60, wall=wall)
    feed(c, "a", 0, 1, 2)
    feed(c, "b", 30, 31, 32)
    return c


class TestWallClockIdleness:
    """Live workers: a partition that went quiet stops holding the watermark back."""

    def test_a_quiet_input_is_left_out_after_idle_seconds(self) -> None:
        wall = WallClock()
        c = two_inputs(wall)
        wall.now = 59
        c.refresh()
        assert c.watermark == at(0 - 5), "a quiet for 59 s: still active"
        wall.now = 61
        feed(c, "b", 40)
        assert c.watermark == at(40 - 5)

    def test_when_every_input_is_quiet_the_latest_one_decides(self) -> None:
        wall = WallClock()
        c = two_inputs(wall)
        wall.now = 61
        c.refresh()
        assert c.watermark == at(30 - 5)

    def test_an_idle_input_that_resumes_holds_the_watermark_again_without_moving_it_back(
        self,
    ) -> None:
        wall = WallClock()
        c = two_inputs(wall)
        wall.now = 61
        c.refresh()
        assert feed(c, "a", 3) == [True], "behind the watermark: late"
        feed(c, "b", 50)
        assert c.watermark == at(30 - 5), "a is active again and behind: nothing moves"

    def test_without_a_wall_clock_only_messages_count(self) -> None:
        c = two_inputs()
        c.refresh()
        assert c.watermark == at(0 - 5)

    def test_a_pause_trusts_the_early_events_it_holds(self) -> None:
        """The last events of a sparse partition come after a gap (early): when every input
        is quiet, nothing else will confirm them, and the waits they end must end."""
        wall = WallClock()
        c = two_inputs(wall)
        feed(c, "b", 30 + 16)  # 16 minutes after b's clock: early, alone
        assert c.watermark == at(0 - 5)
        wall.now = 61
        c.refresh()
        assert c.watermark == at(46 - 5)


class TestDeclaredInputs:
    """A replayed file's event types: one that has not started holds the watermark."""

    def test_a_declared_input_holds_the_watermark_until_it_starts(self) -> None:
        c = clock(confirmations=1)
        c.declare("file/click")
        feed(c, "file/conversion", 100, 200, 300)
        assert c.watermark == BEGINNING, "the clicks may still be before all of these"
        feed(c, "file/click", 90)
        assert c.watermark == at(90 - 5)

    def test_one_that_never_comes_is_idle_after_idle_messages(self) -> None:
        c = clock(confirmations=1, idle_messages=3)
        c.declare("file/impression")
        feed(c, "file/click", 10, 11)
        assert c.watermark == BEGINNING
        feed(c, "file/click", 12)  # three messages since it was declared: idle
        assert c.watermark == at(12 - 5)
