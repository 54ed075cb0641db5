"""Alerts announce verdict changes (new, escalated, resolved), not every window; daily
digests; the decision lives in the state store, so a restart or a replay agrees."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from clicktrail.config.registry import AlertSettings, FraudSettings
from clicktrail.contracts.records import Alert, BrandConflict, FraudVerdict
from clicktrail.processors.fraud.anomaly import PartnerAnomaly
from clicktrail.processors.fraud.partners import PartnerMonitor, PartnerWindow
from clicktrail.sinks.alerts import (
    AlertDispatcher,
    AlertMessage,
    alert_messages,
    conflict_message,
)
from clicktrail.sinks.alerts.routing import Decision

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
ACTION = {"warning": "suspicious", "critical": "reject", None: "ok"}


def settings(mode: str = "immediate", cooldown: float = 0) -> AlertSettings:
    return AlertSettings.model_validate(
        {
            "cooldown_seconds": cooldown,
            "destinations": {"log": {"kind": "log"}},
            "routes": [{"min_severity": "warning", "destinations": ["log"], "mode": mode}],
        }
    )


def window(hour: int, severity: str | None, partner: str = "p7") -> FraudVerdict:
    """A partner window's verdict: flagged at ``severity``, or clean (None)."""
    return FraudVerdict.model_validate(
        {
            "verdict_id": f"v-{partner}-{severity}",
            "ts": T0 + hour * HOUR,
            "subject_type": "partner",
            "subject_id": partner,
            "partner_id": partner,
            "score": {"warning": 0.6, "critical": 0.95, None: 0.0}[severity],
            "reasons": [] if severity is None else ["partner_fraud_share"],
            "action": ACTION[severity],
        }
    )


class Alerting:
    """A dispatcher over a given state store; ``feed`` returns the decisions that are news."""

    def __init__(self, state: dict[str, Any], alert_settings: AlertSettings) -> None:
        self.client = httpx.AsyncClient()
        self.dispatcher = AlertDispatcher.from_settings(alert_settings, self.client, state)

    def feed(self, verdicts: list[FraudVerdict]) -> list[tuple[AlertMessage, Decision]]:
        decided = [d for m in alert_messages(verdicts) for d in self.dispatcher.decide_all(m)]
        return [(m, d) for m, d in decided if d.deliveries or d.digests]

    def changes(self, verdicts: list[FraudVerdict]) -> list[tuple[str, str | None, str]]:
        return [(m.kind, m.change, str(m.severity)) for m, _ in self.feed(verdicts)]


@pytest.fixture
def alerting() -> Alerting:
    return Alerting({}, settings())


class TestVerdictChanges:
    def test_ten_flagged_windows_alert_once(self, alerting: Alerting) -> None:
        assert alerting.changes([window(h, "warning") for h in range(10)]) == [
            ("fraud_share", "new", "warning")
        ]

    def test_escalation_alerts_again_and_a_milder_window_does_not(self, alerting: Alerting) -> None:
        run = ["warning", "warning", "critical", "critical", "warning", "critical"]
        assert alerting.changes([window(h, s) for h, s in enumerate(run)]) == [
            ("fraud_share", "new", "warning"),
            ("fraud_share", "escalated", "critical"),
        ]

    def test_a_clean_window_resolves_once(self, alerting: Alerting) -> None:
        verdicts = [window(0, "critical"), window(1, None), window(2, None)]
        assert alerting.changes(verdicts) == [
            ("fraud_share", "new", "critical"),
            ("fraud_share", "resolved", "critical"),
        ]
        [(message, _)] = alerting.feed([window(3, "warning")])
        assert message.change == "new" and message.title.startswith("New: ")
        body = orjson.loads(alerting.dispatcher.destinations["log"].render(message))
        assert body["change"] == "new"

    def test_clean_partner_is_never_announced(self, alerting: Alerting) -> None:
        assert alerting.changes([window(h, None) for h in range(5)]) == []

    def test_a_verdict_of_the_other_kind_resolves_the_first(self, alerting: Alerting) -> None:
        anomaly = window(1, "warning").model_copy(update={"reasons": ["partner_anomaly"]})
        assert alerting.changes([window(0, "warning"), anomaly]) == [
            ("fraud_share", "new", "warning"),
            ("fraud_share", "resolved", "warning"),
            ("anomaly", "new", "warning"),
        ]

    def test_cooldown_keeps_a_flapping_partner_quiet(self) -> None:
        alerting = Alerting({}, settings(cooldown=3 * 3600))
        run = ["warning", None, "warning", None, "warning", "warning", "warning", "warning"]
        assert [c[1] for c in alerting.changes([window(h, s) for h, s in enumerate(run)])] == [
            "new",
            "resolved",
            "new",  # hour 5: still flagged once the cool-down after hour 1's resolution is over
        ]

    def test_restart_on_the_same_state_does_not_realert(self) -> None:
        state: dict[str, Any] = {}
        first = Alerting(state, settings())
        run = [window(h, "warning") for h in range(5)]
        assert len(first.feed(run)) == 1
        restarted = Alerting(orjson.loads(orjson.dumps(state)), settings())  # JSON-safe
        assert restarted.feed(run) == []  # a replay of the same windows: nothing new
        assert restarted.feed([window(h, "warning") for h in range(5, 10)]) == []
        assert restarted.changes([window(10, None)]) == [("fraud_share", "resolved", "warning")]

    def test_a_window_older_than_the_last_decided_is_stale(self, alerting: Alerting) -> None:
        alerting.feed([window(0, "warning"), window(5, None)])
        assert alerting.feed([window(3, "critical")]) == []

    def test_state_written_before_change_only_alerts_reads_as_open(self) -> None:
        state: dict[str, Any] = {
            "fraud_share|p7": {"severity": "warning", "sent_at": T0.isoformat()}
        }
        assert Alerting(state, settings()).changes([window(1, "warning"), window(2, None)]) == [
            ("fraud_share", "resolved", "warning")
        ]


def conflict(keyword: str, hours: int, severity: str) -> BrandConflict:
    return BrandConflict.model_validate(
        {
            "conflict_id": f"c-{keyword.replace(' ', '-')}",
            "brand_id": "acme",
            "offender_kind": "partner",
            "offender_id": "p9",
            "signal": "term",
            "keywords": [keyword],
            "first_seen": T0,
            "last_seen": T0 + hours * HOUR,
            "impressions": 40,
            "severity": severity,
        }
    )


class TestBrandConflicts:
    def test_once_per_brand_and_offender_unless_it_escalates(self) -> None:
        """A new keyword of a known bidder is not news; its conflict turning critical is,
        even when that conflict's last sighting is older than the other keyword's."""
        dispatcher = Alerting({}, settings()).dispatcher
        stream = [
            conflict("acme shoes", 2, "warning"),
            conflict("acme boots", 1, "warning"),
            conflict("acme shoes", 3, "warning"),
            conflict("acme boots", 1, "critical"),
            conflict("acme socks", 4, "critical"),
        ]
        decided = [dispatcher.decide(conflict_message(c)) for c in stream]
        assert [d.change or d.reason for d in decided] == [
            "new",
            "stale",
            "unchanged",
            "escalated",
            "unchanged",
        ]


class TestDailyDigest:
    def test_a_day_of_changes_is_one_message(self) -> None:
        alerting = Alerting({}, settings(mode="daily_digest"))
        day = [window(1, "warning"), window(3, "critical"), window(5, None)]
        day += [window(6, "warning", "p8"), window(7, "warning", "p8")]
        held = alerting.feed(day)
        assert [d.deliveries for _, d in held] == [()] * 4  # nothing delivered during the day
        assert all(len(d.digests) == 1 for _, d in held)
        [(digest, decision)] = [
            (m, d) for m, d in alerting.feed([window(25, "warning", "p8")]) if m.kind == "digest"
        ]
        assert decision.deliveries and digest.ts == T0 + timedelta(days=1)
        changes = [(c["key"], c["change"]) for c in digest.evidence["changes"]]
        assert changes == [
            ("fraud_share|p7", "new"),
            ("fraud_share|p7", "escalated"),
            ("fraud_share|p7", "resolved"),
            ("fraud_share|p8", "new"),
        ]
        assert [v["key"] for v in digest.evidence["open"]] == ["fraud_share|p8"]
        assert digest.title == "Alert digest for 2026-03-01: 4 verdict changes, 1 open"

    def test_digest_rows_and_the_last_day_at_the_end_of_input(self) -> None:
        alerting = Alerting({}, settings(mode="daily_digest"))
        dispatcher = alerting.dispatcher
        for message in alert_messages([window(1, "warning"), window(2, "critical")]):
            dispatcher.add(message)
        dispatcher.pending.extend(dispatcher.final_digests())
        records: list[Alert] = asyncio.run(dispatcher.flush())
        assert sorted((r.kind, r.status) for r in records) == [
            ("digest", "sent"),
            ("fraud_share", "digested"),
            ("fraud_share", "digested"),
        ]
        assert dispatcher.final_digests() == []  # sent once


def _verdicts(windows: list[PartnerWindow]) -> list[FraudVerdict]:
    out = []
    for w in windows:
        if w.reasons or w.cleared:
            severity = "critical" if w.fraud_share > 0.5 else "warning"
            out.append(window(0, severity if w.reasons else None, w.partner_id))
            out[-1] = out[-1].model_copy(update={"ts": w.end, "reasons": w.reasons})
    return out


class TestPartnerWindows:
    """From events to alerts: the windows close in event-time order, whatever the order
    their events arrived in, so the alerts at the end are the same."""

    def events(self) -> list[tuple[str, datetime, int]]:
        bad = [(h, 10) for h in range(3)] + [(h, 0) for h in range(3, 8)]
        return [
            (partner, T0 + h * HOUR + timedelta(minutes=2 * i), int(i < flagged))
            for partner, hours in (("p7", bad), ("p1", [(h, 0) for h in range(8)]))
            for h, flagged in hours
            for i in range(25)
        ]

    def run(self, events: list[tuple[str, datetime, int]]) -> list[tuple[str, str | None]]:
        fraud = FraudSettings()
        monitor = PartnerMonitor({}, fraud, PartnerAnomaly(threshold=1.0))
        for partner, ts, flagged in events:
            monitor.record(partner, ts, flagged=flagged, is_click=True, click_ip="10.0.0.1")
        windows = monitor.close_until(T0 + 9 * HOUR)
        alerting = Alerting({}, settings())
        return [(m.dedup_key, m.change) for m, _ in alerting.feed(_verdicts(windows))]

    def test_flagged_then_clean_partner_resolves(self) -> None:
        assert self.run(self.events()) == [
            ("fraud_share|p7", "new"),
            ("fraud_share|p7", "resolved"),
        ]

    def test_delivery_order_does_not_change_the_alerts(self) -> None:
        expected = self.run(self.events())
        for seed in (1, 2, 3):
            shuffled = self.events()
            random.Random(seed).shuffle(shuffled)
            assert self.run(shuffled) == expected
