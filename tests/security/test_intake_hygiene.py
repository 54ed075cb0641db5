"""Intake hygiene: control characters, ancient timestamps, made-up codes, ports, hashed-IP
look-alikes and ids the registry does not know."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from tests.unit.test_edge_app import EXAMPLE, Edge, Recorder

from clicktrail.config import Registry, parse_registry
from clicktrail.config.registry import Campaign
from clicktrail.contracts import Click, Conversion, FraudVerdict, StateStore
from clicktrail.contracts.internal import ResolvedConversion
from clicktrail.edge.app import build_edge
from clicktrail.edge.backend import BusBackend
from clicktrail.edge.landing import LandingPolicy
from clicktrail.processors.fraud.detector import FraudDetector
from clicktrail.processors.intake import Intake, Rejection
from clicktrail.runtime.wiring import build_intake

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLICK: dict[str, Any] = {
    "type": "click",
    "event_id": "evt-1",
    "ts": "2026-03-01T10:00:00Z",
    "click_id": "clk-1",
    "campaign_id": "acme-brand-search",
    "partner_id": "agency-search",
    "keyword": "acme shoes",
}
CONTROLS = ["\x00", "\r\n", "\t", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029"]


def registry(**changes: Any) -> Registry:
    data = yaml.safe_load(EXAMPLE.read_text())
    for section, values in changes.items():
        data[section] = {**data.get(section, {}), **values}
    return parse_registry(data)


def edge_of(reg: Registry) -> Edge:
    bus = Recorder()
    return Edge(build_edge(BusBackend(reg, bus), clock=NOW.timestamp), bus, reg)


def refused(result: object, reason: str = "invalid_field") -> bool:
    return isinstance(result, Rejection) and result.reason == reason


class TestControlCharacters:
    @pytest.mark.parametrize("char", CONTROLS)
    @pytest.mark.parametrize("field", ["partner_id", "keyword", "landing_url", "referrer"])
    def test_refused_in_event_text(self, char: str, field: str) -> None:
        intake = Intake(clock=lambda: NOW)
        assert refused(intake.validate({**CLICK, field: f"X{char}Injected:1"}))

    @pytest.mark.parametrize("char", CONTROLS)
    def test_refused_in_nested_text(self, char: str) -> None:
        intake = Intake(clock=lambda: NOW)
        assert refused(intake.validate({**CLICK, "sub_ids": {"sub1": f"a{char}b"}}))
        assert refused(intake.validate({**CLICK, "sub_ids": {f"s{char}": "b"}}))
        assert refused(intake.validate({**CLICK, "user": {"segments": [f"a{char}b"]}}))
        assert refused(intake.validate({**CLICK, "user": {"os": f"a{char}b"}}))

    def test_ordinary_unicode_is_kept(self) -> None:
        event = Intake(clock=lambda: NOW).validate({**CLICK, "keyword": "schuhe größe 42 — 靴"})
        assert isinstance(event, Click) and event.keyword == "schuhe größe 42 — 靴"

    def test_a_crlf_partner_id_on_the_pixel_is_a_400(self) -> None:
        edge = edge_of(registry())
        query = "cid=acme-brand-search&pid=X%0D%0AX-Injected:1&kw=a%00b"
        answer = edge.get("/i.gif", query)
        assert answer.status == 400 and answer.json()["error"] == "invalid_field"

    def test_a_browser_header_with_a_tab_or_utf8_does_not_cost_the_click(self) -> None:
        edge = edge_of(registry())
        headers = [
            (b"user-agent", b"Mozilla/5.0\t(X11)"),
            (b"referer", "https://news.example/€uro\tpage".encode()),
        ]
        answer = edge.get("/c/acme-brand-search", "pid=agency-search", headers=headers)
        assert answer.status == 302, answer.body
        [(_, _, click)] = edge.bus.records
        assert click.user.user_agent == "Mozilla/5.0 (X11)"
        assert click.referrer == "https://news.example/%E2%82%ACuro%09page"


class TestTimestamps:
    @pytest.mark.parametrize(
        "ts", ["1999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00"]
    )
    def test_rfc3339_before_2000_is_refused_like_epoch_numbers(self, ts: str) -> None:
        assert refused(Intake(clock=lambda: NOW).validate({**CLICK, "ts": ts}))
        assert refused(Intake(clock=lambda: NOW).validate({**CLICK, "ts": 1}))

    def test_older_than_max_past_days_is_past_timestamp(self) -> None:
        intake = build_intake(registry(intake={"max_past_days": 30}), clock=lambda: NOW)
        old = (NOW - timedelta(days=31)).isoformat()
        assert refused(intake.validate({**CLICK, "ts": old}), "past_timestamp")
        recent = (NOW - timedelta(days=29)).isoformat()
        assert isinstance(intake.validate({**CLICK, "ts": recent}), Click)

    def test_the_default_bound_is_ten_years(self) -> None:
        intake = build_intake(registry(), clock=lambda: NOW)
        assert refused(intake.validate({**CLICK, "ts": "2015-01-01T00:00:00Z"}), "past_timestamp")


class TestCodes:
    CONVERSION: dict[str, Any] = {
        "type": "conversion",
        "event_id": "cv-1",
        "ts": "2026-03-01T10:00:00Z",
        "action": "purchase",
    }

    @pytest.mark.parametrize("currency", ["ABC", "QQQ", "US$", "usd"])
    def test_only_iso_4217_currencies(self, currency: str) -> None:
        assert refused(
            Intake(clock=lambda: NOW).validate({**self.CONVERSION, "currency": currency})
        )

    def test_real_currencies_pass(self) -> None:
        for currency in ("EUR", "JPY", "CHF"):
            event = Intake(clock=lambda: NOW).validate({**self.CONVERSION, "currency": currency})
            assert isinstance(event, Conversion)

    @pytest.mark.parametrize("country", ["QQ", "XX", "ZZ", "T1"])
    def test_only_iso_3166_countries(self, country: str) -> None:
        assert refused(Intake(clock=lambda: NOW).validate({**CLICK, "user": {"country": country}}))

    def test_a_cdn_placeholder_country_header_is_dropped_not_fatal(self) -> None:
        edge = edge_of(registry(edge={"country_header": "cf-ipcountry"}))
        answer = edge.get(
            "/c/acme-brand-search", "pid=agency-search", headers=[(b"cf-ipcountry", b"XX")]
        )
        assert answer.status == 302
        [(_, _, click)] = edge.bus.records
        assert click.user.country is None


class TestLandingPorts:
    def campaign(self, url: str) -> Campaign:
        return Campaign(advertiser="acme", landing_url=url, landing_domains=["acme.example"])

    def test_a_landing_url_port_out_of_range_fails_at_start(self) -> None:
        with pytest.raises(ValueError, match="landing_url"):
            LandingPolicy("c", self.campaign("https://acme.example:99999/x"))

    @pytest.mark.parametrize("port", ["99999", "0", "65536", "8080"])
    def test_an_override_may_not_change_the_port(self, port: str) -> None:
        edge = edge_of(registry())
        answer = edge.get(
            "/c/acme-brand-search",
            {"pid": "agency-search", "url": f"https://www.acme.example:{port}/x"},
        )
        assert answer.status == 400 and answer.json()["error"] == "landing_domain_not_allowed"

    def test_the_landing_urls_own_port_is_allowed(self) -> None:
        policy = LandingPolicy("c", self.campaign("https://acme.example:8443/x"))
        for url in ("https://acme.example:8443/y", "https://acme.example/y"):
            assert urlsplit(policy.target({"url": url}, {})).path == "/y"
        with pytest.raises(Exception, match="landing"):
            policy.target({"url": "https://acme.example:8444/y"}, {})


class TestHashedLookAlikes:
    def test_truncate_mode_refuses_h_values(self) -> None:
        assert refused(Intake(clock=lambda: NOW).validate({**CLICK, "user": {"ip": "h:1.2.3.4"}}))

    def test_hash_mode_accepts_only_its_own_shape(self) -> None:
        intake = Intake(clock=lambda: NOW, ip_mode="hash", ip_hash_key="k" * 16)
        assert refused(intake.validate({**CLICK, "user": {"ip": "h:203.0.113.77"}}))
        event = intake.validate({**CLICK, "user": {"ip": "h:" + "0123456789abcdef01234567"}})
        assert isinstance(event, Click)


class TestUnknownIds:
    def test_reject_refuses_unknown_partners_and_campaigns(self) -> None:
        intake = build_intake(registry(security={"unknown_ids": "reject"}), clock=lambda: NOW)
        assert refused(intake.validate({**CLICK, "partner_id": "ghost"}), "unknown_partner")
        assert refused(intake.validate({**CLICK, "campaign_id": "ghost"}), "unknown_campaign")
        assert isinstance(intake.validate(CLICK), Click)

    def test_reject_applies_only_once_the_registry_lists_some(self) -> None:
        empty = Registry(security={"unknown_ids": "reject"})  # type: ignore[arg-type]
        intake = build_intake(empty, clock=lambda: NOW)
        assert isinstance(intake.validate({**CLICK, "partner_id": "ghost"}), Click)

    def test_the_click_redirect_refuses_an_unknown_pid_under_reject(self) -> None:
        edge = edge_of(registry(security={"unknown_ids": "reject"}))
        answer = edge.get("/c/acme-brand-search", "pid=ghost")
        assert answer.status == 400 and answer.json()["error"] == "unknown_partner"

    def test_flag_accepts_and_the_detector_marks_it_suspicious(self) -> None:
        reg = registry()
        ghost = {**CLICK, "partner_id": "ghost", "user": {"user_agent": "Mozilla/5.0"}}
        event = build_intake(reg, clock=lambda: NOW).validate(ghost)
        assert isinstance(event, Click)
        stores: dict[str, StateStore] = {}
        detector = FraudDetector(reg, lambda name: stores.setdefault(name, {}))
        verdicts = [v for v in detector(event) if isinstance(v, FraudVerdict)]
        [verdict] = [v for v in verdicts if v.subject_type == "click"]
        assert verdict.reasons == ["unknown_partner"] and verdict.action == "suspicious"

    def test_flag_marks_a_conversion_naming_an_unknown_campaign(self) -> None:
        reg = registry()
        conversion = Conversion(
            event_id="cv-1",
            ts=NOW,
            action="purchase",
            campaign_id="ghost",
            partner_id="agency-search",
        )
        stores: dict[str, StateStore] = {}
        detector = FraudDetector(reg, lambda name: stores.setdefault(name, {}))
        verdicts = detector(
            ResolvedConversion(conversion=conversion, click=None, lookup="no_click")
        )
        assert [v.reasons for v in verdicts if v.subject_type == "conversion"] == [
            ["unknown_campaign"]
        ]
