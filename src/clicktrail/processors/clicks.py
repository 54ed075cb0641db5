"""The click stage (keyed by ``click_id``): remember clicks, resolve postbacks' click ids.

A conversion can arrive before its click (postbacks race redirects, partitions
lag): it waits here for a grace period, then leaves as ``unknown_click``. It is
remembered as an orphan for the retention period, so a click that comes after all
(delivered late, or after a backlog of conversions) re-joins it: the conversion
goes to the user stage again as ``rejoined`` and is credited in a new version.
Everything leaving this stage goes to the user stage (see ``attribution``).

Ids a partner issues itself (``partners.X.click_ids: partner``) are that partner's: two
networks both numbering a click 42 have two clicks, kept under ``partner<US>id``, and a
conversion reaches the one of the partner it names (one naming no partner, the first).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from clicktrail.contracts import Click, Conversion, StateStore
from clicktrail.contracts.internal import ResolvedConversion, Touch

StageOutput = list[Touch | ResolvedConversion]
DEFAULT_RETENTION = timedelta(days=31)
END_OF_TIME = datetime(9000, 1, 1, tzinfo=UTC)


class ClickResolver:
    def __init__(
        self,
        clicks: StateStore,
        pending: StateStore,
        orphans: StateStore | None = None,
        *,
        grace_for: Callable[[Conversion], timedelta],
        retention: timedelta = DEFAULT_RETENTION,
        partner_ids: frozenset[str] = frozenset(),
    ) -> None:
        """``partner_ids``: partners whose click ids are their own (scoped by partner)."""
        self.partner_ids = partner_ids
        self.clicks = clicks
        self.pending = pending
        self.orphans = orphans
        self.grace_for = grace_for
        self.retention = retention

    def _key(self, click_id: str, partner_id: str | None) -> str:
        return f"{partner_id}\x1f{click_id}" if partner_id in self.partner_ids else click_id

    def on_click(self, click: Click) -> StageOutput:
        touch = Touch.of(click)
        stored = touch.model_dump(mode="json")
        key = self._key(click.click_id, click.partner_id)
        keys = [key]
        self.clicks[key] = stored
        if key != click.click_id:  # a conversion that does not name the partner (an
            keys.append(click.click_id)  # advertiser's export) reaches the first such click
            if click.click_id not in self.clicks:
                self.clicks[click.click_id] = stored
        out: StageOutput = [touch]
        for found in keys:
            for data in (self.pending.pop(found, None) or {"conversions": []})["conversions"]:
                conversion = Conversion.model_validate(data)
                out.append(ResolvedConversion(conversion=conversion, click=touch, lookup="found"))
            orphaned = self.orphans.pop(found, None) if self.orphans is not None else None
            for data in (orphaned or {"conversions": []})["conversions"]:
                conversion = Conversion.model_validate(data)
                out.append(
                    ResolvedConversion(conversion=conversion, click=touch, lookup="rejoined")
                )
        return out

    def on_conversion(self, conversion: Conversion) -> StageOutput:
        if conversion.click_id is None:
            return [ResolvedConversion(conversion=conversion, lookup="no_click")]
        key = self._key(conversion.click_id, conversion.partner_id)
        stored = self.clicks.get(key)
        if stored is not None:
            touch = Touch.model_validate(stored)
            return [ResolvedConversion(conversion=conversion, click=touch, lookup="found")]
        entry = self.pending.get(key) or {"deadline": 0.0, "conversions": []}
        if all(c["event_id"] != conversion.event_id for c in entry["conversions"]):
            deadline = (conversion.ts + self.grace_for(conversion)).timestamp()
            entry = {
                "deadline": max(entry["deadline"], deadline),
                "conversions": [*entry["conversions"], conversion.model_dump(mode="json")],
            }
            self.pending[key] = entry  # reassign: changelogged tables need a set
        return []

    def expire(self, watermark: datetime) -> StageOutput:
        """Release conversions whose click never came (cheap: only waiting conversions)."""
        now = watermark.timestamp()
        out: StageOutput = []
        for click_id in sorted(k for k, v in self.pending.items() if v["deadline"] <= now):
            entry = self.pending.pop(click_id)
            for data in entry["conversions"]:
                conversion = Conversion.model_validate(data)
                out.append(ResolvedConversion(conversion=conversion, lookup="unknown_click"))
            if self.orphans is not None:
                known = self.orphans.get(click_id) or {"conversions": []}
                merged = [*known["conversions"], *entry["conversions"]]
                latest = max(c["ts"] for c in merged)
                self.orphans[click_id] = {"ts": latest, "conversions": merged}
        return out

    def forget(self, watermark: datetime) -> int:
        """Drop clicks past retention (a sweep over every click: run it rarely)."""
        horizon = watermark - self.retention
        stale = [k for k, v in self.clicks.items() if datetime.fromisoformat(v["ts"]) < horizon]
        for click_id in stale:
            del self.clicks[click_id]
        gone = 0
        if self.orphans is not None:
            old = [k for k, v in self.orphans.items() if datetime.fromisoformat(v["ts"]) < horizon]
            for click_id in old:
                del self.orphans[click_id]
            gone = len(old)
        return len(stale) + gone

    def drain(self) -> StageOutput:
        """End of input: every waiting conversion leaves as ``unknown_click``."""
        return self.expire(END_OF_TIME)
