"""One online River classifier per action, behind River's own two-method API.

Each action gets its own model because base rates differ by an order of
magnitude (add_to_cart vs purchase) and so do the features that matter. The
default, a logistic regression with plain SGD on the one-hot dict, matched or
beat every alternative measured on simulated scenarios (AdaGrad, FTRL,
averaged SGD, feature hashing, a bagged ensemble of five); those stay
selectable by name so the comparison can be rerun with ``offline``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from river import ensemble, linear_model, optim, preprocessing

from clicktrail.contracts import ModelQuality
from clicktrail.processors.models.features import FEATURE_VERSION, Features
from clicktrail.processors.models.quality import Quality

DEFAULT_MODEL = "logreg"


def _logreg(lr: float = 0.02) -> Any:
    # The intercept moves as fast as the weights: base rates of 2-20 % must be reached quickly.
    return linear_model.LogisticRegression(optimizer=optim.SGD(lr=lr), intercept_lr=lr)


def _logreg_adagrad() -> Any:
    return linear_model.LogisticRegression(optimizer=optim.AdaGrad(lr=0.05), intercept_lr=0.02)


def _logreg_ftrl() -> Any:
    optimizer = optim.FTRLProximal(alpha=0.05, beta=1, l1=0, l2=1)
    return linear_model.LogisticRegression(optimizer=optimizer, intercept_lr=0.01)


def _hashed_logreg() -> Any:
    return preprocessing.FeatureHasher(n_features=1 << 12, seed=7) | _logreg()


def _bagged_logreg() -> Any:
    return ensemble.BaggingClassifier(model=_logreg(), n_models=5, seed=7)


MODELS: Mapping[str, Callable[[], Any]] = {
    "logreg": _logreg,
    "logreg-adagrad": _logreg_adagrad,
    "logreg-ftrl": _logreg_ftrl,
    "hashed-logreg": _hashed_logreg,
    "bagged-logreg": _bagged_logreg,
}


def build_model(kind: str = DEFAULT_MODEL) -> Any:
    """A fresh River classifier; unknown names fail here, not at the first click."""
    try:
        return MODELS[kind]()
    except KeyError:
        raise ValueError(f"unknown model {kind!r}; choose one of {sorted(MODELS)}") from None


class ActionModel:
    """P(action | click) for one action: River's ``predict_proba_one`` / ``learn_one``."""

    def __init__(self, action: str, kind: str = DEFAULT_MODEL) -> None:
        self.action = action
        self.kind = kind
        self.estimator = build_model(kind)

    def predict_proba_one(self, x: Features) -> dict[bool, float]:
        proba = self.estimator.predict_proba_one(x)
        p = float(proba.get(True, 0.0))
        return {False: 1.0 - p, True: p}

    def learn_one(self, x: Features, y: bool) -> None:
        self.estimator.learn_one(x, y)  # its return value differs between River versions

    def top_features(self, n: int = 5) -> list[str]:
        """The largest weights by magnitude, as ``feature:+0.123``; empty for models
        without readable weights (hashed features, ensembles)."""
        weights = getattr(self.estimator, "weights", None)
        if not weights:
            return []
        strongest = sorted(weights.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:n]
        return [f"{name}:{weight:+.3f}" for name, weight in strongest]


class ActionModels:
    """The per-action models and their quality: all the learned state a checkpoint holds."""

    def __init__(self, actions: Iterable[str], kind: str = DEFAULT_MODEL) -> None:
        build_model(kind)  # validate now
        self.kind = kind
        self.models: dict[str, ActionModel] = {}
        self.quality: dict[str, Quality] = {}
        for action in actions:
            self[action]

    @property
    def name(self) -> str:
        """Model kind and feature-set version, as scores and checkpoints name them."""
        return f"{self.kind}/{FEATURE_VERSION}"

    def __getitem__(self, action: str) -> ActionModel:
        """An action seen for the first time (a custom one) gets a fresh model."""
        model = self.models.get(action)
        if model is None:
            model = self.models[action] = ActionModel(action, self.kind)
            self.quality[action] = Quality(action, self.kind)
        return model

    def learn(self, action: str, x: Features, y: bool, predicted: float) -> None:
        """Judge the score given at click time, then learn the label (progressive validation)."""
        model = self[action]
        self.quality[action].update(predicted, y)
        model.learn_one(x, y)

    def records(self, ts: datetime) -> list[ModelQuality]:
        """One ``ModelQuality`` row per action, for the runtime to emit on its timer."""
        return [
            self.quality[action].record(ts, self.models[action].top_features())
            for action in sorted(self.quality)
        ]

    def score(self, x: Features, actions: Iterable[str]) -> dict[str, float]:
        """P(action) for each action; what the click stage stores and what /v1/score serves."""
        return {action: self[action].predict_proba_one(x)[True] for action in actions}
