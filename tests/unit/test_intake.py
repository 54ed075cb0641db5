"""Intake: every refusal has a reason code, every acceptance is anonymized."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from clicktrail.contracts import Click
from clicktrail.processors.intake import Intake, Rejection

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLICK = {
    "type": "click",
    "event_id": "evt-1",
    "ts": "2026-03-01T10:00:00Z",
    "click_id": "clk-1",
    "campaign_id": "cmp-1",
    "partner_id": "aff-1",
    "user": {"ip": "203.0.113.77", "user_id": "u-1"},
}


def make_intake(**kwargs: object) -> Intake:
    return Intake(clock=lambda: NOW, **kwargs)  # type: ignore[arg-type]


class TestRefusals:
    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (b"{not json", "invalid_json"),
            (b"[1, 2]", "not_an_object"),
            (b'"a string"', "not_an_object"),
            (b'{"event_id": "x"}', "missing_type"),
            (b'{"type": "refund", "event_id": "x"}', "unknown_type"),
            (orjson.dumps({**CLICK, "partner_id": 7}), "invalid_field"),
            (orjson.dumps({**CLICK, "schema_version": 9}), "unsupported_schema_version"),
            (orjson.dumps({**CLICK, "ts": "2026-03-01T14:00:00Z"}), "future_timestamp"),
            (orjson.dumps({**CLICK, "user": {"ip": "300.1.1.1"}}), "invalid_field"),
        ],
    )
    def test_reason_codes(self, raw: bytes, reason: str) -> None:
        result = make_intake().parse(raw)
        assert isinstance(result, Rejection)
        assert result.reason == reason
        assert result.message

    def test_oversized_payload(self) -> None:
        result = make_intake(max_event_bytes=100).parse(orjson.dumps(CLICK))
        assert isinstance(result, Rejection)
        assert result.reason == "payload_too_large"

    def test_messages_name_the_field(self) -> None:
        result = make_intake().validate({**CLICK, "click_id": None, "cost": "free"})
        assert isinstance(result, Rejection)
        assert "click_id:" in result.message and "cost:" in result.message
        assert result.event_type == "click" and result.event_id == "evt-1"

    def test_skew_inside_the_window_is_accepted(self) -> None:
        intake = make_intake(max_future_skew=timedelta(hours=3))
        assert isinstance(intake.validate({**CLICK, "ts": "2026-03-01T14:00:00Z"}), Click)

    def test_dead_letter_keeps_payload_and_reason(self) -> None:
        intake = make_intake()
        rejection = intake.parse(b"{oops")
        assert isinstance(rejection, Rejection)
        letter = intake.dead_letter(rejection, b"{oops", "replay:f.jsonl:3")
        assert (letter.reason, letter.payload, letter.source) == (
            "invalid_json",
            "{oops",
            "replay:f.jsonl:3",
        )
        assert letter.received_at == NOW


class TestAnonymization:
    def test_truncate_is_the_default(self) -> None:
        event = make_intake().validate(CLICK)
        assert isinstance(event, Click)
        assert event.user.ip == "203.0.113.0"
        assert event.user.user_id == "u-1"

    def test_ipv6_truncates_to_48_bits(self) -> None:
        event = make_intake().validate({**CLICK, "user": {"ip": "2001:db8:1:2::5"}})
        assert isinstance(event, Click)
        assert event.user.ip == "2001:db8:1::"

    def test_hash_mode_is_keyed_and_stable(self) -> None:
        first = make_intake(ip_mode="hash", ip_hash_key="k" * 16).validate(CLICK)
        again = make_intake(ip_mode="hash", ip_hash_key="k" * 16).validate(CLICK)
        other_key = make_intake(ip_mode="hash", ip_hash_key="z" * 16).validate(CLICK)
        assert isinstance(first, Click) and isinstance(again, Click)
        assert isinstance(other_key, Click)
        assert first.user.ip is not None and first.user.ip.startswith("h:")
        assert first.user.ip == again.user.ip != other_key.user.ip
        assert "203.0.113" not in first.user.ip

    def test_anonymizing_twice_changes_nothing(self) -> None:
        truncated = make_intake().validate({**CLICK, "user": {"ip": "203.0.113.0"}})
        assert isinstance(truncated, Click) and truncated.user.ip == "203.0.113.0"
        hashing = make_intake(ip_mode="hash", ip_hash_key="k" * 16)
        first = hashing.validate(CLICK)
        assert isinstance(first, Click) and first.user.ip is not None
        again = hashing.validate({**CLICK, "user": {"ip": first.user.ip}})
        assert isinstance(again, Click) and again.user.ip == first.user.ip

    @pytest.mark.parametrize("ip", ["h:abc123", "h:203.0.113.77", "h:" + "a" * 24])
    def test_a_hash_prefix_is_not_an_address_in_truncate_mode(self, ip: str) -> None:
        refused = make_intake().validate({**CLICK, "user": {"ip": ip}})
        assert isinstance(refused, Rejection) and refused.reason == "invalid_field"

    @pytest.mark.parametrize(
        "ip", ["h:abc123", "h:203.0.113.77", "h:" + "A" * 24, "h:" + "a" * 25, "H:" + "a" * 24]
    )
    def test_hash_mode_passes_only_its_own_shape(self, ip: str) -> None:
        intake = make_intake(ip_mode="hash", ip_hash_key="k" * 16)
        refused = intake.validate({**CLICK, "user": {"ip": ip}})
        assert isinstance(refused, Rejection) and refused.reason == "invalid_field"
