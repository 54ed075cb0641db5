"""Click flooding at partner level, as it shows once a flood is spread too thin for any
per-address counter: the partner's conversions come long after its clicks (a one-sided
KS test of its CTITs against the other partners', per action) and few of its clicks
convert. Honest partners, including one whose buyers take days, are never named."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from clicktrail.config.registry import FraudSettings
from clicktrail.processors.fraud.anomaly import PartnerAnomaly
from clicktrail.processors.fraud.partners import PartnerMonitor

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOURS = 48


def traffic(seed: int, flood_clicks: int = 400) -> list[tuple[str, datetime, dict[str, Any]]]:
    """Per hour: five honest install partners (CTIT log-normal around 5 minutes, a third
    of clicks convert), an honest purchase partner (CTIT around 3 hours, converting well)
    and a flooder whose few credited installs come hours to days after its clicks."""
    rng = random.Random(seed)
    events: list[tuple[str, datetime, dict[str, Any]]] = []
    for hour in range(HOURS):
        at = T0 + timedelta(hours=hour)
        for partner, clicks, cvr, action, median in (
            *((f"honest{i}", 60, 0.3, "install", 300.0) for i in range(5)),
            ("slow-buyers", 40, 0.2, "purchase", 10_800.0),
            ("flooder", flood_clicks, 8 / flood_clicks, "install", None),
        ):
            for _ in range(clicks):
                ts = at + timedelta(seconds=rng.uniform(0, 3599))
                events.append((partner, ts, {"is_click": True}))
                if rng.random() < cvr:
                    ctit = (
                        rng.uniform(3_600, 3 * 86_400)
                        if median is None
                        else rng.lognormvariate(math.log(median), 1.2)
                    )
                    events.append(
                        (partner, ts, {"conversion": True, "ctit": ctit, "action": action})
                    )
    return events


def named(events: list[tuple[str, datetime, dict[str, Any]]]) -> dict[str, int]:
    monitor = PartnerMonitor({}, FraudSettings(), PartnerAnomaly(threshold=0.99, warmup=10**6))
    for partner, ts, kw in events:
        monitor.record(partner, ts, **kw)
    windows = monitor.close_until(T0 + timedelta(hours=HOURS + 1))
    found: dict[str, int] = {}
    for window in windows:
        if "ctit_distribution" in window.reasons:
            found[window.partner_id] = found.get(window.partner_id, 0) + 1
    return found


def test_the_flooder_is_named_and_no_honest_partner_is() -> None:
    found = named(traffic(1))
    assert set(found) == {"flooder"}
    assert found["flooder"] >= HOURS // 2  # named in most hours once it has a sample


def test_the_verdicts_do_not_depend_on_the_order_events_arrive_in() -> None:
    events = traffic(2)
    shuffled = events[:]
    random.Random(3).shuffle(shuffled)
    assert named(shuffled) == named(events)


def test_long_ctits_with_an_ordinary_conversion_rate_are_not_named() -> None:
    """Both signals are needed: long CTITs from a partner whose clicks convert like
    everyone else's are buyers who take their time, not a flood."""
    assert "flooder" not in named(traffic(4, flood_clicks=30))
