"""A flood spread thin: many devices from a network that serves one partner."""

from __future__ import annotations

import random
from typing import Any

from tests.unit.test_fraud_rules import click

from clicktrail.config.registry import FraudSettings
from clicktrail.processors.fraud.hits import Hit
from clicktrail.processors.fraud.networks import DedicatedNetworkRule

SETTINGS = FraudSettings()
PARTNERS = [f"p{i}" for i in range(10)]


def rule(**settings: Any) -> DedicatedNetworkRule:
    return DedicatedNetworkRule({}, {}, SETTINGS.model_copy(update=settings))


def background(judge: DedicatedNetworkRule, rng: random.Random, clicks: int, start: int) -> None:
    """Honest traffic: many networks, every partner, one device each."""
    for n in range(start, start + clicks):
        hits = judge(
            click(
                n,
                seconds=n * 2,
                partner=rng.choice(PARTNERS),
                ip=f"10.{rng.randrange(250)}.{rng.randrange(250)}.0",
            )
        )
        assert hits == []


def test_a_flood_network_serving_one_partner_is_judged_with_its_window() -> None:
    judge, rng = rule(), random.Random(1)
    background(judge, rng, 2_000, 0)
    first = judge(click(5_000, seconds=4_000, partner="p-flood", ip="77.1.1.0"))
    second = judge(click(5_001, seconds=4_200, partner="p-flood", ip="77.1.1.0"))
    assert first == second == []  # two devices: a household
    third = judge(click(5_002, seconds=4_400, partner="p-flood", ip="77.1.1.0"))
    assert Hit("click_flood_network") in third
    convicted = {h.subject_id for h in third if h.subject_id}
    assert convicted == {"clk5000", "clk5001"}  # the window's earlier clicks with it
    fourth = judge(click(5_003, seconds=4_600, partner="p-flood", ip="77.1.1.0"))
    assert fourth == [Hit("click_flood_network")]  # convicted ones are not released again


def test_a_carrier_network_with_many_devices_for_every_partner_is_not() -> None:
    """Carrier NAT: one /24, a different device each click, spread over all partners."""
    judge, rng = rule(), random.Random(2)
    background(judge, rng, 2_000, 0)
    for n in range(10_000, 10_400):
        hits = judge(
            click(n, seconds=4_000 + n % 400 * 5, partner=rng.choice(PARTNERS), ip="100.64.1.0")
        )
        assert hits == [], n


def test_with_one_partner_every_network_serves_it_and_nothing_is_judged() -> None:
    judge = rule()
    for n in range(300):
        assert judge(click(n, seconds=n * 10, partner="only", ip=f"10.0.{n % 3}.0")) == []


def test_the_same_device_clicking_again_is_not_many_devices() -> None:
    judge, rng = rule(), random.Random(3)
    background(judge, rng, 1_000, 0)
    for n in range(5):
        same = click(
            9_000 + n, seconds=2_100 + n, partner="p-flood", ip="77.1.1.0", user_id="u-one"
        )
        assert judge(same) == []


def test_limits_and_expiry() -> None:
    judge, rng = rule(flood_network_devices=5), random.Random(4)
    background(judge, rng, 1_000, 0)
    hits = [
        judge(click(7_000 + n, seconds=2_100 + n, partner="px", ip="77.1.1.0")) for n in range(5)
    ]
    assert [bool(h) for h in hits] == [False, False, False, False, True]
    assert judge.expire(10**12) > 0
    assert judge.networks == {} and judge.devices == {}


def test_a_flood_in_the_trackers_first_minutes_is_judged_too() -> None:
    """Twelve clicks of other partners, then a flood session: the flood is most of what
    the tracker has seen, so only the smoothed share of all clicks convicts it."""
    judge, rng = rule(), random.Random(5)
    background(judge, rng, 12, 0)
    hits = [
        judge(click(100 + n, seconds=30 + n * 20, partner="p-flood", ip="77.1.1.0"))
        for n in range(12)
    ]
    assert any(Hit("click_flood_network") in h for h in hits)
