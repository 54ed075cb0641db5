"""The per-action models in the embedded runtime: delayed labels, scores, quality, restarts,
on the scripted stream of ``tests/scenarios/models.py`` (each action: 4 examples, 1 positive)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import structlog
from tests.scenarios.models import EVENTS, KEYS, click, latest_quality, registry

from clicktrail.edge.app import build_app
from clicktrail.runtime.checkpoints import ModelCheckpoint
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import Store


def run(
    store: Store, events: list[dict[str, Any]], checkpoint: ModelCheckpoint | None = None
) -> EmbeddedRuntime:
    runtime = EmbeddedRuntime(registry(), store, checkpoint=checkpoint)
    runtime.bus.begin_source(f"replay:models-{len(events)}")
    for event in events:
        runtime.submit_raw(orjson.dumps(event), "test")
    runtime.close(end_of_input=True)
    return runtime


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
    lead = first.pipeline.models.models.models["lead"]
    learned = [estimator.weights for _, estimator in lead.candidates]
    windows = first.pipeline.fraud.partners.model.seen
    assert checkpoint.stat().st_size > 0 and learned[0] and windows > 0
    second = EmbeddedRuntime(registry(), store, checkpoint=ModelCheckpoint(checkpoint))
    restored = second.pipeline.models.models
    again = restored.models["lead"]
    assert [estimator.weights for _, estimator in again.candidates] == learned
    assert again.setup == lead.setup
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
    assert body["model"] == "logreg/clicks-v2"
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


def test_labels_are_learned_as_event_time_passes_not_only_at_the_end(store: Store) -> None:
    """A short stream is far below the message count between settling passes: event time
    passing is what decides labels, and quality rows appear while the stream runs."""
    runtime = EmbeddedRuntime(registry(), store)
    runtime.bus.begin_source("run:short")
    for event in EVENTS[:-1]:
        runtime.submit_raw(orjson.dumps(event), "test")
    runtime.process()  # the stream is two hours in: lead labels are due, purchase ones not
    quality = runtime.pipeline.models.models.quality
    assert (quality["lead"].examples, quality["purchase"].examples) == (4, 0)
    runtime.submit_raw(orjson.dumps(EVENTS[-1]), "test")  # two days later
    runtime.process()
    runtime.flush()
    assert latest_quality(store)["purchase"] == (4, 1)
