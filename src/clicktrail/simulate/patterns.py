"""Planted fraud sessions: click flooding, bot and datacenter publishers, incentive farms
whose conversions come from another country or device, forged and orphan postbacks.

Click injection and replayed postbacks attach to conversions (``conversions``);
background bots and datacenter hosts mix into honest traffic (``traffic``).
Each function is one session starting at ``t``; every record it makes is
labelled in the truth file with the pattern's name.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from clicktrail.simulate import conversions
from clicktrail.simulate.rand import b64url, between, one_of
from clicktrail.simulate.sim import Simulation
from clicktrail.simulate.timing import HOUR_MS, ctit_ms
from clicktrail.simulate.truth import CLEAN
from clicktrail.simulate.users import (
    COUNTRIES,
    FARM_COUNTRIES,
    Visitor,
    bot_visitor,
    datacenter_visitor,
    fragment,
    new_user_id,
    pick,
    residential_ip,
    user_agent,
)
from clicktrail.simulate.variants import Variant
from clicktrail.simulate.world import PLACEMENTS

FAKE_CONVERSION = {"northwind": "signup", "bluefin": "lead", "quokka": "install"}


@dataclass(frozen=True, slots=True)
class Kit:
    """The few addresses and agents a click flooder fires from."""

    ips: tuple[str, ...]
    agents: tuple[str, ...]
    country: str


@functools.lru_cache(maxsize=16)
def flood_kit(seed: int, partner: str, variant: Variant) -> Kit:
    rng = random.Random(f"kit:{seed}:{partner}")
    networks = [residential_ip(rng).rsplit(".", 1)[0] for _ in range(variant.flood_networks)]
    ips = tuple(f"{one_of(rng, networks)}.{between(rng, 2, 250)}" for _ in range(variant.flood_ips))
    agents = tuple(user_agent(rng, "mobile", "Android") for _ in range(variant.flood_agents))
    return Kit(ips, agents, pick(rng, COUNTRIES[:4]))


def flood(sim: Simulation, t: int, partner: str, campaigns: tuple[str, ...]) -> None:
    """A burst of clicks from one address, each carrying a harvested device id."""
    rng = sim.rng
    kit = flood_kit(sim.options.seed, partner, sim.variant)
    ip, agent = one_of(rng, kit.ips), one_of(rng, kit.agents)
    campaign = sim.world.campaigns[one_of(rng, campaigns)]
    channel = campaign.channel
    placement = one_of(rng, PLACEMENTS["app" if channel == "display" else "affiliate"])
    site = f"s{between(rng, 1, 5000)}"
    at = t
    fewest, most = sim.variant.flood_clicks
    shortest, longest = sim.variant.flood_gap_ms
    for _ in range(between(rng, fewest, most)):
        user = sim.pool.on_mobile().user
        assert user is not None
        context = fragment(
            {
                "user_id": user.user_id,
                "ip": ip,
                "user_agent": agent,
                "country": kit.country,
                "device_type": "mobile",
                "os": "Android",
            }
        )
        sim.click(
            at,
            campaign,
            partner,
            Visitor(context, user),
            label="click_flooding",
            placement=placement,
            sub_ids={"sub1": site},
        )
        at += between(rng, shortest, longest)


def fraud_display(sim: Simulation, t: int, partner: str, label: str) -> None:
    """A publisher whose audience is partly machines: they click far more than people do."""
    rng = sim.rng
    share = sim.variant.bot_share if label == "bot" else sim.variant.datacenter_share
    campaign = sim.world.campaigns[one_of(rng, ("northwind-display", "bluefin-display"))]
    if rng.random() < share:
        who = (
            bot_visitor(rng, sim.variant.bot_agents) if label == "bot" else datacenter_visitor(rng)
        )
        click_rate, mark = 0.45, label
    else:
        who, click_rate, mark = sim.pool.any(), 0.04, CLEAN
    placement = one_of(rng, PLACEMENTS["display"])
    impression = sim.impression(
        t,
        campaign,
        partner,
        who,
        placement=placement,
        ad_domain=campaign.advertiser.domain,
        cost=round(rng.uniform(0.001, 0.004), 5),
    )
    if rng.random() >= click_rate:
        return
    at = t + between(rng, 300, 5_000)
    click_id = sim.click(
        at,
        campaign,
        partner,
        who,
        label=mark,
        impression_id=impression,
        placement=placement,
        referrer=f"https://{sim.world.partners[partner].site}/{placement}",
    )
    if mark != CLEAN and rng.random() < 0.05:  # a form filled in by a script
        adv = campaign.advertiser
        fake = conversions.new(
            sim,
            at + between(rng, 5_000, 120_000),
            adv,
            FAKE_CONVERSION[adv.key],
            click_id=click_id,
            context=who.context,
            label=mark,
            cause=click_id,
        )
        conversions.report(sim, fake)


def incent(sim: Simulation, t: int, partner: str) -> None:
    """Mostly real users; some clicks come from a farm whose conversions give it away."""
    rng = sim.rng
    adv = sim.world.advertisers[one_of(rng, ("bluefin", "quokka"))]
    campaign = sim.world.campaigns[f"{adv.key}-affiliates"]
    placement = one_of(rng, PLACEMENTS["affiliate"])
    subs = {"sub1": placement, "sub2": f"s{between(rng, 1, 40)}"}
    if rng.random() >= sim.variant.incent_share:
        who = sim.pool.on_mobile() if adv.key == "quokka" else sim.pool.any()
        sim.click(t, campaign, partner, who, placement=placement, sub_ids=subs)
        return
    label = "geo_mismatch" if rng.random() < 0.5 else "device_mismatch"
    country = pick(rng, COUNTRIES)
    seen = {
        "user_id": new_user_id(rng),
        "ip": residential_ip(rng),
        "user_agent": user_agent(rng, "mobile", "iOS"),
        "country": country,
        "device_type": "mobile",
        "os": "iOS",
    }
    click_id = sim.click(
        t,
        campaign,
        partner,
        Visitor(fragment(seen)),
        label=label,
        placement=placement,
        sub_ids=subs,
    )
    if label == "geo_mismatch":
        farm = seen | {"ip": residential_ip(rng), "country": one_of(rng, FARM_COUNTRIES)}
    else:
        farm = seen | {"user_agent": user_agent(rng, "desktop", "Windows")}
        farm |= {"device_type": "desktop", "os": "Windows"}
    action = FAKE_CONVERSION[adv.key]
    fake = conversions.new(
        sim,
        t + ctit_ms(rng, action),
        adv,
        action,
        click_id=click_id,
        context=fragment(farm),
        label=label,
        cause=click_id,
    )
    conversions.report(sim, fake)


def forged_postback(sim: Simulation, t: int, partner: str) -> None:
    """A conversion for a click id that looks minted but whose signature does not verify."""
    rng = sim.rng
    recent = sim.recent_clicks
    if recent and rng.random() < 0.5:
        body = recent[rng.randrange(len(recent))].partition(".")[0]
        tag = b64url(rng.randbytes(9))  # a real id with its tag replaced
    else:
        body = b64url((t - between(rng, 60_000, 6 * HOUR_MS)).to_bytes(6, "big") + rng.randbytes(9))
        tag = b64url(rng.randbytes(9))
    adv = sim.world.advertisers[one_of(rng, ("northwind", "bluefin"))]
    action = "purchase" if adv.key == "northwind" else "lead"
    pending = conversions.new(
        sim, t, adv, action, click_id=f"{body}.{tag}", partner=partner, label="forged_click_id"
    )
    conversions.report(sim, pending)


def orphan_postback(sim: Simulation, t: int) -> None:
    """A correctly signed click id that never arrived as a click."""
    rng = sim.rng
    clicked_at = t - between(rng, 60_000, 6 * HOUR_MS)
    adv = sim.world.advertisers[one_of(rng, ("northwind", "bluefin", "quokka"))]
    click_id = sim.signer.mint(clicked_at, adv.key)
    action = one_of(rng, adv.actions)
    pending = conversions.new(sim, t, adv, action, click_id=click_id, label="orphan")
    conversions.report(sim, pending)
