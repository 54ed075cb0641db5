"""The combiner: all of a subject's hits become one ``FraudVerdict``.

Independent evidence adds up as ``1 - prod(1 - weight)``: two weak signals make a
suspicion, one strong signal a rejection. The action follows ``fraud.suspicious_score``
and ``fraud.reject_score``; reasons come strongest first so the first one names the
mechanism. The verdict id is a digest of subject and reasons: a redelivered event
yields the same id (the sink skips it), a revised verdict (more reasons) a new one,
and the latest verdict of a subject is the one that counts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from clicktrail.config.registry import FraudSettings
from clicktrail.contracts import FraudVerdict, VerdictAction
from clicktrail.processors.fraud.hits import REASONS, ordered

RULE_VERSION = "fraud-1"
Subject = Literal["click", "conversion", "partner"]


def combined_score(reasons: list[str]) -> float:
    clean = 1.0
    for reason in reasons:
        clean *= 1.0 - REASONS[reason][0]
    return round(1.0 - clean, 6)


class Combiner:
    def __init__(self, settings: FraudSettings, version: str = RULE_VERSION) -> None:
        if settings.suspicious_score > settings.reject_score:
            raise ValueError("fraud.suspicious_score must not exceed fraud.reject_score")
        self.suspicious = settings.suspicious_score
        self.reject = settings.reject_score
        self.version = version

    def action(self, score: float) -> VerdictAction:
        if score >= self.reject:
            return VerdictAction.reject
        if score >= self.suspicious:
            return VerdictAction.suspicious
        return VerdictAction.ok

    def __call__(
        self,
        subject_type: Subject,
        subject_id: str,
        ts: datetime,
        reasons: list[str] | set[str],
        *,
        partner_id: str | None = None,
        campaign_id: str | None = None,
    ) -> FraudVerdict:
        codes = ordered(reasons)
        score = combined_score(codes)
        digest = hashlib.blake2b(
            "|".join([subject_type, subject_id, self.version, *codes]).encode(), digest_size=12
        ).hexdigest()
        return FraudVerdict(
            verdict_id=f"fv-{digest}",
            ts=ts,
            subject_type=subject_type,
            subject_id=subject_id,
            partner_id=partner_id,
            campaign_id=campaign_id,
            score=score,
            reasons=codes,
            action=self.action(score),
            rule_version=self.version,
        )
