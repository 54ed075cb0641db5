"""The fraud stage over scripted traffic: planted patterns caught, honest traffic left alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clicktrail.config import parse_registry
from clicktrail.contracts import EVENT_ADAPTER, Click, Conversion, FraudVerdict, StateStore
from clicktrail.contracts.internal import ResolvedConversion, Touch
from clicktrail.processors.fraud import FRAUD_STATE, FraudDetector, credited_touch
from clicktrail.processors.fraud.anomaly import PartnerAnomaly
from clicktrail.processors.signing import ClickIdSigner

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = "test-click-key-0123456789"
REGISTRY = parse_registry(
    {
        "security": {"click_id_key": KEY},
        "actions": {"install": {"min_ctit_seconds": 10}, "lead": {}},
        "fraud": {"datacenter_cidrs": ["203.0.113.0/24", "2001:db8::/32"]},
    }
)
BROWSER = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/125.0 Mobile Safari/537.36"
SIGNER = ClickIdSigner(KEY)


class Traffic:
    """Scripted events through a detector, keeping every click as the click stage would."""

    def __init__(self) -> None:
        self.stores: dict[str, dict[str, Any]] = {}
        self.detector = FraudDetector(REGISTRY, self.store)
        self.clicks: dict[str, Touch] = {}
        self.latest: dict[tuple[str, str], FraudVerdict] = {}
        self.partner_verdicts: list[FraudVerdict] = []
        self.n = 0

    def store(self, name: str) -> StateStore:
        return self.stores.setdefault(name, {})

    def keep(self, verdicts: list[FraudVerdict]) -> None:
        for verdict in verdicts:
            if verdict.subject_type == "partner":
                self.partner_verdicts.append(verdict)
            self.latest[(verdict.subject_type, verdict.subject_id)] = verdict

    def click(self, seconds: float, partner: str = "p-honest", **user: Any) -> str:
        self.n += 1
        ts = T0 + timedelta(seconds=seconds)
        click_id = SIGNER.mint(int(ts.timestamp() * 1000))
        context = {
            "user_id": f"u{self.n}",
            "ip": f"81.2.{self.n % 250}.0",
            "user_agent": BROWSER,
            "country": "DE",
            "device_type": "mobile",
        }
        event = EVENT_ADAPTER.validate_python(
            {
                "type": "click",
                "event_id": f"c{self.n}",
                "ts": int(ts.timestamp() * 1000),
                "click_id": click_id,
                "campaign_id": "camp",
                "partner_id": partner,
                "user": {**context, **user},
            }
        )
        assert isinstance(event, Click)
        self.clicks[click_id] = Touch.of(event)
        self.keep(self.detector.on_click(event))
        return click_id

    def convert(
        self,
        seconds: float,
        click_id: str | None,
        action: str = "install",
        lookup: str | None = None,
        **fields: Any,
    ) -> str:
        self.n += 1
        touch = self.clicks.get(click_id or "")
        user = {"country": touch.country, "device_type": touch.device_type} if touch else {}
        event = EVENT_ADAPTER.validate_python(
            {
                "type": "conversion",
                "event_id": fields.pop("event_id", f"v{self.n}"),
                "ts": int((T0 + timedelta(seconds=seconds)).timestamp() * 1000),
                "click_id": click_id,
                "action": action,
                "partner_id": "p-honest",
                "user": {**user, **fields.pop("user", {})},
                **fields,
            }
        )
        assert isinstance(event, Conversion)
        lookup = lookup or ("found" if touch else ("unknown_click" if click_id else "no_click"))
        resolved = ResolvedConversion(conversion=event, click=touch, lookup=lookup)  # type: ignore[arg-type]
        self.keep(self.detector.on_conversion(resolved))
        return event.event_id

    def reasons(self, subject_type: str, subject_id: str) -> list[str]:
        verdict = self.latest.get((subject_type, subject_id))
        return list(verdict.reasons) if verdict and verdict.action != "ok" else []

    def honest(self, start: float, users: int = 40) -> tuple[list[str], list[str]]:
        """People clicking minutes apart, some converting after minutes."""
        clicks, conversions = [], []
        for i in range(users):
            click_id = self.click(start + i * 90, partner=("p-honest", "p-bad")[i % 2])
            clicks.append(click_id)
            if i % 4 == 0:
                conversions.append(self.convert(start + i * 90 + 600, click_id, "lead"))
        return clicks, conversions


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


def assert_clean(traffic: Traffic, clicks: list[str], conversions: list[str]) -> None:
    assert all(traffic.reasons("click", c) == [] for c in clicks)
    assert all(traffic.reasons("conversion", c) == [] for c in conversions)


class TestPlantedPatterns:
    """Each pattern in honest traffic gets its reason; the honest traffic gets none."""

    def test_bots(self, traffic: Traffic) -> None:
        clean = traffic.honest(0)
        bot = traffic.click(100, "p-bad", user_agent="Mozilla/5.0 (compatible; Googlebot/2.1)")
        empty = traffic.click(200, "p-bad", user_agent=None)
        lead = traffic.convert(300, bot, "lead")
        assert traffic.reasons("click", bot) == ["bot_user_agent"]
        assert traffic.reasons("click", empty) == ["empty_user_agent"]
        assert traffic.reasons("conversion", lead) == ["bot_user_agent"]
        assert_clean(traffic, *clean)

    def test_datacenter_v4_and_v6(self, traffic: Traffic) -> None:
        clean = traffic.honest(0)
        v4 = traffic.click(100, "p-bad", ip="203.0.113.0")
        v6 = traffic.click(200, "p-bad", ip="2001:db8:5::")
        assert traffic.reasons("click", v4) == ["datacenter_ip"]
        assert traffic.reasons("click", v6) == ["datacenter_ip"]
        assert_clean(traffic, *clean)

    def test_click_flooding(self, traffic: Traffic) -> None:
        clean = traffic.honest(0)
        burst = [traffic.click(500 + i * 3, "p-bad", ip="192.0.2.0") for i in range(12)]
        assert all(traffic.reasons("click", c) == ["click_flood_ip"] for c in burst)
        stolen = traffic.convert(90_000, burst[3], "lead")
        assert traffic.reasons("conversion", stolen) == ["click_flood_ip"]
        assert_clean(traffic, *clean)

    def test_click_injection(self, traffic: Traffic) -> None:
        clean = traffic.honest(0)
        injected = traffic.click(1000, "p-bad")
        install = traffic.convert(1004, injected)
        assert traffic.reasons("conversion", install) == ["ctit_too_short"]
        assert traffic.reasons("click", injected) == ["ctit_too_short"]
        assert_clean(traffic, *clean)

    def test_geo_and_device_mismatch(self, traffic: Traffic) -> None:
        clean = traffic.honest(0)
        farm = traffic.click(1000, "p-bad")
        moved = traffic.convert(1900, farm, "lead", user={"country": "VN"})
        desk = traffic.click(1100, "p-bad")
        switched = traffic.convert(2000, desk, "lead", user={"device_type": "desktop"})
        assert traffic.reasons("conversion", moved) == ["geo_mismatch"]
        assert traffic.reasons("click", farm) == ["geo_mismatch"]
        assert traffic.reasons("conversion", switched) == ["device_mismatch"]
        assert_clean(traffic, *clean)

    def test_forged_orphan_and_replay(self, traffic: Traffic) -> None:
        clean = traffic.honest(0)
        real = traffic.clicks[clean[0][0]].touch_id
        forged = traffic.convert(4000, real[:20] + ".AAAAAAAAAAAA", "lead")
        orphan = traffic.convert(4100, SIGNER.mint(1_772_366_400_000), "lead")
        fields = {"txid": "T-9", "revenue": 45.0, "payout": 22.0}
        first = traffic.convert(4200, real, "lead", **fields)
        replay = traffic.convert(90_000, real, "lead", **fields)
        update = traffic.convert(95_000, real, "lead", status="approved", **fields)
        assert traffic.reasons("conversion", forged) == ["forged_click_id"]
        assert traffic.reasons("conversion", orphan) == ["orphan_conversion"]
        assert traffic.reasons("conversion", replay) == ["replayed_postback"]
        assert traffic.reasons("conversion", first) == []
        assert traffic.reasons("conversion", update) == []
        assert_clean(traffic, *clean)


class TestBadInput:
    """Odd but valid input is judged on what it has and never crashes the stage."""

    def test_missing_ip_hashed_ip_and_ipv6(self, traffic: Traffic) -> None:
        for user in (
            {"ip": None},
            {"ip": "h:0123456789abcdef01234567"},
            {"ip": "2a00:1450:4001::"},
            {"user_id": None, "ip": None},
        ):
            assert traffic.reasons("click", traffic.click(10, **user)) == []

    def test_conversion_before_its_click(self, traffic: Traffic) -> None:
        click_id = traffic.click(1000)
        early = traffic.convert(400, click_id)
        assert traffic.reasons("conversion", early) == []

    def test_an_orphans_verdict_is_revised_when_its_click_comes(self, traffic: Traffic) -> None:
        click_id = traffic.click(100)
        touch = traffic.clicks.pop(click_id)  # not read yet when the grace ran out
        orphan = traffic.convert(400, click_id)
        assert traffic.reasons("conversion", orphan) == ["orphan_conversion"]
        traffic.clicks[click_id] = touch
        traffic.convert(400, click_id, lookup="rejoined", event_id=orphan)
        revised = traffic.latest[("conversion", orphan)]
        assert (revised.action, revised.reasons) == ("ok", [])

    def test_a_conversion_gains_the_reasons_its_click_gains_later(self, traffic: Traffic) -> None:
        """Read out of order (a backlog of two topics), an install is judged while its
        click is still unconvicted; the flood that convicts the click revises it."""
        burst = [traffic.click(500 + i * 3, "p-bad", ip="192.0.2.0") for i in range(4)]
        stolen = traffic.convert(9000, burst[1], "lead")
        assert traffic.reasons("conversion", stolen) == []
        traffic.click(512, "p-bad", ip="192.0.2.0")
        assert traffic.reasons("conversion", stolen) == []
        traffic.click(515, "p-bad", ip="192.0.2.0")  # the sixth in a minute
        assert traffic.reasons("conversion", stolen) == ["click_flood_ip"]
        assert traffic.latest[("conversion", stolen)].ts == T0 + timedelta(seconds=9000)

    def test_state_is_json_and_expires(self, traffic: Traffic) -> None:
        traffic.honest(0)
        [traffic.click(500 + i, "p-bad", ip="192.0.2.0") for i in range(8)]
        assert set(traffic.stores) == set(FRAUD_STATE)
        json.dumps(traffic.stores)
        assert traffic.detector.expire(T0 + timedelta(days=60)) > 0
        emptied = ("fraud_ip", "fraud_flagged", "fraud_click_conversions")
        assert not any(traffic.stores[name] for name in emptied)


class TestPartnerSignals:
    """A partner whose traffic is mostly flagged raises the fraud-share alert."""

    def test_fraud_share(self, traffic: Traffic) -> None:
        traffic.honest(0)
        for i in range(30):
            traffic.click(4000 + i * 60, "p-bad", user_agent="HeadlessChrome")
        traffic.keep(traffic.detector.close_windows(T0 + timedelta(days=1)))
        flagged = {v.subject_id for v in traffic.partner_verdicts if v.action != "ok"}
        assert flagged == {"p-bad"}
        assert "partner_fraud_share" in traffic.partner_verdicts[-1].reasons

    def test_the_window_ending_a_flagged_run_gives_one_clean_verdict(
        self, traffic: Traffic
    ) -> None:
        """The alerting resolves a partner's verdict on it: ``ok`` without reasons, once."""
        for i in range(30):
            traffic.click(60 + i * 60, "p-bad", user_agent="HeadlessChrome")
        for i in range(20 * 12):
            traffic.click(3600 + i * 180, "p-bad")
        traffic.keep(traffic.detector.close_windows(T0 + timedelta(hours=14)))
        runs = [(v.action != "ok", v.reasons) for v in traffic.partner_verdicts]
        flagged = [reasons for bad, reasons in runs if bad]
        assert flagged and runs[: len(flagged)] == [(True, r) for r in flagged]
        assert runs[len(flagged) :] == [(False, [])]

    def test_a_partner_turning_bad_is_flagged_in_its_first_bad_window(
        self, traffic: Traffic
    ) -> None:
        """A day of clean clicks would keep the running share low for hours; the window's
        own share flags the partner when its first bad hour closes."""
        for i in range(24 * 20):
            traffic.click(i * 180, "p-turn")
        bad_hour = 24 * 3600
        for i in range(30):
            traffic.click(bad_hour + 60 + i * 100, "p-turn", user_agent="HeadlessChrome")
        traffic.keep(traffic.detector.close_windows(T0 + timedelta(seconds=bad_hour + 3600)))
        [verdict] = [v for v in traffic.partner_verdicts if v.subject_id == "p-turn"]
        assert "partner_fraud_share" in verdict.reasons and verdict.action != "ok"
        assert verdict.ts == T0 + timedelta(seconds=bad_hour + 3600)

    def test_late_ctit_tail(self, traffic: Traffic) -> None:
        traffic.honest(0)
        flooded = [traffic.click(100 + i * 600, "p-bad") for i in range(25)]
        for i, click_id in enumerate(flooded):
            traffic.convert(40 * 3600 + i * 60, click_id, "lead")
        traffic.keep(traffic.detector.close_windows(T0 + timedelta(days=3)))
        late = {v.subject_id for v in traffic.partner_verdicts if "late_ctit_tail" in v.reasons}
        assert late == {"p-bad"}

    def test_anomaly_scores_after_warmup(self) -> None:
        model = PartnerAnomaly(threshold=0.8, warmup=5)
        scores = [model.score({"click_rate": 10.0 + i % 3, "bot_share": 0.0}) for i in range(8)]
        assert scores[:5] == [None] * 5
        assert all(s is not None and 0 <= s <= 1 for s in scores[5:])

    def test_credited_touch_from_a_user_stage_row(self) -> None:
        from clicktrail.contracts import AttributedConversion

        row = AttributedConversion(
            conversion_id="v1",
            action="lead",
            status="pending",
            original_status="pending",
            revenue=1.0,
            payout=0.5,
            currency="USD",
            conversion_ts=T0,
            touch="click",
            click_id="clk1",
            click_ts=T0 - timedelta(seconds=3),
            partner_id="p1",
            campaign_id="camp",
            country="DE",
        )
        touch = credited_touch(row)
        assert touch is not None and touch.touch_id == "clk1"
        orphan = row.model_copy(update={"touch": "none", "click_id": None})
        assert credited_touch(orphan) is None
