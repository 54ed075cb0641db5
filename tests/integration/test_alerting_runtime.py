"""Brand-conflict alerts from the embedded runtime to real HTTP receivers, into ClickHouse."""

from __future__ import annotations

import time

import orjson
from tests.integration.receivers import Receiver, verify_signature
from tests.scenarios import brand as scenario

from clicktrail.config import parse_registry
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.alerts import AlertService, RetryPolicy
from clicktrail.sinks.store import Store

FAST = RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.5, jitter=0.5, timeout=1.0)


def runtime_for(store: Store, policy: RetryPolicy = FAST, **urls: str) -> EmbeddedRuntime:
    registry = parse_registry(scenario.registry(scenario.webhook_alerts(**urls)))
    alerts = AlertService(registry.alerts, policy=policy)
    runtime = EmbeddedRuntime(registry, store, alerts=alerts)
    runtime.bus.begin_source("replay:brand")
    return runtime


def feed(runtime: EmbeddedRuntime) -> None:
    for event in scenario.events():
        runtime.submit_raw(orjson.dumps(event), "test")
    runtime.process()


def alert_rows(store: Store) -> list[tuple[str, str, str, int, str]]:
    return sorted(
        store.rows(
            f"SELECT destination, status, severity, attempt, dedup_key FROM {store.database}.alerts"
        )
    )


def test_planted_bidder_alerts_once_per_severity_signed_with_evidence(
    store: Store, receiver: Receiver
) -> None:
    runtime = runtime_for(store, hook=receiver.base_url + "/ok")
    feed(runtime)
    runtime.close(end_of_input=True)

    hits = receiver.hits("/ok")
    bodies = [orjson.loads(hit.body) for hit in hits]
    assert all(verify_signature(scenario.SECRET, hit.headers, hit.body) for hit in hits)
    # one alert on reaching warning, one on the escalation; the updates between are deduplicated
    assert [b["severity"] for b in bodies] == ["warning", "critical"]
    key = "northwind|aff-jack"  # one key per brand and offender
    assert {b["dedup_key"] for b in bodies} == {key}
    critical = bodies[-1]["evidence"]
    assert critical["offender"] == "aff-jack" and critical["head_to_head"] is True
    assert critical["keywords"] == [scenario.KEYWORD]
    assert critical["est_cpc_inflation"] >= 0.2  # what made it critical, as estimated then
    assert not any("agency" in hit.body.decode() for hit in hits)

    rows = alert_rows(store)
    sent = [r for r in rows if r[1] == "sent"]
    assert [(r[0], r[2], r[3]) for r in sent] == [("hook", "critical", 1), ("hook", "warning", 1)]
    assert all(r[1] in {"sent", "suppressed"} and r[4] == key for r in rows)
    [(offender, inflation)] = store.rows(
        f"SELECT offender_id, est_cpc_inflation FROM {store.database}.brand_conflicts FINAL"
    )
    assert offender == "aff-jack" and abs(inflation - scenario.INFLATION) < 0.05


def test_failing_destination_is_retried_and_does_not_block_the_healthy_one(
    store: Store, receiver: Receiver
) -> None:
    runtime = runtime_for(store, down=receiver.base_url + "/fail", hook=receiver.base_url + "/ok")
    feed(runtime)
    runtime.close(end_of_input=True)

    assert len(receiver.hits("/ok")) == 2
    assert len(receiver.hits("/fail")) == 2 * FAST.attempts
    failing = [r for r in alert_rows(store) if r[0] == "down" and r[1] != "suppressed"]
    assert sorted((r[2], r[3], r[1]) for r in failing) == sorted(
        (severity, attempt, "failed" if attempt == FAST.attempts else "retrying")
        for severity in ("critical", "warning")
        for attempt in range(1, FAST.attempts + 1)
    )


def test_pipeline_keeps_flowing_while_a_destination_hangs(store: Store, receiver: Receiver) -> None:
    slow = RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.1, jitter=0, timeout=2.0)
    runtime = runtime_for(store, slow, hung=receiver.base_url + "/hang")
    started = time.monotonic()
    feed(runtime)
    runtime.flush()
    elapsed = time.monotonic() - started
    impressions = store.rows(f"SELECT count() FROM {store.database}.impressions")[0][0]
    # every event is stored while both deliveries still wait on the hanging receiver
    assert impressions == len([e for e in scenario.events() if e["type"] == "impression"])
    assert runtime.alerts.pending == 2 and elapsed < slow.timeout
    time.sleep(max(0.0, started + slow.timeout + 0.3 - time.monotonic()))
    receiver.release.set()  # first attempts timed out; the receiver answers the retries
    runtime.close(end_of_input=True)
    statuses = [(r[2], r[3], r[1]) for r in alert_rows(store) if r[1] != "suppressed"]
    # the escalation waited behind the warning on that destination, then went through at once
    assert sorted(statuses) == [
        ("critical", 1, "sent"),
        ("warning", 1, "retrying"),
        ("warning", 2, "sent"),
    ]


def test_a_rerun_of_the_same_input_alerts_again_but_stores_each_attempt_once(
    store: Store, receiver: Receiver
) -> None:
    """Alert rows are keyed by (alert, destination, attempt): a replay writes none twice."""
    for _ in range(2):
        runtime = runtime_for(store, hook=receiver.base_url + "/ok")
        feed(runtime)
        runtime.close(end_of_input=True)
    assert len(receiver.hits("/ok")) == 4  # a fresh process has no dedup memory: at least once
    ids = store.rows(f"SELECT alert_id, count() FROM {store.database}.alerts GROUP BY alert_id")
    assert ids and all(count == 1 for _, count in ids)


def test_a_digest_route_sends_the_day_as_one_message_at_the_end_of_a_replay(
    store: Store, receiver: Receiver
) -> None:
    """Held changes are stored as ``digested``; the replay's last day goes out at its end."""
    alerts = scenario.webhook_alerts(hook=receiver.base_url + "/ok")
    alerts["routes"][0]["mode"] = "daily_digest"
    registry = parse_registry(scenario.registry(alerts))
    runtime = EmbeddedRuntime(registry, store, alerts=AlertService(registry.alerts, policy=FAST))
    runtime.bus.begin_source("replay:brand")
    feed(runtime)
    runtime.close(end_of_input=True)

    [hit] = receiver.hits("/ok")
    body = orjson.loads(hit.body)
    assert verify_signature(scenario.SECRET, hit.headers, hit.body)
    assert body["kind"] == "digest"
    changes = [(c["change"], c["severity"]) for c in body["evidence"]["changes"]]
    assert changes == [("new", "warning"), ("escalated", "critical")]
    assert [v["key"] for v in body["evidence"]["open"]] == ["northwind|aff-jack"]
    rows = sorted(
        store.rows(f"SELECT kind, status FROM {store.database}.alerts WHERE destination = 'hook'")
    )
    assert rows == [
        ("brand_conflict", "digested"),
        ("brand_conflict", "digested"),
        ("digest", "sent"),
    ]
