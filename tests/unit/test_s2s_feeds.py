"""Click feeds from other trackers and ad networks, reported server to server.

A network's log as it reports it: its own click ids (nothing this tracker minted) and no
user agent (its servers send the click, not the visitor's browser), then conversions that
name those ids, with and without the partner. With ``partners.X.click_ids: partner`` and
``traffic: s2s`` they are credited as any click; with the defaults (``signed``, ``browser``)
the same log is what it would be from a redirect: forged ids and agentless bots.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.security.test_write_auth import post_events
from tests.unit.test_edge_app import Edge, Recorder

from clicktrail.bus.topics import DEAD_LETTERS
from clicktrail.config import Registry, parse_registry
from clicktrail.contracts import Click, Conversion
from clicktrail.edge.app import build_edge
from clicktrail.edge.backend import BusBackend
from clicktrail.processors.postback import sign
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLICK_KEY = "s2s-feed-click-key-0123456789"
SECRET = "shop-postback-secret-0123456789"
FEED_KEY = "netfeed-api-key-0123456789abcdef"
NOW = time.time()
NETWORK = {"click_ids": "partner", "traffic": "s2s"}


def registry(network: dict[str, str], **more: dict[str, str]) -> Registry:
    return parse_registry(
        {
            "advertisers": {"acme": {"postback_secret": SECRET}},
            "campaigns": {
                "shop-apps": {"advertiser": "acme", "landing_url": "https://shop.example/"}
            },
            "partners": {"aff": {}, "net": network, **more},
            "sources": {"net-feed": {"partner": "net", "api_keys": [FEED_KEY]}},
            "actions": {"install": {}, "purchase": {}},
            "security": {"click_id_key": CLICK_KEY},
            "edge": {"default_action": "install"},
        }
    )


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def network_click(n: int, click_id: str, partner: str = "net", user: str = "") -> dict[str, Any]:
    """A click as the network reports it: its id, the device it knows, no user agent."""
    return {
        "type": "click",
        "event_id": f"{partner}-c{n}",
        "ts": at(n),
        "click_id": click_id,
        "campaign_id": "shop-apps",
        "partner_id": partner,
        "user": {"user_id": user or f"dev-{n}", "device_type": "mobile", "country": "DE"},
    }


def network_conversion(n: int, click_id: str, partner: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "conversion",
        "event_id": f"v{n}",
        "ts": at(30 + n),
        "click_id": click_id,
        "action": "install",
        "advertiser_id": "acme",
        "txid": f"order-{n}",
        "status": "approved",
        "payout": 2,
    }
    if partner is not None:
        data["partner_id"] = partner
    return data


LOG = [
    network_click(1, "NX-0001"),
    network_click(2, "NX-0002"),
    network_click(3, "NX-0003"),
    network_conversion(1, "NX-0001", "net"),  # names the partner, as its postbacks do
    network_conversion(2, "NX-0002", None),  # an advertiser's export that does not
]


def replay(store: Store, reg: Registry, events: list[dict[str, Any]]) -> EmbeddedRuntime:
    runtime = EmbeddedRuntime(reg, store)
    runtime.bus.begin_source("replay:network-log")
    for event in events:
        runtime.submit(event, "replay:network-log")
    runtime.close(end_of_input=True)
    return runtime


def credited(store: Store) -> dict[str, set[tuple[str, str | None, str | None, str]]]:
    """Per conversion: the (touch, click, partner, verdict) rows of its last-click credit."""
    rows = store.rows(
        "SELECT conversion_id, touch, click_id, partner_id, fraud_action "
        f"FROM {store.database}.attributed_latest WHERE model = 'last_click'"
    )
    out: dict[str, set[tuple[str, str | None, str | None, str]]] = {}
    for conversion, touch, click, partner, verdict in rows:
        out.setdefault(conversion, set()).add((touch, click or None, partner or None, verdict))
    return out


def reasons(store: Store) -> dict[tuple[str, str], list[str]]:
    rows = store.rows(
        f"SELECT subject_type, subject_id, reasons FROM {store.database}.fraud_verdicts ORDER BY ts"
    )
    return {(kind, subject): list(why) for kind, subject, why in rows}


class TestReplayedNetworkLog:
    def test_own_ids_are_attributed_and_agentless_clicks_are_no_bots(self, store: Store) -> None:
        replay(store, registry(NETWORK), LOG)
        assert credited(store) == {
            "v1": {("click", "NX-0001", "net", "ok")},
            "v2": {("click", "NX-0002", "net", "ok")},
        }
        assert reasons(store) == {}, "no forged id, no empty user agent, nothing else"

    def test_with_the_defaults_the_same_log_is_forged_and_agentless(self, store: Store) -> None:
        replay(store, registry({}), LOG)
        judged = reasons(store)
        for n in (1, 2, 3):
            assert judged[("click", f"NX-000{n}")] == ["empty_user_agent"]
        for n in (1, 2):
            assert "forged_click_id" in judged[("conversion", f"v{n}")]
        assert {v for rows in credited(store).values() for *_, v in rows} == {"reject"}

    def test_a_conversion_naming_another_partner_is_forged(self, store: Store) -> None:
        """Partner ``aff`` issues no ids of its own: naming it with net's id credits nothing."""
        replay(store, registry(NETWORK), [*LOG[:3], network_conversion(5, "NX-0003", "aff")])
        assert "forged_click_id" in reasons(store)[("conversion", "v5")]

    def test_an_s2s_partner_sending_a_bot_agent_is_still_judged(self, store: Store) -> None:
        click = network_click(1, "NX-0001")
        click["user"]["user_agent"] = "Mozilla/5.0 HeadlessChrome/120.0"
        replay(store, registry(NETWORK), [click])
        assert reasons(store) == {("click", "NX-0001"): ["bot_user_agent"]}


def test_the_same_id_from_two_partners_is_two_clicks(store: Store) -> None:
    """Networks number their clicks alike: net's click 42 and net2's click 42 are two clicks,
    and a postback naming one partner credits that partner's click only."""
    events = [
        network_click(1, "42", "net", user="dev-a"),
        network_click(2, "42", "net2", user="dev-b"),
        network_conversion(1, "42", "net"),
        network_conversion(2, "42", "net2"),
    ]
    replay(store, registry(NETWORK, net2=NETWORK), events)
    assert credited(store) == {
        "v1": {("click", "42", "net", "ok")},
        "v2": {("click", "42", "net2", "ok")},
    }


class TestEdge:
    """The postback and the batch intake, for a partner that issues its own ids."""

    @pytest.fixture
    def edge(self) -> Edge:
        reg = registry(NETWORK)
        bus = Recorder()
        return Edge(build_edge(BusBackend(reg, bus), clock=lambda: NOW), bus, reg)

    def postback(self, edge: Edge, **params: str) -> Any:
        query = {"adv": "acme", "goal": "install", "status": "approved", "ts": str(int(NOW))}
        query |= params
        query["sig"] = sign(SECRET, query.items())
        return edge.get("/postback", query)

    def test_a_postback_naming_the_partner_and_its_own_id(self, edge: Edge) -> None:
        answer = self.postback(edge, click_id="NX-0001", pid="net", txid="o-1")
        assert answer.status == 200, answer.json()
        [sent] = [r for t, _, r in edge.bus.records if isinstance(r, Conversion)]
        assert (sent.click_id, sent.partner_id) == ("NX-0001", "net")

    @pytest.mark.parametrize("named", [{"pid": "aff"}, {}])
    def test_an_unsigned_id_with_a_signed_ids_partner_or_none_is_forged(
        self, edge: Edge, named: dict[str, str]
    ) -> None:
        answer = self.postback(edge, click_id="NX-0001", txid="o-2", **named)
        assert (answer.status, answer.json()["error"]) == (400, "forged_click_id")
        assert [r for t, _, r in edge.bus.records if t != DEAD_LETTERS] == []

    def test_the_partners_source_key_sends_its_own_id_clicks(self, edge: Edge) -> None:
        clicks = [{**network_click(1, "NX-0001"), "ts": int(NOW * 1000)}]
        answer = post_events(edge, clicks, key=FEED_KEY)
        assert answer.json() == {"accepted": 1, "rejected": []}
        [sent] = [r for t, _, r in edge.bus.records if isinstance(r, Click)]
        assert (sent.click_id, sent.partner_id, sent.advertiser_id) == ("NX-0001", "net", "acme")

    def test_its_source_key_still_reports_only_its_partner(self, edge: Edge) -> None:
        clicks = [{**network_click(1, "NX-0001", partner="aff"), "ts": int(NOW * 1000)}]
        answer = post_events(edge, clicks, key=FEED_KEY)
        assert [r["error"] for r in answer.json()["rejected"]] == ["not_owned"]
