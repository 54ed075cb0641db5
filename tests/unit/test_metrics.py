"""Exact AUC and DeLong's paired comparison, checked against a bootstrap."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clicktrail.metrics import RollingAuc, auc, auc_difference


def _world(seed: int, n: int = 2_000) -> tuple[list[int], list[float], list[float]]:
    rng = random.Random(seed)
    y = [int(rng.random() < 0.08) for _ in range(n)]
    first = [label * 0.7 + rng.random() for label in y]
    second = [label * 0.4 + 0.5 * a + rng.random() for label, a in zip(y, first, strict=True)]
    return y, first, second


@pytest.mark.parametrize("seed", [1, 2])
def test_delong_matches_the_exact_aucs_and_a_bootstrap(seed: int) -> None:
    y, first, second = _world(seed)
    found = auc_difference(y, first, second)
    assert found is not None
    assert found.first == pytest.approx(auc(zip(first, y, strict=True)))
    assert found.second == pytest.approx(auc(zip(second, y, strict=True)))
    rng = np.random.default_rng(seed)
    ya, fa, sa = np.array(y), np.array(first), np.array(second)
    draws = []
    for _ in range(300):
        i = rng.integers(0, len(y), len(y))
        draws.append(auc(zip(fa[i], ya[i], strict=True)) - auc(zip(sa[i], ya[i], strict=True)))
    assert found.stderr == pytest.approx(float(np.std(draws)), rel=0.2)
    low, high = found.interval()
    assert low < found.difference < high


def test_the_same_scores_differ_by_nothing_and_one_class_gives_none() -> None:
    y, first, _ = _world(3)
    same = auc_difference(y, first, first)
    assert same is not None and same.difference == 0 and same.stderr == 0
    assert auc_difference([0] * 10, first[:10], first[:10]) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]), st.integers(0, 1))),
    st.integers(1, 12),
)
def test_the_rolling_auc_is_the_exact_auc_of_its_window(
    pairs: list[tuple[float, int]], window: int
) -> None:
    """Scores drawn from a few values: ties everywhere, the hard part of ranking."""
    rolling = RollingAuc(window)
    for n, (score, label) in enumerate(pairs, start=1):
        rolling.add(score, label)
        want = auc(pairs[max(0, n - window) : n])
        got = rolling.value()
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, abs=1e-12)
