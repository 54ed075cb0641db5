"""The per-action models on a Faust worker: labels come back over the labels topic to the
click's partition, quality and scores land in ClickHouse as in the embedded runtime, and a
restarted worker restores the models from its checkpoint."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tests.integration.kafka_helpers import bootstrap, produce, write_registry
from tests.integration.test_faust_worker import Worker, wait_until_settled
from tests.scenarios import models as scenario

from clicktrail.processors.models import loads

pytestmark = pytest.mark.kafka


def test_worker_learns_from_routed_labels_and_restores_its_models(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = tmp_path / "registry.yaml"
    write_registry(config, scenario.REGISTRY)
    worker = Worker(tmp_path, "w", prefix, config).start()
    try:
        produce(bootstrap(), scenario.EVENTS, prefix=prefix)
        wait_until_settled(prefix, prefix, workers=(worker,))
    finally:
        worker.stop()  # SIGTERM: the models are checkpointed on the way out
    report = worker.report("tests.scenarios.models")
    # the same hand-worked labels as the embedded runtime learns
    assert report["quality"]["lead"] == [4, 1] and report["quality"]["purchase"] == [4, 1]
    keys = scenario.KEYS
    assert report["scored"] == sorted(keys[f"k{n}"] for n in range(1, 7))
    assert report["not_learned"] == [keys["k3"]]

    checkpoint = tmp_path / "w" / "data" / "models.ckpt"
    restored = loads(checkpoint.read_bytes(), ["lead", "purchase"])
    assert not restored.fresh
    assert (
        restored.models.quality["lead"].examples,
        restored.models.quality["lead"].positives,
    ) == (
        4,
        1,
    )
    # a restarted worker scores a new click with what it learned, not with fresh models
    again = Worker(tmp_path, "w2", prefix, config)
    again.store, again.args = worker.store, [*worker.args]
    again.start()
    try:
        produce(bootstrap(), [scenario.click(7, 2 * 86_400 + 60)], prefix=prefix)
        wait_until_settled(prefix, prefix, workers=(again,))
    finally:
        again.stop()
    scores = again.report("tests.scenarios.models")["scores"][keys["k7"]]
    assert set(scores) == {"lead", "purchase"}
    assert all(p < 0.5 for p in scores.values()), scores  # fresh models say 0.5
