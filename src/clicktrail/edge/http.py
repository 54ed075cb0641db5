"""Raw ASGI helpers for the hot endpoints: a reply object, query parsing, body reading.

The pixel, click and postback paths answer tens of thousands of requests per
second per core, so they skip framework request/response objects: headers are
pre-encoded and a reply is two ``send`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote_plus

import orjson
from starlette.types import Receive, Scope, Send

from clicktrail.edge.errors import EdgeError, error_body

Headers = list[tuple[bytes, bytes]]
NO_CACHE: Headers = [
    (b"cache-control", b"no-store, no-cache, must-revalidate, max-age=0"),
    (b"pragma", b"no-cache"),
    (b"expires", b"0"),
]
JSON_TYPE = (b"content-type", b"application/json")
TEXT_TYPE = (b"content-type", b"text/plain; charset=utf-8")
MAX_QUERY_FIELDS = 64


@dataclass(slots=True)
class Reply:
    """What an endpoint answers; ``send`` writes it in two ASGI messages."""

    status: int
    body: bytes = b""
    headers: Headers = field(default_factory=list)

    async def send(self, send: Send) -> None:
        headers = [*self.headers, (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def json_reply(status: int, data: object, headers: Headers | None = None) -> Reply:
    return Reply(status, orjson.dumps(data), [JSON_TYPE, *NO_CACHE, *(headers or [])])


def error_reply(error: EdgeError) -> Reply:
    body = error_body(error.reason, error.message, error.details)
    return Reply(error.status, body, [JSON_TYPE, *NO_CACHE])


def text_reply(status: int, text: str, content_type: bytes | None = None) -> Reply:
    kind = (b"content-type", content_type) if content_type else TEXT_TYPE
    return Reply(status, text.encode(), [kind, *NO_CACHE])


def _decode(part: str) -> str:
    if "%" in part:
        return unquote_plus(part, errors="replace")
    if "+" in part:
        return part.replace("+", " ")
    return part


def parse_query(raw: bytes, max_bytes: int) -> list[tuple[str, str]]:
    """``a=1&b=x+y`` -> pairs, percent-decoded as UTF-8; blanks kept, order kept."""
    if len(raw) > max_bytes:
        raise EdgeError(414, "query_too_long", f"the query string is longer than {max_bytes} bytes")
    if not raw:
        return []
    parts = raw.decode("utf-8", "replace").split("&")
    if len(parts) > MAX_QUERY_FIELDS:
        raise EdgeError(400, "too_many_params", f"at most {MAX_QUERY_FIELDS} query parameters")
    pairs = []
    for part in parts:
        if part:
            name, _, value = part.partition("=")
            pairs.append((_decode(name), _decode(value)))
    return pairs


def first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Name -> value of its first occurrence (a repeated parameter cannot override)."""
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    return params


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def media_type(scope: Scope) -> str:
    raw = header(scope, b"content-type") or b""
    return raw.decode("latin-1").split(";", 1)[0].strip().lower()


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes before reading it all."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise EdgeError(413, "payload_too_large", f"body is larger than {limit} bytes")
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise EdgeError(400, "client_disconnected", "the client went away mid-body")
        body.extend(message.get("body", b""))
        if len(body) > limit:
            raise EdgeError(413, "payload_too_large", f"body is larger than {limit} bytes")
        if not message.get("more_body", False):
            return bytes(body)
