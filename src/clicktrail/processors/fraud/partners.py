"""Partner-level signals per event-time window: fraud share, late-CTIT tail, anomaly.

Each partner has one open window (``fraud.window_seconds``) of counts in a
``StateStore``: events judged and flagged, clicks, distinct networks (capped),
bot hits, conversions and recent CTITs. When an event of a later window arrives,
or ``close_until`` passes the window's end, the window closes into a
:class:`PartnerWindow`: its features, its fraud share (a running share decayed with a
one-day half-life, so small partners are judged too; alert above
``fraud.partner_share_alert``), the share of conversions with CTIT over
``fraud.late_ctit_seconds`` (a decayed running share, alert above
``fraud.late_ctit_share``: flooders' stolen conversions have a long flat tail) and
the River anomaly score. The fraud share is also judged on the window alone (above
``fraud.partner_window_share_alert``), so a partner that turns bad after a long clean
record is flagged within the hour instead of when its running share catches up. A late
event joins the open window.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clicktrail.config.registry import FraudSettings
from clicktrail.contracts import StateStore
from clicktrail.processors.fraud.anomaly import PartnerAnomaly

MAX_NETWORKS = 1000
MAX_CTITS = 200
LATE_SHARE_HALF_LIFE = 7 * 86_400  # a week of conversions decides the tail
SHARE_HALF_LIFE = 86_400  # a day of events decides the fraud share: a turncoat shows fast
RUNNING = ("late", "timed", "judged", "convicted")


@dataclass
class PartnerWindow:
    partner_id: str
    end: datetime
    events: int
    flagged: int
    fraud_share: float
    late_share: float | None
    anomaly: float | None
    features: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


def _empty(bucket: int) -> dict[str, Any]:
    counts = dict.fromkeys(("events", "flagged", "clicks", "bots", "conversions"), 0)
    return {"bucket": bucket, **counts, "ips": [], "ctits": [], **dict.fromkeys(RUNNING, 0.0)}


class PartnerMonitor:
    def __init__(self, store: StateStore, settings: FraudSettings, model: PartnerAnomaly) -> None:
        self.store = store
        self.settings = settings
        self.width = settings.window_seconds
        self.late_decay = 0.5 ** (self.width / LATE_SHARE_HALF_LIFE)
        self.share_decay = 0.5 ** (self.width / SHARE_HALF_LIFE)
        self.model = model

    def record(
        self,
        partner: str,
        ts: datetime,
        *,
        flagged: int = 0,
        click_ip: str | None = None,
        is_click: bool = False,
        bot: bool = False,
        ctit: float | None = None,
        conversion: bool = False,
    ) -> list[PartnerWindow]:
        """Count one judged event (or only extra ``flagged`` convictions) for a partner."""
        bucket = int(ts.timestamp() // self.width)
        state = self.store.get(partner) or _empty(bucket)
        closed: list[PartnerWindow] = []
        if bucket > state["bucket"]:
            closed.append(self._close(partner, state))
            state = self._carry(state, bucket)
        state["flagged"] += flagged
        if is_click or conversion:
            state["events"] += 1
        if is_click:
            state["clicks"] += 1
            state["bots"] += int(bot)
            if click_ip and click_ip not in state["ips"] and len(state["ips"]) < MAX_NETWORKS:
                state["ips"] = [*state["ips"], click_ip]
        if conversion:
            state["conversions"] += 1
        if ctit is not None and ctit >= 0:
            state["ctits"] = [*state["ctits"], ctit][-MAX_CTITS:]
            state["timed"] += 1.0
            state["late"] += float(ctit > self.settings.late_ctit_seconds)
        self.store[partner] = state
        return closed

    def close_until(self, watermark: datetime) -> list[PartnerWindow]:
        """Close every window that ended before ``watermark`` (idle partners too)."""
        bucket = int(watermark.timestamp() // self.width)
        closed = []
        for partner in sorted(self.store):
            state = self.store[partner]
            if state["bucket"] < bucket:
                closed.append(self._close(partner, state))
                self.store[partner] = self._carry(state, bucket)
        return closed

    def _carry(self, state: dict[str, Any], bucket: int) -> dict[str, Any]:
        """A fresh window; the running shares decay once per window that passed."""
        gap = bucket - state["bucket"]
        late, share = self.late_decay**gap, self.share_decay**gap
        return {
            **_empty(bucket),
            "late": state["late"] * late,
            "timed": state["timed"] * late,
            "judged": state["judged"] * share,
            "convicted": state["convicted"] * share,
        }

    def _close(self, partner: str, state: dict[str, Any]) -> PartnerWindow:
        clicks, events = state["clicks"], state["events"]
        features = {
            "click_rate": clicks * 3600.0 / self.width,
            "unique_ip_ratio": len(state["ips"]) / clicks if clicks else 1.0,
            "ctit_median": statistics.median(state["ctits"]) if state["ctits"] else 0.0,
            "conversion_rate": state["conversions"] / clicks if clicks else 0.0,
            "bot_share": state["bots"] / clicks if clicks else 0.0,
        }
        state["judged"] += events
        state["convicted"] += state["flagged"]
        enough = self.settings.min_partner_conversions
        judged = state["judged"]
        share = min(1.0, state["convicted"] / judged) if judged else 0.0
        late = state["late"] / state["timed"] if state["timed"] >= enough else None
        score = self.model.score(features) if events else None
        reasons = []
        window_share = state["flagged"] / events if events else 0.0
        running = judged >= enough and share > self.settings.partner_share_alert
        sudden = events >= enough and window_share > self.settings.partner_window_share_alert
        if running or sudden:
            reasons.append("partner_fraud_share")
        if late is not None and late > self.settings.late_ctit_share:
            reasons.append("late_ctit_tail")
        if self.model.is_anomalous(score):
            reasons.append("partner_anomaly")
        end = datetime.fromtimestamp((state["bucket"] + 1) * self.width, tz=UTC)
        return PartnerWindow(
            partner, end, events, state["flagged"], share, late, score, features, reasons
        )
