"""Clean traffic with fraud planted in it, and the verdicts and figures it must give.

Shared by the embedded tests (flagged traffic in the rollups and the analyst views)
and the Faust test (both runtimes give the same verdicts). ``p-good`` is honest;
``p-bad`` sends a bot, a datacenter host, an injected install, a forged click id, a
replayed postback, a click flood (and an install stolen through it) and a farm
conversion from another country. Click ids are signed with the registry's key, from a
seeded random source, so the events are the same on every run. Expected values are
worked out by hand from the events, not by running the processors.

p-bad sends 19 judged events, under ``fraud.min_partner_events`` (20 here), so no
partner-level verdict comes out: those are judged per event-time window, and which
window an event read late joins depends on the order a runtime reads its input.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from clicktrail.processors.signing import ClickIdSigner

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
KEY = "fraud-scenario-click-key-0123456789"
BROWSER = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/125.0 Mobile Safari/537.36"
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CLICK_COST = 0.25
FLOOD = 8

REGISTRY: dict[str, Any] = {
    "security": {"click_id_key": KEY},
    "advertisers": {"acme": {"postback_secret": "acme-secret-0123456789"}},
    "campaigns": {
        "app": {
            "advertiser": "acme",
            "landing_url": "https://acme.example/?c={click_id}",
            "attribution": {"conversion_grace_seconds": 600},
        },
    },
    "actions": {"install": {"min_ctit_seconds": 10}, "purchase": {"txid_policy": "update"}},
    "fraud": {"datacenter_cidrs": ["203.0.113.0/24"], "min_partner_events": 20},
}


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def click_id(n: int, seconds: float) -> str:
    """A click id the edge could have minted: signed, random part seeded by ``n``."""
    seeded = ClickIdSigner(KEY, lambda size: hashlib.sha256(f"click-{n}".encode()).digest()[:size])
    return seeded.mint(int((T0 + timedelta(seconds=seconds)).timestamp() * 1000))


def _click(name: str, n: int, seconds: float, partner: str, **user: Any) -> dict[str, Any]:
    context = {
        "user_id": f"u-{name}",
        "ip": f"81.2.{n}.10",
        "user_agent": BROWSER,
        "country": "DE",
        "device_type": "mobile",
    }
    return {
        "type": "click",
        "event_id": f"c-{name}",
        "ts": ts(seconds),
        "click_id": click_id(n, seconds),
        "campaign_id": "app",
        "partner_id": partner,
        "channel": "affiliate",
        "cost": CLICK_COST,
        "user": {**context, **user},
    }


def _conversion(
    name: str, seconds: float, click: dict[str, Any] | None, **fields: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "conversion",
        "event_id": f"v-{name}",
        "ts": ts(seconds),
        "campaign_id": "app",
        "advertiser_id": "acme",
        "action": "install",
        "revenue": 0.0,
        "payout": 2.0,
        "txid": f"T-{name}",
    }
    if click is not None:
        event["click_id"] = click["click_id"]
        event["partner_id"] = click["partner_id"]
    return {**event, **fields}


def _clean() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Twelve people on p-good, four minutes apart, each from a network of their own;
    four install minutes later, one buys with a cookie only and is approved later."""
    clicks = [_click(f"good{i}", i, i * 240, "p-good") for i in range(12)]
    conversions = [_conversion(f"good{i}", i * 240 + 300, clicks[i]) for i in (0, 3, 6, 9)]
    buy = {"action": "purchase", "revenue": 40.0, "payout": 4.0, "txid": "T-good-buy"}
    conversions += [
        _conversion("good1-buy", 240 + 900, None, user={"user_id": "u-good1"}, **buy),
        _conversion("good1-approved", 9000, None, user={"user_id": "u-good1"},
                    status="approved", **buy),
    ]  # fmt: skip
    return clicks, conversions


def _planted() -> list[dict[str, Any]]:
    bot = _click("bot", 100, 150, "p-bad", user_agent=CRAWLER)
    host = _click("dc", 101, 400, "p-bad", ip="203.0.113.77")
    injected = _click("inject", 102, 1000, "p-bad")
    farm = _click("farm", 103, 1300, "p-bad")
    replayed = _click("replay", 104, 1500, "p-bad")
    flood = [_click(f"flood{i}", 110 + i, 2000 + 3 * i, "p-bad", ip="198.51.100.23")
             for i in range(FLOOD)]  # fmt: skip
    minted = click_id(120, 2500)
    forged_id = minted[:-12] + "A" * 12  # well formed, but the signature is not ours
    assert forged_id != minted
    purchase = {"action": "purchase", "revenue": 50.0, "payout": 5.0, "txid": "T-replay"}
    return [
        bot,
        _conversion("bot", 270, bot),
        host,
        injected,
        _conversion("inject", 1004, injected),
        farm,
        _conversion("farm", 1900, farm, user={"country": "VN"}),
        replayed,
        _conversion("replay", 2100, replayed, **purchase),
        *flood,
        _conversion("forged", 2600, None, click_id=forged_id, partner_id="p-bad"),
        _conversion("replay-again", 2700, replayed, **purchase),
        _conversion("inject-approved", 4600, injected, status="approved", txid="T-inject"),
        _conversion("stolen", 9200, flood[2]),
    ]


def events() -> list[dict[str, Any]]:
    """All events in event-time order, then a late clean click so every wait is over."""
    clicks, conversions = _clean()
    stream = sorted([*clicks, *conversions, *_planted()], key=lambda e: e["ts"])
    return [*stream, _click("late", 50, 4 * 3600, "p-good")]


def subject_ids() -> dict[str, str]:
    """What verdicts name: a click by its click id, a conversion by its event id."""
    return {
        e["event_id"]: e["click_id"] if e["type"] == "click" else e["event_id"] for e in events()
    }


# (subject event, action, reasons), by hand from the rules:
# the crawler's click and its install; the datacenter host; the install 4 s after its click
# (and the click, and the click's later approval, which inherits the click's reason); the
# farm converting from VN after a click from DE (one reason of weight 0.6: suspicious);
# the purchase postback sent again under another event id; a /24 clicking eight times in 21 s
# (the sixth click crosses 5 per minute and convicts the five before it) and the install
# stolen through one of those clicks; a click id whose signature fails.
EXPECTED_VERDICTS = sorted(
    [
        ("c-bot", "reject", ["bot_user_agent"]),
        ("v-bot", "reject", ["bot_user_agent"]),
        ("c-dc", "reject", ["datacenter_ip"]),
        ("c-inject", "reject", ["ctit_too_short"]),
        ("v-inject", "reject", ["ctit_too_short"]),
        ("v-inject-approved", "reject", ["ctit_too_short"]),
        ("c-farm", "suspicious", ["geo_mismatch"]),
        ("v-farm", "suspicious", ["geo_mismatch"]),
        ("v-replay-again", "reject", ["replayed_postback"]),
        *((f"c-flood{i}", "reject", ["click_flood_ip"]) for i in range(FLOOD)),
        ("v-stolen", "reject", ["click_flood_ip"]),
        ("v-forged", "reject", ["forged_click_id"]),
    ]
)
# Partner figures with every conversion counted (mark) and with the fraud-rejected ones
# left out (exclude): partner -> (clicks, conversions, approved, spend, revenue, payout).
# p-bad: six conversions (bot, injected, farm, replayed purchase, forged, stolen; the
# replay and the approval are versions of earlier ones), four of them rejected with
# payout 2 each, the injected one approved; the farm's suspicious install stays in.
PARTNERS_MARKED = {
    "p-good": (13, 5.0, 1.0, 3.25, 40.0, 12.0),
    "p-bad": (13, 6.0, 1.0, 3.25, 50.0, 15.0),
}
PARTNERS_EXCLUDED = {
    "p-good": PARTNERS_MARKED["p-good"],
    "p-bad": (13, 2.0, 0.0, 3.25, 50.0, 7.0),
}
# p-bad's fraud-rejected share: (conversions, approved, revenue, payout), suspicious
REJECTED = {"p-good": ((0.0, 0.0, 0.0, 0.0), 0.0), "p-bad": ((4.0, 1.0, 0.0, 8.0), 1.0)}


def verdict_rows(store: Any) -> list[tuple[Any, ...]]:
    """Every verdict row as (subject type, subject id, partner, action, reasons, score)."""
    rows = store.rows(
        "SELECT subject_type, subject_id, partner_id, action, reasons, score "
        f"FROM {store.database}.fraud_verdicts"
    )
    return sorted((*r[:4], list(r[4]), round(r[5], 6)) for r in rows)


def figures(store: Any) -> dict[str, Any]:
    """What the runtimes must agree on: the verdicts, each conversion's latest verdict on
    its rows, and the partner figures with the rejected share beside them."""
    db = store.database
    marks = store.rows(
        f"SELECT conversion_id, status, fraud_action, fraud_reason FROM {db}.attributed_latest"
    )
    partners = store.rows(
        "SELECT partner_id, clicks, conversions, approved, toFloat64(revenue), "
        "toFloat64(payout), fraud_rejected_conversions, fraud_rejected_approved, "
        "toFloat64(fraud_rejected_payout), fraud_suspicious_conversions "
        f"FROM {db}.partner_report"
    )
    return {
        "verdicts": [list(r) for r in verdict_rows(store)],
        "marks": sorted(list(r) for r in marks),
        "partners": sorted([r[0], *(round(v, 6) for v in r[1:])] for r in partners),
    }


def report(dsn: str, database: str = "clicktrail") -> dict[str, Any]:
    """``figures`` of one store, read in a process of its own (chDB: one per directory)."""
    from clicktrail.sinks.store import Store

    return figures(Store(dsn, database))
