"""Which destinations hear about an alert, and whether it is news.

An alert announces a verdict change: a key (a partner and kind, a brand and offender) is
announced when it is first flagged (``new``), again when its severity rises above what
was announced (``escalated``) and once when it is observed clean (``resolved``); the
windows in between that repeat the verdict are not news. Pure: the only state is one
JSON entry per key in a ``StateStore`` (a dict in tests and the embedded runtime, a Faust
table in the worker), read and written at the observation's event time, so a restarted
worker or a replay decides exactly as the first run did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clicktrail.config.registry import AlertKind, AlertSettings
from clicktrail.contracts import StateStore
from clicktrail.contracts.records import Severity

SEVERITY_RANK = {Severity.info: 0, Severity.warning: 1, Severity.critical: 2}
OPEN = "__open__"  # the announced verdicts still open, for digests: key -> kind/severity/brand


@dataclass(frozen=True)
class Delivery:
    """One destination chosen by one route (named ``route<index>`` in config order);
    ``digest``: the route collects it into the destination's daily digest."""

    route: str
    destination: str
    digest: bool = False


@dataclass(frozen=True)
class Decision:
    """``deliveries`` go out now, ``digests`` wait for the day's digest; ``change`` is
    new, escalated or resolved when the alert is news, else None with the reason why not."""

    deliveries: tuple[Delivery, ...]
    suppressed: bool
    reason: str
    change: str | None = None
    digests: tuple[Delivery, ...] = ()
    severity: Severity | None = None  # of the change: a resolution keeps the verdict's


def _quiet(reason: str) -> Decision:
    return Decision((), True, reason)


def _above(severity: Severity | str, announced: Severity | str) -> bool:
    return SEVERITY_RANK[Severity(severity)] > SEVERITY_RANK[Severity(announced)]


class AlertRouter:
    """Routes by kind, brand and minimum severity; announces only verdict changes.

    ``cooldown_seconds`` damps a verdict hovering at its threshold: flagged again no later
    than that much event time after its resolved alert (with hourly partner windows and
    the default hour: in the very next window), the key reopens silently, and is
    announced as new only if it is still flagged once the cool-down is over.
    """

    def __init__(self, settings: AlertSettings, state: StateStore | None = None) -> None:
        missing = {
            key
            for route in settings.routes
            for key in route.destinations
            if key not in settings.destinations
        }
        if missing:
            raise ValueError(f"alert routes name unknown destinations: {sorted(missing)}")
        self.settings = settings
        self.cooldown = timedelta(seconds=settings.cooldown_seconds)
        self.state: StateStore = {} if state is None else state

    def route(self, kind: AlertKind, severity: Severity, brand: str | None) -> list[Delivery]:
        """Destinations in route order, each at most once (the first matching route wins)."""
        chosen: dict[str, Delivery] = {}
        rank = SEVERITY_RANK[Severity(severity)]
        for index, route in enumerate(self.settings.routes):
            if kind not in route.kinds or rank < SEVERITY_RANK[Severity(route.min_severity)]:
                continue
            if route.brands and brand not in route.brands:
                continue
            digest = route.mode == "daily_digest"
            for key in route.destinations:
                chosen.setdefault(key, Delivery(f"route{index}", key, digest))
        return list(chosen.values())

    def decide(
        self,
        kind: AlertKind,
        dedup_key: str,
        severity: Severity,
        brand: str | None,
        now: datetime,
        *,
        clear: bool = False,
    ) -> Decision:
        """Compare an observation of ``dedup_key`` at event time ``now`` (flagged at
        ``severity``, or ``clear``) with what was announced, record it, and say whether
        and where it is news. An observation older than the key's latest is stale, unless
        it raises an open verdict (a brand key gathers conflicts of several keywords, each
        with its own last sighting: one seen earlier may still be the critical one)."""
        previous = self._previous(dedup_key)
        latest = now
        if previous is not None and now < datetime.fromisoformat(previous["at"]):
            announced = previous["severity"]
            raises = not clear and announced is not None and _above(severity, announced)
            if not raises:
                return _quiet("stale")
            latest = datetime.fromisoformat(previous["at"])
        entry: dict[str, Any] = previous or {"severity": None, "resolved_at": None}
        entry = {**entry, "kind": kind, "brand": brand, "at": latest.isoformat()}
        entry["open"] = not clear if latest == now else entry["open"]
        announced = entry["severity"]
        if clear:
            if previous is None:
                return _quiet("clean")
            if announced is None:
                self.state[dedup_key] = entry
                return _quiet("clean")
            change, severity = "resolved", Severity(announced)
            entry |= {"severity": None, "resolved_at": now.isoformat()}
        elif announced is not None:
            if not _above(severity, announced):
                self.state[dedup_key] = entry
                return _quiet("unchanged")
            change = "escalated"
        else:
            resolved = entry["resolved_at"]
            quiet_until = (
                None if resolved is None else datetime.fromisoformat(resolved) + self.cooldown
            )
            if quiet_until is not None and now <= quiet_until:
                self.state[dedup_key] = entry
                return _quiet("cooldown")
            change = "new"
        routed = self.route(kind, severity, brand)
        if not routed:
            if previous is not None:
                self.state[dedup_key] = entry
            return Decision((), False, "no_route")
        if change != "resolved":
            entry["severity"] = str(severity)
        entry["sent_at"] = now.isoformat()
        self.state[dedup_key] = entry
        self._track_open(dedup_key, kind, entry["severity"], brand)
        return Decision(
            tuple(d for d in routed if not d.digest),
            False,
            change,
            change,
            tuple(d for d in routed if d.digest),
            Severity(severity),
        )

    def open_verdicts(self) -> dict[str, dict[str, Any]]:
        """The announced verdicts not resolved yet, by key (for the daily digests)."""
        return dict(self.state.get(OPEN) or {})

    def _previous(self, key: str) -> dict[str, Any] | None:
        """The key's entry; one written by the cool-down router before change-only alerts
        (``severity`` and ``sent_at``) reads as an open verdict announced then."""
        previous = self.state.get(key)
        if previous is None or "at" in previous:
            return previous
        return {
            "severity": previous["severity"],
            "resolved_at": None,
            "open": True,
            "at": previous["sent_at"],
        }

    def _track_open(self, key: str, kind: str, severity: str | None, brand: str | None) -> None:
        verdicts = self.open_verdicts()
        if severity is None:
            verdicts.pop(key, None)
        else:
            verdicts[key] = {"kind": kind, "severity": severity, "brand": brand}
        self.state[OPEN] = verdicts
