"""Models that adapt: the candidate a model serves, intercepts from priors, crosses and counts,
exact windowed AUC, and all of it surviving a checkpoint."""

from __future__ import annotations

import itertools
import math
import pickle
import random
from collections import deque
from datetime import UTC, datetime, timedelta

import pytest

from clicktrail.config import Registry, parse_registry
from clicktrail.config.registry import FraudSettings
from clicktrail.contracts import Click
from clicktrail.metrics import auc
from clicktrail.processors.fraud.flooding import ClickFloodRule
from clicktrail.processors.models import ActionModels, click_features, dumps, loads, quality
from clicktrail.processors.models.estimators import ActionModel
from clicktrail.processors.models.features import without_crosses
from clicktrail.processors.models.online import OnlineModels
from clicktrail.processors.models.quality import Quality

T0 = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)  # a Monday afternoon: day part 2


def click(i: int, partner: str = "aff-1", ip: str = "203.0.113.0", user: str = "u1") -> Click:
    return Click.model_validate(
        {
            "event_id": f"e{i}",
            "ts": T0 + timedelta(seconds=i),
            "click_id": f"k{i}",
            "campaign_id": "shop",
            "partner_id": partner,
            "user": {"user_id": user, "ip": ip, "country": "DE"},
        }
    )


def rare_stream(n: int, seed: int = 5) -> list[tuple[dict[str, float], bool]]:
    """A rare action (about 3 %) driven by which of 40 partners sent the click."""
    rng = random.Random(seed)
    effect = {f"p{i}": rng.uniform(-2.5, 2.5) for i in range(40)}
    rows = []
    for _ in range(n):
        partner = rng.choice(list(effect))
        p = 1 / (1 + math.exp(-(-4.0 + effect[partner])))
        rows.append(({f"partner={partner}": 1.0}, rng.random() < p))
    return rows


class TestSelection:
    def test_a_rare_stream_is_served_by_a_faster_rate(self) -> None:
        """Every candidate learns every example; the slow rate lags on a rare action, so a
        faster one serves, and it is the one with the lowest recent loss."""
        model = ActionModel("purchase", prior=0.03)
        for x, y in rare_stream(20_000):
            model.learn_one(x, y)
        slow = [i for i, (c, _) in enumerate(model.candidates) if c.lr == 0.02 and not c.adagrad]
        assert model.serving not in slow
        assert model.loss[model.serving] == min(model.loss)
        assert all(model.loss[model.serving] < model.loss[i] for i in slow)

    def test_serving_candidate_scores_and_reports_its_weights(self) -> None:
        model = ActionModel("purchase", prior=0.03)
        for x, y in rare_stream(3_000):
            model.learn_one(x, y)
        x = rare_stream(1, seed=9)[0][0]
        model.serving = 2  # one candidate serves: its score, its weights
        estimator = model.estimator
        assert estimator is model.candidates[2][1]
        assert model.predict_proba_one(x)[True] == estimator.predict_proba_one(x)[True]
        strongest = max(estimator.weights.items(), key=lambda kv: abs(kv[1]))
        assert model.top_features(3)[0] == f"{strongest[0]}:{strongest[1]:+.3f}"

    def test_the_blend_is_a_regression_with_the_members_mean_weights(self) -> None:
        model = ActionModel("purchase", prior=0.03)
        for x, y in rare_stream(3_000):
            model.learn_one(x, y)
        model.serving = len(model.candidates)
        assert model.setup == "blend"
        x = rare_stream(1, seed=9)[0][0]
        members = [model.candidates[i][1] for i in model.members]
        z = sum(
            m.intercept + sum(m.weights.get(k, 0.0) * v for k, v in x.items()) for m in members
        ) / len(members)
        assert model.predict_proba_one(x)[True] == pytest.approx(1 / (1 + math.exp(-z)))
        mean = model.weights()
        assert mean == pytest.approx(
            {k: sum(m.weights.get(k, 0.0) for m in members) / len(members) for k in mean}
        )

    def test_a_candidate_without_crosses_never_sees_them(self) -> None:
        model = ActionModel("lead", prior=0.05)
        x = click_features(click(1))
        for n in range(250):  # enough for the batch refits' first fit
            model.learn_one(x, n % 2 == 0)
        for candidate, estimator in model.candidates:
            crossed = {k for k in estimator.weights if "+" in k.partition("=")[0]}
            assert bool(crossed) == candidate.crosses

    def test_quality_rows_name_the_serving_candidate(self) -> None:
        models = ActionModels(["purchase"], priors={"purchase": 0.03})
        for x, y in rare_stream(2_000):
            models.learn("purchase", x, y, models.score(x, ["purchase"])["purchase"])
        [row] = models.records(T0)
        assert row.model == f"logreg:{models['purchase'].setup}"
        assert row.top_features == models["purchase"].top_features()


class TestPriors:
    def test_the_first_score_is_the_prior(self) -> None:
        models = ActionModels(["purchase"], priors={"purchase": 0.03})
        score = models.score(click_features(click(1)), ["purchase"])["purchase"]
        assert score == pytest.approx(0.03)

    @staticmethod
    def registry() -> Registry:
        return parse_registry(
            {
                "advertisers": {"shop": {"postback_secret": "s" * 16}},
                "campaigns": {"shop": {"advertiser": "shop", "landing_url": "https://s.example/"}},
                "partners": {"aff-1": {}},
                "actions": {"purchase": {}, "deposit": {}, "lead": {"prior_rate": 0.2}},
            }
        )

    def test_registry_prior_or_the_default_for_the_name(self) -> None:
        online = OnlineModels(self.registry(), {})
        scores = online.on_click(click(1), rejected=False).scores
        assert scores == pytest.approx({"purchase": 0.02, "deposit": 0.02, "lead": 0.2})

    def test_a_rejected_click_and_its_counts_teach_nothing(self) -> None:
        """A flooded click's own counts are features of a click that is never learned."""
        online = OnlineModels(self.registry(), {})
        row = online.on_click(click(1), rejected=True, counts={"ip_clicks": 90})
        assert row.learned is False
        assert online.labels.drain() == []
        assert online.models.quality["purchase"].examples == 0

    def test_the_baseline_starts_at_one_half(self) -> None:
        models = ActionModels(["lead"], "baseline", priors={"lead": 0.03})
        assert models.score({}, ["lead"])["lead"] == pytest.approx(0.5)
        assert len(models["lead"].candidates) == 1


class TestFeatures:
    def test_crosses_and_log_counts(self) -> None:
        x = click_features(click(1), {"ip_clicks": 3, "user_clicks": 1})
        assert x["campaign+partner=shop|aff-1"] == x["partner+daypart=aff-1|2"] == 1.0
        assert x["log_ip_clicks"] == pytest.approx(math.log(4))
        assert x["log_user_clicks"] == pytest.approx(math.log(2))
        assert set(x) - set(without_crosses(x)) == {
            "campaign+partner=shop|aff-1",
            "partner+daypart=aff-1|2",
        }

    def test_flood_windows_give_the_counts(self) -> None:
        """Counts per network and per user within the partner, this click included."""
        flood = ClickFloodRule({}, {}, {}, FraudSettings())
        counts = [flood.count(click(i, user=f"u{i % 2}"))[1] for i in range(4)]
        assert [c["ip_clicks"] for c in counts] == [1, 2, 3, 4]
        assert [c["user_clicks"] for c in counts] == [1, 1, 2, 2]
        other = flood.count(click(9, partner="aff-2"))[1]
        assert other == {"ip_clicks": 1, "user_clicks": 1}
        bare = Click.model_validate({**click(10).model_dump(), "user": {}})
        assert flood.count(bare)[1] == {}


class TestExactAuc:
    def test_equals_the_pairwise_count_with_ties(self) -> None:
        rng = random.Random(11)
        pairs = [
            (rng.choice([0.1, 0.2, 0.3, 0.5, 0.9]), int(rng.random() < 0.3)) for _ in range(300)
        ]
        positives = [s for s, y in pairs if y]
        negatives = [s for s, y in pairs if not y]
        wins = sum(
            1.0 if p > n else 0.5 if p == n else 0.0
            for p, n in itertools.product(positives, negatives)
        )
        assert auc(pairs) == pytest.approx(wins / (len(positives) * len(negatives)))

    def test_quality_ranks_only_the_recent_window(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(quality, "AUC_WINDOW", 4)
        q = Quality("lead", "logreg")
        for p, y in [(0.9, 0), (0.1, 1), (0.2, 0), (0.8, 1), (0.3, 0), (0.7, 1)]:
            q.update(p, bool(y))
        assert q.auc_value() == 1.0  # the first two, ranked wrongly, left the window
        assert q.examples == 6
        assert Quality("lead", "logreg").auc_value() is None


class TestCheckpoint:
    def test_round_trip_keeps_every_candidate_and_the_choice(self) -> None:
        models = ActionModels(["purchase"], priors={"purchase": 0.03})
        for x, y in rare_stream(3_000):
            models.learn("purchase", x, y, models.score(x, ["purchase"])["purchase"])
        restored = loads(dumps(models), ["purchase"]).models
        before, after = models["purchase"], restored["purchase"]
        assert (after.serving, after.loss) == (before.serving, before.loss)
        x = rare_stream(1, seed=9)[0][0]
        for (_, old), (_, new) in zip(before.candidates, after.candidates, strict=True):
            assert new.predict_proba_one(x) == old.predict_proba_one(x)
        assert restored.quality["purchase"].record(T0) == models.quality["purchase"].record(T0)
        assert pickle.loads(pickle.dumps(restored)).priors == {"purchase": 0.03}

    def test_fresh_models_of_a_restored_checkpoint_start_at_their_prior(self) -> None:
        data = dumps(ActionModels(["lead"]))
        restored = loads(data, ["lead", "purchase"], priors={"purchase": 0.04}).models
        assert restored.score({}, ["purchase"])["purchase"] == pytest.approx(0.04)


def test_a_checkpoint_from_before_the_rolling_auc_is_ranked_on_load() -> None:
    """Older checkpoints kept the AUC window as a deque of (score, label) pairs."""
    quality = Quality("purchase", "adaptive")
    for n in range(200):
        quality.update((n % 17) / 17, n % 5 == 0)
    old = pickle.loads(pickle.dumps(quality))
    state = dict(old.__dict__)
    state["recent"] = deque(state.pop("ranked").recent, maxlen=50_000)
    legacy = Quality.__new__(Quality)
    legacy.__dict__.update(state)
    restored = pickle.loads(pickle.dumps(legacy))
    assert restored.auc_value() == quality.auc_value() == pytest.approx(auc(list(quality.recent)))
    restored.update(0.99, True)
    quality.update(0.99, True)
    assert restored.auc_value() == quality.auc_value()
