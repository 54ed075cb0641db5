"""Serving the edge with uvicorn: one configuration for the CLI, the tests and the benchmark.

uvloop and httptools are what make the per-request cost small; access logs are
off (metrics count requests instead), and so is uvicorn's own X-Forwarded-For
handling, which would believe any loopback peer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp


def server_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
        # X-Forwarded-For is read by the edge itself, from edge.trusted_proxies only
        proxy_headers=False,
        server_header=False,
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp, port: int | None = None, timeout: float = 15.0) -> Iterator[str]:
    """Run the app on a loopback port in a background thread; yields its base URL.

    Leaving the block shuts the server down the way SIGTERM does (lifespan
    shutdown included), so tests see the same flush-on-exit behaviour.
    """
    port = port or free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, name=f"edge-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the edge did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
