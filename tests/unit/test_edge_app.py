"""The edge's endpoints, called as ASGI apps (raw bytes in, status/headers/body out)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
import pytest
import yaml
from pydantic import BaseModel

from clicktrail.bus.topics import AUCTION_INSIGHTS, CLICKS, CONVERSIONS, DEAD_LETTERS, IMPRESSIONS
from clicktrail.config import Registry, parse_registry
from clicktrail.contracts import AuctionInsight, Click, Conversion, DeadLetter, Impression
from clicktrail.edge.app import EdgeApp, build_edge
from clicktrail.edge.backend import BusBackend
from clicktrail.edge.pixel import GIF
from clicktrail.processors.postback import sign
from clicktrail.processors.signing import ClickIdSigner

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "clicktrail.example.yaml"
API_KEY = (b"authorization", b"Bearer acme-dev-api-key-change-me")
NOW = time.time()
CLIENT = ("203.0.113.77", 40000)


def registry(**edge: Any) -> Registry:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["edge"] = edge
    return parse_registry(data)


class Recorder:
    """A Producer that keeps what it is given."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, BaseModel]] = []

    def publish(self, topic: str, key: str, record: BaseModel) -> None:
        self.records.append((topic, key, record))

    def flush(self) -> None:
        return None

    def on(self, topic: str) -> list[Any]:
        return [record for t, _, record in self.records if t == topic]


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Edge:
    app: EdgeApp
    bus: Recorder
    registry: Registry
    secret: str = field(init=False)

    def __post_init__(self) -> None:
        self.secret = self.registry.advertisers["acme"].postback_secret

    def call(
        self,
        method: str,
        path: str,
        query: bytes | str | dict[str, str] = b"",
        *,
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes = b"",
        client: tuple[str, int] | None = CLIENT,
    ) -> Answer:
        if isinstance(query, dict):
            query = urlencode(query)
        if isinstance(query, str):
            query = query.encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("utf-8", "replace"),
            "root_path": "",
            "query_string": query,
            "headers": [(k.lower(), v) for k, v in headers],
            "client": client,
            "server": ("127.0.0.1", 8080),
        }
        incoming = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return incoming.pop(0) if incoming else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(self.app(scope, receive, send))
        start = sent[0]
        return Answer(
            start["status"],
            [(k.decode(), v.decode("latin-1")) for k, v in start["headers"]],
            b"".join(m.get("body", b"") for m in sent[1:]),
        )

    def get(self, path: str, query: bytes | str | dict[str, str] = b"", **kw: Any) -> Answer:
        return self.call("GET", path, query, **kw)

    def signed(self, params: dict[str, str], ts: float = NOW) -> dict[str, str]:
        params = {**params, "ts": str(int(ts))}
        return {**params, "sig": sign(self.secret, params.items())}


def make_edge(**edge: Any) -> Edge:
    reg = registry(**edge)
    bus = Recorder()
    return Edge(build_edge(BusBackend(reg, bus), clock=lambda: NOW), bus, reg)


@pytest.fixture
def edge() -> Edge:
    return make_edge()


def only_dead_letter(edge: Edge) -> DeadLetter:
    letters = edge.bus.on(DEAD_LETTERS)
    assert len(letters) == 1, letters
    assert all(t == DEAD_LETTERS for t, _, _ in edge.bus.records)
    return letters[0]


# ----------------------------------------------------------------- pixel

PIXEL = {
    "cid": "acme-brand-search",
    "pid": "agency-search",
    "kw": "acme shoes",
    "cost": "0.002",
    "impression_id": "imp-1",
    "placement": "top",
    "position": "1",
}
UA = (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64)")


class TestPixel:
    def test_answers_an_uncacheable_gif_and_records_the_impression(self, edge: Edge) -> None:
        answer = edge.get("/i.gif", PIXEL, headers=[UA])
        assert answer.status == 200 and answer.body == GIF
        assert answer.header("content-type") == "image/gif"
        assert "no-store" in (answer.header("cache-control") or "")
        [(topic, key, event)] = edge.bus.records
        assert (topic, key) == (IMPRESSIONS, "imp-1")
        assert isinstance(event, Impression)
        assert (event.campaign_id, event.partner_id, event.advertiser_id) == (
            "acme-brand-search",
            "agency-search",
            "acme",
        )
        assert (event.keyword, event.cost, event.position, event.channel) == (
            "acme shoes",
            0.002,
            1.0,
            "search",
        )
        assert event.user.ip == "203.0.113.0", "the raw address never leaves the edge"
        assert event.user.user_agent == "Mozilla/5.0 (X11; Linux x86_64)"
        cookie = answer.header("set-cookie") or ""
        assert cookie.startswith(f"ct_uid={event.user.user_id};") and "HttpOnly" in cookie

    def test_reuses_the_cookie_and_mints_missing_impression_ids(self, edge: Edge) -> None:
        query = {k: v for k, v in PIXEL.items() if k != "impression_id"}
        answer = edge.get("/i.gif", query, headers=[(b"cookie", b"a=1; ct_uid=u-42; b=2")])
        assert answer.status == 200 and answer.header("set-cookie") is None
        [(_, _, event)] = edge.bus.records
        assert event.user.user_id == "u-42" and len(event.impression_id) == 24

    def test_the_first_listed_spelling_wins(self, edge: Edge) -> None:
        edge.get("/i.gif", "cid=acme-brand-search&pid=p&kw=second&keyword=first&crid=c1")
        [(_, _, event)] = edge.bus.records
        assert (event.keyword, event.creative_id) == ("first", "c1")

    def test_country_and_device_come_from_params(self, edge: Edge) -> None:
        edge.get("/i.gif", {**PIXEL, "country": "de", "device": "Mobile", "os": "Android"})
        [(_, _, event)] = edge.bus.records
        assert (event.user.country, event.user.device_type, event.user.os) == (
            "DE",
            "mobile",
            "Android",
        )

    @pytest.mark.parametrize(
        ("change", "status", "reason"),
        [
            ({"cid": None}, 400, "missing_param"),
            ({"cid": "ghost"}, 404, "unknown_campaign"),
            ({"pid": None}, 400, "missing_param"),
            ({"cost": "cheap"}, 400, "invalid_field"),
            ({"channel": "telepathy"}, 400, "invalid_field"),
            ({"impression_id": "has space"}, 400, "invalid_field"),
        ],
    )
    def test_refusals_are_4xx_with_reason_and_dead_lettered(
        self, edge: Edge, change: dict[str, str | None], status: int, reason: str
    ) -> None:
        query = {k: v for k, v in {**PIXEL, **change}.items() if v is not None}
        answer = edge.get("/i.gif", query)
        assert answer.status == status
        assert answer.json()["error"] == reason and answer.json()["message"]
        letter = only_dead_letter(edge)
        assert (letter.reason, letter.source) == (reason, "edge:/i.gif")
        assert "203.0.113.77" not in letter.payload


# ----------------------------------------------------------------- click


def click(edge: Edge, campaign: str = "acme-affiliates", **params: str) -> Answer:
    return edge.get(f"/c/{campaign}", {"pid": "aff-coupons", **params}, headers=[UA])


class TestClick:
    def test_redirects_with_a_signed_click_id_and_records_the_click(self, edge: Edge) -> None:
        answer = edge.get(
            "/c/acme-affiliates",
            {"pid": "aff-coupons", "sub1": "spring", "sub2": "b", "gclid": "Cj0K", "kw": "acme"},
            headers=[UA, (b"referer", b"https://search.example/?q=acme")],
        )
        assert answer.status == 302
        location = answer.header("location") or ""
        assert location.startswith("https://www.acme.example/deals?cid=")
        click_id = parse_qs(urlsplit(location).query)["cid"][0]
        assert ClickIdSigner(edge.registry.security.click_id_key).verify(click_id)
        assert parse_qs(urlsplit(location).query)["sub1"] == ["spring"]
        [(topic, key, event)] = edge.bus.records
        assert (topic, key) == (CLICKS, click_id)
        assert isinstance(event, Click)
        assert event.click_id == event.event_id == click_id
        assert event.sub_ids == {"sub1": "spring", "sub2": "b"}
        assert event.paid_click_ids == {"gclid": "Cj0K"}
        assert event.referrer == "https://search.example/?q=acme"
        assert event.landing_url == location and event.keyword == "acme"
        assert event.channel == "affiliate" and event.user.ip == "203.0.113.0"
        assert (answer.header("set-cookie") or "").startswith(f"ct_uid={event.user.user_id};")

    def test_macro_values_are_url_encoded(self, edge: Edge) -> None:
        answer = click(edge, sub1="a&b=c d/../x?#")
        location = answer.header("location") or ""
        assert "sub1=a%26b%3Dc%20d%2F..%2Fx%3F%23" in location
        assert parse_qs(urlsplit(location).query)["sub1"] == ["a&b=c d/../x?#"]

    def test_override_on_an_allowed_domain_keeps_paid_click_ids_from_it(self, edge: Edge) -> None:
        answer = click(
            edge, "acme-brand-search", url="https://acme.example/sale?fbclid=F1&c={click_id}"
        )
        assert answer.status == 302
        location = answer.header("location") or ""
        assert location.startswith("https://acme.example/sale?fbclid=F1&c=")
        [(_, _, event)] = edge.bus.records
        assert event.paid_click_ids == {"fbclid": "F1"}
        assert location.endswith(event.click_id)

    @pytest.mark.parametrize(
        "target",
        [
            "https://evil.example/",
            "https://www.acme.example.evil.example/",
            "https://www.acme.example@evil.example/",
            "https://evil.example\\@www.acme.example/",
            "https://evil.example%2F@www.acme.example/",
            "//evil.example/",
            "javascript:alert(1)//www.acme.example",
            "https://evil.example#@www.acme.example",
            "https://www.acme.example\r\nSet-Cookie: x=1",
            "http://[::1]/",
            "data:text/html,<script>alert(1)</script>",
        ],
    )
    def test_no_open_redirect(self, edge: Edge, target: str) -> None:
        for name in ("url", "to", "lp"):
            answer = click(edge, **{name: target})
            assert answer.status == 400, (name, target, answer.header("location"))
            assert answer.json()["error"] == "landing_domain_not_allowed"
            assert answer.header("location") is None
        assert [r.reason for r in edge.bus.on(DEAD_LETTERS)] == ["landing_domain_not_allowed"] * 3
        assert not edge.bus.on(CLICKS)

    def test_unknown_campaign_and_missing_partner(self, edge: Edge) -> None:
        assert click(edge, "ghost").json()["error"] == "unknown_campaign"
        answer = edge.get("/c/acme-affiliates")
        assert (answer.status, answer.json()["error"]) == (400, "missing_param")
        assert [r.reason for r in edge.bus.on(DEAD_LETTERS)] == [
            "unknown_campaign",
            "missing_param",
        ]

    def test_forwarded_for_is_believed_only_from_trusted_proxies(self) -> None:
        edge = make_edge(trusted_proxies=["10.0.0.0/8"])
        forwarded = (b"x-forwarded-for", b"198.51.100.7, 10.0.0.5")
        click(edge)  # warm-up without proxy
        edge.get("/c/acme-affiliates", {"pid": "p"}, headers=[forwarded], client=("10.1.2.3", 1))
        edge.get("/c/acme-affiliates", {"pid": "p"}, headers=[forwarded], client=CLIENT)
        ips = [event.user.ip for event in edge.bus.on(CLICKS)]
        assert ips == ["203.0.113.0", "198.51.100.0", "203.0.113.0"]


# -------------------------------------------------------------- postback


def fresh_click_id(edge: Edge) -> str:
    return ClickIdSigner(edge.registry.security.click_id_key).mint(int(NOW * 1000), "acme")


class TestPostback:
    def test_signed_postback_is_accepted_once_and_resends_are_duplicates(self, edge: Edge) -> None:
        click_id = fresh_click_id(edge)
        params = edge.signed(
            {"clickid": click_id, "txid": "o-1", "goal": "purchase", "sum": "49.9",
             "payout": "5", "currency": "eur", "status": "approved", "adv": "acme"}
        )  # fmt: skip
        first = edge.get("/postback", params)
        again = edge.get("/postback", params)
        assert first.status == again.status == 200
        assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
        assert first.json()["event_id"] == again.json()["event_id"]
        [(topic, key, event)] = edge.bus.records
        assert (topic, key) == (CONVERSIONS, click_id)
        assert isinstance(event, Conversion)
        assert (event.txid, event.action, event.status, event.revenue, event.payout) == (
            "o-1",
            "purchase",
            "approved",
            49.9,
            5.0,
        )
        assert (event.currency, event.advertiser_id, event.click_id) == ("EUR", "acme", click_id)

    def test_status_change_is_not_a_duplicate(self, edge: Edge) -> None:
        base = {"txid": "o-2", "event": "purchase", "key": edge.secret}
        edge.get("/postback", {**base, "status": "pending"})
        edge.get("/postback", {**base, "status": "approved"})
        assert [e.status for e in edge.bus.on(CONVERSIONS)] == ["pending", "approved"]

    def test_actions_counting_every_txid_are_not_deduplicated(self, edge: Edge) -> None:
        params = {"txid": "cart-1", "event": "add_to_cart", "key": edge.secret}
        edge.get("/postback", params)
        assert edge.get("/postback", params).json()["duplicate"] is False
        assert len(edge.bus.on(CONVERSIONS)) == 2

    @pytest.mark.parametrize(
        ("mutate", "status", "reason"),
        [
            (lambda p: {**p, "revenue": "1000"}, 403, "bad_signature"),
            (lambda p: {**p, "sig": "0" * 64}, 403, "bad_signature"),
            (lambda p: {k: v for k, v in p.items() if k != "ts"}, 400, "missing_param"),
            (lambda p: {k: v for k, v in p.items() if k not in ("sig", "ts")}, 401,
             "missing_signature"),
            (lambda p: {**p, "adv": "ghost"}, 404, "unknown_advertiser"),
        ],
    )  # fmt: skip
    def test_bad_signatures_are_refused(
        self, edge: Edge, mutate: Any, status: int, reason: str
    ) -> None:
        params = edge.signed({"txid": "o-3", "event": "lead", "revenue": "1", "adv": "acme"})
        answer = edge.get("/postback", mutate(params))
        assert (answer.status, answer.json()["error"]) == (status, reason)
        letter = only_dead_letter(edge)
        assert letter.reason == reason and letter.source == "edge:/postback"

    def test_stale_and_future_timestamps_are_replays(self, edge: Edge) -> None:
        window = edge.registry.security.postback_max_age_seconds
        for ts in (NOW - window - 5, NOW + window + 5):
            answer = edge.get("/postback", edge.signed({"txid": "o-4"}, ts=ts))
            assert (answer.status, answer.json()["error"]) == (403, "stale_timestamp")
        assert edge.get("/postback", edge.signed({"txid": "o-4"}, ts=NOW - 10)).status == 200

    def test_shared_key_mode_and_a_wrong_key(self, edge: Edge) -> None:
        assert edge.get("/postback", {"txid": "o-5", "key": edge.secret}).status == 200
        answer = edge.get("/postback", {"txid": "o-6", "key": "not-the-secret-at-all"})
        assert (answer.status, answer.json()["error"]) == (403, "bad_signature")
        letter = edge.bus.on(DEAD_LETTERS)[0]
        assert "not-the-secret" not in letter.payload and "key=***" in letter.payload

    def test_forged_click_ids_are_refused(self, edge: Edge) -> None:
        real = fresh_click_id(edge)
        forged = real[:-1] + ("A" if real[-1] != "A" else "B")
        for click_id in (forged, "clk-1", "x" * 33):
            answer = edge.get("/postback", {"click_id": click_id, "key": edge.secret})
            assert (answer.status, answer.json()["error"]) == (400, "forged_click_id")
        assert not edge.bus.on(CONVERSIONS)
        assert [r.reason for r in edge.bus.on(DEAD_LETTERS)] == ["forged_click_id"] * 3

    def test_unknown_action_and_status(self, edge: Edge) -> None:
        answer = edge.get("/postback", {"event": "teleport", "key": edge.secret})
        assert answer.json()["error"] == "unknown_action"
        answer = edge.get("/postback", {"status": "maybe", "key": edge.secret})
        assert answer.json()["error"] == "invalid_param"

    def test_post_form_and_json_bodies(self, edge: Edge) -> None:
        form = urlencode(edge.signed({"txid": "o-7", "event": "signup"})).encode()
        answer = edge.call(
            "POST", "/postback", headers=[(b"content-type", b"application/x-www-form-urlencoded")],
            body=form,
        )  # fmt: skip
        assert answer.status == 200, answer.body
        body = orjson.dumps({"txid": "o-8", "event": "signup", "key": edge.secret, "revenue": 3})
        answer = edge.call(
            "POST", "/postback", headers=[(b"content-type", b"application/json")], body=body
        )
        assert answer.status == 200, answer.body
        assert [e.revenue for e in edge.bus.on(CONVERSIONS)] == [0.0, 3.0]
        answer = edge.call(
            "POST", "/postback", headers=[(b"content-type", b"text/plain")], body=b"txid=1"
        )
        assert (answer.status, answer.json()["error"]) == (415, "unsupported_media_type")
        big = b"a=" + b"x" * 20_000
        answer = edge.call("POST", "/postback", body=big)
        assert (answer.status, answer.json()["error"]) == (413, "payload_too_large")


class TestConversionPixel:
    def test_cookie_ties_the_conversion_to_the_user(self, edge: Edge) -> None:
        answer = edge.get(
            "/cv.gif", {"txid": "o-9", "goal": "lead"}, headers=[(b"cookie", b"ct_uid=u-7")]
        )
        assert answer.status == 200 and answer.body == GIF
        [(_, key, event)] = edge.bus.records
        assert key == "u-7" and event.user.user_id == "u-7" and event.action == "lead"
        again = edge.get("/cv.gif", {"txid": "o-9", "goal": "lead"})
        assert again.header("x-clicktrail-duplicate") == "1"

    def test_forged_click_id_is_refused(self, edge: Edge) -> None:
        answer = edge.get("/cv.gif", {"click_id": "forged.click"})
        assert (answer.status, answer.json()["error"]) == (400, "forged_click_id")


# ----------------------------------------------------------------- batch

NDJSON = (b"content-type", b"application/x-ndjson")
JSON = (b"content-type", b"application/json")
GOOD = {
    "type": "click",
    "event_id": "c1",
    "ts": "2026-03-01T10:00:05Z",
    "click_id": "clk-1",
    "campaign_id": "acme-affiliates",
    "partner_id": "p",
}


class TestBatch:
    def test_keeps_the_response_shape(self, edge: Edge) -> None:
        bad = {**GOOD, "event_id": "c2", "partner_id": None}
        body = b"\n".join([orjson.dumps(GOOD), b"", orjson.dumps(bad), b"{oops"])
        answer = edge.call("POST", "/v1/events", headers=[API_KEY, NDJSON], body=body)
        assert answer.status == 200
        result = answer.json()
        assert result["accepted"] == 1
        assert [(r["index"], r["error"]) for r in result["rejected"]] == [
            (1, "invalid_field"),
            (2, "invalid_json"),
        ]
        assert len(edge.bus.on(DEAD_LETTERS)) == 2

    def test_array_and_single_object(self, edge: Edge) -> None:
        many = orjson.dumps([GOOD, {**GOOD, "event_id": "c3"}])
        assert (
            edge.call("POST", "/v1/events", headers=[API_KEY, JSON], body=many).json()["accepted"]
            == 2
        )
        one = orjson.dumps({**GOOD, "event_id": "c4"})
        assert (
            edge.call("POST", "/v1/events", headers=[API_KEY, JSON], body=one).json()["accepted"]
            == 1
        )

    @pytest.mark.parametrize(
        ("headers", "body", "status", "reason"),
        [
            ([JSON], b"[{", 400, "invalid_json"),
            ([JSON], b"[]", 400, "empty_batch"),
            ([(b"content-type", b"text/csv")], b"a,b", 415, "unsupported_media_type"),
            ([], b"{}", 415, "unsupported_media_type"),
            ([JSON, (b"content-length", b"999999999")], b"[]", 413, "payload_too_large"),
        ],
    )
    def test_bad_bodies(
        self, edge: Edge, headers: list[tuple[bytes, bytes]], body: bytes, status: int, reason: str
    ) -> None:
        answer = edge.call("POST", "/v1/events", headers=[API_KEY, *headers], body=body)
        assert (answer.status, answer.json()["error"]) == (status, reason)


# ----------------------------------------------------------- auction insights

CSV = (b"content-type", b"text/csv; charset=utf-8")
EXPORT = (
    "date,account,campaign,keyword,display_domain,impression_share,overlap_rate,"
    "position_above_rate,outranking_share\n"
    "2026-03-01,acme-google-ads,acme-brand-search,Acme Shoes,acme.example,0.3,0.4,0.2,0.6\n"
    "2026-03-01,acme-google-ads,acme-brand-search,acme,rival-shoes.example,0.5,0.5,--,0.5\n"
)


class TestAuctionInsights:
    def test_an_export_is_accepted_whole_and_keyed_by_keyword(self, edge: Edge) -> None:
        answer = edge.call(
            "POST", "/v1/auction-insights", headers=[API_KEY, CSV], body=EXPORT.encode()
        )
        assert (answer.status, answer.json()) == (202, {"accepted": 2})
        assert [(t, k) for t, k, _ in edge.bus.records] == [
            (AUCTION_INSIGHTS, "acme shoes"),
            (AUCTION_INSIGHTS, "acme"),
        ]
        row = edge.bus.records[0][2]
        assert isinstance(row, AuctionInsight)
        assert (row.display_domain, row.position_above_rate) == ("acme.example", 0.2)
        metrics = edge.get("/metrics").body.decode()
        assert 'clicktrail_edge_events_total{type="auction_insight"} 2' in metrics

    def test_a_malformed_row_refuses_the_export_and_publishes_nothing(self, edge: Edge) -> None:
        body = (
            EXPORT + "2026-03-02,acme-google-ads,acme-brand-search,acme,x.example,0.3,0.3,high,\n"
        )
        answer = edge.call(
            "POST", "/v1/auction-insights", headers=[API_KEY, CSV], body=body.encode()
        )
        assert answer.status == 400
        assert answer.json() == {
            "error": "invalid_export",
            "message": "row 4, column 'position_above_rate': 'high' is not a number",
            "row": 4,
            "column": "position_above_rate",
        }
        assert edge.bus.records == [], "neither the good rows nor a dead letter"

    @pytest.mark.parametrize(
        ("headers", "body", "status", "reason"),
        [
            ([CSV], b"date,account\n", 400, "invalid_export"),
            ([CSV], EXPORT.split("\n", maxsplit=1)[0].encode() + b"\n", 400, "empty_export"),
            ([CSV], b"\xff\xfed\x00a\x00", 400, "invalid_encoding"),
            ([JSON], EXPORT.encode(), 415, "unsupported_media_type"),
            ([CSV, (b"content-length", b"999999999")], b"", 413, "payload_too_large"),
        ],
    )
    def test_bad_uploads(
        self, edge: Edge, headers: list[tuple[bytes, bytes]], body: bytes, status: int, reason: str
    ) -> None:
        answer = edge.call("POST", "/v1/auction-insights", headers=[API_KEY, *headers], body=body)
        assert (answer.status, answer.json()["error"]) == (status, reason)
        assert edge.bus.records == []

    def test_a_body_over_the_limit_is_413(self, edge: Edge) -> None:
        """Counted as it arrives, like the batch endpoint, not only from content-length."""
        big = EXPORT.encode() * (edge.app.ctx.body_limit // len(EXPORT) + 1)
        answer = edge.call("POST", "/v1/auction-insights", headers=[API_KEY, CSV], body=big)
        assert (answer.status, answer.json()["error"]) == (413, "payload_too_large")
        assert edge.bus.records == []

    def test_a_large_export_is_accepted(self, edge: Edge) -> None:
        """Above 64 KiB the parse runs in a worker thread; the answer is the same."""
        line = "2026-03-01,acme-google-ads,acme-brand-search,acme {},acme.example,0.3,0.4,0.2,0.6\n"
        body = EXPORT + "".join(line.format(i) for i in range(2_000))
        assert len(body) > 64 << 10
        answer = edge.call(
            "POST", "/v1/auction-insights", headers=[API_KEY, CSV], body=body.encode()
        )
        assert (answer.status, answer.json()) == (202, {"accepted": 2_002})


# ------------------------------------------------------------ the rest


class TestServiceEndpoints:
    def test_unknown_paths_and_methods_answer_json(self, edge: Edge) -> None:
        answer = edge.get("/nope")
        assert (answer.status, answer.json()["error"]) == (404, "not_found")
        answer = edge.call("DELETE", "/i.gif")
        assert (answer.status, answer.json()["error"]) == (405, "method_not_allowed")
        assert edge.get("/c/a/b").status == 404

    def test_head_requests_record_nothing(self, edge: Edge) -> None:
        answer = edge.call("HEAD", "/i.gif", PIXEL)
        assert (answer.status, answer.json()["error"]) == (405, "method_not_allowed")
        assert edge.call("HEAD", "/c/acme-affiliates", {"pid": "p"}).status == 405
        assert edge.bus.records == []

    def test_health_and_readiness(self, edge: Edge) -> None:
        assert (edge.get("/healthz").status, edge.get("/healthz").body) == (200, b"ok")
        assert edge.get("/readyz").status == 200

    def test_metrics_count_requests_rejects_and_events(self, edge: Edge) -> None:
        edge.get("/i.gif", PIXEL)
        edge.get("/i.gif", {"pid": "x"})
        click(edge)
        edge.get("/postback", {"txid": "m-1", "key": edge.secret})
        edge.get("/postback", {"txid": "m-1", "key": edge.secret})
        text = edge.get("/metrics").body.decode()
        for line in [
            'clicktrail_edge_requests_total{endpoint="pixel",status="200"} 1',
            'clicktrail_edge_requests_total{endpoint="pixel",status="400"} 1',
            'clicktrail_edge_requests_total{endpoint="click",status="302"} 1',
            'clicktrail_edge_rejects_total{endpoint="pixel",reason="missing_param"} 1',
            'clicktrail_edge_events_total{type="conversion"} 1',
            "clicktrail_edge_duplicates_total 1",
            "clicktrail_edge_produce_seconds_count 0",
        ]:
            assert line in text, line
        assert "# TYPE clicktrail_edge_produce_seconds histogram" in text

    def test_bad_edge_settings_fail_when_the_app_is_built(self) -> None:
        with pytest.raises(ValueError, match="default_action"):
            make_edge(default_action="teleport")
