"""Nobody without a secret moves money: every write path is authenticated and scoped.

Each test is an attack a hostile client made on the edge, played against the ASGI app
with a recording bus (what would reach Kafka), and, for the money itself, against the
embedded runtime and its store.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from tests.unit import test_attribution as attribution
from tests.unit.test_edge_app import Answer, Edge, Recorder

from clicktrail.bus.topics import DEAD_LETTERS
from clicktrail.config import Registry, parse_registry
from clicktrail.contracts import Click, Conversion
from clicktrail.edge.app import build_edge
from clicktrail.edge.backend import BusBackend
from clicktrail.processors.postback import sign
from clicktrail.processors.signing import ClickIdSigner

NOW = time.time()
CLICK_KEY = "k" * 32
ACME_KEY = "acme-api-key-0123456789abcdef"
BOLT_KEY = "bolt-api-key-0123456789abcdef"
FEED_KEY = "feed-api-key-0123456789abcdef"
TRUSTED_FEED_KEY = "tfeed-api-key-0123456789abcdef"
SIGNER = ClickIdSigner(CLICK_KEY)


def registry() -> Registry:
    return parse_registry(
        {
            "advertisers": {
                "acme": {"postback_secret": "a" * 32, "api_keys": [ACME_KEY]},
                "bolt": {"postback_secret": "b" * 32, "api_keys": [BOLT_KEY]},
            },
            "brands": {
                "acme": {
                    "advertiser": "acme",
                    "terms": ["acme"],
                    "official_campaigns": ["acme-search"],
                    "official_accounts": ["acme-ads"],
                }
            },
            "campaigns": {
                "acme-search": {
                    "advertiser": "acme",
                    "brand": "acme",
                    "landing_url": "https://acme.example/?c={click_id}",
                    "payouts": {"purchase": 7},
                },
                "bolt-deals": {"advertiser": "bolt", "landing_url": "https://bolt.example/"},
            },
            "partners": {"aff": {}, "net": {"click_ids": "partner", "traffic": "s2s"}},
            "sources": {
                "aff-feed": {"partner": "aff", "api_keys": [FEED_KEY]},
                "net-feed": {"partner": "net", "api_keys": [TRUSTED_FEED_KEY]},
            },
            "actions": {"purchase": {"payout": 3}, "lead": {}},
            "security": {"click_id_key": CLICK_KEY},
        }
    )


@pytest.fixture
def edge() -> Edge:
    reg = registry()
    bus = Recorder()
    return Edge(build_edge(BusBackend(reg, bus), clock=lambda: NOW), bus, reg)


def acme_click() -> str:
    return SIGNER.mint(int(NOW * 1000) - 60_000, "acme")


def post_events(edge: Edge, events: list[dict[str, Any]], key: str | None) -> Answer:
    headers = [(b"content-type", b"application/json")]
    if key is not None:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    return edge.call("POST", "/v1/events", headers=headers, body=orjson.dumps(events))


def conversion(click_id: str | None = None, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "conversion",
        "event_id": f"v-{time.monotonic_ns()}",
        "ts": int(NOW * 1000),
        "action": "purchase",
        "status": "approved",
        "payout": 4321,
        **fields,
    }
    if click_id is not None:
        data["click_id"] = click_id
    return data


def click(click_id: str, campaign: str = "acme-search", partner: str = "aff") -> dict[str, Any]:
    return {
        "type": "click",
        "event_id": f"c-{time.monotonic_ns()}",
        "ts": int(NOW * 1000),
        "click_id": click_id,
        "campaign_id": campaign,
        "partner_id": partner,
        "user": {"user_id": "u-1", "user_agent": "Mozilla/5.0"},
    }


def published(edge: Edge, kind: type) -> list[Any]:
    return [r for t, _, r in edge.bus.records if t != DEAD_LETTERS and isinstance(r, kind)]


class TestBatchIntake:
    def test_no_key_no_event(self, edge: Edge) -> None:
        answer = post_events(edge, [conversion(acme_click())], key=None)
        assert (answer.status, answer.json()["error"]) == (401, "missing_api_key")
        assert edge.bus.records == []

    def test_unknown_key_is_refused(self, edge: Edge) -> None:
        answer = post_events(edge, [conversion(acme_click())], key="x" * 32)
        assert (answer.status, answer.json()["error"]) == (403, "bad_api_key")
        assert edge.bus.records == []

    def test_the_owner_may_report_its_conversion(self, edge: Edge) -> None:
        answer = post_events(edge, [conversion(acme_click())], key=ACME_KEY)
        assert answer.status == 200 and answer.json()["accepted"] == 1
        [sent] = published(edge, Conversion)
        assert sent.advertiser_id == "acme"  # filled in from the key: no cross-advertiser match

    def test_another_advertisers_key_cannot_credit_the_click(self, edge: Edge) -> None:
        answer = post_events(edge, [conversion(acme_click())], key=BOLT_KEY)
        assert answer.status == 400
        assert answer.json()["rejected"][0]["error"] == "not_owned"
        assert published(edge, Conversion) == []
        [letter] = edge.bus.on(DEAD_LETTERS)
        assert letter.reason == "not_owned"

    def test_a_key_cannot_speak_for_another_advertiser(self, edge: Edge) -> None:
        events = [
            conversion(advertiser_id="acme"),
            conversion(campaign_id="acme-search"),
            click(SIGNER.mint(int(NOW * 1000), "bolt"), campaign="acme-search"),
            click(SIGNER.mint(int(NOW * 1000), "acme"), campaign="bolt-deals"),
        ]
        answer = post_events(edge, events, key=BOLT_KEY)
        assert [r["error"] for r in answer.json()["rejected"]] == ["not_owned"] * 4
        assert len(edge.bus.on(DEAD_LETTERS)) == 4

    def test_a_source_reports_clicks_of_its_partner_only(self, edge: Edge) -> None:
        events = [
            click(acme_click(), partner="aff"),
            click(acme_click(), partner="net"),
            click("made-up-id", partner="aff"),
            conversion(acme_click()),
        ]
        answer = post_events(edge, events, key=FEED_KEY)
        assert answer.json()["accepted"] == 1
        reasons = [r["error"] for r in answer.json()["rejected"]]
        assert reasons == ["not_owned", "unsigned_click_id", "conversion_not_allowed"]
        [sent] = published(edge, Click)
        assert sent.advertiser_id == "acme" and sent.partner_id == "aff"

    def test_a_source_with_trusted_ids_may_send_its_own(self, edge: Edge) -> None:
        answer = post_events(edge, [click("net-own-42", partner="net")], key=TRUSTED_FEED_KEY)
        assert answer.json() == {"accepted": 1, "rejected": []}


class TestPostback:
    def test_another_advertisers_secret_cannot_credit_a_click(self, edge: Edge) -> None:
        params = {"click_id": acme_click(), "txid": "o-1", "status": "approved", "payout": "2500"}
        params |= {"adv": "bolt", "ts": str(int(NOW))}
        params["sig"] = sign("b" * 32, params.items())
        answer = edge.get("/postback", params)
        assert (answer.status, answer.json()["error"]) == (403, "not_owned")
        assert published(edge, Conversion) == []
        assert edge.bus.on(DEAD_LETTERS)[0].reason == "not_owned"

    def test_the_owners_secret_credits_it(self, edge: Edge) -> None:
        params = {"click_id": acme_click(), "txid": "o-2", "status": "approved", "payout": "25"}
        params |= {"adv": "acme", "ts": str(int(NOW))}
        params["sig"] = sign("a" * 32, params.items())
        assert edge.get("/postback", params).status == 200
        [sent] = published(edge, Conversion)
        assert (sent.status, sent.payout, sent.advertiser_id) == ("approved", 25, "acme")


class TestConversionPixel:
    def test_a_pixel_can_neither_approve_nor_set_a_payout(self, edge: Edge) -> None:
        query = {"click_id": acme_click(), "goal": "purchase", "status": "approved"}
        query |= {"payout": "3333", "campaign_id": "acme-search"}
        answer = edge.get("/cv.gif", query)
        assert answer.status == 200
        assert answer.header("x-clicktrail-ignored") == "payout,status"
        [sent] = published(edge, Conversion)
        assert (sent.status, sent.payout) == ("pending", 7)  # the campaign's payout
        assert sent.advertiser_id == "acme"  # the click's owner

    def test_without_a_campaign_the_action_payout_applies(self, edge: Edge) -> None:
        edge.get("/cv.gif", {"click_id": acme_click(), "goal": "purchase", "payout": "99"})
        [sent] = published(edge, Conversion)
        assert (sent.status, sent.payout) == ("pending", 3)

    def test_a_pixel_naming_another_advertiser_is_refused(self, edge: Edge) -> None:
        answer = edge.get("/cv.gif", {"click_id": acme_click(), "adv": "bolt"})
        assert (answer.status, answer.json()["error"]) == (403, "not_owned")

    def test_with_several_advertisers_a_pixel_must_name_one(self, edge: Edge) -> None:
        answer = edge.get("/cv.gif", {"goal": "lead"}, headers=[(b"cookie", b"ct_uid=u-1")])
        assert (answer.status, answer.json()["error"]) == (400, "missing_param")


EXPORT = (
    "date,account,campaign,keyword,display_domain,impression_share,overlap_rate,"
    "position_above_rate,outranking_share\n"
    "2026-03-01,acme-ads,acme-search,acme,rival.example,0.4,0.3,0.2,0.1\n"
)


class TestAuctionInsights:
    def call(self, edge: Edge, key: str | None) -> Answer:
        headers = [(b"content-type", b"text/csv")]
        if key:
            headers.append((b"authorization", f"Bearer {key}".encode()))
        return edge.call("POST", "/v1/auction-insights", headers=headers, body=EXPORT.encode())

    def test_needs_a_key(self, edge: Edge) -> None:
        assert self.call(edge, None).status == 401
        assert edge.bus.records == []

    def test_only_the_advertisers_own_rows(self, edge: Edge) -> None:
        answer = self.call(edge, BOLT_KEY)
        assert (answer.status, answer.json()["error"], answer.json()["row"]) == (
            403,
            "not_owned",
            2,
        )
        assert edge.bus.records == []
        assert self.call(edge, ACME_KEY).status == 202


def test_the_pipeline_never_credits_another_advertisers_click() -> None:
    """Defence in depth behind the edge: a conversion that reached a topic naming another
    advertiser's click is an orphan, not a payout for that click's partner."""
    run = attribution.Run()  # campaign "last" belongs to acme
    rows = run.send(
        attribution.click(1, 0),
        attribution.conversion(1, 60, click_id="clk1", advertiser_id="other"),
    )
    assert [(r.touch, r.click_id, r.partner_id) for r in rows] == [("none", None, None)]
    same = run.send(attribution.conversion(2, 90, click_id="clk1", advertiser_id="acme"))
    assert [(r.touch, r.click_id) for r in same] == [("click", "clk1")]
