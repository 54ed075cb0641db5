"""When things happen: the daily cycle of people, the flat rate of machines, and CTIT.

People follow a day/night cycle and shop more at weekends; bots and click
farms run flat around the clock, which is itself a signal. Click-to-conversion
times are log-normal per action, from seconds (add to cart) to days (purchase).
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

DIURNAL = (
    0.35, 0.25, 0.2, 0.18, 0.2, 0.3, 0.5, 0.7, 0.85, 0.95, 1.0, 1.05,
    1.1, 1.05, 1.0, 1.0, 1.05, 1.15, 1.3, 1.45, 1.5, 1.35, 1.0, 0.6,
)  # fmt: skip
"""Relative human activity per UTC hour (mean 0.83)."""
WEEKEND = 1.15
_DIURNAL_MEAN = sum(DIURNAL) / 24

# median seconds, sigma of log, floor, ceiling: installs never land under 15 s
# (download + first open), so a sub-10 s install is always planted injection.
CTIT: dict[str, tuple[float, float, float, float]] = {
    "lead": (480, 1.2, 5, 10 * 86_400),
    "signup": (900, 1.3, 5, 10 * 86_400),
    "add_to_cart": (240, 1.0, 3, 5 * 86_400),
    "purchase": (10_800, 1.6, 60, 10 * 86_400),
    "install": (300, 1.3, 15, 5 * 86_400),
}


def human_rate(ts_ms: int) -> float:
    """Activity of people at this time, relative to the daily mean."""
    hour = (ts_ms // HOUR_MS) % 24
    weekday = (ts_ms // DAY_MS + 3) % 7  # 0 = Monday
    return DIURNAL[hour] / _DIURNAL_MEAN * (WEEKEND if weekday >= 5 else 1.0)


def ctit_ms(rng: random.Random, action: str) -> int:
    median, sigma, floor, ceiling = CTIT[action]
    seconds = rng.lognormvariate(math.log(median), sigma)
    return int(min(max(seconds, floor), ceiling) * 1000)


def iso(ts_ms: int) -> str:
    """RFC 3339 with milliseconds, as postbacks usually carry it."""
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"
