"""Postbacks that should earn nothing: forged click ids, orphans and replays.

Forged: the click id's signature fails (``ClickIdSigner.verify``), so no edge of ours
minted it, and it is no id of a partner that issues its own (``partners.X.click_ids:
partner``: another tracker or an ad network reporting server to server). Orphan: the id
is genuine but its click never arrived within the grace period (the click stage says
``unknown_click``). Replay: the same transaction (advertiser,
action, txid, status and amounts) reported again under another ``event_id``; a status
update changes the status, so it is not a replay, and a redelivery keeps its
``event_id``, so it is not one either.
"""

from __future__ import annotations

from datetime import datetime

from clicktrail.contracts import Conversion, StateStore
from clicktrail.contracts.internal import ResolvedConversion
from clicktrail.processors.fraud.hits import Hit
from clicktrail.processors.signing import ClickIdSigner


class ClickIdRule:
    def __init__(self, click_id_key: str, own_id_partners: frozenset[str] = frozenset()) -> None:
        self.signer = ClickIdSigner(click_id_key)
        self.own_id_partners = own_id_partners

    def __call__(self, resolved: ResolvedConversion) -> list[Hit]:
        click_id = resolved.conversion.click_id
        if click_id is None:
            return []
        if not self.signer.verify(click_id):
            click, named = resolved.click, resolved.conversion.partner_id
            partner = click.partner_id if click is not None else named
            if partner not in self.own_id_partners or named not in (None, partner):
                return [Hit("forged_click_id")]  # nobody's id, or another partner's
        if resolved.lookup == "unknown_click":
            return [Hit("orphan_conversion")]
        return []


def transaction_key(conversion: Conversion) -> str | None:
    if not conversion.txid:
        return None
    return "|".join(
        [
            conversion.advertiser_id or "",
            conversion.action,
            conversion.txid,
            str(conversion.status),
            f"{conversion.revenue:.4f}",
            f"{conversion.payout:.4f}",
            conversion.currency,
        ]
    )


def _txid_key(conversion: Conversion) -> str:
    return f"t|{conversion.advertiser_id or ''}|{conversion.action}|{conversion.txid}"


class ReplayRule:
    """Remembers each transaction's first ``event_id`` (and its time, for expiry)."""

    def __init__(self, seen: StateStore, retention_seconds: float) -> None:
        if retention_seconds <= 0:
            raise ValueError("replay retention must be positive")
        self.seen = seen
        self.retention = retention_seconds

    def is_repeat(self, conversion: Conversion) -> bool:
        """A transaction seen before under another event (a status update or a replay):
        not a new conversion, so it must not count again in CTIT or conversion rates."""
        if not conversion.txid:
            return False
        first = self.seen.get(_txid_key(conversion))
        return first is not None and first[0] != conversion.event_id

    def __call__(self, conversion: Conversion) -> list[Hit]:
        key = transaction_key(conversion)
        if key is None:
            return []
        self.seen.setdefault(
            _txid_key(conversion), [conversion.event_id, conversion.ts.timestamp()]
        )
        first = self.seen.get(key)
        if first is None:
            self.seen[key] = [conversion.event_id, conversion.ts.timestamp()]
            return []
        if first[0] == conversion.event_id:
            return []
        return [Hit("replayed_postback")]

    def expire(self, watermark: datetime) -> int:
        horizon = watermark.timestamp() - self.retention
        stale = [k for k, (_, ts) in self.seen.items() if ts < horizon]
        for key in stale:
            del self.seen[key]
        return len(stale)
