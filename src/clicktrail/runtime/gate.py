"""The intake gate: validate input and publish it, events to their topics, refusals to the
dead-letter topic, parsed auction-insights exports to theirs. The edge, replay and the
embedded runtime all submit through a gate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clicktrail.bus.base import Producer
from clicktrail.bus.topics import (
    AUCTION_INSIGHTS,
    DEAD_LETTERS,
    insight_key,
    partition_key,
    topic_for,
)
from clicktrail.contracts import AnyEvent, AuctionInsight
from clicktrail.processors.intake import Intake, Rejection


@dataclass
class IntakeStats:
    read: int = 0
    accepted: int = 0
    dead_lettered: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    insight_rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "dead_lettered": self.dead_lettered,
            "reasons": dict(self.reasons),
            "insight_rows": self.insight_rows,
        }


class IntakeGate:
    def __init__(self, intake: Intake, producer: Producer) -> None:
        self.intake = intake
        self.producer = producer
        self.stats = IntakeStats()

    def submit_raw(self, raw: bytes | str, source: str) -> AnyEvent | Rejection:
        """One JSON document from a file line or a request body."""
        return self.settle(self.intake.parse(raw), raw, source)

    def submit(self, data: Any, source: str) -> AnyEvent | Rejection:
        """One already-decoded JSON value."""
        return self.settle(self.intake.validate(data), data, source)

    def validate(self, item: Any) -> AnyEvent | Rejection:
        """Parse (bytes) or validate (a decoded value) one input without publishing it: no
        side effect, so a worker thread may run it; hand the result to :meth:`settle`."""
        if isinstance(item, bytes):
            return self.intake.parse(item)
        return self.intake.validate(item)

    def submit_insights(self, rows: Sequence[AuctionInsight]) -> int:
        """Publish a whole parsed export; parsing every row first is what makes an import
        all or nothing. Returns the rows published."""
        for row in rows:
            self.producer.publish(AUCTION_INSIGHTS, insight_key(row), row)
        self.stats.insight_rows += len(rows)
        return len(rows)

    def reject(self, rejection: Rejection, raw: Any, source: str) -> Rejection:
        """Dead-letter input refused before it could be parsed (e.g. a bad request body)."""
        self.settle(rejection, raw, source)
        return rejection

    def settle(self, result: AnyEvent | Rejection, raw: Any, source: str) -> AnyEvent | Rejection:
        """Publish what :meth:`validate` returned (at the edge, once admitted to the sender's
        scope), or dead-letter why not; on the producer's thread."""
        self.stats.read += 1
        if isinstance(result, Rejection):
            self.stats.dead_lettered += 1
            self.stats.reasons[result.reason] += 1
            letter = self.intake.dead_letter(result, raw, source)
            self.producer.publish(DEAD_LETTERS, letter.event_id or "", letter)
        else:
            self.stats.accepted += 1
            self.producer.publish(topic_for(result), partition_key(result), result)
        return result
