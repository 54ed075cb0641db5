"""Edge metrics in the Prometheus text format, kept in plain dicts.

Counting is a dict increment on the request path; rendering happens only when
``/metrics`` is scraped. Labels come from fixed sets (endpoint names, reason
codes, status codes), so the series count stays bounded.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable

PRODUCE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
Gauge = Callable[[], float]


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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class EdgeMetrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.rejects: Counter[tuple[str, str]] = Counter()
        self.accepted: Counter[str] = Counter()
        self.duplicates = 0
        self.produce = Histogram(PRODUCE_BUCKETS)
        self.gauges: dict[str, tuple[str, Gauge]] = {}

    def request(self, endpoint: str, status: int) -> None:
        self.requests[endpoint, status] += 1

    def reject(self, endpoint: str, reason: str) -> None:
        self.rejects[endpoint, reason] += 1

    def gauge(self, name: str, help_text: str, read: Gauge) -> None:
        self.gauges[name] = (help_text, read)

    def render(self) -> str:
        out = [
            "# HELP clicktrail_edge_requests_total HTTP requests answered, by endpoint and status.",
            "# TYPE clicktrail_edge_requests_total counter",
        ]
        for (endpoint, status), count in sorted(self.requests.items()):
            out.append(
                f'clicktrail_edge_requests_total{{endpoint="{endpoint}",status="{status}"}} {count}'
            )
        out += [
            "# HELP clicktrail_edge_rejects_total Refused requests and events, by reason code.",
            "# TYPE clicktrail_edge_rejects_total counter",
        ]
        for (endpoint, reason), count in sorted(self.rejects.items()):
            out.append(
                f'clicktrail_edge_rejects_total{{endpoint="{endpoint}",'
                f'reason="{_escape(reason)}"}} {count}'
            )
        out += [
            "# HELP clicktrail_edge_events_total Events accepted and handed to the bus, by type.",
            "# TYPE clicktrail_edge_events_total counter",
        ]
        for kind, count in sorted(self.accepted.items()):
            out.append(f'clicktrail_edge_events_total{{type="{kind}"}} {count}')
        out += [
            "# HELP clicktrail_edge_duplicates_total Postbacks answered as duplicates.",
            "# TYPE clicktrail_edge_duplicates_total counter",
            f"clicktrail_edge_duplicates_total {self.duplicates}",
            "# HELP clicktrail_edge_produce_seconds Accepting an event to the bus confirming it "
            "(Kafka: broker ack; in-process: queued).",
            "# TYPE clicktrail_edge_produce_seconds histogram",
            *self.produce.render("clicktrail_edge_produce_seconds"),
        ]
        for name, (help_text, read) in sorted(self.gauges.items()):
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {read():g}"]
        return "\n".join(out) + "\n"
