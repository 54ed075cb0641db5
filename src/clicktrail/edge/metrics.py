"""Edge metrics in the Prometheus text format, kept in plain dicts.

Counting is a dict increment on the request path; rendering happens only when
``/metrics`` is scraped. Labels come from fixed sets (endpoint names, reason
codes, status codes), so the series count stays bounded.
"""

from __future__ import annotations

from collections import Counter

from clicktrail.telemetry import Gauge, Histogram, MetricsRegistry, escape

PRODUCE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
__all__ = ["PRODUCE_BUCKETS", "EdgeMetrics", "Gauge", "Histogram"]


class EdgeMetrics(MetricsRegistry):
    """The edge's own counters first, then every gauge and collector registered (the
    embedded runtime registers the pipeline's: :mod:`clicktrail.runtime.metrics`)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.rejects: Counter[tuple[str, str]] = Counter()
        self.accepted: Counter[str] = Counter()
        self.duplicates = 0
        self.produce = Histogram(PRODUCE_BUCKETS)
        self.durable = Histogram(PRODUCE_BUCKETS)

    def request(self, endpoint: str, status: int) -> None:
        self.requests[endpoint, status] += 1

    def reject(self, endpoint: str, reason: str) -> None:
        self.rejects[endpoint, reason] += 1

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
                f'reason="{escape(reason)}"}} {count}'
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
            "# HELP clicktrail_edge_durable_seconds Waiting before an answer until what it "
            "acknowledges is durable (embedded: event-log fsync; Kafka: broker ack or spool).",
            "# TYPE clicktrail_edge_durable_seconds histogram",
            *self.durable.render("clicktrail_edge_durable_seconds"),
        ]
        return "\n".join([*out, *self.lines()]) + "\n"
