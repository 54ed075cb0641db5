"""The life of a conversion: when it happens, what it is worth, how it is reported.

A converting click schedules its conversions, some reported with the click id,
some with the user id only (cookie or device matching). Purchases and leads
get a status update later with the same txid; a few postbacks are replayed;
some Android installs get a click injected seconds before them. Credit is
resolved only when the conversion is due, from the ledger of touches, so the
truth follows last click exactly, including credit stolen by fraud.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import orjson

from clicktrail.simulate import encode
from clicktrail.simulate.rand import between, one_of
from clicktrail.simulate.timing import HOUR_MS, ctit_ms, iso
from clicktrail.simulate.truth import CLEAN
from clicktrail.simulate.users import User
from clicktrail.simulate.world import PLACEMENTS, Advertiser, Campaign

if TYPE_CHECKING:
    from clicktrail.simulate.sim import Simulation

USER_ONLY = {"install": 0.6}
"""Share of conversions reported by user id only (installs: by device id); default 0.12."""
LIFECYCLE = ("purchase", "lead")
NO_REPLAY = ("add_to_cart",)
NO_CREDIT = ("forged_click_id", "orphan", "replayed_postback")
STEALS = ("click_flooding",)
FAKE = ("bot", "datacenter", "geo_mismatch", "device_mismatch", "forged_click_id", "orphan")
"""Conversions advertisers mostly reject when they review them."""
REPLAY_RATE = 0.01
INJECT_RATE = 0.25
INJECTOR = "net-inject"

# (advertiser, action): median revenue, sigma of log revenue, fixed payout, payout share
VALUES: dict[tuple[str, str], tuple[float, float, float, float]] = {
    ("northwind", "signup"): (0, 0, 1.0, 0),
    ("northwind", "add_to_cart"): (0, 0, 0, 0),
    ("northwind", "purchase"): (70, 0.6, 0, 0.08),
    ("bluefin", "lead"): (45, 0, 22, 0),
    ("bluefin", "signup"): (0, 0, 2.0, 0),
    ("quokka", "install"): (0, 0, 1.8, 0),
    ("quokka", "purchase"): (6, 0.8, 0, 0.1),
}


@dataclass(slots=True)
class Pending:
    """A conversion (or status update) waiting for its delivery time."""

    ts: int
    event_id: str
    txid: str
    action: str
    status: str
    revenue: float
    payout: float
    advertiser: Advertiser
    click_id: str | None = None
    partner: str | None = None
    user: User | None = None
    context: orjson.Fragment | None = None
    label: str | None = None
    cause: str | None = None
    of: str | None = None
    update: bool = False
    duplicate_after: int = 0


def new(
    sim: Simulation,
    ts: int,
    advertiser: Advertiser,
    action: str,
    *,
    user: User | None = None,
    context: orjson.Fragment | None = None,
    click_id: str | None = None,
    partner: str | None = None,
    label: str | None = None,
    cause: str | None = None,
) -> Pending:
    median, sigma, fixed, share = VALUES[(advertiser.key, action)]
    revenue = median * math.exp(sim.rng.gauss(0, sigma)) if sigma else median
    return Pending(
        ts=ts,
        event_id=sim.next_id("v"),
        txid=sim.next_txid(advertiser),
        action=action,
        status="pending" if action in LIFECYCLE else "approved",
        revenue=round(revenue, 2),
        payout=round(fixed + share * revenue, 2),
        advertiser=advertiser,
        click_id=click_id,
        partner=partner,
        user=user,
        context=context,
        label=label,
        cause=cause,
    )


def convert(
    sim: Simulation,
    *,
    ts: int,
    click_id: str,
    campaign: Campaign,
    partner: str,
    user: User,
    probabilities: dict[str, float],
) -> tuple[dict[str, int], int | None]:
    """Draw each action from its true probability; returns outcomes and the first conversion."""
    rng = sim.rng
    outcomes = {}
    first = None
    for action, p in probabilities.items():
        hit = rng.random() < p
        outcomes[action] = int(hit)
        if not hit:
            continue
        at = ts + min(ctit_ms(rng, action), campaign.window_ms - HOUR_MS)  # credit stays due
        by_click = rng.random() >= USER_ONLY.get(action, 0.12)
        with_context = not by_click or rng.random() < 0.7
        pending = new(
            sim,
            at,
            campaign.advertiser,
            action,
            user=user,
            context=user.context if with_context else None,
            click_id=click_id if by_click else None,
            cause=click_id,
        )
        report(sim, pending)
        first = at if first is None else min(first, at)
    return outcomes, first


def report(sim: Simulation, pending: Pending) -> None:
    """Schedule a conversion with what happens to it later."""
    rng = sim.rng
    fraud = sim.scenario.fraud
    user = pending.user
    if (
        pending.action == "install"
        and pending.label is None
        and user is not None
        and user.os == "Android"
        and rng.random() < INJECT_RATE * fraud
    ):
        _inject(sim, pending, user)
    sim.schedule(pending)
    if pending.status == "pending":
        approve = 0.4 if pending.label in FAKE else 0.9
        status = "approved" if rng.random() < approve else "rejected"
        update = replace(
            pending,
            ts=pending.ts + between(rng, 12 * HOUR_MS, 72 * HOUR_MS),
            event_id=sim.next_id("v"),
            status=status,
            of=pending.event_id,
            update=True,
        )
        sim.schedule(update)
    replayable = pending.label is None and pending.action not in NO_REPLAY
    if replayable and rng.random() < REPLAY_RATE * fraud:
        replay = replace(
            pending,
            ts=pending.ts + between(rng, HOUR_MS, 48 * HOUR_MS),
            event_id=sim.next_id("v"),
            label="replayed_postback",
            of=pending.event_id,
            cause=None,
        )
        sim.schedule(replay)


def _inject(sim: Simulation, pending: Pending, user: User) -> None:
    """A click fired from the user's own device seconds before the install opens."""
    rng = sim.rng
    campaign = sim.world.campaigns[f"{pending.advertiser.key}-app-ua"]
    click_id = sim.click(
        pending.ts - between(rng, *sim.variant.inject_lead_ms),
        campaign,
        INJECTOR,
        sim.pool.visitor(user),
        label="click_injection",
        placement=one_of(rng, PLACEMENTS["app"]),
        sub_ids={"sub1": f"app{between(rng, 1000, 1099)}"},
    )
    pending.label = "click_injection"
    pending.click_id = click_id if rng.random() < 0.5 else None
    pending.context = user.context


def _credit(sim: Simulation, pending: Pending) -> tuple[str, str, str | None, str | None]:
    """Label, touch, credited id and the credited click's label, under last click.

    A conversion reported by user id only goes to the user's latest click in
    window; when a flooder's click is that one, the credit is stolen and the
    conversion is labelled ``click_flooding``.
    """
    label = pending.label
    if label in NO_CREDIT:
        return label or CLEAN, "none", None, None
    if pending.click_id is not None:
        return label or CLEAN, "click", pending.click_id, label or CLEAN
    if pending.user is None:
        return label or CLEAN, "none", None, None
    key = (pending.user.index, pending.advertiser.index)
    found = sim.ledger.last_click(key, pending.ts)
    if found is not None:
        click_id, click_label = found
        stolen = click_label if click_label in STEALS else CLEAN
        return label or stolen, "click", click_id, click_label
    view = sim.ledger.last_view(key, pending.ts)
    return label or CLEAN, "view" if view else "none", view, None


def emit(sim: Simulation, pending: Pending) -> bytes:
    """The conversion line, written to the truth file with its resolved credit."""
    if pending.update:
        sim.truth.status_update(
            pending.event_id, of=pending.of or "", txid=pending.txid, status=pending.status
        )
    else:
        label, touch, credit, credit_label = _credit(sim, pending)
        sim.truth.conversion(
            pending.event_id,
            txid=pending.txid,
            action=pending.action,
            label=label,
            touch=touch,
            credit=credit,
            credit_label=credit_label,
            cause=pending.cause,
            replay_of=pending.of,
        )
    return encode.conversion(
        event_id=pending.event_id,
        ts=iso(pending.ts),
        txid=pending.txid,
        action=pending.action,
        status=pending.status,
        advertiser=pending.advertiser.key,
        revenue=pending.revenue,
        currency=pending.advertiser.currency,
        payout=pending.payout,
        click_id=pending.click_id,
        partner=pending.partner,
        user=pending.context,
    )
