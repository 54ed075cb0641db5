"""A logistic regression refitted in batch on the recent examples: the online models' anchor.

SGD and AdaGrad see each example once. On a few hundred conversions that leaves them
0.02-0.08 AUC below an L2-regularised regression fitted on the same examples (see
``models.ceiling``), and no learning rate fixes both rare and common actions. This
estimator keeps the last ``window`` examples and refits on them by L-BFGS (scipy) each time
the examples seen grew by a quarter (at most every ``max_gap``), so small streams are
refitted often and large ones cost a fit per few thousand labels. Between fits it scores
with the last fit; before the first, the prior. It speaks River's ``learn_one`` /
``predict_proba_one``, so it is one more candidate the progressive validation can serve.
"""

from __future__ import annotations

import math
from array import array
from collections import deque

import numpy as np
from scipy import optimize, sparse

Features = dict[str, float]


class BatchLogisticRegression:
    def __init__(
        self,
        *,
        l2: float = 8.0,
        window: int = 30_000,
        min_gap: int = 50,
        max_gap: int = 5_000,
        intercept_init: float = 0.0,
    ) -> None:
        self.l2 = l2
        self.window = window
        self.min_gap = min_gap
        self.max_gap = max_gap
        self.columns: dict[str, int] = {}
        self.examples: deque[tuple[array[int], array[float], bool]] = deque(maxlen=window)
        """Column numbers (int32) and values (float32) of each example: compact, since a
        checkpoint holds them."""
        self.seen = 0
        self.fitted_at = 0
        self.coef: np.ndarray = np.zeros(0)
        self.intercept = intercept_init

    @property
    def weights(self) -> dict[str, float]:
        """Weight per feature name, as River's linear models show them."""
        return {name: float(self.coef[j]) for name, j in self.columns.items() if j < len(self.coef)}

    def predict_proba_one(self, x: Features) -> dict[bool, float]:
        z = self.intercept
        weights, columns = self.coef, self.columns
        for name, value in x.items():
            j = columns.get(name)
            if j is not None and j < len(weights):
                z += weights[j] * value
        p = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
        return {False: 1.0 - p, True: p}

    def learn_one(self, x: Features, y: bool) -> None:
        columns = self.columns
        indices = array("i", [columns.setdefault(name, len(columns)) for name in x])
        self.examples.append((indices, array("f", x.values()), bool(y)))
        self.seen += 1
        gap = self.seen - self.fitted_at
        if gap >= max(self.min_gap, min(self.max_gap, self.fitted_at // 4)):
            self._fit()

    def _fit(self) -> None:
        rows = self.examples
        labels = np.fromiter((y for _, _, y in rows), dtype=float, count=len(rows))
        if labels.min() == labels.max():
            return  # one class so far: the prior says as much
        pointers = np.cumsum([0, *(len(i) for i, _, _ in rows)])
        indices = np.frombuffer(b"".join(i.tobytes() for i, _, _ in rows), dtype=np.int32)
        values = np.frombuffer(b"".join(v.tobytes() for _, v, _ in rows), dtype=np.float32)
        x = sparse.csr_matrix((values, indices, pointers), shape=(len(rows), len(self.columns)))
        start = np.zeros(x.shape[1] + 1)
        start[: len(self.coef)] = self.coef
        start[-1] = self.intercept
        found = fit_logistic(x, labels, self.l2, start)
        self.coef, self.intercept = found[:-1], float(found[-1])
        self.fitted_at = self.seen


def fit_logistic(
    x: sparse.csr_matrix, y: np.ndarray, l2: float, start: np.ndarray | None = None
) -> np.ndarray:
    """Weights then intercept of the L2-regularised logistic regression of ``y`` on ``x``.

    Newton-CG with exact Hessian-vector products (two sparse products each): on these
    problems (thousands of rows, hundreds of one-hot columns) it converges in a dozen
    steps, six times faster than L-BFGS."""

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w[:-1] + w[-1]
        value = float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * w[:-1] @ w[:-1])
        residual = _sigmoid(z) - y
        grad = np.empty_like(w)
        grad[:-1] = x.T @ residual + l2 * w[:-1]
        grad[-1] = residual.sum()
        return value, grad

    def hessp(w: np.ndarray, v: np.ndarray) -> np.ndarray:
        p = _sigmoid(x @ w[:-1] + w[-1])
        t = p * (1 - p) * (x @ v[:-1] + v[-1])
        out = np.empty_like(v)
        out[:-1] = x.T @ t + l2 * v[:-1]
        out[-1] = t.sum()
        return out

    w0 = np.zeros(x.shape[1] + 1) if start is None else start
    found = optimize.minimize(loss, w0, jac=True, hessp=hessp, method="Newton-CG")
    return np.asarray(found.x)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))
