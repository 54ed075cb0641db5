"""The embedded runtime's event log and the durable bus in front of the processors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clicktrail.bus.durable import DurableBus
from clicktrail.bus.eventlog import EventLog, EventLogError
from clicktrail.contracts import DeadLetter


def records(log: EventLog, after: int = 0) -> list[tuple[int, str, str, bytes]]:
    return list(log.read(after))


def test_records_are_numbered_and_read_back_after_a_number(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    assert [log.append("clicks", f"k{n}", b"v%d" % n) for n in range(1, 4)] == [1, 2, 3]
    assert records(log) == []  # nothing is read before it is synced
    assert log.sync() == 3
    assert records(log, after=1) == [(2, "clicks", "k2", b"v2"), (3, "clicks", "k3", b"v3")]
    log.close()
    reopened = EventLog(tmp_path)
    assert reopened.last == 3
    assert reopened.append("clicks", "k4", b"v4") == 4
    reopened.close()


def test_a_torn_tail_is_cut_off_and_numbering_goes_on(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    for _ in range(3):
        log.append("clicks", "k", b"x" * 100)
    log.close()
    segment = tmp_path / f"{1:020d}.log"
    data = segment.read_bytes()
    segment.write_bytes(data[:-30])  # a crash in the middle of the third frame
    reopened = EventLog(tmp_path)
    assert reopened.last == 2
    assert reopened.append("clicks", "k", b"y") == 3
    reopened.sync()
    assert [seq for seq, *_ in records(reopened)] == [1, 2, 3]
    assert records(reopened)[-1][3] == b"y"
    reopened.close()


def test_release_deletes_only_segments_a_snapshot_covers(tmp_path: Path) -> None:
    log = EventLog(tmp_path, segment_bytes=1024)
    for _ in range(40):
        log.append("clicks", "k", b"z" * 200)
    log.sync()
    firsts = log.segments()
    assert len(firsts) > 3
    upto = firsts[2]  # the third segment starts here: the first two are covered
    assert log.release(upto) == 2
    assert log.segments() == firsts[2:]
    assert [seq for seq, *_ in records(log, after=upto)] == list(range(upto + 1, 41))
    assert log.release(10_000) == len(firsts) - 3  # never the segment being written
    assert log.segments() == firsts[-1:]
    log.close()


def test_numbering_continues_past_a_snapshot_when_every_segment_is_gone(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.close()
    for path in tmp_path.glob("*.log"):
        path.unlink()
    again = EventLog(tmp_path, after=500)
    assert again.append("clicks", "k", b"v") == 501
    again.close()


def test_one_process_per_log_directory(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    with pytest.raises(EventLogError, match="in use by another process"):
        EventLog(tmp_path)
    log.close()


def letter(n: int) -> DeadLetter:
    return DeadLetter(
        received_at=datetime(2026, 3, 1, tzinfo=UTC),
        event_id=f"e{n}",
        reason="invalid",
        message="m",
        source="test",
        payload="{}",
    )


def test_the_bus_hands_over_records_only_once_they_are_on_disk(tmp_path: Path) -> None:
    bus = DurableBus(EventLog(tmp_path), "log:test")
    bus.publish("dead_letters", "e1", letter(1))
    bus.publish("dead_letters", "e2", letter(2))
    assert bus.depth() == 0 and bus.unsynced == 2
    asyncio.run(bus.commit())
    drained = list(bus.drain())
    assert [(m.offset, m.origin) for m in drained] == [(1, "log:test@1"), (2, "log:test@2")]
    assert drained[0].record == letter(1)
    bus.close()


def test_concurrent_requests_share_fsyncs(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    bus = DurableBus(log, "log:test")
    syncs = 0
    sync = log.sync

    def counted() -> int:
        nonlocal syncs
        syncs += 1
        return sync()

    log.sync = counted  # type: ignore[method-assign]

    async def request(n: int) -> None:
        bus.publish("dead_letters", f"e{n}", letter(n))
        await bus.commit()

    async def main() -> None:
        await asyncio.gather(*(request(n) for n in range(200)))

    asyncio.run(main())
    assert bus.depth() == 200 and bus.unsynced == 0
    assert syncs <= 3  # one in flight while the others pile up behind it
    bus.close()


def test_a_restart_replays_what_the_state_does_not_reflect(tmp_path: Path) -> None:
    bus = DurableBus(EventLog(tmp_path), "log:test")
    for n in range(1, 6):
        bus.publish("dead_letters", f"e{n}", letter(n))
    bus.flush()
    bus.close()
    again = DurableBus(EventLog(tmp_path, after=3), "log:test")
    assert again.recover(3) == 2
    assert [(m.offset, m.record) for m in again.drain()] == [(4, letter(4)), (5, letter(5))]
    again.close()
