"""What any learner of the click's features could reach: the ceiling beside the oracle.

The oracle scores with the true probabilities, which no model learns from a week of
traffic; how far below it a learner must stay depends on how many conversions there are to
learn from. This runs the strongest learner of the models' own feature class that we know
how to give those same clicks: an L2-regularised logistic regression fitted in batch
(Newton-CG, scipy) on every label known so far, refitted at ``refits`` points through the
second half, each fit scoring the clicks up to the next (true labels, no delay: it is
favoured over the online models). Its second-half AUC against the oracle's on the same
clicks is the part of the gap that no online setting can close.

    python -m clicktrail.processors.models.ceiling DIR
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from scipy import sparse

from clicktrail.contracts import Click
from clicktrail.metrics import auc
from clicktrail.processors.models.batch import fit_logistic
from clicktrail.processors.models.features import click_features, without_crosses

L2 = 8.0
"""Ridge strength: among 2, 8 and 32 the best or within 0.002 of it on 30k and 1M events."""
REFITS = 8


@dataclass(frozen=True, slots=True)
class Ceiling:
    examples: int
    positives: int
    auc: float
    oracle_auc: float

    @property
    def gap(self) -> float:
        return self.oracle_auc - self.auc


def _clicks(directory: Path) -> list[tuple[list[str], dict[str, float], dict[str, int]]]:
    """Clean clicks in delivery order (first delivery): one-hot names, true p and y."""
    truth: dict[str, dict[str, Any]] = {}
    with (directory / "truth.jsonl").open("rb") as lines:
        for line in lines:
            if line.startswith(b'{"kind":"click"'):
                record = orjson.loads(line)
                if "p" in record:
                    truth[record["click_id"]] = record
    out: list[tuple[list[str], dict[str, float], dict[str, int]]] = []
    with (directory / "events.jsonl").open("rb") as lines:
        for line in lines:
            if b'"type":"click"' not in line:
                continue
            event = orjson.loads(line)
            record = truth.pop(event.get("click_id"), None)
            if record is None:
                continue
            click = Click.model_validate(event)
            x = without_crosses(click_features(click))
            names = [k for k, v in x.items() if v == 1.0]
            names.append(f"hour_of_week={click.ts.weekday() * 24 + click.ts.hour}")
            out.append((names, record["p"], record["y"]))
    return out


def ceiling(directory: Path, *, l2: float = L2, refits: int = REFITS) -> dict[str, Ceiling]:
    """Per action: the batch learner's and the oracle's AUC on the second half of its clicks."""
    clicks = _clicks(directory)
    out: dict[str, Ceiling] = {}
    for action in sorted({a for _, p, _ in clicks for a in p}):
        rows = [(names, p[action], y[action]) for names, p, y in clicks if action in p]
        columns: dict[str, int] = {}
        indices = [[columns.setdefault(n, len(columns)) for n in names] for names, _, _ in rows]
        pointers = np.cumsum([0, *(len(i) for i in indices)])
        flat = np.fromiter((j for i in indices for j in i), dtype=np.int64, count=pointers[-1])
        x = sparse.csr_matrix((np.ones(len(flat)), flat, pointers), shape=(len(rows), len(columns)))
        y = np.array([label for _, _, label in rows], dtype=float)
        half = len(rows) // 2
        if not 0 < y[:half].sum() < half:
            continue
        scores = np.empty(len(rows) - half)
        bounds = np.linspace(half, len(rows), refits + 1).astype(int)
        for start, end in itertools.pairwise(bounds.tolist()):
            w = fit_logistic(x[:start], y[:start], l2)
            scores[start - half : end - half] = x[start:end] @ w[:-1]
        later = y[half:].astype(int).tolist()
        oracle = [p for _, p, _ in rows[half:]]
        out[action] = Ceiling(
            examples=len(later),
            positives=sum(later),
            auc=auc(zip(scores.tolist(), later, strict=True)),
            oracle_auc=auc(zip(oracle, later, strict=True)),
        )
    return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m clicktrail.processors.models.ceiling DIR")
    report = {
        action: {
            "examples": c.examples,
            "positives": c.positives,
            "ceiling_auc_second_half": round(c.auc, 4),
            "oracle_auc_second_half": round(c.oracle_auc, 4),
            "gap": round(c.gap, 4),
        }
        for action, c in ceiling(Path(args[0])).items()
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
