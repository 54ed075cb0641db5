"""Fraud verdicts on a real Faust worker are those of the embedded runtime.

The fraud scenario (planted fraud in clean traffic) runs through the embedded runtime
into this process's chDB and through one Faust worker on the real broker into its
own; the ``fraud_verdicts`` rows must be the same, name the planted subjects, and
leave the clean ones alone, and the verdicts on the attributed rows and the partner
figures must agree too. One worker: with several, each counts the clicks of its own
partitions (see ``processors/fraud/windows.py``), a known limit of scale-out.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.integration.kafka_helpers import bootstrap, produce, write_registry
from tests.integration.test_faust_worker import Worker, wait_until_settled
from tests.scenarios import fraud as scenario

from clicktrail.config import parse_registry
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import Store

pytestmark = pytest.mark.kafka


def run_embedded(store: Store) -> dict[str, Any]:
    runtime = EmbeddedRuntime(parse_registry(scenario.REGISTRY), store)
    runtime.bus.begin_source("replay:fraud")
    for event in scenario.events():
        runtime.submit_raw(orjson.dumps(event), "test")
    runtime.close(end_of_input=True)
    return scenario.figures(store)


@pytest.mark.parametrize("partitions", [1, 2])
def test_a_faust_worker_gives_the_embedded_runtimes_verdicts(
    tmp_path: Path, store: Store, partitions: int
) -> None:
    """All events are produced at once, so the worker reads a backlog of the clicks and
    conversions topics interleaved in its own order, unlike the embedded runtime; a
    conversion judged before its click is convicted is revised when the click is."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = tmp_path / "registry.yaml"
    write_registry(config, scenario.REGISTRY)
    worker = Worker(tmp_path, "w1", prefix, config, partitions=partitions).start()
    try:
        produce(bootstrap(), scenario.events(), prefix=prefix)
        wait_until_settled(prefix, prefix, workers=(worker,))
    finally:
        worker.stop()
    on_faust = worker.report("tests.scenarios.fraud")
    embedded = run_embedded(store)
    assert on_faust["verdicts"] == embedded["verdicts"]
    names = {subject: name for name, subject in scenario.subject_ids().items()}
    judged = [(names[r[1]], r[3], r[4]) for r in embedded["verdicts"] if r[0] != "partner"]
    assert sorted(judged) == scenario.EXPECTED_VERDICTS  # every planted subject, no clean one
    assert on_faust["marks"] == embedded["marks"]
    assert on_faust["partners"] == embedded["partners"]
