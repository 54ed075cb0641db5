"""Exact ranking metrics shared by the models' quality rows, the offline tool and the simulator."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


def auc(pairs: Iterable[tuple[float, int]]) -> float:
    """Exact ROC AUC of (score, label) pairs, ties counting one half; NaN without both classes.

    Rank-based rather than thresholded: with a base rate of a few percent, fixed
    thresholds lump most scores together and understate the ranking. The Mann-Whitney
    statistic over scipy's midranks: a 50,000-example window ranks in milliseconds.
    """
    data = np.asarray(list(pairs), dtype=float).reshape(-1, 2)
    labels = data[:, 1] > 0
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if not positives or not negatives:
        return math.nan
    ranks = stats.rankdata(data[:, 0])
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass(frozen=True, slots=True)
class AucDifference:
    """Two scorers' AUC on the same examples and DeLong's standard error of the difference."""

    first: float
    second: float
    stderr: float

    @property
    def difference(self) -> float:
        return self.first - self.second

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Two-sided confidence interval of ``first - second``."""
        z = float(stats.norm.ppf(0.5 + confidence / 2))
        return self.difference - z * self.stderr, self.difference + z * self.stderr


def auc_difference(
    labels: Sequence[int], first: Sequence[float], second: Sequence[float]
) -> AucDifference | None:
    """DeLong et al. (1988) for two correlated AUCs, in Sun & Xu's (2014) midrank form.

    On a few hundred positives two models' AUCs differ by a few hundredths from noise
    alone; this says by how much, on the very same examples. None without both classes."""
    y = np.asarray(labels, dtype=bool)
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        return None
    scores = np.vstack([np.asarray(first, dtype=float), np.asarray(second, dtype=float)])
    positives, negatives = scores[:, y], scores[:, ~y]
    combined = np.hstack([positives, negatives])
    within_pos = np.vstack([stats.rankdata(row) for row in positives])
    within_neg = np.vstack([stats.rankdata(row) for row in negatives])
    overall = np.vstack([stats.rankdata(row) for row in combined])
    aucs = (overall[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v01 = (overall[:, :m] - within_pos) / n
    v10 = 1.0 - (overall[:, m:] - within_neg) / m
    cov = np.cov(v01) / m + np.cov(v10) / n
    variance = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    return AucDifference(float(aucs[0]), float(aucs[1]), math.sqrt(max(float(variance), 0.0)))
