"""What a rule reports: a reason code and how strongly it points at fraud.

Rules never decide the action; they report ``Hit``s and the combiner turns all of a
subject's hits into one verdict. A hit may name another subject (``subject_id``): a
flood detected at the sixth click also convicts the five before it, and a conversion
that shows injection convicts the click it credits.
"""

from __future__ import annotations

from dataclasses import dataclass

REASONS: dict[str, tuple[float, str]] = {
    # reason: (weight, pattern). Listed from the most specific evidence to the weakest:
    # the first reason of a verdict names the mechanism; mismatches are symptoms that
    # flooding and bots produce too, so they come last.
    "forged_click_id": (1.0, "forged_click_id"),
    "replayed_postback": (1.0, "replayed_postback"),
    "orphan_conversion": (0.9, "orphan"),
    "bot_user_agent": (0.95, "bot"),
    "empty_user_agent": (0.9, "bot"),
    "datacenter_ip": (0.9, "datacenter"),
    "ctit_too_short": (0.9, "click_injection"),
    "click_flood_ip": (0.9, "click_flooding"),
    "click_flood_device": (0.7, "click_flooding"),
    "click_flood_network": (0.9, "click_flooding"),
    "unknown_partner": (0.6, "unknown_id"),  # suspicious alone: see unknown_ids.py
    "unknown_campaign": (0.6, "unknown_id"),
    "geo_mismatch": (0.6, "geo_mismatch"),
    "device_mismatch": (0.6, "device_mismatch"),
    "ctit_distribution": (0.9, "click_flooding"),  # partner level: see partners.py
    "late_ctit_tail": (0.6, "click_flooding"),
    "partner_anomaly": (0.4, "anomaly"),  # alone it is no suspicion: see anomaly.py
    "partner_fraud_share": (0.9, "fraud_share"),
}
PRIORITY = {reason: rank for rank, reason in enumerate(REASONS)}


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule firing; ``subject_id`` set when it judges another subject than the input."""

    reason: str
    subject_id: str | None = None
    campaign_id: str | None = None
    partner_id: str | None = None

    @property
    def weight(self) -> float:
        return REASONS[self.reason][0]


def pattern_of(reason: str) -> str:
    """The simulator pattern (and report bucket) a reason code stands for."""
    return REASONS[reason][1]


def ordered(reasons: set[str] | list[str]) -> list[str]:
    """Strongest evidence first, so ``reasons[0]`` names the mechanism."""
    return sorted(set(reasons), key=lambda r: PRIORITY.get(r, len(PRIORITY)))
