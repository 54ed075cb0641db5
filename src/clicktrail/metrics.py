"""Exact ranking metrics shared by the models' quality rows, the offline tool and the simulator."""

from __future__ import annotations

import math
from collections.abc import Iterable


def auc(pairs: Iterable[tuple[float, int]]) -> float:
    """Exact ROC AUC of (score, label) pairs, ties counting one half; NaN without both classes.

    Rank-based rather than thresholded: with a base rate of a few percent, fixed
    thresholds lump most scores together and understate the ranking.
    """
    ordered = sorted(pairs)
    positives = sum(y for _, y in ordered)
    negatives = len(ordered) - positives
    if not positives or not negatives:
        return math.nan
    rank_sum = 0.0
    i = 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j][0] == ordered[i][0]:
            j += 1
        tied_positives = sum(y for _, y in ordered[i:j])
        rank_sum += tied_positives * (i + j + 1) / 2  # mean 1-based rank of the tie group
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
