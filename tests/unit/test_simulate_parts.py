"""The simulator's parts: determinism, world and registry, addresses, auctions, the oracle."""

from __future__ import annotations

import ipaddress
import random
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from clicktrail.cli.main import main
from clicktrail.config import parse_registry
from clicktrail.processors.privacy import truncate_ip
from clicktrail.simulate import FILES, Options, auc, simulate
from clicktrail.simulate.cast import build_world
from clicktrail.simulate.oracle import BinnedAuc
from clicktrail.simulate.registry import registry_data
from clicktrail.simulate.users import DATACENTER_CIDRS, datacenter_ip, residential_ip

DATACENTER = [ipaddress.ip_network(c) for c in DATACENTER_CIDRS]


def _files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in FILES}


class TestDeterminism:
    def test_same_arguments_same_bytes(self, tmp_path: Path) -> None:
        first = simulate(Options(out=tmp_path / "a", events=3_000, seed=5, days=1))
        second = simulate(Options(out=tmp_path / "b", events=3_000, seed=5, days=1))
        assert first == second
        assert _files(tmp_path / "a") == _files(tmp_path / "b")

    def test_another_seed_another_scenario(self, tmp_path: Path) -> None:
        simulate(Options(out=tmp_path / "a", events=3_000, seed=5, days=1))
        simulate(Options(out=tmp_path / "b", events=3_000, seed=6, days=1))
        a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
        for name in FILES:
            assert a[name] != b[name], name

    def test_bad_options_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="--events"):
            Options(out=tmp_path, events=0)
        with pytest.raises(ValueError, match="unknown scenario 'nope'"):
            Options(out=tmp_path, scenario="nope")


class TestWorld:
    def test_the_registry_is_valid_and_complete(self) -> None:
        world = build_world(3)
        registry = parse_registry(registry_data(world))
        assert set(registry.campaigns) == set(world.campaigns)
        assert registry.security.click_id_key == world.click_id_key
        grants = registry.partners["agency-searchpro"].authorized
        assert {g.brand for g in grants} == {"northwind", "quokka"}
        assert all(g.channels == ["search"] and g.terms for g in grants)
        for brand in registry.brands.values():
            assert set(brand.official_campaigns) == {
                f"{brand.advertiser}-brand-search",
                f"{brand.advertiser}-generic-search",
            }

    def test_the_seed_draws_the_numbers_not_the_cast(self) -> None:
        a, b = build_world(1), build_world(2)
        assert set(a.partners) == set(b.partners) and set(a.keywords) == set(b.keywords)
        assert a.click_id_key != b.click_id_key
        assert [k.base_cpc for k in a.keywords.values()] != [
            k.base_cpc for k in b.keywords.values()
        ]

    def test_generic_and_misspelled_queries_never_contain_a_brand_term(self) -> None:
        world = build_world(1)
        terms = [t for a in world.advertisers.values() for t in a.terms]
        for keyword in world.keywords.values():
            contains = any(f" {t} " in f" {keyword.text} " for t in terms)
            assert contains == (keyword.kind == "brand"), keyword.text


class TestAddresses:
    def test_datacenter_addresses_stay_in_range_after_truncation(self) -> None:
        rng = random.Random(1)
        for _ in range(2_000):
            address = ipaddress.ip_address(truncate_ip(datacenter_ip(rng)))
            assert any(address in net for net in DATACENTER)

    def test_residential_addresses_are_public_and_outside_every_range(self) -> None:
        rng = random.Random(1)
        for _ in range(5_000):
            address = ipaddress.ip_address(residential_ip(rng, v6_share=0.2))
            assert address.is_global
            assert not any(address in net for net in DATACENTER)


class TestOracle:
    def test_exact_auc(self) -> None:
        assert auc([(0.1, 0), (0.4, 1), (0.35, 0), (0.8, 1)]) == 1.0
        assert auc([(0.1, 1), (0.4, 0)]) == 0.0
        assert auc([(0.5, 0), (0.5, 1)]) == 0.5
        assert auc([(0.1, 0), (0.4, 0)]) != auc([(0.1, 0), (0.4, 0)])  # NaN: one class

    def test_binned_auc_agrees_with_the_exact_one(self) -> None:
        rng = random.Random(2)
        pairs = []
        binned = BinnedAuc()
        for _ in range(20_000):
            p = rng.betavariate(1, 12)
            y = int(rng.random() < p)
            pairs.append((p, y))
            binned.add(p, bool(y))
        assert binned.value() == pytest.approx(auc(pairs), abs=1e-3)


def test_cpc_inflation_in_truth_is_what_the_events_show(tmp_path: Path) -> None:
    """Official CPC on auctions where an offender showed vs where it did not."""
    simulate(Options(out=tmp_path, events=60_000, seed=3, days=2))
    truth = [orjson.loads(line) for line in (tmp_path / "truth.jsonl").read_bytes().splitlines()]
    base = {t["keyword"]: t["base_cpc"] for t in truth if t["kind"] == "keyword"}
    auctions: dict[tuple[int, str], set[str]] = defaultdict(set)
    official: dict[str, tuple[tuple[int, str], str]] = {}
    costs: dict[str, float] = {}
    for line in (tmp_path / "events.jsonl").read_bytes().splitlines():
        event = orjson.loads(line)
        if event["type"] == "impression" and event["channel"] == "search":
            key = (event["ts"], event["user"]["user_id"])
            auctions[key].add(event["partner_id"])
            if event["partner_id"] == "northwind-ads":
                official[event["impression_id"]] = (key, event["keyword"])
        elif event["type"] == "click" and event.get("impression_id") in official:
            costs[event["impression_id"]] = event["cost"]
    inflation = next(
        t["cpc_inflation"]
        for t in truth
        if t["kind"] == "bidder" and (t["brand"], t["partner_id"]) == ("northwind", "aff-brandjack")
    )
    present, absent = [], []
    for impression, cost in costs.items():
        key, keyword = official[impression]
        if keyword in ("northwind", "northwind outfitters", "northwind boots", "northwind sale"):
            (present if "aff-brandjack" in auctions[key] else absent).append(cost / base[keyword])
    measured = (sum(present) / len(present)) / (sum(absent) / len(absent)) - 1
    assert measured == pytest.approx(inflation, abs=0.08)


class TestCommand:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--events", "0"], "--events must be at least 1"),
            (["--start", "yesterday"], "is not RFC 3339"),
            (["--start", "2026-03-01T00:00:00"], "needs a UTC offset"),
            (["--send", "ftp://host"], "http(s) URL"),
            (["--days", "0"], "--days"),
        ],
    )
    def test_bad_arguments_get_one_clear_line(
        self, args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code = main(["simulate", "--out", str(tmp_path / "x"), *args])
        assert code == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "x").exists()

    def test_the_summary_names_the_counts(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code = main(["simulate", "--out", str(tmp_path), "--events", "500", "--days", "1"])
        assert code == 0
        printed = capsys.readouterr().out
        assert printed.startswith("wrote 50")
        assert "impressions" in printed and "oracle AUC" in printed
