"""The scale-out edge over real HTTP into a real Kafka broker, including a broker outage.

Every accepted request must reach its topic exactly once (counted by id on the
consumed records), every refusal must reach the dead-letter topic with its
reason, and the edge must keep answering 2xx while the broker is away.
The outage test runs its own broker on port 19095 (``KAFKA_OUTAGE_PORT``) and always
stops it.
"""

from __future__ import annotations

import asyncio
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
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from tests.conftest import EXAMPLE_CONFIG, ROOT
from tests.integration.test_edge_http import Client
from tests.integration.test_kafka_producer import Record, bootstrap, consume, end_offsets

from clicktrail.bus.admin import create_topics
from clicktrail.bus.kafka import KafkaBus, KafkaSettings
from clicktrail.bus.spool import Spool
from clicktrail.bus.topics import CLICKS, CONVERSIONS, DEAD_LETTERS, EVENT_TOPICS, IMPRESSIONS
from clicktrail.config import Registry, load_registry
from clicktrail.edge.app import build_edge
from clicktrail.edge.backend import KafkaBackend
from clicktrail.edge.serve import free_port, serve_in_thread

pytestmark = pytest.mark.kafka
__all__ = ["bootstrap"]  # the fixture, re-used

OUTAGE_PORT = int(os.environ.get("KAFKA_OUTAGE_PORT", "19095"))
"""The broker the outage tests stop and start; another port when 19095 is taken."""
TOPICS = [IMPRESSIONS, CLICKS, CONVERSIONS, DEAD_LETTERS]


def registry() -> Registry:
    return load_registry(EXAMPLE_CONFIG)


class Traffic:
    """Sends pixels, clicks and postbacks and remembers the id of every accepted one."""

    def __init__(self, base: str, secret: str, run: str) -> None:
        self.client = Client(base)
        self.secret = secret
        self.run = run
        self.accepted: dict[str, list[str]] = {IMPRESSIONS: [], CLICKS: [], CONVERSIONS: []}
        self.statuses: Counter[int] = Counter()
        self.n = 0

    def one_round(self) -> None:
        i = self.n
        self.n += 1
        imp = f"imp-{self.run}-{i}"
        status, _, _ = self.client.get(
            "/i.gif", {"cid": "acme-brand-search", "pid": "agency-search", "iid": imp}
        )
        self.statuses[status] += 1
        if status == 200:
            self.accepted[IMPRESSIONS].append(imp)
        status, headers, _ = self.client.get(
            "/c/acme-affiliates", {"pid": "aff-coupons", "iid": imp}
        )
        self.statuses[status] += 1
        if status != 302:
            return
        click_id = parse_qs(urlsplit(headers["location"]).query)["cid"][0]
        self.accepted[CLICKS].append(click_id)
        txid = f"o-{self.run}-{i}"
        params = {"click_id": click_id, "txid": txid, "event": "purchase", "key": self.secret}
        status, _, body = self.client.get("/postback", params)
        self.statuses[status] += 1
        if status == 200 and not orjson.loads(body)["duplicate"]:
            self.accepted[CONVERSIONS].append(txid)
        if i % 10 == 0:  # a resend: answered, never produced twice
            status, _, body = self.client.get("/postback", params)
            assert status == 200 and orjson.loads(body)["duplicate"] is True


def ids(records: list[Record], run: str) -> dict[str, Counter[str]]:
    found: dict[str, Counter[str]] = {topic: Counter() for topic in EVENT_TOPICS.values()}
    field = {IMPRESSIONS: "impression_id", CLICKS: "click_id", CONVERSIONS: "txid"}
    for topic, _, _, _, value in records:
        if topic in field and run in str(value.get("impression_id") or value.get("txid") or ""):
            found[topic][value[field[topic]]] += 1
    return found


def assert_exactly_once(records: list[Record], traffic: Traffic) -> None:
    found = ids(records, traffic.run)
    for topic, accepted in traffic.accepted.items():
        assert accepted, f"no accepted {topic}"
        counts = found[topic]
        missing = [x for x in accepted if counts[x] == 0]
        twice = [x for x, n in counts.items() if n > 1]
        assert not missing, f"{len(missing)} accepted {topic} never arrived, e.g. {missing[:3]}"
        assert not twice, f"{len(twice)} {topic} arrived more than once, e.g. {twice[:3]}"
        assert set(counts) == set(accepted)


def all_arrived(traffic: Traffic) -> Any:
    expected = sum(len(v) for v in traffic.accepted.values())
    return lambda out: sum(sum(c.values()) for c in ids(out, traffic.run).values()) >= expected


def test_every_accepted_request_reaches_its_topic_once(bootstrap: str, tmp_path: Path) -> None:
    create_topics(bootstrap, 3)
    start = end_offsets(bootstrap, TOPICS)
    reg = registry()
    run = uuid.uuid4().hex[:10]
    bus = KafkaBus(KafkaSettings(bootstrap), Spool(tmp_path))
    with serve_in_thread(build_edge(KafkaBackend(reg, bus))) as base:
        traffic = Traffic(base, reg.advertisers["acme"].postback_secret, run)
        for _ in range(150):
            traffic.one_round()
        refusals = [
            ("/i.gif", {"cid": "ghost", "pid": f"p-{run}"}, 404),
            ("/c/acme-affiliates", {"pid": f"p-{run}", "url": "https://evil.example/"}, 400),
            ("/postback", {"click_id": f"forged.{run}", "key": traffic.secret}, 400),
            ("/postback", {"txid": f"t-{run}", "key": "wrong-secret-wrong"}, 403),
        ]
        for path, params, code in refusals:
            status, _, _ = traffic.client.get(path, params)
            assert status == code
        assert traffic.client.get("/readyz")[0] == 200
        traffic.client.close()
    assert bus.spool.closed and bus.counters.spooled == 0
    records = consume(
        bootstrap,
        TOPICS,
        lambda out: (
            all_arrived(traffic)(out)
            and sum(run in v.get("payload", "") for t, _, _, _, v in out if t == DEAD_LETTERS) >= 4
        ),
        start=start,
    )
    assert_exactly_once(records, traffic)
    letters = [v for t, _, _, _, v in records if t == DEAD_LETTERS and run in v["payload"]]
    assert sorted(v["reason"] for v in letters) == [
        "bad_signature",
        "forged_click_id",
        "landing_domain_not_allowed",
        "unknown_campaign",
    ]
    assert all("wrong-secret" not in v["payload"] for v in letters)


# ------------------------------------------------------------------ outage


def broker(action: str, data_dir: Path, keep: bool) -> None:
    env = {
        **os.environ,
        "KAFKA_PORT": str(OUTAGE_PORT),
        "KAFKA_DATA_DIR": str(data_dir),
        "KAFKA_KEEP_DATA": "1" if keep else "0",
    }
    script = ROOT / "deploy" / "kafka" / f"{action}.sh"
    result = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture
def own_broker(bootstrap: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A second broker on ``OUTAGE_PORT`` that this test may stop and start; always stopped."""
    data_dir = tmp_path / "kafka-data"
    broker("start", data_dir, keep=True)
    try:
        yield f"127.0.0.1:{OUTAGE_PORT}", data_dir
    finally:
        broker("stop", data_dir, keep=False)


def metric(client: Client, name: str) -> float:
    _, _, body = client.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def test_nothing_is_lost_or_doubled_across_a_broker_outage(
    own_broker: tuple[str, Path], tmp_path: Path
) -> None:
    address, data_dir = own_broker
    create_topics(address, 3)
    reg = registry()
    run = uuid.uuid4().hex[:10]
    settings = KafkaSettings(address, spool_after_s=0.5, retry_backoff_s=0.2, max_backoff_s=1.0)
    bus = KafkaBus(settings, Spool(tmp_path / "spool"))
    stop = threading.Event()
    with serve_in_thread(build_edge(KafkaBackend(reg, bus))) as base:
        traffic = Traffic(base, reg.advertisers["acme"].postback_secret, run)
        errors: list[BaseException] = []

        def burst() -> None:
            try:
                while not stop.is_set() and traffic.n < 5000:
                    traffic.one_round()
                    time.sleep(0.003)
            except BaseException as error:  # surfaced below
                errors.append(error)

        sender = threading.Thread(target=burst)
        sender.start()
        watcher = Client(base)
        try:
            time.sleep(1.0)
            broker("stop", data_dir, keep=True)
            down_at = traffic.n
            deadline = time.monotonic() + 15
            while metric(watcher, "clicktrail_edge_spool_depth") == 0:
                assert time.monotonic() < deadline, "the edge never spooled while Kafka was down"
                time.sleep(0.1)
            assert watcher.get("/readyz")[0] == 503
            time.sleep(1.0)
            broker("start", data_dir, keep=True)
            time.sleep(1.0)
        finally:
            stop.set()
            sender.join(30)
        assert not errors, errors
        assert traffic.n > down_at + 10, "requests kept being answered during the outage"
        assert set(traffic.statuses) <= {200, 302}, traffic.statuses
        deadline = time.monotonic() + 60
        while metric(watcher, "clicktrail_edge_spool_depth") or metric(
            watcher, "clicktrail_edge_queue_depth"
        ):
            assert time.monotonic() < deadline, "the spool was not replayed"
            time.sleep(0.2)
        assert metric(watcher, "clicktrail_edge_spooling") == 0
        watcher.close()
        traffic.client.close()
    assert bus.counters.replayed > 0
    records = consume(address, TOPICS[:3], all_arrived(traffic), timeout=30)
    assert_exactly_once(records, traffic)


# ------------------------------------------------------------------ SIGTERM


def test_sigterm_keeps_spooled_events_and_the_next_edge_delivers_them(
    bootstrap: str, tmp_path: Path
) -> None:
    """Kafka down: the edge still answers; SIGTERM leaves every event in the spool on disk;
    a new edge with the same spool delivers them."""
    spool_dir = tmp_path / "spool"
    port = free_port()
    start = end_offsets(bootstrap, [IMPRESSIONS])
    edge = subprocess.Popen(
        [sys.executable, "-m", "clicktrail.cli.main", "edge", "--dev",
         "--config", str(EXAMPLE_CONFIG),
         "--broker", f"127.0.0.1:{free_port()}", "--port", str(port),
         "--spool-dir", str(spool_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    run = uuid.uuid4().hex[:10]
    try:
        assert edge.stdout is not None
        assert "listening on" in edge.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        client = Client(base)
        while True:
            try:
                if client.get("/healthz")[0] == 200:
                    break
            except OSError:
                client.close()
                assert time.monotonic() < deadline, "the edge did not start"
                time.sleep(0.1)
        sent = [f"imp-{run}-{i}" for i in range(50)]
        for imp in sent:
            status, _, _ = client.get(
                "/i.gif", {"cid": "acme-brand-search", "pid": "p", "iid": imp}
            )
            assert status == 200
        client.close()
    finally:
        edge.send_signal(signal.SIGTERM)
        _, stderr = edge.communicate(timeout=30)
    assert edge.returncode == 0, stderr
    spool = Spool(spool_dir)
    assert spool.depth == 50, stderr
    spool.close()

    async def deliver() -> None:
        bus = KafkaBus(KafkaSettings(bootstrap), Spool(spool_dir))
        await bus.start()
        assert await bus.drain(30)
        await bus.close()

    asyncio.run(deliver())
    records = consume(
        bootstrap,
        [IMPRESSIONS],
        lambda out: sum(run in str(v.get("impression_id")) for *_, v in out) >= 50,
        start=start,
    )
    found = Counter(v["impression_id"] for *_, v in records if run in str(v.get("impression_id")))
    assert found == Counter(sent)
