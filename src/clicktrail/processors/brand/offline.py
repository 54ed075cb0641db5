"""Run the brand-conflict detector over a simulator output directory and score it.

Events are read in delivery order through the real :class:`Intake` (clock after the
scenario's last event), deduplicated by ``event_id``, skipped when they route to no brand
and fed to one detector with dict state; the auction-insights export follows (it is a
daily report). Scores, per offense kind: precision and recall of (brand, offender) pairs
against the truth's offending bidders, and of offending events against the truth's
impression and click labels; the estimated CPC inflation per offender beside the true one.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from clicktrail.config import load_registry
from clicktrail.contracts import Click, Impression
from clicktrail.processors.brand.auction_insights import parse_auction_insights
from clicktrail.processors.brand.detector import BrandConflictDetector
from clicktrail.processors.brand.signals import OFFENSE_OF_SIGNAL
from clicktrail.processors.intake import Intake, Rejection

OFFENSES = ("direct_term", "misspelled_term", "domain", "paid_click")
FORGET_EVERY = 20_000


@dataclass
class Score:
    truth: int = 0
    predicted: int = 0
    correct: int = 0

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.truth if self.truth else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision, "recall": self.recall}


def _score(truth: set[Any], predicted: set[Any]) -> Score:
    return Score(len(truth), len(predicted), len(truth & predicted))


@dataclass
class BrandReport:
    pairs: dict[str, Score]
    events: dict[str, Score]
    flagged_pairs: list[tuple[str, str, list[str]]]
    authorized_flagged: list[str]
    inflation: dict[str, dict[str, float | None]]
    domain_traces: list[dict[str, Any]] = field(default_factory=list)
    conflicts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "pairs": {k: v.as_dict() for k, v in self.pairs.items()},
            "events": {k: v.as_dict() for k, v in self.events.items()},
            "flagged_pairs": self.flagged_pairs,
            "authorized_flagged": self.authorized_flagged,
            "inflation": self.inflation,
            "domain_traces": self.domain_traces,
            "conflicts": self.conflicts,
        }


def run_detector(
    directory: Path,
) -> tuple[BrandConflictDetector, dict[str, set[tuple[str, str, str]]]]:
    """The detector after the whole scenario, and the offenses found per event id."""
    registry = load_registry(directory / "registry.yaml")
    scenario = json.loads((directory / "scenario.json").read_text())
    end = datetime.fromisoformat(scenario["last_event_ts"].replace("Z", "+00:00"))
    intake = Intake(clock=lambda: end + timedelta(days=1))
    detector = BrandConflictDetector(registry, lambda name: {})
    seen: set[str] = set()
    found: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    with (directory / "events.jsonl").open("rb") as lines:
        for number, line in enumerate(lines, 1):
            event = intake.parse(line)
            if isinstance(event, Rejection) or not isinstance(event, Impression | Click):
                continue
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
            if detector.route(event) is None:  # as a repartitioning pipeline would skip it
                continue
            detector(event)
            for hit in detector.last_hits:
                found[hit.subject_id].add(
                    (hit.brand, hit.offender_id, OFFENSE_OF_SIGNAL[hit.signal])
                )
            if number % FORGET_EVERY == 0:
                detector.forget(event.ts)
    insights = directory / "auction_insights.csv"
    if insights.exists():
        with insights.open(newline="") as text:
            for row in parse_auction_insights(text):
                detector(row)
    return detector, found


def evaluate(directory: Path) -> BrandReport:
    detector, found = run_detector(directory)
    bidders: list[dict[str, Any]] = []
    true_events: dict[str, str] = {}
    with (directory / "truth.jsonl").open("rb") as lines:
        for line in lines:
            t = orjson.loads(line)
            if t["kind"] == "bidder":
                bidders.append(t)
            elif t["kind"] == "impression":
                true_events[t["impression_id"]] = t["offense"]
            elif t["kind"] == "click" and "offense" in t:
                true_events[t["click_id"]] = t["offense"]["offense"]
    offenders = [b for b in bidders if b["offender"]]
    true_pairs = {
        (b["brand"], b["partner_id"] or b["display_domain"], b["offense"]) for b in offenders
    }
    entries = list(detector.book.conflicts.values())
    predicted = {
        (e["brand"], e["offender_id"], OFFENSE_OF_SIGNAL[s])
        for e in entries
        if e["offender_kind"] == "partner"
        for s in e["signals"]
    }
    pairs = {
        k: _score({p[:2] for p in true_pairs if p[2] == k}, {p[:2] for p in predicted if p[2] == k})
        for k in OFFENSES
    }
    pairs["any"] = _score({p[:2] for p in true_pairs}, {p[:2] for p in predicted})
    events = {
        k: _score(
            {i for i, o in true_events.items() if o == k},
            {i for i, offs in found.items() if any(o[2] == k for o in offs)},
        )
        for k in OFFENSES
    }
    events["any"] = _score(set(true_events), set(found))
    authorized = {b["partner_id"] for b in bidders if b["role"] == "authorized"}
    flagged = sorted({(p[0], p[1]) for p in predicted})
    kinds = defaultdict(list)
    for brand, offender, kind in sorted(predicted):
        kinds[(brand, offender)].append(kind)
    return BrandReport(
        pairs=pairs,
        events=events,
        flagged_pairs=[(b, o, kinds[(b, o)]) for b, o in flagged],
        authorized_flagged=sorted({o for _, o in flagged if o in authorized}),
        inflation=_inflation(detector, offenders),
        domain_traces=_traces(entries, offenders),
        conflicts=len(entries),
    )


def _inflation(
    detector: BrandConflictDetector, offenders: list[dict[str, Any]]
) -> dict[str, dict[str, float | None]]:
    """Keyword estimates pooled per offender (weighted by the priced auctions behind each)."""
    out: dict[str, dict[str, float | None]] = {}
    for b in offenders:
        offender = b["partner_id"] or b["display_domain"]
        total = weight = 0.0
        for entry in detector.book.conflicts.values():
            if entry["brand"] != b["brand"] or entry["offender_id"] != offender:
                continue
            est = detector.ledger.estimate(b["brand"], entry["keyword"], offender)
            if est.inflation is not None:
                total += est.inflation * est.samples
                weight += est.samples
        out[f"{b['brand']}/{offender}"] = {
            "true": b["cpc_inflation"],
            "estimated": round(total / weight, 4) if weight else None,
            "priced_auctions_with": weight,
        }
    return out


def _traces(entries: list[dict[str, Any]], offenders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Auction-insights conflicts (keyed by display domain) and the true offenders behind them."""
    rows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in entries:
        if e["offender_kind"] == "domain":
            rows[(e["brand"], e["offender_id"])].append(e["keyword"])
    return [
        {
            "brand": brand,
            "domain": domain,
            "keywords": len(keywords),
            "true_offenders": sorted(
                b["partner_id"] or b["bidder"]
                for b in offenders
                if b["brand"] == brand and b["display_domain"] == domain
            ),
        }
        for (brand, domain), keywords in sorted(rows.items())
    ]


if __name__ == "__main__":
    print(json.dumps(evaluate(Path(sys.argv[1])).as_dict(), indent=1, default=str))
