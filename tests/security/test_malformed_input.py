"""Malformed input is a 4xx or a dead letter with a reason code: never a 500, never a crash.

Each case here was a 500 (or a crashed ``clicktrail replay``) from a hostile client on
``clicktrail run``; the hypothesis tests hunt for more of the same kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.integration.test_cli import cli
from tests.unit.test_edge_app import Edge, make_edge

from clicktrail.bus.topics import DEAD_LETTERS
from clicktrail.contracts import DeadLetter
from clicktrail.processors.intake import Intake, Rejection

CLICK: dict[str, Any] = {
    "type": "click",
    "event_id": "evt-1",
    "ts": "2026-03-01T10:00:00Z",
    "click_id": "clk-1",
    "campaign_id": "acme-brand-search",
    "partner_id": "agency-search",
}
API_KEY = (b"authorization", b"Bearer acme-dev-api-key-change-me")
"""The example advertiser's key: ignored until the edge authenticates, then required."""
JSON = [API_KEY, (b"content-type", b"application/json")]
NON_ASCII_CLICK_ID = "A" * 20 + "." + "é" * 12  # the shape verify() compares byte-wise


def nested(depth: int) -> bytes:
    """``{"a": {"a": ... "x"}}`` as JSON text (orjson would refuse to write it past 254)."""
    return b'{"a":' * depth + b'"x"' + b"}" * depth


def with_field(event: dict[str, Any], name: str, raw: bytes) -> bytes:
    return orjson.dumps(event)[:-1] + b',"' + name.encode() + b'":' + raw + b"}"


def letters(edge: Edge) -> list[DeadLetter]:
    return edge.bus.on(DEAD_LETTERS)


class TestEventType:
    @pytest.mark.parametrize("value", [["click"], {}, {"a": 1}, 7, 1.5, True])
    def test_a_non_string_type_is_unknown_type(self, value: Any) -> None:
        intake = Intake()
        refused = intake.validate({**CLICK, "type": value})
        assert isinstance(refused, Rejection) and refused.reason == "unknown_type"
        letter = intake.dead_letter(refused, {**CLICK, "type": value}, "test")
        assert letter.reason == "unknown_type" and letter.event_id == "evt-1"

    def test_the_batch_answers_per_item_and_dead_letters_it(self) -> None:
        edge = make_edge()
        body = orjson.dumps([{**CLICK, "type": ["click"]}, {**CLICK, "type": {}}, CLICK])
        answer = edge.call("POST", "/v1/events", headers=JSON, body=body)
        assert answer.status == 200, answer.body
        assert answer.json()["accepted"] == 1
        assert [r["error"] for r in answer.json()["rejected"]] == ["unknown_type"] * 2
        assert [letter.reason for letter in letters(edge)] == ["unknown_type"] * 2


class TestDeepNesting:
    @pytest.mark.parametrize("depth", [300, 400, 500])
    @pytest.mark.parametrize("field", ["user", "sub_ids", "extra"])
    def test_a_deep_event_is_refused_and_dead_lettered(self, depth: int, field: str) -> None:
        edge = make_edge()
        base = {k: v for k, v in CLICK.items() if k != field}
        body = b"[" + with_field(base, field, nested(depth)) + b"," + orjson.dumps(CLICK) + b"]"
        answer = edge.call("POST", "/v1/events", headers=JSON, body=body)
        assert answer.status == 200, answer.body
        assert [r["error"] for r in answer.json()["rejected"]] == ["invalid_field"]
        [letter] = letters(edge)
        assert letter.reason == "invalid_field" and len(letter.payload) < 65_536

    @pytest.mark.parametrize("depth", [300, 500])
    def test_a_deep_non_object_item_is_refused(self, depth: int) -> None:
        edge = make_edge()
        body = b"[" + b"[" * depth + b"]" * depth + b"," + orjson.dumps(CLICK) + b"]"
        answer = edge.call("POST", "/v1/events", headers=JSON, body=body)
        assert answer.status == 200, answer.body
        assert [r["error"] for r in answer.json()["rejected"]] == ["not_an_object"]


class TestClickIds:
    """``hmac.compare_digest`` raises on non-ASCII text: such an id must be refused first."""

    def test_a_postback_with_a_non_ascii_click_id_is_a_400(self) -> None:
        edge = make_edge()
        query = {"advertiser": "acme", "key": edge.secret, "click_id": NON_ASCII_CLICK_ID}
        answer = edge.get("/postback", urlencode(query))
        assert answer.status == 400, answer.body
        assert answer.json()["error"] == "invalid_param"
        assert [letter.reason for letter in letters(edge)] == ["invalid_param"]

    def test_a_conversion_pixel_with_a_non_ascii_click_id_is_a_400(self) -> None:
        edge = make_edge()
        answer = edge.get("/cv.gif", urlencode({"click_id": NON_ASCII_CLICK_ID}))
        assert answer.status == 400, answer.body

    def test_an_event_with_a_non_ascii_click_id_is_invalid_field(self) -> None:
        refused = Intake().validate({**CLICK, "click_id": NON_ASCII_CLICK_ID})
        assert isinstance(refused, Rejection) and refused.reason == "invalid_field"


def test_a_deep_json_postback_body_is_a_400() -> None:
    edge = make_edge()
    body = b'{"advertiser":"acme","key":"' + edge.secret.encode() + b'","x":' + nested(300) + b"}"
    answer = edge.call("POST", "/postback", headers=JSON[1:], body=body)
    assert answer.status == 400, answer.body
    assert answer.json()["error"] == "not_an_object"


def test_replay_dead_letters_hostile_lines_and_exits_zero(tmp_path: Path) -> None:
    lines = [
        orjson.dumps({**CLICK, "type": ["click"]}),
        orjson.dumps({**CLICK, "type": {}}),
        b'{"type":"click","user":' + b"[" * 500 + b"]" * 500 + b"}",
        orjson.dumps({**CLICK, "event_id": "e2", "click_id": NON_ASCII_CLICK_ID}),
        orjson.dumps({**CLICK, "event_id": "e3", "partner_id": "p\r\nX-Injected:1"}),
        orjson.dumps(CLICK),
    ]
    events = tmp_path / "hostile.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    result = cli("replay", str(events), cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("read 6, accepted 1, dead-lettered 5"), result.stdout


# ------------------------------------------------------------------ hypothesis

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    ["type", "event_id", "ts", "click_id", "campaign_id", "partner_id", "user", "sub_ids",
     "paid_click_ids", "cost", "currency", "action", "revenue", "keyword", "schema_version"]
)  # fmt: skip
EVENTS = st.builds(
    lambda base, changes: {**base, **changes},
    st.sampled_from([CLICK, {**CLICK, "type": "impression", "impression_id": "i"}]),
    st.dictionaries(FIELDS, JSON_VALUES, max_size=4),
)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.one_of(EVENTS, JSON_VALUES))
def test_the_intake_answers_every_value_without_raising(data: Any) -> None:
    intake = Intake()
    result = intake.validate(data)
    if isinstance(result, Rejection):
        letter = intake.dead_letter(result, data, "fuzz")
        assert letter.reason == result.reason
        orjson.dumps(letter.model_dump(mode="json"))


EDGE = make_edge()


@FUZZ
@given(items=st.lists(st.one_of(EVENTS, JSON_VALUES), min_size=1, max_size=4))
def test_the_batch_endpoint_answers_every_body_below_500(items: list[Any]) -> None:
    EDGE.bus.records.clear()
    answer = EDGE.call("POST", "/v1/events", headers=JSON, body=orjson.dumps(items))
    assert answer.status < 500, answer.body
    if "accepted" in answer.json():
        assert len(EDGE.bus.records) == len(items), "every item is published or dead-lettered"


PAIRS = st.lists(
    st.tuples(
        st.sampled_from(["advertiser", "click_id", "txid", "event", "revenue", "currency",
                         "partner_id", "campaign_id", "status", "payout", "user_id"]),
        st.text(max_size=40),
    ),
    max_size=8,
)  # fmt: skip


@FUZZ
@given(pairs=PAIRS, body=st.one_of(st.none(), JSON_VALUES))
def test_postbacks_answer_every_request_below_500(pairs: list[tuple[str, str]], body: Any) -> None:
    query = urlencode([("advertiser", "acme"), ("key", EDGE.secret), *pairs])
    if body is None:
        answer = EDGE.get("/postback", query)
    else:
        kind = [(b"content-type", b"application/json")]
        answer = EDGE.call("POST", "/postback", query, headers=kind, body=orjson.dumps(body))
    assert answer.status < 500, answer.body
    pixel = EDGE.get("/cv.gif", urlencode(pairs))
    assert pixel.status < 500, pixel.body
