"""Resolve conversions to clicks in-process, as the two keyed stages would.

Postbacks with a click id go through the real click stage (:class:`ClickResolver`:
a late click inside the grace period is still found). Conversions reported by user id
only wait for the same grace period, then credit the user's latest click on the same
advertiser at or before the conversion and inside that click's campaign window, as
last-click attribution does. Offline evaluation only: memory grows with the users.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from clicktrail.config.registry import AttributionSettings, Campaign
from clicktrail.contracts import Click, Conversion
from clicktrail.contracts.internal import ResolvedConversion, Touch
from clicktrail.processors.clicks import END_OF_TIME, ClickResolver

MAX_CLICKS_PER_USER = 50
_DEFAULT = AttributionSettings()


def _ts(touch: Touch) -> datetime:
    return touch.ts


class ReplayLookup:
    def __init__(self, campaigns: Mapping[str, Campaign]) -> None:
        self.campaigns = campaigns
        self.resolver = ClickResolver({}, {}, grace_for=self._grace)
        self.user_clicks: dict[str, list[Touch]] = {}
        self.waiting: list[tuple[float, ResolvedConversion]] = []

    def _settings(self, campaign_id: str | None) -> AttributionSettings:
        campaign = self.campaigns.get(campaign_id or "")
        return campaign.attribution if campaign else _DEFAULT

    def _grace(self, conversion: Conversion) -> timedelta:
        return timedelta(seconds=self._settings(conversion.campaign_id).conversion_grace_seconds)

    def on_click(self, click: Click) -> list[ResolvedConversion]:
        out = self.resolver.on_click(click)
        if click.user.user_id:
            touches = [t for t in out if isinstance(t, Touch)]
            path = sorted([*self.user_clicks.get(click.user.user_id, []), *touches], key=_ts)
            self.user_clicks[click.user.user_id] = path[-MAX_CLICKS_PER_USER:]
        return self._resolved(out[1:])

    def on_conversion(self, conversion: Conversion) -> list[ResolvedConversion]:
        return self._resolved(self.resolver.on_conversion(conversion))

    def _resolved(self, records: list[Any]) -> list[ResolvedConversion]:
        out = []
        for record in records:
            if record.lookup == "no_click":
                deadline = (record.conversion.ts + self._grace(record.conversion)).timestamp()
                self.waiting.append((deadline, record))
            else:
                out.append(record)
        return out

    def tick(self, watermark: datetime) -> list[ResolvedConversion]:
        out = self._resolved(self.resolver.expire(watermark))
        now = watermark.timestamp()
        due = [r for d, r in self.waiting if d <= now]
        self.waiting = [(d, r) for d, r in self.waiting if d > now]
        return [*out, *(self._settle(r) for r in due)]

    def drain(self) -> list[ResolvedConversion]:
        return self.tick(END_OF_TIME)

    def _settle(self, resolved: ResolvedConversion) -> ResolvedConversion:
        conversion = resolved.conversion
        user = conversion.user.user_id
        found = None
        for touch in reversed(self.user_clicks.get(user or "", [])):
            if touch.ts > conversion.ts:
                continue
            if conversion.advertiser_id and touch.advertiser_id not in (
                None,
                conversion.advertiser_id,
            ):
                continue
            window = timedelta(days=self._settings(touch.campaign_id).click_window_days)
            if conversion.ts - touch.ts <= window:
                found = touch
            break
        return resolved.model_copy(update={"click": found, "lookup": "settled"})
