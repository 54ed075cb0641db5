"""Routing, dedup, payloads, signing and retry policy, called directly with plain inputs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from clicktrail.config.registry import AlertSettings
from clicktrail.contracts.records import BrandConflict, FraudVerdict, Severity
from clicktrail.sinks.alerts import (
    AlertRouter,
    Decision,
    RetryPolicy,
    conflict_message,
    json_body,
    partner_message,
    sign,
    signed_headers,
    slack_body,
    verify,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def settings(cooldown: float = 3600) -> AlertSettings:
    return AlertSettings.model_validate(
        {
            "cooldown_seconds": cooldown,
            "destinations": {
                "oncall": {"kind": "slack", "url": "http://127.0.0.1:9/slack"},
                "hook": {"kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s"},
                "log": {"kind": "log"},
            },
            "routes": [
                {"kinds": ["brand_conflict"], "brands": ["acme"], "destinations": ["oncall"]},
                {"min_severity": "critical", "destinations": ["hook", "oncall"]},
                {"min_severity": "info", "destinations": ["log"]},
            ],
        }
    )


def conflict(**overrides: object) -> BrandConflict:
    fields: dict[str, object] = {
        "conflict_id": "c1",
        "brand_id": "acme",
        "offender_kind": "partner",
        "offender_id": "p9",
        "signal": "term",
        "keywords": ["acme shoes"],
        "first_seen": T0,
        "last_seen": T0 + timedelta(hours=2),
        "impressions": 40,
        "clicks": 7,
        "head_to_head": True,
        "est_cpc_inflation": 0.25,
        "cost_impact": 12.5,
        "severity": "warning",
        "evidence_ids": ["e1", "e2"],
    }
    return BrandConflict.model_validate(fields | overrides)


def verdict() -> FraudVerdict:
    return FraudVerdict.model_validate(
        {
            "verdict_id": "v1",
            "ts": T0,
            "subject_type": "partner",
            "subject_id": "p7",
            "partner_id": "p7",
            "score": 0.42,
            "reasons": ["fraud_share_high", "click_injection"],
            "action": "suspicious",
        }
    )


class TestRouter:
    def test_routes_by_kind_brand_and_severity(self) -> None:
        router = AlertRouter(settings())
        names = [d.destination for d in router.route("brand_conflict", Severity.warning, "acme")]
        assert names == ["oncall", "log"]
        routed = router.route("brand_conflict", Severity.critical, "other")
        assert [(d.route, d.destination) for d in routed] == [
            ("route1", "hook"),
            ("route1", "oncall"),
            ("route2", "log"),
        ]
        assert [d.destination for d in router.route("fraud_share", Severity.info, None)] == ["log"]

    def test_unknown_destination_fails_at_construction(self) -> None:
        bad = AlertSettings.model_validate({"routes": [{"destinations": ["nowhere"]}]})
        with pytest.raises(ValueError, match="nowhere"):
            AlertRouter(bad)

    def test_repeats_stay_quiet_until_resolved_and_the_cooldown_passes(self) -> None:
        """An unchanged verdict is never repeated, however long it lasts (it used to be
        repeated after each cool-down); the cool-down now keeps a key quiet after its
        resolution, so a verdict hovering at its threshold does not alert every window."""
        state: dict[str, object] = {}
        router = AlertRouter(settings(cooldown=600), state)

        def decide(seconds: int, clear: bool = False) -> Decision:
            at = T0 + timedelta(seconds=seconds)
            return router.decide(
                "brand_conflict", "acme|p9", Severity.warning, "acme", at, clear=clear
            )

        assert decide(0).reason == "new"
        assert decide(599).reason == decide(6000).reason == "unchanged"
        assert decide(6000).suppressed and not decide(6001).deliveries
        assert decide(6100, clear=True).change == "resolved"
        repeat = decide(6700)
        assert repeat.suppressed and repeat.reason == "cooldown"
        assert decide(6701).change == "new"
        assert orjson.loads(orjson.dumps(state)) == state  # JSON-safe for a Faust table

    def test_escalation_realerts_inside_cooldown(self) -> None:
        router = AlertRouter(settings())
        router.decide("fraud_share", "k", Severity.warning, None, T0)
        up = router.decide("fraud_share", "k", Severity.critical, None, T0 + timedelta(seconds=1))
        assert not up.suppressed
        again = router.decide(
            "fraud_share", "k", Severity.critical, None, T0 + timedelta(seconds=2)
        )
        assert again.suppressed
        down = router.decide("fraud_share", "k", Severity.warning, None, T0 + timedelta(seconds=3))
        assert down.suppressed

    def test_no_route_is_not_recorded(self) -> None:
        state: dict[str, object] = {}
        router = AlertRouter(AlertSettings(), state)
        assert router.decide("anomaly", "k", Severity.critical, None, T0).reason == "no_route"
        assert state == {}


class TestPayloads:
    def test_conflict_body_carries_evidence(self) -> None:
        message = conflict_message(conflict())
        body = orjson.loads(json_body(message))
        assert body["kind"] == "brand_conflict"
        assert body["dedup_key"] == "acme|p9"  # one key per brand and offender (was per keyword)
        assert body["severity"] == "warning"
        evidence = body["evidence"]
        assert evidence["brand"] == "acme" and evidence["offender"] == "p9"
        assert evidence["keywords"] == ["acme shoes"]
        assert (evidence["impressions"], evidence["clicks"]) == (40, 7)
        assert evidence["head_to_head"] is True and evidence["est_cpc_inflation"] == 0.25
        assert evidence["cost_impact"] == 12.5 and evidence["evidence_ids"] == ["e1", "e2"]
        assert evidence["first_seen"].startswith("2026-11-01T12:00")

    def test_alert_id_is_stable_and_changes_on_escalation(self) -> None:
        assert conflict_message(conflict()).alert_id == conflict_message(conflict()).alert_id
        worse = conflict_message(conflict(severity="critical"))
        assert worse.alert_id != conflict_message(conflict()).alert_id

    def test_partner_body(self) -> None:
        message = partner_message(verdict(), Severity.critical)
        assert message.dedup_key == "fraud_share|p7"
        evidence = orjson.loads(json_body(message))["evidence"]
        assert evidence["partner"] == "p7" and evidence["score"] == 0.42
        assert evidence["reasons"] == ["fraud_share_high", "click_injection"]

    def test_partner_message_rejects_click_verdicts(self) -> None:
        click = verdict().model_copy(update={"subject_type": "click"})
        with pytest.raises(ValueError, match="partner"):
            partner_message(click)

    def test_slack_body_shape(self) -> None:
        body = orjson.loads(slack_body(conflict_message(conflict(severity="critical"))))
        assert set(body) == {"text", "blocks"}
        assert "acme" in body["text"] and "p9" in body["text"] and "critical" in body["text"]
        assert [b["type"] for b in body["blocks"]] == ["section", "section", "context"]
        fields = body["blocks"][1]["fields"]
        assert 0 < len(fields) <= 10
        assert all(f["type"] == "mrkdwn" and f["text"] for f in fields)


class TestSigning:
    def test_sign_matches_documented_recipe(self) -> None:
        import hashlib
        import hmac

        expected = hmac.new(b"k", b"1700000000." + b"{}", hashlib.sha256).hexdigest()
        assert sign("k", "1700000000", b"{}") == "sha256=" + expected

    def test_verify_rejects_tampering_and_stale(self) -> None:
        headers = signed_headers("k", b'{"a":1}', now=1_700_000_000)
        ts, sig = headers["X-Clicktrail-Timestamp"], headers["X-Clicktrail-Signature"]
        assert verify("k", ts, b'{"a":1}', sig, now=1_700_000_010)
        assert not verify("k", ts, b'{"a":2}', sig, now=1_700_000_010)
        assert not verify("other", ts, b'{"a":1}', sig, now=1_700_000_010)
        assert not verify("k", ts, b'{"a":1}', sig, now=1_700_001_000)
        assert not verify("k", "nonsense", b'{"a":1}', sig)


class TestRetryPolicy:
    def test_delays_grow_exponentially_within_jitter_and_cap(self) -> None:
        policy = RetryPolicy(attempts=6, base_delay=1, max_delay=5, jitter=0.5)
        rng = random.Random(1)
        for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (5, 5)]:
            for _ in range(50):
                assert ceiling * 0.5 <= policy.delay(attempt, rng) <= ceiling

    @pytest.mark.parametrize(
        "kwargs",
        [{"attempts": 0}, {"base_delay": -1}, {"jitter": 2}, {"timeout": 0}, {"max_delay": 0.1}],
    )
    def test_invalid_policy_fails_at_construction(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ValueError):
            RetryPolicy(**kwargs)  # type: ignore[arg-type]
