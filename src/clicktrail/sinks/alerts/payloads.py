"""Alert messages with their evidence, rendered as a JSON body or a Slack message.

The evidence travels with the alert so the person on call can act without opening
a dashboard: who, on which keywords, how often, since when, and what it costs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel

from clicktrail.config.registry import AlertKind
from clicktrail.contracts.records import BrandConflict, FraudVerdict, Severity

SEVERITY_ICON = {Severity.info: ":information_source:", Severity.warning: ":warning:",
                 Severity.critical: ":rotating_light:"}  # fmt: skip


MessageKind = AlertKind | Literal["digest"]


@dataclass(frozen=True)
class AlertMessage:
    """What to say, independent of where it goes; ``alert_id`` is the same on every attempt.

    A message is an observation of its key until the router decides: ``clear`` when the
    key was seen clean (it resolves an open verdict); ``change`` (new, escalated,
    resolved) once it is news, set by :func:`announced`.
    """

    alert_id: str
    kind: MessageKind
    dedup_key: str
    severity: Severity
    brand: str | None
    ts: datetime
    title: str
    evidence: dict[str, Any]
    clear: bool = False
    change: str | None = None


def announced(
    message: AlertMessage, change: str | None, severity: Severity | None = None
) -> AlertMessage:
    """The message as delivered: its change named in the title and the body, at the
    severity of the change (a resolution is told at the severity of what it resolves)."""
    if change is None or message.change == change:
        return message
    return replace(
        message,
        change=change,
        severity=severity or message.severity,
        title=f"{change.capitalize()}: {message.title}",
    )


def _alert_id(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def conflict_key(conflict: BrandConflict) -> str:
    """One key per brand and offender: a new keyword of a known offender is not news,
    a higher severity is."""
    return f"{conflict.brand_id}|{conflict.offender_id}"


def conflict_message(conflict: BrandConflict) -> AlertMessage:
    key = conflict_key(conflict)
    severity = Severity(conflict.severity)
    evidence = {
        "brand": conflict.brand_id,
        "offender_kind": conflict.offender_kind,
        "offender": conflict.offender_id,
        "offender_domain": conflict.offender_domain,
        "channel": conflict.channel,
        "signal": conflict.signal,
        "keywords": conflict.keywords,
        "impressions": conflict.impressions,
        "clicks": conflict.clicks,
        "first_seen": conflict.first_seen.isoformat(),
        "last_seen": conflict.last_seen.isoformat(),
        "head_to_head": conflict.head_to_head,
        "official_campaign": conflict.official_campaign_id,
        "est_cpc_inflation": conflict.est_cpc_inflation,
        "cost_impact": conflict.cost_impact,
        "evidence_ids": conflict.evidence_ids,
    }
    what = ", ".join(conflict.keywords) or conflict.offender_domain or conflict.signal
    return AlertMessage(
        alert_id=_alert_id("brand_conflict", key, str(severity), conflict.last_seen.isoformat()),
        kind="brand_conflict",
        dedup_key=key,
        severity=severity,
        brand=conflict.brand_id,
        ts=conflict.last_seen,
        title=f"Brand conflict on {conflict.brand_id}: {conflict.offender_id} ({what})",
        evidence=evidence,
    )


def partner_message(
    verdict: FraudVerdict,
    severity: Severity = Severity.warning,
    kind: AlertKind = "fraud_share",
    *,
    clear: bool = False,
) -> AlertMessage:
    """A partner-level verdict (fraud share or anomaly); dedup is per kind and partner.
    ``clear``: the verdict's window shows no ``kind`` for the partner."""
    if verdict.subject_type != "partner":
        raise ValueError("partner alerts need a verdict whose subject_type is 'partner'")
    partner = verdict.partner_id or verdict.subject_id
    key = f"{kind}|{partner}"
    what = f"{kind.replace('_', ' ').capitalize()} for partner {partner}"
    state = "clear" if clear else str(severity)
    return AlertMessage(
        alert_id=_alert_id(kind, key, state, verdict.verdict_id, verdict.ts.isoformat()),
        kind=kind,
        dedup_key=key,
        severity=Severity(severity),
        brand=None,
        ts=verdict.ts,
        title=f"{what}: window clean" if clear else f"{what}: score {verdict.score:.2f}",
        evidence={
            "partner": partner,
            "campaign": verdict.campaign_id,
            "score": verdict.score,
            "reasons": verdict.reasons,
            "action": verdict.action,
            "verdict_id": verdict.verdict_id,
            "rule_version": verdict.rule_version,
        },
        clear=clear,
    )


SHARE_REASONS = frozenset({"partner_fraud_share", "late_ctit_tail", "ctit_distribution"})
PARTNER_SEVERITY = {"reject": Severity.critical, "suspicious": Severity.warning}


PARTNER_KINDS: tuple[AlertKind, ...] = ("fraud_share", "anomaly")


def partner_kind(verdict: FraudVerdict) -> AlertKind | None:
    """A fraud share or a late-CTIT tail is ``fraud_share``, an anomaly score alone is
    ``anomaly``; a verdict with neither (a window closed clean) flags no kind."""
    if SHARE_REASONS & set(verdict.reasons):
        return "fraud_share"
    return "anomaly" if "partner_anomaly" in verdict.reasons else None


def alert_messages(records: Iterable[BaseModel]) -> list[AlertMessage]:
    """Observations for the router from the records a pipeline stage produced: brand
    conflicts, and partner verdicts. A partner verdict states the partner's whole window,
    so it flags its kind (a partner judged ``ok`` is only ``info``) and clears the other
    partner kind; a verdict without reasons clears both."""
    out = []
    for record in records:
        if isinstance(record, BrandConflict):
            out.append(conflict_message(record))
        elif isinstance(record, FraudVerdict) and record.subject_type == "partner":
            flagged = partner_kind(record)
            severity = PARTNER_SEVERITY.get(str(record.action), Severity.info)
            for kind in PARTNER_KINDS:
                out.append(partner_message(record, severity, kind, clear=kind != flagged))
    return out


def json_body(message: AlertMessage) -> bytes:
    """The generic webhook body; keys sorted so the signed bytes are reproducible."""
    return orjson.dumps(
        {
            "alert_id": message.alert_id,
            "kind": message.kind,
            "change": message.change,
            "dedup_key": message.dedup_key,
            "severity": str(message.severity),
            "ts": message.ts.isoformat(),
            "title": message.title,
            "evidence": message.evidence,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def _fields(evidence: dict[str, Any]) -> list[dict[str, str]]:
    shown = [(k, v) for k, v in evidence.items() if v not in (None, [], "") and k != "evidence_ids"]
    return [
        {"type": "mrkdwn", "text": f"*{k}*\n{', '.join(map(str, v)) if isinstance(v, list) else v}"}
        for k, v in shown[:10]  # Slack allows at most 10 fields per section
    ]


def slack_body(message: AlertMessage) -> bytes:
    """A Slack incoming-webhook body: ``text`` for notifications, ``blocks`` for the detail."""
    icon = SEVERITY_ICON[Severity(message.severity)]
    text = f"{icon} [{message.severity}] {message.title}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "section", "fields": _fields(message.evidence)},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"alert `{message.alert_id}` key `{message.dedup_key}`",
                }
            ],
        },
    ]
    return orjson.dumps({"text": text, "blocks": blocks})
