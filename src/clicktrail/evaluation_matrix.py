"""``clicktrail evaluate --matrix N``: the detectors judged by their worst world, not one.

Run ``i`` (1..N) simulates seed ``seed + i - 1`` with variant ``i`` (every planted
pattern's parameters drawn from wide ranges, ``simulate.variants``), replays it through
the embedded pipeline into a database of its own and scores it with the single-run
evaluation. The table then gives, per measure, the worst and the median over the runs
and which run was worst; a goal column says whether the worst case meets the goal
(per pattern precision and recall at least 0.95, clean false-positive rate at most
0.1 %). Runs are kept under the matrix directory, so a second call scores them again
without simulating or replaying.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clicktrail.evaluation import (
    Evaluation,
    evaluate,
    markdown_table,
    replay_scenario,
    stored_clicks,
)
from clicktrail.sinks.store import Store

SECTIONS = ("attribution", "fraud", "brand conflict", "per-action model")
HIGHER_IS_WORSE = (
    "false-positive",
    "gap to oracle",
    "absolute error",
    "non-offenders",
    "calibration error",
    "oracle minus",
    "attainable minus",
)
GOALS: dict[str, tuple[str, float]] = {
    "recall": (">=", 0.95),
    "precision": (">=", 0.95),
    "false-positive rate": ("<=", 0.001),
    "gap to oracle": ("<=", 0.01),
    "minus plain baseline": (">=", 0.0),
    "best attainable minus model": ("<=", 0.01),
}


@dataclass
class Measure:
    """One measure over the runs: its value per run name (None: not measurable there)."""

    section: str
    what: str
    values: dict[str, float | None] = field(default_factory=dict)

    @property
    def higher_is_worse(self) -> bool:
        return any(word in self.what for word in HIGHER_IS_WORSE)

    def known(self) -> dict[str, float]:
        return {run: v for run, v in self.values.items() if v is not None}

    def worst(self) -> tuple[str, float] | None:
        known = self.known()
        if not known:
            return None
        pick = max if self.higher_is_worse else min
        run = pick(known, key=lambda r: known[r])
        return run, known[run]

    def median(self) -> float | None:
        known = self.known()
        return statistics.median(known.values()) if known else None

    def goal(self) -> tuple[str, float] | None:
        return next((g for key, g in GOALS.items() if key in self.what), None)

    def meets_goal(self) -> bool | None:
        goal, worst = self.goal(), self.worst()
        if goal is None or worst is None:
            return None
        sign, bound = goal
        return worst[1] >= bound if sign == ">=" else worst[1] <= bound


@dataclass
class Matrix:
    runs: list[dict[str, Any]] = field(default_factory=list)
    measures: dict[tuple[str, str], Measure] = field(default_factory=dict)

    def add(self, name: str, scenario: dict[str, Any], result: Evaluation) -> None:
        self.runs.append({"run": name, "seed": scenario.get("seed"), **scenario.get("variant", {})})
        for row in result.rows:
            if row.section not in SECTIONS or row.what.startswith("  "):
                continue
            key = (row.section, row.what)
            measure = self.measures.setdefault(key, Measure(row.section, row.what))
            measure.values[name] = row.value

    def table(self) -> str:
        cells = [["section", "measure", "worst", "median", "worst run", "goal"]]
        for measure in self.measures.values():
            worst, median = measure.worst(), measure.median()
            goal, met = measure.goal(), measure.meets_goal()
            cells.append(
                [
                    measure.section,
                    measure.what,
                    "-" if worst is None else f"{worst[1]:.4f}",
                    "-" if median is None else f"{median:.4f}",
                    "-" if worst is None else worst[0],
                    "" if goal is None else f"{goal[0]} {goal[1]:g}: {'met' if met else 'MISSED'}",
                ]
            )
        return markdown_table(cells)

    def as_json(self) -> str:
        return json.dumps(
            {
                "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "runs": self.runs,
                "measures": [
                    {
                        "section": m.section,
                        "measure": m.what,
                        "worst": m.worst(),
                        "median": m.median(),
                        "goal_met": m.meets_goal(),
                        "values": m.values,
                    }
                    for m in self.measures.values()
                ],
            },
            indent=2,
        )


def _prefixed(progress: Callable[[str], None], name: str) -> Callable[[str], None]:
    return lambda text: progress(f"[{name}] {text}")


def run_matrix(
    root: Path,
    runs: int,
    *,
    events: int,
    seed: int,
    scenario: str,
    progress: Callable[[str], None],
) -> Matrix:
    """Simulate, replay and score ``runs`` variants under ``root`` (reusing what is there)."""
    from clicktrail.simulate.runner import simulate
    from clicktrail.simulate.scenarios import Options

    root.mkdir(parents=True, exist_ok=True)
    store_dsn = f"chdb://{root / 'store'}"  # one embedded engine, a database per run
    matrix = Matrix()
    for index in range(1, runs + 1):
        name = f"v{index:02d}-s{seed + index - 1}"
        directory = root / name
        started = time.monotonic()
        if not (directory / "scenario.json").is_file():
            progress(f"[{name}] simulating {events:,} events (variant {index})")
            simulate(
                Options(
                    out=directory,
                    events=events,
                    seed=seed + index - 1,
                    scenario=scenario,
                    variant=index,
                )
            )
        store = Store(store_dsn, name.replace("-", "_"))
        if stored_clicks(store) == 0:
            replay_scenario(directory, store, _prefixed(progress, name))
        result = evaluate(directory, store)
        described = json.loads((directory / "scenario.json").read_text(encoding="utf-8"))
        matrix.add(name, described, result)
        progress(f"[{name}] scored in {time.monotonic() - started:.0f} s")
    return matrix
