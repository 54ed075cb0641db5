"""Progressive-validation quality of one action's model: the score given at click time
is judged against the label that arrived later.

River's ``ROCAUC`` and ``LogLoss`` run beside plain counters and ten calibration
buckets, so a ``ModelQuality`` row can be emitted at any moment without
revisiting past examples, and the whole object pickles into a checkpoint.
"""

from __future__ import annotations

from datetime import datetime

from river import metrics

from clicktrail.contracts import ModelQuality

BUCKETS = 10
AUC_THRESHOLDS = 100  # River's default of 10 is too coarse for base rates of a few percent


class Quality:
    """Running AUC, log loss, calibration error, counts and base rate of one action."""

    def __init__(self, action: str, model: str) -> None:
        self.action = action
        self.model = model
        self.examples = 0
        self.positives = 0
        self.auc = metrics.ROCAUC(n_thresholds=AUC_THRESHOLDS)
        self.log_loss = metrics.LogLoss()
        self.bucket_count = [0] * BUCKETS
        self.bucket_score = [0.0] * BUCKETS
        self.bucket_positive = [0] * BUCKETS

    def update(self, p: float, y: bool) -> None:
        """One example: ``p`` as predicted before the model learned ``y``."""
        p = min(max(p, 0.0), 1.0)
        self.examples += 1
        self.positives += int(y)
        self.auc.update(y, {False: 1.0 - p, True: p})
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

    def auc_value(self) -> float | None:
        """None until both classes were seen (AUC is undefined before)."""
        if not self.positives or self.positives == self.examples:
            return None
        return float(self.auc.get())

    def record(self, ts: datetime, top_features: list[str] | None = None) -> ModelQuality:
        return ModelQuality(
            ts=ts,
            action=self.action,
            model=self.model,
            examples=self.examples,
            positives=self.positives,
            auc=self.auc_value(),
            log_loss=float(self.log_loss.get()) if self.examples else None,
            calibration_error=self.calibration_error,
            base_rate=self.base_rate,
            top_features=top_features or [],
        )
