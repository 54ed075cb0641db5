"""``/metrics`` of ``clicktrail run`` after a simulated replay: every pipeline figure is
what the store holds."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from tests.exposition import Family, parse

from clicktrail.config import load_registry
from clicktrail.edge.app import build_app
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.runtime.replay import expand, replay, replay_runtime
from clicktrail.simulate import Options, simulate
from clicktrail.sinks.migrations import migrate
from clicktrail.sinks.rows import TABLE_FOR_TYPE
from clicktrail.sinks.store import Store

ROOT = Path(__file__).resolve().parents[2]
BAD_INPUT = [b"{not json", b'{"type": "teleport"}', b"[]"]


@dataclass
class Replayed:
    store: Store
    runtime: EmbeddedRuntime
    metrics: dict[str, Family]

    def count(self, sql: str) -> dict[tuple[str, ...], float]:
        db = self.store.database
        return {
            tuple(str(v) for v in row[:-1]): float(row[-1])
            for row in self.store.rows(sql.format(db=db))
        }

    def total(self, table: str) -> int:
        return int(self.store.rows(f"SELECT count() FROM {self.store.database}.{table}")[0][0])


def scrape(app: object) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as c:
            return await c.get("/metrics")

    return asyncio.run(go())


@pytest.fixture(scope="module")
def replayed(chdb_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replayed]:
    out = tmp_path_factory.mktemp("metrics") / "sim"
    simulate(Options(out=out, events=3000, days=1, seed=4, start=datetime(2026, 3, 1, tzinfo=UTC)))
    store = Store(chdb_dsn, f"metrics_{uuid.uuid4().hex[:10]}")
    migrate(store)
    runtime = replay_runtime(load_registry(out / "registry.yaml"), store)
    app = build_app(runtime, query_token="metrics-test-operator-token-0123")
    for raw in BAD_INPUT:
        runtime.submit_raw(raw, "test")
    replay(runtime, expand([str(out)]))
    answer = scrape(app)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    yield Replayed(store, runtime, parse(answer.text))
    store.command(f"DROP DATABASE IF EXISTS {store.database}")


def test_the_exposition_is_strict_text_format_with_help_and_type(replayed: Replayed) -> None:
    names = set(replayed.metrics)
    assert all(name.startswith("clicktrail_") for name in names)
    for needed in (
        "clicktrail_edge_requests_total",
        "clicktrail_intake_events_total",
        "clicktrail_stage_messages_total",
        "clicktrail_stage_records_total",
        "clicktrail_dead_letters_total",
        "clicktrail_sink_rows_written_total",
        "clicktrail_sink_rows_skipped_total",
        "clicktrail_sink_insert_seconds",
        "clicktrail_sink_buffered_rows",
        "clicktrail_pipeline_watermark_lag_seconds",
        "clicktrail_alert_deliveries_total",
        "clicktrail_model_examples_total",
    ):
        assert needed in names, needed
    assert replayed.metrics["clicktrail_sink_insert_seconds"].kind == "histogram"


def test_intake_counts_are_the_events_and_dead_letters_stored(replayed: Replayed) -> None:
    """Accepted events and imported auction-insights rows all reach the click stage; the
    simulator's resent copies stop there."""
    intake = replayed.metrics["clicktrail_intake_events_total"]
    accepted = intake.value(outcome="accepted")
    insights = replayed.metrics["clicktrail_intake_insight_rows_total"].value()
    stored = sum(replayed.total(t) for t in ("impressions", "clicks", "conversions"))
    taken = replayed.metrics["clicktrail_stage_messages_total"].value(stage="event")
    assert accepted + insights == taken
    assert insights > 0
    assert 0 < stored <= accepted < stored * 1.01
    assert intake.value(outcome="rejected") == replayed.total("dead_letters") == len(BAD_INPUT)


def test_dead_letters_by_reason_are_the_table_grouped_by_reason(replayed: Replayed) -> None:
    got = replayed.metrics["clicktrail_dead_letters_total"].by("reason")
    want = replayed.count("SELECT reason, count() FROM {db}.dead_letters GROUP BY reason")
    assert got == want
    assert sum(got.values()) == len(BAD_INPUT)


def test_stage_records_stored_are_the_rows_of_their_tables(replayed: Replayed) -> None:
    records = replayed.metrics["clicktrail_stage_records_total"]
    messages = replayed.metrics["clicktrail_stage_messages_total"]
    out = records.by("stage", "to", "type")
    assert out["event", "store", "click"] == replayed.total("clicks") > 0
    assert out["event", "store", "impression"] == replayed.total("impressions")
    assert out["event", "store", "conversion"] == replayed.total("conversions")
    assert out["event", "store", "click_scores"] == replayed.total("click_scores")
    written = replayed.metrics["clicktrail_sink_rows_written_total"].by("table")
    stored: dict[str, float] = {}
    for (_, to, kind), value in out.items():
        if to == "store":
            table = TABLE_FOR_TYPE[kind]
            stored[table] = stored.get(table, 0) + value
    assert stored == {table: n for (table,), n in written.items() if table != "alerts"}
    # what the event stage sends on is what the next stages take
    sent_user = sum(v for (stage, to, _), v in out.items() if to == "user")
    assert messages.value(stage="user") == sent_user > 0
    assert messages.value(stage="brand") == sum(
        v for (stage, to, _), v in out.items() if to == "brand"
    )
    assert messages.value(stage="label") == sum(
        v for (stage, to, _), v in out.items() if to == "label"
    )


def test_sink_rows_written_per_table_are_the_table_counts(replayed: Replayed) -> None:
    """Tables that keep every row (not the Replacing ones, which merge versions away)."""
    written = replayed.metrics["clicktrail_sink_rows_written_total"].by("table")
    engines = replayed.count("SELECT name, engine, 1 FROM system.tables WHERE database = '{db}'")
    plain = {name for name, engine in engines if engine == "MergeTree"}
    checked = [table for (table,) in written if table in plain]
    assert {"clicks", "impressions", "conversions", "fraud_verdicts", "dead_letters"} <= set(
        checked
    )
    for table in checked:
        assert written[table,] == replayed.total(table), table
    assert replayed.metrics["clicktrail_sink_rows_skipped_total"].by("table") == {}
    insert = replayed.metrics["clicktrail_sink_insert_seconds"]
    count = insert.samples["clicktrail_sink_insert_seconds_count", ()]
    assert count >= len(written)
    assert insert.samples["clicktrail_sink_insert_seconds_bucket", (("le", "+Inf"),)] == count
    assert replayed.metrics["clicktrail_sink_buffered_rows"].value() == 0


def test_alert_deliveries_by_destination_and_outcome_are_the_alerts_table(
    replayed: Replayed,
) -> None:
    got = replayed.metrics["clicktrail_alert_deliveries_total"].by("destination", "status")
    want = replayed.count(
        "SELECT destination, status, count() FROM {db}.alerts GROUP BY destination, status"
    )
    assert got == want
    assert got, "the simulated registry alerts to its log destination"


def test_model_examples_per_action_and_the_watermark(replayed: Replayed) -> None:
    examples = replayed.metrics["clicktrail_model_examples_total"].by("action", "label")
    learned = replayed.runtime.pipeline.models.labels.learned
    assert examples == {
        (action, "positive" if label else "negative"): float(n)
        for (action, label), n in learned.items()
    }
    assert sum(v for (_, label), v in examples.items() if label == "negative") > 0
    lag = replayed.metrics["clicktrail_pipeline_watermark_lag_seconds"].value()
    mark = replayed.metrics["clicktrail_pipeline_watermark_seconds"].value()
    assert mark >= datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    assert lag == pytest.approx(datetime.now(UTC).timestamp() - mark, abs=60)


def test_the_grafana_business_panels_answer_over_the_replayed_store(replayed: Replayed) -> None:
    """Each ClickHouse panel's SQL, its time filter covering everything, runs on the store;
    the spend panel sums to the media cost of the stored events."""
    dashboard = json.loads(
        (ROOT / "deploy" / "grafana" / "dashboards" / "clicktrail.json").read_text()
    )
    answers: dict[str, list[tuple[object, ...]]] = {}
    for panel in dashboard["panels"]:
        if panel.get("datasource", {}).get("uid") != "clickhouse":
            continue
        sql = panel["targets"][0]["rawSql"]
        sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 >= toDateTime(0)", sql)
        sql = sql.replace("clicktrail.", f"{replayed.store.database}.")
        assert "$" not in sql, sql
        answers[panel["title"]] = replayed.store.rows(sql)
    assert all(answers.values()), answers
    db = replayed.store.database
    cost = replayed.store.rows(
        f"SELECT (SELECT sum(ifNull(cost, 0)) FROM {db}.clicks)"
        f" + (SELECT sum(ifNull(cost, 0)) FROM {db}.impressions)"
    )[0][0]
    assert sum(row[1] for row in answers["Spend"]) == pytest.approx(float(cost))
    actions = {row[1] for row in answers["Conversions per action"]}
    assert actions <= set(replayed.runtime.registry.actions) and actions
    shares = [row[1] for row in answers["Flagged share per partner"] if row[1] is not None]
    assert shares and all(0 <= share <= 1 for share in shares)
