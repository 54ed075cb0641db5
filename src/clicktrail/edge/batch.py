"""``POST /v1/events``: server-side senders post a JSON array, one object, or NDJSON lines.

Each item goes through the intake gate on its own, so one bad event does not
sink its batch: the answer lists accepted count and every rejected index with
its reason. A body that is not JSON at all is dead-lettered whole.

The sender proves who it is with an API key (:mod:`clicktrail.edge.auth`), and each
event must lie within that key's scope (its advertiser's campaigns and clicks, or a
source's own partner): an event outside it is refused as ``not_owned`` and dead-lettered.
"""

from __future__ import annotations

from typing import Any

import orjson

from clicktrail.edge.auth import Principal
from clicktrail.edge.endpoint import Call, Endpoint
from clicktrail.edge.errors import EdgeError
from clicktrail.edge.http import Reply, json_reply, media_type, read_body
from clicktrail.processors.intake import Rejection

MAX_BATCH_EVENTS = 10_000
SOURCE = "edge:/v1/events"
JSON_TYPES = ("application/json", "text/json")
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")


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


class BatchIntake(Endpoint):
    name = "batch"
    source = SOURCE

    async def handle(self, call: Call) -> Reply:
        ctx = self.ctx
        principal = ctx.keys.authenticate(call.headers)
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
        accepted = ctx.metrics.accepted
        rejects = ctx.metrics.rejects
        rejected = []
        for index, item in enumerate(items):
            result = self._submit(principal, item)
            if isinstance(result, Rejection):
                rejects[self.name, result.reason] += 1
                rejected.append({"index": index, "error": result.reason, "message": result.message})
            else:
                accepted[result.type] += 1
        count = len(items) - len(rejected)
        if count == 0:
            return json_reply(
                400,
                {
                    "accepted": 0,
                    "rejected": rejected,
                    "error": "no_event_accepted",
                    "message": f"all {len(items)} events were refused; see 'rejected'",
                },
            )
        return json_reply(200, {"accepted": count, "rejected": rejected})

    def _submit(self, principal: Principal, item: Any) -> Any:
        """Validate, hold to the key's scope, publish (or dead-letter with the reason)."""
        gate = self.ctx.backend.gate
        result = gate.intake.parse(item) if isinstance(item, bytes) else gate.intake.validate(item)
        if not isinstance(result, Rejection):
            result = self.ctx.scope.admit(principal, result)
        return gate.settle(result, item, SOURCE)
