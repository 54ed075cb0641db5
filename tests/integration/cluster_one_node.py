"""Run the cluster layout on one node of embedded ClickHouse (chDB), beside a database
migrated for a single server, and say (as JSON on stdout) where the two differ.

Run in a process of its own (``python tests/integration/cluster_one_node.py DIR``): chDB
hosts one engine per process, and this one starts with a config naming a cluster of one
local shard. chDB runs no Keeper and refuses ON CLUSTER, so the statements run here are
the layout's with two changes, both made below: no ``ON CLUSTER``, and each
``Replicated<Engine>('<path>', '<replica>', args)`` as ``<Engine>(args)`` (with its
deduplication window under the non-replicated name). Everything else runs as generated:
the Distributed tables and their sharding keys, materialized views from local to local
tables, views over the Distributed tables, the ALTERs on both, the backfills.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

CLUSTER = "clicktrail"
SINGLE = "single"
LAID_OUT = "laid_out"
CONFIG = f"""<clickhouse>
    <tcp_port>9000</tcp_port>
    <remote_servers>
        <{CLUSTER}>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>localhost</host><port>9000</port></replica>
            </shard>
        </{CLUSTER}>
    </remote_servers>
    <macros><shard>01</shard><replica>r1</replica></macros>
</clickhouse>
"""


def one_node(statement: str) -> str:
    """The statement as one node without Keeper can run it."""
    statement = statement.replace(f" ON CLUSTER {CLUSTER}", "")
    statement = re.sub(
        r"ENGINE = Replicated(\w+)\('[^']*', '[^']*'(?:, )?", r"ENGINE = \1(", statement
    )
    return statement.replace(
        "replicated_deduplication_window", "non_replicated_deduplication_window"
    )


def rounded(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return round(value, 6)
    return value


def replay(sim: Path, data: Path, database: str) -> None:
    from clicktrail.cli.main import main as cli

    with contextlib.redirect_stdout(sys.stderr):
        code = cli(
            [
                "--log-level",
                "warning",
                "replay",
                str(sim),
                "--store",
                f"chdb://{data}",
                "--database",
                database,
                "--models",
                "none",
            ]
        )
    if code != 0:
        raise SystemExit(f"replay into {database} exited {code}")


def table_counts(store: Any) -> dict[str, int]:
    names = store.rows(
        "SELECT name FROM system.tables WHERE database = {db:String} "
        "AND engine = 'Distributed' ORDER BY name",
        {"db": LAID_OUT},
    )
    return {
        str(name): int(store.rows(f"SELECT count() FROM {LAID_OUT}.{name}")[0][0])
        for (name,) in names
    }


def main(directory: Path, sim: Path) -> dict[str, Any]:
    import chdb

    config = directory / "cluster-config.xml"
    config.write_text(CONFIG, encoding="utf-8")
    data = directory / "data"
    engine = chdb.connect(f"file:{data}?config-file={config}")  # the engine, with the cluster

    from clicktrail.sinks.cluster import bookkeeping, record, rewrite
    from clicktrail.sinks.migrations import discover
    from clicktrail.sinks.store import Store

    store = Store(f"chdb://{data}", LAID_OUT)
    ran = 0
    statements = list(bookkeeping(LAID_OUT, CLUSTER))
    for item in rewrite(discover(), LAID_OUT, CLUSTER):
        statements += [*item.statements, record(item.migration, LAID_OUT)]
    for statement in statements:
        store.command(one_node(statement))
        ran += 1

    # the same events through the embedded pipeline into both databases: the sink writes
    # to the Distributed tables, reads its high-water marks back through them, and the
    # materialized views fire on the local tables
    for database in (SINGLE, LAID_OUT):
        replay(sim, data, database)
    counts = table_counts(store)
    replay(sim, data, LAID_OUT)  # again: every message is already stored
    recounted = table_counts(store)

    # a retried insert (same deduplication token) through a Distributed table is dropped
    row = ("2026-03-01 00:00:00.000", "test", "retry", "", "", "", "", "retry", 1)
    columns = [
        "received_at",
        "source",
        "reason",
        "message",
        "event_type",
        "event_id",
        "payload",
        "src",
        "src_offset",
    ]
    for _ in range(2):
        store.insert("dead_letters", [row], columns, dedup_token="one-batch")
    retried = int(
        store.rows(f"SELECT count() FROM {LAID_OUT}.dead_letters WHERE src = 'retry'")[0][0]
    )

    views = [
        str(row[0])
        for row in store.rows(
            "SELECT name FROM system.tables WHERE database = {db:String} AND engine = 'View' "
            "ORDER BY name",
            {"db": SINGLE},
        )
    ]
    differences = {}
    answers = {}
    rollup = (
        "SELECT hour, campaign_id, partner_id, channel, country, device_type, action, "
        "sum(impressions), sum(clicks), sum(conversions), sum(approved), sum(revenue), "
        "sum(payout), sum(cost), sum(fraud_rejected_conversions), "
        "sum(fraud_suspicious_conversions), sum(fraud_suspicious_revenue) FROM {db}.agg_hourly "
        "GROUP BY ALL"
    )
    queries = {view: f"SELECT * FROM {{db}}.{view}" for view in views}
    queries["agg_hourly"] = rollup
    for name, query in queries.items():
        both = []
        for db in (SINGLE, LAID_OUT):
            rows = store.rows(query.format(db=db))
            both.append(sorted((tuple(rounded(v) for v in row) for row in rows), key=repr))
        answers[name] = len(both[0])
        if both[0] != both[1]:
            differences[name] = {"single": repr(both[0][:3]), "laid_out": repr(both[1][:3])}

    engines = {
        str(name): str(kind)
        for name, kind in store.rows(
            "SELECT name, engine FROM system.tables WHERE database = {db:String}",
            {"db": LAID_OUT},
        )
    }
    engine.close()
    return {
        "statements": ran,
        "counts": counts,
        "recounted": recounted,
        "retried": retried,
        "answers": answers,
        "differences": differences,
        "engines": engines,
    }


if __name__ == "__main__":
    result = main(Path(sys.argv[1]), Path(sys.argv[2]))
    Path(sys.argv[3]).write_text(json.dumps(result), encoding="utf-8")
