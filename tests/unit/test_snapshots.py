"""State snapshots: written by a forked child while the state keeps changing, read back whole."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from clicktrail.config import Registry
from clicktrail.runtime.pipeline import Pipeline
from clicktrail.runtime.snapshots import RuntimeState, Snapshots


def state(offset: int) -> RuntimeState:
    pipeline = Pipeline(Registry())
    pipeline.stores["dedup"]["seen-before-the-fork"] = 1
    return RuntimeState(
        offset=offset,
        pipeline=pipeline,
        processed=offset,
        learned=datetime(2026, 3, 1, tzinfo=UTC),
        last=("log:x", offset),
        alert_state={"open": {}},
    )


def test_a_child_writes_the_state_as_it_was_at_the_fork(tmp_path: Path) -> None:
    snapshots = Snapshots(tmp_path / "state.snapshot", every_seconds=0)
    saved = state(42)
    assert snapshots.due()
    snapshots.start(saved)
    assert not snapshots.due()  # one child at a time
    saved.pipeline.stores["dedup"]["seen-after-the-fork"] = 1  # the parent goes on
    assert snapshots.wait() == 42
    assert snapshots.poll() is None
    restored = snapshots.load(Registry())
    assert restored is not None
    assert restored.offset == 42 and restored.last == ("log:x", 42)
    assert dict(restored.pipeline.stores["dedup"]) == {"seen-before-the-fork": 1}
    assert restored.alert_state == {"open": {}}


def test_a_child_that_cannot_write_reports_no_offset(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where a directory should be")
    snapshots = Snapshots(blocked / "state.snapshot", every_seconds=0)
    snapshots.start(state(7))
    assert snapshots.wait() is None
    assert not list(tmp_path.glob("*.snapshot*"))
