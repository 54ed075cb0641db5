"""Click → River feature dict: one-hot string keys plus a smooth hour-of-day cycle.

One-hot keys ("partner=aff-1": 1.0) keep the dict readable and JSON-friendly, so a
pending example can sit in a changelogged state store and be learned days later.
The hour enters as sin/cos of the hour of day plus a weekend flag: a daily cycle
with any peak is a linear function of those, which 168 sparse hour-of-week
buckets would need far more traffic to learn. Two crosses let a linear model see
what one-hot keys cannot: a partner whose traffic converts on one campaign only
(``campaign+partner``) and a partner whose quality changes by part of the day
(``partner+daypart``, 6-hour parts). The click's counts in the fraud detector's
windows (clicks of its IP network and of its user within the partner) enter
log-scaled: repeat clicks signal intent on real logs. Bump :data:`FEATURE_VERSION`
whenever the output changes: checkpoints of another version start fresh.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime

from clicktrail.contracts import Click

FEATURE_VERSION = "clicks-v2"
Features = dict[str, float]
_TWO_PI_OVER_DAY = 2 * math.pi / 24
CROSS = "+"
"""Joins the names of a crossed feature (``campaign+partner=shop|aff-1``)."""
DAYPART_HOURS = 6


def click_features(click: Click, counts: Mapping[str, int] | None = None) -> Features:
    """The context a click shows; missing fields are simply absent keys. ``counts``: the
    click's windowed counts (``ip_clicks``, ``user_clicks``), this click included."""
    user = click.user
    x = context_features(
        ts=click.ts,
        campaign=click.campaign_id,
        partner=click.partner_id,
        channel=click.channel,
        placement=click.placement,
        keyword=click.keyword,
        country=user.country,
        device=user.device_type,
        os=user.os,
        segments=user.segments,
    )
    for name, count in (counts or {}).items():
        x[f"log_{name}"] = math.log1p(count)
    return x


def context_features(
    *,
    ts: datetime,
    campaign: str | None = None,
    partner: str | None = None,
    channel: str | None = None,
    placement: str | None = None,
    keyword: str | None = None,
    country: str | None = None,
    device: str | None = None,
    os: str | None = None,
    segments: Iterable[str] = (),
) -> Features:
    """Features of a context that need not be a click (what ``/v1/score`` is asked about)."""
    x: Features = {}
    for name, value in (
        ("campaign", campaign),
        ("partner", partner),
        ("channel", channel),
        ("placement", placement),
        ("keyword", keyword.casefold() if keyword else None),
        ("country", country),
        ("device", device),
        ("os", os),
    ):
        if value:
            x[f"{name}={value}"] = 1.0
    for segment in segments:
        x[f"segment={segment}"] = 1.0
    if campaign and partner:
        x[f"campaign{CROSS}partner={campaign}|{partner}"] = 1.0
    if partner:
        x[f"partner{CROSS}daypart={partner}|{ts.hour // DAYPART_HOURS}"] = 1.0
    x.update(time_features(ts))
    return x


def without_crosses(x: Features) -> Features:
    """The features but the crossed ones (what a model without crosses learns from)."""
    return {k: v for k, v in x.items() if CROSS not in k.partition("=")[0]}


def time_features(ts: datetime) -> Features:
    """Hour-of-week as a daily cycle (sin, cos of the UTC hour) and a weekend flag."""
    hour = ts.hour + ts.minute / 60
    angle = hour * _TWO_PI_OVER_DAY
    x = {"hour_sin": math.sin(angle), "hour_cos": math.cos(angle)}
    if ts.weekday() >= 5:
        x["weekend"] = 1.0
    return x
