"""The embedded pipeline on the workload users have, beside the floor measured in the same run.

The workload is the simulator's default world: its registry (campaigns, partners, brands,
actions, fraud settings) and a week of its traffic, so fraud, brand, the per-action models
and the alerting all run. The floor is a minimal loop doing the irreducible work on the
same lines: parse each line (orjson), join conversions to their click by click id (a dict),
one River logistic regression predict and learn per click and action, and 10,000-row
inserts of every event into a plain ClickHouse table. Events per CPU-second of each, and
their ratio, are the figure: the floor moves with the machine, the ratio does not.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

FLOOR_BATCH = 10_000
FLOOR_FEATURES = ("campaign_id", "partner_id", "channel")


def scenario(events: int, seed: int = 7) -> tuple[Path, list[bytes]]:
    """A simulated week of ``events`` events: its directory (registry.yaml) and its lines."""
    from clicktrail.simulate import Options, simulate

    out = Path(tempfile.mkdtemp(prefix="ct-bench-sim-"))
    simulate(Options(out=out, events=events, seed=seed))
    lines = [line for line in (out / "events.jsonl").read_bytes().splitlines() if line]
    return out, lines


def pipeline(directory: Path, lines: list[bytes], store: Any) -> dict[str, Any]:
    """The embedded runtime as ``clicktrail replay`` runs it, sink flushed at the end."""
    from clicktrail.config import load_registry
    from clicktrail.runtime.replay import replay_runtime

    runtime = replay_runtime(load_registry(directory / "registry.yaml"), store)
    runtime.bus.begin_source("bench")
    runtime.backlog = True
    wall, cpu = time.perf_counter(), time.process_time()
    for n, line in enumerate(lines, start=1):
        runtime.submit_raw(line, "bench")
        if n % 5_000 == 0:
            runtime.process()
    runtime.backlog = False
    runtime.close(end_of_input=True)
    return _rates(len(lines), time.perf_counter() - wall, time.process_time() - cpu)


def floor(directory: Path, lines: list[bytes], store: Any) -> dict[str, Any]:
    """The minimal loop over the same lines (see the module's docstring)."""
    import yaml
    from river import linear_model, optim

    registry = yaml.safe_load((directory / "registry.yaml").read_text(encoding="utf-8"))
    actions = sorted(registry.get("actions") or ["purchase"])
    table = f"{store.database}.bench_floor"
    store.command(
        f"CREATE TABLE IF NOT EXISTS {table} (type LowCardinality(String), id String, "
        "ts Int64, body String) ENGINE = MergeTree ORDER BY (type, ts)"
    )
    models = {a: linear_model.LogisticRegression(optimizer=optim.SGD(0.1)) for a in actions}
    clicks: dict[str, dict[str, float]] = {}
    rows: list[tuple[str, str, int, str]] = []
    wall, cpu = time.perf_counter(), time.process_time()
    for line in lines:
        event = orjson.loads(line)
        kind = event.get("type", "")
        ts = event.get("ts")
        ts = ts if isinstance(ts, int) else 0
        if kind == "click":
            x = {f"{k}={event.get(k)}": 1.0 for k in FLOOR_FEATURES}
            clicks[event["click_id"]] = x
            for model in models.values():
                model.predict_proba_one(x)
                model.learn_one(x, False)
        elif kind == "conversion":
            seen = clicks.get(event.get("click_id") or "")
            learner = models.get(event.get("action", ""))
            if seen is not None and learner is not None:
                learner.learn_one(seen, True)
        rows.append((kind, str(event.get("event_id", "")), ts, line.decode()))
        if len(rows) >= FLOOR_BATCH:
            store.insert("bench_floor", rows, ["type", "id", "ts", "body"])
            rows = []
    if rows:
        store.insert("bench_floor", rows, ["type", "id", "ts", "body"])
    return _rates(len(lines), time.perf_counter() - wall, time.process_time() - cpu)


def _rates(events: int, wall: float, cpu: float) -> dict[str, Any]:
    return {
        "events": events,
        "events_per_s": events / wall,
        "events_per_cpu_s": events / cpu if cpu > 0 else float("inf"),
    }
