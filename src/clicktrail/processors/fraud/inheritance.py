"""A conversion carries its click's reasons, whenever the click gains them.

A conversion judged on a click inherits the reasons the click has by then, but a click
can be convicted later: by the click that makes its network a flood, or by another
conversion that shows injection or a mismatch. Which is processed first depends on
the order a stage reads its input (Kafka orders messages only within a partition, and
a backlog of the clicks and conversions topics is read interleaved in any order), so
each click keeps the conversions judged on it with their reasons, and a click that
gains reasons revises their verdicts: the same verdicts whatever the order.

State: click id -> ``[[event_id, ts, partner, campaign, reasons], ...]`` (``ts`` in
ISO form, exact to the microsecond), at most ``MAX_PER_CLICK`` conversions (a click
rarely credits more than a few).
"""

from __future__ import annotations

from datetime import datetime

from clicktrail.contracts import FraudVerdict, StateStore
from clicktrail.processors.fraud.hits import ordered
from clicktrail.processors.fraud.verdicts import Combiner, combined_score

MAX_PER_CLICK = 20


class InheritedReasons:
    def __init__(self, store: StateStore, combine: Combiner) -> None:
        self.store = store
        self.combine = combine

    def remember(
        self,
        click_id: str,
        event_id: str,
        ts: datetime,
        reasons: set[str],
        *,
        partner: str | None,
        campaign: str | None,
    ) -> None:
        """A conversion judged on ``click_id`` with ``reasons`` (its own and inherited)."""
        entries = [e for e in (self.store.get(click_id) or []) if e[0] != event_id]
        entry = [event_id, ts.isoformat(), partner, campaign, ordered(reasons)]
        self.store[click_id] = [*entries, entry][-MAX_PER_CLICK:]

    def revise(self, click_id: str, reasons: set[str]) -> tuple[list[FraudVerdict], int]:
        """The click now has ``reasons``: revised verdicts of its conversions that lacked
        some, and how many of them turned from ok to flagged."""
        entries = self.store.get(click_id)
        if not entries:
            return [], 0
        out: list[FraudVerdict] = []
        convicted = 0
        kept = []
        for event_id, ts, partner, campaign, before in entries:
            now = before
            if not reasons <= set(before):
                verdict = self.combine(
                    "conversion",
                    event_id,
                    datetime.fromisoformat(ts),
                    reasons | set(before),
                    partner_id=partner,
                    campaign_id=campaign,
                )
                was_ok = self.combine.action(combined_score(before)) == "ok"
                convicted += int(was_ok and verdict.action != "ok")
                out.append(verdict)
                now = verdict.reasons
            kept.append([event_id, ts, partner, campaign, now])
        if out:
            self.store[click_id] = kept
        return out, convicted

    def expire(self, horizon: datetime) -> int:
        """Forget clicks whose latest judged conversion is older than ``horizon``."""
        newest = {k: max(datetime.fromisoformat(e[1]) for e in v) for k, v in self.store.items()}
        stale = [k for k, ts in newest.items() if ts < horizon]
        for key in stale:
            del self.store[key]
        return len(stale)
