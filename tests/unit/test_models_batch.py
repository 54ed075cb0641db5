"""The batch-refitted regression: learns what a logistic model says, on schedule, and keeps."""

from __future__ import annotations

import itertools
import math
import pickle
import random

import numpy as np
import pytest
from scipy import sparse

from clicktrail.metrics import auc
from clicktrail.processors.models.batch import BatchLogisticRegression, fit_logistic

TRUE = {"partner=a": 1.5, "partner=b": -1.0, "country=de": 0.8, "hour_sin": 0.5}


def _examples(n: int, seed: int = 1) -> list[tuple[dict[str, float], bool]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = {f"partner={rng.choice('abc')}": 1.0, "hour_sin": rng.uniform(-1, 1)}
        if rng.random() < 0.4:
            x["country=de"] = 1.0
        z = -2.5 + sum(TRUE.get(k, 0.0) * v for k, v in x.items())
        out.append((x, rng.random() < 1 / (1 + math.exp(-z))))
    return out


def test_it_scores_the_prior_until_it_has_both_classes_then_learns_the_weights() -> None:
    model = BatchLogisticRegression(intercept_init=math.log(0.1 / 0.9))
    assert model.predict_proba_one({"partner=a": 1.0})[True] == pytest.approx(0.1)
    for x, y in _examples(6_000):
        model.learn_one(x, y)
    weights = model.weights
    assert weights["partner=a"] - weights["partner=b"] == pytest.approx(2.5, abs=0.3)
    assert weights["country=de"] == pytest.approx(0.8, abs=0.2)
    test = _examples(3_000, seed=2)
    scored = [(model.predict_proba_one(x)[True], int(y)) for x, y in test]
    true = [(sum(TRUE.get(k, 0.0) * v for k, v in x.items()), int(y)) for x, y in test]
    assert auc(scored) == pytest.approx(auc(true), abs=0.01)


def test_refits_grow_apart_as_the_stream_grows_and_the_window_bounds_memory() -> None:
    model = BatchLogisticRegression(window=1_000, min_gap=100, max_gap=500)
    fits = []
    for x, y in _examples(4_000):
        before = model.fitted_at
        model.learn_one(x, y)
        if model.fitted_at != before:
            fits.append(model.fitted_at)
    gaps = [b - a for a, b in itertools.pairwise(fits)]
    assert gaps[0] == 100 and max(gaps) == 500 and gaps == sorted(gaps)
    assert len(model.examples) == 1_000


def test_a_checkpointed_model_scores_and_learns_on_as_before() -> None:
    model = BatchLogisticRegression(min_gap=50, max_gap=200)
    stream = _examples(1_500)
    for x, y in stream[:1_000]:
        model.learn_one(x, y)
    copy = pickle.loads(pickle.dumps(model))
    for x, y in stream[1_000:]:
        model.learn_one(x, y)
        copy.learn_one(x, y)
    probe = {"partner=c": 1.0, "hour_sin": 0.3}
    assert copy.predict_proba_one(probe) == model.predict_proba_one(probe)


def test_the_fit_is_the_regularised_optimum() -> None:
    """The gradient of the penalised log loss vanishes at the weights returned."""
    rng = np.random.default_rng(3)
    x = sparse.random(500, 20, density=0.2, random_state=4, format="csr")
    y = (rng.random(500) < 0.3).astype(float)
    w = fit_logistic(x, y, l2=2.0)
    p = 1 / (1 + np.exp(-(x @ w[:-1] + w[-1])))
    assert np.abs(x.T @ (p - y) + 2.0 * w[:-1]).max() < 1e-3
    assert abs((p - y).sum()) < 1e-3
