"""Daily digests: one message per event-time day for destinations that want the picture.

A route in ``daily_digest`` mode does not deliver a verdict change; the change is added
to its destination's buffer for the day (UTC) of its event time, kept in the router's
``StateStore`` like everything else the alerting remembers. The first observation of a
later day closes the buffer into one message: the day's changes and the verdicts still
open. Everything is event time, so a replay sends the digests the live stream sent.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta
from typing import Any

from clicktrail.contracts.records import Severity
from clicktrail.sinks.alerts.payloads import AlertMessage
from clicktrail.sinks.alerts.routing import SEVERITY_RANK, AlertRouter, Decision, Delivery

PREFIX = "__digest__|"


def _day(ts: datetime) -> str:
    return ts.astimezone(UTC).date().isoformat()


class DailyDigest:
    """The digest buffers of every (route, destination) in ``daily_digest`` mode."""

    def __init__(self, router: AlertRouter) -> None:
        self.router = router
        self.lanes = [
            Delivery(f"route{index}", key, True)
            for index, route in enumerate(router.settings.routes)
            if route.mode == "daily_digest"
            for key in route.destinations
        ]

    def add(self, message: AlertMessage, lanes: tuple[Delivery, ...]) -> None:
        """Hold a decided change for the digest of its day."""
        day = _day(message.ts)
        for lane in lanes:
            name = self._name(lane)
            buffer = self.router.state.get(name) or {"day": day, "changes": []}
            change = {
                "ts": message.ts.isoformat(),
                "change": message.change,
                "kind": message.kind,
                "key": message.dedup_key,
                "severity": str(message.severity),
                "title": message.title,
            }
            self.router.state[name] = {**buffer, "changes": [*buffer["changes"], change]}

    def due(self, now: datetime | None) -> list[tuple[AlertMessage, Decision]]:
        """Digests of days before ``now``'s (None: every buffer, at the end of input)."""
        today = None if now is None else _day(now)
        out = []
        for lane in self.lanes:
            name = self._name(lane)
            buffer = self.router.state.get(name)
            if buffer is None or (today is not None and buffer["day"] >= today):
                continue
            out.append((self._message(lane, buffer), Decision((lane,), False, "digest")))
            opened = self._open(lane)
            if opened and today is not None:  # still open: named again in the next digest
                self.router.state[name] = {"day": today, "changes": []}
            else:
                del self.router.state[name]
        return out

    def _name(self, lane: Delivery) -> str:
        return f"{PREFIX}{lane.route}|{lane.destination}"

    def _open(self, lane: Delivery) -> list[dict[str, Any]]:
        """The announced verdicts still open that this lane's route would deliver."""
        return [
            {"key": key, **verdict}
            for key, verdict in sorted(self.router.open_verdicts().items())
            if lane in self.router.route(verdict["kind"], verdict["severity"], verdict["brand"])
        ]

    def _message(self, lane: Delivery, buffer: dict[str, Any]) -> AlertMessage:
        changes, opened = buffer["changes"], self._open(lane)
        severities = [Severity(item["severity"]) for item in [*changes, *opened]]
        worst = max(severities, key=SEVERITY_RANK.__getitem__, default=Severity.info)
        day = buffer["day"]
        key = f"digest|{lane.route}|{lane.destination}|{day}"
        end = datetime.combine(datetime.fromisoformat(day).date(), time(), UTC)
        return AlertMessage(
            alert_id=hashlib.sha256(key.encode()).hexdigest()[:32],
            kind="digest",
            dedup_key=key,
            severity=worst,
            brand=None,
            ts=end + timedelta(days=1),
            title=f"Alert digest for {day}: {len(changes)} verdict changes, {len(opened)} open",
            evidence={"day": day, "changes": changes, "open": opened},
        )
