"""``/v1/query``: analyst SQL through the running embedded service (``clicktrail query``).

Served only where the edge holds the embedded store. Who may ask: a caller with
the operator token (``Authorization: Bearer``; ``security.operator_token`` or
``$CLICKTRAIL_OPERATOR_TOKEN``), or a loopback peer while no trusted proxy is
configured: with one, a loopback peer may be that proxy relaying anyone.

What may run is decided by :meth:`Store.read_only` (one SELECT, parsed by sqlglot
and by ClickHouse, under :class:`~clicktrail.sinks.store.QueryLimits`). The query
runs on a daemon thread of its own, not the loop's default executor: that
executor is joined when the server exits, and a query must never hold SIGTERM up.
While a query is in flight, SIGTERM/SIGINT also cancel it in the engine and
answer it (503), so uvicorn's graceful shutdown, which waits for in-flight
responses, ends promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import ipaddress
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl

from clicktrail.edge.auth import OPERATOR_TOKEN_ENV
from clicktrail.edge.context import EdgeContext
from clicktrail.edge.endpoint import Call, Endpoint
from clicktrail.edge.errors import EdgeError
from clicktrail.edge.http import Reply, header, read_body
from clicktrail.sinks.store import CANCEL_WAIT_SECONDS, QueryRefused, Store, StoreError

MAX_SQL = 1_048_576
MAX_IN_FLIGHT = 4
"""Analyst queries at once; the read-only session runs them one after another anyway."""
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Query(Endpoint):
    name = "query"

    def __init__(
        self,
        ctx: EdgeContext,
        store: Store,
        token: str | None,
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        super().__init__(ctx)
        self.store = store
        self.token = token
        # a trusted proxy may sit on this host and relay anyone from loopback
        self.trust_loopback = not trusted_proxies
        self.in_flight = 0
        self.shutdown = ShutdownSignal()

    def authorize(self, call: Call) -> None:
        client = call.scope.get("client")
        if self.trust_loopback and loopback(client[0] if client else ""):
            return
        raw = (header(call.scope, b"authorization") or b"").decode("latin-1").strip()
        scheme, _, supplied = raw.partition(" ")
        if scheme.lower() != "bearer" or not supplied.strip():
            raise EdgeError(
                401,
                "missing_token",
                f"send 'Authorization: Bearer <operator token>' (${OPERATOR_TOKEN_ENV})",
            )
        expected = (self.token or "").encode()
        # compare_digest even without a configured token, so timing tells nothing
        matches = hmac.compare_digest(supplied.strip().encode(), expected)
        if not (matches and self.token):
            raise EdgeError(403, "bad_token", "the operator token is not valid")

    async def handle(self, call: Call) -> Reply:
        self.authorize(call)
        params = dict(parse_qsl(call.scope["query_string"].decode("utf-8", "replace")))
        body = await read_body(call.scope, call.receive, MAX_SQL)
        sql = body.decode("utf-8", errors="replace").strip() or params.get("sql", "")
        if not sql:
            raise EdgeError(400, "missing_sql", "send the SQL as the request body")
        output = params.get("format", "table")
        if self.in_flight >= MAX_IN_FLIGHT:
            raise EdgeError(429, "too_many_queries", f"{MAX_IN_FLIGHT} queries are running")
        self.in_flight += 1
        if self.in_flight == 1:
            self.shutdown.watch()
        try:
            result = await self.run(sql, output)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.shutdown.unwatch()
        return Reply(200, result, [(b"content-type", b"text/plain; charset=utf-8")])

    async def run(self, sql: str, output: str) -> bytes:
        query = run_detached(self.store.read_only, sql, output)
        stop: asyncio.Future[Any] = asyncio.ensure_future(self.shutdown.event.wait())
        try:
            await asyncio.wait([query, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not query.done():
            # stop the engine's work too: a thread still inside chDB when the interpreter
            # exits takes the process down with it
            query.add_done_callback(_retrieved)  # nobody reads its outcome now
            await run_detached(self.store.cancel_analyst_queries)
            await asyncio.wait([query], timeout=CANCEL_WAIT_SECONDS)
            raise EdgeError(503, "shutting_down", "the service is stopping; ask again later")
        try:
            return query.result()
        except QueryRefused as refused:
            raise EdgeError(400, refused.reason, str(refused)) from None
        except StoreError as error:
            raise EdgeError(400, "query_failed", str(error)) from None


def _retrieved(future: asyncio.Future[bytes]) -> None:
    if not future.cancelled():
        future.exception()


def run_detached(fn: Callable[..., bytes], *args: Any) -> asyncio.Future[bytes]:
    """``fn(*args)`` on a daemon thread of its own; its result lands in the returned future.

    Unlike ``asyncio.to_thread`` nothing joins this thread when the loop or the
    interpreter exits, so a long query cannot hold the process open.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bytes] = loop.create_future()

    def deliver(outcome: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed first: nobody is waiting
            loop.call_soon_threadsafe(outcome)

    def settle(result: bytes | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or b"")

    def work() -> None:
        try:
            result = fn(*args)
        except BaseException as error:
            deliver(functools.partial(settle, None, error))
        else:
            deliver(functools.partial(settle, result, None))

    threading.Thread(target=work, name="clicktrail-query", daemon=True).start()
    return future


class ShutdownSignal:
    """Sets ``event`` on SIGTERM/SIGINT while watched, then lets the previous handler
    (uvicorn's graceful shutdown) run as before.

    Installed only while a query is in flight and only from the main thread (where
    ``clicktrail run`` serves); elsewhere the query's time limit bounds shutdown.
    """

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self) -> None:
        self.event = asyncio.Event()
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = asyncio.get_running_loop()
        for sig in SHUTDOWN_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def unwatch(self) -> None:
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._handle:  # nobody replaced us meanwhile
                signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.event.set)
        previous = self._previous.get(signum, signal.SIG_DFL)
        self.unwatch()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.raise_signal(signum)
