"""Pipeline benchmarks: embedded events/s, ClickHouse sink rows/s, Faust worker events/s,
and postback -> queryable attributed row latency.

Each function runs one measurement and returns a row; ``clicktrail bench`` repeats them,
keeps the median and prints the table. Everything is local: a temporary chDB store, the
loopback Kafka broker, a ``clicktrail run`` child process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

T0 = datetime(2026, 3, 1, tzinfo=UTC)
OPERATOR_TOKEN = "bench-operator-token-0123456789"
"""Lets the latency benchmarks post every advertiser's events, as a backfill would."""
BENCH_CONFIG = """
advertisers: {acme: {postback_secret: bench-postback-secret-0123456789}}
campaigns:
  c0: {advertiser: acme, landing_url: "https://shop.example/"}
security: {click_id_key: bench-click-id-key-0123456789, operator_token: OPERATOR}
""".replace("OPERATOR", OPERATOR_TOKEN)


@functools.cache
def _scratch_dir() -> Path:
    """chDB opens one directory per process, so every measurement shares this one."""
    return Path(tempfile.mkdtemp(prefix="ct-bench-"))


def _scratch_store() -> Any:
    """A fresh database in the process's scratch chDB directory."""
    from clicktrail.sinks.migrations import migrate
    from clicktrail.sinks.store import Store

    store = Store(f"chdb://{_scratch_dir()}", f"b{uuid.uuid4().hex[:8]}")
    migrate(store)
    return store


def synthetic_events(count: int, seed: int = 7) -> list[bytes]:
    """A realistic mix: 60 % impressions, 35 % clicks, 5 % conversions of recent clicks."""
    rng = random.Random(seed)
    out: list[bytes] = []
    clicks: list[str] = []
    for i in range(count):
        ts = (T0 + timedelta(milliseconds=50 * i)).isoformat().replace("+00:00", "Z")
        user = {
            "user_id": f"u{rng.randrange(50_000)}",
            "ip": f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "country": rng.choice(["DE", "FR", "US"]),
            "device_type": rng.choice(["mobile", "desktop"]),
            "os": "android",
            "user_agent": "Mozilla/5.0",
        }
        roll = rng.random()
        event: dict[str, Any]
        if roll < 0.6:
            event = {
                "type": "impression",
                "event_id": f"i{i}",
                "ts": ts,
                "impression_id": f"m{i}",
                "campaign_id": f"c{rng.randrange(20)}",
                "partner_id": f"p{rng.randrange(30)}",
                "channel": "display",
                "cost": 0.001,
                "user": user,
            }
        elif roll < 0.95 or not clicks:
            event = {
                "type": "click",
                "event_id": f"c{i}",
                "ts": ts,
                "click_id": f"k{i}",
                "campaign_id": f"c{rng.randrange(20)}",
                "partner_id": f"p{rng.randrange(30)}",
                "channel": "affiliate",
                "cost": 0.2,
                "user": user,
            }
            clicks.append(f"k{i}")
        else:
            event = {
                "type": "conversion",
                "event_id": f"v{i}",
                "ts": ts,
                "click_id": rng.choice(clicks[-5000:]),
                "action": "purchase",
                "revenue": 30.0,
                "payout": 3.0,
                "txid": f"t{i}",
            }
        out.append(orjson.dumps(event))
    return out


def _cpu() -> float:
    return time.process_time()


def embedded_throughput(events: int) -> dict[str, Any]:
    """Events/s through intake, both stages and the sink (flushed), on one core."""
    from clicktrail.config import parse_registry
    from clicktrail.runtime.embedded import EmbeddedRuntime

    lines = synthetic_events(events)
    store = _scratch_store()
    runtime = EmbeddedRuntime(parse_registry({}), store)
    runtime.bus.begin_source("bench")
    wall, cpu = time.perf_counter(), _cpu()
    for n, line in enumerate(lines, start=1):
        runtime.submit_raw(line, "bench")
        if n % 5_000 == 0:
            runtime.process()
    runtime.close(end_of_input=True)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    return {"events": events, "events_per_s": events / wall, "events_per_cpu_s": events / cpu}


def sink_throughput(rows: int) -> dict[str, Any]:
    """Rows/s into ``clicks`` in 10 000-row inserts (the sink's default batch)."""
    from clicktrail.contracts import EVENT_ADAPTER
    from clicktrail.sinks.clickhouse import ClickHouseSink

    store = _scratch_store()
    records = [
        EVENT_ADAPTER.validate_json(line)
        for line in synthetic_events(rows * 3)
        if b'"type":"click"' in line
    ][:rows]
    sink = ClickHouseSink(store, max_rows=10_000, max_buffered=max(rows + 1, 10_000))
    sink.add(records[0], "warm", 0)
    sink.flush()
    inserts = 0
    elapsed = 0.0
    for start in range(0, len(records), 10_000):
        for offset, record in enumerate(records[start : start + 10_000], start=start + 1):
            sink.add(record, "bench", offset)
        began = time.perf_counter()
        sink.flush()
        elapsed += time.perf_counter() - began
        inserts += 1
    return {"rows": len(records), "rows_per_s": len(records) / elapsed, "inserts": inserts}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _service(config: str) -> Iterator[str]:
    """A ``clicktrail run`` child process on a free port with its own store; its base URL."""
    workdir = Path(tempfile.mkdtemp(prefix="ct-bench-"))
    (workdir / "registry.yaml").write_text(config, encoding="utf-8")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    service = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clicktrail.cli.main",
            "run",
            "--port",
            str(port),
            "--config",
            str(workdir / "registry.yaml"),
            "--store",
            f"chdb://{workdir / 'store'}",
        ],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(base)
        yield base
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)


def _percentiles(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]

    return {"samples": len(ordered), "p50_s": at(0.5), "p95_s": at(0.95), "p99_s": at(0.99)}


def postback_latency(samples: int) -> dict[str, Any]:
    """Time from an accepted conversion to its attributed row answering a query."""
    with _service(BENCH_CONFIG) as base:
        latencies = []
        now = datetime.now(UTC)
        for n in range(samples):
            ts = (now - timedelta(seconds=samples - n)).isoformat()
            click = {
                "type": "click",
                "event_id": f"bc{n}",
                "ts": ts,
                "click_id": f"bk{n}",
                "campaign_id": "c0",
                "partner_id": "p1",
            }
            conversion = {
                "type": "conversion",
                "event_id": f"bv{n}",
                "ts": ts,
                "click_id": f"bk{n}",
                "action": "purchase",
                "revenue": 10.0,
            }
            _post(f"{base}/v1/events", [click])
            _post(f"{base}/v1/events", [conversion])
            sent = time.perf_counter()
            sql = (
                f"SELECT count() FROM clicktrail.attributed_conversions "
                f"WHERE conversion_id = 'bv{n}'"
            )
            while _query(base, sql) != "1":
                if time.perf_counter() - sent > 30:
                    raise TimeoutError("attributed row did not appear within 30 s")
                time.sleep(0.01)
            latencies.append(time.perf_counter() - sent)
        return _percentiles(latencies)


ALERT_CONFIG = """
advertisers: {{northwind: {{postback_secret: bench-postback-secret-0123456789}}}}
brands:
  northwind:
    advertiser: northwind
    terms: [northwind]
    official_domains: [northwind.example]
    official_campaigns: [nw-search]
campaigns:
  nw-search: {{advertiser: northwind, brand: northwind, channel: search,
              landing_url: "https://northwind.example/"}}
  nw-affiliates: {{advertiser: northwind, brand: northwind, channel: affiliate,
                  landing_url: "https://northwind.example/"}}
alerts:
  destinations: {{hook: {{kind: webhook, url: "{url}", secret: bench-webhook-secret}}}}
  routes: [{{min_severity: info, destinations: [hook]}}]
security: {{click_id_key: bench-click-id-key-0123456789, operator_token: OPERATOR}}
""".replace("OPERATOR", OPERATOR_TOKEN)


def alert_latency(samples: int) -> dict[str, Any]:
    """Time from POSTing an unauthorized brand bid to its signed webhook arriving: intake,
    brand stage, routing and delivery, each sample a new offender (a new alert)."""
    arrived: dict[str, float] = {}
    done = threading.Condition()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            offender = orjson.loads(body)["evidence"]["offender"]
            with done:
                arrived.setdefault(offender, time.perf_counter())
                done.notify_all()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    try:
        with _service(ALERT_CONFIG.format(url=url)) as base:
            latencies = []
            for n in range(samples):
                offender = f"aff-bench-{n}"
                bid = {
                    "type": "impression",
                    "event_id": f"bi{n}",
                    "ts": datetime.now(UTC).isoformat(),
                    "impression_id": f"bm{n}",
                    "campaign_id": "nw-affiliates",
                    "partner_id": offender,
                    "channel": "search",
                    "keyword": "northwind boots",
                    "ad_domain": "deals.example",
                    "user": {"user_id": f"bu{n}"},
                }
                sent = time.perf_counter()
                _post(f"{base}/v1/events", [bid])
                with done:
                    if not done.wait_for(
                        functools.partial(dict.__contains__, arrived, offender), 30
                    ):
                        raise TimeoutError("no alert within 30 s")
                latencies.append(arrived[offender] - sent)
            return _percentiles(latencies)
    finally:
        receiver.shutdown()
        receiver.server_close()


def score_latency(samples: int) -> dict[str, Any]:
    """``GET /v1/score`` round trips on one keep-alive connection, after some traffic."""
    import http.client

    with _service(BENCH_CONFIG) as base:
        _post(f"{base}/v1/events", [orjson.loads(e) for e in synthetic_events(2_000)])
        connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
        path = "/v1/score?campaign=c3&partner=p7&country=DE&device=mobile&os=android"
        latencies = []
        for _ in range(samples):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"/v1/score answered {response.status}")
            latencies.append(time.perf_counter() - started)
        connection.close()
        return _percentiles(latencies)


def _wait_ready(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{base} did not become ready")


def _post(url: str, events: list[dict[str, Any]]) -> None:
    headers = {"content-type": "application/json", "authorization": f"Bearer {OPERATOR_TOKEN}"}
    request = urllib.request.Request(url, data=json.dumps(events).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _query(base: str, sql: str) -> str:
    request = urllib.request.Request(f"{base}/v1/query?format=tsv", data=sql.encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        lines = response.read().decode().splitlines()
    return lines[1] if len(lines) > 1 else ""


def faust_throughput(bootstrap: str, events: int, partitions: int = 4) -> dict[str, Any]:
    """Events/s through one Faust worker process: from the first message to zero lag."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

    from clicktrail.bench.edge import cpu_seconds

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="ct-bench-"))
    config = workdir / "registry.yaml"
    config.write_text(BENCH_CONFIG, encoding="utf-8")
    log = (workdir / "worker.log").open("wb")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clicktrail.cli.main",
            "worker",
            "--broker",
            bootstrap,
            "--partitions",
            str(partitions),
            "--app-id",
            prefix,
            "--config",
            str(config),
            "--store",
            f"chdb://{workdir / 'store'}",
            "--data-dir",
            str(workdir / "data"),
        ],
        env={**os.environ, "CLICKTRAIL_TOPIC_PREFIX": prefix},
        stdout=log,
        stderr=log,
    )
    log.close()
    try:
        deadline = time.monotonic() + 120
        while b"Worker ready" not in (workdir / "worker.log").read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("worker did not start: see " + str(workdir / "worker.log"))
            time.sleep(0.3)
        messages = _prepared(events, prefix)
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 20)
        for topic, key, value in messages:
            producer.send(topic, key=key, value=value)
        producer.flush()
        producer.close()
        started = time.perf_counter()
        cpu_before = cpu_seconds(worker.pid)
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        topics = [f"{prefix}.{t}" for t in ("impressions", "clicks", "conversions", "touches")]
        parts = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        while True:
            committed = admin.list_group_offsets(prefix).get(prefix, {})
            ends = consumer.end_offsets(parts)
            lag = sum(
                end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
            )
            if lag == 0:
                break
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"worker still {lag} behind after 600 s")
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(worker.pid) - cpu_before
        admin.close()
        consumer.close()
        return {
            "events": events,
            "events_per_s": events / elapsed,
            "events_per_cpu_s": events / cpu,
        }
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)


def _prepared(events: int, prefix: str) -> list[tuple[str, bytes, bytes]]:
    """The events as the edge would produce them: validated, keyed, serialized."""
    from clicktrail.bus.codec import serialize
    from clicktrail.bus.topics import partition_key
    from clicktrail.processors.intake import Intake, Rejection

    intake = Intake(clock=lambda: datetime(2099, 1, 1, tzinfo=UTC))
    out = []
    for line in synthetic_events(events):
        event = intake.parse(line)
        assert not isinstance(event, Rejection)
        topic = f"{prefix}.{event.type}s"
        out.append((topic, partition_key(event).encode(), serialize(event)))
    return out
