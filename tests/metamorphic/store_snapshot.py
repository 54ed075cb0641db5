"""What a store says, as keyed rows that two deliveries of the same events can be compared by.

Each table is read the way an analyst reads it (the latest version, FINAL, sums) and
reduced to what the events determine. Left out everywhere, because they legitimately
depend on delivery:

- ``src`` / ``src_offset``: the message that produced a row (file and line, partition and
  offset): another order puts the same row on another line.
- ``received_at`` (raw tables, dead letters), ``ts`` of alerts: wall-clock times of writing.
- ``version`` and the ``previous_*`` / ``original_status`` columns of attributed
  conversions: the history of how the answer was reached (a conversion first settled as
  an orphan and re-credited when its click came has more versions than one credited at
  once), not the answer.

Tables not read at all: ``alerts`` (when an alert fires, and the counts it quotes, are
about the moment it fired, in delivery), ``click_scores`` and ``model_quality`` (online
models score each click with what they learned before it, which is delivery order by
design), ``report_settings`` (the registry, not the events).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from clicktrail.sinks.store import Store

FLOAT_DIGITS = 9
"""Weighted sums (``conversions``, ``approved``) add floats in the order rows were merged;
beyond nine digits that is noise, not a difference."""

Key = tuple[Any, ...]
Rows = dict[Key, tuple[Any, ...]]
Snapshot = dict[str, Rows]


@dataclass(frozen=True, slots=True)
class Table:
    """One comparable set: ``sql`` selects the ``keys`` columns then the ``values`` ones."""

    name: str
    keys: tuple[str, ...]
    values: tuple[str, ...]
    sql: str


ATTRIBUTED = Table(
    "attributed",
    ("conversion_id", "model", "click_id"),
    (
        "action", "touch", "impression_id", "campaign_id", "partner_id", "channel",
        "status", "revenue", "payout", "currency", "weight", "fraud_action", "fraud_reason",
        "conversion_ts", "txid",
    ),
    # A row whose latest version carries no weight credits nothing: that is how a credit is
    # taken back in a ReplacingMergeTree table, and whether one was given first and taken
    # back later depends on delivery. The rollups below still have to agree.
    """
    SELECT conversion_id, model, click_id, action, touch, impression_id, campaign_id,
           partner_id, channel, status, revenue, payout, currency, weight, fraud_action,
           fraud_reason, conversion_ts, txid
    FROM {db}.attributed_latest
    WHERE weight != 0
    """,
)  # fmt: skip

VERDICTS = Table(
    "verdicts",
    ("subject_type", "subject_id", "window"),
    ("partner_id", "action", "reasons"),
    # The latest verdict per subject is the one that counts (processors/fraud/verdicts.py):
    # latest in processing order: the order of the replayed sources (given to `snapshot`),
    # then src_offset within one (what the end of input settles is written under the last
    # source, after its last line); a tie within one message goes to the verdict with more
    # reasons. A partner has one verdict per closed window, keyed by the window's end
    # (``ts``). A click's or conversion's ``ts`` is not compared: a flood verdict carries
    # the time of the click that completed the burst, whichever of them arrived last. A
    # latest verdict without reasons (an orphan's, revised when its click came) is no
    # verdict: the subject is clean, as if it had never been judged otherwise.
    """
    SELECT subject_type, subject_id,
           if(subject_type = 'partner', toString(ts), '') AS window,
           argMax(partner_id, (indexOf({sources}, src), src_offset, length(reasons))),
           argMax(action, (indexOf({sources}, src), src_offset, length(reasons))),
           argMax(arraySort(reasons), (indexOf({sources}, src), src_offset, length(reasons)))
    FROM {db}.fraud_verdicts
    GROUP BY subject_type, subject_id, window
    HAVING notEmpty(argMax(reasons, (indexOf({sources}, src), src_offset, length(reasons))))
    """,
)

CONFLICTS = Table(
    "conflicts",
    ("brand_id", "offender_kind", "offender_id", "keyword"),
    (
        "impressions",
        "clicks",
        "insight_rows",
        "first_seen",
        "last_seen",
        "head_to_head",
        "est_cpc_inflation",
        "cost_impact",
        "severity",
    ),
    # Counts, the first and last evidence (a min and a max of event times) and what the
    # CPC ledger made of the auctions: its sums are exact and every auction's share is
    # re-counted when a late ad or click of it arrives, so they end the same. Not
    # compared: ``signal`` (the signal of the first hit to arrive), ``evidence_ids`` (the
    # first 100 to arrive), ``version`` (how often it was emitted).
    """
    SELECT brand_id, offender_kind, offender_id, if(empty(keywords), '', keywords[1]),
           impressions, clicks, insight_rows, first_seen, last_seen, head_to_head,
           est_cpc_inflation, cost_impact, severity
    FROM {db}.brand_conflicts FINAL
    """,
)

AGGREGATES = Table(
    "aggregates",
    ("campaign_id", "partner_id", "action"),
    (
        "impressions", "clicks", "cost", "conversions", "approved", "revenue", "payout",
        "fraud_rejected_conversions", "fraud_rejected_approved", "fraud_rejected_revenue",
        "fraud_rejected_payout", "fraud_suspicious_conversions",
    ),
    # Summed over hours, countries and devices. A group whose figures add up to nothing
    # (a version and its correction) reports nothing, whichever rows produced it.
    """
    SELECT campaign_id, partner_id, action,
           sum(impressions) AS i, sum(clicks) AS c, sum(cost) AS co,
           sum(conversions) AS cv, sum(approved) AS ap, sum(revenue) AS r, sum(payout) AS p,
           sum(fraud_rejected_conversions) AS fc, sum(fraud_rejected_approved) AS fa,
           sum(fraud_rejected_revenue) AS fr, sum(fraud_rejected_payout) AS fp,
           sum(fraud_suspicious_conversions) AS fs
    FROM {db}.agg_hourly
    GROUP BY campaign_id, partner_id, action
    HAVING i != 0 OR c != 0 OR co != 0 OR abs(cv) > 1e-9 OR abs(ap) > 1e-9 OR r != 0
        OR p != 0 OR abs(fc) > 1e-9 OR abs(fa) > 1e-9 OR fr != 0 OR fp != 0
        OR abs(fs) > 1e-9
    """,
)  # fmt: skip

EVENTS = Table(
    "events",
    ("table",),
    ("rows", "event_ids"),
    # Each accepted event once, however often it was delivered.
    """
    SELECT 'impressions', count(), uniqExact(event_id) FROM {db}.impressions
    UNION ALL SELECT 'clicks', count(), uniqExact(event_id) FROM {db}.clicks
    UNION ALL SELECT 'conversions', count(), uniqExact(event_id) FROM {db}.conversions
    """,
)

DEAD_LETTERS = Table(
    "dead_letters",
    ("reason", "event_type"),
    ("count",),
    "SELECT reason, event_type, count() FROM {db}.dead_letters GROUP BY reason, event_type",
)

TABLES = (ATTRIBUTED, VERDICTS, CONFLICTS, AGGREGATES, EVENTS, DEAD_LETTERS)


def _value(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, FLOAT_DIGITS) + 0.0  # no -0.0
    if isinstance(value, list | tuple):
        return tuple(_value(v) for v in value)
    if isinstance(value, Decimal):
        return value.normalize() if value else Decimal(0)
    return value


def read(store: Store, table: Table, sources: Sequence[str]) -> Rows:
    rows: Rows = {}
    width = len(table.keys)
    if any("'" in s or "\\" in s for s in sources):
        raise ValueError(f"not a source id: {sources}")
    listed = "[" + ", ".join(f"'{s}'" for s in sources) + "]"
    for row in store.rows(table.sql.format(db=store.database, sources=listed)):
        values = tuple(_value(v) for v in row)
        key = values[:width]
        if key in rows:
            raise AssertionError(f"{table.name}: key {key} twice; the snapshot query is wrong")
        rows[key] = values[width:]
    return rows


def snapshot(store: Store, sources: Sequence[str]) -> Snapshot:
    """``sources``: the ``src`` of each replayed input, in the order they were replayed
    (``clicktrail.runtime.replay.source_id``); it orders the verdicts."""
    return {table.name: read(store, table, sources) for table in TABLES}


@dataclass(frozen=True, slots=True)
class TableDiff:
    table: Table
    missing: list[tuple[Key, tuple[Any, ...]]]
    extra: list[tuple[Key, tuple[Any, ...]]]
    changed: list[tuple[Key, tuple[Any, ...], tuple[Any, ...]]]
    expected_rows: int

    def counts(self) -> str:
        return (
            f"{self.table.name}: {len(self.missing)} missing, {len(self.extra)} extra, "
            f"{len(self.changed)} changed of {self.expected_rows}"
        )


def diff(expected: Snapshot, actual: Snapshot) -> list[TableDiff]:
    """Tables that differ, with their rows sorted by key."""
    out = []
    for table in TABLES:
        want, got = expected[table.name], actual[table.name]
        if want == got:
            continue
        out.append(
            TableDiff(
                table,
                missing=sorted(((k, want[k]) for k in want.keys() - got.keys()), key=_order),
                extra=sorted(((k, got[k]) for k in got.keys() - want.keys()), key=_order),
                changed=sorted(
                    ((k, want[k], got[k]) for k in want.keys() & got.keys() if want[k] != got[k]),
                    key=_order,
                ),
                expected_rows=len(want),
            )
        )
    return out


def _order(item: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(map(str, item[0]))


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    return repr(value) if isinstance(value, str) else str(value)


def _row(table: Table, key: Key, values: tuple[Any, ...]) -> str:
    keys = ", ".join(_show(k) for k in key)
    fields = ", ".join(f"{c}={_show(v)}" for c, v in zip(table.values, values, strict=True))
    return f"({keys}) {fields}"


def _change(table: Table, key: Key, want: tuple[Any, ...], got: tuple[Any, ...]) -> str:
    keys = ", ".join(_show(k) for k in key)
    fields = ", ".join(
        f"{c}: {_show(w)} -> {_show(g)}"
        for c, w, g in zip(table.values, want, got, strict=True)
        if w != g
    )
    return f"({keys}) {fields}"


def describe(diffs: list[TableDiff], limit: int = 3) -> str:
    """Counts per table, then the first ``limit`` rows of each kind of difference."""
    lines = [d.counts() for d in diffs]
    for d in diffs:
        for key, values in d.missing[:limit]:
            lines.append(f"  {d.table.name} missing  {_row(d.table, key, values)}")
        for key, values in d.extra[:limit]:
            lines.append(f"  {d.table.name} extra    {_row(d.table, key, values)}")
        for key, want, got in d.changed[:limit]:
            lines.append(f"  {d.table.name} changed  {_change(d.table, key, want, got)}")
    return "\n".join(lines)


TOLERATED = """Two differences are tolerated, and only these:

- a partner window's ``partner_anomaly`` reason (a weak signal: alone it is ``ok``). It is
  an online model's score, which depends on the windows it learned before; a window one of
  whose events was judged hours after its time (a verdict revised when a later click was
  convicted) closes later than in time order, so the model meets the windows in another
  order. Every other reason of every partner window must agree.
- the ``conversion_id`` of a transaction reported twice under two event ids (``txid`` policy
  ``update``): it is the id of the report read first, and a copy delivered ahead of its
  time is read first. Its credit, status, amounts and rollups must agree, and the
  ``txid`` is the same."""


def tolerated(diffs: list[TableDiff]) -> list[TableDiff]:
    """``diffs`` without what :data:`TOLERATED` allows; only tables still differing."""
    out = []
    for found in diffs:
        left = found
        if found.table.name == "verdicts":
            left = replace(
                found,
                missing=[(k, v) for k, v in found.missing if not _anomaly_only(k, v)],
                extra=[(k, v) for k, v in found.extra if not _anomaly_only(k, v)],
                changed=[c for c in found.changed if not _same_but_anomaly(*c)],
            )
        elif found.table.name == "attributed":
            left = _relabelled_transactions(found)
        if left.missing or left.extra or left.changed:
            out.append(left)
    return out


def _without_anomaly(values: tuple[Any, ...]) -> tuple[Any, ...]:
    partner, action, reasons = values
    return partner, action, tuple(r for r in reasons if r != "partner_anomaly")


def _anomaly_only(key: Key, values: tuple[Any, ...]) -> bool:
    return key[0] == "partner" and _without_anomaly(values)[1:] == ("ok", ())


def _same_but_anomaly(key: Key, want: tuple[Any, ...], got: tuple[Any, ...]) -> bool:
    return key[0] == "partner" and _without_anomaly(want) == _without_anomaly(got)


def _relabelled_transactions(d: TableDiff) -> TableDiff:
    """Missing and extra rows of one transaction (same txid, same credit) cancel out."""
    txid = d.table.values.index("txid")
    when = d.table.values.index("conversion_ts")

    def credit(key: Key, values: tuple[Any, ...]) -> tuple[Any, ...]:
        kept = tuple(v for i, v in enumerate(values) if i != when)
        return (*key[1:], *kept)

    extra = list(d.extra)
    missing = []
    for key, values in d.missing:
        twin = next(
            (
                i
                for i, (k, v) in enumerate(extra)
                if values[txid] and credit(k, v) == credit(key, values)
            ),
            None,
        )
        if twin is None:
            missing.append((key, values))
        else:
            extra.pop(twin)
    return replace(d, missing=missing, extra=extra)
