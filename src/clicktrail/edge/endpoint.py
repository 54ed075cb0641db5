"""The shape every edge endpoint shares: an ASGI callable that answers, counts and dead-letters.

Subclasses implement ``handle(call) -> Reply`` and raise
:class:`~clicktrail.edge.errors.EdgeError` for client mistakes. The base class
turns that into a 4xx JSON answer, counts it, and for endpoints that carry
events writes the dead letter with the reason (unless the intake gate already
did). Nothing a client sends produces a 500; a bug still does, logged.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import quote

import structlog
from starlette.types import Receive, Scope, Send

from clicktrail.edge.context import EdgeContext
from clicktrail.edge.errors import EdgeError
from clicktrail.edge.http import Reply, error_reply
from clicktrail.processors.intake import Rejection
from clicktrail.processors.redaction import MASK, SECRET_NAMES

log = structlog.get_logger(__name__)
INTERNAL = EdgeError(500, "internal_error", "the edge failed to handle this request")
NOT_DURABLE = EdgeError(
    503, "not_durable", "the event could not be stored durably; send it again later"
)
URL_CHARS = "".join(chr(c) for c in range(0x21, 0x7F))


def plain_url(raw: bytes) -> bytes:
    """A Referer as a URL of printable ASCII: other bytes (UTF-8 paths, tabs) percent-encoded,
    which is how the URL is spelled anyway, so the contract's text check never refuses
    a click for its referrer."""
    if raw.isascii() and raw.decode("ascii").isprintable() and b" " not in raw:
        return raw
    return quote(raw, safe=URL_CHARS).encode()


@dataclass(slots=True)
class Call:
    """One request as the endpoint sees it; ``pairs`` / ``body`` are kept for dead letters."""

    scope: Scope
    receive: Receive
    headers: dict[bytes, bytes]
    pairs: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class Endpoint(ABC):
    """An ASGI callable for one route: parse, ``handle``, answer; typed errors become 4xx."""

    name: ClassVar[str] = "other"
    event_type: ClassVar[str | None] = None
    """Set on endpoints whose refusals are dead-lettered (they carried an event)."""
    source: ClassVar[str] = "edge"

    def __init__(self, ctx: EdgeContext) -> None:
        self.ctx = ctx

    @abstractmethod
    async def handle(self, call: Call) -> Reply:
        """What the route does with one request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        referrer = headers.get(b"referer")
        if referrer:
            headers[b"referer"] = plain_url(referrer)
        call = Call(scope, receive, headers)
        try:
            if scope["method"] == "HEAD" and self.event_type is not None:
                # link checkers and prefetchers: answering must not record an event
                raise EdgeError(
                    405, "method_not_allowed", "HEAD records nothing; use GET", recorded=True
                )
            reply = await self.handle(call)
        except EdgeError as error:
            reply = self.refuse(call, error)
        except Exception:
            log.exception("edge.endpoint_failed", endpoint=self.name, path=scope.get("path"))
            reply = error_reply(INTERNAL)
        reply = await self.made_durable(reply)
        self.ctx.metrics.requests[self.name, reply.status] += 1
        await reply.send(send)

    async def made_durable(self, reply: Reply) -> Reply:
        """The answer goes out once what it acknowledges (events, dead letters) is durable;
        if that fails, a 503 says to send again (a repeat is recognised by event id)."""
        started = time.perf_counter()
        try:
            await self.ctx.backend.durable()
        except OSError as error:
            log.error("edge.not_durable", endpoint=self.name, error=str(error))
            return error_reply(NOT_DURABLE)
        self.ctx.metrics.durable.observe(time.perf_counter() - started)
        return reply

    def refuse(self, call: Call, error: EdgeError) -> Reply:
        self.ctx.metrics.rejects[self.name, error.reason] += 1
        if self.event_type is not None and not error.recorded:
            rejection = Rejection(error.reason, error.message, self.event_type)
            self.ctx.backend.reject(rejection, self.dead_letter_payload(call), self.source)
        return error_reply(error)

    def dead_letter_payload(self, call: Call) -> str:
        """The request line and body as text: enough to see what was sent. Secrets known by
        name are masked here already; the intake redacts the whole letter again (IPs,
        secrets in bodies) before it is stored. Headers are never kept."""
        scope = call.scope
        pairs = call.pairs or []
        if pairs:
            query = "&".join(
                f"{name}={MASK if name.lower() in SECRET_NAMES else value}" for name, value in pairs
            )
        else:
            query = scope.get("query_string", b"")[:65_536].decode("utf-8", "replace")
        text = f"{scope.get('method', 'GET')} {scope.get('path', '')}"
        if query:
            text += f"?{query}"
        if call.body:
            text += "\n" + call.body[:65_536].decode("utf-8", "replace")
        return text
