"""A scripted stream with hand-computed outcomes, shared by the embedded and Faust tests.

Two partners send clicks for one campaign; conversions arrive by click id, by
user only, before their click, for a click that never comes, as a status
update and as a duplicate delivery. Every expected value below is worked out
by hand from the events, not by running the processors.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

REGISTRY: dict[str, Any] = {
    "advertisers": {"acme": {"postback_secret": "acme-secret-0123456789"}},
    "campaigns": {
        "cmp": {
            "advertiser": "acme",
            "landing_url": "https://acme.example/?c={click_id}",
            "attribution": {"conversion_grace_seconds": 600},
        },
    },
    "actions": {"purchase": {"txid_policy": "update"}, "lead": {"txid_policy": "ignore"}},
    "security": {"click_id_key": "attribution-scenario-click-key-0123"},
}


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _click(n: int, seconds: float, partner: str, user: str, country: str) -> dict[str, Any]:
    return {
        "type": "click",
        "event_id": f"c{n}",
        "ts": ts(seconds),
        "click_id": f"k{n}",
        "campaign_id": "cmp",
        "partner_id": partner,
        "channel": "affiliate",
        "cost": 0.5,
        "user": {"user_id": user, "country": country, "device_type": "mobile"},
    }


V1: dict[str, Any] = {
    "type": "conversion",
    "event_id": "v1",
    "ts": ts(310),
    "click_id": "k1",
    "txid": "T1",
    "action": "purchase",
    "revenue": 100.0,
    "payout": 10.0,
}

EVENTS: list[dict[str, Any]] = [
    {
        "type": "impression",
        "event_id": "i1",
        "ts": ts(0),
        "impression_id": "m1",
        "campaign_id": "cmp",
        "partner_id": "pA",
        "channel": "affiliate",
        "cost": 0.01,
        "user": {"user_id": "u1", "country": "DE", "device_type": "mobile"},
    },
    _click(1, 10, "pA", "u1", "DE"),
    _click(2, 20, "pB", "u2", "FR"),
    _click(3, 30, "pB", "u3", "FR"),
    # u1 converts by postback click id, 5 minutes after the click
    V1,
    # a conversion that arrives before its click (k4 comes next)
    {
        "type": "conversion",
        "event_id": "v2",
        "ts": ts(400),
        "click_id": "k4",
        "txid": "T2",
        "action": "purchase",
        "revenue": 50.0,
        "payout": 5.0,
    },
    _click(4, 380, "pA", "u4", "DE"),
    # u2 converts with a cookie only: matched to their click k2
    {
        "type": "conversion",
        "event_id": "v3",
        "ts": ts(1020),
        "action": "lead",
        "user": {"user_id": "u2"},
    },
    # a postback for a click that never arrives: an orphan after the grace period
    {
        "type": "conversion",
        "event_id": "v4",
        "ts": ts(1100),
        "click_id": "k-missing",
        "action": "lead",
    },
    # the duplicate delivery of v1 (the very same payload) is dropped
    V1,
    # T1 is approved later with a corrected amount
    {
        "type": "conversion",
        "event_id": "v5",
        "ts": ts(3700),
        "click_id": "k1",
        "txid": "T1",
        "action": "purchase",
        "status": "approved",
        "revenue": 90.0,
        "payout": 9.0,
    },
    _click(5, 3800, "pB", "u5", "FR"),
]

FILLER = 2_000  # late impressions on many keys: every partition's time moves past the grace


def filler(count: int = FILLER) -> list[dict[str, Any]]:
    step = 3599 / count  # all inside hour 2
    return [
        {
            "type": "impression",
            "event_id": f"f{n}",
            "ts": ts(7200 + n * step),
            "impression_id": f"fm{n}",
            "campaign_id": "cmp",
            "partner_id": "pF",
            "channel": "display",
        }
        for n in range(count)
    ]


# Latest state (attributed_latest):
# (conversion_id, version, status, original_status, touch, click_id, partner, ctit, revenue)
EXPECTED_ATTRIBUTED = sorted(
    [
        ("v2", 1, "pending", "pending", "click", "k4", "pA", 20.0, 50.0),
        ("v3", 1, "pending", "pending", "click", "k2", "pB", 1000.0, 0.0),
        ("v4", 1, "pending", "pending", "none", "", "", None, 0.0),
        ("v1", 2, "approved", "pending", "click", "k1", "pA", 300.0, 90.0),
    ]
)

# hour offset, partner, action -> (impressions, clicks, conversions, approved, revenue, cost)
EXPECTED_AGG = {
    (0, "pA", ""): (1, 2, 0.0, 0.0, 0.0, 1.01),
    (0, "pB", ""): (0, 2, 0.0, 0.0, 0.0, 1.0),
    # T1's approval and corrected amount count in T1's own hour (conversion time)
    (0, "pA", "purchase"): (0, 0, 2.0, 1.0, 140.0, 0.0),
    (0, "pB", "lead"): (0, 0, 1.0, 0.0, 0.0, 0.0),
    (0, "", "lead"): (0, 0, 1.0, 0.0, 0.0, 0.0),
    (1, "pB", ""): (0, 1, 0.0, 0.0, 0.0, 0.5),
}


def expected_agg(fillers: int = FILLER) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Filler impressions all fall in hour 2 (7200 s to 10 799 s)."""
    return {**EXPECTED_AGG, (2, "pF", ""): (fillers, 0, 0.0, 0.0, 0.0, 0.0)}


def expected_raw(fillers: int = FILLER) -> dict[str, int]:
    # the duplicate delivery of v1 is dropped
    return {"impressions": 1 + fillers, "clicks": 5, "conversions": 5}


def report(dsn: str, database: str = "clicktrail") -> dict[str, Any]:
    """Everything a test compares, read from one store (run in its own process: chDB)."""
    from clicktrail.sinks.store import Store

    store = Store(dsn, database)
    return {
        "raw": {
            t: store.rows(f"SELECT count() FROM {database}.{t}")[0][0]
            for t in ("impressions", "clicks", "conversions")
        },
        "attributed": attributed_rows(store),
        "agg": {"|".join(map(str, k)): v for k, v in agg_rows(store).items()},
        "dead_letters": sorted(
            r[0] for r in store.rows(f"SELECT reason FROM {database}.dead_letters")
        ),
    }


def attributed_rows(store: Any) -> list[tuple[Any, ...]]:
    rows = store.rows(
        "SELECT conversion_id, version, status, original_status, touch, click_id, partner_id, "
        f"ctit_seconds, toFloat64(revenue) FROM {store.database}.attributed_latest"
    )
    return sorted(tuple(r) for r in rows)


def agg_rows(store: Any) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows = store.rows(
        "SELECT toUInt32((hour - toDateTime('2026-03-01 10:00:00', 'UTC')) / 3600) AS h, "
        "partner_id, action, sum(impressions), sum(clicks), sum(conversions), sum(approved), "
        f"toFloat64(sum(revenue)), round(toFloat64(sum(cost)), 6) FROM {store.database}.agg_hourly "
        "GROUP BY h, partner_id, action"
    )
    return {(int(r[0]), r[1], r[2]): tuple(r[3:]) for r in rows}
