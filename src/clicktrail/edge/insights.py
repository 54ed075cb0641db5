"""``POST /v1/auction-insights``: an advertiser's auction-insights export, as CSV.

An export is one report: it is parsed whole, and published only when every row is good,
so a client that fixes the row named in a 400 and sends the file again never leaves half
of it behind. Rows carry ids derived from their identity, so sending the same export twice
counts it once. It needs the advertiser's API key (see :mod:`clicktrail.edge.auth`), and
every row must speak for that advertiser's campaigns or accounts. A refused upload is not
dead-lettered: publishing nothing is the point.
"""

from __future__ import annotations

import asyncio

from clicktrail.contracts import AuctionInsight
from clicktrail.edge.endpoint import Call, Endpoint
from clicktrail.edge.errors import EdgeError, export_text
from clicktrail.edge.http import Reply, json_reply, media_type, read_body
from clicktrail.processors.brand import AuctionInsightsError, parse_auction_insights

CSV_TYPES = ("text/csv", "application/csv")
PARSE_IN_THREAD = 64 << 10
"""Bodies above this are parsed off the event loop, which keeps serving pixels meanwhile."""


def parse_export(body: bytes) -> list[AuctionInsight]:
    """Every row of the export, or the typed 400 that names the bad row and column."""
    text = export_text(body)
    try:
        rows = parse_auction_insights(text)
    except AuctionInsightsError as error:
        details = {"row": error.row, "column": error.column}
        raise EdgeError(400, "invalid_export", str(error), details=details) from None
    if not rows:
        raise EdgeError(400, "empty_export", "the export has a header and no rows")
    return rows


class AuctionInsightsImport(Endpoint):
    name = "auction_insights"
    source = "edge:/v1/auction-insights"

    async def handle(self, call: Call) -> Reply:
        ctx = self.ctx
        principal = ctx.keys.authenticate(call.headers)
        if media_type(call.scope) not in CSV_TYPES:
            raise EdgeError(
                415, "unsupported_media_type", "send the export as text/csv (UTF-8, with header)"
            )
        call.body = await read_body(call.scope, call.receive, ctx.body_limit)
        if len(call.body) > PARSE_IN_THREAD:
            rows = await asyncio.to_thread(parse_export, call.body)
        else:
            rows = parse_export(call.body)
        ctx.scope.admit_insights(principal, rows)
        accepted = ctx.backend.submit_insights(rows)
        ctx.metrics.accepted["auction_insight"] += accepted
        return json_reply(202, {"accepted": accepted})
