"""Round trips through a real Kafka broker (KRaft) with both Python clients.

Needs a running broker whose address is in ``KAFKA_BOOTSTRAP``; locally::

    bash deploy/kafka/start.sh      # prints KAFKA_BOOTSTRAP=127.0.0.1:19092
    KAFKA_BOOTSTRAP=127.0.0.1:19092 .venv/bin/python -m pytest -m kafka tests/integration
    bash deploy/kafka/stop.sh

or just ``make test``. A missing ``KAFKA_BOOTSTRAP`` is a test *failure*, not a
skip, so CI can never go green without having talked to a real broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import defaultdict

import pytest

pytestmark = pytest.mark.kafka

N_MESSAGES = 300
N_KEYS = 30
N_PARTITIONS = 3
CONSUME_DEADLINE_S = 15.0


# --------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def bootstrap() -> str:
    addr = os.environ.get("KAFKA_BOOTSTRAP", "").strip()
    if not addr:
        pytest.fail(
            "KAFKA_BOOTSTRAP is not set: these tests need a real Kafka broker. "
            "Run `make test` (starts/stops one), or start one with "
            "`bash deploy/kafka/start.sh` and set KAFKA_BOOTSTRAP=127.0.0.1:19092.",
            pytrace=False,
        )
    return addr


@pytest.fixture(scope="module")
def admin(bootstrap):
    from kafka import KafkaAdminClient

    try:
        client = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="clicktrail-it-admin",
            request_timeout_ms=10_000,
            bootstrap_timeout_ms=10_000,
        )
    except Exception as exc:  # pragma: no cover - only when the broker is down
        pytest.fail(
            f"cannot reach Kafka at KAFKA_BOOTSTRAP={bootstrap!r}: {exc!r}. "
            "Is the broker running (`bash deploy/kafka/start.sh`)?",
            pytrace=False,
        )
    yield client
    client.close()


@pytest.fixture
def topic(admin, request):
    """A fresh, uniquely named topic with N_PARTITIONS partitions; deleted afterwards."""
    name = f"clicktrail-it-{request.node.name[:40]}-{uuid.uuid4().hex[:10]}"
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)
    admin.create_topics(
        {name: {"num_partitions": N_PARTITIONS, "replication_factor": 1}},
        timeout_ms=10_000,
        wait_for_metadata=True,
    )
    described = {t["name"]: t for t in admin.describe_topics([name])}
    assert len(described[name]["partitions"]) == N_PARTITIONS
    yield name
    with contextlib.suppress(Exception):  # best effort; the broker is throwaway anyway
        admin.delete_topics([name], timeout_ms=10_000)


def _messages(run_id: str) -> list[tuple[bytes, bytes]]:
    """N_MESSAGES (key, value) pairs over N_KEYS keys; every value is unique."""
    return [
        (f"user-{i % N_KEYS:03d}".encode(), f'{{"run":"{run_id}","seq":{i}}}'.encode())
        for i in range(N_MESSAGES)
    ]


def _java_partition(key: bytes, n_partitions: int = N_PARTITIONS) -> int:
    """Partition chosen by the Java client's default partitioner (murmur2)."""
    from kafka.partitioner.default import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % n_partitions


def _check_roundtrip(sent, produced_partition, received):
    """Common assertions.

    sent: list of (key, value) in produce order
    produced_partition: {value: partition} from the producer's record metadata
    received: list of (partition, offset, key, value) as consumed
    """
    # Exactly the payloads we sent, each exactly once.
    assert len(received) == len(sent), f"got {len(received)} of {len(sent)} messages"
    assert sorted((k, v) for _, _, k, v in received) == sorted(sent)

    # Key -> partition is a function, the same one the Java client uses, and it
    # agrees between producer metadata and what the consumer saw.
    key_partitions = defaultdict(set)
    for partition, _, key, value in received:
        key_partitions[key].add(partition)
        assert produced_partition[value] == partition
    for key, parts in key_partitions.items():
        assert parts == {_java_partition(key)}, (key, parts)
    assert len({p for p, *_ in received}) == N_PARTITIONS, "keys should spread over all partitions"

    # Per-key order is preserved (a key lives in one partition).
    by_key_sent = defaultdict(list)
    for key, value in sent:
        by_key_sent[key].append(value)
    by_key_recv = defaultdict(list)
    for _, _, key, value in sorted(received, key=lambda r: (r[0], r[1])):
        by_key_recv[key].append(value)
    assert by_key_recv == by_key_sent


# ----------------------------------------------------------------- kafka-python


def test_kafka_python_roundtrip(bootstrap, topic):
    from kafka import KafkaConsumer, KafkaProducer

    sent = _messages(uuid.uuid4().hex)

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, client_id="clicktrail-it-producer", acks="all", linger_ms=5
    )
    try:
        futures = [(v, producer.send(topic, key=k, value=v)) for k, v in sent]
        producer.flush(timeout=10)
        produced_partition = {v: f.get(timeout=10).partition for v, f in futures}
    finally:
        producer.close(timeout=5)

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"clicktrail-it-{uuid.uuid4().hex[:8]}",
        client_id="clicktrail-it-consumer",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    received = []
    try:
        consumer.subscribe([topic])  # exercises the group coordinator (join/sync)
        deadline = time.monotonic() + CONSUME_DEADLINE_S
        while len(received) < len(sent) and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                received.extend((tp.partition, r.offset, r.key, r.value) for r in records)
        assert {tp.partition for tp in consumer.assignment()} == set(range(N_PARTITIONS))
        consumer.commit()
    finally:
        consumer.close(autocommit=False)

    _check_roundtrip(sent, produced_partition, received)


# --------------------------------------------------------------------- aiokafka


def test_aiokafka_roundtrip(bootstrap, topic):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition

    sent = _messages(uuid.uuid4().hex)

    async def run():
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="clicktrail-it-aioproducer",
            acks="all",
            linger_ms=5,
        )
        await producer.start()
        try:
            futures = [(v, await producer.send(topic, key=k, value=v)) for k, v in sent]
            await producer.flush()
            produced_partition = {v: (await f).partition for v, f in futures}
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"clicktrail-it-aio-{uuid.uuid4().hex[:8]}",
            client_id="clicktrail-it-aioconsumer",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        received = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + CONSUME_DEADLINE_S
            while len(received) < len(sent) and loop.time() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    received.extend((tp.partition, r.offset, r.key, r.value) for r in records)
            assert consumer.assignment() == {TopicPartition(topic, p) for p in range(N_PARTITIONS)}
            await consumer.commit()
        finally:
            await consumer.stop()
        return produced_partition, received

    produced_partition, received = asyncio.run(asyncio.wait_for(run(), timeout=30))
    _check_roundtrip(sent, produced_partition, received)


# ------------------------------------------------------------------ cross-client


def test_cross_client_kafka_python_to_aiokafka(bootstrap, topic):
    """Written by kafka-python, read by aiokafka: same bytes, same partitions."""
    from aiokafka import AIOKafkaConsumer
    from kafka import KafkaProducer

    sent = _messages(uuid.uuid4().hex)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [(v, producer.send(topic, key=k, value=v)) for k, v in sent]
        producer.flush(timeout=10)
        produced_partition = {v: f.get(timeout=10).partition for v, f in futures}
    finally:
        producer.close(timeout=5)

    async def consume():
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"clicktrail-it-x-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        received = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + CONSUME_DEADLINE_S
            while len(received) < len(sent) and loop.time() < deadline:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    received.extend((tp.partition, r.offset, r.key, r.value) for r in records)
        finally:
            await consumer.stop()
        return received

    received = asyncio.run(asyncio.wait_for(consume(), timeout=30))
    _check_roundtrip(sent, produced_partition, received)
