"""The ClickHouse store on a real engine (chDB): migrations, idempotent batches, read-only SQL."""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clicktrail.contracts import EVENT_ADAPTER, SinkBackpressure
from clicktrail.sinks.clickhouse import ClickHouseSink
from clicktrail.sinks.migrations import discover, migrate
from clicktrail.sinks.store import QueryRefused, Store, StoreError, resolve_dsn

TABLES = {
    "impressions",
    "clicks",
    "conversions",
    "attributed_conversions",
    "fraud_verdicts",
    "brand_conflicts",
    "alerts",
    "model_quality",
    "agg_hourly",
    "dead_letters",
}


MIGRATIONS = Path(__file__).parents[2] / "schemas" / "clickhouse"


def click(n: int) -> object:
    return EVENT_ADAPTER.validate_python(
        {
            "type": "click",
            "event_id": f"e{n}",
            "ts": 1_772_359_200_000 + n,
            "click_id": f"clk-{n}",
            "campaign_id": "cmp",
            "partner_id": f"p{n % 3}",
            "sub_ids": {"sub1": "x"},
            "cost": 0.25,
            "user": {"country": "FR", "segments": ["a"]},
        }
    )


def add_clicks(sink: ClickHouseSink, numbers: range, src: str = "test/0") -> None:
    for n in numbers:
        sink.add(click(n), src, n + 1)  # type: ignore[arg-type]


def count(store: Store, table: str) -> int:
    return int(store.rows(f"SELECT count() FROM {store.database}.{table}")[0][0])


def test_migrate_creates_every_public_table_and_is_idempotent(store: Store) -> None:
    tables = {r[0] for r in store.rows(f"SHOW TABLES FROM {store.database}")}
    assert tables >= TABLES
    again = migrate(store)
    assert again.applied == [] and again.changed == []
    assert len(again.skipped) >= 3


def test_every_column_is_documented(store: Store) -> None:
    undocumented = store.rows(
        "SELECT table, name FROM system.columns WHERE database = {db:String} AND comment = '' "
        "AND table IN (SELECT name FROM system.tables WHERE database = {db:String} "
        "AND engine LIKE '%MergeTree' AND name != 'schema_migrations')",
        {"db": store.database},
    )
    assert undocumented == []


def test_sink_batches_and_writes_typed_rows(store: Store) -> None:
    sink = ClickHouseSink(store, max_rows=100, max_seconds=60)
    add_clicks(sink, range(250))
    assert count(store, "clicks") == 0, "add only buffers"
    assert sink.due()
    assert sink.flush() == 250
    assert count(store, "clicks") == 250
    row = store.rows(
        f"SELECT partner_id, sub_ids, cost, country, segments, ts FROM {store.database}.clicks "
        "WHERE event_id = 'e4'"
    )[0]
    assert row[:5] == ("p1", {"sub1": "x"}, pytest.approx(0.25), "FR", ["a"])
    assert row[5].astimezone(UTC) == datetime(2026, 3, 1, 10, 0, 0, 4000, tzinfo=UTC)


def test_redelivered_messages_are_not_written_twice(store: Store) -> None:
    """A restarted worker re-reads from its last commit: rows already stored are skipped."""
    first = ClickHouseSink(store)
    add_clicks(first, range(50))
    first.flush()
    restarted = ClickHouseSink(store)
    add_clicks(restarted, range(30, 80))  # 30..49 again, then 50..79 new
    assert restarted.rows_skipped == 20
    restarted.flush()
    assert count(store, "clicks") == 80
    other_source = ClickHouseSink(store)
    add_clicks(other_source, range(10), src="test/1")
    other_source.flush()
    assert count(store, "clicks") == 90


def test_a_retried_insert_is_deduplicated_by_token(store: Store) -> None:
    for _ in range(2):
        sink = ClickHouseSink(store)
        sink._written[("clicks", "test/0")] = 0  # as if the first insert's result was lost
        add_clicks(sink, range(50))
        sink.flush()
    assert count(store, "clicks") == 50


def test_time_bound_makes_a_small_batch_due(store: Store) -> None:
    now = [100.0]
    sink = ClickHouseSink(store, max_rows=1000, max_seconds=1.0, clock=lambda: now[0])
    assert not sink.due(), "nothing buffered"
    sink.add(click(1), "test/0", 1)  # type: ignore[arg-type]
    assert not sink.due(), "small and fresh"
    now[0] += 1.0
    assert sink.due(), "small but old enough"
    sink.flush()
    assert not sink.due()


def test_under_a_backlog_batches_are_written_by_size(store: Store) -> None:
    """More input waiting: a small batch waits for company, up to the backlog bound."""
    now = [100.0]
    sink = ClickHouseSink(
        store, max_rows=100, max_seconds=1.0, max_backlog_seconds=10.0, clock=lambda: now[0]
    )
    sink.add(click(1), "test/0", 1)  # type: ignore[arg-type]
    now[0] += 5.0
    assert sink.due(idle=True) and not sink.due(idle=False)
    now[0] += 5.0
    assert sink.due(idle=False), "a backlog does not hold rows back forever"
    sink.flush()
    add_clicks(sink, range(2, 102))
    assert sink.due(idle=False), "full"


def test_backpressure_instead_of_unbounded_memory(store: Store) -> None:
    sink = ClickHouseSink(store, max_rows=10, max_buffered=10)
    add_clicks(sink, range(10))
    with pytest.raises(SinkBackpressure):
        sink.add(click(11), "test/0", 12)  # type: ignore[arg-type]


def test_failed_insert_keeps_rows_for_the_next_flush(store: Store) -> None:
    sink = ClickHouseSink(store)
    add_clicks(sink, range(5))
    store.command(f"RENAME TABLE {store.database}.clicks TO {store.database}.clicks_away")
    with pytest.raises(StoreError):
        sink.flush()
    assert sink.buffered == 5
    store.command(f"RENAME TABLE {store.database}.clicks_away TO {store.database}.clicks")
    assert sink.flush() == 5
    assert count(store, "clicks") == 5


def test_analyst_sql_is_read_only(store: Store) -> None:
    out = store.read_only(f"SELECT count() AS n FROM {store.database}.clicks", "csv")
    assert out.decode().splitlines() == ['"n"', "0"]
    for statement in (
        f"DROP TABLE {store.database}.clicks",
        f"INSERT INTO {store.database}.dead_letters (reason) VALUES ('x')",
    ):
        with pytest.raises(QueryRefused, match="only SELECT") as refused:
            store.read_only(statement)
        assert refused.value.reason == "not_a_select"
    assert store.rows(f"SELECT count() FROM {store.database}.dead_letters") == [(0,)]


@pytest.mark.parametrize("dsn", ["mysql://x", "ftp://host", "chdb://"])
def test_unsupported_dsns_are_explained(dsn: str) -> None:
    with pytest.raises(StoreError, match="chdb"):
        resolve_dsn(dsn)


def test_unreachable_server_is_one_clear_error() -> None:
    with pytest.raises(StoreError, match=r"cannot open store http://127\.0\.0\.1:9"):
        Store("http://127.0.0.1:9")


def test_the_flagged_traffic_migration_fills_the_rollups_from_rows_already_stored(
    chdb_dsn: str, tmp_path: Path
) -> None:
    """A database from before 007: its fraud-rejected conversions reach the new columns
    (and, with 010, the suspicious ones their approved and payout columns)."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = Store(chdb_dsn, database)
    try:
        for migration in discover():
            if migration.version < 7:
                (tmp_path / f"{migration.version:03d}_{migration.name}.sql").write_text(
                    migration.sql, encoding="utf-8"
                )
        migrate(store, tmp_path)
        one = {
            "action": "install",
            "status": "pending",
            "payout": 2,
            "currency": "EUR",
            "conversion_ts": datetime(2026, 3, 1, 10, 5, tzinfo=UTC),
            "touch": "click",
            "partner_id": "p",
            "weight": 1.0,
            "fraud_action": "reject",
            "version": 1,
            "previous_status": "",
            "previous_payout": 0,
            "src": "s",
        }
        rows = [
            {**one, "conversion_id": "v1", "src_offset": 1},
            {**one, "conversion_id": "v1", "src_offset": 2, "status": "approved", "version": 2,
             "previous_status": "pending", "previous_payout": 2},
            {**one, "conversion_id": "v2", "src_offset": 3, "fraud_action": "ok"},
            {**one, "conversion_id": "v3", "src_offset": 4, "fraud_action": "suspicious",
             "status": "approved", "payout": 5},
        ]  # fmt: skip
        store.insert("attributed_conversions", [tuple(r.values()) for r in rows], list(rows[0]))
        applied = [r.split("_")[0] for r in migrate(store).applied]
        later = sorted(p.name.split("_")[0] for p in MIGRATIONS.glob("*.sql") if p.name >= "007")
        assert applied == later and later[:6] == ["007", "008", "009", "010", "011", "012"]
        migrate(store)
        rollup = store.rows(
            "SELECT sum(conversions), sum(approved), toFloat64(sum(payout)), "
            "sum(fraud_rejected_conversions), sum(fraud_rejected_approved), "
            "toFloat64(sum(fraud_rejected_payout)), sum(fraud_suspicious_conversions), "
            "sum(fraud_suspicious_approved), toFloat64(sum(fraud_suspicious_payout)) "
            f"FROM {database}.agg_hourly"
        )
        assert rollup == [(3.0, 2.0, 9.0, 1.0, 1.0, 2.0, 1.0, 1.0, 5.0)]
        reasons = store.rows(f"SELECT DISTINCT fraud_reason FROM {database}.attributed_latest")
        assert reasons == [("",)]
    finally:
        store.command(f"DROP DATABASE IF EXISTS {database}")


IMPRESSION_COLUMNS = ["event_id", "ts", "impression_id", "campaign_id", "partner_id", "channel",
                      "src", "src_offset"]  # fmt: skip
IMPRESSION = ("e1", datetime(2026, 3, 1, 10, tzinfo=UTC), "m1", "c", "p", "display", "s", 1)


def counted(store: Store) -> list[tuple[Any, ...]]:
    db = store.database
    return store.rows(
        f"SELECT (SELECT count() FROM {db}.impressions), "
        f"(SELECT sum(impressions) FROM {db}.agg_hourly)"
    )


def test_a_retried_batch_is_counted_once_in_the_rollups_too(store: Store) -> None:
    for _ in range(3):  # the sink retries a batch whose acknowledgement it never saw
        store.insert("impressions", [IMPRESSION], IMPRESSION_COLUMNS, dedup_token="T1")
    assert counted(store) == [(1, 1)]


def test_a_batch_cut_between_table_and_view_reaches_the_rollups_on_retry(store: Store) -> None:
    """A worker killed after the raw part was written but before the view's: the retry
    is a duplicate for the table and must still reach agg_hourly, once."""
    db = store.database
    view = store.rows(
        f"SELECT create_table_query FROM system.tables "
        f"WHERE database = '{db}' AND name = 'agg_hourly_impressions'"
    )[0][0]
    store.command(f"DROP VIEW {db}.agg_hourly_impressions")
    store.insert("impressions", [IMPRESSION], IMPRESSION_COLUMNS, dedup_token="T1")
    store.command(view)
    for _ in range(2):
        store.insert("impressions", [IMPRESSION], IMPRESSION_COLUMNS, dedup_token="T1")
    assert counted(store) == [(1, 1)]


class _RecordingStore(Store):
    """The real store, remembering which messages each insert carried."""

    inserts: list[set[tuple[str, int]]]

    def insert(
        self,
        table: str,
        rows: Sequence[tuple[Any, ...]],
        columns: Sequence[str],
        dedup_token: str | None = None,
    ) -> None:
        super().insert(table, rows, columns, dedup_token)
        if "src_offset" not in columns:  # the migrations' own bookkeeping
            return
        src, offset = columns.index("src"), columns.index("src_offset")
        self.inserts.append({(row[src], row[offset]) for row in rows})


@pytest.mark.parametrize("parts", [1, 3], ids=["one add_all", "three inside together"])
def test_a_flush_on_another_thread_never_splits_or_loses_a_message(
    chdb_dsn: str, parts: int
) -> None:
    """The Faust worker flushes in an executor thread while its agents go on adding rows:
    a flush must take each message whole, or its later rows fall below the high-water
    mark it raises and are dropped; and after a restart that replays every message, each
    row is stored exactly once."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = _RecordingStore(chdb_dsn, database)
    store.inserts = []
    migrate(store)
    messages, per_message = 200, 25

    def message(m: int) -> list[Any]:
        return [click(m * per_message + i) for i in range(per_message)]

    sink = ClickHouseSink(store)
    stop = threading.Event()

    def flush_until_stopped() -> None:
        while not stop.is_set():
            sink.flush()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, as a busy worker does
    flusher = threading.Thread(target=flush_until_stopped)
    flusher.start()
    try:
        for m in range(messages):
            rows = message(m)
            with sink.together():
                for part in range(parts):
                    sink.add_all(rows[part::parts], "clicks/0", m)
    finally:
        stop.set()
        flusher.join()
        sys.setswitchinterval(interval)
    sink.flush()
    try:
        split = [
            m
            for m in range(messages)
            if sum(("clicks/0", m) in carried for carried in store.inserts) > 1
        ]
        assert split == [], "rows of one message went into two inserts"
        assert sink.rows_skipped == 0, "rows dropped that were never stored"
        restarted = ClickHouseSink(Store(chdb_dsn, database))
        for m in range(messages):
            restarted.add_all(message(m), "clicks/0", m)
        restarted.flush()
        stored = store.rows(f"SELECT event_id, count() FROM {database}.clicks GROUP BY event_id")
        assert len(stored) == messages * per_message, "rows lost"
        assert {n for _, n in stored} == {1}, "rows stored twice"
    finally:
        store.command(f"DROP DATABASE IF EXISTS {database}")
