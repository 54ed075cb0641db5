"""``GET|POST /postback`` (server to server, authenticated) and ``GET /cv.gif`` (browser).

Both turn tracker macros into a conversion (see :mod:`clicktrail.processors.postback`),
refuse click ids whose signature fails or that were minted for another advertiser's
campaign (the signature covers the owner, see :mod:`clicktrail.processors.signing`), and
answer a resent report (same advertiser, txid, action and status) with ``duplicate: true``
instead of a second event. The edge remembers recent reports in a bounded set; the resend
also gets the same event id, so the processors drop it even when it reaches another edge.

Only the postback moves money: its secret proves the advertiser. A page cannot keep a
secret, so the browser pixel reports a ``pending`` conversion at the registry's payout
(``campaigns.<c>.payouts`` / ``actions.<a>.payout``); ``status`` and ``payout`` sent to it
are ignored (and named in ``X-Clicktrail-Ignored``).
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
PIXEL_IGNORED = frozenset(("status", "payout", "commission"))


def as_edge_error(error: PostbackError) -> EdgeError:
    return EdgeError(ERROR_STATUS.get(error.reason, 400), error.reason, error.message)


class ConversionEndpoint(Endpoint):
    event_type = "conversion"

    def accept(
        self,
        call: Call,
        params: Mapping[str, str],
        advertiser: str | None,
        user_id: str | None,
        *,
        pixel: bool = False,
    ) -> tuple[str, bool]:
        """Validate and submit one conversion; returns its event id and whether it was a resend."""
        ctx = self.ctx
        try:
            fields = conversion_fields(params, ctx.settings.default_action)
        except PostbackError as error:
            raise as_edge_error(error) from None
        action = str(fields["action"])
        policy = ctx.registry.actions.get(action)
        if policy is None:
            known = ", ".join(ctx.registry.actions)
            raise EdgeError(400, "unknown_action", f"action {action[:40]!r} is not one of {known}")
        click_id = fields.get("click_id")
        if isinstance(click_id, str) and not self._own_id(fields):
            if not ctx.signer.verify(click_id):
                raise EdgeError(400, "forged_click_id", "click_id was not minted by this tracker")
            if advertiser is None:
                advertiser = self._owner(click_id)
            elif not ctx.signer.minted_for(click_id, advertiser):
                raise EdgeError(
                    403, "not_owned", f"click_id was not minted for a campaign of {advertiser!r}"
                )
        if advertiser is not None:
            self._check_campaign(fields, advertiser)
            fields["advertiser_id"] = advertiser
        elif len(ctx.registry.advertisers) > 1:
            raise EdgeError(
                400, "missing_param", "advertiser is required (adv) when several are configured"
            )
        if pixel:
            campaign = fields.get("campaign_id")
            fields["status"] = "pending"
            fields["payout"] = ctx.registry.pixel_payout(
                campaign if isinstance(campaign, str) else None, action
            )
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

    def _own_id(self, fields: Mapping[str, object]) -> bool:
        """A click id its partner issued (``partners.X.click_ids: partner``), named with that
        partner: it cannot be verified here; the click stage matches it within the partner."""
        partner = self.ctx.registry.partners.get(str(fields.get("partner_id") or ""))
        return partner is not None and partner.click_ids == "partner"

    def _owner(self, click_id: str) -> str | None:
        """The advertiser a genuine click id was minted for (None: minted for nobody known)."""
        signer = self.ctx.signer
        for name in self.ctx.registry.advertisers:
            if signer.minted_for(click_id, name):
                return name
        return None

    def _check_campaign(self, fields: Mapping[str, object], advertiser: str) -> None:
        campaign_id = fields.get("campaign_id")
        if not isinstance(campaign_id, str):
            return
        campaign = self.ctx.registry.campaigns.get(campaign_id)
        if campaign is not None and campaign.advertiser != advertiser:
            raise EdgeError(
                403, "not_owned", f"campaign {campaign_id[:128]!r} is not {advertiser!r}'s"
            )


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
            flat = isinstance(data, dict) and not any(
                isinstance(v, dict | list) for v in data.values()
            )
            if not flat or len(data) > 64:
                raise EdgeError(
                    400, "not_an_object", "a JSON postback is one flat object of plain values"
                )
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
        ignored = sorted(name for name in PIXEL_IGNORED if params.get(name))
        params = {name: value for name, value in params.items() if name not in PIXEL_IGNORED}
        _, duplicate = self.accept(call, params, advertiser, user_id, pixel=True)
        headers = [(b"x-clicktrail-duplicate", b"1")] if duplicate else []
        if ignored:
            ctx.metrics.rejects[self.name, "pixel_field_ignored"] += 1
            headers.append((b"x-clicktrail-ignored", ",".join(ignored).encode()))
        return gif_reply(headers or None)
