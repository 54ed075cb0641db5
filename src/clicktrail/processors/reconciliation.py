"""Hold the advertiser's orders against the tracked conversions: who was paid for what.

An order matches the conversion whose ``txid`` is its order id. A conversion reported
without a txid (a pixel, a tracker that does not pass one) can still be matched when the
export carries a ``user_id`` (a hashed customer id or e-mail): the same user's nearest
conversion within ``window`` of the order. Each pair, and each side left alone, gets one
outcome:

* ``matched``: sold and tracked, same amount (within ``tolerance``) and currency;
* ``amount_difference``: sold and tracked, the amounts differ (same currency);
* ``currency_mismatch``: sold in another currency than tracked: amounts not compared;
* ``refunded``: tracked, and the order was refunded, cancelled or charged back;
* ``tracked_not_sold``: a conversion in the export's period with no order: its payout
  is at risk (the partner is paid for a sale the shop never made);
* ``sold_not_tracked``: an order no conversion reported: a tracking gap.

A matched order changes the conversion as a status postback would: the reconciler
returns conversion events (same txid, advertiser and action, a newer time) that go
through the intake and the user stage's repeated-txid policy like any postback, and
come out as new versions of the attributed rows. Only actions whose policy is
``update`` get them (``ignore`` would drop them, ``new`` would count the sale twice).
An update is sent only when the order still changes something, and its event id is
derived from what it sets and from what it changes, so importing the same file again
changes nothing.

The result does not depend on the order of the rows: orders and conversions are sorted
first, and user/time candidates are assigned nearest first with ids breaking ties.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from clicktrail.contracts.sales import (
    Outcome,
    ReconciliationRecord,
    SaleOrder,
    TrackedConversion,
)

DEFAULT_WINDOW = timedelta(days=1)
DEFAULT_TOLERANCE = 0.01
UPDATE_PREFIX = "sale-"
"""Event ids of the updates an import sends: the store tells them from postbacks by it."""
UPDATE_DELAY = timedelta(seconds=1)
"""An update is dated this much after the conversion's newest report, so the user stage
takes it as the newest word on the conversion (an older one only corrects the original
status)."""
_STATUS_RANK = {"pending": 0, "approved": 1, "rejected": 2}


@dataclass
class Reconciliation:
    records: list[ReconciliationRecord] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    """Conversion events (JSON-ready) to submit through the intake."""
    updated: list[str] = field(default_factory=list)
    """The conversion id each update is for (same positions as ``updates``)."""

    def held_back(self, conversion_ids: set[str]) -> None:
        """Updates that were not sent after all: their pairs say so."""
        self.records = [
            r.model_copy(update={"updated": False}) if r.conversion_id in conversion_ids else r
            for r in self.records
        ]


def import_id(advertiser: str, orders: Iterable[SaleOrder]) -> str:
    """The same orders give the same id, in whatever order the file lists them."""
    lines = sorted(o.model_dump_json() for o in orders)
    digest = hashlib.sha256(json.dumps([advertiser, lines]).encode()).hexdigest()
    return f"sales-{digest[:24]}"


def period(orders: Sequence[SaleOrder]) -> tuple[datetime, datetime]:
    """The whole days the export covers: conversions in them with no order were not sold."""
    first = min(o.ts for o in orders)
    last = max(o.ts for o in orders)
    start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    end = last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return start, end


def _newest(orders: Iterable[SaleOrder]) -> list[SaleOrder]:
    """One order per id: an export listing an order twice means its latest state."""
    best: dict[str, SaleOrder] = {}
    for order in orders:
        kept = best.get(order.order_id)
        if kept is None or _order_rank(order) > _order_rank(kept):
            best[order.order_id] = order
    return [best[key] for key in sorted(best)]


def _order_rank(order: SaleOrder) -> tuple[datetime, int, float, str, str]:
    return (
        order.ts,
        _STATUS_RANK[str(order.status)],
        order.amount,
        order.currency,
        order.user_id or "",
    )


class Reconciler:
    """Match one advertiser's orders with its tracked conversions (see the module doc)."""

    def __init__(
        self,
        *,
        updatable_actions: Iterable[str],
        window: timedelta = DEFAULT_WINDOW,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        if window <= timedelta(0):
            raise ValueError("the user/time matching window must be positive")
        if tolerance < 0:
            raise ValueError("the amount tolerance must not be negative")
        self.updatable = frozenset(updatable_actions)
        self.window = window
        self.tolerance = tolerance

    def __call__(
        self,
        advertiser: str,
        orders: Sequence[SaleOrder],
        tracked: Sequence[TrackedConversion],
        now: datetime,
    ) -> Reconciliation:
        if not orders:
            return Reconciliation()
        sales = _newest(orders)
        conversions = sorted(
            {c.conversion_id: c for c in tracked}.values(), key=lambda c: c.conversion_id
        )
        pairs = self._by_txid(sales, conversions)
        used = {c.conversion_id for c in pairs.values()}
        pairs.update(self._by_user(sales, conversions, set(pairs), used))
        used = {c.conversion_id for c in pairs.values()}
        run = import_id(advertiser, sales)
        start, end = period(sales)
        result = Reconciliation()
        for order in sales:
            conversion = pairs.get(order.order_id)
            if conversion is None:
                result.records.append(self._not_tracked(run, advertiser, order, now))
                continue
            match = "txid" if conversion.txid == order.order_id else "user_time"
            record, update = self._pair(
                run, advertiser=advertiser, order=order, conversion=conversion, match=match, now=now
            )
            result.records.append(record)
            if update is not None:
                result.updates.append(update)
                result.updated.append(conversion.conversion_id)
        for conversion in conversions:
            if conversion.conversion_id in used or not start <= conversion.ts < end:
                continue
            result.records.append(self._not_sold(run, advertiser, conversion, now))
        return result

    @staticmethod
    def _by_txid(
        sales: list[SaleOrder], conversions: list[TrackedConversion]
    ) -> dict[str, TrackedConversion]:
        by_txid: dict[str, list[TrackedConversion]] = {}
        for conversion in conversions:
            if conversion.txid:
                by_txid.setdefault(conversion.txid, []).append(conversion)
        pairs = {}
        for order in sales:
            candidates = by_txid.get(order.order_id)
            if candidates:
                pairs[order.order_id] = min(
                    candidates,
                    key=lambda c: (abs((c.ts - order.ts).total_seconds()), c.conversion_id),
                )
        return pairs

    def _by_user(
        self,
        sales: list[SaleOrder],
        conversions: list[TrackedConversion],
        matched: set[str],
        used: set[str],
    ) -> dict[str, TrackedConversion]:
        """Orders with a user id and no txid match: nearest conversions first, so the
        assignment is the same in any order of the rows."""
        by_user: dict[str, list[TrackedConversion]] = {}
        for conversion in conversions:
            if not conversion.txid and conversion.user_id and conversion.conversion_id not in used:
                by_user.setdefault(conversion.user_id, []).append(conversion)
        candidates = []
        for order in sales:
            if order.order_id in matched or not order.user_id:
                continue
            for conversion in by_user.get(order.user_id, []):
                gap = abs((conversion.ts - order.ts).total_seconds())
                if gap <= self.window.total_seconds():
                    candidates.append((gap, order.order_id, conversion.conversion_id, conversion))
        candidates.sort(key=lambda c: c[:3])
        pairs: dict[str, TrackedConversion] = {}
        taken: set[str] = set()
        for _, order_id, conversion_id, conversion in candidates:
            if order_id in pairs or conversion_id in taken:
                continue
            pairs[order_id] = conversion
            taken.add(conversion_id)
        return pairs

    def _pair(
        self,
        run: str,
        *,
        advertiser: str,
        order: SaleOrder,
        conversion: TrackedConversion,
        match: str,
        now: datetime,
    ) -> tuple[ReconciliationRecord, dict[str, Any] | None]:
        same_currency = order.currency == conversion.currency
        difference = order.amount - conversion.tracked_revenue if same_currency else 0.0
        if order.status == "rejected":
            outcome = Outcome.refunded
        elif not same_currency:
            outcome = Outcome.currency_mismatch
        elif abs(difference) > self.tolerance:
            outcome = Outcome.amount_difference
        else:
            outcome = Outcome.matched
        update = self._update(advertiser, order, conversion)
        record = ReconciliationRecord(
            **_tracked(run, advertiser, conversion, now),
            outcome=outcome,
            match=match,
            order_id=order.order_id,
            sale_status=str(order.status),
            sold_amount=order.amount,
            sold_currency=order.currency,
            amount_difference=round(difference, 6),
            order_ts=order.ts,
            updated=update is not None,
        )
        return record, update

    def _update(
        self, advertiser: str, order: SaleOrder, conversion: TrackedConversion
    ) -> dict[str, Any] | None:
        """The status postback this order amounts to, or None when it changes nothing.

        A pending order never undoes a decision (nor does the user stage let it); the
        amount is set only in the conversion's own currency, with the payout as it is
        (the shop's export says what was sold, not what the partner earns)."""
        if conversion.action not in self.updatable:
            return None
        status = str(conversion.status)
        if order.status != "pending":
            status = str(order.status)
        revenue = conversion.revenue
        sets_amount = (
            order.currency == conversion.currency
            and order.status != "rejected"
            and abs(order.amount - conversion.revenue) > self.tolerance
        )
        if sets_amount:
            revenue = order.amount
        if status == conversion.status and not sets_amount:
            return None
        # what it sets and what it changes from: the same file twice (or two imports at
        # once) sends the same event, which the intake's dedup drops; after a postback moved
        # the conversion again, the same order makes a new one
        identity = [
            conversion.advertiser_id or "",
            conversion.action,
            conversion.txid or f"id:{conversion.conversion_id}",
            status,
            round(revenue, 6) if sets_amount else None,
            str(conversion.status),
            round(conversion.revenue, 6),
        ]
        digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:40]
        ts = max(order.ts, conversion.latest_ts + UPDATE_DELAY)
        event: dict[str, Any] = {
            "type": "conversion",
            "event_id": f"{UPDATE_PREFIX}{digest}",
            "ts": ts.isoformat().replace("+00:00", "Z"),
            "action": conversion.action,
            "status": status,
            "currency": conversion.currency,
            # both 0: amounts stay as they are; a new revenue comes with the payout as is
            "revenue": revenue if sets_amount else 0.0,
            "payout": conversion.payout if sets_amount else 0.0,
        }
        if conversion.txid:
            event["txid"] = conversion.txid
        else:
            event["conversion_id"] = conversion.conversion_id
        for name in ("advertiser_id", "campaign_id", "partner_id", "click_id"):
            value = getattr(conversion, name)
            if value:
                event[name] = value
        if conversion.user_id:
            event["user"] = {"user_id": conversion.user_id}
        return event

    @staticmethod
    def _not_tracked(
        run: str, advertiser: str, order: SaleOrder, now: datetime
    ) -> ReconciliationRecord:
        return ReconciliationRecord(
            import_id=run,
            advertiser_id=advertiser,
            pair_key=f"order:{order.order_id}",
            outcome=Outcome.sold_not_tracked,
            order_id=order.order_id,
            sale_status=str(order.status),
            sold_amount=order.amount,
            sold_currency=order.currency,
            order_ts=order.ts,
            ts=now,
        )

    @staticmethod
    def _not_sold(
        run: str, advertiser: str, conversion: TrackedConversion, now: datetime
    ) -> ReconciliationRecord:
        return ReconciliationRecord(
            **_tracked(run, advertiser, conversion, now), outcome=Outcome.tracked_not_sold
        )


def _tracked(
    run: str, advertiser: str, conversion: TrackedConversion, now: datetime
) -> dict[str, Any]:
    """The fields of a pair that come from the tracked conversion."""
    return {
        "import_id": run,
        "advertiser_id": advertiser,
        "pair_key": conversion.conversion_id,
        "conversion_id": conversion.conversion_id,
        "txid": conversion.txid or "",
        "action": conversion.action,
        "partner_id": conversion.credited_partner_id or "",
        "campaign_id": conversion.credited_campaign_id or "",
        "tracked_status": str(conversion.tracked_status),
        "tracked_revenue": conversion.tracked_revenue,
        "tracked_currency": conversion.currency,
        "payout": conversion.payout,
        "conversion_ts": conversion.ts,
        "ts": now,
    }
