"""Partner-level signals per event-time window: fraud share, late-CTIT tail, anomaly.

Each partner's events are counted in the window (``fraud.window_seconds``) their event
time falls in: events judged and flagged, clicks, distinct networks (capped), bot
hits, conversions and recent CTITs, in a ``StateStore``. Windows close only when the
watermark passes their end (``close_until``), all partners' together in (window,
partner) order, so the counts, the running shares and what the shared anomaly model
learns do not depend on the order events were delivered in, nor on when the ticks
came. A closed window becomes a :class:`PartnerWindow`: its features, its fraud share
(a running share decayed with a one-day half-life, so small partners are judged too;
alert above ``fraud.partner_share_alert``), the share of conversions with CTIT over
``fraud.late_ctit_seconds`` (a decayed running share, alert above
``fraud.late_ctit_share``: flooders' stolen conversions have a long flat tail) and the
River anomaly score. The fraud share is also judged on the window alone (above
``fraud.partner_window_share_alert``), so a partner that turns bad after a long clean
record is flagged within the hour instead of when its running share catches up. An
event later than the watermark (its window already closed) joins the partner's first
open window; a partner with no events in a window has nothing to close (its running
shares decay over the gap). A window that closes clean right after one with reasons is
marked ``cleared``: the verdict it ends is resolved (the alerting says so once).
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scipy.stats import binomtest, kstest

from clicktrail.config.registry import FraudSettings
from clicktrail.contracts import StateStore
from clicktrail.processors.fraud.anomaly import PartnerAnomaly
from clicktrail.processors.fraud.hits import REASONS

MAX_NETWORKS = 1000
MAX_CTITS = 200
SAMPLE = 300
"""CTITs kept per partner and action across windows, for the distribution test."""
REFERENCE = "/reference"
"""Key of the cross-partner state (CTIT samples and conversion rates of every partner):
no partner id contains '/' (identifiers are validated), and it has no 'open' windows."""
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
    cleared: bool = False  # no reasons, and the partner's previous window had some


def _surely_above(convicted: float, judged: float, settings: FraudSettings) -> bool:
    """Is the running share above ``partner_share_alert`` beyond chance? The lower end of
    its Wilson interval (scipy's ``binomtest``) at ``partner_share_confidence`` must be: a
    small honest publisher with some bots in its audience reaches a point share over the
    alert in a noisy day, a partner most of whose traffic is flagged stays far above it."""
    n = max(1, round(judged))
    k = min(n, round(convicted))
    interval = binomtest(k, n).proportion_ci(settings.partner_share_confidence, method="wilson")
    return bool(interval.low > settings.partner_share_alert)


def _decayed(why: dict[str, float], decay: float, counts: dict[str, Any]) -> dict[str, float]:
    """The running convictions per mechanism, decayed, plus this window's."""
    out = {reason: n * decay for reason, n in why.items()}
    for reason, n in (counts.get("why") or {}).items():
        out[reason] = out.get(reason, 0.0) + n
    return out


def _dominant(why: dict[str, float], convicted: float) -> list[str]:
    """The mechanism behind most of a partner's convictions (at least half of them), so its
    verdict says what the partner does (``click_flood_network``), not only how much."""
    if not why or convicted <= 0:
        return []
    reason = max(sorted(why), key=lambda r: why[r])
    return [reason] if reason in REASONS and why[reason] >= 0.5 * convicted else []


def _counts() -> dict[str, Any]:
    counts = dict.fromkeys(("events", "flagged", "clicks", "bots", "conversions"), 0)
    return {**counts, "ips": [], "ctits": [], "actions": [], "late": 0.0, "timed": 0.0}


def _partner() -> dict[str, Any]:
    """A partner's state: its open windows by bucket (JSON keys: strings), the last
    bucket closed, and the running shares as of that bucket."""
    return {"open": {}, "closed": None, "at": None, **dict.fromkeys(RUNNING, 0.0)}


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
        mechanisms: Sequence[str] = (),
        click_ip: str | None = None,
        is_click: bool = False,
        bot: bool = False,
        ctit: float | None = None,
        conversion: bool = False,
        action: str | None = None,
    ) -> None:
        """Count one judged event (or only extra ``flagged`` convictions) for a partner;
        ``mechanisms``: the first reason of each conviction, when known."""
        state = self.store.get(partner)
        if state is None or "open" not in state:  # new, or kept by an older version
            state = _partner()
        bucket = int(ts.timestamp() // self.width)
        if state["closed"] is not None and bucket <= state["closed"]:
            bucket = state["closed"] + 1  # late: its window is gone, the first open one takes it
        counts = state["open"].get(str(bucket)) or _counts()
        counts["flagged"] += flagged
        if mechanisms:
            why = dict(counts.get("why") or {})
            for reason in mechanisms:
                why[reason] = why.get(reason, 0) + 1
            counts["why"] = why
        if is_click or conversion:
            counts["events"] += 1
        if is_click:
            counts["clicks"] += 1
            counts["bots"] += int(bot)
            if click_ip and click_ip not in counts["ips"] and len(counts["ips"]) < MAX_NETWORKS:
                counts["ips"] = [*counts["ips"], click_ip]
        if conversion:
            counts["conversions"] += 1
        if ctit is not None and ctit >= 0:
            counts["ctits"] = [*counts["ctits"], ctit][-MAX_CTITS:]
            counts["actions"] = [*counts.get("actions", []), action or ""][-MAX_CTITS:]
            counts["timed"] += 1.0
            counts["late"] += float(ctit > self.settings.late_ctit_seconds)
        self.store[partner] = {**state, "open": {**state["open"], str(bucket): counts}}

    def close_until(self, watermark: datetime) -> list[PartnerWindow]:
        """Close every window that ended by ``watermark``: all partners' in (window,
        partner) order, the order the anomaly model learns them in."""
        current = int(watermark.timestamp() // self.width)
        states: dict[str, dict[str, Any]] = {}
        due: list[tuple[int, str]] = []
        for partner, state in self.store.items():
            if "open" not in state:
                continue
            buckets = [int(b) for b in state["open"] if int(b) < current]
            if buckets or state["closed"] is None or state["closed"] < current - 1:
                states[partner] = state
                due += [(bucket, partner) for bucket in buckets]
        closed = []
        reference = self.store.get(REFERENCE) or {"ctits": {}, "cvr": {}}
        for bucket, partner in sorted(due):
            state = states[partner]
            counts = state["open"].pop(str(bucket))
            closed.append(self._close(partner, state, bucket, counts, reference))
        if due:
            self.store[REFERENCE] = reference
        for partner, state in states.items():
            last = state["closed"]
            state["closed"] = current - 1 if last is None else max(last, current - 1)
            self.store[partner] = state
        return closed

    def _close(
        self,
        partner: str,
        state: dict[str, Any],
        bucket: int,
        counts: dict[str, Any],
        reference: dict[str, Any],
    ) -> PartnerWindow:
        """One window's verdict; the running shares decay over the windows since the
        partner's last one, then take this one's counts."""
        gap = bucket - state["at"] if state["at"] is not None else 0
        late_decay, share_decay = self.late_decay**gap, self.share_decay**gap
        state["at"] = bucket
        clicks, events, flagged = counts["clicks"], counts["events"], counts["flagged"]
        state["late"] = state["late"] * late_decay + counts["late"]
        state["timed"] = state["timed"] * late_decay + counts["timed"]
        state["judged"] = state["judged"] * share_decay + events
        state["convicted"] = state["convicted"] * share_decay + flagged
        features = {
            "click_rate": clicks * 3600.0 / self.width,
            "unique_ip_ratio": len(counts["ips"]) / clicks if clicks else 1.0,
            "ctit_median": statistics.median(counts["ctits"]) if counts["ctits"] else 0.0,
            "conversion_rate": counts["conversions"] / clicks if clicks else 0.0,
            "bot_share": counts["bots"] / clicks if clicks else 0.0,
        }
        enough = self.settings.min_partner_conversions
        judged = state["judged"]
        share = min(1.0, state["convicted"] / judged) if judged else 0.0
        late = state["late"] / state["timed"] if state["timed"] >= enough else None
        score = self.model.score(features) if events else None
        reasons = []
        window_share = flagged / events if events else 0.0
        running = (
            judged >= self.settings.min_partner_events
            and share > self.settings.partner_share_alert
            and _surely_above(state["convicted"], judged, self.settings)
        )
        sudden = events >= enough and window_share > self.settings.partner_window_share_alert
        why = {
            reason: n
            for reason, n in _decayed(state.get("why") or {}, share_decay, counts).items()
            if n >= 0.01
        }
        state["why"] = why
        if running or sudden:
            reasons.append("partner_fraud_share")
            reasons += _dominant(why, state["convicted"])
        if late is not None and late > self.settings.late_ctit_share:
            reasons.append("late_ctit_tail")
        if self.model.is_anomalous(score):
            reasons.append("partner_anomaly")
        state["clicked"] = state.get("clicked", 0.0) * share_decay + clicks
        state["converted"] = state.get("converted", 0.0) * share_decay + counts["conversions"]
        if self._flooding(partner, counts, state, reference):
            reasons.insert(0, "ctit_distribution")
        end = datetime.fromtimestamp((bucket + 1) * self.width, tz=UTC)
        cleared = bool(state.get("flagged")) and not reasons
        state["flagged"] = bool(reasons)
        return PartnerWindow(
            partner, end, events, flagged, share, late, score, features, reasons, cleared
        )

    def _flooding(
        self,
        partner: str,
        counts: dict[str, Any],
        state: dict[str, Any],
        reference: dict[str, Any],
    ) -> bool:
        """Click flooding as it shows in the field, where it is spread too thin for any
        per-address counter: the partner's conversions come long after its clicks (their
        CTITs rank high among the other partners' of the same action — a one-sided
        Kolmogorov-Smirnov test) while few of its clicks convert (its running
        conversion rate is a fraction of the median partner's). Updates ``reference``
        with this window's CTITs and rate, after testing against the others'."""
        samples: dict[str, dict[str, list[float]]] = reference["ctits"]
        mine: dict[str, list[float]] = state.setdefault("sample", {})
        for action, ctit in zip(counts.get("actions", []), counts["ctits"], strict=False):
            mine[action] = [*mine.get(action, []), ctit][-SAMPLE:]
        rates: dict[str, float] = reference["cvr"]
        enough = self.settings.flood_min_clicks
        rate = state["converted"] / state["clicked"] if state["clicked"] >= enough else None
        others = sorted(r for p, r in rates.items() if p != partner)
        low = (
            rate is not None
            and len(others) >= 3
            and rate < self.settings.flood_cvr_ratio * others[len(others) // 2]
        )
        # the rank test only where the rate is low: most windows are spared the sorting
        flooding = low and self._later_than_others(partner, mine, samples)
        for action, ctits in mine.items():
            samples.setdefault(action, {})[partner] = ctits
        if rate is not None:
            rates[partner] = rate
        return flooding

    def _later_than_others(
        self,
        partner: str,
        mine: dict[str, list[float]],
        samples: dict[str, dict[str, list[float]]],
    ) -> bool:
        """Each of the partner's CTITs becomes its rank among the other partners' CTITs of
        the same action (0..1), which pools actions with very different delays (add to
        cart in minutes, purchases in hours); honest ranks are uniform, a flood's pile up
        near 1. One-sided KS test of the ranks against the uniform distribution."""
        ranks: list[float] = []
        floor = 3 * self.settings.flood_min_conversions
        for action, ctits in mine.items():
            others = sorted(
                c for p, cs in samples.get(action, {}).items() if p != partner for c in cs
            )
            if len(others) >= floor:
                ranks += [bisect.bisect_left(others, c) / len(others) for c in ctits]
        if len(ranks) < self.settings.flood_min_conversions:
            return False
        test = kstest(ranks, "uniform", alternative="less")  # "less": ranks larger than uniform
        return bool(
            test.statistic >= self.settings.flood_ctit_distance
            and test.pvalue < self.settings.flood_ctit_pvalue
        )
