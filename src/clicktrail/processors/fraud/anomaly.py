"""An online anomaly score for a partner's window of traffic, with River.

Features are plain dicts (click rate, unique-IP ratio, CTIT median, conversion rate,
bot share); ``MinMaxScaler | HalfSpaceTrees`` maps them to a score in [0, 1], high
when the window sits where few windows were seen. Each window is scored before it is
learnt (progressive), and ``learn_one``'s return value is never used. Half-space trees
learn a burst as normal once it lasts, so the windowed counters of the rules run
beside this score and it only ever adds a weak ``partner_anomaly`` reason.

The model is instance state, not a ``StateStore`` value (a forest is no JSON): the
runtimes checkpoint it with the per-action models and restore it at start.
"""

from __future__ import annotations

from river import anomaly, compose, preprocessing

FEATURES = ("click_rate", "unique_ip_ratio", "ctit_median", "conversion_rate", "bot_share")


class PartnerAnomaly:
    def __init__(self, *, threshold: float, warmup: int = 100, seed: int = 7) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("fraud.anomaly_threshold must be in (0, 1]")
        self.threshold = threshold
        self.features = FEATURES
        self.warmup = warmup
        self.seen = 0
        self.model: compose.Pipeline = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
            n_trees=15, height=6, window_size=50, seed=seed
        )

    def score(self, features: dict[str, float]) -> float | None:
        """Score, then learn; None while the model has seen too few windows to judge."""
        x = {name: float(features.get(name, 0.0)) for name in FEATURES}
        value = float(self.model.score_one(x))
        self.model.learn_one(x)
        self.seen += 1
        return value if self.seen > self.warmup else None

    def compatible(self, fresh: PartnerAnomaly) -> bool:
        """A restored model may replace ``fresh`` only if it reads the same features and
        judges by the same threshold."""
        return (
            getattr(self, "features", None) == fresh.features and self.threshold == fresh.threshold
        )

    def is_anomalous(self, score: float | None) -> bool:
        return score is not None and score >= self.threshold
