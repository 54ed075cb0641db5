"""``clicktrail run``'s state across restarts: the hand-computed scenario split by a stop, a
registry change in between, and a snapshot that cannot be read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from tests.integration.test_embedded_pipeline import expected_attribution
from tests.scenarios import attribution as scenario

from clicktrail.config import parse_registry
from clicktrail.runtime.embedded import SNAPSHOT_FILE, EmbeddedRuntime
from clicktrail.runtime.snapshots import SnapshotError
from clicktrail.sinks.store import Store


def feed(runtime: EmbeddedRuntime, events: list[dict[str, object]]) -> None:
    for event in events:
        runtime.submit_raw(orjson.dumps(event), "test")
    runtime.bus.flush()  # what the edge's answer waits for


def test_a_stop_between_click_and_conversion_changes_nothing(store: Store, tmp_path: Path) -> None:
    """The events before the stop, a registry with one more campaign, the rest: the store is
    the one a single run gives, so clicks, paths and seen ids all came back."""
    events = [*scenario.EVENTS, *scenario.filler()]
    half = len(scenario.EVENTS) // 2
    first = EmbeddedRuntime(parse_registry(scenario.REGISTRY), store, data_dir=tmp_path)
    feed(first, events[:half])
    first.close()
    assert (tmp_path / SNAPSHOT_FILE).is_file()

    changed = dict(scenario.REGISTRY)
    changed["campaigns"] = {
        **scenario.REGISTRY["campaigns"],
        "other": {"advertiser": "acme", "landing_url": "https://acme.example/o?c={click_id}"},
    }
    second = EmbeddedRuntime(parse_registry(changed), store, data_dir=tmp_path)
    assert "other" in second.pipeline.registry.campaigns
    assert second.processed == first.processed
    feed(second, events[half:])
    feed(second, events[:half])  # a client resending everything it sent before the stop
    second.close(end_of_input=True)
    expected_attribution(store)


def test_a_damaged_snapshot_is_refused_with_the_reason(store: Store, tmp_path: Path) -> None:
    runtime = EmbeddedRuntime(parse_registry(scenario.REGISTRY), store, data_dir=tmp_path)
    feed(runtime, scenario.EVENTS[:3])
    runtime.close()
    path = tmp_path / SNAPSHOT_FILE
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="damaged"):
        EmbeddedRuntime(parse_registry(scenario.REGISTRY), store, data_dir=tmp_path)


def test_the_service_says_why_it_cannot_resume(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / SNAPSHOT_FILE).write_bytes(b"not a snapshot")
    result = subprocess.run(
        [sys.executable, "-m", "clicktrail.cli.main", "run", "--dev", "--port", "0",
         "--store", f"chdb://{tmp_path / 'store'}", "--data-dir", str(state)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "is not a clicktrail state snapshot" in result.stderr
    assert "Traceback" not in result.stderr
