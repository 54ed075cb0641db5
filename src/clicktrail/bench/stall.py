"""Does a big batch stall the edge? ``/healthz`` latency while 10,000 events go through.

A ``clicktrail run`` child process gets one ``POST /v1/events`` of simulated
traffic (the simulator's registry and events: impressions, clicks, conversions,
fraud and brand patterns), while another client asks ``GET /healthz`` every
few milliseconds until the batch is processed and flushed. Anything that runs
on the event loop for long (validation, processing, a ClickHouse insert) shows
up as a slow ``/healthz``.
"""

from __future__ import annotations

import http.client
import math
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from clicktrail.edge.batch import MAX_BATCH_EVENTS

PROBE_EVERY = 0.005
"""Seconds between two ``/healthz`` requests of the probing client."""
AFTER_DRAIN = 1.0
"""Seconds the probe goes on once the queue is empty: the last chunk and the timed flush."""
BODY_PER_EVENT_LIMIT = 64
"""The edge accepts a body of 64 times ``intake.max_event_bytes`` (see EdgeContext)."""

OPERATOR_TOKEN = "bench-operator-token-0123456789"


def simulated_batch(events: int, directory: Path) -> tuple[dict[str, Any], bytes]:
    """The simulator's registry (its body limit raised to fit) and ``events`` NDJSON lines."""
    from clicktrail.simulate import Options, simulate

    if not 1 <= events <= MAX_BATCH_EVENTS:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_EVENTS} events")
    simulate(Options(out=directory, events=events))
    lines = (directory / "events.jsonl").read_bytes().splitlines()[:events]
    body = b"\n".join(lines)
    registry = yaml.safe_load((directory / "registry.yaml").read_text(encoding="utf-8"))
    registry.setdefault("security", {})["operator_token"] = OPERATOR_TOKEN
    intake = registry.setdefault("intake", {})
    needed = math.ceil(len(body) / BODY_PER_EVENT_LIMIT)
    intake["max_event_bytes"] = max(int(intake.get("max_event_bytes", 65_536)), needed)
    return registry, body


def _queue_depth(base: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("clicktrail_edge_queue_depth ")
    )


class Probe:
    """``GET /healthz`` on one keep-alive connection every ``every`` seconds, in a thread.

    A stalled answer also counts the probes it kept from being sent: a client asking
    every ``every`` seconds would have waited ``L - every``, ``L - 2 * every``, ... for
    them. Without that, a stall of seconds is one sample among hundreds and hides
    below the 99th percentile (coordinated omission).
    """

    def __init__(self, base: str, every: float = PROBE_EVERY) -> None:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=60)
        self.every = every
        self.latencies: list[float] = []
        self.sent = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="healthz-probe", daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        self.connection.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            self.connection.request("GET", "/healthz")
            response = self.connection.getresponse()
            response.read()
            self.record(time.perf_counter() - started)
            if response.status != 200:
                self.failures += 1
            self._stop.wait(self.every)

    def record(self, latency: float) -> None:
        self.sent += 1
        while latency > 0:
            self.latencies.append(latency)
            latency -= self.every

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        if not ordered:
            raise RuntimeError("the probe got no answer")

        def at(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

        return {
            "samples": len(ordered),
            "sent": self.sent,
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
            "max_ms": ordered[-1] * 1000,
            "failures": self.failures,
        }


def healthz_under_batch(events: int = MAX_BATCH_EVENTS) -> dict[str, Any]:
    """``/healthz`` p50/p99/max (ms) while one batch of ``events`` is posted and processed;
    also how long the POST took and when the queue was empty."""
    from clicktrail.bench.pipeline import _service

    with tempfile.TemporaryDirectory(prefix="ct-stall-") as tmp:
        registry, body = simulated_batch(events, Path(tmp))
        with _service(yaml.safe_dump(registry)) as base:
            host, port = base.removeprefix("http://").rsplit(":", 1)
            poster = http.client.HTTPConnection(host, int(port), timeout=300)
            with Probe(base) as probe:
                time.sleep(0.2)  # a few quiet samples first
                began = time.perf_counter()
                headers = {
                    "content-type": "application/x-ndjson",
                    "authorization": f"Bearer {OPERATOR_TOKEN}",
                }
                poster.request("POST", "/v1/events", body, headers)
                answer = poster.getresponse()
                reply = answer.read()
                posted = time.perf_counter() - began
                if answer.status != 200:
                    raise RuntimeError(f"the batch was refused: {answer.status} {reply[:200]!r}")
                while _queue_depth(base) > 0:
                    if time.perf_counter() - began > 300:
                        raise TimeoutError("the batch was not processed within 300 s")
                    time.sleep(0.05)
                drained = time.perf_counter() - began
                time.sleep(AFTER_DRAIN)
            poster.close()
    return {"events": events, "post_s": posted, "drained_s": drained, **probe.summary()}
