"""Honest traffic: searches with auctions, display and social ads, affiliate and e-mail links,
app-install ads and organic conversions.

Each function is one session of one visitor starting at ``t``. A small share
of honest sessions is replaced by background bots or datacenter hosts, as on
any real site; those are labelled like the planted ones.
"""

from __future__ import annotations

import random
from urllib.parse import quote_plus

from clicktrail.simulate import conversions
from clicktrail.simulate.auction import SEARCH_CTR, choose, official_cpc, rank
from clicktrail.simulate.rand import b64url, between, one_of
from clicktrail.simulate.sim import Simulation
from clicktrail.simulate.truth import CLEAN
from clicktrail.simulate.users import Visitor, bot_visitor, datacenter_visitor
from clicktrail.simulate.world import PLACEMENTS, Advertiser, Bidder, Campaign, KeywordKind

BACKGROUND_BOTS = 0.01
BACKGROUND_DATACENTER = 0.005
BID_MARGIN = 1.25
"""Automated bidding bids this much over what the auction is expected to cost."""
ORGANIC_ACTION = {"northwind": "purchase", "bluefin": "lead", "quokka": "install"}


def paid_click_ids(rng: random.Random, engine: str) -> dict[str, str]:
    """Auto-tagging ids that ad platforms append to the landing URL."""
    if engine == "google":
        return {"gclid": "Cj0KCQjw" + b64url(rng.randbytes(30))}
    if engine == "bing":
        return {"msclkid": f"{rng.getrandbits(128):032x}"}
    return {"fbclid": "IwAR" + b64url(rng.randbytes(36))}


def visitor(sim: Simulation, *, mobile: bool = False) -> tuple[Visitor, str]:
    """Usually a pool user; sometimes a background bot or datacenter host."""
    rng = sim.rng
    fraud = sim.scenario.fraud
    roll = rng.random()
    if roll < BACKGROUND_BOTS * fraud:
        return bot_visitor(rng), "bot"
    if roll < (BACKGROUND_BOTS + BACKGROUND_DATACENTER) * fraud:
        return datacenter_visitor(rng), "datacenter"
    return (sim.pool.on_mobile() if mobile else sim.pool.any()), CLEAN


def search(sim: Simulation, t: int, adv: Advertiser, kind: KeywordKind) -> None:
    rng = sim.rng
    world = sim.world
    text = one_of(rng, adv.queries[kind])
    keyword = world.keywords[text]
    frac = (t - sim.start_ms) / sim.span_ms
    bidders = world.bidders[(adv.key, kind)]
    ranked = rank(rng, bidders, frac, sim.scenario.brand)
    sim.insights.record(t, bidders[0], text, ranked)  # cast.bidders puts the official first
    if not ranked:
        return
    who = sim.pool.any()
    engine = "google" if rng.random() < 0.85 else "bing"
    placement = f"{engine}-search"
    cpc = official_cpc(rng, keyword, ranked)
    impressions: dict[str, str] = {}
    for position, bidder in enumerate(ranked, start=1):
        if bidder.partner is None or bidder.campaign is None or not bidder.impressions:
            continue
        campaign = world.campaigns[bidder.campaign]
        official = bidder.role == "official"
        impressions[bidder.name] = sim.impression(
            t,
            campaign,
            bidder.partner,
            who,
            channel="search",
            offense=_offense(bidder),
            keyword=text,
            ad_domain=bidder.domain,
            placement=placement,
            creative_id=f"{campaign.key}-ad{between(rng, 1, 3)}",
            cpc_bid=_official_bid(sim, keyword.base_cpc, cpc) if official else None,
            position=position,
        )
    if rng.random() >= SEARCH_CTR[kind]:
        return
    chosen = choose(rng, ranked)
    if chosen.partner is None or chosen.campaign is None:
        return  # a rival's ad: the tracker never sees that click
    campaign = world.campaigns[chosen.campaign]
    at = t + between(rng, 2_000, 40_000)
    if chosen.offense == "paid_click":
        _paid_affiliate_click(sim, at, campaign, chosen, who=who, query=text)
        return
    sim.click(
        at,
        campaign,
        chosen.partner,
        who,
        channel="search",
        offense=_offense(chosen),
        impression_id=impressions.get(chosen.name),
        keyword=text,
        ad_domain=chosen.domain,
        placement=placement,
        referrer=f"https://www.{engine}.com/",
        paid_click_ids=paid_click_ids(rng, engine),
        cost=cpc if chosen.role == "official" else None,
    )


def _official_bid(sim: Simulation, base_cpc: float, price: float) -> float:
    """Automated bidding bids what the auction will cost, with a margin; a manual bid is
    one figure per keyword, whatever bids against it."""
    if sim.variant.automated_bids:
        return round(price * BID_MARGIN, 2)
    return round(base_cpc * 3, 2)


def _offense(bidder: Bidder) -> dict[str, str] | None:
    if bidder.role != "offender" or bidder.partner is None or bidder.offense is None:
        return None
    return {"offender": bidder.partner, "offense": bidder.offense}


def _paid_affiliate_click(
    sim: Simulation, at: int, campaign: Campaign, bidder: Bidder, *, who: Visitor, query: str
) -> None:
    """An affiliate's own search ad: it arrives as affiliate traffic, with the search's traces."""
    rng = sim.rng
    roll = rng.random()
    paid: dict[str, str] | None = None
    if roll < 0.45:
        paid, referrer = paid_click_ids(rng, "google"), "https://www.google.com/"
    elif roll < 0.65:
        paid = paid_click_ids(rng, "bing")
        referrer = f"https://www.bing.com/search?q={quote_plus(query)}"
    else:
        engine = one_of(rng, ("https://duckduckgo.com/?q=", "https://search.yahoo.com/search?p="))
        referrer = engine + quote_plus(query)
    placement = one_of(rng, PLACEMENTS["affiliate"])
    assert bidder.partner is not None
    sim.click(
        at,
        campaign,
        bidder.partner,
        who,
        channel="affiliate",
        offense=_offense(bidder),
        placement=placement,
        sub_ids={"sub1": placement, "sub2": f"s{between(rng, 1, 40)}"},
        referrer=referrer,
        paid_click_ids=paid,
    )


def display(sim: Simulation, t: int, campaign: Campaign, partner: str) -> None:
    rng = sim.rng
    who, label = visitor(sim)
    placement = one_of(rng, PLACEMENTS["display"])
    creative = f"{campaign.key}-cr{between(rng, 1, 4)}"
    impression = sim.impression(
        t,
        campaign,
        partner,
        who,
        placement=placement,
        creative_id=creative,
        ad_domain=campaign.advertiser.domain,
        cost=round(rng.uniform(0.001, 0.006), 5),
    )
    if rng.random() < (0.04 if label == CLEAN else 0.35):
        sim.click(
            t + between(rng, 800, 20_000),
            campaign,
            partner,
            who,
            label=label,
            impression_id=impression,
            placement=placement,
            creative_id=creative,
            referrer=f"https://{sim.world.partners[partner].site}/{placement}",
        )


def social(sim: Simulation, t: int, campaign: Campaign) -> None:
    rng = sim.rng
    who, label = visitor(sim)
    placement = one_of(rng, PLACEMENTS["social"])
    impression = sim.impression(
        t,
        campaign,
        "social-feed",
        who,
        placement=placement,
        ad_domain=campaign.advertiser.domain,
        cost=round(rng.uniform(0.002, 0.009), 5),
    )
    if rng.random() < 0.05:
        sim.click(
            t + between(rng, 800, 15_000),
            campaign,
            "social-feed",
            who,
            label=label,
            impression_id=impression,
            placement=placement,
            referrer="https://social-feed.example/",
            paid_click_ids=paid_click_ids(rng, "social") if rng.random() < 0.7 else None,
        )


def affiliate(
    sim: Simulation, t: int, adv: Advertiser, partners: tuple[str, ...], channel: str
) -> None:
    """A link on a partner's site or in a newsletter; no impression reaches the tracker."""
    rng = sim.rng
    partner = one_of(rng, partners)
    who, label = visitor(sim)
    placement = one_of(rng, PLACEMENTS[channel])
    site = sim.world.partners[partner].site
    sim.click(
        t,
        sim.world.campaigns[f"{adv.key}-affiliates"],
        partner,
        who,
        label=label,
        channel=channel,
        placement=placement,
        sub_ids={"sub1": placement, "sub2": f"s{between(rng, 1, 40)}"},
        referrer=f"https://{site}/{adv.key}" if channel == "affiliate" else None,
    )


def app(sim: Simulation, t: int, campaign: Campaign, partner: str) -> None:
    """A mobile ad for the app; installs follow through the store."""
    rng = sim.rng
    who, label = visitor(sim, mobile=True)
    placement = one_of(rng, PLACEMENTS["app"])
    sim.click(
        t,
        campaign,
        partner,
        who,
        label=label,
        placement=placement,
        sub_ids={"sub1": f"app{between(rng, 1000, 1099)}"},
    )


def organic(sim: Simulation, t: int, adv: Advertiser) -> None:
    """A conversion no ad caused, reported by user id: the credit click fraud tries to steal."""
    action = ORGANIC_ACTION[adv.key]
    user = (sim.pool.on_mobile() if action == "install" else sim.pool.any()).user
    assert user is not None
    conversions.report(sim, conversions.new(sim, t, adv, action, user=user, context=user.context))
