"""The scripted attribution scenario through the embedded runtime into a real ClickHouse."""

from __future__ import annotations

import orjson
import pytest
from tests.scenarios import attribution as scenario

from clicktrail.config import parse_registry
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import Store


def run_scenario(store: Store, source: str = "replay:scenario") -> EmbeddedRuntime:
    runtime = EmbeddedRuntime(parse_registry(scenario.REGISTRY), store)
    runtime.bus.begin_source(source)
    for event in [*scenario.EVENTS, *scenario.filler()]:
        runtime.submit_raw(orjson.dumps(event), "test")
    runtime.close(end_of_input=True)
    return runtime


def test_attribution_ctit_and_aggregates(store: Store) -> None:
    run_scenario(store)
    expected_attribution(store)


def expected_attribution(store: Store) -> None:
    """The scenario's hand-computed raw counts, attributed conversions and aggregates."""
    for table, expected in scenario.expected_raw().items():
        assert store.rows(f"SELECT count() FROM {store.database}.{table}")[0][0] == expected
    got = scenario.attributed_rows(store)
    assert [r[:7] for r in got] == [r[:7] for r in scenario.EXPECTED_ATTRIBUTED]
    for row, want in zip(got, scenario.EXPECTED_ATTRIBUTED, strict=True):
        assert row[7] == (pytest.approx(want[7]) if want[7] is not None else None)
        assert row[8] == pytest.approx(want[8])
    agg = scenario.agg_rows(store)
    expected = scenario.expected_agg()
    assert set(agg) == set(expected)
    for key, want in expected.items():
        assert agg[key] == pytest.approx(want), key


def test_a_rerun_of_the_same_input_writes_nothing_twice(store: Store) -> None:
    run_scenario(store)
    before = scenario.agg_rows(store)
    second = run_scenario(store)
    assert second.sink.rows_written == 0
    assert second.sink.rows_skipped > 0
    assert scenario.agg_rows(store) == before
    assert len(scenario.attributed_rows(store)) == len(scenario.EXPECTED_ATTRIBUTED)


def test_analyst_views_answer_from_the_rollups(store: Store) -> None:
    run_scenario(store)
    db = store.database
    partners = {
        r[0]: r[1:]
        for r in store.rows(
            f"SELECT partner_id, clicks, conversions, approved, toFloat64(revenue), "
            f"toFloat64(spend), cpa, roas FROM {db}.partner_report ORDER BY approved DESC"
        )
    }
    # pA: spend 1.01 (impression 0.01 + two clicks), payout 10 + 5 -> 9 + 5 after the update
    assert partners["pA"] == pytest.approx((2, 2.0, 1.0, 140.0, 1.01, 15.01 / 2, 140 / 15.01))
    assert partners["pB"] == pytest.approx((3, 1.0, 0.0, 0.0, 1.5, 1.5, 0.0))
    funnel = store.rows(
        f"SELECT sum(impressions), sum(clicks), sum(purchases), sum(leads), max(ctr) "
        f"FROM {db}.funnel_daily"
    )[0]
    assert funnel == (1 + scenario.FILLER, 5, 2.0, 2.0, 2.0)  # pA: 1 impression, 2 clicks
    models = store.rows(
        f"SELECT partner_id, conversions FROM {db}.attribution_model_comparison "
        "WHERE action = 'purchase' ORDER BY partner_id"
    )
    assert models == [("pA", 2.0)]
