"""``clicktrail simulate`` as a user runs it: into replay, through a pipe, and sent to a service."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clicktrail.simulate import FILES, Options, simulate

CLI = [sys.executable, "-m", "clicktrail.cli.main"]
SMALL = ["--events", "3000", "--days", "1", "--seed", "4"]


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKTRAIL_")}
    result = subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False, env=env
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr}")
    return result


def scenario(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "scenario.json").read_text(encoding="utf-8"))
    return data


def distinct(store: str, cwd: Path, *tables: str) -> list[int]:
    """Distinct event ids per table, in one query (each query is a process start)."""
    parts = ", ".join(f"(SELECT uniqExact(event_id) FROM clicktrail.{t})" for t in tables)
    result = cli("query", "--store", store, f"SELECT {parts}", "--format", "csv", cwd=cwd)
    return [int(n) for n in result.stdout.splitlines()[1].split(",")]


def test_help_names_the_files_and_scenarios(tmp_path: Path) -> None:
    result = cli("simulate", "--help", cwd=tmp_path)
    for word in ("truth.jsonl", "registry.yaml", "auction_insights.csv", "fraud-heavy", "--send"):
        assert word in result.stdout


def test_a_small_scenario_replays_through_the_embedded_runtime(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    made = cli("simulate", "--out", str(out), *SMALL, cwd=tmp_path)
    assert made.stdout.startswith("wrote 3,0")
    summary = scenario(out)
    store = f"chdb://{out / 'store'}"
    replay = cli(
        "replay", "--config", str(out / "registry.yaml"), "--store", store,
        str(out / "events.jsonl"), cwd=tmp_path,
    )  # fmt: skip
    lines = summary["lines"]
    assert replay.stdout.startswith(f"read {lines}, accepted {lines}, dead-lettered 0")
    counts = distinct(store, tmp_path, "impressions", "clicks", "conversions")
    assert counts == [summary["events"][k] for k in ("impression", "click", "conversion")]


def test_another_process_writes_the_same_bytes(tmp_path: Path) -> None:
    """String hashing differs per process; nothing may depend on it."""
    cli("simulate", "--out", str(tmp_path / "a"), *SMALL, cwd=tmp_path)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    simulate(Options(out=tmp_path / "b", events=3000, days=1, seed=4, start=start))
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_stdout_pipes_into_replay(tmp_path: Path) -> None:
    first = tmp_path / "first"
    cli("simulate", "--out", str(first), "--events", "10", "--seed", "4", cwd=tmp_path)
    out = tmp_path / "piped"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKTRAIL_")}
    producer = subprocess.Popen(
        [*CLI, "simulate", "--out", str(out), *SMALL, "--stdout"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    consumer = subprocess.run(
        [*CLI, "replay", "--config", str(first / "registry.yaml"),
         "--store", f"chdb://{tmp_path / 'store'}", "-"],
        stdin=producer.stdout, capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert producer.stdout is not None
    producer.stdout.close()
    _, errors = producer.communicate(timeout=60)
    assert producer.returncode == 0 and consumer.returncode == 0, errors + consumer.stderr
    lines = scenario(out)["lines"]
    assert consumer.stdout.startswith(f"read {lines}, accepted {lines}, dead-lettered 0")
    assert not (out / "events.jsonl").exists()
    assert b"wrote 3,0" in errors, "the summary goes to stderr"
    registry = (out / "registry.yaml").read_bytes()
    assert registry == (first / "registry.yaml").read_bytes(), "the registry depends on the seed"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, "service did not become ready"
        time.sleep(0.2)


def test_send_posts_the_scenario_to_a_running_service(tmp_path: Path) -> None:
    world = tmp_path / "world"
    cli("simulate", "--out", str(world), "--events", "10", "--seed", "4", cwd=tmp_path)
    port = free_port()
    store = f"chdb://{tmp_path / 'store'}"
    token = "operator-token-0123456789abcdef"
    service = subprocess.Popen(
        [*CLI, "run", "--port", str(port), "--store", store,
         "--config", str(world / "registry.yaml")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "CLICKTRAIL_OPERATOR_TOKEN": token},
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        out = tmp_path / "sent"
        sent = cli(
            "simulate", "--out", str(out), "--events", "2000", "--days", "1", "--seed", "4",
            "--send", base, "--rate", "20000", "--api-key", token, cwd=tmp_path,
        )  # fmt: skip
        summary = scenario(out)
        lines = summary["lines"]
        assert f"sent {lines:,} events in" in sent.stdout
        assert f"{lines:,} accepted, 0 rejected" in sent.stdout
        deadline = time.monotonic() + 15
        while distinct(store, tmp_path, "clicks") != [summary["events"]["click"]]:
            assert time.monotonic() < deadline, "the clicks did not land"
            time.sleep(0.3)
    finally:
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=30)
    assert service.returncode == 0, stderr
