"""The cluster layout: the single-server migrations rewritten for a ClickHouse cluster of
shards and replicas (``clicktrail migrate --cluster NAME``).

Every MergeTree-family table ``{db}.x`` of the migrations becomes, on every node:

- ``{db}.x_local``, the data: ``Replicated<Engine>('/clickhouse/tables/{shard}/<db>/x_local',
  '{replica}', <the engine's own arguments>)``, the macros taken from each server's config;
- ``{db}.x``, ``Distributed(<cluster>, <db>, x_local, cityHash64(<ORDER BY key>))`` in front,
  under the table's own name: the sink, the views, the dashboard and analysts use the names
  they always did.

Both are created ``ON CLUSTER``. The **sharding key** is the hash of the whole ORDER BY key:

- it is deterministic, which exactly-once needs: a retried batch splits over the shards as
  it did the first time, so each shard gets the same rows under the same insert
  deduplication token and drops them. With ``rand()`` a retry would send other rows under
  that token: some dropped as duplicates though new, others written twice;
- rows with the same sort key, the rows a ReplacingMergeTree or SummingMergeTree collapses,
  land on one shard, so merges and ``FINAL`` (``reconciliation_summary``) collapse them;
- every key here ends in an id or a timestamp, so it spreads evenly; the first column
  alone would be ``action`` (five values) for conversions, ``reason`` for dead letters.

**Materialized views** read the local table and write to the local target, so each shard
aggregates the rows it holds (a view fires on the replica an insert reaches; the other
replica fetches both parts). ``agg_hourly`` then holds partial sums per shard, which its
readers add up anyway (every one sums with GROUP BY). A view reading more than one table
would see only its shard's part of the others, so one is refused. **Plain views** stay
views, ``ON CLUSTER``, over the Distributed names. **ALTER TABLE** runs ``ON CLUSTER`` on the
local table, and on the Distributed one too when it changes columns. **INSERT ... SELECT**
backfills run once, on the node migrate talks to, through the Distributed tables and in the
foreground (``distributed_foreground_insert``), so they are on the shards when the next
statement runs. ``non_replicated_deduplication_window`` becomes
``replicated_deduplication_window``: the same window, kept in Keeper. ``schema_migrations``
is one ReplicatedMergeTree copied to every node (a Keeper path without ``{shard}``, replica
``{shard}-{replica}``), so whichever node migrate talks to knows what was applied.

**Why no SQL parser does the rewrite.** sqlglot (already a dependency, clickhouse dialect)
parses these statements but does not give them back as written: ``toStartOfHour(ts)``
comes back as ``dateTrunc('HOUR', ts)`` and ``if`` as ``multiIf``, and ``ALTER ... COMMENT
COLUMN`` and ``MODIFY SETTING`` fall back to an opaque command. Regenerating SQL through it
would change the bodies of the views users review, and not reach the ALTERs. So this is a
targeted rewrite of statement heads, the ENGINE clause, setting names and the table names
in materialized views; string literals, comments and brackets are masked before any
pattern is matched, every other character stays as written, and a statement it does not
recognise raises :class:`ClusterLayoutError`: a new migration that does not fit fails the
tests instead of being laid out wrong. The tests run every generated statement through
ClickHouse's own parser (``EXPLAIN AST`` in chDB), and the layout on one node of chDB less
``ON CLUSTER`` and replication (no Keeper there); no cluster runs it here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clicktrail.sinks.migrations import (
    DDL_DIR,
    SCHEMA_MIGRATIONS_COLUMNS,
    Migration,
    MigrationResult,
    discover,
)
from clicktrail.sinks.store import Store, StoreError, check_database_name

LOCAL = "_local"
KEEPER_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
"""Where each shard's replicas of a table meet in Keeper; ``{shard}`` stays a macro."""
MIGRATIONS_KEEPER_PATH = "/clickhouse/tables/all_shards/{database}/schema_migrations"
MIGRATIONS_REPLICA = "{shard}-{replica}"
ENGINES = (
    "MergeTree",
    "ReplacingMergeTree",
    "SummingMergeTree",
    "AggregatingMergeTree",
    "CollapsingMergeTree",
    "VersionedCollapsingMergeTree",
)
"""Engines with a Replicated twin that this layout knows."""
COLUMN_COMMANDS = ("ADD COLUMN", "DROP COLUMN", "MODIFY COLUMN", "RENAME COLUMN", "COMMENT COLUMN")
"""ALTER commands that change columns: the Distributed table in front follows them."""
SETTING_RENAMES = {"non_replicated_deduplication_window": "replicated_deduplication_window"}
FOREGROUND_INSERT = "distributed_foreground_insert"
NOT_A_CLUSTER = (
    "an embedded store (chdb://) is no cluster: point --store at a server of the cluster "
    "(http://HOST:8123), or add --print to see the DDL"
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_WORD = r"[A-Za-z_][A-Za-z0-9_]*"

_FLAGS = re.IGNORECASE | re.DOTALL
_CREATE_DATABASE = re.compile(
    rf"CREATE\s+DATABASE\s+(IF\s+NOT\s+EXISTS\s+)?(?P<db>{_WORD})\s*\Z", _FLAGS
)
_CREATE_TABLE = re.compile(
    rf"CREATE\s+TABLE\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<db>{_WORD})\.(?P<name>{_WORD})\s*\(",
    _FLAGS,
)
_CREATE_MV = re.compile(
    rf"CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(?P<db>{_WORD})\.(?P<name>{_WORD})"
    rf"\s+TO\s+(?P<tdb>{_WORD})\.(?P<target>{_WORD})\s+AS\b",
    _FLAGS,
)
_CREATE_VIEW = re.compile(
    rf"CREATE\s+(OR\s+REPLACE\s+)?VIEW\s+(IF\s+NOT\s+EXISTS\s+)?"
    rf"(?P<db>{_WORD})\.(?P<name>{_WORD})(?=\s+AS\b)",
    _FLAGS,
)
_DROP_VIEW = re.compile(
    rf"DROP\s+VIEW\s+(IF\s+EXISTS\s+)?(?P<db>{_WORD})\.(?P<name>{_WORD})\s*\Z", _FLAGS
)
_ALTER = re.compile(rf"ALTER\s+TABLE\s+(?P<db>{_WORD})\.(?P<name>{_WORD})\s+", _FLAGS)
_INSERT_SELECT = re.compile(
    rf"INSERT\s+INTO\s+(?P<db>{_WORD})\.(?P<name>{_WORD})\s*(\([^()]*\))?\s*(?=(SELECT|WITH)\b)",
    _FLAGS,
)
_ENGINE = re.compile(rf"\bENGINE\s*=\s*(?P<engine>{_WORD})\s*(?P<args>\()?", _FLAGS)
_ORDER_BY = re.compile(r"\bORDER\s+BY\b", _FLAGS)
_CLAUSE = re.compile(
    r"\b(PARTITION\s+BY|PRIMARY\s+KEY|ORDER\s+BY|SAMPLE\s+BY|TTL|SETTINGS|COMMENT)\b", _FLAGS
)


class ClusterLayoutError(StoreError):
    """A migration statement this layout cannot rewrite; the message names it."""


CLUSTER_NAME_RULE = "a cluster name of letters, digits and underscores, as in remote_servers"


def valid_cluster_name(cluster: str) -> bool:
    return _NAME.match(cluster) is not None


def check_cluster_name(cluster: str) -> str:
    if not valid_cluster_name(cluster):
        raise ClusterLayoutError(f"cluster {cluster!r}: use {CLUSTER_NAME_RULE}")
    return cluster


# ------------------------------------------------------------------ masking


def _blank_literals(sql: str) -> str:
    """``sql`` with its string literals, quoted identifiers and comments turned into
    spaces: the same length, so a match's positions are the original's."""
    chars = list(sql)
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # a doubled quote
                        j += 2
                        continue
                    break
                j += 1
            end = min(j + 1, n)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
        else:
            i += 1
            continue
        for k in range(i, end):
            if chars[k] != "\n":
                chars[k] = " "
        i = end
    return "".join(chars)


def _top_level(masked: str) -> str:
    """A literal-blanked text with everything inside brackets blanked too; the outermost
    brackets stay, so what is left is the statement's own clauses."""
    chars = list(masked)
    depth = 0
    for i, ch in enumerate(masked):
        if ch == "(":
            depth += 1
            if depth > 1:
                chars[i] = " "
        elif ch == ")":
            depth -= 1
            if depth > 0:
                chars[i] = " "
        elif depth > 0 and ch != "\n":
            chars[i] = " "
    return "".join(chars)


def _closing(masked: str, opening: int) -> int:
    """The index of the bracket closing the one at ``opening``."""
    depth = 0
    for i in range(opening, len(masked)):
        if masked[i] == "(":
            depth += 1
        elif masked[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced brackets")


def _rename_settings(sql: str) -> str:
    masked = _blank_literals(sql)
    for old, new in SETTING_RENAMES.items():
        for match in reversed(list(re.finditer(rf"\b{old}\b", masked))):
            sql = sql[: match.start()] + new + sql[match.end() :]
    return sql


def _split_top_level(sql: str) -> list[str]:
    """``a, b(c, d), 'e, f'`` -> ``["a", "b(c, d)", "'e, f'"]``."""
    top = _top_level(_blank_literals(sql))
    parts, start = [], 0
    for i, ch in enumerate(top):
        if ch == "," and top.count("(", 0, i) == top.count(")", 0, i):
            parts.append(sql[start:i].strip())
            start = i + 1
    parts.append(sql[start:].strip())
    return [p for p in parts if p]


# ------------------------------------------------------------------ the layout


@dataclass(frozen=True)
class ClusterMigration:
    """One migration file and the statements that apply it to a cluster."""

    migration: Migration
    statements: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.migration.version:03d}_{self.migration.name}"


@dataclass
class _Layout:
    """What the migrations created so far: later ones alter and read those tables."""

    database: str
    cluster: str
    tables: dict[str, str] = field(default_factory=dict)  # name -> sharding key
    views: set[str] = field(default_factory=set)

    def rewrite(self, statement: str, label: str) -> list[str]:
        masked = _blank_literals(statement)
        top = _top_level(masked)
        handlers = (
            (_CREATE_DATABASE, self._create_database),
            (_CREATE_TABLE, self._create_table),
            (_CREATE_MV, self._create_materialized_view),
            (_CREATE_VIEW, self._create_view),
            (_DROP_VIEW, self._drop_view),
            (_ALTER, self._alter),
            (_INSERT_SELECT, self._insert_select),
        )
        for pattern, handler in handlers:
            match = pattern.match(top)
            if match is None:
                continue
            if match.group("db") != self.database:
                raise ClusterLayoutError(
                    f"{label}: {match.group(0).strip()!r} is not in database {self.database}"
                )
            try:
                return handler(statement, masked, match)
            except ClusterLayoutError as error:
                raise ClusterLayoutError(f"{label}: {error}") from None
        head = " ".join(statement.split()[:6])
        raise ClusterLayoutError(f"{label}: no cluster layout for {head!r} ...")

    # each handler returns the cluster statements for one single-server statement

    def _on(self) -> str:
        return f"ON CLUSTER {self.cluster}"

    def _create_database(self, sql: str, masked: str, match: re.Match[str]) -> list[str]:
        return [f"{sql.rstrip()} {self._on()}"]

    def _create_table(self, sql: str, masked: str, match: re.Match[str]) -> list[str]:
        db, name = self.database, match.group("name")
        if name in self.tables or name in self.views:
            raise ClusterLayoutError(f"{name} is created twice")
        opening = match.end() - 1
        closing = _closing(masked, opening)
        top = _top_level(masked)
        engine = _ENGINE.search(top, closing)
        if engine is None:
            raise ClusterLayoutError(f"{name} names no ENGINE")
        kind = engine.group("engine")
        if kind not in ENGINES:
            raise ClusterLayoutError(f"{name}: engine {kind} has no replicated form here")
        engine_end = engine.end("engine")
        arguments = ""
        if engine.group("args"):
            args_close = _closing(masked, engine.start("args"))
            arguments = sql[engine.start("args") + 1 : args_close].strip()
            engine_end = args_close + 1
        order = _ORDER_BY.search(top, engine_end)
        if order is None:
            raise ClusterLayoutError(f"{name} has no ORDER BY to shard by")
        after = _CLAUSE.search(top, order.end())
        key = sql[order.end() : after.start() if after else len(sql)].strip()
        sharding = _sharding_key(key, name)
        local = f"{name}{LOCAL}"
        path = KEEPER_PATH.format(shard="{shard}", database=db, table=local)
        replicated = ", ".join(a for a in (f"'{path}'", "'{replica}'", arguments) if a)
        head = f"CREATE TABLE {match.group('ine') or ''}{db}.{local} {self._on()}"
        rest = _rename_settings(sql[engine_end:])
        local_sql = (
            head
            + sql[match.end("name") : engine.start()]
            + f"ENGINE = Replicated{kind}({replicated})"
            + rest
        )
        front = (
            f"CREATE TABLE {match.group('ine') or ''}{db}.{name} {self._on()} AS {db}.{local}\n"
            f"ENGINE = Distributed({self.cluster}, {db}, {local}, {sharding})"
        )
        self.tables[name] = sharding
        return [local_sql, front]

    def _create_materialized_view(self, sql: str, masked: str, match: re.Match[str]) -> list[str]:
        db, name, target = self.database, match.group("name"), match.group("target")
        if match.group("tdb") != db or target not in self.tables:
            raise ClusterLayoutError(f"materialized view {name} writes to no table of {db}")
        body_start = match.end()
        sources = [m for m in re.finditer(rf"\b{db}\.({_WORD})\b", masked[body_start:])]
        names = {m.group(1) for m in sources}
        unknown = names - set(self.tables)
        if not names or unknown:
            raise ClusterLayoutError(
                f"materialized view {name} reads {', '.join(sorted(unknown)) or 'no table'}: "
                "it must read one table of the migrations"
            )
        if len(names) > 1:
            raise ClusterLayoutError(
                f"materialized view {name} reads {', '.join(sorted(names))}: on a shard it "
                "would see only that shard's part of all but the table it is fed by"
            )
        body = sql[body_start:]
        for source in reversed(sources):
            body = body[: source.end(1)] + LOCAL + body[source.end(1) :]
        head = (
            sql[: match.end("name")]
            + f" {self._on()} TO {db}.{target}{LOCAL}"
            + sql[match.end("target") : body_start]
        )
        self.views.add(name)
        return [head + body]

    def _create_view(self, sql: str, masked: str, match: re.Match[str]) -> list[str]:
        name = match.group("name")
        if name in self.tables:
            raise ClusterLayoutError(f"view {name} has the name of a table")
        self.views.add(name)
        return [sql[: match.end()] + f" {self._on()}" + sql[match.end() :]]

    def _drop_view(self, sql: str, masked: str, match: re.Match[str]) -> list[str]:
        if match.group("name") in self.tables:
            raise ClusterLayoutError(f"DROP VIEW of table {match.group('name')}")
        self.views.discard(match.group("name"))
        return [f"{sql.rstrip()} {self._on()}"]

    def _alter(self, sql: str, masked: str, match: re.Match[str]) -> list[str]:
        db, name = self.database, match.group("name")
        if name not in self.tables:
            raise ClusterLayoutError(f"ALTER TABLE {name}: no such table in the migrations")
        commands = _split_top_level(sql[match.end() :])
        columns = [c for c in commands if c.upper().startswith(COLUMN_COMMANDS)]
        indent = "\n    "
        statements = [
            f"ALTER TABLE {db}.{name}{LOCAL} {self._on()}{indent}"
            + _rename_settings(f",{indent}".join(commands))
        ]
        if columns:
            statements.append(
                f"ALTER TABLE {db}.{name} {self._on()}{indent}" + f",{indent}".join(columns)
            )
        return statements

    def _insert_select(self, sql: str, masked: str, match: re.Match[str]) -> list[str]:
        name = match.group("name")
        if name not in self.tables:
            raise ClusterLayoutError(f"INSERT INTO {name}: no such table in the migrations")
        if re.search(r"\bSETTINGS\b", _top_level(masked)[: match.end()], re.IGNORECASE):
            raise ClusterLayoutError(f"INSERT INTO {name} has SETTINGS of its own")
        at = match.end()
        return [sql[:at] + f"SETTINGS {FOREGROUND_INSERT} = 1\n" + sql[at:]]


def _sharding_key(order_by: str, table: str) -> str:
    """``cityHash64`` of every column of the sort key."""
    key = order_by.strip()
    masked = _blank_literals(key)
    if key.startswith("(") and _closing(masked, 0) == len(key) - 1:
        key = key[1:-1].strip()
    if not key or re.fullmatch(r"tuple\(\s*\)", key, re.IGNORECASE):
        raise ClusterLayoutError(f"{table} has an empty ORDER BY: nothing to shard by")
    return f"cityHash64({key})"


def rewrite(migrations: Sequence[Migration], database: str, cluster: str) -> list[ClusterMigration]:
    """Every migration's statements, rewritten for ``cluster``; pure: nothing runs.

    Later migrations alter and read what earlier ones created, so the whole sequence is
    rewritten in order, whatever part of it a server already has."""
    layout = _Layout(database, check_cluster_name(cluster))
    laid_out = []
    for migration in migrations:
        label = f"{migration.version:03d}_{migration.name}"
        statements: list[str] = []
        for statement in migration.statements(database):
            statements.extend(layout.rewrite(statement, label))
        laid_out.append(ClusterMigration(migration, tuple(statements)))
    return laid_out


def bookkeeping(database: str, cluster: str) -> list[str]:
    """The database and ``schema_migrations``, on every node of ``cluster``."""
    path = MIGRATIONS_KEEPER_PATH.format(database=database)
    return [
        f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}",
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations ON CLUSTER {cluster}\n"
        f"{SCHEMA_MIGRATIONS_COLUMNS}\n"
        f"ENGINE = ReplicatedMergeTree('{path}', '{MIGRATIONS_REPLICA}')\n"
        "ORDER BY version",
    ]


def record(migration: Migration, database: str) -> str:
    """The row saying ``migration`` was applied (its checksum is the file's, as on a
    single server)."""
    return (
        f"INSERT INTO {database}.schema_migrations (version, name, checksum) "
        f"VALUES ({migration.version}, '{migration.name}', '{migration.checksum}')"
    )


def script(database: str, cluster: str | None, directory: Path = DDL_DIR) -> str:
    """Everything ``migrate`` runs on an empty database, as one file clickhouse-client can
    run (``--multiquery``): the cluster layout, or with no cluster the single-server DDL."""
    check_database_name(database)
    migrations = discover(directory)
    target = f"cluster {cluster}" if cluster else "a single server"
    lines = [
        f"-- clicktrail's tables in database {database} on {target}: "
        f"migrations {migrations[0].version:03d} to {migrations[-1].version:03d}",
        "-- What `clicktrail migrate"
        + (f" --cluster {cluster}" if cluster else "")
        + "` runs on an empty database, in order.",
        "",
    ]
    if cluster:
        statements = bookkeeping(database, cluster)
        laid_out = rewrite(migrations, database, cluster)
    else:
        statements = [
            f"CREATE DATABASE IF NOT EXISTS {database}",
            f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
            f"{SCHEMA_MIGRATIONS_COLUMNS} ENGINE = MergeTree ORDER BY version",
        ]
        laid_out = [ClusterMigration(m, tuple(m.statements(database))) for m in migrations]
    lines += [f"{s};\n" for s in statements]
    for item in laid_out:
        lines.append(f"-- {item.label}")
        lines += [f"{s};\n" for s in (*item.statements, record(item.migration, database))]
    return "\n".join(lines)


def migrate_cluster(store: Store, cluster: str, directory: Path = DDL_DIR) -> MigrationResult:
    """Apply the cluster layout through one server of ``cluster``: each pending migration's
    statements (``ON CLUSTER``: every node runs them), then its row in
    ``schema_migrations``. The checks first: the server knows the cluster and the macros,
    and the database is not one laid out for a single server."""
    if store.embedded:
        raise StoreError(NOT_A_CLUSTER)
    db = store.database
    laid_out = rewrite(discover(directory), db, cluster)  # a layout error changes nothing
    _preflight(store, cluster)
    for statement in bookkeeping(db, cluster):
        store.command(statement)
    done = {
        int(version): checksum
        for version, checksum in store.rows(f"SELECT version, checksum FROM {db}.schema_migrations")
    }
    applied, skipped, changed = [], [], []
    for item in laid_out:
        if item.migration.version in done:
            skipped.append(item.label)
            if done[item.migration.version] != item.migration.checksum:
                changed.append(item.label)
            continue
        for statement in item.statements:
            store.command(statement)
        store.command(record(item.migration, db))
        applied.append(item.label)
    return MigrationResult(applied, skipped, changed)


def _preflight(store: Store, cluster: str) -> None:
    known = [row[0] for row in store.rows("SELECT DISTINCT cluster FROM system.clusters")]
    if cluster not in known:
        raise StoreError(
            f"the server knows no cluster {cluster!r} (its remote_servers has: "
            f"{', '.join(sorted(known)) or 'none'})"
        )
    macros = {row[0] for row in store.rows("SELECT macro FROM system.macros")}
    missing = sorted({"shard", "replica"} - macros)
    if missing:
        raise StoreError(
            f"the server defines no {' and no '.join(missing)} macro (<macros> in its "
            "config): the replicated tables' Keeper paths need both"
        )
    engine = store.rows(
        "SELECT engine FROM system.tables WHERE database = {db:String} "
        "AND name = 'schema_migrations'",
        {"db": store.database},
    )
    if engine and not str(engine[0][0]).startswith("Replicated"):
        raise StoreError(
            f"database {store.database} on this server was migrated for a single server "
            f"({engine[0][0]} tables): the cluster layout needs a database of its own "
            "(--database), or its data copied over (docs/operations.md)"
        )
