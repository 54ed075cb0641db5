"""``GET /c/{campaign_id}``: the click redirect.

Mints a signed click id, records the click, sets the first-party user cookie and
sends the browser to the campaign's landing URL with macros filled in; never to
a host outside the campaign's allow-list (see :mod:`clicktrail.edge.landing`).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from clicktrail.edge.endpoint import Call, Endpoint
from clicktrail.edge.errors import EdgeError
from clicktrail.edge.http import NO_CACHE, Reply, first_values, parse_query
from clicktrail.edge.params import (
    CLICK_MAP,
    IMPRESSION,
    PARTNER,
    paid_click_ids,
    required,
    sub_ids,
)
from clicktrail.edge.visitor import mint_user_id
from clicktrail.processors.intake import Rejection
from clicktrail.processors.postback import first

PREFIX = "/c/"
SOURCE = "edge:/c"
MAX_REFERRER = 2048


class ClickRedirect(Endpoint):
    name = "click"
    event_type = "click"
    source = SOURCE

    async def handle(self, call: Call) -> Reply:
        ctx = self.ctx
        campaign_id = call.scope["path"][len(PREFIX) :]
        call.pairs = parse_query(call.scope["query_string"], ctx.settings.max_query_bytes)
        policy = ctx.landing.get(campaign_id)
        if policy is None:
            raise EdgeError(404, "unknown_campaign", f"no campaign {campaign_id[:128]!r}")
        campaign = ctx.registry.campaigns[campaign_id]
        params = first_values(call.pairs)
        partner_id = required(params, PARTNER)
        now_ms = ctx.now_ms()
        click_id = ctx.signer.mint(now_ms, campaign.advertiser)
        visitor = ctx.visitor
        user_id = visitor.cookie_id(call.headers) or mint_user_id()
        subs = sub_ids(params)
        impression_id = first(params, IMPRESSION)
        macros = {
            "click_id": click_id,
            "campaign_id": campaign_id,
            "partner_id": partner_id,
            "user_id": user_id,
            "impression_id": impression_id or "",
            **subs,
        }
        target = policy.target(params, macros)
        landing_params: dict[str, str] = {}
        if "clid" in target or "braid" in target:  # every paid click id name has one of them
            landing_params = dict(parse_qsl(urlsplit(target).query))
        data: dict[str, object] = {
            "type": "click",
            "event_id": click_id,
            "ts": now_ms,
            "click_id": click_id,
            "campaign_id": campaign_id,
            "advertiser_id": campaign.advertiser,
            "partner_id": partner_id,
            "channel": campaign.channel,
            "sub_ids": subs,
            "paid_click_ids": paid_click_ids(params, landing_params),
            "landing_url": target,
        }
        if impression_id:
            data["impression_id"] = impression_id
        referrer = call.headers.get(b"referer")
        if referrer:
            data["referrer"] = referrer[:MAX_REFERRER].decode("latin-1")
        CLICK_MAP.copy(data, params)
        data["user"] = visitor.user(call.scope, call.headers, params, user_id)
        result = ctx.backend.submit(data, SOURCE)
        if isinstance(result, Rejection):
            raise EdgeError(400, result.reason, result.message, recorded=True)
        ctx.metrics.accepted["click"] += 1
        headers = [(b"location", target.encode()), visitor.set_cookie(user_id), *NO_CACHE]
        return Reply(302, b"", headers)
