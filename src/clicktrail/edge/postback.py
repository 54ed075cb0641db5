"""``GET|POST /postback`` (server to server, authenticated) and ``GET /cv.gif`` (browser).

Both turn tracker macros into a conversion (see :mod:`clicktrail.processors.postback`),
refuse click ids whose signature fails, and answer a resent report (same
advertiser, txid, action and status) with ``duplicate: true`` instead of a
second event. The edge remembers recent reports in a bounded set; the resend
also gets the same event id, so the processors drop it even when it reaches
another edge.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import parse_qsl

import orjson

from clicktrail.edge.endpoint import Call, Endpoint
from clicktrail.edge.errors import EdgeError
from clicktrail.edge.http import Reply, first_values, json_reply, media_type, parse_query, read_body
from clicktrail.edge.pixel import gif_reply
from clicktrail.processors.intake import Rejection
from clicktrail.processors.postback import (
    ADVERTISER,
    CAMPAIGN,
    USER,
    PostbackError,
    conversion_fields,
    dedup_key,
    first,
    stable_event_id,
)

MAX_POSTBACK_BODY = 16_384
FORM_TYPES = ("application/x-www-form-urlencoded", "")
JSON_TYPES = ("application/json", "text/json")
ERROR_STATUS = {
    "missing_signature": 401,
    "bad_signature": 403,
    "stale_timestamp": 403,
    "unknown_advertiser": 404,
}


def as_edge_error(error: PostbackError) -> EdgeError:
    return EdgeError(ERROR_STATUS.get(error.reason, 400), error.reason, error.message)


class ConversionEndpoint(Endpoint):
    event_type = "conversion"

    def accept(
        self, call: Call, params: Mapping[str, str], advertiser: str | None, user_id: str | None
    ) -> tuple[str, bool]:
        """Validate and submit one conversion; returns its event id and whether it was a resend."""
        ctx = self.ctx
        try:
            fields = conversion_fields(params, ctx.settings.default_action)
        except PostbackError as error:
            raise as_edge_error(error) from None
        if advertiser is not None:
            fields["advertiser_id"] = advertiser
        action = str(fields["action"])
        policy = ctx.registry.actions.get(action)
        if policy is None:
            known = ", ".join(ctx.registry.actions)
            raise EdgeError(400, "unknown_action", f"action {action[:40]!r} is not one of {known}")
        click_id = fields.get("click_id")
        if isinstance(click_id, str) and not ctx.signer.verify(click_id):
            raise EdgeError(400, "forged_click_id", "click_id was not minted by this tracker")
        key = dedup_key(fields) if policy.txid_policy != "new" else None
        if key is not None and key in ctx.recent_txids:
            ctx.metrics.duplicates += 1
            return stable_event_id(key), True
        event_id = stable_event_id(key) if key else os.urandom(12).hex()
        data: dict[str, object] = {
            "type": "conversion",
            "event_id": event_id,
            "ts": ctx.now_ms(),
            **fields,
            "user": ctx.visitor.user(call.scope, call.headers, params, user_id),
        }
        result = ctx.backend.submit(data, self.source)
        if isinstance(result, Rejection):
            raise EdgeError(400, result.reason, result.message, recorded=True)
        if key is not None:
            ctx.recent_txids.add(key)
        ctx.metrics.accepted["conversion"] += 1
        return event_id, False


class Postback(ConversionEndpoint):
    name = "postback"
    source = "edge:/postback"

    async def handle(self, call: Call) -> Reply:
        ctx = self.ctx
        call.pairs = parse_query(call.scope["query_string"], ctx.settings.max_query_bytes)
        if call.scope["method"] == "POST":
            call.pairs = call.pairs + await self._body_pairs(call)
        params = first_values(call.pairs)
        advertiser = self._advertiser(params)
        try:
            ctx.verifier.verify(advertiser, call.pairs)
        except PostbackError as error:
            raise as_edge_error(error) from None
        event_id, duplicate = self.accept(call, params, advertiser, first(params, USER))
        return json_reply(200, {"status": "ok", "event_id": event_id, "duplicate": duplicate})

    async def _body_pairs(self, call: Call) -> list[tuple[str, str]]:
        call.body = await read_body(call.scope, call.receive, MAX_POSTBACK_BODY)
        if not call.body.strip():
            return []
        kind = media_type(call.scope)
        if kind in FORM_TYPES:
            text = call.body.decode("utf-8", "replace")
            try:
                return parse_qsl(text, keep_blank_values=True, max_num_fields=64)
            except ValueError:
                raise EdgeError(400, "too_many_params", "at most 64 form fields") from None
        if kind in JSON_TYPES:
            try:
                data = orjson.loads(call.body)
            except orjson.JSONDecodeError as error:
                raise EdgeError(400, "invalid_json", f"body is not valid JSON: {error}") from None
            if not isinstance(data, dict) or len(data) > 64:
                raise EdgeError(400, "not_an_object", "a JSON postback is one flat object")
            return [
                (str(k), v if isinstance(v, str) else orjson.dumps(v).decode())
                for k, v in data.items()
            ]
        raise EdgeError(
            415,
            "unsupported_media_type",
            "send the parameters in the query, as a form or as a JSON object",
        )

    def _advertiser(self, params: Mapping[str, str]) -> str:
        """Named, or implied by the campaign, or the only advertiser there is."""
        registry = self.ctx.registry
        named = first(params, ADVERTISER)
        if named is not None:
            return named
        campaign = registry.campaigns.get(first(params, CAMPAIGN) or "")
        if campaign is not None:
            return campaign.advertiser
        if len(registry.advertisers) == 1:
            return next(iter(registry.advertisers))
        raise EdgeError(400, "missing_param", "advertiser is required (advertiser / adv)")


class ConversionPixel(ConversionEndpoint):
    """Browser-side conversion: no secret can live in a page, so it is not authenticated;
    the cookie ties it to the user and a click id must still carry a valid signature."""

    name = "conversion_pixel"
    source = "edge:/cv.gif"

    async def handle(self, call: Call) -> Reply:
        ctx = self.ctx
        call.pairs = parse_query(call.scope["query_string"], ctx.settings.max_query_bytes)
        params = first_values(call.pairs)
        advertiser = first(params, ADVERTISER)
        if advertiser is not None and advertiser not in ctx.registry.advertisers:
            raise EdgeError(404, "unknown_advertiser", f"no advertiser {advertiser[:64]!r}")
        user_id = ctx.visitor.cookie_id(call.headers)
        _, duplicate = self.accept(call, params, advertiser, user_id)
        return gif_reply([(b"x-clicktrail-duplicate", b"1")] if duplicate else None)
