"""``GET /i.gif``: the impression pixel. Answers a 1x1 transparent GIF that no cache keeps."""

from __future__ import annotations

import os

from clicktrail.edge.endpoint import Call, Endpoint
from clicktrail.edge.errors import EdgeError
from clicktrail.edge.http import NO_CACHE, Reply, first_values, parse_query
from clicktrail.edge.params import (
    CAMPAIGN,
    IMPRESSION,
    IMPRESSION_MAP,
    PARTNER,
    required,
)
from clicktrail.edge.visitor import mint_user_id
from clicktrail.processors.intake import Rejection
from clicktrail.processors.postback import first

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
GIF_HEADERS = [(b"content-type", b"image/gif"), *NO_CACHE]
SOURCE = "edge:/i.gif"


def gif_reply(extra: list[tuple[bytes, bytes]] | None = None) -> Reply:
    return Reply(200, GIF, [*GIF_HEADERS, *extra] if extra else GIF_HEADERS)


class ImpressionPixel(Endpoint):
    name = "pixel"
    event_type = "impression"
    source = SOURCE

    async def handle(self, call: Call) -> Reply:
        ctx = self.ctx
        call.pairs = parse_query(call.scope["query_string"], ctx.settings.max_query_bytes)
        params = first_values(call.pairs)
        campaign_id = required(params, CAMPAIGN)
        campaign = ctx.registry.campaigns.get(campaign_id)
        if campaign is None:
            raise EdgeError(404, "unknown_campaign", f"no campaign {campaign_id[:128]!r}")
        visitor = ctx.visitor
        user_id = visitor.cookie_id(call.headers)
        cookie = None
        if user_id is None:
            user_id = mint_user_id()
            cookie = visitor.set_cookie(user_id)
        data: dict[str, object] = {
            "type": "impression",
            "event_id": os.urandom(12).hex(),
            "ts": ctx.now_ms(),
            "impression_id": first(params, IMPRESSION) or os.urandom(12).hex(),
            "campaign_id": campaign_id,
            "advertiser_id": campaign.advertiser,
            "partner_id": required(params, PARTNER),
            "channel": campaign.channel,
        }
        IMPRESSION_MAP.copy(data, params)
        data["user"] = visitor.user(call.scope, call.headers, params, user_id)
        result = ctx.backend.submit(data, SOURCE)
        if isinstance(result, Rejection):
            raise EdgeError(400, result.reason, result.message, recorded=True)
        ctx.metrics.accepted["impression"] += 1
        return gif_reply([cookie] if cookie else None)
