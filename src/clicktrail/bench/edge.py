"""Edge benchmark: requests/s and latency per endpoint, with the bus in the path.

:func:`bench_edge` starts the edge as a separate process on a loopback port
(one uvicorn worker, uvloop + httptools), pinned to one core when the machine
has two or more, and drives each endpoint for a few seconds from another
process on another core: ``wrk`` when installed, else the keep-alive asyncio
client in this module. Loopback only, bounded in time and request count.

:func:`producer_throughput` compares the Kafka clients as producers of the same
records (the reason the edge ships with aiokafka's batch API).

``python -m clicktrail.bench.edge [--bootstrap HOST:PORT] [--seconds S]`` prints both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ENDPOINTS = ("pixel", "click", "postback", "batch")
BATCH_EVENTS = 20
SECRET = "bench-postback-secret-0123456789"
CLICK_KEY = "bench-click-id-key-0123456789"
API_KEY = "bench-api-key-0123456789abcdef"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
MAX_REQUESTS = 2_000_000
CONFIG = f"""
advertisers:
  acme: {{postback_secret: {SECRET}, api_keys: [{API_KEY}]}}
campaigns:
  shop:
    advertiser: acme
    channel: search
    landing_url: "https://www.shop.example/?cid={{click_id}}&s={{sub1}}"
security: {{click_id_key: {CLICK_KEY}}}
"""


def _click_id() -> str:
    from clicktrail.processors.signing import ClickIdSigner

    return ClickIdSigner(CLICK_KEY).mint(int(time.time() * 1000), "acme")


def _batch_body() -> bytes:
    now = int(time.time() * 1000)
    lines = [
        json.dumps(
            {
                "type": "click",
                "event_id": f"b-{i}",
                "ts": now,
                "click_id": f"k-{i}",
                "campaign_id": "shop",
                "partner_id": "p",
                "user": {"ip": "203.0.113.9"},
            }
        )
        for i in range(BATCH_EVENTS)
    ]
    return "\n".join(lines).encode()


def _requests(endpoint: str) -> tuple[str, str, dict[str, str], bytes, bool]:
    """method, target, headers, body, unique (a fresh txid per request)."""
    headers = {"User-Agent": UA}
    if endpoint == "pixel":
        target = "/i.gif?cid=shop&pid=p1&kw=shop+shoes&cost=0.002&placement=top"
        return "GET", target, headers, b"", False
    if endpoint == "click":
        return "GET", "/c/shop?pid=p1&sub1=spring&gclid=Cj0K", headers, b"", False
    if endpoint == "postback":
        target = f"/postback?click_id={_click_id()}&event=purchase&revenue=10&key={SECRET}&txid="
        return "GET", target, headers, b"", True
    if endpoint == "batch":
        headers["Content-Type"] = "application/x-ndjson"
        headers["Authorization"] = f"Bearer {API_KEY}"
        return "POST", "/v1/events", headers, _batch_body(), False
    raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}")


# ---------------------------------------------------------------- clients


def _wrk_script(
    method: str, target: str, headers: dict[str, str], body: bytes, unique: bool
) -> str:
    lines = [f'wrk.method = "{method}"']
    for name, value in headers.items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    if body:
        lines.append(f"wrk.body = {json.dumps(body.decode())}")
    if unique:
        lines += [
            "local n = 0",
            "request = function()",
            "  n = n + 1",
            f'  return wrk.format(nil, "{target}" .. "w" .. os.time() .. "-" .. n)',
            "end",
        ]
    else:
        lines.append(f'wrk.path = "{target}"')
    return "\n".join(lines) + "\n"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no {label} latency:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _run_wrk(base: str, endpoint: str, seconds: float, connections: int) -> dict[str, float]:
    method, target, headers, body, unique = _requests(endpoint)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_wrk_script(method, target, headers, body, unique))
    try:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
                   "-s", script.name, base + target.split("?")[0]]  # fmt: skip
        result = _run_pinned(command, 1, seconds + 30)
    finally:
        os.unlink(script.name)
    text = result.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if result.returncode != 0 or rate is None:
        raise RuntimeError(f"wrk failed: {result.stderr or text}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    total = re.search(r"(\d+) requests in", text)
    return {
        "requests": float(total.group(1)) if total else 0.0,
        "requests_per_s": float(rate.group(1)),
        "p50_ms": _wrk_ms(text, "50%"),
        "p99_ms": _wrk_ms(text, "99%"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


async def _load(
    host: str, port: int, endpoint: str, seconds: float, connections: int
) -> dict[str, float]:
    """Keep-alive HTTP/1.1 load from asyncio streams: one request in flight per connection."""
    method, target, headers, body, unique = _requests(endpoint)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + seconds

    def request() -> bytes:
        nonlocal counter
        counter += 1
        path = f"{target}py{os.getpid()}-{counter}" if unique else target
        return (
            f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{head}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline and len(latencies) < MAX_REQUESTS:
                started = time.perf_counter()
                writer.write(request())
                status_line = await reader.readline()
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if status_line[9:10] not in (b"2", b"3"):
                    errors += 1
        finally:
            writer.close()

    begun = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - begun
    latencies.sort()
    if not latencies:
        raise RuntimeError("no request completed")
    return {
        "requests": float(len(latencies)),
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": float(errors),
    }


def _run_python_client(
    base: str, endpoint: str, seconds: float, connections: int
) -> dict[str, float]:
    port = base.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "clicktrail.bench.edge", "--load", endpoint, "--port", port,
               "--seconds", str(seconds), "--connections", str(connections)]  # fmt: skip
    result = _run_pinned(command, 1, seconds + 60)
    if result.returncode != 0:
        raise RuntimeError(f"load generator failed: {result.stderr}")
    return dict(json.loads(result.stdout))


def _pin(pid: int, cpu: int) -> None:
    """Keep a child on one core (server on one, load generator on another) when there are two."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {cpus[cpu % len(cpus)]})


def _run_pinned(command: list[str], cpu: int, timeout: float) -> subprocess.CompletedProcess[str]:
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        _pin(process.pid, cpu)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        return subprocess.CompletedProcess(command, process.returncode, out, err)


# ----------------------------------------------------------------- server


def _free_port() -> int:
    from clicktrail.edge.serve import free_port

    return free_port()


def _settle(base: str, timeout: float = 120.0) -> float:
    """Seconds until the edge has handed everything on (queue and spool empty)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with urllib.request.urlopen(base + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
        depth = sum(
            float(line.split()[1])
            for line in text.splitlines()
            if line.startswith(("clicktrail_edge_queue_depth ", "clicktrail_edge_spool_depth "))
        )
        if depth == 0:
            break
        time.sleep(0.05)
    return time.monotonic() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _edge_process(bus: str, work: Path, bootstrap: str | None) -> Iterator[tuple[str, int]]:
    config = work / "bench.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    port = _free_port()
    command = [sys.executable, "-m", "clicktrail.cli.main", "--log-level", "warning"]
    if bus == "embedded":
        command += ["run", "--config", str(config), "--port", str(port),
                    "--store", f"chdb://{work / 'store'}"]  # fmt: skip
    else:
        assert bootstrap is not None
        command += ["edge", "--config", str(config), "--port", str(port), "--broker", bootstrap,
                    "--spool-dir", str(work / "spool"), "--create-topics"]  # fmt: skip
    process = subprocess.Popen(command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pin(process.pid, 0)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                detail = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"the {bus} edge did not start: {detail}")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def bench_edge(
    bootstrap: str | None = None,
    *,
    seconds: float = 3.0,
    connections: int = 32,
    endpoints: Sequence[str] = ENDPOINTS,
    client: str = "auto",
) -> list[dict[str, Any]]:
    """Rows ``{endpoint, bus, requests_per_s, p50_ms, p99_ms, errors, drain_s,
    sustained_per_s, per_core_s, client}``.

    ``bus`` is ``embedded`` (``clicktrail run``: in-process bus and processing)
    and, given a bootstrap, ``kafka`` (``clicktrail edge``). A batch request
    carries 20 events. ``requests_per_s`` is what the load generator saw;
    ``drain_s`` how long the edge then needed to hand the backlog on (Kafka acks,
    or in-process processing), and ``sustained_per_s`` counts that time too.
    ``per_core_s`` is requests per second of the edge process's own CPU time:
    what one core sustains, whatever else the machine runs.
    """
    for endpoint in endpoints:
        _requests(endpoint)  # unknown names fail before anything starts
    use_wrk = client == "wrk" or (client == "auto" and shutil.which("wrk") is not None)
    run = _run_wrk if use_wrk else _run_python_client
    buses = ["embedded"] + (["kafka"] if bootstrap else [])
    rows = []
    for bus in buses:
        with (
            tempfile.TemporaryDirectory(prefix="clicktrail-bench-") as tmp,
            _edge_process(bus, Path(tmp), bootstrap) as (base, pid),
        ):
            for endpoint in endpoints:
                run(base, endpoint, min(1.0, seconds), connections)  # warm-up
                _settle(base)
                cpu = cpu_seconds(pid)
                result = run(base, endpoint, seconds, connections)
                drain = _settle(base)
                cpu = cpu_seconds(pid) - cpu
                total = result.pop("requests")
                rows.append(
                    {"endpoint": endpoint, "bus": bus, **result,
                     "drain_s": drain,
                     "sustained_per_s": total / (seconds + drain),
                     "per_core_s": total / cpu if cpu > 0 else float("nan"),
                     "client": "wrk" if use_wrk else "python"}
                )  # fmt: skip
    return rows


# --------------------------------------------------------------- producers


def producer_throughput(
    bootstrap: str, messages: int = 100_000, compression: str | None = None
) -> list[dict[str, Any]]:
    """msgs/s of the same serialized click records through each client (3-partition topic)."""
    import uuid

    from clicktrail.bus.admin import create_topics
    from clicktrail.bus.codec import serialize as to_bytes
    from clicktrail.bus.kafka import KafkaBus, KafkaSettings, best_compression
    from clicktrail.bus.spool import Spool
    from clicktrail.contracts import Click

    codec = compression or best_compression()
    topic = f"clicktrail-bench-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, 3, topics=[topic])
    records = [
        Click(event_id=f"e{i}", ts=1772359800000 + i, click_id=f"k{i:012d}.bench",
              campaign_id="shop", partner_id="p", user={"ip": "203.0.113.0", "user_agent": UA})
        for i in range(messages)
    ]  # fmt: skip
    keys = [r.click_id.encode() for r in records]
    rows = []

    def row(client: str, seconds: float) -> None:
        rows.append({"client": client, "compression": codec, "messages": messages,
                     "messages_per_s": messages / seconds})  # fmt: skip

    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=1 << 20,
        compression_type=codec if codec != "zstd" else "gzip",
    )  # fmt: skip
    producer.send(topic, b"warm", b"warm").get(10)
    started = time.perf_counter()
    for key, record in zip(keys, records, strict=True):
        producer.send(topic, key=key, value=to_bytes(record))
    producer.flush()
    row("kafka-python send()", time.perf_counter() - started)
    producer.close()

    async def aiokafka_send() -> float:
        from aiokafka import AIOKafkaProducer

        aio = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=1 << 20,
            compression_type=codec, enable_idempotence=True,
        )  # fmt: skip
        await aio.start()
        try:
            await (await aio.send(topic, b"warm", b"warm"))
            begun = time.perf_counter()
            futures = []
            for key, record in zip(keys, records, strict=True):
                futures.append(await aio.send(topic, key=key, value=to_bytes(record)))
            await asyncio.gather(*futures)
            return time.perf_counter() - begun
        finally:
            await aio.stop()

    row("aiokafka send()", asyncio.run(aiokafka_send()))

    async def bus_publish() -> float:
        with tempfile.TemporaryDirectory() as spool_dir:
            bus = KafkaBus(KafkaSettings(bootstrap, compression=codec), Spool(spool_dir))
            await bus.start()
            begun = time.perf_counter()
            for key, record in zip(keys, records, strict=True):
                bus.publish(topic, key.decode(), record)
                if len(bus._pending) >= 5000:
                    await asyncio.sleep(0)
            await bus.drain(120)
            elapsed = time.perf_counter() - begun
            await bus.close()
            return elapsed

    row("aiokafka batches (KafkaBus)", asyncio.run(bus_publish()))
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    names = list(rows[0])
    cells = [
        [f"{r[n]:,.2f}" if isinstance(r[n], float) else str(r[n]) for n in names] for r in rows
    ]
    widths = [max(len(n), *(len(c[i]) for c in cells)) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clicktrail.bench.edge")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP"))
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--producers", type=int, default=0, help="also compare Kafka clients")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:  # the load-generator process of the python client
        result = asyncio.run(
            _load("127.0.0.1", args.port, args.load, args.seconds, args.connections)
        )
        print(json.dumps(result))
        return 0
    rows = bench_edge(
        args.bootstrap, seconds=args.seconds, connections=args.connections,
        endpoints=args.endpoints.split(","), client=args.client,
    )  # fmt: skip
    print(_table(rows))
    if args.producers and args.bootstrap:
        print()
        print(_table(producer_throughput(args.bootstrap, args.producers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
