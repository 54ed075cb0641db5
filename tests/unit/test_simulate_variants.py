"""Variants: variant 0 is the reference world; the others draw every planted pattern's
parameters from the documented ranges, the same draw for the same number."""

from __future__ import annotations

from pathlib import Path

from clicktrail.simulate.runner import simulate
from clicktrail.simulate.scenarios import Options
from clicktrail.simulate.users import BOT_AGENTS
from clicktrail.simulate.variants import MORE_BOT_AGENTS, Variant


def test_variant_zero_is_the_reference_world() -> None:
    assert Variant.draw(0) == Variant()


def test_a_variant_is_the_same_draw_every_time_and_differs_from_others() -> None:
    assert Variant.draw(5) == Variant.draw(5)
    assert len({Variant.draw(i) for i in range(1, 21)}) == 20


def test_every_parameter_stays_in_its_documented_range() -> None:
    for index in range(1, 301):
        _in_ranges(Variant.draw(index))


def _in_ranges(v: Variant) -> None:
    assert 1 <= v.flood_ips <= 500
    assert 1 <= v.flood_networks <= min(v.flood_ips, 100)
    assert 1 <= v.flood_agents <= 50
    low, high = v.flood_clicks
    assert 1 <= low <= 10 and low <= high <= low + 30
    shortest, longest = v.flood_gap_ms
    assert 50 <= shortest <= 120_000 and shortest <= longest <= 1_800_000
    assert 0.2 <= v.bot_share <= 0.9 and 0.2 <= v.datacenter_share <= 0.9
    assert 4 <= len(v.bot_agents) <= 12
    assert set(v.bot_agents) <= {*BOT_AGENTS, *MORE_BOT_AGENTS}
    assert 0.1 <= v.incent_share <= 0.6
    lead_low, lead_high = v.inject_lead_ms
    assert 300 <= lead_low < lead_high <= 9_500  # under the install cut-off of 10 s
    assert v.delayed is not None and 0 <= v.delayed <= 0.05
    assert v.duplicates is not None and 0 <= v.duplicates <= 0.02


def test_a_spread_flood_fires_from_as_many_addresses_as_its_variant_says(
    tmp_path: Path,
) -> None:
    """Find a variant whose flood is spread over many addresses; its flood clicks must use
    far more addresses than the reference world's four."""
    import orjson

    index = next(i for i in range(1, 200) if Variant.draw(i).flood_ips >= 100)
    summary = simulate(Options(out=tmp_path, events=20_000, seed=3, variant=index))
    assert summary["variant"]["flood_ips"] == Variant.draw(index).flood_ips
    truth = map(orjson.loads, (tmp_path / "truth.jsonl").read_bytes().splitlines())
    flood = {
        r["click_id"] for r in truth if r["kind"] == "click" and r["label"] == "click_flooding"
    }
    events = map(orjson.loads, (tmp_path / "events.jsonl").read_bytes().splitlines())
    ips = {e["user"]["ip"] for e in events if e["type"] == "click" and e["click_id"] in flood}
    assert flood and len(ips) > 10
