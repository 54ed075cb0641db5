"""Delayed labels: a click waits as a pending example until its conversions or its window decide.

The click stage (keyed by ``click_id``) scores each clean click and keeps its
features and scores in state. An attributed conversion of action A makes the
click a positive for A; when the event-time watermark passes the click's label
deadline (its window, or a shorter per-action horizon), every action still open
becomes a negative. Each (click, action) is learned at most once, so a repeated
conversion learns nothing, and a conversion after the deadline is only counted
in ``unmatched`` (the negative was already learned). Clicks marked as fraud are
never learned from.

By default a positive is held until the deadline too. Learning positives at
once and negatives a horizon later feeds the model a stream richer in positives
than the traffic: on the simulator that inflated scores (calibration error 0.18
instead of 0.01) and cost 0.03-0.10 AUC. Holding also lets a fraud verdict that
comes after the conversion still keep the click out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clicktrail.contracts import AttributedConversion, Click, StateStore
from clicktrail.processors.models.estimators import ActionModels
from clicktrail.processors.models.features import click_features

DEFAULT_WINDOW = timedelta(days=30)
END_OF_TIME = datetime(9000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Learned:
    """One (click, action) example as it was learned: the score it had been given, the label."""

    click_id: str
    action: str
    label: bool
    score: float


class DelayedLabels:
    """The training side of the click stage.

    ``on_click`` for each clean click (its scores are what to serve), ``mark_fraud``
    on a ``reject`` verdict, ``on_conversion`` for each attributed-conversion row
    routed back by ``click_id``, ``expire`` on the stage's watermark timer.
    """

    def __init__(
        self,
        pending: StateStore,
        models: ActionModels,
        *,
        actions_for: Callable[[Click], Iterable[str]],
        window_for: Callable[[Click], timedelta] = lambda _click: DEFAULT_WINDOW,
        label_horizon: Mapping[str, timedelta] | None = None,
        hold_positives: bool = True,
    ) -> None:
        """``actions_for``: the actions a click can lead to (its advertiser's).

        ``label_horizon`` optionally caps, per action, how long a click waits
        before it counts as a negative (default: its attribution window).
        ``hold_positives`` learns a positive at the deadline too, so positives
        and negatives reach the model in click order; False learns it at once.
        """
        self.pending = pending
        self.models = models
        self.learned: Counter[tuple[str, bool]] = Counter()
        """Examples learned by this process, per (action, label): a count for the
        operators' metrics, not state (a restarted worker counts from zero)."""
        self.actions_for = actions_for
        self.window_for = window_for
        self.label_horizon = dict(label_horizon or {})
        self.hold_positives = hold_positives
        self.unmatched = 0

    def on_click(self, click: Click, counts: Mapping[str, int] | None = None) -> dict[str, float]:
        """Score a clean click and keep it as a pending example; returns the scores."""
        if click.click_id in self.pending:
            return dict(self.pending[click.click_id]["scores"])
        x = click_features(click, counts)
        actions = list(dict.fromkeys(self.actions_for(click)))
        scores = self.models.score(x, actions)
        window = self.window_for(click)
        open_ = {
            action: (click.ts + min(window, self.label_horizon.get(action, window))).timestamp()
            for action in actions
        }
        if open_:
            self.pending[click.click_id] = {
                "x": x,
                "scores": scores,
                "open": open_,
                "deadline": min(open_.values()),
                "fraud": False,
                "won": [],
            }
        return scores

    def mark_fraud(self, click_id: str) -> bool:
        """Exclude a click (a ``reject`` verdict) from training; False if it is not pending."""
        entry = self.pending.get(click_id)
        if entry is None:
            return False
        self.pending[click_id] = {**entry, "fraud": True}  # reassign: changelogs need a set
        return True

    def on_conversion(self, row: AttributedConversion) -> list[Learned]:
        """A credited click becomes a positive for the row's action (once)."""
        if row.touch != "click" or row.click_id is None:
            return []
        if row.fraud_action == "reject":
            self.mark_fraud(row.click_id)
            return []
        return self.positive(row.click_id, row.action, at=row.conversion_ts)

    def positive(self, click_id: str, action: str, at: datetime | None = None) -> list[Learned]:
        """The click led to ``action`` (at ``at``): learn it once, unless the click is marked
        as fraud or the conversion came after the action's deadline (however late the sweep
        that would have closed it runs)."""
        entry = self.pending.get(click_id)
        if entry is None:  # never pending, or every action already decided
            self.unmatched += 1
            return []
        if action not in entry["open"] or action in entry["won"]:  # decided, or not its action
            self.unmatched += 1
            return []
        if at is not None and at.timestamp() > entry["open"][action]:  # too late to count
            self.unmatched += 1
            return []
        if self.hold_positives:
            self.pending[click_id] = {**entry, "won": [*entry["won"], action]}
            return []
        open_ = dict(entry["open"])
        del open_[action]
        self._save(click_id, entry, open_)
        if entry["fraud"]:
            return []
        return [self._learn(click_id, entry, action, label=True)]

    def expire(self, watermark: datetime) -> list[Learned]:
        """Actions past their deadline are learned: negatives, or held positives.

        A sweep over every pending click: run it rarely (say each event-time minute).
        """
        now = watermark.timestamp()
        due = sorted(
            (entry["deadline"], click_id)
            for click_id, entry in self.pending.items()
            if entry["deadline"] <= now
        )
        learned: list[Learned] = []
        for _, click_id in due:
            entry = self.pending[click_id]
            closing = sorted(a for a, deadline in entry["open"].items() if deadline <= now)
            open_ = {a: d for a, d in entry["open"].items() if d > now}
            self._save(click_id, entry, open_)
            if not entry["fraud"]:
                won = entry["won"]
                learned.extend(self._learn(click_id, entry, a, label=a in won) for a in closing)
        return learned

    def drain(self) -> list[Learned]:
        """End of input: every open action is decided now."""
        return self.expire(END_OF_TIME)

    def _save(self, click_id: str, entry: dict[str, Any], open_: dict[str, float]) -> None:
        if open_:
            self.pending[click_id] = {**entry, "open": open_, "deadline": min(open_.values())}
        else:
            del self.pending[click_id]

    def _learn(self, click_id: str, entry: dict[str, Any], action: str, *, label: bool) -> Learned:
        score = float(entry["scores"][action])
        self.models.learn(action, entry["x"], label, score)
        self.learned[action, label] += 1
        return Learned(click_id, action, label, score)
