"""The cluster layout run on one node of embedded ClickHouse: the statements of
``clicktrail migrate --cluster`` (less ``ON CLUSTER`` and replication, which chDB cannot
run: no Keeper) under a cluster of one local shard, fed by the pipeline beside a database
migrated for a single server. Every view answers the same in both, and the sink's
exactly-once holds through the Distributed tables (tests/integration/cluster_one_node.py
does the work in a process of its own: one chDB engine per process, this one configured
with the cluster)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clicktrail.sinks.cluster import bookkeeping, rewrite
from clicktrail.sinks.migrations import discover

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


@pytest.mark.slow
def test_on_one_node_the_cluster_layout_answers_as_the_single_server_one(
    tmp_path: Path,
) -> None:
    sim = tmp_path / "sim"
    simulate = [sys.executable, "-m", "clicktrail.cli.main", "--log-level", "warning"]
    simulate += ["simulate", "--out", str(sim), "--events", "3000", "--seed", "3", "--days", "1"]
    subprocess.run(simulate, check=True, capture_output=True, cwd=ROOT, timeout=120)
    out = tmp_path / "result.json"
    run = [sys.executable, str(HERE / "cluster_one_node.py"), str(tmp_path), str(sim), str(out)]
    done = subprocess.run(run, check=False, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0 and out.exists(), done.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))

    laid_out = rewrite(discover(), "laid_out", "clicktrail")
    expected = len(bookkeeping("laid_out", "clicktrail"))
    expected += sum(len(item.statements) + 1 for item in laid_out)  # + its record
    assert result["statements"] == expected

    engines = result["engines"]
    fronts = {name for name, engine in engines.items() if engine == "Distributed"}
    assert len(fronts) >= 13
    for front in fronts - {"schema_migrations"}:
        assert engines[f"{front}_local"].endswith("MergeTree"), front
    assert sum(engine == "MaterializedView" for engine in engines.values()) == 5

    assert result["differences"] == {}
    for view in ("agg_hourly", "attributed_latest", "partner_report", "funnel_daily"):
        assert result["answers"][view] > 0, f"{view} is empty: nothing was compared"
    counts, recounted = result["counts"], result["recounted"]
    assert counts["clicks"] > 0 and counts["attributed_conversions"] > 0
    # a second replay of the same input writes nothing (report_settings: a row per run,
    # the latest wins)
    assert {t: n for t, n in recounted.items() if t != "report_settings"} == {
        t: n for t, n in counts.items() if t != "report_settings"
    }
    assert result["retried"] == 1
