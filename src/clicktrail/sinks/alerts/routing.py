"""Which destinations hear about an alert, and whether it is news or a repeat.

Pure: the only state is one JSON entry per dedup key in a ``StateStore`` (a dict in tests,
a Faust table in the worker), so a restart does not re-page everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from clicktrail.config.registry import AlertKind, AlertSettings
from clicktrail.contracts import StateStore
from clicktrail.contracts.records import Severity

SEVERITY_RANK = {Severity.info: 0, Severity.warning: 1, Severity.critical: 2}


@dataclass(frozen=True)
class Delivery:
    """One destination chosen by one route (named ``route<index>`` in config order)."""

    route: str
    destination: str


@dataclass(frozen=True)
class Decision:
    deliveries: tuple[Delivery, ...]
    suppressed: bool
    reason: str


class AlertRouter:
    """Routes by kind, brand and minimum severity; deduplicates per key with a cool-down.

    A key alerts again before the cool-down only when its severity went up, so an
    escalation is never swallowed by the dedup of the milder alert before it.
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
            for key in route.destinations:
                chosen.setdefault(key, Delivery(f"route{index}", key))
        return list(chosen.values())

    def decide(
        self,
        kind: AlertKind,
        dedup_key: str,
        severity: Severity,
        brand: str | None,
        now: datetime,
    ) -> Decision:
        """Route the alert and record it as sent unless it is a repeat within the cool-down."""
        deliveries = tuple(self.route(kind, severity, brand))
        if not deliveries:
            return Decision((), False, "no_route")
        previous = self.state.get(dedup_key)
        if previous is not None:
            escalated = (
                SEVERITY_RANK[Severity(severity)] > SEVERITY_RANK[Severity(previous["severity"])]
            )
            cooling = now - datetime.fromisoformat(previous["sent_at"]) < self.cooldown
            if cooling and not escalated:
                return Decision(deliveries, True, "cooldown")
        self.state[dedup_key] = {"severity": str(severity), "sent_at": now.isoformat()}
        return Decision(deliveries, False, "new" if previous is None else "renotify")
