"""Dead letters are stored redacted: addresses anonymized like accepted events, secrets masked."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from tests.unit.test_edge_app import Edge, make_edge

from clicktrail.bus.topics import DEAD_LETTERS
from clicktrail.contracts import DeadLetter
from clicktrail.processors.intake import Intake, Rejection
from clicktrail.processors.privacy import ip_anonymizer

RAW_V4 = "198.18.7.213"
RAW_V6 = "2001:db8:aaaa:bbbb:cccc::77"
CLICK: dict[str, Any] = {
    "type": "click",
    "event_id": "evt-1",
    "ts": "2026-03-01T10:00:00Z",
    "click_id": "clk-1",
    "campaign_id": "acme-brand-search",
    "partner_id": "agency-search",
    "user": {"ip": RAW_V4, "user_agent": f"proxy for {RAW_V6}"},
}
SECRETS = ("key", "sig", "signature", "secret", "token", "api_key", "password")
SECRET = "s3cr3t-value-0123456789"
API_KEY = (b"authorization", b"Bearer acme-dev-api-key-change-me")


def stored(payload: object) -> str:
    """The payload of the dead letter the intake writes for ``payload``."""
    return Intake().dead_letter(Rejection("invalid_json", "refused"), payload, "test").payload


def the_letter(edge: Edge) -> DeadLetter:
    letters = edge.bus.on(DEAD_LETTERS)
    assert len(letters) == 1, letters
    return letters[0]


def assert_clean(text: str) -> None:
    assert RAW_V4 not in text and "198.18.7" not in text.replace("198.18.7.0", "")
    assert "cccc" not in text and SECRET not in text


class TestJsonPayloads:
    def test_a_refused_event_keeps_only_the_truncated_address(self) -> None:
        intake = Intake()
        bad = {**CLICK, "cost": -1}
        refused = intake.validate(bad)
        assert isinstance(refused, Rejection)
        letter = intake.dead_letter(refused, bad, "test")
        payload = orjson.loads(letter.payload)
        assert payload["user"]["ip"] == "198.18.7.0"
        assert payload["user"]["user_agent"] == "proxy for 2001:db8:aaaa::"
        assert_clean(letter.payload)

    def test_hash_mode_hashes_dead_letters_too(self) -> None:
        intake = Intake(ip_mode="hash", ip_hash_key="k" * 16)
        refused = intake.validate({**CLICK, "cost": -1})
        assert isinstance(refused, Rejection)
        letter = intake.dead_letter(refused, {**CLICK, "cost": -1}, "test")
        assert orjson.loads(letter.payload)["user"]["ip"] == ip_anonymizer("hash", "k" * 16)(RAW_V4)
        assert_clean(letter.payload)

    def test_an_invalid_address_is_not_quoted_in_the_message(self) -> None:
        intake = Intake()
        bad = {**CLICK, "user": {"ip": RAW_V4 + "x"}}
        refused = intake.validate(bad)
        assert isinstance(refused, Rejection) and refused.reason == "invalid_field"
        letter = intake.dead_letter(refused, bad, "test")
        assert_clean(letter.message + letter.payload)

    @pytest.mark.parametrize("name", [*SECRETS, "API_KEY", "Token"])
    def test_secrets_are_masked_at_any_depth(self, name: str) -> None:
        intake = Intake()
        bad = {**CLICK, "extra": {"nested": [{name: SECRET}]}, name: SECRET}
        refused = intake.validate(bad)
        assert isinstance(refused, Rejection)
        letter = intake.dead_letter(refused, bad, "test")
        assert_clean(letter.payload)
        assert orjson.loads(letter.payload)[name] == "***"

    def test_an_authorization_field_is_dropped(self) -> None:
        assert orjson.loads(stored({"Authorization": f"Bearer {SECRET}", "a": 1})) == {"a": 1}


class TestTextPayloads:
    def test_a_replayed_line_that_is_not_json_is_redacted(self) -> None:
        intake = Intake()
        raw = f'{{"type":"click","user":{{"ip":"{RAW_V4}"}},"key":"{SECRET}", oops'.encode()
        refused = intake.parse(raw)
        assert isinstance(refused, Rejection) and refused.reason == "invalid_json"
        letter = intake.dead_letter(refused, raw, "replay:x.jsonl:1")
        assert_clean(letter.payload)
        assert "198.18.7.0" in letter.payload and '"key": "***"' in letter.payload

    @pytest.mark.parametrize("name", SECRETS)
    def test_query_strings_and_forms_are_masked(self, name: str) -> None:
        text = f"GET /postback?ip={RAW_V4}&{name}={SECRET}&v6={RAW_V6.replace(':', '%3A')}"
        redacted = stored(text)
        assert_clean(redacted)
        assert f"{name}=***" in redacted
        assert_clean(stored(text.encode()))

    def test_bearer_credentials_and_authorization_lines_are_removed(self) -> None:
        text = f"POST /v1/events\nAuthorization: Bearer {SECRET}\nx token: Bearer {SECRET}"
        redacted = stored(text)
        assert SECRET not in redacted and "Authorization" not in redacted


class TestEdge:
    def test_a_malformed_json_postback_body_does_not_keep_the_key(self) -> None:
        edge = make_edge()
        body = f'{{"advertiser": "acme", "key": "{edge.secret}", "ip": "{RAW_V4}"'.encode()
        answer = edge.call(
            "POST", "/postback", headers=[(b"content-type", b"application/json")], body=body
        )
        assert answer.status == 400
        letter = the_letter(edge)
        assert edge.secret not in letter.payload and RAW_V4 not in letter.payload
        assert "***" in letter.payload

    def test_a_refused_form_postback_masks_every_secret(self) -> None:
        edge = make_edge()
        form = {"advertiser": "acme", "key": edge.secret, "event": "refund", "token": SECRET}
        answer = edge.call(
            "POST",
            "/postback",
            headers=[(b"content-type", b"application/x-www-form-urlencoded")],
            body=urlencode(form).encode(),
        )
        assert answer.status == 400 and answer.json()["error"] == "unknown_action"
        letter = the_letter(edge)
        assert edge.secret not in letter.payload and SECRET not in letter.payload

    def test_the_authorization_header_is_never_stored(self) -> None:
        edge = make_edge()
        headers = [(b"content-type", b"application/json"), API_KEY]
        answer = edge.call("POST", "/v1/events", headers=headers, body=b"{not json")
        assert answer.status == 400
        assert b"acme-dev-api-key" not in the_letter(edge).payload.encode()

    def test_a_refused_pixel_keeps_no_raw_address_nor_token(self) -> None:
        edge = make_edge()
        query = {"cid": "acme-brand-search", "ip": RAW_V4, "token": SECRET}  # no pid
        answer = edge.get("/i.gif", query, client=(RAW_V4, 1234))
        assert answer.status == 400 and answer.json()["error"] == "missing_param"
        assert_clean(the_letter(edge).payload)
