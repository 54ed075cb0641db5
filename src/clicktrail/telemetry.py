"""Prometheus text exposition from plain counters, for the edge and both runtimes.

Hot paths only add to ints and dicts (``collections.Counter``); the text is made when
``/metrics`` is scraped, by the collectors registered on a :class:`MetricsRegistry`. Labels
come from fixed sets (endpoints, reason codes, stages, tables, actions), so the
number of series stays bounded. No client library: the format is a few lines of text.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping
from typing import Any

Gauge = Callable[[], float | None]
"""Reads a gauge's value at scrape time; None leaves the sample out (nothing known yet)."""
Collector = Callable[[], list[str]]
"""Renders whole metric families (``# HELP``, ``# TYPE`` and samples) at scrape time."""
Labels = tuple[str, ...]
Samples = Mapping[Any, float]
"""Label values (a tuple in the order of the family's label names) to a sample's value."""


class Histogram:
    """Cumulative-bucket histogram (Prometheus semantics), observed with a weight."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        if list(buckets) != sorted(buckets) or not buckets:
            raise ValueError("histogram buckets must be sorted and non-empty")
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float, weight: int = 1) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += weight
        self.total += value * weight
        self.count += weight

    def render(self, name: str) -> list[str]:
        lines = []
        running = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum {self.total:.6f}")
        lines.append(f"{name}_count {self.count}")
        return lines


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))  # the shortest text that reads back as the same number


def family(
    name: str,
    kind: str,
    help_text: str,
    labels: Labels,
    samples: Samples,
) -> list[str]:
    """One metric family: ``samples`` maps label values (in the order of ``labels``) to a
    value. A snapshot is taken first, so a counter another thread adds to while this runs
    cannot break the iteration."""
    items = list(dict(samples).items())
    out = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for values, value in sorted(items):
        if labels:
            pairs = ",".join(f'{k}="{escape(str(v))}"' for k, v in zip(labels, values, strict=True))
            out.append(f"{name}{{{pairs}}} {_number(value)}")
        else:
            out.append(f"{name} {_number(value)}")
    return out


def counter(
    name: str,
    help_text: str,
    labels: Labels,
    samples: Samples,
) -> list[str]:
    if not name.endswith("_total"):
        raise ValueError(f"counter {name} must end in _total")
    return family(name, "counter", help_text, labels, samples)


def histogram(name: str, help_text: str, observed: Histogram) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} histogram", *observed.render(name)]


class MetricsRegistry:
    """Gauges and collectors read at scrape time; ``render`` is the ``/metrics`` body."""

    def __init__(self) -> None:
        self.gauges: dict[str, tuple[str, Gauge]] = {}
        self.collectors: list[Collector] = []

    def gauge(self, name: str, help_text: str, read: Gauge) -> None:
        self.gauges[name] = (help_text, read)

    def collect(self, collector: Collector) -> None:
        self.collectors.append(collector)

    def lines(self) -> list[str]:
        out: list[str] = []
        for name, (help_text, read) in sorted(self.gauges.items()):
            value = read()
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            if value is not None:
                out.append(f"{name} {_number(float(value))}")
        for collector in self.collectors:
            out += collector()
        return out

    def render(self) -> str:
        return "\n".join(self.lines()) + "\n"
