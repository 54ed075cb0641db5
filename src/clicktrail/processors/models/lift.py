"""Lift of a score: how much better its top decile converts, and what skipping the rest saves.

A pure function over (score, label, cost) triples so it runs the same on a
replayed scenario, a ClickHouse export or a test list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lift:
    clicks: int
    base_rate: float
    top_decile_rate: float
    lift: float
    """Top-decile conversion rate over the average (1.0: no better than random)."""
    deciles: tuple[float, ...]
    """Conversion rate per score decile, best first."""
    capture: tuple[float, ...]
    """Share of all conversions won by targeting only the top k deciles, k = 1..10."""
    spend_saved: tuple[float, ...]
    """Share of spend (``cost``; clicks count 1 without it) saved by targeting the top k deciles."""


def lift(triples: Iterable[tuple[float, bool | int, float | None]]) -> Lift | None:
    """None without clicks or without a single conversion."""
    ranked = sorted(triples, key=lambda t: -t[0])
    n = len(ranked)
    positives = sum(int(bool(y)) for _, y, _ in ranked)
    if not n or not positives:
        return None
    costs = [1.0 if cost is None else float(cost) for _, _, cost in ranked]
    total_cost = sum(costs) or 1.0
    rates, capture, saved = [], [], []
    won = 0
    spent = 0.0
    for k in range(10):
        lo, hi = n * k // 10, n * (k + 1) // 10
        hits = sum(int(bool(y)) for _, y, _ in ranked[lo:hi])
        rates.append(hits / (hi - lo) if hi > lo else 0.0)
        won += hits
        spent += sum(costs[lo:hi])
        capture.append(won / positives)
        saved.append(1.0 - spent / total_cost)
    base = positives / n
    return Lift(
        clicks=n,
        base_rate=base,
        top_decile_rate=rates[0],
        lift=rates[0] / base,
        deciles=tuple(rates),
        capture=tuple(capture),
        spend_saved=tuple(saved),
    )
