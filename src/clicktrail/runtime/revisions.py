"""A conversion's verdict on its attributed rows, also when the verdict changes later.

The fraud stage revises a conversion's verdict when its click is convicted after the
conversion was judged (``processors/fraud/inheritance.py``). The rows live in the user
stage under the key the conversion travelled with, so each judged conversion is kept
as it was forwarded, and its revision travels the same way: the same record with
``lookup="revised"`` and the new action and reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from clicktrail.contracts import FraudVerdict, StateStore
from clicktrail.contracts.internal import ResolvedConversion

RETENTION = timedelta(days=31)  # as long as the fraud stage remembers a click's conversions


def verdict_mark(verdict: FraudVerdict) -> dict[str, str]:
    """A flagged verdict as the fields it sets on a conversion's records."""
    if verdict.action == "ok":
        return {}
    return {"fraud_action": str(verdict.action), "fraud_reason": verdict.reasons[0]}


class Revisions:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    def remember(self, resolved: ResolvedConversion) -> None:
        """A conversion judged on a click, as it was forwarded to the user stage."""
        conversion = resolved.conversion
        self.store[conversion.event_id] = {
            "ts": conversion.ts.timestamp(),
            "resolved": resolved.model_dump(mode="json"),
        }

    def of(self, verdicts: list[FraudVerdict], judging: str | None) -> list[ResolvedConversion]:
        """Records for the conversions whose verdict ``verdicts`` revise (any conversion
        verdict but that of ``judging``, the one being judged now)."""
        out = []
        for verdict in verdicts:
            if verdict.subject_type != "conversion" or verdict.subject_id == judging:
                continue
            entry: dict[str, Any] | None = self.store.get(verdict.subject_id)
            if entry is None or not (mark := verdict_mark(verdict)):
                continue
            resolved = ResolvedConversion.model_validate(entry["resolved"])
            out.append(resolved.model_copy(update={"lookup": "revised", **mark}))
        return out

    def expire(self, watermark: datetime) -> int:
        horizon = (watermark - RETENTION).timestamp()
        stale = [k for k, v in self.store.items() if v["ts"] < horizon]
        for key in stale:
            del self.store[key]
        return len(stale)
