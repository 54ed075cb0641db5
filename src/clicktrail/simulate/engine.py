"""The run: build the world, generate sessions minute by minute, deliver lines in time order.

The session rate follows the sources' daily cycles and is steered every
simulated minute so the output ends within a few lines of ``--events``: the
lines each session produces (clicks, conversions days later, duplicates) are
measured as the run goes, never assumed. Memory holds the user pool, a few
recent touches per user and what is still pending (mostly conversions waiting
for their time), never the run.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

from clicktrail.simulate.scenarios import Options
from clicktrail.simulate.sim import Simulation, Write
from clicktrail.simulate.sources import TURNCOAT, TURNCOAT_FROM, Source, build_sources
from clicktrail.simulate.timing import MINUTE_MS, human_rate, iso
from clicktrail.simulate.truth import TRUTH_VERSION
from clicktrail.simulate.world import World

PRIOR_LINES_PER_SESSION = 1.5
NEVER = 2**62
Progress = Callable[[int], None]


class Mix:
    """Cumulative session weights of the active sources; they change hourly at most, so cached."""

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources
        self._starts = sorted({s.active_from for s in sources})
        self._cache: dict[tuple[float, int], tuple[list[float], float]] = {}

    def at(self, frac: float, human: float) -> tuple[list[float], float]:
        key = (human, bisect.bisect_right(self._starts, frac))
        found = self._cache.get(key)
        if found is None:
            table, total = [], 0.0
            for source in self.sources:
                if source.active_from <= frac:
                    total += source.weight * (1.0 if source.machine else human)
                table.append(total)
            found = self._cache[key] = (table, total)
        return found


def run(
    options: Options, world: World, write_event: Write, write_truth: Write, progress: Progress
) -> Simulation:
    sim = Simulation(options, world, write_truth)
    _static_truth(sim)
    sources = build_sources(world, options.spec)
    mix = Mix(sources)
    start, end = options.start_ms, options.end_ms
    span = end - start
    buckets = [(b0, min(b0 + MINUTE_MS, end)) for b0 in range(start, end, MINUTE_MS)]
    weights = [
        mix.at((b0 - start) / span, human_rate(b0))[1] * (b1 - b0) / MINUTE_MS for b0, b1 in buckets
    ]
    remaining = weights[:]
    for i in range(len(remaining) - 2, -1, -1):
        remaining[i] += remaining[i + 1]

    rng = sim.rng
    per_session = PRIOR_LINES_PER_SESSION
    owed = 0.0
    sessions = written = 0
    for (b0, b1), weight, ahead in zip(buckets, weights, remaining, strict=True):
        if weight > 0 and ahead > 0:
            owed += max(0, options.events - sim.lines) / per_session * weight / ahead
        count = int(owed)
        if count:
            owed -= count
            table, total = mix.at((b0 - start) / span, human_rate(b0))
            times = sorted(b0 + int(rng.random() * (b1 - b0)) for _ in range(count))
            if not sessions:
                sim.first_ts = times[0]
            for t in times:
                index = bisect.bisect_right(table, rng.random() * total)
                sources[min(index, len(sources) - 1)].run(sim, t)
            sessions += count
            per_session = max(0.3, sim.lines / sessions)
        written += sim.due(b1, write_event)
        progress(written)
    written += sim.due(NEVER, write_event)
    progress(written)
    return sim


def _static_truth(sim: Simulation) -> None:
    """Lines that describe the world once: meta, partners, auction bidders, keywords."""
    options, world, scenario, truth = sim.options, sim.world, sim.scenario, sim.truth
    start, span = options.start_ms, options.end_ms - options.start_ms

    def at(frac: float) -> int:
        return start + int(frac * span)

    truth.record(
        "meta",
        version=TRUTH_VERSION,
        seed=options.seed,
        scenario=options.scenario,
        start=iso(start),
        end=iso(options.end_ms),
    )
    offenses: dict[str, list[dict[str, str]]] = {}
    for bidders in world.bidders.values():
        for b in bidders:
            if b.role == "offender" and b.partner and b.offense and scenario.brand > 0:
                offenses.setdefault(b.partner, []).append(
                    {"brand": b.advertiser, "offense": b.offense}
                )
    for partner in world.partners.values():
        fraud = list(partner.patterns) if scenario.fraud > 0 else []
        bad_from = None
        if fraud:
            bad_from = at(TURNCOAT_FROM) if partner.key == TURNCOAT else start
        truth.record(
            "partner",
            partner_id=partner.key,
            name=partner.name,
            role=partner.role,
            fraud=fraud,
            bad_from=bad_from,
            offenses=offenses.get(partner.key, []),
        )
    for (brand, kind), bidders in world.bidders.items():
        for b in bidders:
            if b.role == "offender" and scenario.brand <= 0:
                continue
            presence = (
                min(0.95, b.presence * scenario.brand) if b.role == "offender" else b.presence
            )
            fields: dict[str, Any] = {
                "brand": brand,
                "bidder": b.name,
                "role": b.role,
                "offender": b.role == "offender",
                "offense": b.offense,
                "keyword_kind": kind,
                "partner_id": b.partner,
                "campaign_id": b.campaign,
                "display_domain": b.domain,
                "in_stream": b.partner is not None,
                "impressions_in_stream": b.partner is not None and b.impressions,
                "presence": round(presence, 3),
                "cpc_inflation": b.inflation,
                "active_from": at(b.active_from),
                "active_to": at(b.active_to),
            }
            truth.record("bidder", **fields)
    for keyword in world.keywords.values():
        truth.record(
            "keyword",
            keyword=keyword.text,
            brand=keyword.advertiser,
            keyword_kind=keyword.kind,
            base_cpc=keyword.base_cpc,
        )
