"""The per-action models in the embedded runtime: delayed labels, scores, quality, restarts.

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

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import structlog

from clicktrail.config import Registry, parse_registry
from clicktrail.edge.app import build_app
from clicktrail.processors.signing import ClickIdSigner
from clicktrail.runtime.checkpoints import ModelCheckpoint
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
HEADLESS = "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/126.0 Safari/537.36"


def registry() -> Registry:
    return parse_registry(
        {
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
        }
    )


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


def run(
    store: Store, events: list[dict[str, Any]], checkpoint: ModelCheckpoint | None = None
) -> EmbeddedRuntime:
    runtime = EmbeddedRuntime(registry(), store, checkpoint=checkpoint)
    runtime.bus.begin_source(f"replay:models-{len(events)}")
    for event in events:
        runtime.submit_raw(orjson.dumps(event), "test")
    runtime.close(end_of_input=True)
    return runtime


def latest_quality(store: Store) -> dict[str, tuple[int, int]]:
    rows = store.rows(
        "SELECT action, argMax(examples, ts), argMax(positives, ts) "
        f"FROM {store.database}.model_quality GROUP BY action"
    )
    return {action: (examples, positives) for action, examples, positives in rows}


def test_delayed_labels_exactly_as_worked_out(store: Store) -> None:
    runtime = run(store, EVENTS)
    assert latest_quality(store) == {"lead": (4, 1), "purchase": (4, 1), "signup": (0, 0)}
    assert runtime.pipeline.models.labels.unmatched >= 1  # k5's late lead
    verdicts = store.rows(
        f"SELECT subject_id FROM {store.database}.fraud_verdicts WHERE action = 'reject'"
    )
    assert sorted(verdicts) == sorted([(KEYS["k3"],), ("v3",)])  # the bot's click and purchase


def test_every_click_carries_its_scores_into_clickhouse(store: Store) -> None:
    run(store, EVENTS)
    rows = store.rows(
        f"SELECT click_id, mapKeys(scores), learned FROM {store.database}.click_scores "
        "ORDER BY click_id"
    )
    assert sorted(r[0] for r in rows) == sorted(KEYS[f"k{n}"] for n in range(1, 7))
    assert all(sorted(r[1]) == ["lead", "purchase"] for r in rows)
    assert {r[0] for r in rows if not r[2]} == {KEYS["k3"]}


def test_a_restart_restores_the_models_and_their_quality(store: Store, tmp_path: Path) -> None:
    checkpoint = tmp_path / "models.ckpt"
    first = run(store, EVENTS, ModelCheckpoint(checkpoint))
    learned = first.pipeline.models.models.models["lead"].estimator.weights
    windows = first.pipeline.fraud.partners.model.seen
    assert checkpoint.stat().st_size > 0 and learned and windows > 0
    second = EmbeddedRuntime(registry(), store, checkpoint=ModelCheckpoint(checkpoint))
    restored = second.pipeline.models.models
    assert restored.models["lead"].estimator.weights == learned
    assert (restored.quality["lead"].examples, restored.quality["lead"].positives) == (4, 1)
    # the fraud detector's partner anomaly model comes back with them
    assert second.pipeline.fraud.partners.model.seen == windows
    stricter = registry().model_copy(
        update={"fraud": registry().fraud.model_copy(update={"anomaly_threshold": 0.99})}
    )
    changed = EmbeddedRuntime(stricter, store, checkpoint=ModelCheckpoint(checkpoint))
    assert changed.pipeline.fraud.partners.model.seen == 0, "another threshold starts fresh"


def test_a_corrupt_checkpoint_starts_fresh_and_says_so(store: Store, tmp_path: Path) -> None:
    checkpoint = tmp_path / "models.ckpt"
    run(store, EVENTS, ModelCheckpoint(checkpoint))
    data = bytearray(checkpoint.read_bytes())
    data[-10] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    with structlog.testing.capture_logs() as logs:
        runtime = EmbeddedRuntime(registry(), store, checkpoint=ModelCheckpoint(checkpoint))
    [warning] = [entry for entry in logs if entry["event"] == "models.fresh_start"]
    assert warning["reason"] == "corrupt"
    assert runtime.pipeline.models.models.quality["lead"].examples == 0
    runtime.bus.begin_source("replay:after-corruption")
    runtime.submit_raw(orjson.dumps(click(9, 0)), "test")
    runtime.close(end_of_input=True)  # and it keeps running


async def _get(runtime_app: Any, url: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=runtime_app), base_url="http://score.test"
    ) as client:
        return await client.get(url)


def test_score_endpoint_answers_and_refuses_bad_parameters(store: Store) -> None:
    app = build_app(run(store, EVENTS))

    def get(url: str) -> httpx.Response:
        return asyncio.run(_get(app, url))

    ok = get("/v1/score?campaign=cmp&partner=pA&country=de&device=mobile&segments=a,b")
    assert ok.status_code == 200
    body = ok.json()
    assert body["model"] == "logreg/clicks-v1"
    assert set(body["scores"]) == {"lead", "purchase", "signup"}
    assert all(0.0 < p < 1.0 for p in body["scores"].values())
    unseen = get("/v1/score?campaign=never-seen&partner=nobody&actions=lead")
    assert unseen.status_code == 200 and set(unseen.json()["scores"]) == {"lead"}
    for url, reason in [
        ("/v1/score", "invalid_context"),
        ("/v1/score?campaign=cmp&country=Germany", "invalid_context"),
        ("/v1/score?campaign=cmp&device=toaster", "invalid_context"),
        ("/v1/score?campaign=cmp&colour=red", "invalid_context"),
        ("/v1/score?campaign=cmp&actions=teleport", "unknown_action"),
        ("/v1/score?campaign=cmp&campaign=cmp2", "repeated_parameter"),
    ]:
        refused = get(url)
        assert refused.status_code == 400, url
        assert refused.json()["error"] == reason, url
        assert refused.json()["message"]


def test_a_clock_tick_settles_and_reports_in_a_quiet_stream(store: Store) -> None:
    """The service ticks on a clock: labels due at the watermark are learned and quality is
    written although far fewer than TICK_EVERY messages arrived."""
    runtime = EmbeddedRuntime(registry(), store)
    runtime.bus.begin_source("run:quiet")
    for event in EVENTS:
        runtime.submit_raw(orjson.dumps(event), "test")
    runtime.process()
    assert runtime.pipeline.models.models.quality["lead"].examples == 0
    runtime.request_tick()
    runtime.process()
    runtime.flush()
    assert latest_quality(store)["lead"] == (4, 1)
    runtime.request_tick()  # a second tick in the same event-time minute writes nothing new
    runtime.process()
    runtime.flush()
    rows = store.rows(f"SELECT count() FROM {store.database}.model_quality WHERE action = 'lead'")
    assert rows == [(1,)]
