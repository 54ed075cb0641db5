"""``/v1/query``: read-only SQL through the running embedded service (``clicktrail query``).

Only where the edge holds the embedded store; loopback callers, or a bearer
token from ``$CLICKTRAIL_QUERY_TOKEN``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import parse_qsl

from clicktrail.edge.context import EdgeContext
from clicktrail.edge.endpoint import Call, Endpoint
from clicktrail.edge.errors import EdgeError
from clicktrail.edge.http import Reply, header, read_body
from clicktrail.sinks.store import Store, StoreError

QUERY_TOKEN_ENV = "CLICKTRAIL_QUERY_TOKEN"
MAX_SQL = 1_048_576


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Query(Endpoint):
    name = "query"

    def __init__(self, ctx: EdgeContext, store: Store, token: str | None) -> None:
        super().__init__(ctx)
        self.store = store
        self.token = token

    async def handle(self, call: Call) -> Reply:
        client = call.scope.get("client")
        if not loopback(client[0] if client else ""):
            supplied = (header(call.scope, b"authorization") or b"").decode("latin-1")
            supplied = supplied.removeprefix("Bearer ").strip()
            if not self.token or supplied != self.token:
                raise EdgeError(
                    403, "forbidden", f"SQL is served to loopback or with ${QUERY_TOKEN_ENV}"
                )
        params = dict(parse_qsl(call.scope["query_string"].decode("utf-8", "replace")))
        body = await read_body(call.scope, call.receive, MAX_SQL)
        sql = body.decode("utf-8", errors="replace").strip() or params.get("sql", "")
        if not sql:
            raise EdgeError(400, "missing_sql", "send the SQL as the request body")
        output = params.get("format", "table")
        try:
            result = await asyncio.to_thread(self.store.read_only, sql, output)
        except StoreError as error:
            raise EdgeError(400, "query_failed", str(error)) from None
        return Reply(200, result, [(b"content-type", b"text/plain; charset=utf-8")])
