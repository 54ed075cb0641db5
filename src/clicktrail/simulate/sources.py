"""The traffic mix: which sessions happen, how often, and when in the scenario.

Human sources follow the daily cycle; machine sources (flooders, bot and
datacenter publishers, farms, forged postbacks) run flat around the clock.
Weights are relative session rates; the engine scales them to ``--events``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from clicktrail.simulate import patterns, traffic
from clicktrail.simulate.scenarios import Scenario
from clicktrail.simulate.sim import Simulation
from clicktrail.simulate.world import World

TURNCOAT = "aff-turncoat"
TURNCOAT_FROM = 0.55
"""Fraction of the time range after which the turncoat partner starts flooding."""


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    weight: float
    machine: bool
    run: Callable[[Simulation, int], None]
    active_from: float = 0.0


def _partners_for(world: World, brand: str, channel: str, role: str) -> tuple[str, ...]:
    return tuple(
        p.key
        for p in world.partners.values()
        if p.role == role
        and not p.patterns
        and any(g.brand == brand and channel in g.channels for g in p.grants)
    )


def _human(world: World) -> list[Source]:
    sources = []

    def add(name: str, weight: float, run: Callable[..., None], **kw: Any) -> None:
        sources.append(Source(name, weight, False, partial(run, **kw)))

    for adv in world.advertisers.values():
        key = adv.key
        add(f"search:{key}:brand", 0.035, traffic.search, adv=adv, kind="brand")
        add(f"search:{key}:misspelled", 0.008, traffic.search, adv=adv, kind="misspelled")
        add(f"search:{key}:generic", 0.04, traffic.search, adv=adv, kind="generic")
        links = _partners_for(world, key, "affiliate", "affiliate")
        add(
            f"affiliate:{key}",
            0.05,
            traffic.affiliate,
            adv=adv,
            partners=links,
            channel="affiliate",
        )
        add(f"organic:{key}", 0.006, traffic.organic, adv=adv)
        if key == "quokka":
            continue
        mail = _partners_for(world, key, "email", "email") + _partners_for(
            world, key, "email", "affiliate"
        )
        add(f"email:{key}", 0.012, traffic.affiliate, adv=adv, partners=mail, channel="email")
        turncoat = (TURNCOAT,)
        add(
            f"affiliate:{key}:turncoat",
            0.0075,
            traffic.affiliate,
            adv=adv,
            partners=turncoat,
            channel="affiliate",
        )
    for key, campaign in world.campaigns.items():
        if campaign.channel == "display" and not key.endswith("app-ua"):
            for pub in ("pub-newsdaily", "pub-weatherapp"):
                add(f"display:{key}:{pub}", 0.05, traffic.display, campaign=campaign, partner=pub)
        if campaign.channel == "social":
            add(f"social:{key}", 0.05, traffic.social, campaign=campaign)
    app = world.campaigns["quokka-app-ua"]
    add("app:net-adnet", 0.05, traffic.app, campaign=app, partner="net-adnet")
    return sources


def _machine(scenario: Scenario) -> list[Source]:
    sources = []

    def add(
        name: str, weight: float, run: Callable[..., None], start: float = 0, **kw: Any
    ) -> None:
        if scenario.fraud > 0:
            sources.append(Source(name, weight * scenario.fraud, True, partial(run, **kw), start))

    floods = ("quokka-app-ua", "quokka-app-ua", "northwind-affiliates")
    add("flood:net-flood", 0.0015, patterns.flood, partner="net-flood", campaigns=floods)
    add(
        "flood:turncoat",
        0.002,
        patterns.flood,
        TURNCOAT_FROM,
        partner=TURNCOAT,
        campaigns=("northwind-affiliates", "bluefin-affiliates"),
    )
    add(
        "display:pub-botfarm",
        0.025,
        patterns.fraud_display,
        partner="pub-botfarm",
        label="bot",
    )
    add(
        "display:pub-cloudhost",
        0.02,
        patterns.fraud_display,
        partner="pub-cloudhost",
        label="datacenter",
    )
    add("incent:aff-incent", 0.015, patterns.incent, partner="aff-incent")
    add("postback:forged", 0.0015, patterns.forged_postback, partner="aff-shadow")
    add("postback:orphan", 0.0015, patterns.orphan_postback)
    return sources


def build_sources(world: World, scenario: Scenario) -> list[Source]:
    return _human(world) + _machine(scenario)
