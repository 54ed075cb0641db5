"""One simulation run from options to files, and the summary written as ``scenario.json``."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from clicktrail.simulate.cast import build_world
from clicktrail.simulate.engine import run
from clicktrail.simulate.output import Output
from clicktrail.simulate.registry import registry_yaml
from clicktrail.simulate.scenarios import Options
from clicktrail.simulate.sim import Simulation
from clicktrail.simulate.timing import iso

SCENARIO_VERSION = 1
GC_YOUNG = 50_000
"""Young-generation GC threshold while generating: the run makes millions of short-lived
containers and almost no cycles, and default collections cost about a fifth of the time."""
FILES = ("events.jsonl", "truth.jsonl", "registry.yaml", "scenario.json", "auction_insights.csv")


def simulate(
    options: Options,
    *,
    stdout: bool = False,
    tee: Callable[[bytes], Any] | None = None,
    progress: Callable[[int], None] = lambda written: None,
) -> dict[str, Any]:
    """Generate the scenario into ``options.out``; returns what ``scenario.json`` holds."""
    output = Output(options.out, stdout=stdout, tee=tee)
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, *thresholds[1:])
    try:
        world = build_world(options.seed)
        output.text("registry.yaml", registry_yaml(world, options.seed))  # first: pipes need it
        sim = run(options, world, output.write_event, output.write_truth, progress)
    finally:
        gc.set_threshold(*thresholds)
        output.close()
    accounts = {c.key: c.advertiser.account for c in sim.world.campaigns.values()}
    rows = sim.insights.write_csv(options.out / "auction_insights.csv", accounts)
    summary = _summary(sim, rows)
    output.json("scenario.json", summary)
    return summary


def _summary(sim: Simulation, insight_rows: int) -> dict[str, Any]:
    options = sim.options
    truth = sim.truth.summary()
    return {
        "version": SCENARIO_VERSION,
        "scenario": options.scenario,
        "description": options.spec.description,
        "seed": options.seed,
        "variant": options.params.describe(),
        "events_requested": options.events,
        "start": iso(options.start_ms),
        "traffic_end": iso(options.end_ms),
        "days": float(options.days),
        "first_event_ts": iso(sim.first_ts) if sim.lines else None,
        "last_event_ts": iso(sim.last_ts) if sim.lines else None,
        "lines": sim.lines,
        "events": {k: sim.events[k] for k in ("impression", "click", "conversion")},
        "delivery": {k: sim.delivery[k] for k in ("duplicates", "delayed", "late_clicks")},
        "users": len(sim.pool),
        "auction_insight_rows": insight_rows,
        **truth,
    }
