"""A Faust worker on the real broker alerts a real HTTP receiver about a brand bidder.

The events of one brand spread over all partitions of the event stage and meet
again in the brand stage (keyed by brand), so the worker sees the whole
conflict, as the embedded runtime does.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
import pytest
from tests.integration.kafka_helpers import bootstrap, produce, write_registry
from tests.integration.receivers import Receiver, verify_signature
from tests.integration.test_faust_worker import Worker, store_rows, wait_until_settled
from tests.scenarios import brand as scenario

pytestmark = pytest.mark.kafka


def test_worker_delivers_signed_deduplicated_brand_alerts(
    tmp_path: Path, receiver: Receiver
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = tmp_path / "registry.yaml"
    alerts = scenario.webhook_alerts(hook=receiver.base_url + "/ok")
    write_registry(config, scenario.registry(alerts))
    worker = Worker(tmp_path, "w", prefix, config).start()
    try:
        produce(bootstrap(), scenario.events(), prefix=prefix)
        deadline = time.monotonic() + 60
        while not any(b"critical" in hit.body for hit in receiver.hits("/ok")):
            assert time.monotonic() < deadline, (
                "no critical alert:\n" + worker.log.read_text()[-3000:]
            )
            time.sleep(0.2)
        wait_until_settled(prefix, prefix, workers=(worker,))
    finally:
        worker.stop()

    hits = receiver.hits("/ok")
    bodies = [orjson.loads(hit.body) for hit in hits]
    assert all(verify_signature(scenario.SECRET, hit.headers, hit.body) for hit in hits)
    key = "northwind|aff-jack"  # one key per brand and offender
    assert {b["dedup_key"] for b in bodies} == {key}
    severities = [b["severity"] for b in bodies]
    assert severities[-1] == "critical" and len(severities) == len(set(severities)) <= 2
    assert bodies[-1]["evidence"]["head_to_head"] is True
    stored = store_rows(
        worker.store,
        "SELECT destination, status, severity, dedup_key FROM clicktrail.alerts ORDER BY ts",
    )
    sent = [row for row in stored if row[1] == "sent"]
    assert [row[2] for row in sent] == severities
    # the clean stop wrote the conflict as it stands, not as its last threshold left it
    conflicts = store_rows(
        worker.store,
        "SELECT offender_id, impressions, clicks FROM clicktrail.brand_conflicts FINAL",
    )
    assert conflicts == [["aff-jack", scenario.OFFENDER_IMPRESSIONS, 0]]
