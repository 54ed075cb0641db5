"""Each fraud rule called directly with plain events and dict state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clicktrail.config import ConfigError, parse_registry
from clicktrail.config.registry import FraudSettings
from clicktrail.contracts import EVENT_ADAPTER, Click, Conversion
from clicktrail.contracts.internal import ResolvedConversion, Touch
from clicktrail.processors.fraud.addresses import DatacenterRule, parse_networks
from clicktrail.processors.fraud.agents import BotAgentRule
from clicktrail.processors.fraud.ctit import InjectionRule
from clicktrail.processors.fraud.flooding import ClickFloodRule
from clicktrail.processors.fraud.mismatch import mismatch_rule
from clicktrail.processors.fraud.postbacks import ClickIdRule, ReplayRule
from clicktrail.processors.fraud.verdicts import Combiner
from clicktrail.processors.fraud.windows import SlidingCounter
from clicktrail.processors.signing import ClickIdSigner

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = "test-click-key-0123456789"
SETTINGS = FraudSettings(datacenter_cidrs=["203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"])
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/125.0 Safari/537.36"


def click(n: int, seconds: float = 0, **user: Any) -> Click:
    event = EVENT_ADAPTER.validate_python(
        {
            "type": "click",
            "event_id": f"c{n}",
            "ts": int((T0 + timedelta(seconds=seconds)).timestamp() * 1000),
            "click_id": f"clk{n}",
            "campaign_id": "camp",
            "partner_id": user.pop("partner", "p1"),
            "user": {"user_id": f"u{n}", "ip": "81.2.69.0", "user_agent": BROWSER, **user},
        }
    )
    assert isinstance(event, Click)
    return event


def conversion(seconds: float, action: str = "install", **fields: Any) -> Conversion:
    user = fields.pop("user", {})
    event = EVENT_ADAPTER.validate_python(
        {
            "type": "conversion",
            "event_id": fields.pop("event_id", "v1"),
            "ts": int((T0 + timedelta(seconds=seconds)).timestamp() * 1000),
            "action": action,
            "user": user,
            **fields,
        }
    )
    assert isinstance(event, Conversion)
    return event


class TestBotAgentRule:
    """Known markers, any case, and empty agents are bots; browsers are not."""

    def test_markers(self) -> None:
        rule = BotAgentRule(SETTINGS)
        assert [h.reason for h in rule(click(1, user_agent="Mozilla/5.0 HeadlessChrome/120"))] == [
            "bot_user_agent"
        ]
        assert [h.reason for h in rule(click(2, user_agent="Googlebot/2.1"))] == ["bot_user_agent"]
        assert rule(click(3)) == []

    @pytest.mark.parametrize(
        "agent",
        [
            "python-requests/2.31.0",
            "curl/8.4.0",
            "Go-http-client/1.1",
            "Scrapy/2.11 (+https://scrapy.org)",
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/120.0.0.0 Safari/537.36",
        ],
    )
    def test_libraries_and_crawlers_the_markers_do_not_name(self, agent: str) -> None:
        rule = BotAgentRule(SETTINGS)
        assert [h.reason for h in rule(click(1, user_agent=agent))] == ["bot_user_agent"]

    @pytest.mark.parametrize(
        "agent",
        [
            BROWSER,
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Mobile Safari/537.36",
        ],
    )
    def test_browsers_are_people(self, agent: str) -> None:
        assert BotAgentRule(SETTINGS)(click(1, user_agent=agent)) == []

    def test_empty_and_missing_agent(self) -> None:
        rule = BotAgentRule(SETTINGS)
        assert [h.reason for h in rule(click(1, user_agent=""))] == ["empty_user_agent"]
        assert [h.reason for h in rule(click(2, user_agent=None))] == ["empty_user_agent"]

    def test_blank_marker_is_a_config_error(self) -> None:
        with pytest.raises(ValueError, match=r"fraud\.bot_user_agents"):
            BotAgentRule(FraudSettings(bot_user_agents=["bot", " "]))


class TestDatacenterRule:
    """Truncated v4 and v6 networks match; hashed, missing or odd addresses abstain."""

    def test_truncated_addresses(self) -> None:
        rule = DatacenterRule(SETTINGS)
        assert [h.reason for h in rule(click(1, ip="203.0.113.0"))] == ["datacenter_ip"]
        assert [h.reason for h in rule(click(2, ip="2001:db8:1::"))] == ["datacenter_ip"]
        assert rule(click(3, ip="81.2.69.0")) == []
        assert rule(click(4, ip="2a00:1450:4001::")) == []

    def test_narrow_range_is_widened_to_the_truncation(self) -> None:
        rule = DatacenterRule(SETTINGS)
        assert [h.reason for h in rule(click(1, ip="198.51.100.0"))] == ["datacenter_ip"]

    def test_hashed_missing_and_garbage_abstain(self) -> None:
        rule = DatacenterRule(SETTINGS)
        assert rule(click(1, ip="h:0123456789abcdef01234567")) == []
        assert rule(click(2, ip=None)) == []
        assert rule(click(3, ip="not-an-ip")) == []

    def test_malformed_cidr_names_the_key(self) -> None:
        with pytest.raises(ValueError, match=r"fraud\.datacenter_cidrs\[1\]"):
            parse_networks(["10.0.0.0/8", "10.0.0.0/33"])
        with pytest.raises(ConfigError, match=r"fraud\.datacenter_cidrs"):
            parse_registry({"fraud": {"datacenter_cidrs": ["300.1.2.0/24"]}})


class TestSlidingCounter:
    """Counts leave the window, the crossing item releases the held ids, state expires."""

    def test_window_and_release(self) -> None:
        store: dict[str, Any] = {}
        counter = SlidingCounter(store, window_seconds=60, limit=3)
        totals = [counter.add("k", float(t), f"i{t}", "c").total for t in (0, 1, 2)]
        assert totals == [1, 2, 3]
        crossing = counter.add("k", 3.0, "i3", "c")
        assert crossing.total == 4
        assert [i for i, _ in crossing.released] == ["i0", "i1", "i2"]
        assert counter.add("k", 200.0, "late", "c").total == 1
        assert counter.expire(1000.0) == 1
        assert store == {}

    @pytest.mark.parametrize("ahead", [3600.0, 5 * 3600.0])
    def test_an_item_hours_ahead_neither_erases_the_present_nor_is_erased(
        self, ahead: float
    ) -> None:
        store: dict[str, Any] = {}
        counter = SlidingCounter(store, window_seconds=60, limit=3)
        for t in (0, 1):
            counter.add("k", float(t), f"i{t}", "c")
        assert counter.add("k", ahead, "copy", "c").total == 1, "alone in its own window"
        counter.add("k", 2.0, "i2", "c")
        crossing = counter.add("k", 3.0, "i3", "c")
        assert crossing.total == 4
        assert [i for i, _ in crossing.released] == ["i0", "i1", "i2"]
        assert [i for i, _ in counter.add("k", ahead + 1, "x", "c").released] == []
        assert store["k"]["held"][-2:] == [[ahead, "copy", "c"], [ahead + 1, "x", "c"]]

    def test_bad_settings(self) -> None:
        with pytest.raises(ValueError, match="window"):
            SlidingCounter({}, window_seconds=0, limit=1)


class TestClickFloodRule:
    """A burst from one network convicts the whole burst; people stay clean."""

    def test_burst(self) -> None:
        rule = ClickFloodRule({}, {}, {}, SETTINGS)
        hits = [rule(click(n, seconds=n * 2, ip="192.0.2.0")) for n in range(8)]
        assert all(not h for h in hits[:5])
        convicted = {h.subject_id or "clk5" for h in hits[5]}
        assert convicted == {f"clk{n}" for n in range(6)}
        assert all(h.reason == "click_flood_ip" for h in hits[5] + hits[6])

    def test_hashed_addresses_count_too(self) -> None:
        rule = ClickFloodRule({}, {}, {}, SETTINGS)
        hits = [rule(click(n, seconds=n, ip="h:0123456789abcdef01234567")) for n in range(7)]
        assert [h.reason for h in hits[-1]] == ["click_flood_ip"]

    def test_people_spread_out(self) -> None:
        rule = ClickFloodRule({}, {}, {}, SETTINGS)
        assert not any(rule(click(n, seconds=n * 120, ip="81.2.69.0")) for n in range(20))

    def test_device_without_ip(self) -> None:
        rule = ClickFloodRule({}, {}, {}, SETTINGS.model_copy(update={"max_clicks_per_device": 2}))
        hits = [rule(click(1, seconds=n * 300, ip=None, user_id="dev")) for n in range(3)]
        assert next(h.reason for h in hits[2]) == "click_flood_device"


def touch(seconds: float = 0, **fields: Any) -> Touch:
    return Touch(
        kind="click",
        touch_id="clk1",
        event_id="c1",
        ts=T0 + timedelta(seconds=seconds),
        campaign_id="camp",
        partner_id="p1",
        **{"country": "DE", "device_type": "mobile", **fields},
    )


class TestInjectionRule:
    """Below the action's minimum (or the default) is injection; skew is not."""

    def test_thresholds(self) -> None:
        actions = parse_registry(
            {"actions": {"install": {"min_ctit_seconds": 20}, "lead": {"min_ctit_seconds": 3}}}
        ).actions
        rule = InjectionRule(actions, SETTINGS)
        assert [h.reason for h in rule(conversion(15), touch())] == ["ctit_too_short"] * 2
        assert rule(conversion(25), touch()) == []
        assert next(h.reason for h in rule(conversion(2, "lead"), touch())) == "ctit_too_short"
        assert rule(conversion(4, "lead"), touch()) == []

    def test_the_default_cut_off_is_for_app_installs(self) -> None:
        actions = parse_registry({"actions": {"install": {}, "purchase": {}}}).actions
        rule = InjectionRule(actions, SETTINGS)
        assert next(h.reason for h in rule(conversion(9, "install"), touch())) == "ctit_too_short"
        assert rule(conversion(9, "purchase"), touch()) == [], "a fast buyer, not injection"
        assert rule(conversion(1, "signup"), touch()) == [], "an action the registry lacks"
        off = parse_registry({"actions": {"install": {"min_ctit_seconds": 0}}}).actions
        assert InjectionRule(off, SETTINGS)(conversion(1, "install"), touch()) == []

    def test_conversion_before_click_is_skew(self) -> None:
        rule = InjectionRule({}, SETTINGS)
        assert rule(conversion(-30), touch()) == []


class TestMismatch:
    """Known, differing country or device mismatch; unknown values never do."""

    def test_mismatch(self) -> None:
        seen = mismatch_rule(conversion(600, user={"country": "VN"}), touch())
        assert [h.reason for h in seen] == ["geo_mismatch", "geo_mismatch"]
        assert seen[1].subject_id == "clk1"
        seen = mismatch_rule(conversion(600, user={"device_type": "desktop"}), touch())
        assert next(h.reason for h in seen) == "device_mismatch"

    def test_unknown_context(self) -> None:
        assert mismatch_rule(conversion(600), touch()) == []
        assert mismatch_rule(conversion(600, user={"country": "de"}), touch()) == []


class TestPostbacks:
    """Forged ids, orphans and replays, each from its own evidence."""

    def test_click_ids(self) -> None:
        rule = ClickIdRule(KEY)
        good = ClickIdSigner(KEY).mint(1_772_366_400_000)
        forged = good[:20] + ".AAAAAAAAAAAA"
        found = ResolvedConversion(conversion=conversion(9, click_id=good), lookup="found")
        orphan = ResolvedConversion(conversion=conversion(9, click_id=good), lookup="unknown_click")
        fake = ResolvedConversion(conversion=conversion(9, click_id=forged), lookup="unknown_click")
        assert rule(found) == []
        assert [h.reason for h in rule(orphan)] == ["orphan_conversion"]
        assert [h.reason for h in rule(fake)] == ["forged_click_id"]
        none = ResolvedConversion(conversion=conversion(9), lookup="no_click")
        assert rule(none) == []

    def test_replay_but_not_status_update(self) -> None:
        rule = ReplayRule({}, 86_400)
        first = conversion(0, "lead", txid="T1", revenue=10.0)
        assert rule(first) == []
        assert rule(first) == []  # the same event again: a redelivery
        update = conversion(60, "lead", txid="T1", revenue=10.0, event_id="v2", status="approved")
        assert rule(update) == []
        assert rule.is_repeat(update)
        replay = conversion(3600, "lead", txid="T1", revenue=10.0, event_id="v3")
        assert [h.reason for h in rule(replay)] == ["replayed_postback"]
        assert rule.expire(T0 + timedelta(days=3)) == 3


class TestCombiner:
    """Evidence adds up; thresholds pick the action; bad thresholds fail early."""

    def test_actions(self) -> None:
        combine = Combiner(SETTINGS)
        weak = combine("click", "c1", T0, ["geo_mismatch"])
        assert weak.action == "suspicious"
        both = combine("click", "c1", T0, ["device_mismatch", "geo_mismatch"])
        assert both.action == "suspicious" and both.score > weak.score
        strong = combine("click", "c1", T0, ["geo_mismatch", "forged_click_id"])
        assert strong.action == "reject" and strong.reasons[0] == "forged_click_id"
        assert combine("partner", "p", T0, ["partner_anomaly"]).action == "ok"
        assert strong.verdict_id != weak.verdict_id

    def test_bad_thresholds(self) -> None:
        with pytest.raises(ValueError, match="suspicious_score"):
            Combiner(FraudSettings(suspicious_score=0.95, reject_score=0.9))
