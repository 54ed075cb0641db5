"""The click stage (keyed by ``click_id``): remember clicks, resolve postbacks' click ids.

A conversion can arrive before its click (postbacks race redirects, partitions
lag): it waits here for a grace period, then leaves as ``unknown_click``. It is
remembered as an orphan for the retention period, so a click that comes after all
(delivered late, or after a backlog of conversions) re-joins it: the conversion
goes to the user stage again as ``rejoined`` and is credited in a new version.
Everything leaving this stage goes to the user stage (see ``attribution``).
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
    ) -> None:
        self.clicks = clicks
        self.pending = pending
        self.orphans = orphans
        self.grace_for = grace_for
        self.retention = retention

    def on_click(self, click: Click) -> StageOutput:
        touch = Touch.of(click)
        self.clicks[click.click_id] = touch.model_dump(mode="json")
        out: StageOutput = [touch]
        waiting = self.pending.pop(click.click_id, None)
        if waiting:
            for data in waiting["conversions"]:
                conversion = Conversion.model_validate(data)
                out.append(ResolvedConversion(conversion=conversion, click=touch, lookup="found"))
        orphaned = self.orphans.pop(click.click_id, None) if self.orphans is not None else None
        if orphaned:
            for data in orphaned["conversions"]:
                conversion = Conversion.model_validate(data)
                out.append(
                    ResolvedConversion(conversion=conversion, click=touch, lookup="rejoined")
                )
        return out

    def on_conversion(self, conversion: Conversion) -> StageOutput:
        if conversion.click_id is None:
            return [ResolvedConversion(conversion=conversion, lookup="no_click")]
        stored = self.clicks.get(conversion.click_id)
        if stored is not None:
            touch = Touch.model_validate(stored)
            return [ResolvedConversion(conversion=conversion, click=touch, lookup="found")]
        entry = self.pending.get(conversion.click_id) or {"deadline": 0.0, "conversions": []}
        if all(c["event_id"] != conversion.event_id for c in entry["conversions"]):
            deadline = (conversion.ts + self.grace_for(conversion)).timestamp()
            entry = {
                "deadline": max(entry["deadline"], deadline),
                "conversions": [*entry["conversions"], conversion.model_dump(mode="json")],
            }
            self.pending[conversion.click_id] = entry  # reassign: changelogged tables need a set
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
