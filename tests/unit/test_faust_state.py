"""The Faust table adapter on a plain dict standing in for the table."""

from __future__ import annotations

import weakref
from typing import Any

from faust.streams import _current_event

from clicktrail.runtime.faust_state import FaustState, _PartitionEvent


def test_a_restarted_worker_finds_keys_written_in_another_partition_once_located() -> None:
    """The alert state is written in whichever partition's batch decided; after a restart
    the batch at hand may be another partition's, so the worker locates the keys first."""
    verdict = {"severity": "warning", "at": "2026-03-01T01:00:00+00:00"}
    table: dict[str, Any] = {"0|fraud_share|p7": verdict}
    event = _PartitionEvent("clicks", 2)
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        state = FaustState(table, "clicks")
        assert state.get("fraud_share|p7") is None  # looked for in partition 2 only
        assert state.locate() == 1
        assert state.get("fraud_share|p7") == verdict
        state["fraud_share|p7"] = {**verdict, "severity": "critical"}
        state.flush()
        assert table == {"0|fraud_share|p7": {**verdict, "severity": "critical"}}
    finally:
        _current_event.reset(token)
