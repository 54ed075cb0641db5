"""Attribution models: how much credit each touch of a path gets.

Pure functions of the touch times (oldest first) and the conversion time; the
weights of a path always sum to 1.

>>> from datetime import datetime, timedelta
>>> t = datetime(2026, 3, 1)
>>> path = [t, t + timedelta(days=1), t + timedelta(days=2)]
>>> [round(w, 3) for w in credit("position_based", path, t + timedelta(days=3))]
[0.4, 0.2, 0.4]
>>> [round(w, 3) for w in credit("linear", path, t + timedelta(days=3))]
[0.333, 0.333, 0.333]
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

TIME_DECAY_HALF_LIFE = timedelta(days=7)
POSITION_ENDS = 0.4  # first and last touch each get 40 %, the middle shares 20 %


def credit(model: str, touch_times: Sequence[datetime], conversion_ts: datetime) -> list[float]:
    n = len(touch_times)
    if n == 0:
        return []
    if model == "last_click":
        return [0.0] * (n - 1) + [1.0]
    if model == "first_click":
        return [1.0] + [0.0] * (n - 1)
    if model == "linear":
        return [1.0 / n] * n
    if model == "time_decay":
        half_life = TIME_DECAY_HALF_LIFE.total_seconds()
        raw = [
            0.5 ** (max((conversion_ts - ts).total_seconds(), 0.0) / half_life)
            for ts in touch_times
        ]
        total = sum(raw)
        return [w / total for w in raw]
    if model == "position_based":
        if n == 1:
            return [1.0]
        if n == 2:
            return [0.5, 0.5]
        middle = (1.0 - 2 * POSITION_ENDS) / (n - 2)
        return [POSITION_ENDS] + [middle] * (n - 2) + [POSITION_ENDS]
    raise ValueError(f"unknown attribution model {model!r}")
