"""Click flooding (spamming): too many clicks per network or device for one partner.

Three sliding windows per partner: clicks per IP network in ``fraud.window_seconds``
(``max_clicks_per_ip``), in the short ``fraud.burst_seconds`` (``max_clicks_per_ip_burst``:
spam comes in bursts seconds apart), and clicks per device or user id in the long window
(``max_clicks_per_device``). The click that crosses a limit convicts the clicks the
window still holds, so a burst is flagged whole, not from its limit on.

Hashed addresses count like addresses (one hash per address); a click without an
address or a user id is not counted for that key. The counts also go to the models
(:meth:`ClickFloodRule.count`): repeat clicks of one network or user are a signal of
intent too, and the runtime then needs no second set of windows.
"""

from __future__ import annotations

from clicktrail.config.registry import FraudSettings
from clicktrail.contracts import Click, StateStore
from clicktrail.processors.fraud.hits import Hit
from clicktrail.processors.fraud.windows import SlidingCounter


class ClickFloodRule:
    def __init__(
        self,
        per_ip: StateStore,
        per_ip_burst: StateStore,
        per_device: StateStore,
        settings: FraudSettings,
    ) -> None:
        self.per_ip = SlidingCounter(
            per_ip, window_seconds=settings.window_seconds, limit=settings.max_clicks_per_ip
        )
        self.per_ip_burst = SlidingCounter(
            per_ip_burst,
            window_seconds=settings.burst_seconds,
            limit=settings.max_clicks_per_ip_burst,
        )
        self.per_device = SlidingCounter(
            per_device,
            window_seconds=settings.window_seconds,
            limit=settings.max_clicks_per_device,
        )

    def __call__(self, click: Click) -> list[Hit]:
        return self.count(click)[0]

    def count(self, click: Click) -> tuple[list[Hit], dict[str, int]]:
        """The hits, and the click's counts in the long window (this click included):
        ``ip_clicks`` per IP network and ``user_clicks`` per device or user, both within
        its partner; a key the click lacks is absent."""
        ts = click.ts.timestamp()
        partner, campaign = click.partner_id, click.campaign_id
        hits: list[Hit] = []
        counts: dict[str, int] = {}
        if ip := click.user.ip:
            key = f"{partner}|{ip}"
            for counter in (self.per_ip, self.per_ip_burst):
                count = counter.add(key, ts, click.click_id, campaign)
                if counter is self.per_ip:
                    counts["ip_clicks"] = count.total
                if count.total > counter.limit:
                    hits.append(Hit("click_flood_ip"))
                    hits.extend(
                        Hit("click_flood_ip", held, held_campaign, partner)
                        for held, held_campaign in count.released
                    )
        if device := click.user.user_id:
            count = self.per_device.add(f"{partner}|{device}", ts, click.click_id, campaign)
            counts["user_clicks"] = count.total
            if count.total > self.per_device.limit:
                hits.append(Hit("click_flood_device"))
                hits.extend(
                    Hit("click_flood_device", held, held_campaign, partner)
                    for held, held_campaign in count.released
                )
        return hits, counts

    def expire(self, watermark: float) -> int:
        return sum(c.expire(watermark) for c in (self.per_ip, self.per_ip_burst, self.per_device))
