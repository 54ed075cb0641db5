"""Kafka mode: an acknowledged event survives a SIGKILL of the edge.

An acknowledgement waits for ``KafkaBus.durable()``: the broker acked the record, or it
is in the spool and synced. Each test kills the producing process with SIGKILL right
after acknowledgements (while more requests are under way), starts it again on the
same spool with the real broker, and reads the topic: every acknowledged event is there
exactly once, and nothing is there twice. Once with the broker up, once with the broker
unreachable (everything goes through the spool).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import EXAMPLE_CONFIG, ROOT
from tests.integration.kafka_helpers import bootstrap
from tests.integration.test_edge_http import Client
from tests.integration.test_edge_kafka import OUTAGE_PORT, broker
from tests.integration.test_kafka_producer import consume

from clicktrail.bus.admin import create_topics
from clicktrail.bus.kafka import KafkaBus, KafkaSettings
from clicktrail.bus.spool import Spool
from clicktrail.contracts import Click
from clicktrail.edge.backend import BusBackend
from clicktrail.edge.serve import free_port

pytestmark = pytest.mark.kafka
RUN = uuid.uuid4().hex[:8]

PRODUCER = """
import asyncio, sys
from clicktrail.bus.kafka import KafkaBus, KafkaSettings
from clicktrail.bus.spool import Spool
from clicktrail.contracts import Click

broker, spool, topic, run = sys.argv[1:5]

async def main() -> None:
    bus = KafkaBus(KafkaSettings(broker, request_timeout_ms=2000), Spool(spool))
    await bus.start()
    sent = 0
    while True:
        for _ in range(25):
            bus.publish(topic, f"k{sent % 13}", Click(
                event_id=f"{run}-{sent}", ts=1772359800000 + sent, click_id=f"c{sent}",
                campaign_id="c", partner_id="p"))
            sent += 1
        await bus.durable()
        print("durable", sent, flush=True)

asyncio.run(main())
"""


def click(i: int) -> Click:
    ts = 1772359800000 + i
    return Click(event_id=f"{RUN}-{i}", ts=ts, click_id=f"c{i}", campaign_id="c", partner_id="p")


def dead_broker() -> str:
    return f"127.0.0.1:{free_port()}"


def deliver_spool(spool_dir: Path) -> None:
    """What a restarted edge does first: replay its spool to the (real) broker."""

    async def deliver() -> None:
        bus = KafkaBus(KafkaSettings(bootstrap()), Spool(spool_dir))
        await bus.start()
        assert await bus.drain(30), "the spool was not delivered"
        await bus.close()

    asyncio.run(deliver())


def check_once(found: Counter[str], acknowledged: list[str]) -> None:
    missing = [x for x in acknowledged if not found[x]]
    twice = [x for x, n in found.items() if n > 1]
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged lost: {missing[:3]}"
    assert not twice, f"{len(twice)} written twice: {twice[:3]}"


@pytest.mark.parametrize("broker_up", [True, False], ids=["broker_up", "broker_down"])
def test_what_durable_returned_for_survives_a_sigkill(tmp_path: Path, broker_up: bool) -> None:
    """The bus alone, in a process of its own: batches of 25 records, ``durable()`` after
    each, the count printed when it returns; killed once 1,000 are acknowledged."""
    topic = f"t{uuid.uuid4().hex[:10]}.clicks"
    create_topics(bootstrap(), 3, topics=[topic])
    run = uuid.uuid4().hex[:8]
    spool_dir = tmp_path / "spool"
    address = bootstrap() if broker_up else dead_broker()
    process = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, address, str(spool_dir), topic, run],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    acknowledged = 0
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the bus logs on stdout too
            if not line.startswith("durable "):
                continue
            acknowledged = int(line.split()[1])
            if acknowledged >= 1000:
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.kill()
        _, stderr = process.communicate(timeout=10)
    assert acknowledged >= 1000, stderr[-3000:]
    deliver_spool(spool_dir)
    wanted = [f"{run}-{i}" for i in range(acknowledged)]
    records = consume(
        bootstrap(), [topic], lambda out: {r[4]["event_id"] for r in out} >= set(wanted)
    )
    check_once(Counter(r[4]["event_id"] for r in records), wanted)


# ------------------------------------------------------------------ the edge process


class Edge:
    def __init__(self, broker: str, spool_dir: Path, prefix: str, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        handle = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clicktrail.cli.main", "edge", "--dev",
             "--config", str(EXAMPLE_CONFIG), "--broker", broker, "--port", str(self.port),
             "--spool-dir", str(spool_dir)],
            stdout=handle, stderr=handle, env={**os.environ, "CLICKTRAIL_TOPIC_PREFIX": prefix},
        )  # fmt: skip
        handle.close()
        self.log = log
        deadline = time.monotonic() + 30
        client = Client(self.base)
        while True:
            try:
                if client.get("/healthz")[0] == 200:
                    break
            except OSError:
                client.close()
            assert self.process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the edge did not start"
            time.sleep(0.1)
        client.close()

    def metric(self, name: str) -> float:
        client = Client(self.base)
        try:
            body = client.get("/metrics")[2].decode()
        finally:
            client.close()
        return next(float(line.split()[1]) for line in body.splitlines() if line.startswith(name))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=30)


@contextlib.contextmanager
def pixels(base: str, run: str, senders: int) -> Iterator[tuple[list[str], threading.Event]]:
    """Impression pixels from ``senders`` threads until stopped or the edge goes away;
    yields the ids acknowledged (200) so far and the stop flag."""
    acknowledged: list[str] = []
    stop = threading.Event()

    def send(n: int) -> None:
        client = Client(base)
        i = 0
        try:
            while not stop.is_set():
                iid = f"imp-{run}-{n}-{i}"
                status, _, _ = client.get(
                    "/i.gif", {"cid": "acme-brand-search", "pid": "p", "iid": iid}
                )
                if status == 200:
                    acknowledged.append(iid)
                i += 1
        except OSError:  # killed: requests under way are not acknowledged
            pass
        finally:
            client.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    try:
        yield acknowledged, stop
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)


@pytest.mark.skipif(
    not hasattr(BusBackend, "durable"),
    reason="the edge's endpoints do not await backend.durable() before answering yet",
)
@pytest.mark.parametrize("broker_up", [True, False], ids=["broker_up", "broker_down"])
def test_an_edge_killed_after_answering_loses_no_acknowledged_event(
    tmp_path: Path, broker_up: bool
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    topic = f"{prefix}.impressions"
    create_topics(bootstrap(), 3, topics=[topic])
    run = uuid.uuid4().hex[:8]
    spool_dir = tmp_path / "spool"
    edge = Edge(bootstrap() if broker_up else dead_broker(), spool_dir, prefix, tmp_path / "a.log")
    try:
        with pixels(edge.base, run, senders=4) as (acknowledged, _):
            deadline = time.monotonic() + 30
            while len(acknowledged) < 400:
                assert time.monotonic() < deadline, edge.log.read_text()[-3000:]
                time.sleep(0.01)
            edge.stop(signal.SIGKILL)  # senders are still sending
            answered = list(acknowledged)
    finally:
        edge.stop(signal.SIGKILL)
    restarted = Edge(bootstrap(), spool_dir, prefix, tmp_path / "b.log")
    try:
        deadline = time.monotonic() + 30
        while restarted.metric("clicktrail_edge_spool_depth"):
            assert time.monotonic() < deadline, "the restarted edge did not deliver its spool"
            time.sleep(0.2)
    finally:
        restarted.stop()
    records = consume(
        bootstrap(), [topic], lambda out: {r[4]["impression_id"] for r in out} >= set(answered)
    )
    found = Counter(r[4]["impression_id"] for r in records if run in r[4]["impression_id"])
    check_once(found, answered)


# ------------------------------------------------------------------ a stalled broker


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A broker of this test's own on ``OUTAGE_PORT``, to stall; always stopped."""
    data_dir = tmp_path / "kafka-data"
    broker("start", data_dir, keep=False)
    try:
        yield f"127.0.0.1:{OUTAGE_PORT}", data_dir
    finally:
        broker("stop", data_dir, keep=False)


def test_a_stalled_broker_delays_acknowledgements_by_spool_after_s_at_most(
    own_broker: tuple[str, Path], tmp_path: Path
) -> None:
    """The broker's process is stopped (SIGSTOP) for 3 s under a steady stream: batches in
    flight then wait for an answer that does not come. ``durable()`` still returns within
    about ``spool_after_s`` (they are spooled); once the broker runs again, what it took
    after all is not replayed a second time, and the rest is."""
    address, _ = own_broker
    topic = f"t{uuid.uuid4().hex[:10]}.clicks"
    create_topics(address, 3, topics=[topic])
    pid = int((ROOT / "deploy/kafka/.cache" / f"run-{OUTAGE_PORT}" / "kafka.pid").read_text())
    settings = KafkaSettings(address, spool_after_s=0.5, retry_backoff_s=0.2, max_backoff_s=1.0)
    waits: list[float] = []

    async def stream() -> int:
        bus = KafkaBus(settings, Spool(tmp_path / "spool"))
        await bus.start()

        async def request(i: int) -> None:
            bus.publish(topic, f"k{i % 13}", click(i))
            started = time.monotonic()
            await bus.durable()
            waits.append(time.monotonic() - started)

        tasks = []
        began = time.monotonic()
        stalled = False
        try:
            while time.monotonic() - began < 6:
                elapsed = time.monotonic() - began
                if 1 < elapsed < 4 and not stalled:
                    os.kill(pid, signal.SIGSTOP)
                    stalled = True
                elif elapsed >= 4 and stalled:
                    os.kill(pid, signal.SIGCONT)
                    stalled = False
                tasks.append(asyncio.create_task(request(len(tasks))))
                await asyncio.sleep(0.005)
        finally:
            os.kill(pid, signal.SIGCONT)
        await asyncio.gather(*tasks)
        assert bus.counters.spooled_in_flight > 0, "no batch was caught in flight"
        assert await bus.drain(60), "the spool was not replayed"
        await bus.close()
        return len(tasks)

    sent = asyncio.run(stream())
    assert max(waits) < settings.spool_after_s + 0.5, sorted(waits)[-5:]
    wanted = [f"{RUN}-{i}" for i in range(sent)]
    records = consume(address, [topic], lambda out: {r[4]["event_id"] for r in out} >= set(wanted))
    check_once(Counter(r[4]["event_id"] for r in records), wanted)
