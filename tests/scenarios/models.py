"""A scripted stream for the per-action models, shared by the embedded and Faust tests.

A scripted stream with hand-worked labels. Advertiser ``acme`` pays for ``lead``
(decided 1 hour after the click) and ``purchase`` (decided when the 1-day click
window closes):

- k1 buys 100 s after its click: purchase positive; lead negative.
- k2 leads, and the lead is updated later: lead positive, learned once; purchase negative.
- k3 is a headless browser: rejected as a bot, so its purchase teaches nothing.
- k4 does nothing: negative for both.
- k5 leads two hours later, after its lead label closed: both negative, the lead unmatched.

So each action learns 4 examples with 1 positive.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from clicktrail.config import Registry, parse_registry
from clicktrail.processors.signing import ClickIdSigner

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
HEADLESS = "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/126.0 Safari/537.36"


REGISTRY: dict[str, Any] = {
    "advertisers": {
        "acme": {
            "postback_secret": "acme-secret-0123456789",
            "actions": ["lead", "purchase"],
        }
    },
    "campaigns": {
        "cmp": {
            "advertiser": "acme",
            "landing_url": "https://acme.example/?c={click_id}",
            "attribution": {"click_window_days": 1, "conversion_grace_seconds": 60},
        }
    },
    "actions": {
        "lead": {"txid_policy": "update", "label_horizon_hours": 1},
        "purchase": {"txid_policy": "update"},
        "signup": {},
    },
    "security": {"click_id_key": "models-scenario-click-key-012345"},
    # the clock at each event's time, so labels close exactly where the scenario says
    "event_time": {"allowed_lateness_seconds": 0, "confirmations": 1},
}


def registry() -> Registry:
    return parse_registry(REGISTRY)


SIGNER = ClickIdSigner(registry().security.click_id_key, random_bytes=lambda n: b"\x07" * n)
KEYS = {f"k{n}": SIGNER.mint(int((T0.timestamp() + n) * 1000)) for n in range(1, 10)}
"""Click ids as the edge mints them: postbacks for unsigned ids are rejected as forged."""


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def click(n: int, seconds: float, agent: str = BROWSER) -> dict[str, Any]:
    return {
        "type": "click",
        "event_id": f"c{n}",
        "ts": ts(seconds),
        "click_id": KEYS[f"k{n}"],
        "campaign_id": "cmp",
        "partner_id": "pA" if n % 2 else "pB",
        "channel": "affiliate",
        "user": {
            "user_id": f"u{n}",
            "country": "DE",
            "device_type": "mobile",
            "user_agent": agent,
            "ip": f"81.2.{n}.7",
        },
    }


def conversion(
    name: str, seconds: float, click_id: str, action: str, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "conversion",
        "event_id": name,
        "ts": ts(seconds),
        "click_id": KEYS[click_id],
        "txid": f"T-{click_id}-{action}",
        "action": action,
        **extra,
    }


EVENTS = [
    click(1, 0),
    click(2, 10),
    click(3, 20, HEADLESS),
    click(4, 30),
    click(5, 40),
    conversion("v1", 100, "k1", "purchase", revenue=50.0),
    conversion("v3", 150, "k3", "purchase", revenue=50.0),
    conversion("v2", 200, "k2", "lead"),
    conversion("v2b", 300, "k2", "lead", status="approved"),
    conversion("v5", 40 + 7200, "k5", "lead"),
    # two days later: every label of the clicks above is decided
    click(6, 2 * 86_400),
]


def latest_quality(store: Any) -> dict[str, tuple[int, int]]:
    rows = store.rows(
        "SELECT action, argMax(examples, ts), argMax(positives, ts) "
        f"FROM {store.database}.model_quality GROUP BY action"
    )
    return {action: (examples, positives) for action, examples, positives in rows}


def report(dsn: str, database: str = "clicktrail") -> dict[str, Any]:
    """What the Faust test compares, read from one store (in its own process: chDB)."""
    from clicktrail.sinks.store import Store

    store = Store(dsn, database)
    scored = store.rows(f"SELECT click_id, learned, scores FROM {database}.click_scores")
    return {
        "quality": {action: list(pair) for action, pair in latest_quality(store).items()},
        "scored": sorted(click_id for click_id, _, _ in scored),
        "not_learned": sorted(click_id for click_id, learned, _ in scored if not learned),
        "scores": {click_id: dict(scores) for click_id, _, scores in scored},
    }
