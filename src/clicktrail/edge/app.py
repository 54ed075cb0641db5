"""The HTTP service: batch intake, health and a read-only SQL endpoint.

Small Starlette endpoints over the embedded runtime. Client mistakes are
answered with a 4xx and a reason code; anything that looked like an event
and was refused is dead-lettered with that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from clicktrail.edge.errors import EdgeError, error_response, handle_edge_error
from clicktrail.processors.intake import Rejection
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import StoreError

log = structlog.get_logger(__name__)

MAX_BATCH_EVENTS = 10_000
FLUSH_INTERVAL = 0.5
QUERY_TOKEN_ENV = "CLICKTRAIL_QUERY_TOKEN"
JSON_TYPES = ("application/json", "text/json")
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise EdgeError(413, "payload_too_large", f"body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise EdgeError(413, "payload_too_large", f"body is larger than {limit} bytes")
    return bytes(body)


def split_batch(body: bytes, content_type: str) -> list[Any]:
    """A JSON array, a single JSON object, or NDJSON lines (raw bytes kept per line)."""
    if content_type in NDJSON_TYPES:
        return [line for line in body.splitlines() if line.strip()]
    if content_type not in JSON_TYPES:
        raise EdgeError(
            415,
            "unsupported_media_type",
            "send application/json (an event or an array) or application/x-ndjson",
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise EdgeError(400, "invalid_json", f"body is not valid JSON: {error}") from None
    return data if isinstance(data, list) else [data]


class Endpoints:
    """Request handlers over one runtime; each is a plain async function of a request."""

    def __init__(self, runtime: EmbeddedRuntime, query_token: str | None) -> None:
        self.runtime = runtime
        self.body_limit = runtime.registry.intake.max_event_bytes * 64
        self.query_token = query_token

    async def intake_events(self, request: Request) -> Response:
        runtime = self.runtime
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await read_body(request, self.body_limit)
        try:
            items = split_batch(body, content_type)
        except EdgeError as error:
            if error.reason == "invalid_json":
                runtime.gate.reject(Rejection(error.reason, error.message), body, "edge:/v1/events")
            raise
        if not items:
            raise EdgeError(400, "empty_batch", "the batch holds no events")
        if len(items) > MAX_BATCH_EVENTS:
            raise EdgeError(413, "batch_too_large", f"at most {MAX_BATCH_EVENTS} events per batch")
        rejected = []
        for index, item in enumerate(items):
            if isinstance(item, bytes):
                result = runtime.submit_raw(item, "edge:/v1/events")
            else:
                result = runtime.submit(item, "edge:/v1/events")
            if isinstance(result, Rejection):
                rejected.append({"index": index, "error": result.reason, "message": result.message})
        runtime.process()
        accepted = len(items) - len(rejected)
        status = 400 if accepted == 0 else 200
        return JSONResponse({"accepted": accepted, "rejected": rejected}, status_code=status)

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(self, request: Request) -> Response:
        try:
            await asyncio.to_thread(self.runtime.store.rows, "SELECT 1")
        except StoreError as error:
            return error_response(503, "store_unavailable", str(error))
        return PlainTextResponse("ready")

    async def query(self, request: Request) -> Response:
        client = request.client.host if request.client else ""
        if not _loopback(client):
            supplied = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not self.query_token or supplied != self.query_token:
                raise EdgeError(
                    403, "forbidden", f"SQL is served to loopback or with ${QUERY_TOKEN_ENV}"
                )
        sql = (await read_body(request, 1_048_576)).decode("utf-8", errors="replace").strip()
        sql = sql or request.query_params.get("sql", "")
        if not sql:
            raise EdgeError(400, "missing_sql", "send the SQL as the request body")
        output = request.query_params.get("format", "table")
        try:
            result = await asyncio.to_thread(self.runtime.store.read_only, sql, output)
        except StoreError as error:
            raise EdgeError(400, "query_failed", str(error)) from None
        return Response(result, media_type="text/plain; charset=utf-8")


def build_app(runtime: EmbeddedRuntime, *, query_token: str | None = None) -> Starlette:
    token = query_token if query_token is not None else os.environ.get(QUERY_TOKEN_ENV)
    endpoints = Endpoints(runtime, token)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(_flush_periodically(runtime))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            runtime.close()

    return Starlette(
        routes=[
            Route("/v1/events", endpoints.intake_events, methods=["POST"]),
            Route("/v1/query", endpoints.query, methods=["GET", "POST"]),
            Route("/healthz", endpoints.healthz),
            Route("/readyz", endpoints.readyz),
        ],
        exception_handlers={EdgeError: handle_edge_error},
        lifespan=lifespan,
    )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _flush_periodically(runtime: EmbeddedRuntime) -> None:
    while True:
        await asyncio.sleep(FLUSH_INTERVAL)
        try:
            runtime.process()
            runtime.sink.flush()
        except StoreError as error:
            log.warning("sink.flush_failed", error=str(error))
