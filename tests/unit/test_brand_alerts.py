"""Alert dedup and cool-down, decided from two records of one conflict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clicktrail.contracts import BrandConflict
from clicktrail.processors.brand import SeverityPolicy, should_alert

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def record(minutes: float, impressions: int, severity: str = "warning") -> BrandConflict:
    fields: dict[str, Any] = {
        "conflict_id": "bc-1",
        "brand_id": "northwind",
        "offender_kind": "partner",
        "offender_id": "aff-jack",
        "signal": "term",
        "first_seen": T0,
        "last_seen": T0 + timedelta(minutes=minutes),
        "impressions": impressions,
        "severity": severity,
    }
    return BrandConflict(**fields)


class TestShouldAlert:
    def test_new_conflict_alerts(self) -> None:
        """Nothing alerted before: alert."""
        assert should_alert(None, record(0, 1), HOUR)

    def test_growth_within_cooldown_is_suppressed(self) -> None:
        """More of the same inside the cool-down is not news."""
        assert not should_alert(record(0, 10), record(30, 40), HOUR)

    def test_growth_after_cooldown_alerts(self) -> None:
        """Still going after the cool-down: remind."""
        assert should_alert(record(0, 10), record(61, 40), HOUR)

    def test_quiet_conflict_never_realerts(self) -> None:
        """No new evidence, no new alert, however long ago."""
        assert not should_alert(record(0, 10), record(600, 10), HOUR)

    def test_higher_severity_alerts_at_once(self) -> None:
        """Escalation skips the cool-down."""
        assert should_alert(record(0, 10), record(1, 100, "critical"), HOUR)


class TestSeverityPolicy:
    def test_rises_with_volume_and_inflation(self) -> None:
        """info, then warning, then critical; a costly head-to-head is critical sooner."""
        policy = SeverityPolicy(warning_events=10, critical_events=100)
        assert [policy.severity(n, None) for n in (1, 10, 100)] == ["info", "warning", "critical"]
        assert policy.severity(10, 0.3) == "critical"

    def test_invalid_thresholds_fail_at_construction(self) -> None:
        """Thresholds out of order are refused when the policy is built."""
        with pytest.raises(ValueError, match="warning_events"):
            SeverityPolicy(warning_events=50, critical_events=10)
        with pytest.raises(ValueError, match="growth"):
            SeverityPolicy(growth=1.0)
