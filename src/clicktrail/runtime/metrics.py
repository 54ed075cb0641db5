"""What the pipeline did, for ``/metrics``: counted in the runtimes, rendered on scrape.

Both runtimes count the same way, where they call the stages of
:class:`~clicktrail.runtime.pipeline.Pipeline`: messages each stage took, and the
records it handed on, by destination (``store``: rows for ClickHouse; ``user``,
``brand``, ``label``: the next stage) and record type. Counting is a ``Counter``
increment per record; :func:`expose` registers collectors that read these counters,
the sink's, the alerting's and the models' when the endpoint is scraped.

Stages: ``event`` (the click stage: impressions, clicks, conversions, auction-insights
rows), ``user``, ``brand``, ``label`` (attributed conversions back at their click),
``timer`` (what the watermark releases: conversions whose wait is over, partner
windows, model quality rows, final conflicts) and ``dead_letter``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel

from clicktrail.processors.models.labels import DelayedLabels
from clicktrail.processors.watermark import BEGINNING, EventClock
from clicktrail.runtime.gate import IntakeStats
from clicktrail.sinks.alerts import AlertService
from clicktrail.sinks.clickhouse import ClickHouseSink
from clicktrail.telemetry import MetricsRegistry, counter, family, histogram

_BEGINNING = BEGINNING.timestamp()


class StageCounts:
    """Messages in and records out per stage, and dead letters by reason."""

    def __init__(self) -> None:
        self.taken: Counter[str] = Counter()
        self.out: Counter[tuple[str, str, str]] = Counter()
        self.dead_letters: Counter[str] = Counter()

    def took(self, stage: str, messages: int = 1) -> None:
        self.taken[stage] += messages

    def sent(self, stage: str, to: str, records: Iterable[BaseModel]) -> None:
        out = self.out
        for record in records:
            out[stage, to, getattr(record, "type", "")] += 1

    def dead(self, reason: str) -> None:
        self.dead_letters[reason] += 1


def expose(
    registry: MetricsRegistry,
    *,
    counts: StageCounts,
    sink: ClickHouseSink,
    alerts: AlertService,
    labels: DelayedLabels,
    clock: EventClock,
    intake: IntakeStats | None = None,
    wall: Callable[[], float] = time.time,
) -> None:
    """Register the pipeline's families on ``registry`` (the edge's under ``clicktrail
    run``, a worker's own otherwise). ``intake``: the gate's counts, where this process
    validates input (the embedded runtime; a worker reads what an edge validated)."""

    def watermark_lag() -> float | None:
        mark = clock.watermark_seconds()
        return None if mark <= _BEGINNING else wall() - mark

    registry.gauge(
        "clicktrail_pipeline_watermark_seconds",
        "Event time the pipeline has reached (Unix seconds).",
        clock.watermark_seconds,
    )
    registry.gauge(
        "clicktrail_pipeline_watermark_delay_seconds",
        "How far the watermark trails the latest trusted event time.",
        clock.delay_seconds,
    )
    registry.gauge(
        "clicktrail_pipeline_watermark_lag_seconds",
        "Wall clock minus the event-time watermark (absent before the first event).",
        watermark_lag,
    )
    registry.gauge(
        "clicktrail_pipeline_late_events",
        "Events behind the watermark so far (processed all the same).",
        lambda: clock.stats.late,
    )
    registry.gauge(
        "clicktrail_pipeline_early_events",
        "Events too far ahead of their input to move its clock alone, so far.",
        lambda: clock.stats.early,
    )
    registry.gauge(
        "clicktrail_sink_buffered_rows",
        "Rows waiting in the ClickHouse sink's buffer.",
        lambda: sink.buffered,
    )

    def families() -> list[str]:
        out: list[str] = []
        out += counter(
            "clicktrail_stage_messages_total",
            "Messages a pipeline stage took in.",
            ("stage",),
            {(stage,): n for stage, n in dict(counts.taken).items()},
        )
        out += counter(
            "clicktrail_stage_records_total",
            "Records a stage handed on, by destination (store or the next stage) and type.",
            ("stage", "to", "type"),
            dict(counts.out),
        )
        out += counter(
            "clicktrail_dead_letters_total",
            "Dead letters stored, by reason.",
            ("reason",),
            {(reason,): n for reason, n in dict(counts.dead_letters).items()},
        )
        out += counter(
            "clicktrail_sink_rows_written_total",
            "Rows inserted into ClickHouse, per table.",
            ("table",),
            {(table,): n for table, n in dict(sink.written).items()},
        )
        out += counter(
            "clicktrail_sink_rows_skipped_total",
            "Rows dropped as already stored (a redelivered or replayed message), per table.",
            ("table",),
            {(table,): n for table, n in dict(sink.skipped).items()},
        )
        out += counter(
            "clicktrail_sink_insert_failures_total",
            "Inserts ClickHouse refused or did not answer (retried later).",
            (),
            {(): sink.insert_failures},
        )
        out += histogram(
            "clicktrail_sink_insert_seconds",
            "Time of one insert into one ClickHouse table.",
            sink.insert_seconds,
        )
        out += counter(
            "clicktrail_alert_deliveries_total",
            "Alert delivery attempts finished, by destination and outcome.",
            ("destination", "status"),
            dict(alerts.outcomes),
        )
        out += counter(
            "clicktrail_model_examples_total",
            "Examples the per-action models learned, by action and label.",
            ("action", "label"),
            {
                (action, "positive" if label else "negative"): n
                for (action, label), n in dict(labels.learned).items()
            },
        )
        return out

    if intake is not None:
        expose_intake(registry, intake)
    registry.collect(families)


def expose_intake(registry: MetricsRegistry, intake: IntakeStats) -> None:
    """The intake gate's counts: where input is validated (``clicktrail run``, and the
    scale-out edge, whose workers only see what it accepted)."""

    def families() -> list[str]:
        out: list[str] = []
        out += counter(
            "clicktrail_intake_events_total",
            "Input validated by the intake gate, accepted or rejected (dead-lettered).",
            ("outcome",),
            {("accepted",): intake.accepted, ("rejected",): intake.dead_lettered},
        )
        out += counter(
            "clicktrail_intake_insight_rows_total",
            "Auction-insights rows imported from advertisers' exports.",
            (),
            {(): intake.insight_rows},
        )
        return out

    registry.collect(families)


def consumer_lag(consumer: Any) -> list[str]:
    """Messages behind the log end per topic, over this worker's assigned partitions: the
    broker's high watermark (as the consumer last fetched it, no request) minus the offset
    Faust committed. Partitions with neither known yet (just assigned, a changelog read for
    recovery) are left out. Reads Faust's ``_committed_offset``, which it keeps per
    partition for its own commits; without it the family has no samples."""
    lag: Counter[str] = Counter()
    committed = getattr(consumer, "_committed_offset", None) or {}
    try:
        assigned = consumer.assignment()
    except Exception:  # not started, or between generations of a rebalance
        assigned = set()
    for tp in assigned:
        done = committed.get(tp)
        try:
            high = consumer.highwater(tp)
        except Exception:  # no fetch from this partition yet
            continue
        if high is None or done is None:
            continue
        lag[tp.topic] += max(0, int(high) - int(done))
    return family(
        "clicktrail_consumer_lag_messages",
        "gauge",
        "Messages between the committed offset and the log end, per topic (this worker's "
        "partitions).",
        ("topic",),
        {(topic,): n for topic, n in lag.items()},
    )
