"""``KafkaBus.durable``: what an acknowledgement waits for, on a scripted broker.

The producer is replaced by one whose batches are acked (or failed) when the test says,
so group commit, the bound on a slow broker and the replay of batches that were spooled
while in flight can be checked without Kafka (tests/faults/test_edge_faults.py kills a
real edge).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from clicktrail.bus.kafka import KafkaBus, KafkaSettings
from clicktrail.bus.spool import Spool
from clicktrail.contracts import Click

TOPIC = "t.clicks"


class Batch:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    def append(self, *, key: bytes | None, value: bytes, timestamp: None) -> object:
        self.values.append(value)
        return object()


class Broker:
    """A producer whose batches wait until the test acks or fails them."""

    def __init__(self, *, auto_ack: bool = True) -> None:
        self.auto_ack = auto_ack
        self.sent: list[tuple[Batch, asyncio.Future[None]]] = []
        self.client = SimpleNamespace(cluster=SimpleNamespace(partitions_for_topic=self._parts))

    @staticmethod
    def _parts(topic: str) -> set[int]:
        return {0}

    def create_batch(self) -> Batch:
        return Batch()

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> Any:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.append((batch, future))
        if self.auto_ack:
            asyncio.get_running_loop().call_later(0.002, _resolve, future, None)
        return future

    async def stop(self) -> None:
        return None

    def landed(self) -> list[bytes]:
        return [v for batch, f in self.sent if f.done() and not f.exception() for v in batch.values]


def _resolve(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class ScriptedBus(KafkaBus):
    def __init__(self, broker: Broker, spool: Spool, **settings: Any) -> None:
        super().__init__(KafkaSettings("scripted:9092", **settings), spool)
        self.broker = broker

    async def _connect(self) -> bool:
        self._producer = self.broker
        return True


def click(i: int) -> Click:
    return Click(
        event_id=f"e-{i}", ts=1772359800000 + i, click_id=f"k-{i}", campaign_id="c", partner_id="p"
    )


def run(body: Callable[[ScriptedBus, Broker], Awaitable[None]], tmp_path: Path, **kw: Any) -> None:
    broker = Broker(auto_ack=kw.pop("auto_ack", True))

    async def main() -> None:
        bus = ScriptedBus(broker, Spool(tmp_path / "spool"), **kw)
        await bus.start()
        try:
            await body(bus, broker)
        finally:
            await bus.close(timeout=1)

    asyncio.run(main())


def test_concurrent_callers_share_one_round_and_return_once_acked(tmp_path: Path) -> None:
    async def body(bus: ScriptedBus, broker: Broker) -> None:
        await bus.durable()  # nothing published: at once
        assert broker.sent == []

        async def request(i: int) -> None:
            bus.publish(TOPIC, f"k-{i}", click(i))
            await bus.durable()
            assert f'"e-{i}"'.encode() in b"".join(broker.landed()), "returned before its ack"

        await asyncio.gather(*(request(i) for i in range(50)))
        assert len(broker.sent) == 1, "fifty callers, one batch"
        assert bus.spool.depth == 0

    run(body, tmp_path)


def test_a_slow_broker_has_the_records_spooled_within_the_bound(tmp_path: Path) -> None:
    """The broker never answers: durable() returns after about spool_after_s with the
    records synced to the spool; the batch then lands after all, and the replay skips
    it instead of writing it twice."""

    async def body(bus: ScriptedBus, broker: Broker) -> None:
        for i in range(10):
            bus.publish(TOPIC, f"k-{i}", click(i))
        started = time.monotonic()
        await bus.durable()
        waited = time.monotonic() - started
        assert 0.2 <= waited < 0.6, waited
        assert bus.spool.depth == 10 and bus.mode == "spooling"
        assert len(broker.sent) == 1
        await asyncio.sleep(0.2)
        assert bus.spool.depth == 10, "no replay while the spooled batch may still land"
        broker.auto_ack = True
        _resolve(broker.sent[0][1], None)  # the late ack
        assert await bus.drain(5)
        assert len(broker.sent) == 1 and bus.mode == "direct", "landed once, not replayed"

    run(body, tmp_path, auto_ack=False, spool_after_s=0.2, retry_backoff_s=0.05)


def test_a_spooled_batch_that_fails_late_is_replayed(tmp_path: Path) -> None:
    async def body(bus: ScriptedBus, broker: Broker) -> None:
        for i in range(10):
            bus.publish(TOPIC, f"k-{i}", click(i))
        await bus.durable()
        assert bus.spool.depth == 10
        broker.auto_ack = True
        _resolve(broker.sent[0][1], ConnectionError("broker gone"))
        assert await bus.drain(5)
        assert len(broker.sent) == 2, "the failed batch went again, from the spool"
        assert sorted(broker.landed()) == sorted(broker.sent[0][0].values)

    run(body, tmp_path, auto_ack=False, spool_after_s=0.2, retry_backoff_s=0.05)


@pytest.mark.parametrize("fsync", ["always", "interval"])
def test_without_a_broker_durable_means_synced_to_the_spool(tmp_path: Path, fsync: str) -> None:
    syncs: list[int] = []

    class Counting(Spool):
        def sync(self) -> None:
            syncs.append(self.depth)
            super().sync()

    async def main() -> None:
        bus = KafkaBus(
            KafkaSettings("127.0.0.1:1", request_timeout_ms=500, spool_after_s=0.2),
            Counting(tmp_path / "spool", fsync=fsync),  # type: ignore[arg-type]
        )
        bus._connect = _refuse  # type: ignore[method-assign]
        await bus.start()
        assert bus.mode == "spooling"
        syncs.clear()

        async def request(i: int) -> None:
            bus.publish(TOPIC, f"k-{i}", click(i))
            await bus.durable()

        await asyncio.gather(*(request(i) for i in range(30)))
        assert syncs and syncs[-1] == 30, syncs
        await bus.close(timeout=1)

    asyncio.run(main())


async def _refuse() -> bool:
    return False
