"""``POST /v1/sales``: the advertiser's orders (CSV export or JSON rows), reconciled.

Each order stands alone: a bad row is refused with its row number and reason and
dead-lettered, the others are reconciled (a 400 only when no row is good). The caller is
the advertiser (its API key: it imports only its own sales, matched only against its own
campaigns' conversions) or the operator (the token, naming the advertiser with
``?advertiser=``). Matched orders update their conversions as status postbacks do: the
updates are published here, on the loop, through the same intake gate; the store work
(reading what was tracked, writing the pairs) runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from clicktrail.contracts import Conversion
from clicktrail.edge.auth import NOT_OWNED, Principal
from clicktrail.edge.context import EdgeContext
from clicktrail.edge.endpoint import Call, Endpoint
from clicktrail.edge.errors import EdgeError, export_text
from clicktrail.edge.http import Reply, json_reply, media_type, parse_query, read_body
from clicktrail.processors.intake import Rejection
from clicktrail.processors.reconciliation import Reconciliation
from clicktrail.processors.sales import (
    ParsedSales,
    RowError,
    SalesFileError,
    parse_sales_csv,
    parse_sales_rows,
    private,
)
from clicktrail.runtime.reconcile import PartnerSummary, SalesLedger
from clicktrail.sinks.store import StoreError

SOURCE = "edge:/v1/sales"
CSV_TYPES = ("text/csv", "application/csv")
JSON_TYPES = ("application/json", "text/json")
MAX_QUERY_BYTES = 2048


def parse_body(body: bytes, content_type: str) -> ParsedSales:
    """The orders of a CSV or JSON body, or the typed 400 for a file that cannot be read."""
    parsed = _parse(body, content_type)
    if not parsed.orders and not parsed.errors:
        raise EdgeError(400, "empty_sales_file", "the export holds no orders")
    return parsed


def _parse(body: bytes, content_type: str) -> ParsedSales:
    try:
        if content_type in CSV_TYPES:
            return parse_sales_csv(export_text(body))
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise EdgeError(400, "invalid_json", f"body is not valid JSON: {error}") from None
        if isinstance(data, dict) and isinstance(data.get("orders"), list):
            data = data["orders"]
        return parse_sales_rows(data if isinstance(data, list) else [data])
    except SalesFileError as error:
        raise EdgeError(400, error.reason, error.message) from None


class SalesImport(Endpoint):
    name = "sales"
    source = SOURCE

    def __init__(
        self,
        ctx: EdgeContext,
        ledger: SalesLedger,
        holds: Callable[[Conversion], bool] | None = None,
    ) -> None:
        """``holds``: whether the runtime still remembers a conversion an update is for
        (see :meth:`~clicktrail.processors.attribution.Attributor.holds`); None sends every
        update."""
        super().__init__(ctx)
        self.ledger = ledger
        self.holds = holds

    async def handle(self, call: Call) -> Reply:
        ctx = self.ctx
        principal = ctx.keys.authenticate(call.headers)
        call.pairs = parse_query(call.scope.get("query_string", b""), MAX_QUERY_BYTES)
        advertiser = self._advertiser(principal, call.pairs)
        actions = [value for name, value in call.pairs if name == "action" and value]
        try:
            actions = self.ledger.actions(actions)
        except ValueError as error:
            raise EdgeError(400, "unknown_action", str(error)) from None
        content_type = media_type(call.scope)
        if content_type not in CSV_TYPES + JSON_TYPES:
            raise EdgeError(
                415,
                "unsupported_media_type",
                "send the export as text/csv (UTF-8, header first) or JSON rows",
            )
        call.body = await read_body(call.scope, call.receive, ctx.body_limit)
        try:
            parsed = await asyncio.to_thread(parse_body, call.body, content_type)
        except EdgeError as refused:
            rejection = Rejection(refused.reason, refused.message, "sale_order")
            ctx.backend.reject(rejection, private(self.dead_letter_payload(call)), SOURCE)
            raise EdgeError(
                refused.status, refused.reason, refused.message, recorded=True
            ) from None
        self._scope_rows(parsed, advertiser)
        rejected = [e.as_dict() for e in parsed.errors]
        for row in parsed.errors:
            ctx.metrics.rejects[self.name, row.reason] += 1
            rejection = Rejection(row.reason, row.message, "sale_order")
            ctx.backend.reject(rejection, row.raw, SOURCE)
        if not parsed.orders:
            return json_reply(
                400,
                {
                    "accepted": 0,
                    "rejected": rejected,
                    "error": "no_order_accepted",
                    "message": f"all {len(parsed.errors)} rows were refused; see 'rejected'",
                },
            )
        try:
            result = await asyncio.to_thread(
                self.ledger.reconcile, advertiser, parsed.orders, actions
            )
        except StoreError as error:
            raise EdgeError(503, "store_unavailable", f"cannot read the store: {error}") from None
        updates, held = self._publish(result)
        try:
            await asyncio.to_thread(self.ledger.record, result.records)
            summary = await asyncio.to_thread(self.ledger.summary, advertiser)
        except StoreError as error:
            raise EdgeError(503, "store_unavailable", f"cannot write the store: {error}") from None
        ctx.metrics.accepted["sale_order"] += len(parsed.orders)
        return json_reply(
            200,
            answer(
                advertiser,
                parsed=parsed,
                result=result,
                updates=updates,
                held=held,
                rejected=rejected,
                summary=summary,
            ),
        )

    def _advertiser(self, principal: Principal, pairs: list[tuple[str, str]]) -> str:
        named = next((value for name, value in pairs if name == "advertiser" and value), None)
        registry = self.ctx.registry
        if principal.advertiser is not None:
            if named not in (None, principal.advertiser):
                raise EdgeError(
                    403, NOT_OWNED, f"this key belongs to advertiser {principal.advertiser!r}"
                )
            return principal.advertiser
        if not principal.operator:
            raise EdgeError(403, NOT_OWNED, "sales come from an advertiser's key or the operator")
        if named is None:
            if len(registry.advertisers) == 1:
                return next(iter(registry.advertisers))
            raise EdgeError(
                400,
                "missing_param",
                "name the advertiser: ?advertiser=ID (clicktrail import-sales --advertiser ID)",
            )
        if named not in registry.advertisers:
            raise EdgeError(400, "unknown_advertiser", f"no advertiser {named[:64]!r}")
        return named

    @staticmethod
    def _scope_rows(parsed: ParsedSales, advertiser: str) -> None:
        """Rows that name another advertiser are refused: an import speaks for one."""
        kept, rows = [], []
        for order, number in zip(parsed.orders, parsed.rows, strict=True):
            if order.advertiser_id not in (None, advertiser):
                message = (
                    f"row {number}: order {order.order_id!r} names advertiser "
                    f"{order.advertiser_id!r}; this import is {advertiser!r}'s"
                )
                raw = order.model_dump_json()
                parsed.errors.append(RowError(number, "advertiser_id", message, raw, NOT_OWNED))
            else:
                kept.append(order)
                rows.append(number)
        parsed.orders, parsed.rows = kept, rows
        parsed.errors.sort(key=lambda e: e.row)

    def _publish(self, result: Reconciliation) -> tuple[int, int]:
        """The status updates onto the bus, as postbacks go (the gate dead-letters any
        the intake refuses); (sent, held back).

        An update for a conversion the runtime no longer remembers (the service restarted
        since, or the conversion is older than the attribution state keeps) would be
        counted as a new conversion: it is held back, and its pair says it was not
        updated."""
        sent = 0
        held: set[str] = set()
        for conversion_id, update in zip(result.updated, result.updates, strict=True):
            if self.holds is not None and not self.holds(Conversion.model_validate(update)):
                held.add(conversion_id)
                continue
            if isinstance(self.ctx.backend.submit(update, SOURCE), Rejection):
                held.add(conversion_id)
            else:
                sent += 1
        result.held_back(held)
        return sent, len(held)


def answer(
    advertiser: str,
    *,
    parsed: ParsedSales,
    result: Reconciliation,
    updates: int,
    held: int,
    rejected: list[dict[str, Any]],
    summary: list[PartnerSummary],
) -> dict[str, Any]:
    outcomes: dict[str, int] = {}
    for record in result.records:
        outcomes[str(record.outcome)] = outcomes.get(str(record.outcome), 0) + 1
    return {
        "advertiser": advertiser,
        "import_id": result.records[0].import_id if result.records else "",
        "accepted": len(parsed.orders),
        "rejected": rejected,
        "outcomes": outcomes,
        "updates": updates,
        "not_updated": held,
        "summary": [s.as_dict() for s in summary],
    }
