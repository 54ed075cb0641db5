"""Exact ranking metrics shared by the models' quality rows, the offline tool and the simulator."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sortedcontainers import SortedList


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


class RollingAuc:
    """Exact AUC of the last ``window`` (score, label) pairs, kept up to date per pair.

    The Mann-Whitney count of (positive, negative) pairs ranked right, ties one half, held
    as an integer of halves: a pair in or out changes it by how many of the other class
    rank below or above it, two bisections in sorted lists (``sortedcontainers``), so an
    update costs O(log n) and reading the AUC nothing, where ranking the window anew costs
    a sort each time it is read. The same number as :func:`auc` on the window.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.recent: deque[tuple[float, int]] = deque()
        self._positives: SortedList = SortedList()
        self._negatives: SortedList = SortedList()
        self._halves = 0

    def __len__(self) -> int:
        return len(self.recent)

    def add(self, score: float, label: int) -> None:
        if len(self.recent) >= self.window:
            self._count(*self.recent.popleft(), sign=-1)
        self.recent.append((score, label))
        self._count(score, label, sign=1)

    def _count(self, score: float, label: int, sign: int) -> None:
        """Add (sign 1) or take away (sign -1) one pair and the ranked pairs it makes."""
        if label:
            if sign < 0:
                self._positives.remove(score)
            below = self._negatives.bisect_left(score)
            ties = self._negatives.bisect_right(score) - below
            if sign > 0:
                self._positives.add(score)
        else:
            if sign < 0:
                self._negatives.remove(score)
            above = self._positives.bisect_right(score)
            ties = above - self._positives.bisect_left(score)
            below = len(self._positives) - above  # positives ranked above this negative
            if sign > 0:
                self._negatives.add(score)
        self._halves += sign * (2 * below + ties)

    def value(self) -> float:
        """The AUC now; NaN without both classes."""
        pairs = len(self._positives) * len(self._negatives)
        return self._halves / (2 * pairs) if pairs else math.nan


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
