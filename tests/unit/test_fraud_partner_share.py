"""A partner's fraud share is judged beyond chance, not on a noisy point estimate."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from clicktrail.config.registry import FraudSettings
from clicktrail.processors.fraud.anomaly import PartnerAnomaly
from clicktrail.processors.fraud.partners import PartnerMonitor

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def verdict_reasons(share: float, clicks_per_hour: int, hours: int = 72, seed: int = 1) -> set[str]:
    """Every reason a partner's windows got, its clicks flagged at ``share`` at random."""
    rng = random.Random(seed)
    monitor = PartnerMonitor({}, FraudSettings(), PartnerAnomaly(threshold=1.0))
    for hour in range(hours):
        for i in range(clicks_per_hour):
            ts = T0 + timedelta(hours=hour, minutes=i * 60 / clicks_per_hour)
            bad = rng.random() < share
            monitor.record(
                "p", ts, flagged=int(bad), mechanisms=["bot_user_agent"] * bad, is_click=True
            )
    windows = monitor.close_until(T0 + timedelta(hours=hours + 1))
    return {r for w in windows for r in w.reasons}


def test_an_honest_publisher_with_some_bots_is_not_a_cheat() -> None:
    """18 % of its clicks from bots (flagged one by one), a dozen clicks an hour: its
    running share crosses 0.2 on some days by chance, never beyond doubt."""
    for seed in range(5):
        assert "partner_fraud_share" not in verdict_reasons(0.18, 12, seed=seed), seed


def test_a_partner_mostly_sending_bots_is_judged_and_named_by_them() -> None:
    reasons = verdict_reasons(0.7, 12)
    assert {"partner_fraud_share", "bot_user_agent"} <= reasons


def test_a_small_partner_whose_every_event_is_flagged_is_judged() -> None:
    """One forged postback an hour: never twenty events within a day's half-life, but no
    chance explains them."""
    reasons = verdict_reasons(1.0, 1, hours=24 * 5)
    assert "partner_fraud_share" in reasons
    assert "partner_fraud_share" not in verdict_reasons(0.2, 1, hours=24 * 5)
