"""A Faust worker's own ``/metrics`` (``--metrics-port``), on the real broker: its stage,
dead-letter and sink figures are what its store holds, and its lag drains to zero."""

from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path

import pytest
from tests.exposition import parse
from tests.integration.kafka_helpers import bootstrap, produce, write_registry
from tests.integration.test_faust_worker import Worker, store_rows, wait_until_settled
from tests.scenarios import attribution as scenario

from clicktrail.edge.serve import free_port

pytestmark = pytest.mark.kafka


def test_a_worker_serves_its_pipeline_metrics(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = write_registry(tmp_path / "registry.yaml", scenario.REGISTRY)
    port = free_port()
    worker = Worker(tmp_path, "w1", prefix, config)
    worker.args += ["--metrics-port", str(port)]
    worker.start()
    try:
        events = [*scenario.EVENTS, *scenario.filler()]
        produce(bootstrap(), events, raw=[("clicks", b"not json")], prefix=prefix)
        wait_until_settled(prefix, prefix, workers=(worker,))
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
            metrics = parse(reply.read().decode())
    finally:
        worker.stop()
    assert not any(name.startswith("clicktrail_edge_") for name in metrics)
    taken = metrics["clicktrail_stage_messages_total"]
    assert taken.value(stage="event") == len(events) + 1
    assert metrics["clicktrail_dead_letters_total"].by("reason") == {("poison_message",): 1.0}
    lag = metrics["clicktrail_consumer_lag_messages"].by("topic")
    assert f"{prefix}.clicks" in {topic for (topic,) in lag}
    assert sum(lag.values()) == 0
    written = metrics["clicktrail_sink_rows_written_total"].by("table")
    records = metrics["clicktrail_stage_records_total"].by("stage", "to", "type")
    for table, kind in (("clicks", "click"), ("impressions", "impression")):
        rows = store_rows(worker.store, f"SELECT count() FROM clicktrail.{table}")[0][0]
        assert written[table,] == records["event", "store", kind] == rows > 0
    assert metrics["clicktrail_pipeline_watermark_lag_seconds"].value() > 0
