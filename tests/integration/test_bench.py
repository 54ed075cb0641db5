"""The benchmark command runs and reports (figures are read, never asserted as timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "clicktrail.cli.main",
            "--log-level",
            "warning",
            "bench",
            "--only",
            "embedded,sink,faust",
            "--events",
            "2000",
            "--rows",
            "2000",
            "--runs",
            "1",
            "--broker",
            "",
            "--json",
            str(out),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "| measurement" in result.stdout
    pipeline = "embedded pipeline, simulated week (fraud, brand, models, alerts)"
    floor = "floor: minimal loop on the same events"
    assert pipeline in result.stdout and floor in result.stdout
    figures = {f["what"]: f for f in json.loads(out.read_text())["figures"]}
    assert figures[pipeline]["value"] > 0 and figures[floor]["value"] > 0
    ratio = figures[pipeline]["value"] / figures[floor]["value"]
    assert f"{ratio:.2f} of the floor" in figures[pipeline]["note"]
    assert figures["ClickHouse sink (chDB), 10k-row inserts"]["value"] > 0
    assert figures["Faust worker, full processing"]["value"] is None, "no broker: skipped"
