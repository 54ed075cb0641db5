"""One definition of flagged (migration 010) in a real ClickHouse: a partner rejected in an
hour takes its suspicious conversions of that hour to rejected, and every view — the
partner report, the funnel, the model comparison, ``clicktrail fraud`` — counts the same."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clicktrail.cli.commands import FRAUD_VIEW
from clicktrail.sinks.report_settings import write_report_settings
from clicktrail.sinks.store import Store

T = datetime(2026, 3, 1, tzinfo=UTC)


def at(hour: int, minute: int) -> datetime:
    return T.replace(hour=hour, minute=minute)


def conversion(conversion_id: str, ts: datetime, fraud_action: str, **extra: Any) -> dict[str, Any]:
    return {
        "conversion_id": conversion_id,
        "action": "install",
        "status": "approved",
        "payout": 2,
        "currency": "EUR",
        "conversion_ts": ts,
        "touch": "click",
        "partner_id": "p",
        "model": "last_click",
        "weight": 1.0,
        "fraud_action": fraud_action,
        "version": 1,
        "previous_status": "",
        "previous_payout": 0,
        "src": "s",
        "src_offset": int(conversion_id[1:]),
        **extra,
    }


def seed(store: Store, window_seconds: float = 3600) -> None:
    rows = [
        conversion("v1", at(10, 30), "suspicious"),  # in the hour p was rejected: rejected
        conversion("v2", at(10, 40), "ok"),
        conversion("v3", at(12, 30), "suspicious"),  # p not rejected then: stays suspicious
        conversion("v4", at(12, 40), "reject"),
        conversion("v5", at(12, 50), "ok"),
    ]
    store.insert("attributed_conversions", [tuple(r.values()) for r in rows], list(rows[0]))
    verdict = ("w1", at(11, 0), "partner", "p", "p", "", 0.9, ["partner_fraud_share"], "reject")
    store.insert(
        "fraud_verdicts",
        [(*verdict, "v1", "s", 1)],
        [
            "verdict_id", "ts", "subject_type", "subject_id", "partner_id", "campaign_id",
            "score", "reasons", "action", "rule_version", "src", "src_offset",
        ],
    )  # fmt: skip
    write_report_settings(store, {"fraud.window_seconds": str(window_seconds)})


def report(store: Store) -> tuple[Any, ...]:
    return store.rows(
        "SELECT conversions, fraud_rejected_conversions, fraud_escalated_conversions, "
        "fraud_suspicious_conversions, flagged_conversions, toFloat64(fraud_rejected_payout) "
        f"FROM {store.database}.partner_report"
    )[0]


def test_a_rejected_partner_hour_escalates_its_suspicious_conversions(store: Store) -> None:
    seed(store)
    assert report(store) == (5.0, 2.0, 1.0, 1.0, 3.0, 4.0)
    funnel = store.rows(
        f"SELECT fraud_rejected_conversions, fraud_suspicious_conversions FROM "
        f"{store.database}.funnel_daily"
    )
    assert funnel == [(2.0, 1.0)]


def test_every_view_agrees_on_what_is_flagged_and_excluded(store: Store) -> None:
    seed(store)
    write_report_settings(store, {"fraud.flagged_traffic": "exclude"})
    db = store.database
    conversions, rejected, *_ = report(store)
    assert (conversions, rejected) == (3.0, 2.0)  # 5 minus the rejected two
    assert store.rows(f"SELECT sum(conversions) FROM {db}.funnel_daily") == [(3.0,)]
    compared = store.rows(f"SELECT sum(conversions) FROM {db}.attribution_model_comparison")
    assert compared == [(3.0,)]
    view = store.read_only(FRAUD_VIEW.format(db=db, limit=10), "tsv").decode()
    header, row = view.split("\n")[:2]
    fraud = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert (fraud["flagged_conversions"], fraud["rejected"], fraud["suspicious"]) == ("3", "2", "1")


def test_a_longer_partner_window_escalates_every_hour_it_covers(store: Store) -> None:
    seed(store, window_seconds=3 * 3600)  # the verdict at 11:00 covers 08:00-11:00
    hours = store.rows(f"SELECT hour FROM {store.database}.partner_rejected_hours ORDER BY hour")
    assert [h[0].hour for h in hours] == [8, 9, 10]
    assert report(store)[1:4] == (2.0, 1.0, 1.0)
