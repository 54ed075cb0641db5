"""``clicktrail bench``: every speed figure of the brief, measured here, beside its goal.

Each measurement runs ``runs`` times and the median is reported. Parts that need
something absent (no Kafka broker) are listed as skipped, never invented.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

PARTS = ("edge", "embedded", "sink", "faust", "latency", "loop")
"""What ``--only`` may name; ``loop`` alone is the quick event-loop stall check."""


@dataclass
class Figure:
    what: str
    value: float | None
    unit: str
    goal: str
    note: str = ""

    def cells(self) -> list[str]:
        shown = "skipped" if self.value is None else _fmt(self.value)
        return [self.what, f"{shown} {self.unit}".strip(), self.goal, self.note]


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _median(run: Callable[[], dict[str, Any]], key: str, runs: int) -> tuple[float, dict[str, Any]]:
    results = [run() for _ in range(runs)]
    values = [r[key] for r in results]
    return statistics.median(values), results[-1]


def collect(
    *,
    events: int,
    rows: int,
    faust_events: int,
    samples: int,
    runs: int,
    broker: str | None,
    edge_seconds: float,
    parts: set[str],
    progress: Callable[[str], None],
) -> list[Figure]:
    from clicktrail.bench import pipeline

    figures: list[Figure] = []
    cores = os.cpu_count() or 1
    if "edge" in parts:
        from clicktrail.bench.edge import bench_edge

        progress("edge: each endpoint under load, embedded bus" + (" and Kafka" if broker else ""))
        for row in bench_edge(broker, seconds=edge_seconds):
            figures.append(
                Figure(
                    f"edge {row['endpoint']} ({row['bus']})",
                    row["per_core_s"],
                    "req/s/core",
                    ">= 20,000 req/s/core, p99 < 5 ms",
                    f"{row['requests_per_s']:,.0f} req/s total, p50 {row['p50_ms']:.2f} ms, "
                    f"p99 {row['p99_ms']:.2f} ms",
                )
            )
    if "embedded" in parts:
        from clicktrail.bench import realistic

        progress(f"embedded pipeline and its floor: a simulated week of {events:,} events x {runs}")
        directory, lines = realistic.scenario(events)
        value, last = _median(
            lambda: realistic.pipeline(directory, lines, pipeline._scratch_store()),
            "events_per_cpu_s",
            runs,
        )
        floor, _ = _median(
            lambda: realistic.floor(directory, lines, pipeline._scratch_store()),
            "events_per_cpu_s",
            runs,
        )
        figures.append(
            Figure(
                "embedded pipeline, simulated week (fraud, brand, models, alerts)",
                value,
                "events/CPU-s",
                ">= 10,000 events/CPU-s and >= 0.5 of the floor",
                f"{value / floor:.2f} of the floor; {last['events_per_s']:,.0f} events/s wall",
            )
        )
        figures.append(
            Figure(
                "floor: minimal loop on the same events",
                floor,
                "events/CPU-s",
                "",
                "orjson parse, dict join by click id, one River regression per click "
                "and action, 10k-row inserts",
            )
        )
    if "sink" in parts:
        progress(f"ClickHouse sink: {rows:,} rows x {runs}")
        value, last = _median(lambda: pipeline.sink_throughput(rows), "rows_per_s", runs)
        figures.append(
            Figure(
                "ClickHouse sink (chDB), 10k-row inserts",
                value,
                "rows/s",
                ">= 300,000 rows/s",
                f"{last['inserts']} inserts",
            )
        )
    if "faust" in parts:
        if broker is None:
            figures.append(
                Figure(
                    "Faust worker, full processing",
                    None,
                    "",
                    ">= 20,000 events/s",
                    "no broker: set --broker or $KAFKA_BOOTSTRAP",
                )
            )
        else:
            progress(f"Faust worker: {faust_events:,} events x {runs}")
            value, last = _median(
                lambda: pipeline.faust_throughput(broker, faust_events), "events_per_s", runs
            )
            figures.append(
                Figure(
                    "Faust worker (1 process), full processing",
                    value,
                    "events/s",
                    ">= 20,000 events/s",
                    f"first message to zero lag, 4 partitions; "
                    f"{last['events_per_cpu_s']:,.0f} events per worker CPU-second",
                )
            )
    if "latency" in parts:
        progress(f"postback -> queryable row: {samples} samples")
        result = pipeline.postback_latency(samples)
        figures.append(
            Figure(
                "postback -> attributed row queryable, p50",
                result["p50_s"],
                "s",
                "p95 < 2 s",
                "clicktrail run, HTTP in, SQL out",
            )
        )
        figures.append(
            Figure(
                "postback -> attributed row queryable, p95",
                result["p95_s"],
                "s",
                "p95 < 2 s",
                f"{samples} samples",
            )
        )
    if "latency" in parts:
        progress(f"brand bid -> webhook alert: {samples} samples")
        alerts = pipeline.alert_latency(samples)
        figures.append(
            Figure(
                "brand bid event -> alert delivered, p95",
                alerts["p95_s"],
                "s",
                "p95 < 5 s",
                f"HTTP in, signed webhook out; p50 {alerts['p50_s']:.3f} s, {samples} samples",
            )
        )
        progress(f"GET /v1/score: {samples * 20} requests")
        scores = pipeline.score_latency(samples * 20)
        figures.append(
            Figure(
                "GET /v1/score, p99",
                scores["p99_s"] * 1000,
                "ms",
                "low latency (bidders)",
                f"one keep-alive client; p50 {scores['p50_s'] * 1000:.2f} ms, "
                f"{scores['samples']} requests",
            )
        )
    if "loop" in parts:
        from clicktrail.bench.stall import healthz_under_batch

        progress(f"GET /healthz while a 10,000-event batch is processed x {runs}")
        value, stall = _median(healthz_under_batch, "p99_ms", runs)
        figures.append(
            Figure(
                "GET /healthz p99 during a 10k-event POST /v1/events",
                value,
                "ms",
                "p99 < 50 ms",
                f"probe every 5 ms, stalls counted in full; last run: p50 "
                f"{stall['p50_ms']:.2f} ms, max {stall['max_ms']:.1f} ms, {stall['sent']} probes; "
                f"batch answered in {stall['post_s']:.2f} s, queue empty at "
                f"{stall['drained_s']:.2f} s",
            )
        )
    figures.append(Figure("machine", float(cores), "cores", "", sys.platform))
    return figures


def table(figures: list[Figure]) -> str:
    header = ["measurement", "measured", "goal (BRIEF §7)", "note"]
    rows = [header] + [f.cells() for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def as_json(figures: list[Figure]) -> str:
    return json.dumps(
        {
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "figures": [asdict(f) for f in figures],
        },
        indent=2,
    )
