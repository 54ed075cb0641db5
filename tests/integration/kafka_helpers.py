"""Putting events on the real broker the way the edge does: validated, keyed, serialized."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from clicktrail.bus.codec import serialize
from clicktrail.bus.topics import insight_key, partition_key, topic_for
from clicktrail.contracts import AuctionInsight
from clicktrail.processors.intake import Intake, Rejection

FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


def bootstrap() -> str:
    value = os.environ.get("KAFKA_BOOTSTRAP")
    if not value:
        raise AssertionError(
            "KAFKA_BOOTSTRAP is not set: run 'make test' (it starts a local broker) "
            "or point KAFKA_BOOTSTRAP at one"
        )
    return value


def produce(
    servers: str,
    events: Iterable[dict[str, Any]],
    raw: Iterable[tuple[str, bytes]] = (),
    prefix: str = "clicktrail",
) -> int:
    """Send events as the edge would, to ``prefix``'s topics; ``raw`` adds (topic suffix,
    bytes) messages as they are."""
    from kafka import KafkaProducer

    intake = Intake(clock=lambda: FAR_FUTURE, ip_mode="truncate")
    producer = KafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5)
    sent = 0
    try:
        for data in events:
            event = intake.parse(orjson.dumps(data))
            assert not isinstance(event, Rejection), event
            topic = f"{prefix}.{topic_for(event).partition('.')[2]}"
            producer.send(topic, key=partition_key(event).encode(), value=serialize(event))
            sent += 1
        for suffix, value in raw:
            producer.send(f"{prefix}.{suffix}", key=b"poison", value=value)
            sent += 1
        producer.flush(timeout=30)
    finally:
        producer.close()
    return sent


def produce_insights(servers: str, rows: Iterable[AuctionInsight], prefix: str) -> int:
    """Send auction-insights rows as the edge's import does: keyed by keyword."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5)
    sent = 0
    try:
        for row in rows:
            producer.send(
                f"{prefix}.auction_insights", key=insight_key(row).encode(), value=serialize(row)
            )
            sent += 1
        producer.flush(timeout=30)
    finally:
        producer.close()
    return sent


IDLE_SECONDS = 4.0
"""A worker's partitions go idle this soon in the tests (the default is a minute): the
scenarios end with quiet partitions, and the waits they hold must settle in seconds."""


def write_registry(path: Path, registry: dict[str, Any]) -> Path:
    """``registry`` as a live worker's YAML, its quiet partitions going idle quickly."""
    timing = {**registry.get("event_time", {}), "idle_seconds": IDLE_SECONDS}
    path.write_text(yaml.safe_dump({**registry, "event_time": timing}), encoding="utf-8")
    return path
