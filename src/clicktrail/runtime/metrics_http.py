"""``/metrics`` (and ``/healthz``) for a process without an HTTP server of its own.

A Faust worker runs with Faust's web server off: turning it on would also publish its
table browser and internal pages. This is the least that Prometheus needs instead: one
``asyncio`` server on the worker's own loop, answering ``GET /metrics`` with the
registry rendered at that moment and closing the connection. Requests are read with a
deadline and a size cap, so a slow or oversized client costs nothing but its socket.
"""

from __future__ import annotations

import asyncio

import structlog

from clicktrail.telemetry import MetricsRegistry

log = structlog.get_logger(__name__)

PROMETHEUS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
READ_SECONDS = 5.0
MAX_HEADER_LINES = 100


def _reply(status: bytes, body: bytes, media_type: bytes = b"text/plain; charset=utf-8") -> bytes:
    head = (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: " + media_type + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n"
    )
    return head + body


def answer(registry: MetricsRegistry, request_line: bytes) -> bytes:
    """The whole response to one request line (``GET /metrics HTTP/1.1``)."""
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        return _reply(b"400 Bad Request", b"bad request\n")
    method, target = parts[0], parts[1].split(b"?", 1)[0]
    if target not in (b"/metrics", b"/healthz"):
        return _reply(b"404 Not Found", b"not found\n")
    if method not in (b"GET", b"HEAD"):
        return _reply(b"405 Method Not Allowed", b"method not allowed\n")
    if target == b"/healthz":
        return _reply(b"200 OK", b"ok\n")
    reply = _reply(b"200 OK", registry.render().encode(), PROMETHEUS_TYPE)
    return reply.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" if method == b"HEAD" else reply


async def serve(registry: MetricsRegistry, host: str, port: int) -> asyncio.Server:
    """Listen on ``host:port`` (0: a free port) until the returned server is closed."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_SECONDS):
                request_line = await reader.readline()
                for _ in range(MAX_HEADER_LINES):
                    if (await reader.readline()).strip() == b"":
                        break
            writer.write(answer(registry, request_line))
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass  # the client went away or never finished its request
        except Exception:  # a failing collector must not take the worker down
            log.exception("metrics.render_failed")
            writer.write(_reply(b"500 Internal Server Error", b"metrics failed\n"))
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port, limit=16 << 10)
