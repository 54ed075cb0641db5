"""``POST /v1/events``: server-side senders post a JSON array, one object, or NDJSON lines.

Each item goes through the intake gate on its own, so one bad event does not
sink its batch: the answer lists accepted count and every rejected index with
its reason. A body that is not JSON at all is dead-lettered whole.

The sender proves who it is with an API key (:mod:`clicktrail.edge.auth`), and each
event must lie within that key's scope (its advertiser's campaigns and clicks, or a
source's own partner): an event outside it is refused as ``not_owned`` and dead-lettered.

Validating 10,000 events takes a good part of a second, so a large batch is
validated in a worker thread, a chunk at a time, and each chunk published on
the event loop (publishing must stay there); between chunks the loop answers
everything else.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from clicktrail.contracts import AnyEvent
from clicktrail.edge.backend import EdgeBackend
from clicktrail.edge.endpoint import Call, Endpoint
from clicktrail.edge.errors import EdgeError
from clicktrail.edge.http import Reply, json_reply, media_type, read_body
from clicktrail.processors.intake import Rejection

MAX_BATCH_EVENTS = 10_000
SOURCE = "edge:/v1/events"
JSON_TYPES = ("application/json", "text/json")
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
INLINE_ITEMS = 64
"""Batches up to this many items are validated on the loop: a thread hop costs more."""
CHUNK_ITEMS = 500
"""Items per worker-thread validation, then published on the loop (a few milliseconds)."""

Admit = Callable[[AnyEvent], AnyEvent | Rejection]
"""What a valid event may become before it is published: itself, amended, or refused."""
"""A further test of a valid event (e.g. the sender's scope); a Rejection refuses it."""


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


def validate_all(backend: EdgeBackend, items: Sequence[Any]) -> list[AnyEvent | Rejection]:
    """Every item validated, nothing published: safe in a worker thread."""
    return [backend.validate(item) for item in items]


def batch_reply(total: int, accepted: int, rejected: list[dict[str, Any]]) -> Reply:
    if accepted == 0:
        return json_reply(
            400,
            {
                "accepted": 0,
                "rejected": rejected,
                "error": "no_event_accepted",
                "message": f"all {total} events were refused; see 'rejected'",
            },
        )
    return json_reply(200, {"accepted": accepted, "rejected": rejected})


class BatchIntake(Endpoint):
    name = "batch"
    source = SOURCE

    async def handle(self, call: Call) -> Reply:
        principal = self.ctx.keys.authenticate(call.headers)
        items = await self._read_items(call)
        admit = functools.partial(self.ctx.scope.admit, principal)
        accepted, rejected = await self._submit_items(items, admit)
        return batch_reply(len(items), accepted, rejected)

    async def _read_items(self, call: Call) -> list[Any]:
        ctx = self.ctx
        call.body = await read_body(call.scope, call.receive, ctx.body_limit)
        try:
            items = split_batch(call.body, media_type(call.scope))
        except EdgeError as error:
            if error.reason == "invalid_json":
                ctx.backend.reject(Rejection(error.reason, error.message), call.body, SOURCE)
            raise
        if not items:
            raise EdgeError(400, "empty_batch", "the batch holds no events")
        if len(items) > MAX_BATCH_EVENTS:
            raise EdgeError(413, "batch_too_large", f"at most {MAX_BATCH_EVENTS} events per batch")
        return items

    async def _submit_items(
        self, items: list[Any], admit: Admit | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """Validate, ``admit`` and publish every item; (accepted count, rejected entries).

        Validation runs in a worker thread for a large batch; publishing, ``admit`` and
        the counting run here on the loop, one chunk at a time.
        """
        backend = self.ctx.backend
        accepted_by_type = self.ctx.metrics.accepted
        rejects = self.ctx.metrics.rejects
        offload = len(items) > INLINE_ITEMS
        accepted = 0
        rejected: list[dict[str, Any]] = []
        for start in range(0, len(items), CHUNK_ITEMS):
            chunk = items[start : start + CHUNK_ITEMS]
            if offload:
                results = await asyncio.to_thread(validate_all, backend, chunk)
            else:
                results = validate_all(backend, chunk)
            for index, (item, valid) in enumerate(zip(chunk, results, strict=True), start):
                result = valid
                if admit is not None and not isinstance(valid, Rejection):
                    result = admit(valid)
                result = backend.settle(result, item, SOURCE)
                if isinstance(result, Rejection):
                    rejects[self.name, result.reason] += 1
                    rejected.append(
                        {"index": index, "error": result.reason, "message": result.message}
                    )
                else:
                    accepted_by_type[result.type] += 1
                    accepted += 1
        return accepted, rejected
