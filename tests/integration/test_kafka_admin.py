"""Topic partitions on the real broker: created, grown only when asked, and a clear refusal
from the edge and the worker when existing topics have another count."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from tests.integration.kafka_helpers import bootstrap

from clicktrail.bus.admin import (
    TopicPartitionsError,
    create_topics,
    grow_topics,
    partition_counts,
)
from clicktrail.bus.topics import ALL_TOPICS, PREFIX
from clicktrail.edge.serve import free_port

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = ROOT / "deploy" / "clicktrail.example.yaml"
CLI = [sys.executable, "-m", "clicktrail.cli.main"]


def fresh_names(count: int = 2) -> list[str]:
    return [f"clicktrail-it-admin-{uuid.uuid4().hex[:10]}" for _ in range(count)]


def pipeline_topics(prefix: str) -> list[str]:
    """The topics of a pipeline run under ``CLICKTRAIL_TOPIC_PREFIX=prefix``."""
    return [prefix + name.removeprefix(PREFIX) for name in ALL_TOPICS]


def run(args: list[str], prefix: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLICKTRAIL_TOPIC_PREFIX": prefix}
    return subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )


def edge_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        *CLI,
        "edge",
        "--dev",
        "--config",
        str(EXAMPLE_CONFIG),
        "--broker",
        bootstrap(),
        "--port",
        str(free_port()),
        "--spool-dir",
        str(tmp_path / "spool"),
        "--create-topics",
        *extra,
    ]


def worker_args(tmp_path: Path, prefix: str, partitions: int) -> list[str]:
    return [
        *CLI,
        "worker",
        "--dev",
        "--config",
        str(EXAMPLE_CONFIG),
        "--broker",
        bootstrap(),
        "--partitions",
        str(partitions),
        "--app-id",
        prefix,
        "--store",
        f"chdb://{tmp_path / 'store'}",
        "--data-dir",
        str(tmp_path / "data"),
    ]


def test_existing_topics_with_another_count_are_refused_not_kept() -> None:
    kept, new = fresh_names(), fresh_names(1)
    assert create_topics(bootstrap(), 3, topics=kept) == kept
    with pytest.raises(TopicPartitionsError) as refused:
        create_topics(bootstrap(), 8, topics=[*kept, *new])
    assert refused.value.found == dict.fromkeys(kept, 3)
    assert refused.value.fewer and not refused.value.more
    assert all(f"{name} (3)" in str(refused.value) for name in kept)
    assert partition_counts(bootstrap(), [*kept, *new]) == dict.fromkeys(kept, 3), (
        "a refused call creates nothing"
    )
    assert create_topics(bootstrap(), 3, topics=[*kept, *new]) == new, "same count: fine"


def test_topics_grow_when_asked_and_never_shrink() -> None:
    names = fresh_names()
    create_topics(bootstrap(), 3, topics=names)
    assert grow_topics(bootstrap(), 8, topics=names) == dict.fromkeys(names, 3)
    assert partition_counts(bootstrap(), names) == dict.fromkeys(names, 8)
    assert grow_topics(bootstrap(), 8, topics=names) == {}, "already there"
    assert create_topics(bootstrap(), 8, topics=names) == []
    assert grow_topics(bootstrap(), 4, topics=names) == {}, "Kafka cannot remove partitions"
    with pytest.raises(TopicPartitionsError) as refused:
        create_topics(bootstrap(), 4, topics=names)
    assert refused.value.more and not refused.value.fewer


def test_the_edge_says_what_exists_and_grows_only_with_grow_partitions(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    topics = pipeline_topics(prefix)
    create_topics(bootstrap(), 3, topics=topics)

    refused = run(edge_args(tmp_path, "--partitions", "8"), prefix)
    assert refused.returncode == 2, refused.stderr
    assert f"{prefix}.clicks (3)" in refused.stderr
    assert "--partitions 3" in refused.stderr and "--grow-partitions" in refused.stderr
    assert set(partition_counts(bootstrap(), topics).values()) == {3}, "left as they were"

    env = {**os.environ, "CLICKTRAIL_TOPIC_PREFIX": prefix}
    edge = subprocess.Popen(
        edge_args(tmp_path, "--partitions", "8", "--grow-partitions"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert edge.stdout is not None
        first = edge.stdout.readline()
        assert first.startswith("grew to 8 partitions:"), first
        assert f"{prefix}.clicks (3)" in first
        assert "listening on" in edge.stdout.readline()
    finally:
        edge.kill()  # the topics are what this is about, not a clean stop
        edge.communicate(timeout=30)
    assert set(partition_counts(bootstrap(), topics).values()) == {8}


def test_the_worker_stops_at_once_with_a_clear_message(tmp_path: Path) -> None:
    """Before: Faust kept the topics and stopped on ``PartitionsMismatch`` at the first
    table write, once traffic came."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    topics = pipeline_topics(prefix)
    create_topics(bootstrap(), 3, topics=topics)
    started = time.monotonic()
    refused = run(worker_args(tmp_path, prefix, 8), prefix)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert time.monotonic() - started < 60
    assert f"{prefix}.clicks (3)" in refused.stderr and "--partitions 3" in refused.stderr
    assert "--grow-partitions" in refused.stderr
    assert "Traceback" not in refused.stderr

    # grown input topics, the tables' changelogs still split by the old count
    grow_topics(bootstrap(), 8, topics=topics)
    changelog = f"{prefix}-pending-changelog"
    create_topics(bootstrap(), 3, topics=[changelog])
    refused = run(worker_args(tmp_path, prefix, 8), prefix)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"{changelog} (3)" in refused.stderr
    assert "--app-id" in refused.stderr and "Traceback" not in refused.stderr
