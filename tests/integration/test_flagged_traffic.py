"""Flagged traffic through the embedded runtime into a real ClickHouse: verdicts, the
rejection reason on attributed rows, rollups with and without, and the registry switch."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.scenarios import fraud as scenario

from clicktrail.config import parse_registry
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.migrations import migrate
from clicktrail.sinks.store import Store


def registry(flagged_traffic: str = "mark") -> Any:
    config = {**scenario.REGISTRY}
    config["fraud"] = {**config["fraud"], "flagged_traffic": flagged_traffic}
    return parse_registry(config)


def run_scenario(
    store: Store,
    flagged_traffic: str = "mark",
    events: list[dict[str, Any]] | None = None,
    inputs: set[str] | None = None,
) -> None:
    """``inputs``: event types read as inputs of their own (a topic each), as a replay
    declares the types of its file."""
    runtime = EmbeddedRuntime(registry(flagged_traffic), store)
    runtime.bus.begin_source("replay:fraud")
    if inputs:
        runtime.pipeline.declare_inputs(runtime.bus.source, inputs)
    for event in scenario.events() if events is None else events:
        runtime.submit_raw(orjson.dumps(event), "test")
    runtime.close(end_of_input=True)


@pytest.fixture
def judged(store: Store) -> Store:
    run_scenario(store)
    return store


def partners(store: Store) -> dict[str, tuple[Any, ...]]:
    rows = store.rows(
        "SELECT partner_id, clicks, conversions, approved, toFloat64(spend), "
        f"toFloat64(revenue), toFloat64(payout) FROM {store.database}.partner_report"
    )
    return {r[0]: tuple(round(v, 6) for v in r[1:]) for r in rows}


def conversion_figures(partner_figures: tuple[Any, ...]) -> tuple[Any, ...]:
    """(conversions, approved, revenue, payout) of a partner_report tuple."""
    _, conversions, approved, _, revenue, payout = partner_figures
    return conversions, approved, revenue, payout


def test_planted_fraud_is_judged_and_clean_traffic_is_not(judged: Store) -> None:
    names = {subject: name for name, subject in scenario.subject_ids().items()}
    verdicts = [r for r in scenario.verdict_rows(judged) if r[0] != "partner"]
    got = sorted((names[r[1]], r[3], r[4]) for r in verdicts)
    assert got == scenario.EXPECTED_VERDICTS


def test_the_rejection_reason_travels_on_the_attributed_rows(judged: Store) -> None:
    rows = judged.rows(
        "SELECT conversion_id, version, status, fraud_action, fraud_reason "
        f"FROM {judged.database}.attributed_latest WHERE partner_id = 'p-bad' ORDER BY 1"
    )
    assert rows == [
        ("v-bot", 1, "pending", "reject", "bot_user_agent"),
        ("v-farm", 1, "pending", "suspicious", "geo_mismatch"),
        ("v-forged", 1, "pending", "reject", "forged_click_id"),
        # the approval is a version of the injected install: it keeps the install's verdict
        ("v-inject", 2, "approved", "reject", "ctit_too_short"),
        # the replay is rejected on its own (fraud_verdicts); the purchase stays clean
        ("v-replay", 2, "pending", "ok", ""),
        ("v-stolen", 1, "pending", "reject", "click_flood_ip"),
    ]
    clean = judged.rows(
        "SELECT conversion_id, version, status, fraud_action, fraud_reason "
        f"FROM {judged.database}.attributed_latest WHERE partner_id = 'p-good' ORDER BY 1"
    )
    assert clean == [
        ("v-good0", 1, "pending", "ok", ""),
        # bought with a cookie only, approved later: both wait for the grace period
        ("v-good1-buy", 2, "approved", "ok", ""),
        ("v-good3", 1, "pending", "ok", ""),
        ("v-good6", 1, "pending", "ok", ""),
        ("v-good9", 1, "pending", "ok", ""),
    ]


def test_rollups_carry_the_rejected_share_beside_the_totals(judged: Store) -> None:
    rows = judged.rows(
        "SELECT partner_id, sum(conversions), sum(approved), toFloat64(sum(revenue)), "
        "toFloat64(sum(payout)), sum(fraud_rejected_conversions), sum(fraud_rejected_approved), "
        "toFloat64(sum(fraud_rejected_revenue)), toFloat64(sum(fraud_rejected_payout)), "
        f"sum(fraud_suspicious_conversions) FROM {judged.database}.agg_hourly "
        "WHERE action != '' GROUP BY partner_id"
    )
    assert {r[0] for r in rows} == {"p-good", "p-bad"}
    for partner, *figures in rows:
        totals, rejected = tuple(figures[:4]), tuple(figures[4:8])
        assert totals == conversion_figures(scenario.PARTNERS_MARKED[partner])
        assert (rejected, figures[8]) == scenario.REJECTED[partner]
        without = tuple(t - r for t, r in zip(totals, rejected, strict=True))
        assert without == conversion_figures(scenario.PARTNERS_EXCLUDED[partner])


def test_the_registry_decides_whether_the_views_exclude_rejected_traffic(judged: Store) -> None:
    db = judged.database
    assert partners(judged) == scenario.PARTNERS_MARKED
    cpa_marked = judged.rows(f"SELECT cpa, flagged_traffic FROM {db}.partner_report "
                             "WHERE partner_id = 'p-bad'")[0]  # fmt: skip
    assert cpa_marked == (pytest.approx((3.25 + 15) / 6), "mark")

    EmbeddedRuntime(registry("exclude"), judged).close()  # a runtime starts with the new setting
    assert partners(judged) == scenario.PARTNERS_EXCLUDED
    excluded = judged.rows(
        "SELECT cpa, roas, fraud_rejected_conversions, toFloat64(fraud_rejected_payout), "
        f"fraud_suspicious_conversions, flagged_traffic FROM {db}.partner_report "
        "WHERE partner_id = 'p-bad'"
    )[0]
    assert excluded == (
        pytest.approx((3.25 + 7) / 2),
        pytest.approx(50 / (3.25 + 7)),
        4.0,
        8.0,
        1.0,
        "exclude",
    )
    installs = judged.rows(
        f"SELECT partner_id, sum(installs) FROM {db}.funnel_daily GROUP BY 1 ORDER BY 1"
    )
    assert installs == [("p-bad", 1.0), ("p-good", 4.0)]  # p-bad: the farm's, suspicious
    models = judged.rows(
        f"SELECT partner_id, action, conversions FROM {db}.attribution_model_comparison "
        "ORDER BY 1, 2"
    )
    assert models == [
        ("p-bad", "install", 1.0),
        ("p-bad", "purchase", 1.0),
        ("p-good", "install", 4.0),
        ("p-good", "purchase", 1.0),
    ]


def test_conversions_read_before_their_clicks_end_with_the_same_verdicts_and_figures(
    judged: Store, chdb_dsn: str
) -> None:
    """The order a Kafka backlog of two topics can be read in: every conversion first.
    The stolen install is judged before the flood convicts its click, then revised. Two
    topics are two inputs: the clicks' input holds the watermark until it starts."""
    backlog = Store(chdb_dsn, f"{judged.database}_b")
    migrate(backlog)
    try:
        events = scenario.events()
        first = sorted(events, key=lambda e: e["type"] == "click")
        run_scenario(backlog, events=first, inputs={"click", "conversion"})
        assert scenario.figures(backlog) == scenario.figures(judged)
        stolen = backlog.rows(
            "SELECT version, previous_fraud_action, fraud_action FROM "
            f"{backlog.database}.attributed_conversions WHERE conversion_id = 'v-stolen' "
            "ORDER BY version"
        )
        assert stolen[-1] == (2, "ok", "reject")
    finally:
        backlog.command(f"DROP DATABASE IF EXISTS {backlog.database}")
