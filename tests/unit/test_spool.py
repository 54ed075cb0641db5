"""The local spool: ordered, durable, crash-tolerant, and empty once delivered."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from clicktrail.bus.spool import Spool, SpoolError, SpoolPosition, encode_frame

Open = Callable[..., Spool]


@pytest.fixture(autouse=True)
def _logs_to_the_current_stream() -> None:
    """A test that ran the CLI in-process may have left structlog writing to a closed stream."""
    structlog.reset_defaults()


@pytest.fixture
def open_spool() -> Iterator[Open]:
    """Spool factory that closes every spool it made (no file handle outlives a test)."""
    made: list[Spool] = []

    def make(directory: Path, **kwargs: Any) -> Spool:
        spool = Spool(directory, **kwargs)
        made.append(spool)
        return spool

    yield make
    for spool in made:
        if not spool.closed:
            spool.close()


def fill(spool: Spool, n: int, start: int = 0) -> list[bytes]:
    values = [f'{{"seq":{i}}}'.encode() for i in range(start, start + n)]
    for i, value in enumerate(values, start):
        spool.append("clicktrail.clicks" if i % 2 else "clicktrail.impressions", b"k%d" % i, value)
    return values


def drain(spool: Spool, chunk: int = 7) -> list[bytes]:
    out = []
    while spool.depth:
        records, end = spool.read(chunk)
        assert records, "depth says records are owed but none can be read"
        out.extend(r.value for r in records)
        spool.commit(end, len(records))
    return out


class TestOrder:
    def test_records_come_back_in_append_order_with_topic_and_key(
        self, tmp_path: Path, open_spool: Open
    ) -> None:
        spool = open_spool(tmp_path, fsync="never")
        values = fill(spool, 50)
        records, _ = spool.read(3)
        assert [(r.topic, r.key) for r in records] == [
            ("clicktrail.impressions", b"k0"),
            ("clicktrail.clicks", b"k1"),
            ("clicktrail.impressions", b"k2"),
        ]
        assert drain(spool) == values
        assert spool.depth == 0

    def test_read_without_commit_rereads_the_same_records(
        self, tmp_path: Path, open_spool: Open
    ) -> None:
        spool = open_spool(tmp_path, fsync="never")
        fill(spool, 5)
        first, _ = spool.read(3)
        again, _ = spool.read(3)
        assert first == again

    def test_order_holds_across_segment_rotation(self, tmp_path: Path, open_spool: Open) -> None:
        spool = open_spool(tmp_path, fsync="never", segment_bytes=1024)
        values = fill(spool, 300)
        assert len(list(tmp_path.glob("*.spool"))) > 3
        assert drain(spool, chunk=64) == values

    def test_appends_during_replay_are_read_after_the_older_ones(
        self, tmp_path: Path, open_spool: Open
    ) -> None:
        spool = open_spool(tmp_path, fsync="never", segment_bytes=1024)
        values = fill(spool, 40)
        records, end = spool.read(10)
        spool.commit(end, len(records))
        values += fill(spool, 40, start=40)
        assert [r.value for r in records] + drain(spool) == values


class TestCleanup:
    def test_delivered_spool_leaves_one_empty_segment(
        self, tmp_path: Path, open_spool: Open
    ) -> None:
        spool = open_spool(tmp_path, fsync="always", segment_bytes=1024)
        fill(spool, 200)
        drain(spool, chunk=50)
        segments = list(tmp_path.glob("*.spool"))
        assert len(segments) == 1 and segments[0].stat().st_size == 0
        assert spool.size_bytes == 0

    def test_size_counts_frames_and_shrinks_on_commit(
        self, tmp_path: Path, open_spool: Open
    ) -> None:
        spool = open_spool(tmp_path, fsync="never")
        spool.append("t", b"k", b"v" * 100)
        spool.append("t", b"k", b"v" * 100)
        one = len(encode_frame("t", b"k", b"v" * 100))
        assert spool.size_bytes == 2 * one
        _records, end = spool.read(1)
        spool.commit(end, 1)
        assert spool.size_bytes == one and spool.depth == 1


class TestRecovery:
    def test_reopened_spool_resumes_from_the_committed_position(
        self, tmp_path: Path, open_spool: Open
    ) -> None:
        spool = open_spool(tmp_path, fsync="always", segment_bytes=2048)
        values = fill(spool, 100)
        _records, end = spool.read(30)
        spool.commit(end, 30)
        spool.close()
        again = open_spool(tmp_path, fsync="always", segment_bytes=2048)
        assert again.depth == 70
        assert drain(again) == values[30:]

    def test_torn_tail_is_cut_off_and_earlier_records_survive(
        self, tmp_path: Path, open_spool: Open
    ) -> None:
        spool = open_spool(tmp_path, fsync="always")
        values = fill(spool, 10)
        spool.close()
        segment = next(tmp_path.glob("*.spool"))
        frame = encode_frame("clicktrail.clicks", b"k10", b'{"seq":10}')
        with segment.open("ab") as handle:
            handle.write(frame[: len(frame) // 2])  # a crash mid-write
        again = open_spool(tmp_path, fsync="always")
        assert again.depth == 10
        assert drain(again) == values

    def test_corrupted_frame_is_not_delivered(self, tmp_path: Path, open_spool: Open) -> None:
        spool = open_spool(tmp_path, fsync="always")
        fill(spool, 3)
        spool.close()
        segment = next(tmp_path.glob("*.spool"))
        data = bytearray(segment.read_bytes())
        data[-2] ^= 0xFF  # flip a byte inside the last frame
        segment.write_bytes(bytes(data))
        assert open_spool(tmp_path).depth == 2

    def test_unflushed_appends_are_readable_by_a_new_process_after_sync(
        self, tmp_path: Path, open_spool: Open
    ) -> None:
        spool = open_spool(tmp_path, fsync="interval", fsync_interval=3600)
        fill(spool, 5)
        spool.sync()
        spool._lock.close()  # what a killed process leaves behind: no close(), lock released
        assert open_spool(tmp_path).depth == 5


class TestSettings:
    def test_one_process_per_directory(self, tmp_path: Path, open_spool: Open) -> None:
        open_spool(tmp_path)
        with pytest.raises(SpoolError, match="in use by another process"):
            Spool(tmp_path)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"fsync": "sometimes"}, "fsync must be one of"),
            ({"fsync_interval": 0}, "fsync_interval"),
            ({"segment_bytes": 10}, "segment_bytes"),
        ],
    )
    def test_bad_settings_fail_at_construction(
        self, tmp_path: Path, kwargs: dict[str, object], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            Spool(tmp_path, **kwargs)  # type: ignore[arg-type]

    def test_commit_cannot_go_backwards(self, tmp_path: Path, open_spool: Open) -> None:
        spool = open_spool(tmp_path)
        fill(spool, 3)
        _records, end = spool.read(2)
        spool.commit(end, 2)
        with pytest.raises(ValueError, match="cannot commit"):
            spool.commit(SpoolPosition(end.segment, 0), 1)

    def test_interval_policy_syncs_when_the_interval_has_passed(
        self, tmp_path: Path, open_spool: Open
    ) -> None:
        now = [0.0]
        spool = open_spool(tmp_path, fsync="interval", fsync_interval=1.0, clock=lambda: now[0])
        spool.append("t", b"k", b"v")
        segment = next(tmp_path.glob("*.spool"))
        assert segment.stat().st_size == 0  # still in the write buffer
        now[0] = 2.0
        spool.maybe_sync()
        assert segment.stat().st_size == len(encode_frame("t", b"k", b"v"))
