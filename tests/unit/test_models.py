"""Per-action models: features, ranking on a known propensity, quality, checkpoints, lift."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from clicktrail.contracts import Click
from clicktrail.processors.models import (
    FEATURE_VERSION,
    ActionModels,
    CheckpointError,
    build_model,
    checkpoint,
    click_features,
    dumps,
    lift,
    loads,
)
from clicktrail.simulate import auc

T0 = datetime(2026, 3, 7, 20, 30, tzinfo=UTC)  # a Saturday evening
PARTNERS = {"aff-good": 1.5, "aff-mid": 0.0, "aff-bad": -1.5}
COUNTRIES = {"DE": 0.8, "FR": 0.0, "US": -0.8}


def synthetic(n: int, seed: int = 3) -> list[tuple[dict[str, float], bool, float]]:
    """Clicks whose true propensity depends on partner and country only: (x, y, p)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        partner, country = rng.choice(list(PARTNERS)), rng.choice(list(COUNTRIES))
        p = 1 / (1 + math.exp(-(-2.0 + PARTNERS[partner] + COUNTRIES[country])))
        click = Click.model_validate(
            {
                "event_id": f"e{i}",
                "ts": T0 + timedelta(minutes=i),
                "click_id": f"k{i}",
                "campaign_id": "shop",
                "partner_id": partner,
                "user": {"country": country},
            }
        )
        rows.append((click_features(click), rng.random() < p, p))
    return rows


def trained(n: int = 3000) -> tuple[ActionModels, list[tuple[float, int]]]:
    models = ActionModels(["signup"])
    pairs = []
    for x, y, _ in synthetic(n):
        p = models.score(x, ["signup"])["signup"]
        pairs.append((p, int(y)))
        models.learn("signup", x, y, p)
    return models, pairs


class TestFeatures:
    def test_one_hot_keys_and_daily_cycle(self) -> None:
        """Readable string keys; the hour as sin/cos plus a weekend flag."""
        click = Click.model_validate(
            {
                "event_id": "e1",
                "ts": T0,
                "click_id": "k1",
                "campaign_id": "shop",
                "partner_id": "aff-1",
                "channel": "search",
                "keyword": "Shoes",
                "user": {"country": "de", "device_type": "mobile", "segments": ["a", "b"]},
            }
        )
        x = click_features(click)
        assert x["partner=aff-1"] == x["keyword=shoes"] == x["country=DE"] == 1.0
        assert x["segment=a"] == x["segment=b"] == x["weekend"] == 1.0
        assert x["hour_sin"] ** 2 + x["hour_cos"] ** 2 == pytest.approx(1.0)
        assert not any(key.startswith(("os=", "placement=")) for key in x)


class TestModels:
    def test_ranks_clearly_better_than_chance(self) -> None:
        """On a known propensity the progressive AUC comes close to the true one."""
        _, pairs = trained()
        truth = [(p, int(y)) for _, y, p in synthetic(3000)]
        assert auc(pairs[1000:]) > 0.68
        assert auc(pairs[1000:]) > auc(truth[1000:]) - 0.04

    def test_quality_record(self) -> None:
        models, pairs = trained(500)
        record = models.quality["signup"].record(T0)
        assert record.examples == 500
        assert record.positives == sum(y for _, y in pairs)
        assert record.auc is not None and record.auc > 0.6
        assert record.calibration_error is not None and 0 <= record.calibration_error < 0.2
        assert record.base_rate == pytest.approx(record.positives / 500)

    def test_empty_quality_has_no_numbers(self) -> None:
        [record] = ActionModels(["lead"]).records(T0)
        assert (record.examples, record.auc, record.log_loss, record.base_rate) == (
            0,
            None,
            None,
            None,
        )

    def test_unknown_model_fails_at_construction(self) -> None:
        with pytest.raises(ValueError, match="unknown model"):
            ActionModels(["lead"], "deep-magic")
        assert build_model("hashed-logreg") is not None


class TestCheckpoint:
    def test_round_trip_restores_predictions_and_counters(self) -> None:
        models, _ = trained(300)
        restored = loads(dumps(models), ["signup", "custom"])
        assert restored.fresh is False
        x = synthetic(5, seed=9)[0][0]
        assert restored.models.score(x, ["signup"]) == models.score(x, ["signup"])
        before, after = models.quality["signup"], restored.models.quality["signup"]
        assert after.record(T0) == before.record(T0)
        assert "custom" in restored.models.models  # an action configured since starts fresh

    def test_feature_version_change_starts_fresh(self, monkeypatch: pytest.MonkeyPatch) -> None:
        data = dumps(trained(50)[0])
        monkeypatch.setattr(checkpoint, "FEATURE_VERSION", FEATURE_VERSION + "-next")
        restored = loads(data, ["signup"])
        assert (restored.fresh, restored.reason) == (True, "feature_version")
        assert restored.models.quality["signup"].examples == 0

    @pytest.mark.parametrize("cut", [0, 10, -5])
    def test_corrupt_bytes_start_fresh(self, cut: int) -> None:
        data = dumps(trained(50)[0])
        broken = data[:cut] if cut else b"\x00garbage"
        restored = loads(broken, ["signup"])
        assert restored.fresh and restored.reason == "corrupt"
        with pytest.raises(CheckpointError):
            checkpoint.read(broken)

    def test_flipped_payload_byte_and_other_model_start_fresh(self) -> None:
        data = bytearray(dumps(trained(50)[0]))
        data[-3] ^= 0xFF
        assert loads(bytes(data), ["signup"]).reason == "corrupt"
        assert loads(dumps(ActionModels(["signup"])), ["signup"], kind="bagged-logreg").fresh
        assert loads(None, ["signup"]).reason == "empty"


class TestLift:
    def test_top_decile_and_spend(self) -> None:
        """Scores that put every conversion in the top decile: lift 10, 90 % spend saved."""
        triples = [(i / 100, i >= 90, 2.0) for i in range(100)]
        result = lift(triples)
        assert result is not None
        assert result.lift == pytest.approx(10.0)
        assert result.capture[0] == pytest.approx(1.0)
        assert result.spend_saved[0] == pytest.approx(0.9)
        assert result.spend_saved[-1] == pytest.approx(0.0)

    def test_cost_weights_spend_and_missing_cost_counts_one(self) -> None:
        triples = [(1.0, True, 9.0), *((0.1, False, None) for _ in range(9))]
        result = lift(triples)
        assert result is not None and result.spend_saved[0] == pytest.approx(0.5)

    def test_nothing_to_measure(self) -> None:
        assert lift([]) is None
        assert lift([(0.5, False, None)]) is None
