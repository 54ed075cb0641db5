"""Alert delivery against real HTTP receivers on loopback: signatures, retries, isolation."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import structlog
from tests.integration.receivers import Receiver, verify_signature

from clicktrail.config.registry import AlertSettings
from clicktrail.contracts.records import Alert, BrandConflict
from clicktrail.sinks.alerts import AlertDispatcher, RetryPolicy, conflict_message

SECRET = "whsec-test"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def conflict(severity: str = "warning") -> BrandConflict:
    return BrandConflict.model_validate(
        {
            "conflict_id": "c1",
            "brand_id": "acme",
            "offender_kind": "partner",
            "offender_id": "p9",
            "signal": "term",
            "keywords": ["acme shoes"],
            "first_seen": T0,
            "last_seen": T0 + timedelta(hours=1),
            "impressions": 12,
            "clicks": 3,
            "severity": severity,
            "evidence_ids": ["e1"],
        }
    )


def settings(**urls: str) -> AlertSettings:
    """One destination per keyword; names starting with ``slack`` are Slack, others webhooks."""
    destinations = {
        name: {"kind": "slack", "url": url}
        if name.startswith("slack")
        else {"kind": "webhook", "url": url, "secret": SECRET}
        for name, url in urls.items()
    }
    return AlertSettings.model_validate(
        {
            "cooldown_seconds": 600,
            "destinations": destinations,
            "routes": [{"min_severity": "info", "destinations": list(urls)}],
        }
    )


@dataclass
class Sleeps:
    """Real sleeps that remember how long they were asked to be."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(seconds)


async def run(
    alert_settings: AlertSettings,
    policy: RetryPolicy,
    conflicts: list[BrandConflict],
    sleeps: Sleeps | None = None,
    log_level: str = "warning",
) -> list[Alert]:
    async with httpx.AsyncClient(trust_env=False) as client:
        dispatcher = AlertDispatcher.from_settings(
            alert_settings, client, policy=policy, log_level=log_level
        )
        dispatcher.rng = random.Random(7)
        dispatcher.clock = lambda: T0
        if sleeps is not None:
            dispatcher.sleep = sleeps
        for item in conflicts:
            dispatcher.add(conflict_message(item))
        return await dispatcher.flush()


FAST = RetryPolicy(attempts=3, base_delay=0.05, max_delay=1, jitter=0.5, timeout=2)


def test_webhook_is_signed_and_verifies_with_documented_recipe(receiver: Receiver) -> None:
    alerts = asyncio.run(run(settings(hook=receiver.base_url + "/ok"), FAST, [conflict()]))
    [hit] = receiver.hits("/ok")
    assert hit.headers["Content-Type"] == "application/json"
    assert verify_signature(SECRET, hit.headers, hit.body)
    assert not verify_signature("wrong", hit.headers, hit.body)
    assert orjson.loads(hit.body)["evidence"]["offender"] == "p9"
    [alert] = alerts
    assert (alert.status, alert.attempt, alert.destination, alert.route) == (
        "sent",
        1,
        "hook",
        "route0",
    )
    assert alert.payload.encode() == hit.body
    assert alert.dedup_key == "acme|p9" and alert.error is None


def test_retries_back_off_and_stop_at_the_bound(receiver: Receiver) -> None:
    sleeps = Sleeps()
    alerts = asyncio.run(
        run(settings(hook=receiver.base_url + "/fail"), FAST, [conflict()], sleeps)
    )
    hits = receiver.hits("/fail")
    assert len(hits) == FAST.attempts
    assert [a.status for a in alerts] == ["retrying", "retrying", "failed"]
    assert [a.attempt for a in alerts] == [1, 2, 3]
    assert len({a.alert_id for a in alerts}) == 1
    assert all("HTTP 500" in (a.error or "") for a in alerts)
    assert len(sleeps.delays) == 2
    assert 0.025 <= sleeps.delays[0] <= 0.05 and 0.05 <= sleeps.delays[1] <= 0.1
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(hits)]
    assert all(gap >= delay for gap, delay in zip(gaps, sleeps.delays, strict=True))


def test_flaky_destination_succeeds_after_failures(receiver: Receiver) -> None:
    alerts = asyncio.run(run(settings(hook=receiver.base_url + "/flaky/2"), FAST, [conflict()]))
    assert [a.status for a in alerts] == ["retrying", "retrying", "sent"]
    assert len(receiver.hits("/flaky/2")) == 3


def test_client_errors_are_not_retried(receiver: Receiver) -> None:
    alerts = asyncio.run(run(settings(hook=receiver.base_url + "/gone"), FAST, [conflict()]))
    assert [(a.status, a.attempt) for a in alerts] == [("failed", 1)]
    assert "HTTP 404" in (alerts[0].error or "")


def test_hanging_destination_does_not_delay_a_healthy_one(receiver: Receiver) -> None:
    policy = RetryPolicy(attempts=2, base_delay=0.05, max_delay=1, jitter=0, timeout=0.3)
    urls = settings(hung=receiver.base_url + "/hang", slack=receiver.base_url + "/ok")
    started = time.monotonic()
    alerts = asyncio.run(run(urls, policy, [conflict()]))
    elapsed = time.monotonic() - started
    [healthy] = receiver.hits("/ok")
    assert healthy.at - started < policy.timeout
    hung = [a for a in alerts if a.destination == "hung"]
    assert [a.status for a in hung] == ["retrying", "failed"]
    assert all("timed out" in (a.error or "") for a in hung)
    assert [a.status for a in alerts if a.destination == "slack"] == ["sent"]
    assert elapsed < 2 * policy.timeout + 0.05 + 1.0


def test_slack_receives_text_and_blocks(receiver: Receiver) -> None:
    asyncio.run(run(settings(slack=receiver.base_url + "/ok"), FAST, [conflict("critical")]))
    [hit] = receiver.hits("/ok")
    body = orjson.loads(hit.body)
    assert "X-Clicktrail-Signature" not in hit.headers
    assert "acme" in body["text"] and "critical" in body["text"]
    assert body["blocks"][0]["text"]["type"] == "mrkdwn"
    assert any("p9" in f["text"] for f in body["blocks"][1]["fields"])


def test_repeats_are_not_alerts_and_escalations_are_delivered(receiver: Receiver) -> None:
    """A repeat of the announced verdict is no alert and leaves no row (it used to be
    stored as ``suppressed``); the escalation is delivered, named as one."""
    batch = [conflict(), conflict(), conflict("critical"), conflict("critical")]
    alerts = asyncio.run(run(settings(hook=receiver.base_url + "/ok"), FAST, batch))
    assert [(a.status, a.severity) for a in alerts] == [("sent", "warning"), ("sent", "critical")]
    changes = [orjson.loads(hit.body)["change"] for hit in receiver.hits("/ok")]
    assert sorted(changes) == ["escalated", "new"]


def test_log_destination_writes_structured_line() -> None:
    log_only = AlertSettings.model_validate(
        {"destinations": {"log": {"kind": "log"}}, "routes": [{"destinations": ["log"]}]}
    )
    with structlog.testing.capture_logs() as logs:
        alerts = asyncio.run(run(log_only, FAST, [conflict()]))
    assert [a.status for a in alerts] == ["sent"]
    [line] = [entry for entry in logs if entry["event"] == "alert"]
    assert line["dedup_key"] == "acme|p9"
    assert line["evidence"]["brand"] == "acme"
    assert line["log_level"] == "warning"


def test_a_replay_logs_its_alerts_below_the_progress() -> None:
    """``clicktrail replay`` asks for debug: the alert is sent (and stored) all the same."""
    log_only = AlertSettings.model_validate(
        {"destinations": {"log": {"kind": "log"}}, "routes": [{"destinations": ["log"]}]}
    )
    with structlog.testing.capture_logs() as logs:
        alerts = asyncio.run(run(log_only, FAST, [conflict()], log_level="debug"))
    assert [a.status for a in alerts] == ["sent"]
    assert [e["log_level"] for e in logs if e["event"] == "alert"] == ["debug"]
