"""The edge's Kafka producer against a real broker: keyed, once, in order, spooled when away.

Needs ``KAFKA_BOOTSTRAP`` (``make test`` sets it); without it these tests fail.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from clicktrail.bus.admin import create_topics
from clicktrail.bus.codec import serialize
from clicktrail.bus.kafka import KafkaBus, KafkaSettings
from clicktrail.bus.partitioner import partition_for
from clicktrail.bus.spool import Spool
from clicktrail.contracts import Click
from clicktrail.edge.serve import free_port

pytestmark = pytest.mark.kafka

Record = tuple[str, int, int, bytes | None, dict[str, Any]]  # topic, partition, offset, key, value


@pytest.fixture(scope="module")
def bootstrap() -> str:
    address = os.environ.get("KAFKA_BOOTSTRAP", "").strip()
    if not address:
        pytest.fail(
            "KAFKA_BOOTSTRAP is not set: these tests need a real Kafka broker. Run `make test`, "
            "or `bash deploy/kafka/start.sh` and export KAFKA_BOOTSTRAP=127.0.0.1:19092.",
            pytrace=False,
        )
    return address


def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """Where each partition ends now: consume from here to see only what a test produced."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        return {(tp.topic, tp.partition): o for tp, o in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def consume(
    bootstrap: str,
    topics: Iterable[str],
    done: Callable[[list[Record]], bool],
    timeout: float = 30.0,
    start: dict[tuple[str, int], int] | None = None,
) -> list[Record]:
    """Records of the topics from ``start`` (default: the beginning) until ``done`` or timeout."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        consumer_timeout_ms=500,
    )  # fmt: skip
    out: list[Record] = []
    try:
        partitions = []
        for topic in topics:
            deadline = time.monotonic() + 10
            found = consumer.partitions_for_topic(topic)
            while not found and time.monotonic() < deadline:
                time.sleep(0.1)
                found = consumer.partitions_for_topic(topic)
            partitions += [TopicPartition(topic, p) for p in sorted(found or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        for tp in partitions:
            if start and (tp.topic, tp.partition) in start:
                consumer.seek(tp, start[tp.topic, tp.partition])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=300).items():
                out.extend(
                    (tp.topic, tp.partition, r.offset, r.key, orjson.loads(r.value))
                    for r in records
                )
            if done(out):
                break
    finally:
        consumer.close()
    return out


def click(i: int, run: str) -> Click:
    return Click(
        event_id=f"{run}-{i}",
        ts=1772359800000 + i,
        click_id=f"k-{run}-{i % 97}",
        campaign_id="c",
        partner_id="p",
    )


def new_topic(bootstrap: str, partitions: int = 3) -> str:
    name = f"clicktrail-it-edge-{uuid.uuid4().hex[:10]}"
    assert create_topics(bootstrap, partitions, topics=[name]) == [name]
    return name


def test_create_topics_sets_partitions_and_retention_once(bootstrap: str) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    names = [f"clicktrail-it-admin-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    assert create_topics(bootstrap, 4, timedelta(hours=2), topics=names) == names
    assert create_topics(bootstrap, 4, timedelta(hours=2), topics=names) == []
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics(names)}
        assert {len(described[n]["partitions"]) for n in names} == {4}
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, names[0])])
        assert configs["topic"][names[0]]["retention.ms"]["value"] == str(2 * 3600 * 1000)
    finally:
        admin.close()


def test_each_record_arrives_once_on_its_key_partition_in_order(
    bootstrap: str, tmp_path: Path
) -> None:
    topic = new_topic(bootstrap)
    run = uuid.uuid4().hex[:8]
    sent = [click(i, run) for i in range(3000)]

    async def produce() -> None:
        bus = KafkaBus(KafkaSettings(bootstrap), Spool(tmp_path))
        await bus.start()
        for record in sent:
            bus.publish(topic, record.click_id, record)
            if record.event_id.endswith("0"):
                await asyncio.sleep(0)
        assert await bus.drain(30)
        assert bus.mode == "direct"
        spooled.append(bus.counters.spooled)  # only on a machine too busy to ship in 1 s
        await bus.close()

    spooled: list[int] = []
    asyncio.run(produce())
    got = consume(bootstrap, [topic], lambda out: len(out) >= len(sent))
    assert sorted(r[4]["event_id"] for r in got) == sorted(r.event_id for r in sent)
    by_key: dict[bytes, list[int]] = defaultdict(list)
    for _, partition, _, key, value in sorted(got, key=lambda r: (r[1], r[2])):
        assert key is not None and partition == partition_for(key, [0, 1, 2])
        by_key[key].append(int(value["event_id"].rsplit("-", 1)[1]))
    if spooled == [0]:
        assert all(seq == sorted(seq) for seq in by_key.values()), "per-key order is kept"
    assert got[0][4] == orjson.loads(serialize(sent[int(got[0][4]["event_id"].rsplit("-", 1)[1])]))


def test_spool_is_replayed_first_then_direct_shipping_resumes(
    bootstrap: str, tmp_path: Path
) -> None:
    topic = new_topic(bootstrap, partitions=1)
    run = uuid.uuid4().hex[:8]
    spool = Spool(tmp_path)
    for i in range(500):
        record = click(i, run)
        spool.append(topic, record.click_id.encode(), serialize(record))
    spool.close()

    async def produce() -> None:
        bus = KafkaBus(KafkaSettings(bootstrap, replay_chunk=64), Spool(tmp_path))
        assert bus.mode == "spooling"
        await bus.start()
        for i in range(500, 700):
            bus.publish(topic, f"k-{i}", click(i, run))
        assert await bus.drain(30)
        assert bus.mode == "direct" and bus.counters.replayed >= 500
        await bus.close()

    asyncio.run(produce())
    got = consume(bootstrap, [topic], lambda out: len(out) >= 700)
    order = [int(r[4]["event_id"].rsplit("-", 1)[1]) for r in sorted(got, key=lambda r: r[2])]
    assert order == list(range(700)), "spooled records first, each once, in spool order"
    left = Spool(tmp_path)
    assert left.depth == 0
    left.close()


def test_unreachable_broker_spools_to_disk_and_close_keeps_it(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    run = uuid.uuid4().hex[:8]

    async def produce() -> None:
        settings = KafkaSettings(dead, request_timeout_ms=1000, spool_after_s=0.2)
        bus = KafkaBus(settings, Spool(tmp_path, fsync="always"))
        await bus.start()
        assert bus.mode == "spooling"
        assert not await bus.reachable(timeout=0.5)
        for i in range(100):
            bus.publish("clicktrail.clicks", f"k{i}", click(i, run))
        await asyncio.sleep(0.05)
        await bus.close(timeout=2)

    asyncio.run(produce())
    spool = Spool(tmp_path)
    records, _ = spool.read(1000)
    assert [orjson.loads(r.value)["event_id"] for r in records] == [
        f"{run}-{i}" for i in range(100)
    ]
    spool.close()
