"""One online River classifier per action, behind River's own two-method API.

Each action gets its own model because base rates differ by an order of
magnitude (add_to_cart vs purchase) and so do the features that matter. No single
learning rate fits all of them: 0.2 fits rare actions but cost 0.04-0.06 AUC on
common ones, 0.02 left a rare action on a real log at 0.65 where a plain
regression at 0.1 reached 0.94. So the default model (``logreg``) runs a few
logistic regressions per action (:data:`CANDIDATES`: learning rates, with or without
the crossed features, and regressions refitted in batch on the recent examples), every
one learning every example, and serves the one whose recent log loss on examples it had
not yet learned is lowest (progressive validation, decayed so the choice follows the
traffic). Intercepts start at the
logit of the action's prior rate, so a fresh model scores the base rate, not 0.5.
The other kinds (AdaGrad, FTRL, feature hashing, a bagged ensemble, and the plain
``baseline`` an evaluation compares with) are single estimators, selectable by
name so comparisons can be rerun with ``offline``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from river import linear_model, optim

from clicktrail.contracts import ModelQuality
from clicktrail.processors.models.batch import BatchLogisticRegression
from clicktrail.processors.models.features import FEATURE_VERSION, Features, without_crosses
from clicktrail.processors.models.quality import Quality

DEFAULT_MODEL = "logreg"
DEFAULT_PRIOR = 0.02
"""Base rate of an action nobody gave a prior (a custom action seen first in traffic)."""
DECAY = 1 / 2000
"""Weight of one example in a candidate's recent log loss: about the last 2,000 count,
enough positives for a rare action's choice, recent enough to follow a change."""
_EPS = 1e-7


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


@dataclass(frozen=True, slots=True)
class Candidate:
    """One learning setup an action model may serve: SGD at a fixed rate, or AdaGrad (a
    rate per feature, large for the rarely seen ones), with or without the crosses."""

    lr: float
    crosses: bool = False
    adagrad: bool = False
    blended: bool = False
    """A member of the blend (the mean of the members' logits), itself one more option."""
    batch: bool = False
    """Refitted in batch on the recent examples (:mod:`.batch`); ``lr`` is unused."""

    @property
    def name(self) -> str:
        crosses = "+crosses" if self.crosses else ""
        if self.batch:
            return f"batch{crosses}"
        kind = "adagrad" if self.adagrad else "sgd"  # no spaces: views split rows on them
        return f"{kind}@{self.lr:g}{crosses}"

    def build(self, prior: float | None) -> Any:
        init = 0.0 if prior is None else logit(prior)
        if self.batch:
            return BatchLogisticRegression(intercept_init=init)
        if self.adagrad:  # its intercept keeps a plain rate: it is in every example
            optimizer: optim.base.Optimizer = optim.AdaGrad(lr=self.lr)
            intercept_lr = INTERCEPT_LR
        else:  # the intercept moves as fast as the weights
            optimizer, intercept_lr = optim.SGD(lr=self.lr), self.lr
        return linear_model.LogisticRegression(
            optimizer=optimizer, intercept_lr=intercept_lr, intercept_init=init
        )


INTERCEPT_LR = 0.02
CANDIDATES = (
    Candidate(0.02, blended=True),
    Candidate(0.02, crosses=True, blended=True),
    Candidate(0.1),
    Candidate(0.3),
    Candidate(0.1, adagrad=True, blended=True),
    Candidate(0.2, adagrad=True, blended=True),
    Candidate(0.0, batch=True),
    Candidate(0.0, batch=True, crosses=True),
)
"""On the simulator the blend of the slow and per-feature setups served most actions (it
ranked 0.001-0.007 above its best member); the faster SGD rates are there for rare
actions and traffic that shifts, as on a real click log where 0.1 beat 0.02 by 0.3 AUC.
The batch refits serve small streams: on a world of 30,000 events they ranked 0.02-0.06
above the best SGD or AdaGrad setup for lead, purchase and signup."""
BLEND = "blend"
BASELINE = Candidate(0.1)
"""The plain online regression evaluations compare with: one-hot and counts, SGD at 0.1,
intercept from 0."""


def _logreg(lr: float = 0.02, prior: float | None = None) -> Any:
    return Candidate(lr).build(prior)


def _logreg_adagrad(prior: float | None = None) -> Any:
    init = 0.0 if prior is None else logit(prior)
    return linear_model.LogisticRegression(
        optimizer=optim.AdaGrad(lr=0.05), intercept_lr=0.02, intercept_init=init
    )


def _logreg_ftrl(prior: float | None = None) -> Any:
    optimizer = optim.FTRLProximal(alpha=0.05, beta=1, l1=0, l2=1)
    init = 0.0 if prior is None else logit(prior)
    return linear_model.LogisticRegression(
        optimizer=optimizer, intercept_lr=0.01, intercept_init=init
    )


def _hashed_logreg(prior: float | None = None) -> Any:
    from river import preprocessing  # the default model needs neither: keep start-up quick

    return preprocessing.FeatureHasher(n_features=1 << 12, seed=7) | _logreg(prior=prior)


def _bagged_logreg(prior: float | None = None) -> Any:
    from river import ensemble

    return ensemble.BaggingClassifier(model=_logreg(prior=prior), n_models=5, seed=7)


def _baseline(prior: float | None = None) -> Any:
    return BASELINE.build(None)


SINGLE: Mapping[str, Callable[..., Any]] = {
    "baseline": _baseline,
    "logreg-adagrad": _logreg_adagrad,
    "logreg-ftrl": _logreg_ftrl,
    "hashed-logreg": _hashed_logreg,
    "bagged-logreg": _bagged_logreg,
}
MODELS = (DEFAULT_MODEL, *SINGLE)


def build_model(
    kind: str = DEFAULT_MODEL, prior: float | None = None
) -> list[tuple[Candidate, Any]]:
    """Fresh candidates (setup, River classifier); unknown names fail here, not at the first
    click."""
    if kind == DEFAULT_MODEL:
        return [(c, c.build(prior)) for c in CANDIDATES]
    if kind == "baseline":
        return [(BASELINE, _baseline())]
    try:
        return [(Candidate(0.0, crosses=True), SINGLE[kind](prior))]
    except KeyError:
        raise ValueError(f"unknown model {kind!r}; choose one of {sorted(MODELS)}") from None


def _proba(estimator: Any, x: Features) -> float:
    return float(estimator.predict_proba_one(x).get(True, 0.0))


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


class ActionModel:
    """P(action | click) for one action: River's ``predict_proba_one`` / ``learn_one``,
    served by the candidate with the lowest recent progressive log loss. The blend is one
    more option: the mean logit of its members, i.e. a logistic regression with their
    mean weights."""

    def __init__(self, action: str, kind: str = DEFAULT_MODEL, prior: float | None = None) -> None:
        self.action = action
        self.kind = kind
        self.prior = prior
        self.candidates = build_model(kind, prior)
        self.members = [i for i, (c, _) in enumerate(self.candidates) if c.blended]
        options = len(self.candidates) + (1 if self.members else 0)
        self.loss = [0.0] * (options if options > 1 else 0)
        self.serving = 0

    @property
    def blending(self) -> bool:
        return self.serving == len(self.candidates)

    @property
    def estimator(self) -> Any:
        """The River classifier serving scores now (the blend's first member when the
        blend serves)."""
        index = self.members[0] if self.blending else self.serving
        return self.candidates[index][1]

    @property
    def setup(self) -> str:
        """What serves: a candidate's name, or ``blend``."""
        return BLEND if self.blending else self.candidates[self.serving][0].name

    def _scores(self, x: Features, which: Iterable[int]) -> dict[int, float]:
        plain: Features | None = None
        scores = {}
        for i in which:
            candidate, estimator = self.candidates[i]
            if candidate.crosses:
                xi = x
            else:
                xi = plain = without_crosses(x) if plain is None else plain
            scores[i] = _proba(estimator, xi)
        return scores

    def _blend(self, scores: Mapping[int, float]) -> float:
        return _sigmoid(sum(logit(scores[i]) for i in self.members) / len(self.members))

    def predict_proba_one(self, x: Features) -> dict[bool, float]:
        if self.blending:
            p = self._blend(self._scores(x, self.members))
        else:
            p = self._scores(x, [self.serving])[self.serving]
        return {False: 1.0 - p, True: p}

    def learn_one(self, x: Features, y: bool) -> None:
        """Every option is judged on ``x`` before it is learned, then every candidate learns
        it (progressive validation)."""
        if self.loss:
            scores = self._scores(x, range(len(self.candidates)))
            judged = [scores[i] for i in range(len(self.candidates))]
            if self.members:
                judged.append(self._blend(scores))
            for i, score in enumerate(judged):
                p = min(max(score, _EPS), 1 - _EPS)
                self.loss[i] += DECAY * (-math.log(p if y else 1 - p) - self.loss[i])
            self.serving = min(range(len(self.loss)), key=self.loss.__getitem__)
        plain = without_crosses(x)
        for candidate, estimator in self.candidates:
            # its return value differs between River versions
            estimator.learn_one(x if candidate.crosses else plain, y)

    def weights(self) -> dict[str, float]:
        """The serving weights (the members' mean for the blend); empty for models without
        readable weights (hashed features, ensembles)."""
        if not self.blending:
            return dict(getattr(self.estimator, "weights", None) or {})
        total: dict[str, float] = {}
        for i in self.members:
            for name, weight in self.candidates[i][1].weights.items():
                total[name] = total.get(name, 0.0) + weight
        return {name: weight / len(self.members) for name, weight in total.items()}

    def top_features(self, n: int = 5) -> list[str]:
        """The serving weights largest by magnitude, as ``feature:+0.123``."""
        strongest = sorted(self.weights().items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:n]
        return [f"{name}:{weight:+.3f}" for name, weight in strongest]


class ActionModels:
    """The per-action models and their quality: all the learned state a checkpoint holds."""

    def __init__(
        self,
        actions: Iterable[str],
        kind: str = DEFAULT_MODEL,
        priors: Mapping[str, float] | None = None,
    ) -> None:
        """``priors``: each action's expected base rate, where its intercept starts."""
        build_model(kind)  # validate now
        self.kind = kind
        self.priors = dict(priors or {})
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
            prior = self.priors.get(action, DEFAULT_PRIOR)
            model = self.models[action] = ActionModel(action, self.kind, prior)
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
            self.quality[action].record(
                ts, self.models[action].top_features(), model=self.serving(action)
            )
            for action in sorted(self.quality)
        ]

    def serving(self, action: str) -> str:
        """The model kind, and the candidate serving ``action`` when there are several."""
        model = self[action]
        if len(model.candidates) == 1:
            return self.kind
        return f"{self.kind}:{model.setup}"

    def score(self, x: Features, actions: Iterable[str]) -> dict[str, float]:
        """P(action) for each action; what the click stage stores and what /v1/score serves."""
        return {action: self[action].predict_proba_one(x)[True] for action in actions}
