"""Event lines in the public contract (``clicktrail.contracts``), as NDJSON bytes.

Impressions and clicks carry epoch-millisecond times, conversions RFC 3339
strings, as pixels and postbacks typically do; absent fields are left out.
"""

from __future__ import annotations

from typing import Any

import orjson

from clicktrail.contracts import SCHEMA_VERSION
from clicktrail.simulate.world import Campaign

_OPT = orjson.OPT_APPEND_NEWLINE


def _dump(fields: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in fields.items() if v is not None}, option=_OPT)


def impression(
    *,
    event_id: str,
    ts: int,
    impression_id: str,
    campaign: Campaign,
    partner: str,
    channel: str,
    fields: dict[str, Any],
    user: orjson.Fragment,
) -> bytes:
    """``fields``: the optional contract fields (keyword, ad_domain, placement, cost...)."""
    event = {
        "type": "impression",
        "event_id": event_id,
        "ts": ts,
        "schema_version": SCHEMA_VERSION,
        "impression_id": impression_id,
        "campaign_id": campaign.key,
        "advertiser_id": campaign.advertiser.key,
        "partner_id": partner,
        "channel": channel,
        "landing_url": campaign.landing_url,
    }
    return _finish(event, fields, user)


def click(
    *,
    event_id: str,
    ts: int,
    click_id: str,
    campaign: Campaign,
    partner: str,
    channel: str,
    fields: dict[str, Any],
    user: orjson.Fragment,
) -> bytes:
    """``fields``: the optional contract fields (impression_id, sub_ids, referrer, cost...)."""
    event = {
        "type": "click",
        "event_id": event_id,
        "ts": ts,
        "schema_version": SCHEMA_VERSION,
        "click_id": click_id,
        "campaign_id": campaign.key,
        "advertiser_id": campaign.advertiser.key,
        "partner_id": partner,
        "channel": channel,
        "landing_url": f"{campaign.landing_url}?cid={click_id}",
    }
    return _finish(event, fields, user)


def conversion(
    *,
    event_id: str,
    ts: str,
    txid: str,
    action: str,
    status: str,
    advertiser: str,
    revenue: float,
    currency: str,
    payout: float,
    click_id: str | None = None,
    partner: str | None = None,
    user: orjson.Fragment | None = None,
) -> bytes:
    return _dump(
        {
            "type": "conversion",
            "event_id": event_id,
            "ts": ts,
            "schema_version": SCHEMA_VERSION,
            "txid": txid,
            "click_id": click_id,
            "advertiser_id": advertiser,
            "partner_id": partner,
            "action": action,
            "status": status,
            "revenue": revenue,
            "currency": currency,
            "payout": payout,
            "user": user,
        }
    )


def _finish(event: dict[str, Any], fields: dict[str, Any], user: orjson.Fragment) -> bytes:
    """Optional fields that are set, then the user context last, as JSON bytes."""
    for key, value in fields.items():
        if value is not None:
            event[key] = value
    event["user"] = user
    return orjson.dumps(event, option=_OPT)
