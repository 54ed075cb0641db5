"""Evidence aggregated per (brand, offender, keyword) into ``BrandConflict`` records.

One conflict id per triple, stable across restarts, so a record can be updated, stored
with ReplacingMergeTree semantics and deduplicated by the alerting later. A record is
emitted when it is new or changed materially (severity, volume by half again, a first CPC
estimate), not on every event: brand bidding is counted in thousands of impressions.
Each emission is stamped with a fingerprint of its record, so the end of input (or a clean
stop) can emit just the conflicts whose stored row fell behind since.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clicktrail.contracts import BrandConflict, Severity, StateStore
from clicktrail.processors.brand.inflation import CpcEstimate
from clicktrail.processors.brand.signals import Hit

MAX_EVIDENCE = 100
SEVERITY_RANK = {Severity.info: 0, Severity.warning: 1, Severity.critical: 2}


def conflict_id(brand: str, offender_kind: str, offender: str, keyword: str) -> str:
    digest = hashlib.sha256(f"{brand}|{offender_kind}:{offender}|{keyword}".encode()).hexdigest()
    return f"bc-{digest[:24]}"


@dataclass(frozen=True, slots=True)
class SeverityPolicy:
    """Events (impressions + clicks) from which a conflict is a warning / critical; a
    head-to-head conflict that measurably raises the official CPC is critical sooner."""

    warning_events: int = 10
    critical_events: int = 100
    critical_inflation: float = 0.2
    growth: float = 1.5

    def __post_init__(self) -> None:
        if not 1 <= self.warning_events <= self.critical_events:
            raise ValueError("need 1 <= warning_events <= critical_events")
        if self.growth <= 1:
            raise ValueError("growth must be above 1")

    def severity(self, events: int, inflation: float | None) -> Severity:
        if events >= self.critical_events:
            return Severity.critical
        if events >= self.warning_events:
            if inflation is not None and inflation >= self.critical_inflation:
                return Severity.critical
            return Severity.warning
        return Severity.info


def should_alert(
    previous: BrandConflict | None, current: BrandConflict, cooldown: timedelta
) -> bool:
    """Alert on a new conflict or a higher severity at once; otherwise only when it grew
    and ``cooldown`` has passed since the previously alerted record's last sighting."""
    if previous is None:
        return True
    if SEVERITY_RANK[Severity(current.severity)] > SEVERITY_RANK[Severity(previous.severity)]:
        return True
    grew = current.impressions + current.clicks > previous.impressions + previous.clicks
    return grew and current.last_seen - previous.last_seen >= cooldown


class ConflictBook:
    """The ``conflicts`` state: one JSON entry per conflict id."""

    def __init__(self, conflicts: StateStore, policy: SeverityPolicy | None = None) -> None:
        self.conflicts = conflicts
        self.policy = policy or SeverityPolicy()

    def add(self, hit: Hit, count: int = 1) -> tuple[str, dict[str, Any]]:
        key = conflict_id(hit.brand, hit.offender_kind, hit.offender_id, hit.keyword)
        seen = hit.ts.isoformat()
        entry = self.conflicts.get(key) or {
            "brand": hit.brand,
            "offender_kind": hit.offender_kind,
            "offender_id": hit.offender_id,
            "offender_domain": hit.offender_domain,
            "channel": hit.channel,
            "signal": hit.signal,
            "signals": [],
            "keyword": hit.keyword,
            "first_seen": seen,
            "last_seen": seen,
            "impressions": 0,
            "clicks": 0,
            "evidence": [],
            "emitted": None,
        }
        entry["first_seen"] = min(entry["first_seen"], seen)
        entry["last_seen"] = max(entry["last_seen"], seen)
        if hit.signal not in entry["signals"]:
            entry["signals"] = sorted([*entry["signals"], hit.signal])
        field = {"click": "clicks", "impression": "impressions"}.get(hit.subject_type, "rows")
        entry[field] = entry.get(field, 0) + count
        if len(entry["evidence"]) < MAX_EVIDENCE and hit.subject_id not in entry["evidence"]:
            entry["evidence"] = [*entry["evidence"], hit.subject_id]
        self.conflicts[key] = entry
        return key, entry

    def record(self, key: str, entry: dict[str, Any], cpc: CpcEstimate) -> BrandConflict:
        events = entry["impressions"] + entry["clicks"] + entry.get("rows", 0)
        inflation = None if cpc.inflation is None else round(cpc.inflation, 4)
        cost = None
        if inflation is not None and inflation > 0:
            cost = round(cpc.cost_with * inflation / (1 + inflation), 2)
        return BrandConflict(
            conflict_id=key,
            brand_id=entry["brand"],
            offender_kind=entry["offender_kind"],
            offender_id=entry["offender_id"],
            offender_domain=entry["offender_domain"],
            channel=entry["channel"],
            signal=entry["signal"],
            keywords=[entry["keyword"]] if entry["keyword"] else [],
            first_seen=datetime.fromisoformat(entry["first_seen"]),
            last_seen=datetime.fromisoformat(entry["last_seen"]),
            impressions=entry["impressions"],
            clicks=entry["clicks"],
            insight_rows=entry.get("rows", 0),
            head_to_head=cpc.head_to_head > 0 or entry.get("head_to_head", False),
            est_cpc_inflation=inflation,
            cost_impact=cost,
            severity=self.policy.severity(events, inflation),
            evidence_ids=entry["evidence"],
        )

    def material(self, key: str, entry: dict[str, Any], cpc: CpcEstimate) -> bool:
        """Whether the conflict changed enough since it was last emitted (:meth:`stamp`
        remembers an emission). Decided from the entry alone, so the per-event path builds
        no record it drops."""
        current = self._marker(entry, cpc)
        last = entry["emitted"]
        return (
            last is None
            or last["severity"] != current["severity"]
            or current["events"] >= last["events"] * self.policy.growth
            or (last["inflation"] is None) != (current["inflation"] is None)
        )

    def stamp(
        self, key: str, entry: dict[str, Any], cpc: CpcEstimate, record: BrandConflict
    ) -> None:
        """Remember ``record`` as the conflict's latest emitted state."""
        entry["emitted"] = {**self._marker(entry, cpc), "digest": record_digest(record)}
        self.conflicts[key] = entry  # reassign: changelogged tables need a set

    @staticmethod
    def is_current(entry: dict[str, Any], record: BrandConflict) -> bool:
        """Was ``record`` (the conflict as it stands) the one last emitted?"""
        last = entry["emitted"]
        return last is not None and last.get("digest") == record_digest(record)

    def _marker(self, entry: dict[str, Any], cpc: CpcEstimate) -> dict[str, Any]:
        events = entry["impressions"] + entry["clicks"] + entry.get("rows", 0)
        inflation = None if cpc.inflation is None else round(cpc.inflation, 4)
        severity = str(self.policy.severity(events, inflation))
        return {"severity": severity, "events": events, "inflation": inflation}


def record_digest(record: BrandConflict) -> str:
    """A short fingerprint of everything a stored row shows."""
    return hashlib.blake2b(record.model_dump_json().encode(), digest_size=8).hexdigest()
