"""The cluster layout (``clicktrail migrate --cluster NAME``): every generated statement
parsed by ClickHouse's own parser (``EXPLAIN AST`` in chDB), and its shape checked
against the single-server migrations it comes from. No cluster runs here: chDB has no
Keeper and refuses ``ON CLUSTER`` queries, so what is checked is that ClickHouse parses
each statement and that the layout is the one described in ``sinks/cluster.py``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from clicktrail.cli.main import main
from clicktrail.sinks import cluster
from clicktrail.sinks.cluster import (
    ClusterLayoutError,
    bookkeeping,
    migrate_cluster,
    record,
    rewrite,
    script,
)
from clicktrail.sinks.migrations import Migration, discover
from clicktrail.sinks.store import Store, StoreError

DB = "clicktrail"
CLUSTER = "clicktrail"
MERGE_TREES = ("MergeTree", "ReplacingMergeTree", "SummingMergeTree", "AggregatingMergeTree")


@pytest.fixture(scope="module")
def parser(chdb_dsn: str) -> Iterator[Store]:
    """The session's embedded ClickHouse, used for its parser only."""
    store = Store(chdb_dsn, "default")
    yield store
    store.close()


def explain_ast(store: Store, statement: str) -> str:
    """ClickHouse's syntax tree of ``statement``; a syntax error raises."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    try:
        tree = bytes(store.client.raw_query(f"EXPLAIN AST {statement}", fmt="TSVRaw"))
    except ClickHouseError as error:
        raise StoreError(str(error).strip().splitlines()[0]) from None
    return tree.decode()


def canonical(store: Store, statement: str) -> str:
    """The statement as ClickHouse's parser formats it, on one line."""
    rows = store.rows("SELECT formatQuerySingleLine({sql:String})", {"sql": statement})
    return str(rows[0][0])


def all_statements() -> list[str]:
    statements = list(bookkeeping(DB, CLUSTER))
    for item in rewrite(discover(), DB, CLUSTER):
        statements += [*item.statements, record(item.migration, DB)]
    return statements


def single_server_tables() -> dict[str, tuple[str, str, str]]:
    """name -> (engine, engine arguments, ORDER BY) of every table the migrations create,
    read from the DDL files with patterns of their own (not the layout's code)."""
    tables = {}
    for migration in discover():
        for statement in migration.statements(DB):
            head = re.match(rf"CREATE TABLE IF NOT EXISTS {DB}\.(\w+)", statement)
            if head is None:
                continue
            engine = re.search(r"^ENGINE = (\w+)(?:\((.*)\))?$", statement, re.M)
            order = re.search(r"^ORDER BY \(?(.*?)\)?$", statement, re.M)
            assert engine and order, head.group(1)
            tables[head.group(1)] = (engine[1], engine[2] or "", order[1])
    return tables


# ------------------------------------------------------------------ ClickHouse's parser


def test_every_generated_statement_passes_clickhouses_parser(parser: Store) -> None:
    statements = all_statements()
    assert len(statements) > 60
    refused = {}
    for statement in statements:
        try:
            tree = explain_ast(parser, statement)
        except StoreError as error:
            refused[statement[:80]] = str(error)
            continue
        assert re.match(r"(CreateQuery|AlterQuery|DropQuery|InsertQuery)\b", tree), tree[:200]
    assert refused == {}


def test_the_parser_check_rejects_a_broken_statement(parser: Store) -> None:
    """The check can fail: a generated statement with one bracket dropped, or a keyword
    misspelled, is refused by ClickHouse's parser."""
    statement = next(s for s in all_statements() if "ReplicatedReplacingMergeTree(" in s)
    explain_ast(parser, statement)
    broken = statement.replace("'{replica}', ", "'{replica}' ", 1)
    with pytest.raises(StoreError, match="Syntax error"):
        explain_ast(parser, broken)
    with pytest.raises(StoreError, match="Syntax error"):
        explain_ast(parser, statement.replace(" ON CLUSTER ", " ON CLUSTR ", 1))
    with pytest.raises(StoreError, match="Syntax error"):
        explain_ast(parser, statement.replace("ENGINE =", "ENGIN =", 1))


def test_every_ddl_statement_runs_on_the_whole_cluster_and_inserts_run_once(
    parser: Store,
) -> None:
    for statement in all_statements():
        text = canonical(parser, statement)
        if text.startswith("INSERT"):
            assert " ON CLUSTER " not in text
            continue
        assert re.match(r"(CREATE|ALTER|DROP) ", text), text[:80]
        assert f" ON CLUSTER {CLUSTER} " in f"{text} ", text[:120]


# ------------------------------------------------------------------ the layout's shape


def _creates(store: Store) -> dict[str, str]:
    """name -> canonical CREATE TABLE statement, for every table of the layout."""
    found = {}
    for statement in all_statements():
        text = canonical(store, statement)
        head = re.match(rf"CREATE TABLE IF NOT EXISTS {DB}\.(\w+) ", text)
        if head:
            assert head[1] not in found, f"{head[1]} created twice"
            found[head[1]] = text
    return found


def test_every_table_has_a_replicated_local_twin_and_a_distributed_front(parser: Store) -> None:
    creates = _creates(parser)
    tables = single_server_tables()
    assert len(tables) >= 13
    assert set(creates) == {"schema_migrations"} | set(tables) | {f"{t}_local" for t in tables}
    for name, (engine, arguments, order_by) in tables.items():
        assert engine in MERGE_TREES, name
        local = creates[f"{name}_local"]
        found = re.search(r" ENGINE = (\w+)\('([^']*)', '([^']*)'(?:, (.*?))?\)", local)
        assert found, local[-300:]
        assert found[1] == f"Replicated{engine}"
        assert found[2] == f"/clickhouse/tables/{{shard}}/{DB}/{name}_local"
        assert found[3] == "{replica}"
        assert (found[4] or "") == arguments
        assert f" ORDER BY ({order_by})" in local or f" ORDER BY {order_by}" in local
        assert "non_replicated_deduplication_window" not in local
        front = creates[name]
        assert front.startswith(
            f"CREATE TABLE IF NOT EXISTS {DB}.{name} ON CLUSTER {CLUSTER} AS {DB}.{name}_local "
        )
        # rows with one sort key (what Replacing/SummingMergeTree collapse) share a shard,
        # and a retried batch splits the same way: no rand()
        assert front.endswith(
            f"ENGINE = Distributed({CLUSTER}, {DB}, {name}_local, cityHash64({order_by}))"
        ), front


def test_no_table_is_left_unreplicated(parser: Store) -> None:
    for name, text in _creates(parser).items():
        engine = re.search(r" ENGINE = (\w+)", text)
        assert engine, name
        assert engine[1] == "Distributed" or engine[1].startswith("Replicated"), name
        if engine[1] == "Distributed":
            assert not name.endswith("_local")
        else:
            assert name.endswith("_local") or name == "schema_migrations"


def test_the_deduplication_window_is_kept_for_replicated_tables() -> None:
    tables_with_window = set()
    altered = set()
    for migration in discover():
        for statement in migration.statements(DB):
            if "non_replicated_deduplication_window = 10000" in statement:
                name = re.search(rf"{DB}\.(\w+)", statement)
                assert name
                (altered if statement.startswith("ALTER") else tables_with_window).add(name[1])
    assert tables_with_window and altered == {"agg_hourly"}
    statements = all_statements()
    for name in tables_with_window:
        [create] = [
            s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS {DB}.{name}_local ")
        ]
        assert create.endswith("SETTINGS replicated_deduplication_window = 10000"), name
    text = "\n".join(statements)
    assert (
        f"ALTER TABLE {DB}.agg_hourly_local ON CLUSTER {CLUSTER}\n"
        "    MODIFY SETTING replicated_deduplication_window = 10000"
    ) in text
    assert f"ALTER TABLE {DB}.agg_hourly ON CLUSTER {CLUSTER}\n    MODIFY SETTING" not in text


def test_materialized_views_read_and_write_local_tables(parser: Store) -> None:
    views = 0
    for statement in all_statements():
        text = canonical(parser, statement)
        if not text.startswith("CREATE MATERIALIZED VIEW"):
            continue
        views += 1
        target = re.search(rf" TO {DB}\.(\w+) AS ", text)
        sources = re.findall(rf"\bFROM {DB}\.(\w+)", text)
        assert target and target[1] == "agg_hourly_local", text[:120]
        assert sources and all(s.endswith("_local") for s in sources), text
    expected = sum(
        s.startswith("CREATE MATERIALIZED VIEW") for m in discover() for s in m.statements(DB)
    )
    assert views == expected == 7  # 3 in 003, 1 in 007, 2 again in 008, 1 in 010


def test_plain_views_read_the_distributed_tables(parser: Store) -> None:
    views = 0
    for statement in all_statements():
        text = canonical(parser, statement)
        if re.match(r"CREATE (OR REPLACE )?VIEW ", text):
            views += 1
            assert "_local" not in text, text[:120]
    assert views >= 14


def test_alters_reach_the_local_tables_and_column_changes_the_fronts_too() -> None:
    for item in rewrite(discover(), DB, CLUSTER):
        originals = [s for s in item.migration.statements(DB) if s.startswith("ALTER")]
        alters = [s for s in item.statements if s.startswith("ALTER")]
        for original in originals:
            name = re.match(rf"ALTER TABLE {DB}\.(\w+)", original)
            assert name
            local = [s for s in alters if s.startswith(f"ALTER TABLE {DB}.{name[1]}_local ")]
            front = [s for s in alters if s.startswith(f"ALTER TABLE {DB}.{name[1]} ")]
            assert len(local) == 1, original
            changes_columns = re.search(r"\b(ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN\b", original)
            assert len(front) == (1 if changes_columns else 0), original


def test_backfills_run_once_in_the_foreground_through_the_distributed_table() -> None:
    inserts = [
        s for s in all_statements() if s.startswith("INSERT") and "schema_migrations" not in s
    ]
    assert len(inserts) == 2  # migrations 007 and 010
    for statement in inserts:
        assert statement.startswith(f"INSERT INTO {DB}.agg_hourly (")
        assert "SETTINGS distributed_foreground_insert = 1\nSELECT" in statement


def test_schema_migrations_is_one_replicated_table_on_every_node() -> None:
    create = bookkeeping(DB, CLUSTER)[1]
    assert (
        f"ReplicatedMergeTree('/clickhouse/tables/all_shards/{DB}/schema_migrations', "
        "'{shard}-{replica}')"
    ) in create
    assert "{shard}/" not in create  # one Keeper path for the whole cluster


def test_the_rewrite_leaves_string_literals_alone() -> None:
    migration = Migration(
        1,
        "literals",
        "CREATE TABLE IF NOT EXISTS {db}.t (a String COMMENT 'ENGINE = Memory, {db}.t (x)')\n"
        "ENGINE = MergeTree ORDER BY a;\n"
        "CREATE TABLE IF NOT EXISTS {db}.u (a String) ENGINE = MergeTree ORDER BY a;\n"
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.v TO {db}.u AS\n"
        "SELECT concat(a, ' from {db}.u') AS a FROM {db}.t;",
    )
    [item] = rewrite([migration], "d", "c")
    local, front, _u_local, _u, view = item.statements
    assert "COMMENT 'ENGINE = Memory, d.t (x)')" in local
    assert local.endswith(
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/d/t_local', "
        "'{replica}') ORDER BY a"
    )
    assert front.endswith("Distributed(c, d, t_local, cityHash64(a))")
    assert view.endswith("SELECT concat(a, ' from d.u') AS a FROM d.t_local")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE TABLE IF NOT EXISTS {db}.t (a Int8) ENGINE = Memory;", "no replicated form"),
        (
            "CREATE TABLE IF NOT EXISTS {db}.t (a Int8) ENGINE = MergeTree ORDER BY tuple();",
            "empty ORDER BY",
        ),
        ("ALTER TABLE {db}.nowhere ADD COLUMN b Int8;", "no such table"),
        (
            "CREATE TABLE IF NOT EXISTS {db}.t (a Int8) ENGINE = MergeTree ORDER BY a;\n"
            "CREATE TABLE IF NOT EXISTS {db}.u (a Int8) ENGINE = MergeTree ORDER BY a;\n"
            "CREATE MATERIALIZED VIEW {db}.v TO {db}.u AS\n"
            "SELECT a FROM {db}.t JOIN {db}.u USING a;",
            "reads t, u",
        ),
        (
            "CREATE TABLE IF NOT EXISTS {db}.t (a Int8) ENGINE = MergeTree ORDER BY a;\n"
            "CREATE MATERIALIZED VIEW {db}.v ENGINE = MergeTree ORDER BY a AS\n"
            "SELECT a FROM {db}.t;",
            "no cluster layout",
        ),
        ("TRUNCATE TABLE {db}.t;", "no cluster layout"),
        (
            "CREATE TABLE IF NOT EXISTS other.t (a Int8) ENGINE = MergeTree ORDER BY a;",
            "not in database",
        ),
    ],
)
def test_statements_the_layout_does_not_know_are_refused(sql: str, message: str) -> None:
    with pytest.raises(ClusterLayoutError, match=message) as raised:
        rewrite([Migration(14, "new", sql)], "d", "c")
    assert str(raised.value).startswith("014_new: ")


def test_a_cluster_name_is_an_identifier() -> None:
    with pytest.raises(ClusterLayoutError, match="letters, digits and underscores"):
        rewrite(discover(), DB, "two words")


# ------------------------------------------------------------------ the CLI


def _printed_statements(text: str) -> list[str]:
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


def test_migrate_cluster_print_needs_no_server_and_prints_every_statement(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["migrate", "--cluster", CLUSTER, "--print", "--store", f"chdb://{tmp_path}/x"])
    out = capsys.readouterr().out
    assert code == 0
    assert _printed_statements(out) == all_statements()
    assert out == script(DB, CLUSTER)
    assert not (tmp_path / "x").exists(), "--print opened the store"
    assert "-- 013_reconciliation" in out


def test_migrate_print_without_a_cluster_prints_the_single_server_ddl(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["migrate", "--print", "--database", "analytics"]) == 0
    out = capsys.readouterr().out
    assert "ON CLUSTER" not in out and "Distributed" not in out
    assert "CREATE TABLE IF NOT EXISTS analytics.impressions\n(" in out
    assert out.count("INSERT INTO analytics.schema_migrations") == len(discover())


def test_migrate_cluster_refuses_a_bad_name_and_an_embedded_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["migrate", "--cluster", "a-b", "--print"]) == 2
    assert "letters, digits and underscores" in capsys.readouterr().err
    store = f"chdb://{tmp_path}/x"
    assert main(["migrate", "--cluster", CLUSTER, "--store", store]) == 1
    assert "is no cluster" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------ applying (no server)


class FakeServer:
    """Answers what migrate_cluster asks a server of the cluster, and records the rest."""

    embedded = False
    database = DB

    def __init__(
        self,
        clusters: tuple[str, ...] = (CLUSTER,),
        macros: tuple[str, ...] = ("shard", "replica"),
        engine: str | None = None,
    ) -> None:
        self.clusters = clusters
        self.macros = macros
        self.engine = engine
        self.commands: list[str] = []
        self.applied: dict[int, str] = {}

    def command(self, sql: str, settings: dict[str, Any] | None = None) -> None:
        self.commands.append(sql)
        recorded = re.match(
            r"INSERT INTO \w+\.schema_migrations .* VALUES \((\d+), '\w+', '(\w+)'\)", sql
        )
        if recorded:
            self.applied[int(recorded[1])] = recorded[2]
        if "schema_migrations ON CLUSTER" in sql:
            self.engine = "ReplicatedMergeTree"

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if "system.clusters" in sql:
            return [(c,) for c in self.clusters]
        if "system.macros" in sql:
            return [(m,) for m in self.macros]
        if "system.tables" in sql:
            return [(self.engine,)] if self.engine else []
        if "schema_migrations" in sql:
            return list(self.applied.items())
        raise AssertionError(sql)


def test_migrate_cluster_runs_what_print_shows_and_then_nothing() -> None:
    server = FakeServer()
    result = migrate_cluster(cast(Store, server), CLUSTER)
    assert server.commands == all_statements()
    assert result.applied == [f"{m.version:03d}_{m.name}" for m in discover()]
    assert result.skipped == result.changed == []
    server.commands.clear()
    again = migrate_cluster(cast(Store, server), CLUSTER)
    assert again.applied == [] and len(again.skipped) == len(discover())
    assert server.commands == bookkeeping(DB, CLUSTER)  # IF NOT EXISTS: no-ops


@pytest.mark.parametrize(
    ("server", "message"),
    [
        (FakeServer(clusters=("other",)), "knows no cluster 'clicktrail'.*has: other"),
        (FakeServer(macros=("shard",)), "no replica macro"),
        (FakeServer(engine="MergeTree"), "migrated for a single server"),
    ],
)
def test_migrate_cluster_checks_the_server_before_changing_anything(
    server: FakeServer, message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        migrate_cluster(cast(Store, server), CLUSTER)
    assert server.commands == []


def test_migrate_cluster_refuses_an_embedded_store() -> None:
    server = FakeServer()
    server.embedded = True
    with pytest.raises(StoreError, match="is no cluster"):
        migrate_cluster(cast(Store, server), CLUSTER)
    assert cluster.NOT_A_CLUSTER.startswith("an embedded store")
