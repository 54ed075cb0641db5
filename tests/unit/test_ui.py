"""The dashboard's pure parts: URL parameters, the session gate, advice and goals."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from starlette.requests import Request

from clicktrail.config import ConfigError, parse_registry
from clicktrail.config.registry import DashboardSettings
from clicktrail.ui import advice, params
from clicktrail.ui.auth import COOKIE, SESSION_SECONDS, Gate
from clicktrail.ui.queries import CampaignAction, Conflict, Figures, Overview, Partner


class TestPeriod:
    """A period is whole UTC days, given or the last week of data."""

    def test_default_is_the_last_seven_days_of_data(self) -> None:
        found = params.period({}, date(2026, 3, 9))
        assert (found.first, found.last, found.days) == (date(2026, 3, 3), date(2026, 3, 9), 7)
        assert found.previous() == params.Period(date(2026, 2, 24), date(2026, 3, 2))
        assert found.bounds() == {
            "start": datetime(2026, 3, 3),
            "end": datetime(2026, 3, 10),
        }
        assert found.end == datetime(2026, 3, 10, tzinfo=UTC)

    def test_from_alone_runs_a_week_up_to_the_data(self) -> None:
        found = params.period({"from": "2026-03-05"}, date(2026, 3, 9))
        assert (found.first, found.last) == (date(2026, 3, 5), date(2026, 3, 9))

    @pytest.mark.parametrize(
        "given",
        [
            {"from": "2026-3-1"},
            {"from": "2026-02-30"},
            {"to": "yesterday"},
            {"from": "2026-03-01'--"},
            {"from": "2026-03-09", "to": "2026-03-01"},
            {"from": "2000-01-01", "to": "2026-03-01"},
        ],
    )
    def test_anything_else_is_refused(self, given: dict[str, str]) -> None:
        with pytest.raises(params.BadParameter):
            params.period(given, date(2026, 3, 9))


class TestIds:
    """Ids and segments are checked against fixed patterns and sets."""

    def test_segments_map_to_columns(self) -> None:
        assert params.segment("device") == "device_type"
        assert params.segment("") is None
        with pytest.raises(params.BadParameter):
            params.segment("device_type; DROP TABLE clicks")

    def test_keys_and_sub_ids(self) -> None:
        assert params.key("campaign", "acme-brand_search.1") == "acme-brand_search.1"
        assert params.sub_key("") == "sub1"
        for bad in ("a'b", "a b", "", "x" * 200):
            with pytest.raises(params.BadParameter):
                params.key("campaign", bad)
        with pytest.raises(params.BadParameter):
            params.sub_key("sub1']")


def request(headers: dict[str, str] | None = None, client: str = "198.51.100.7") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "headers": raw, "client": (client, 1234), "path": "/ui/"})


class TestGate:
    """The operator token, a signed expiring cookie, or loopback without a token."""

    def test_a_session_is_signed_and_expires(self) -> None:
        now = [1_000_000.0]
        gate = Gate("operator-token-0123456789", clock=lambda: now[0])
        value = gate.session()
        assert "operator-token" not in value
        assert gate.check(request({"cookie": f"{COOKIE}={value}"})).allowed
        expires, _, mac = value.partition(".")
        tampered = f"{int(expires) + 1}.{mac}"
        assert gate.check(request({"cookie": f"{COOKIE}={tampered}"})).status == 401
        now[0] += SESSION_SECONDS + 1
        assert gate.check(request({"cookie": f"{COOKIE}={value}"})).status == 401

    def test_a_new_token_ends_every_session(self) -> None:
        value = Gate("operator-token-0123456789").session()
        other = Gate("another-token-0123456789")
        assert not other.valid_session(value)

    def test_bearer_tokens(self) -> None:
        gate = Gate("operator-token-0123456789")
        assert gate.check(request({"authorization": "Bearer operator-token-0123456789"})).allowed
        assert gate.check(request({"authorization": "Bearer nope"})).status == 403
        assert gate.check(request()).status == 401

    def test_without_a_token_loopback_only_and_no_proxy(self) -> None:
        assert Gate(None).check(request(client="127.0.0.1")).allowed
        assert Gate(None).check(request(client="::1")).allowed
        assert Gate(None).check(request()).status == 403
        assert Gate(None, ["10.0.0.0/8"]).check(request(client="127.0.0.1")).status == 403
        assert not Gate(None).valid_token("")


def partner(pid: str, clicks: int, flagged: int, verdict: str, withheld: float) -> Partner:
    figures = Figures(clicks=clicks, conversions=10, payout=5.0, withheld=withheld)
    found = Partner(pid, figures, flagged_clicks=flagged, verdict=verdict, rejected_windows=3)
    found.reasons = {"click_flood_ip": flagged}
    return found


class TestAdvice:
    """Advice follows the figures and the settings, and ranks by money."""

    settings = DashboardSettings()

    def test_stop_paying_needs_a_reject_verdict_and_a_flagged_share(self) -> None:
        found = advice.stop_paying(
            [
                partner("aff-x", 100, 94, "reject", 2310.0),
                partner("aff-honest", 100, 94, "ok", 0.0),  # no verdict: not accused
                partner("aff-mild", 100, 10, "reject", 5.0),  # a small share
                partner("aff-tiny", 5, 5, "reject", 1.0),  # too little traffic
            ],
            self.settings,
            "from=2026-03-01&to=2026-03-07",
        )
        assert [a.subject for a in found] == ["aff-x"]
        assert found[0].text.startswith(
            "Stop paying aff-x: 94% of its clicks in this period were flagged (click flooding); "
            "EUR 2,310.00 of payouts are on hold"
        )
        assert found[0].link == "/ui/partners/aff-x?from=2026-03-01&to=2026-03-07"
        assert "High" in found[0].confidence

    def test_brand_notices_only_for_warnings_and_worse(self) -> None:
        seen = datetime(2026, 3, 1, tzinfo=UTC)

        def conflict(offender: str, severity: str, inflation: float | None) -> Conflict:
            return Conflict(
                "northwind", offender, "misspelled_term", "nortwind shoes", 9, 40, 0, True,
                inflation, 12.5 if inflation else None, severity, seen, seen,
            )  # fmt: skip

        found = advice.brand_notices(
            [conflict("aff-typo", "critical", 0.6), conflict("aff-quiet", "info", None)],
            self.settings,
            "",
        )
        assert [a.subject for a in found] == ["aff-typo"]
        assert found[0].text == (
            "aff-typo bids on 'nortwind shoes' against your northwind brand campaign; your "
            "brand CPC is up about 60% in those auctions (EUR 12.50 extra spend so far): "
            "send the notice."
        )

    def test_goals_and_ranking(self) -> None:
        row = CampaignAction("c1", "purchase", 10, 100.0, 400.0, target_cpa=25.0)
        overview = Overview(Figures(), Figures(), {}, [row], 0, 0.0)
        [over] = advice.goals(overview, self.settings, "")
        assert over.kind == "cpa_over_goal" and over.money == pytest.approx(150.0)
        assert "60% over" in over.text
        on_goal = CampaignAction("c2", "purchase", 10, 100.0, 200.0, target_cpa=25.0)
        assert (
            advice.goals(Overview(Figures(), Figures(), {}, [on_goal], 0, 0.0), self.settings, "")
            == []
        )
        none = CampaignAction("c3", "lead", 0, 0.0, 80.0, target_cpa=4.0)
        [nothing] = advice.goals(
            Overview(Figures(), Figures(), {}, [none], 0, 0.0), self.settings, ""
        )
        assert nothing.money == 80.0 and "not one lead conversion" in nothing.text
        small = advice.Advice("segment", "x", "", 0.0, "", "", "")
        assert advice.rank([small, over]) == [over, small]

    def test_wilson(self) -> None:
        assert advice.wilson_low(0, 0) == 0.0
        assert 0.87 < advice.wilson_low(94, 100) < 0.94
        assert advice.wilson_low(100, 100) < 1.0


class TestGoals:
    """The registry takes goals per campaign and action, and checks them."""

    base = {
        "advertisers": {"acme": {"postback_secret": "acme-secret-0123456789"}},
        "campaigns": {"c1": {"advertiser": "acme", "landing_url": "https://acme.example/"}},
    }

    def with_goals(self, goals: object) -> dict[str, object]:
        campaign = {**self.base["campaigns"]["c1"], "goals": goals}  # type: ignore[index]
        return {**self.base, "campaigns": {"c1": campaign}}

    def test_goals_are_read(self) -> None:
        registry = parse_registry(
            self.with_goals({"purchase": {"target_cpa": 25, "target_roas": 3}})
        )
        goal = registry.campaigns["c1"].goals["purchase"]
        assert (goal.target_cpa, goal.target_roas) == (25, 3)
        assert parse_registry(self.base).campaigns["c1"].goals == {}

    @pytest.mark.parametrize(
        ("goals", "message"),
        [
            ({"purchase": {}}, "a goal needs target_cpa, target_roas or both"),
            ({"purchase": {"target_cpa": -1}}, "target_cpa"),
            ({"refund": {"target_cpa": 5}}, "campaigns.c1.goals: unknown action 'refund'"),
            ({"purchase": {"target_cap": 5}}, "target_cap"),
        ],
    )
    def test_bad_goals_name_the_key(self, goals: object, message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            parse_registry(self.with_goals(goals))
