"""The metrics registry and the worker's small ``/metrics`` server."""

from __future__ import annotations

import asyncio
import math

import pytest
from tests.exposition import parse

from clicktrail.runtime.metrics_http import answer, serve
from clicktrail.telemetry import Histogram, MetricsRegistry, counter, family


def registry() -> MetricsRegistry:
    metrics = MetricsRegistry()
    seen = {("a\\b",): 2, ('say "x"',): 1}
    metrics.collect(lambda: counter("clicktrail_things_total", "Things.", ("kind",), seen))
    metrics.gauge("clicktrail_unknown_yet", "Nothing known before the first event.", lambda: None)
    metrics.gauge("clicktrail_big", "Printed in full.", lambda: 1772668800.25)
    return metrics


class TestRendering:
    def test_every_family_has_help_and_type_and_values_survive(self) -> None:
        families = parse(registry().render())
        things = families["clicktrail_things_total"]
        assert things.by("kind") == {("a\\\\b",): 2.0, ('say \\"x\\"',): 1.0}
        assert families["clicktrail_unknown_yet"].samples == {}
        assert families["clicktrail_big"].value() == 1772668800.25

    def test_a_counter_must_end_in_total(self) -> None:
        with pytest.raises(ValueError, match="_total"):
            counter("clicktrail_things", "Things.", (), {(): 1})

    def test_special_values(self) -> None:
        lines = family("clicktrail_x", "gauge", "X.", ("k",), {("a",): math.nan, ("b",): math.inf})
        assert lines[2:] == ['clicktrail_x{k="a"} NaN', 'clicktrail_x{k="b"} +Inf']

    def test_histogram_buckets_are_cumulative(self) -> None:
        observed = Histogram((0.1, 1.0))
        for value in (0.05, 0.5, 0.5, 5.0):
            observed.observe(value)
        text = "\n".join(observed.render("h")) + "\n"
        assert 'h_bucket{le="0.1"} 1\nh_bucket{le="1.0"} 3\nh_bucket{le="+Inf"} 4' in text


class TestServer:
    def test_answers(self) -> None:
        metrics = registry()
        ok = answer(metrics, b"GET /metrics HTTP/1.1")
        head, body = ok.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200 OK") and b"version=0.0.4" in head
        parse(body.decode())
        assert answer(metrics, b"HEAD /metrics HTTP/1.1").endswith(b"\r\n\r\n")
        assert answer(metrics, b"GET /healthz HTTP/1.0").endswith(b"\r\n\r\nok\n")
        assert b" 404 " in answer(metrics, b"GET /tables HTTP/1.1")
        assert b" 405 " in answer(metrics, b"POST /metrics HTTP/1.1")
        assert b" 400 " in answer(metrics, b"garbage")

    def test_serves_over_tcp(self) -> None:
        async def go() -> bytes:
            server = await serve(registry(), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /metrics HTTP/1.1\r\nhost: x\r\naccept: */*\r\n\r\n")
                data = await reader.read()
                writer.close()
                return data
            finally:
                server.close()
                await server.wait_closed()

        data = asyncio.run(go())
        assert data.startswith(b"HTTP/1.1 200 OK")
        assert "clicktrail_things_total" in parse(data.split(b"\r\n\r\n", 1)[1].decode())
