"""Reconciliation with sales, wired to the store: read what was tracked, record the pairs.

The matching itself is :class:`~clicktrail.processors.reconciliation.Reconciler` (pure).
This module reads the advertiser's tracked conversions from ClickHouse (the attributed
rows for credit and current state, the raw conversion reports for what tracking said and
where an update must travel), writes the ``reconciliation`` rows, and reads the
per-partner summary back. The status updates a reconciliation returns are published by
the caller through its intake gate (the edge's backend, on its event loop), so they take
the postbacks' path through the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clicktrail.config.registry import Action, Registry
from clicktrail.contracts.sales import ReconciliationRecord, SaleOrder, TrackedConversion
from clicktrail.processors.intake import Clock, utc_now
from clicktrail.processors.reconciliation import (
    DEFAULT_WINDOW,
    UPDATE_PREFIX,
    Reconciler,
    Reconciliation,
    period,
)
from clicktrail.sinks.rows import describe
from clicktrail.sinks.store import Store

DEFAULT_ACTIONS = ("purchase",)
MARGIN = timedelta(days=2)
"""Conversions this far outside the export's days are read too: an order dated in the
shop's time zone, or paid a day after the click's conversion, still finds its txid."""
TABLE = "reconciliation"
CHUNK = 2_000
"""Ids per statement: 2,000 order ids are some 40 KB of SQL, ClickHouse takes 256 KiB."""


@dataclass(frozen=True)
class PartnerSummary:
    """One line of the per-partner summary (``reconciliation_summary``)."""

    advertiser_id: str
    partner_id: str
    currency: str
    matched: int
    refunded: int
    tracked_not_sold: int
    payout_at_risk: float
    sold_not_tracked: int
    untracked_amount: float
    amount_differences: int
    amount_difference: float
    currency_mismatches: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SalesLedger:
    """Reconcile an advertiser's orders against one store."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        *,
        window: timedelta = DEFAULT_WINDOW,
        clock: Clock = utc_now,
    ) -> None:
        self.registry = registry
        self.store = store
        self.window = window
        self.clock = clock

    def actions(self, requested: Sequence[str] = ()) -> list[str]:
        """The actions sales are held against (purchase unless named); unknown -> ValueError."""
        chosen = list(requested) or list(DEFAULT_ACTIONS)
        known = set(self.registry.actions) | set(DEFAULT_ACTIONS)
        unknown = [a for a in chosen if a not in known]
        if unknown:
            raise ValueError(
                f"unknown action {unknown[0]!r}; configured: {', '.join(sorted(known))}"
            )
        return sorted(set(chosen))

    def reconcile(
        self, advertiser: str, orders: Sequence[SaleOrder], actions: Sequence[str] = ()
    ) -> Reconciliation:
        """Match the orders; nothing is written or published yet (safe in a worker thread)."""
        chosen = self.actions(actions)
        updatable = [
            a for a in chosen if self.registry.actions.get(a, Action()).txid_policy == "update"
        ]
        reconciler = Reconciler(updatable_actions=updatable, window=self.window)
        tracked = self.tracked(advertiser, orders, chosen) if orders else []
        return reconciler(advertiser, orders, tracked, self.clock())

    def record(self, records: Sequence[ReconciliationRecord]) -> int:
        """Write the pairs; a pair imported before is replaced (ReplacingMergeTree)."""
        if not records:
            return 0
        shape = describe(self.store, TABLE, set(ReconciliationRecord.model_fields))
        rows = [shape.row(r, "", 0) for r in records]
        self.store.insert(TABLE, rows, shape.columns)
        return len(rows)

    def summary(self, advertiser: str | None = None) -> list[PartnerSummary]:
        db = self.store.database
        where = "WHERE advertiser_id = {adv:String}" if advertiser else ""
        rows = self.store.rows(
            "SELECT advertiser_id, partner_id, currency, matched, refunded, tracked_not_sold, "
            "toFloat64(payout_at_risk), sold_not_tracked, toFloat64(untracked_amount), "
            "amount_differences, toFloat64(amount_difference), currency_mismatches "
            f"FROM {db}.reconciliation_summary {where} "
            "ORDER BY advertiser_id, partner_id = '', payout_at_risk DESC, partner_id, currency",
            {"adv": advertiser} if advertiser else None,
        )
        return [PartnerSummary(*row) for row in rows]

    # -- what was tracked -------------------------------------------------------------

    def tracked(
        self, advertiser: str, orders: Sequence[SaleOrder], actions: Sequence[str]
    ) -> list[TrackedConversion]:
        """The advertiser's conversions of ``actions`` around the export's days, and any
        whose txid is one of its order ids (asked for in chunks: a statement stays far
        below ClickHouse's query size limit however long the export)."""
        start, end = period(orders)
        campaigns = [k for k, c in self.registry.campaigns.items() if c.advertiser == advertiser]
        scope = {"adv": advertiser, "campaigns": campaigns, "actions": list(actions)}
        credited = {
            row[0]: row
            for row in self._credited(
                "conversion_ts >= {start:DateTime64(3)} AND conversion_ts < {end:DateTime64(3)}",
                {
                    **scope,
                    "start": (start - MARGIN).replace(tzinfo=None),
                    "end": (end + MARGIN).replace(tzinfo=None),
                },
            )
        }
        for chunk in _chunks(sorted({o.order_id for o in orders})):
            for row in self._credited("txid IN {ids:Array(String)}", {**scope, "ids": chunk}):
                credited.setdefault(row[0], row)
        if not credited:
            return []
        reports: dict[tuple[str, str, str], list[tuple[Any, ...]]] = {}
        txids = sorted({r[1] for r in credited.values() if r[1]})
        plain = sorted(key for key, r in credited.items() if not r[1])
        for chunk in _chunks(txids):
            self._reports(reports, "txid IN {ids:Array(String)}", advertiser, chunk)
        for chunk in _chunks(plain):
            where = "txid = '' AND conversion_id IN {ids:Array(String)}"
            self._reports(reports, where, advertiser, chunk)
        out = []
        for conversion_id in sorted(credited):
            row = credited[conversion_id]
            txid, action = row[1], row[2]
            key = ("tx", action, txid) if txid else ("id", "", conversion_id)
            out.append(_tracked(row, reports.get(key, [])))
        return out

    def _credited(self, where: str, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Per conversion of the advertiser: its credited rows as they stand now."""
        db = self.store.database
        return self.store.rows(
            "SELECT conversion_id, any(txid), any(action), min(conversion_ts), "
            "argMax(status, version), sum(toFloat64(revenue)), sum(toFloat64(payout)), "
            "any(currency), argMax(partner_id, weight), argMax(campaign_id, weight) "
            f"FROM {db}.attributed_latest "
            "WHERE (advertiser_id = {adv:String} OR campaign_id IN {campaigns:Array(String)}) "
            f"AND action IN {{actions:Array(String)}} AND {where} "
            "GROUP BY conversion_id",
            parameters,
        )

    def _reports(
        self,
        into: dict[tuple[str, str, str], list[tuple[Any, ...]]],
        where: str,
        advertiser: str,
        ids: list[str],
    ) -> None:
        """The raw reports (postbacks, earlier imports' updates) of those conversions, by
        the identity the user stage gives them: txid and action, else the conversion id."""
        db = self.store.database
        rows = self.store.rows(
            "SELECT txid, action, conversion_id, ts, event_id, status, toFloat64(revenue), "
            "click_id, user_id, advertiser_id, campaign_id, partner_id "
            f"FROM {db}.conversions WHERE {where} AND advertiser_id IN ('', {{adv:String}})",
            {"ids": ids, "adv": advertiser},
        )
        for row in rows:
            key = ("tx", row[1], row[0]) if row[0] else ("id", "", row[2])
            into.setdefault(key, []).append(row)


def _chunks(values: list[str], size: int = CHUNK) -> list[list[str]]:
    return [values[n : n + size] for n in range(0, len(values), size)]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _tracked(credited: tuple[Any, ...], reports: list[tuple[Any, ...]]) -> TrackedConversion:
    """One conversion from its credited rows and its raw reports (postbacks first,
    the updates earlier imports sent told apart by their event ids)."""
    conversion_id, txid, action, ts, status, revenue, payout, currency, partner, campaign = credited
    own = sorted(
        (r for r in reports if not str(r[4]).startswith(UPDATE_PREFIX)), key=lambda r: (r[3], r[4])
    )
    first = own[0] if own else None
    tracked_status = own[-1][5] if own else status
    paid = [r for r in own if r[6] > 0]
    tracked_revenue = paid[-1][6] if paid else (0.0 if own else revenue)
    latest = max([_utc(r[3]) for r in reports] or [_utc(ts)])

    def first_of(index: int) -> str | None:
        return (str(first[index]) or None) if first is not None else None

    return TrackedConversion(
        conversion_id=conversion_id,
        txid=txid or None,
        action=action,
        ts=_utc(ts),
        latest_ts=latest,
        advertiser_id=first_of(9),
        campaign_id=first_of(10),
        partner_id=first_of(11),
        click_id=first_of(7),
        user_id=first_of(8),
        credited_campaign_id=campaign or None,
        credited_partner_id=partner or None,
        currency=currency,
        status=status,
        revenue=max(revenue, 0.0),
        payout=max(payout, 0.0),
        tracked_status=tracked_status,
        tracked_revenue=max(tracked_revenue, 0.0),
    )
