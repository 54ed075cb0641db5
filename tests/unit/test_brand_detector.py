"""The brand-conflict detector called directly with plain events and dict state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.scenarios.brand import campaign

from clicktrail.config import Registry, parse_registry
from clicktrail.contracts import EVENT_ADAPTER, BrandConflict, Click, Impression, StateStore
from clicktrail.processors.brand import BRAND_STATE, BrandConflictDetector, conflict_id

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "0123456789abcdef-secret"
AFFILIATE = {"brand": "northwind", "channels": ["affiliate", "email"]}


def registry() -> Registry:
    return parse_registry(
        {
            "advertisers": {"northwind": {"postback_secret": SECRET}},
            "brands": {
                "northwind": {
                    "advertiser": "northwind",
                    "terms": ["northwind", "northwind outfitters"],
                    "misspellings": ["nortwind"],
                    "official_domains": ["northwind.example"],
                    "official_campaigns": ["nw-search"],
                    "official_accounts": ["nw-ads"],
                }
            },
            "campaigns": {
                "nw-search": campaign("search"),
                "nw-display": campaign("display"),
                "nw-affiliates": campaign("affiliate"),
                "nw-partner-search": campaign("search"),
            },
            "partners": {
                "nw-ads": {},
                "pub-news": {},
                "agency": {
                    "authorized": [
                        {"brand": "northwind", "channels": ["search"], "terms": ["northwind"]}
                    ]
                },
                **{p: {"authorized": [AFFILIATE]} for p in ("aff-jack", "aff-gclid")},
            },
        }
    )


class World:
    """A detector with dict state and a counter for unique ids."""

    def __init__(self, **options: Any) -> None:
        self.state: dict[str, StateStore] = {}
        self.detector = BrandConflictDetector(registry(), self._store, **options)
        self.n = 0
        self.emitted: list[BrandConflict] = []

    def _store(self, name: str) -> StateStore:
        return self.state.setdefault(name, {})

    def event(self, kind: str, seconds: float, **fields: Any) -> Impression | Click:
        self.n += 1
        user = fields.pop("user", "u1")
        data = {
            "type": kind,
            "event_id": f"e{self.n}",
            "ts": int((T0 + timedelta(seconds=seconds)).timestamp() * 1000),
            f"{kind}_id": fields.pop("id", f"{kind[0]}{self.n}"),
            "campaign_id": "nw-affiliates",
            "partner_id": "aff-jack",
            "channel": "search",
            "landing_url": "https://www.northwind.example/",
            "user": {"user_id": user},
            **fields,
        }
        event = EVENT_ADAPTER.validate_python(data)
        assert isinstance(event, Impression | Click)
        self.emitted.extend(self.detector(event))
        return event

    def auctions(
        self, rounds: int, keyword: str, offender: dict[str, Any], inflation: float
    ) -> Iterator[Impression | Click]:
        """Official and (every other round) offender ads; the official click's cost."""
        for i in range(rounds):
            user, at = f"u{i}", i * 60.0
            official = self.event(
                "impression",
                at,
                campaign_id="nw-search",
                partner_id="nw-ads",
                keyword=keyword,
                ad_domain="northwind.example",
                user=user,
            )
            present = i % 2 == 0
            if present:
                yield self.event("impression", at, keyword=keyword, user=user, **offender)
            cost = 1.0 * (1 + inflation if present else 1.0) * (1 + 0.01 * (i % 3 - 1))
            self.event(
                "click",
                at + 20,
                campaign_id="nw-search",
                partner_id="nw-ads",
                keyword=keyword,
                impression_id=official.impression_id,
                cost=cost,
                user=user,
                paid_click_ids={"gclid": f"g{i}"},
                referrer="https://www.google.com/",
            )

    def conflicts(self) -> list[BrandConflict]:
        return self.detector.snapshot()


@pytest.mark.parametrize(
    ("keyword", "offender", "signal"),
    [
        ("northwind boots", {"partner_id": "aff-jack", "ad_domain": "deals.example"}, "term"),
        ("nortwind", {"partner_id": "aff-jack", "ad_domain": "deals.example"}, "misspelled_term"),
        ("rain jacket", {"partner_id": "aff-jack", "ad_domain": "northwind.example"}, "domain"),
        (
            "rain jacket",
            {"partner_id": "aff-jack", "ad_domain": "northwind-sale.example"},
            "domain",
        ),
    ],
)
def test_planted_search_bidder_is_found_with_evidence_and_inflation(
    keyword: str, offender: dict[str, Any], signal: str
) -> None:
    """An unauthorized search bidder becomes one head-to-head conflict with its CPC cost."""
    world = World()
    ads = list(world.auctions(40, keyword, offender, 0.5))
    planted = [ad.impression_id for ad in ads if isinstance(ad, Impression)]
    [conflict] = world.conflicts()
    assert (conflict.brand_id, conflict.offender_id, conflict.signal) == (
        "northwind",
        "aff-jack",
        signal,
    )
    assert conflict.conflict_id == conflict_id("northwind", "partner", "aff-jack", keyword)
    assert conflict.evidence_ids == planted and conflict.impressions == 20
    assert conflict.head_to_head
    assert conflict.est_cpc_inflation == pytest.approx(0.5, abs=0.03)
    assert conflict.cost_impact == pytest.approx(20 * 0.5, rel=0.05)
    assert conflict.severity == "critical"


def test_paid_click_ids_and_search_referrers_on_affiliate_clicks() -> None:
    """Affiliate clicks that came from search ads: a gclid, or a results page for the brand."""
    world = World()
    gclid = world.event(
        "click", 0, channel="affiliate", partner_id="aff-gclid", paid_click_ids={"gclid": "x"}
    )
    serp = world.event(
        "click",
        1,
        channel="affiliate",
        partner_id="aff-gclid",
        referrer="https://search.yahoo.com/search?p=Northwind+Sale",
    )
    world.event(
        "click",
        2,
        channel="affiliate",
        partner_id="aff-jack",
        referrer="https://deals.example/northwind",
    )
    world.event(
        "click",
        3,
        channel="social",
        partner_id="pub-news",
        campaign_id="nw-display",
        paid_click_ids={"fbclid": "f"},
    )
    by_signal = {c.signal: c for c in world.conflicts()}
    assert set(by_signal) == {"paid_click_id", "serp_referrer"}
    assert isinstance(gclid, Click) and isinstance(serp, Click)
    assert by_signal["paid_click_id"].evidence_ids == [gclid.click_id]
    assert by_signal["serp_referrer"].keywords == ["northwind sale"]
    assert by_signal["serp_referrer"].evidence_ids == [serp.click_id]
    assert all(c.offender_id == "aff-gclid" and c.clicks == 1 for c in by_signal.values())


def test_authorized_partner_within_its_grant_is_not_flagged() -> None:
    """The agency may bid on 'northwind' in search; a term it was not granted is a conflict."""
    world = World()
    for i in range(5):
        world.event(
            "impression",
            i,
            partner_id="agency",
            campaign_id="nw-partner-search",
            keyword="Northwind boots",
            ad_domain="agency.example",
        )
        world.event(
            "click",
            i + 1,
            partner_id="agency",
            campaign_id="nw-partner-search",
            keyword="northwind",
            paid_click_ids={"gclid": "g"},
        )
    assert world.conflicts() == []
    world.event("impression", 9, partner_id="agency", keyword="nortwind")
    [conflict] = world.conflicts()
    assert (conflict.offender_id, conflict.signal) == ("agency", "misspelled_term")


def test_own_display_and_official_search_are_not_flagged() -> None:
    """The brand's domain on its display ads, and auto-tagged official search clicks, are normal."""
    world = World()
    world.event(
        "impression",
        0,
        channel="display",
        campaign_id="nw-display",
        partner_id="pub-news",
        ad_domain="northwind.example",
    )
    world.event(
        "click",
        1,
        channel="display",
        campaign_id="nw-display",
        partner_id="pub-news",
        ad_domain="northwind.example",
        paid_click_ids={"gclid": "g"},
    )
    world.event(
        "click",
        2,
        campaign_id="nw-search",
        partner_id="nw-ads",
        keyword="northwind",
        ad_domain="northwind.example",
        paid_click_ids={"msclkid": "m"},
        referrer="https://www.bing.com/search?q=northwind",
    )
    world.event(
        "impression",
        3,
        campaign_id="nw-search",
        partner_id="nw-ads",
        keyword="nortwind",
        ad_domain="northwind.example",
    )
    assert world.conflicts() == []


def test_records_are_emitted_on_material_change_only() -> None:
    """Hundreds of impressions give a handful of records, with rising severity."""
    world = World()
    for i in range(300):
        world.event("impression", i, partner_id="aff-jack", keyword="northwind", user=f"u{i}")
    counts = [c.impressions for c in world.emitted]
    assert counts[0] == 1 and len(counts) < 20
    assert [c.severity for c in world.emitted][-1] == "critical"
    assert {c.conflict_id for c in world.emitted} == {world.conflicts()[0].conflict_id}
    assert len(world.conflicts()[0].evidence_ids) == 100


def test_catch_up_emits_what_the_last_record_left_behind() -> None:
    """Between thresholds the stored record lags; catch_up gives the final state once."""
    world = World()
    for i in range(40):
        world.event("impression", i, partner_id="aff-jack", keyword="northwind", user=f"u{i}")
    last = world.emitted[-1]
    assert last.impressions < 40, "no threshold at 40: the last record lags"
    [final] = world.detector.catch_up()
    assert final == world.conflicts()[0]
    assert (final.conflict_id, final.impressions) == (last.conflict_id, 40)
    assert final.last_seen == T0 + timedelta(seconds=39)
    assert world.detector.catch_up() == [], "nothing moved since"

    world.event("impression", 40, partner_id="aff-jack", keyword="northwind", user="u40")
    assert world.emitted[-1] == last, "41 crosses no threshold either"
    assert [c.impressions for c in world.detector.catch_up()] == [41]


def test_catch_up_leaves_conflicts_whose_record_is_current() -> None:
    """A conflict emitted on its last event has nothing to catch up on."""
    world = World()
    world.event("impression", 0, partner_id="aff-jack", keyword="northwind")
    assert len(world.emitted) == 1
    assert world.detector.catch_up() == []


def test_state_is_json_friendly_and_auctions_expire() -> None:
    """Every state value survives a JSON round trip; old auctions are forgotten."""
    world = World()
    list(world.auctions(12, "northwind", {"partner_id": "aff-jack"}, 0.3))
    assert set(world.state) == set(BRAND_STATE)
    for store in world.state.values():
        assert json.loads(json.dumps(store)) == json.loads(json.dumps(store, default=str))
    assert world.detector.forget(T0 + timedelta(hours=3)) == 12
    assert world.state["brand_auctions"] == {}


def test_inflation_needs_enough_samples() -> None:
    """Too few official clicks without the offender give no estimate, not a wild one."""
    world = World(min_samples=50)
    list(world.auctions(20, "northwind", {"partner_id": "aff-jack"}, 0.5))
    [conflict] = world.conflicts()
    assert conflict.est_cpc_inflation is None and conflict.cost_impact is None
    assert conflict.head_to_head


def test_route_keys_events_by_brand_and_skips_the_rest() -> None:
    """Search events and search-origin clicks route to their brand; plain display is skipped."""
    world = World()
    cases = [
        (world.event("impression", 0, partner_id="aff-jack", keyword="Nörthwind"), "northwind"),
        (world.event("impression", 1, partner_id="x", keyword="tent", ad_domain="a.example"), None),
        (world.event("impression", 2, campaign_id="nw-search", keyword="tent"), "northwind"),
        (world.event("click", 3, channel="display", campaign_id="nw-display"), None),
        (
            world.event("click", 4, channel="affiliate", paid_click_ids={"gclid": "g"}),
            "northwind",
        ),
    ]
    for event, brand in cases:
        assert world.detector.route(event) == brand, event.event_id


@pytest.mark.parametrize("clicks_first", [False, True])
def test_inflation_survives_clicks_arriving_before_their_auctions(clicks_first: bool) -> None:
    """On Kafka the ads and the click of one auction travel on different partitions; a
    click that overtakes its ads is still credited to the offender that was there."""
    from tests.scenarios import brand as scenario

    state: dict[str, StateStore] = {}
    detector = BrandConflictDetector(
        parse_registry(scenario.registry()), lambda name: state.setdefault(name, {})
    )
    events = [EVENT_ADAPTER.validate_python(e) for e in scenario.events()]
    if clicks_first:
        events.sort(key=lambda e: not isinstance(e, Click))
    for event in events:
        assert isinstance(event, Impression | Click)
        detector(event)
    [conflict] = detector.snapshot()
    assert conflict.offender_id == "aff-jack" and conflict.head_to_head
    assert conflict.est_cpc_inflation == pytest.approx(scenario.INFLATION, abs=1e-4)
