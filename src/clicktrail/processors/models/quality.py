"""Progressive-validation quality of one action's model: the score given at click time
is judged against the label that arrived later.

The AUC is exact (rank-based, ties count half) over the last :data:`AUC_WINDOW`
examples: River's thresholded ``ROCAUC`` understated rare actions (0.527 for an
exact 0.561), and a recent window shows what the model does now. It is kept up to
date per example (:class:`~clicktrail.metrics.RollingAuc`, O(log n)), so a report
costs nothing, and the whole object pickles into a checkpoint. Log loss, counts and ten
calibration buckets run over every example.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime
from typing import Any

from river import metrics

from clicktrail.contracts import ModelQuality
from clicktrail.metrics import RollingAuc

BUCKETS = 10
AUC_WINDOW = 50_000
"""Recent examples the reported AUC ranks."""


class Quality:
    """Running AUC, log loss, calibration error, counts and base rate of one action."""

    def __init__(self, action: str, model: str) -> None:
        self.action = action
        self.model = model
        self.examples = 0
        self.positives = 0
        self.ranked = RollingAuc(AUC_WINDOW)
        self.log_loss = metrics.LogLoss()
        self.bucket_count = [0] * BUCKETS
        self.bucket_score = [0.0] * BUCKETS
        self.bucket_positive = [0] * BUCKETS

    def update(self, p: float, y: bool) -> None:
        """One example: ``p`` as predicted before the model learned ``y``."""
        p = min(max(p, 0.0), 1.0)
        self.examples += 1
        self.positives += int(y)
        self.ranked.add(p, int(y))
        self.log_loss.update(y, {False: 1.0 - p, True: p})
        bucket = min(int(p * BUCKETS), BUCKETS - 1)
        self.bucket_count[bucket] += 1
        self.bucket_score[bucket] += p
        self.bucket_positive[bucket] += int(y)

    @property
    def base_rate(self) -> float | None:
        return self.positives / self.examples if self.examples else None

    @property
    def calibration_error(self) -> float | None:
        """Expected calibration error: mean |predicted - observed| over buckets, by weight."""
        if not self.examples:
            return None
        gap = sum(
            abs(score - positive)
            for score, positive in zip(self.bucket_score, self.bucket_positive, strict=True)
        )
        return gap / self.examples

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A checkpoint from before the rolling AUC kept the window as a deque: rank it."""
        recent = state.pop("recent", None)
        self.__dict__.update(state)
        if recent is not None:
            self.ranked = RollingAuc(AUC_WINDOW)
            for p, y in recent:
                self.ranked.add(p, y)

    @property
    def recent(self) -> deque[tuple[float, int]]:
        """The (score, label) pairs the AUC ranks, oldest first."""
        return self.ranked.recent

    def auc_value(self) -> float | None:
        """Exact AUC of the recent window; None until it holds both classes."""
        value = self.ranked.value()
        return None if math.isnan(value) else value

    def record(
        self, ts: datetime, top_features: list[str] | None = None, model: str | None = None
    ) -> ModelQuality:
        """The row now; ``model`` names what serves (default: the kind this tracks)."""
        return ModelQuality(
            ts=ts,
            action=self.action,
            model=model or self.model,
            examples=self.examples,
            positives=self.positives,
            auc=self.auc_value(),
            log_loss=float(self.log_loss.get()) if self.examples else None,
            calibration_error=self.calibration_error,
            base_rate=self.base_rate,
            top_features=top_features or [],
        )
