"""Oracle AUC per action: how well the TRUE probabilities rank the clicks that converted.

It is the ceiling for any per-action model fed the same context; evaluations
compare a model's progressive-validation AUC with it.
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson

from clicktrail.metrics import auc

_BINS = 100_000
__all__ = ["BinnedAuc", "auc", "oracle_auc"]


class BinnedAuc:
    """AUC in constant memory: probabilities in bins of 1e-5 (error far below 1e-3)."""

    def __init__(self) -> None:
        self.pos = [0] * _BINS
        self.neg = [0] * _BINS

    def add(self, p: float, converted: bool) -> None:
        index = min(int(p * _BINS), _BINS - 1)
        (self.pos if converted else self.neg)[index] += 1

    def value(self) -> float:
        positives, negatives = sum(self.pos), sum(self.neg)
        if not positives or not negatives:
            return math.nan
        below = 0
        area = 0.0
        for pos, neg in zip(self.pos, self.neg, strict=True):
            area += pos * (below + neg / 2)
            below += neg
        return area / (positives * negatives)


def oracle_auc(truth: Path) -> dict[str, dict[str, float]]:
    """Per action: exact AUC of the true probabilities, clicks and positives, from truth.jsonl."""
    pairs: dict[str, list[tuple[float, int]]] = {}
    with truth.open("rb") as lines:
        for line in lines:
            if not line.startswith(b'{"kind":"click"'):
                continue
            record = orjson.loads(line)
            for action, p in record.get("p", {}).items():
                pairs.setdefault(action, []).append((p, record["y"][action]))
    return {
        action: {
            "auc": auc(values),
            "clicks": len(values),
            "positives": sum(y for _, y in values),
        }
        for action, values in sorted(pairs.items())
    }
