"""The simulator's output: valid events, a valid registry, and truth that agrees with both."""

from __future__ import annotations

import csv
import ipaddress
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from clicktrail.config import Registry, load_registry
from clicktrail.processors.fraud.agents import BotAgentRule
from clicktrail.processors.intake import Intake, Rejection
from clicktrail.processors.privacy import truncate_ip
from clicktrail.processors.signing import ClickIdSigner
from clicktrail.simulate import Options, oracle_auc, simulate

FRAUD_CLICKS = {
    "bot",
    "datacenter",
    "click_flooding",
    "click_injection",
    "geo_mismatch",
    "device_mismatch",
}
FRAUD_CONVERSIONS = FRAUD_CLICKS | {"forged_click_id", "orphan", "replayed_postback"}


@dataclass
class Run:
    out: Path
    lines: list[bytes]
    events: list[dict[str, Any]]
    truth: list[dict[str, Any]]
    scenario: dict[str, Any]
    registry: Registry

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [t for t in self.truth if t["kind"] == kind]

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        key = "click_id" if kind == "click" else "event_id"
        return {e[key]: e for e in self.events if e["type"] == kind}


def load(out: Path) -> Run:
    lines = (out / "events.jsonl").read_bytes().splitlines()
    return Run(
        out=out,
        lines=lines,
        events=[orjson.loads(line) for line in lines],
        truth=[orjson.loads(line) for line in (out / "truth.jsonl").read_bytes().splitlines()],
        scenario=orjson.loads((out / "scenario.json").read_bytes()),
        registry=load_registry(out / "registry.yaml"),
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("sim") / "default"
    simulate(Options(out=out, events=20_000, seed=11, days=3))
    return load(out)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("sim") / "clean"
    simulate(Options(out=out, events=8_000, seed=11, days=2, scenario="clean"))
    return load(out)


class TestEvents:
    def test_every_line_passes_the_intake(self, run: Run) -> None:
        last = datetime.fromisoformat(run.scenario["last_event_ts"])
        intake = Intake(clock=lambda: last + timedelta(seconds=1))
        refused = [r for r in map(intake.parse, run.lines) if isinstance(r, Rejection)]
        assert refused == []

    def test_the_count_is_the_one_asked_for(self, run: Run) -> None:
        assert len(run.lines) == run.scenario["lines"]
        assert abs(len(run.lines) - 20_000) <= 40

    def test_counts_per_type_match_the_scenario(self, run: Run) -> None:
        unique = {e["event_id"]: e["type"] for e in run.events}
        assert Counter(unique.values()) == run.scenario["events"]
        assert len(run.lines) - len(unique) == run.scenario["delivery"]["duplicates"] > 0

    def test_duplicates_are_the_same_bytes(self, run: Run) -> None:
        first: dict[str, bytes] = {}
        repeated = 0
        for line, event in zip(run.lines, run.events, strict=True):
            seen = first.setdefault(event["event_id"], line)
            repeated += seen is not line
            assert seen == line
        assert repeated == run.scenario["delivery"]["duplicates"]

    def test_some_conversions_arrive_before_their_click(self, run: Run) -> None:
        position = {e["click_id"]: i for i, e in enumerate(run.events) if e["type"] == "click"}
        early = [
            e
            for i, e in enumerate(run.events)
            if e["type"] == "conversion" and position.get(e.get("click_id", ""), -1) > i
        ]
        assert early
        assert run.scenario["delivery"]["late_clicks"] > 0

    def test_traffic_stays_in_the_time_range(self, run: Run) -> None:
        shown = [e["ts"] for e in run.events if e["type"] == "impression"]
        start = datetime.fromisoformat(run.scenario["start"]).timestamp() * 1000
        end = datetime.fromisoformat(run.scenario["traffic_end"]).timestamp() * 1000
        assert start <= min(shown) and max(shown) < end
        assert run.scenario["start"] <= run.scenario["first_event_ts"]


class TestRegistry:
    def test_it_describes_the_world_of_the_events(self, run: Run) -> None:
        reg = run.registry
        for event in run.events:
            if event["type"] != "conversion":
                assert event["campaign_id"] in reg.campaigns
                assert event["partner_id"] in reg.partners
        assert set(reg.brands) == {"northwind", "bluefin", "quokka"}
        assert reg.actions["install"].min_ctit_seconds == 10

    def test_click_ids_are_signed_with_its_key(self, run: Run) -> None:
        signer = ClickIdSigner(run.registry.security.click_id_key)
        clicks = run.of_type("click")
        assert clicks and all(signer.verify(click_id) for click_id in clicks)

    def test_datacenter_traffic_lands_in_its_ranges_after_truncation(self, run: Run) -> None:
        ranges = [ipaddress.ip_network(c) for c in run.registry.fraud.datacenter_cidrs]
        clicks = run.of_type("click")

        def in_ranges(click_id: str) -> bool:
            address = ipaddress.ip_address(truncate_ip(clicks[click_id]["user"]["ip"]))
            return any(address in net for net in ranges)

        labels = {t["click_id"]: t["label"] for t in run.kind("click")}
        assert all(in_ranges(c) for c, label in labels.items() if label == "datacenter")
        assert not any(in_ranges(c) for c, label in labels.items() if label != "datacenter")

    def test_bots_are_what_the_bot_rule_recognises(self, run: Run) -> None:
        """Bot agents are real crawler and library strings the registry does not name, and
        no person's agent looks like one."""
        rule = BotAgentRule(run.registry.fraud)
        clicks = run.of_type("click")
        for t in run.kind("click"):
            agent = clicks[t["click_id"]]["user"].get("user_agent", "")
            is_bot = not agent or rule.is_bot(agent)
            assert is_bot == (t["label"] == "bot"), agent


class TestTruth:
    def test_every_truth_id_is_in_the_events(self, run: Run) -> None:
        clicks, conversions = run.of_type("click"), run.of_type("conversion")
        impressions = {e["impression_id"] for e in run.events if e["type"] == "impression"}
        assert {t["click_id"] for t in run.kind("click")} == set(clicks)
        assert {t["event_id"] for t in run.kind("conversion")} | {
            t["event_id"] for t in run.kind("status_update")
        } == set(conversions)
        assert {t["impression_id"] for t in run.kind("impression")} <= impressions
        for t in run.kind("conversion"):
            if t["touch"] == "click":
                assert t["credit"] in clicks
            if t["touch"] == "view":
                assert t["credit"] in impressions

    def test_planted_counts_match_the_scenario(self, run: Run) -> None:
        s = run.scenario
        assert Counter(t["label"] for t in run.kind("click")) == s["clicks"]
        assert Counter(t["label"] for t in run.kind("conversion")) == s["conversions"]
        assert Counter(t["status"] for t in run.kind("status_update")) == s["status_updates"]
        offending = Counter(t["offense"] for t in run.kind("impression"))
        assert offending == s["offending_impressions"]
        assert set(s["clicks"]) == FRAUD_CLICKS | {"clean"}
        assert set(s["conversions"]) == FRAUD_CONVERSIONS | {"clean"}
        assert set(s["offending_clicks"]) == {
            "direct_term",
            "misspelled_term",
            "domain",
            "paid_click",
        }

    def test_forged_ids_fail_verification_and_orphans_were_never_clicked(self, run: Run) -> None:
        signer = ClickIdSigner(run.registry.security.click_id_key)
        conversions, clicks = run.of_type("conversion"), run.of_type("click")
        forged = [conversions[t["event_id"]]["click_id"] for t in run.kind("conversion")
                  if t["label"] == "forged_click_id"]  # fmt: skip
        orphans = [conversions[t["event_id"]]["click_id"] for t in run.kind("conversion")
                   if t["label"] == "orphan"]  # fmt: skip
        assert forged and not any(signer.verify(c) for c in forged)
        assert all(len(c) == 33 for c in forged), "forged ids look like minted ones"
        assert orphans and all(signer.verify(c) and c not in clicks for c in orphans)

    def test_replays_repeat_the_original_postback(self, run: Run) -> None:
        conversions = run.of_type("conversion")
        replays = [t for t in run.kind("conversion") if t["label"] == "replayed_postback"]
        assert replays
        for t in replays:
            replay, original = conversions[t["event_id"]], conversions[t["replay_of"]]
            assert {k: v for k, v in replay.items() if k not in ("event_id", "ts")} == {
                k: v for k, v in original.items() if k not in ("event_id", "ts")
            }
            assert t["credit"] is None

    def test_status_updates_keep_the_txid(self, run: Run) -> None:
        conversions = run.of_type("conversion")
        for t in run.kind("status_update"):
            update, original = conversions[t["event_id"]], conversions[t["of"]]
            assert update["txid"] == original["txid"] == t["txid"]
            assert (original["status"], update["status"]) == ("pending", t["status"])

    def test_injected_clicks_fire_seconds_before_the_install(self, run: Run) -> None:
        conversions, clicks = run.of_type("conversion"), run.of_type("click")
        injected = [t for t in run.kind("conversion") if t["label"] == "click_injection"]
        assert injected
        for t in injected:
            installed = datetime.fromisoformat(conversions[t["event_id"]]["ts"]).timestamp()
            assert 0 < installed - clicks[t["credit"]]["ts"] / 1000 < 10
        for t in run.kind("conversion"):
            own = t["touch"] == "click" and t["cause"] == t["credit"]
            if t["action"] == "install" and t["label"] == "clean" and own:
                installed = datetime.fromisoformat(conversions[t["event_id"]]["ts"]).timestamp()
                assert installed - clicks[t["credit"]]["ts"] / 1000 >= 15

    def test_stolen_credit_goes_to_flooding_clicks(self, run: Run) -> None:
        labels = {t["click_id"]: t["label"] for t in run.kind("click")}
        flooded = [t for t in run.kind("conversion") if t["label"] == "click_flooding"]
        assert flooded
        assert all(labels[t["credit"]] == "click_flooding" for t in flooded)
        assert all(t["credit"] != t["cause"] for t in flooded)

    def test_the_authorized_partner_is_never_an_offender(self, run: Run) -> None:
        authorized = {t["partner_id"] for t in run.kind("bidder") if t["role"] == "authorized"}
        assert authorized == {"agency-searchpro"}
        assert not any(t["offender"] for t in run.kind("bidder") if t["role"] == "authorized")
        offenders = {t["offender"] for t in run.kind("impression")}
        offenders |= {t["offense"]["offender"] for t in run.kind("click") if "offense" in t}
        assert offenders == {"aff-brandjack", "aff-typo", "aff-lookalike", "aff-gclid"}
        bids = [
            e for e in run.events if e["type"] == "impression" and e["partner_id"] in authorized
        ]
        assert bids, "the authorized partner does bid on brand terms"

    def test_paid_click_affiliates_leave_search_traces(self, run: Run) -> None:
        clicks = run.of_type("click")
        paid = [clicks[t["click_id"]] for t in run.kind("click")
                if t.get("offense", {}).get("offense") == "paid_click"]  # fmt: skip
        assert paid
        for click in paid:
            assert click["channel"] == "affiliate" and "keyword" not in click
            traces = set(click.get("paid_click_ids", {})) & {"gclid", "msclkid"}
            assert traces or "q=" in click["referrer"] or "p=" in click["referrer"]

    def test_the_turncoat_turns_bad_when_the_truth_says(self, run: Run) -> None:
        partner = next(t for t in run.kind("partner") if t["partner_id"] == "aff-turncoat")
        clicks = run.of_type("click")
        flooding = [clicks[t["click_id"]]["ts"] for t in run.kind("click")
                    if t["label"] == "click_flooding"
                    and clicks[t["click_id"]]["partner_id"] == "aff-turncoat"]  # fmt: skip
        assert flooding and min(flooding) >= partner["bad_from"]


class TestModelTruth:
    def test_oracle_auc_is_in_a_useful_range(self, run: Run) -> None:
        exact = oracle_auc(run.out / "truth.jsonl")
        assert set(exact) == {"lead", "signup", "add_to_cart", "purchase", "install"}
        for action, measured in exact.items():
            assert 0.7 < measured["auc"] < 0.93, action
            assert measured["auc"] == pytest.approx(run.scenario["oracle_auc"][action], abs=2e-3)

    def test_probabilities_only_for_clean_clicks_and_their_campaign_actions(self, run: Run) -> None:
        clicks = run.of_type("click")
        for t in run.kind("click"):
            if t["label"] != "clean":
                assert "p" not in t
                continue
            assert set(t["p"]) == set(t["y"]) and set(t["y"].values()) <= {0, 1}
            advertiser = clicks[t["click_id"]]["advertiser_id"]
            expected = {"northwind": 3, "bluefin": 2, "quokka": 2}[advertiser]
            assert len(t["p"]) == expected

    def test_observed_rates_follow_the_true_probabilities(self, run: Run) -> None:
        pairs = [(p, t["y"][a]) for t in run.kind("click") for a, p in t.get("p", {}).items()]
        expected = sum(p for p, _ in pairs)
        observed = sum(y for _, y in pairs)
        assert observed == pytest.approx(expected, rel=0.1)


class TestAuctionInsights:
    def test_the_brand_domain_shows_up_as_a_competitor(self, run: Run) -> None:
        with (run.out / "auction_insights.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert rows
        domains = {(r["account"], r["display_domain"]) for r in rows}
        assert ("northwind-ads", "northwind.example") in domains
        assert ("bluefin-ads", "bluefin-loans-online.example") in domains
        for row in rows:
            for field in ("impression_share", "overlap_rate", "outranking_share"):
                assert 0 <= float(row[field]) <= 1


class TestCleanScenario:
    def test_nothing_is_planted(self, clean: Run) -> None:
        assert set(clean.scenario["clicks"]) == {"clean"}
        assert set(clean.scenario["conversions"]) == {"clean"}
        assert clean.kind("impression") == []
        assert not any(t["offender"] for t in clean.kind("bidder"))
        assert not any(t["fraud"] or t["offenses"] for t in clean.kind("partner"))
