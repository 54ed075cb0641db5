"""Run the fraud stage over a simulator output directory and score it against the truth.

Events are read in delivery order through the real :class:`Intake` (clock after the
scenario's last event, IP mode from the registry), deduplicated, resolved to their
clicks (:mod:`.replaylookup`) and judged; the latest verdict per subject counts.
A subject is flagged when its action is not ``ok``; it is *predicted* as a pattern
when its first (strongest) reason maps to that pattern. Per pattern: precision
(predicted and labelled / predicted), recall (predicted and labelled / labelled) and
``flagged`` (labelled and flagged for any reason / labelled). Only subjects the truth
labels are scored; flagged status updates (they inherit their conversion's click) are
counted apart.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from clicktrail.config import load_registry
from clicktrail.contracts import Click, Conversion, FraudVerdict
from clicktrail.processors.dedup import Dedup
from clicktrail.processors.fraud.detector import FraudDetector
from clicktrail.processors.fraud.hits import pattern_of
from clicktrail.processors.fraud.partners import PartnerWindow
from clicktrail.processors.fraud.replaylookup import ReplayLookup
from clicktrail.processors.intake import Intake, Rejection

TICK_EVERY = 200  # lines between grace-period and partner-window checks


@dataclass
class PatternScore:
    labelled: int
    predicted: int
    correct: int
    flagged: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


@dataclass
class FraudReport:
    patterns: dict[str, PatternScore]
    clean: int
    clean_flagged: int
    status_updates_flagged: int = 0
    clean_flagged_stolen: int = 0  # clean conversions credited (by the truth) to a fraud click
    partners_flagged: dict[str, dict[str, int]] = field(default_factory=dict)
    partners_planted: dict[str, list[str]] = field(default_factory=dict)

    @property
    def false_positive_rate(self) -> float:
        return self.clean_flagged / self.clean if self.clean else 0.0


def run_verdicts(
    directory: Path, windows: list[PartnerWindow] | None = None
) -> dict[tuple[str, str], FraudVerdict]:
    """The latest verdict per click and conversion of a simulated scenario, and every
    partner verdict (keyed by partner and window end)."""
    registry = load_registry(directory / "registry.yaml")
    scenario = json.loads((directory / "scenario.json").read_text())
    end = datetime.fromisoformat(scenario["last_event_ts"].replace("Z", "+00:00"))
    intake = Intake(
        ip_mode=registry.privacy.ip_mode,
        ip_hash_key=registry.privacy.ip_hash_key,
        clock=lambda: end + timedelta(days=1),
    )
    dedup = Dedup({})
    lookup = ReplayLookup(registry.campaigns)
    detector = FraudDetector(
        registry, lambda name: {}, on_window=windows.append if windows is not None else None
    )
    latest: dict[tuple[str, str], FraudVerdict] = {}
    watermark: datetime | None = None

    def keep(verdicts: list[FraudVerdict]) -> None:
        for verdict in verdicts:
            subject = verdict.subject_id
            if verdict.subject_type == "partner":
                subject = f"{subject}@{verdict.ts.isoformat()}"
            latest[(verdict.subject_type, subject)] = verdict

    with (directory / "events.jsonl").open("rb") as lines:
        for number, line in enumerate(lines):
            event = intake.parse(line)
            if isinstance(event, Rejection) or not dedup.admit(
                event.event_id, event.ts, str(number)
            ):
                continue
            watermark = event.ts if watermark is None else max(watermark, event.ts)
            if isinstance(event, Click):
                keep(detector.on_click(event))
                resolved = lookup.on_click(event)
            elif isinstance(event, Conversion):
                resolved = lookup.on_conversion(event)
            else:
                continue
            if number % TICK_EVERY == 0:
                resolved += lookup.tick(watermark)
                keep(detector.close_windows(watermark))
            for record in resolved:
                keep(detector.on_conversion(record))
    for record in lookup.drain():
        keep(detector.on_conversion(record))
    if watermark is not None:
        keep(detector.close_windows(watermark + timedelta(seconds=registry.fraud.window_seconds)))
    return latest


def evaluate(directory: str | Path) -> FraudReport:
    """Precision and recall per planted pattern, and the clean traffic flagged."""
    directory = Path(directory)
    verdicts = run_verdicts(directory)
    labels: dict[tuple[str, str], str] = {}
    planted: dict[str, list[str]] = {}
    stolen: set[tuple[str, str]] = set()
    with (directory / "truth.jsonl").open("rb") as lines:
        for line in lines:
            truth = orjson.loads(line)
            if truth["kind"] == "click":
                labels[("click", truth["click_id"])] = truth["label"]
            elif truth["kind"] == "conversion":
                labels[("conversion", truth["event_id"])] = truth["label"]
                if truth["label"] == "clean" and truth.get("credit_label") not in (None, "clean"):
                    stolen.add(("conversion", truth["event_id"]))
            elif truth["kind"] == "partner" and truth["fraud"]:
                planted[truth["partner_id"]] = sorted(truth["fraud"])
    flagged = {k: v for k, v in verdicts.items() if v.action != "ok"}
    predicted = Counter(pattern_of(v.reasons[0]) for k, v in flagged.items() if k in labels)
    labelled = Counter(labels.values())
    correct: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    for key, label in labels.items():
        verdict = flagged.get(key)
        if verdict is None:
            continue
        caught[label] += 1
        if pattern_of(verdict.reasons[0]) == label:
            correct[label] += 1
    patterns = {
        label: PatternScore(labelled[label], predicted[label], correct[label], caught[label])
        for label in sorted(labelled)
        if label != "clean"
    }
    partners: dict[str, Counter[str]] = {}
    for verdict in verdicts.values():
        if verdict.subject_type == "partner" and verdict.reasons:
            partners.setdefault(verdict.subject_id, Counter()).update(verdict.reasons)
    status_updates = sum(1 for k in flagged if k not in labels and k[0] == "conversion")
    return FraudReport(
        patterns,
        labelled["clean"],
        caught["clean"],
        status_updates,
        sum(1 for key in stolen if key in flagged),
        {k: dict(sorted(v.items())) for k, v in sorted(partners.items())},
        planted,
    )
