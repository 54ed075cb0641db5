"""``clicktrail evaluate``: the pipeline's output scored against the simulator's ground truth.

Every number here comes from ``truth.jsonl`` on one side and the store's tables on the
other; nothing is taken from a detector's own idea of how well it did. What the pipeline
does not produce yet (a detector or model that is not built) shows as zero flagged or
"no rows": measured, not assumed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from clicktrail.simulate.oracle import oracle_auc
from clicktrail.sinks.store import Store


@dataclass
class Row:
    section: str
    what: str
    value: float | None
    detail: str = ""


@dataclass
class Evaluation:
    scenario: dict[str, Any]
    rows: list[Row] = field(default_factory=list)

    def add(self, section: str, what: str, value: float | None, detail: str = "") -> None:
        self.rows.append(Row(section, what, value, detail))

    def table(self) -> str:
        cells = [["section", "measure", "value", "detail"]]
        for row in self.rows:
            if row.value is None:
                shown = "-"
            elif row.value.is_integer() and abs(row.value) >= 2:
                shown = f"{int(row.value):,}"
            else:
                shown = f"{row.value:.4f}"
            cells.append([row.section, row.what, shown, row.detail])
        widths = [max(len(r[i]) for r in cells) for i in range(4)]
        lines = [
            "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in cells
        ]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)

    def as_json(self) -> str:
        return json.dumps(
            {
                "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "scenario": self.scenario,
                "rows": [asdict(r) for r in self.rows],
            },
            indent=2,
        )


def _truth(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as lines:
        for line in lines:
            yield orjson.loads(line)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def evaluate(directory: Path, store: Store) -> Evaluation:
    scenario = json.loads((directory / "scenario.json").read_text(encoding="utf-8"))
    result = Evaluation({k: scenario.get(k) for k in ("scenario", "seed", "lines", "events")})
    click_labels: dict[str, str] = {}
    conversions: dict[str, dict[str, Any]] = {}
    offenders: set[tuple[str, str]] = set()
    domains: set[tuple[str, str]] = set()
    inflation: dict[tuple[str, str], float] = {}
    for record in _truth(directory / "truth.jsonl"):
        kind = record["kind"]
        if kind == "click":
            click_labels[record["click_id"]] = record["label"]
        elif kind == "conversion":
            conversions[record["event_id"]] = record
        elif kind == "bidder" and record["offender"]:
            key = (record["brand"], record["partner_id"] or record["display_domain"])
            offenders.add(key)
            domains.add((record["brand"], record["display_domain"]))
            inflation[key] = record["cpc_inflation"]
    _attribution(result, store, conversions)
    _fraud(result, store, click_labels, conversions)
    _brand(result, store, offenders, inflation)
    _domain_traces(result, store, domains)
    _models(result, store, directory / "truth.jsonl")
    return result


def _attribution(result: Evaluation, store: Store, truth: dict[str, dict[str, Any]]) -> None:
    credited: dict[str, str | None] = {}
    for conversion_id, touch, click_id, impression_id, _weight in store.rows(
        f"SELECT conversion_id, touch, click_id, impression_id, weight "
        f"FROM {store.database}.attributed_latest ORDER BY weight"
    ):
        credited[conversion_id] = (
            None if touch == "none" else (impression_id if touch == "view" else click_id)
        )
    right = Counter[str]()
    total = Counter[str]()
    for event_id, record in truth.items():
        touch = record["touch"]
        total[touch] += 1
        if credited.get(event_id) == record["credit"]:
            right[touch] += 1
    result.add(
        "attribution",
        "last-click credit matches truth",
        _ratio(sum(right.values()), sum(total.values())),
        f"{sum(right.values()):,} of {sum(total.values()):,} conversions",
    )
    for touch in ("click", "view", "none"):
        result.add(
            "attribution",
            f"  of which touch={touch}",
            _ratio(right[touch], total[touch]),
            f"{right[touch]:,} of {total[touch]:,}",
        )


def _fraud(
    result: Evaluation,
    store: Store,
    clicks: dict[str, str],
    conversions: dict[str, dict[str, Any]],
) -> None:
    """Per pattern: a subject is predicted as the pattern its strongest reason names."""
    from clicktrail.processors.fraud import REASONS, pattern_of

    predicted: dict[str, str] = {}
    for subject_id, reasons in store.rows(
        f"SELECT subject_id, argMax(reasons, ts) FROM {store.database}.fraud_verdicts "
        "WHERE action != 'ok' AND subject_type IN ('click', 'conversion') GROUP BY subject_id"
    ):
        known = [r for r in reasons if r in REASONS]
        predicted[subject_id] = pattern_of(known[0]) if known else "other"
    labels = {**clicks, **{k: v["label"] for k, v in conversions.items()}}
    patterns = sorted({label for label in labels.values() if label != "clean"})
    clean = [k for k, label in labels.items() if label == "clean"]
    false_positives = sum(1 for k in clean if k in predicted)
    result.add(
        "fraud",
        "clean events flagged (false-positive rate)",
        _ratio(false_positives, len(clean)),
        f"{false_positives:,} of {len(clean):,}",
    )
    for pattern in patterns:
        members = [k for k, label in labels.items() if label == pattern]
        caught = sum(1 for k in members if predicted.get(k) == pattern)
        named = [k for k, p in predicted.items() if p == pattern and k in labels]
        right = sum(1 for k in named if labels[k] == pattern)
        result.add(
            "fraud",
            f"{pattern} recall",
            _ratio(caught, len(members)),
            f"{caught:,} of {len(members):,} planted",
        )
        result.add(
            "fraud",
            f"{pattern} precision",
            _ratio(right, len(named)),
            f"{right:,} of {len(named):,} flagged as {pattern}" if named else "nothing flagged",
        )


def _brand(
    result: Evaluation,
    store: Store,
    offenders: set[tuple[str, str]],
    inflation: dict[tuple[str, str], float],
) -> None:
    db = store.database
    estimates: dict[tuple[str, str], float | None] = {}
    for brand, offender, estimate in store.rows(
        f"SELECT brand_id, offender_id, max(est_cpc_inflation) FROM {db}.brand_conflicts FINAL "
        "WHERE offender_kind != 'domain' GROUP BY brand_id, offender_id"
    ):
        estimates[(brand, offender)] = estimate
    found = set(estimates)
    true_found = found & offenders
    result.add(
        "brand conflict",
        "offenders found (recall)",
        _ratio(len(true_found), len(offenders)),
        f"{len(true_found)} of {len(offenders)} (brand, offender) pairs",
    )
    result.add(
        "brand conflict",
        "offenders found (precision)",
        _ratio(len(true_found), len(found)),
        f"{len(found)} reported" if found else "no conflicts reported",
    )
    errors = [
        abs(estimate - inflation[key])
        for key, estimate in estimates.items()
        if estimate is not None and key in inflation
    ]
    result.add(
        "brand conflict",
        "CPC inflation, mean absolute error",
        sum(errors) / len(errors) if errors else None,
        f"estimated for {len(errors)} of {len(true_found)} offenders (truth: relative CPC raise)",
    )
    alerts = store.rows(f"SELECT count() FROM {db}.alerts WHERE kind = 'brand_conflict'")[0][0]
    result.add(
        "brand conflict",
        "alerts delivered",
        float(alerts),
        "time to alert needs alert delivery" if not alerts else "",
    )


def _domain_traces(result: Evaluation, store: Store, domains: set[tuple[str, str]]) -> None:
    """Conflicts found only in auction-insights exports name a display domain, not who is
    behind it; such a domain is right when a planted offender of that brand shows it."""
    traced = {
        (brand, domain)
        for brand, domain in store.rows(
            f"SELECT DISTINCT brand_id, offender_id FROM {store.database}.brand_conflicts "
            "WHERE offender_kind = 'domain'"
        )
    }
    right = traced & domains
    result.add(
        "brand conflict",
        "auction-insights domains (precision)",
        _ratio(len(right), len(traced)),
        f"{len(right)} of {len(traced)} domains shown by planted offenders"
        if traced
        else "no domain conflicts reported",
    )


def _models(result: Evaluation, store: Store, truth_path: Path) -> None:
    oracle = oracle_auc(truth_path)
    latest = {
        action: auc
        for action, auc in store.rows(
            f"SELECT action, argMax(auc, ts) FROM {store.database}.model_quality GROUP BY action"
        )
    }
    for action, figures in oracle.items():
        model = latest.get(action)
        detail = f"oracle {figures['auc']:.4f} on {figures['clicks']:,} clicks"
        if model is None:
            detail += "; no model quality recorded"
        result.add("per-action model", f"{action} AUC", model, detail)
    lift_rows = [r for r in result.rows if r.section == "per-action model" and r.value is not None]
    if not lift_rows:
        result.add(
            "per-action model",
            "lift of the top score decile",
            None,
            "needs per-click scores in the store",
        )


def replay_scenario(directory: Path, store: Store, progress: Callable[[str], None]) -> None:
    from clicktrail.config import load_registry
    from clicktrail.runtime.embedded import EmbeddedRuntime
    from clicktrail.runtime.replay import expand, replay
    from clicktrail.sinks.migrations import migrate

    migrate(store)
    runtime = EmbeddedRuntime(load_registry(directory / "registry.yaml"), store)
    started = time.monotonic()
    stats = replay(
        runtime,
        expand([str(directory)]),  # the events, then the auction-insights export
        lambda s, elapsed: progress(f"{s.read:,} events replayed ({s.read / elapsed:,.0f}/s)"),
    )
    progress(
        f"replayed {stats.read:,} events and {stats.insight_rows:,} auction-insights rows in "
        f"{time.monotonic() - started:.1f} s ({stats.dead_lettered:,} dead-lettered)"
    )
