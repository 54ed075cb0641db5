"""``clicktrail evaluate``: the pipeline's output scored against the simulator's ground truth.

Every number here comes from ``truth.jsonl`` on one side and the store's tables on the
other; nothing is taken from a detector's own idea of how well it did. What the pipeline
does not produce yet (a detector or model that is not built) shows as zero flagged or
"no rows": measured, not assumed. Click-time scores and alert timing, which need event
times from ``events.jsonl`` too, are in :mod:`clicktrail.evaluation_live`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from clicktrail.sinks.store import Store, StoreError


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
        return markdown_table(cells)

    def as_json(self) -> str:
        return json.dumps(
            {
                "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "scenario": self.scenario,
                "rows": [asdict(r) for r in self.rows],
            },
            indent=2,
        )


def markdown_table(cells: list[list[str]]) -> str:
    """Rows of cells (the first is the header) as a Markdown table, columns padded."""
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _truth(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as lines:
        for line in lines:
            yield orjson.loads(line)


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def event_ms(value: int | str) -> int:
    """Epoch milliseconds of an event's ``ts`` (clicks and impressions carry epoch ms,
    conversions RFC 3339)."""
    if isinstance(value, int):
        return value
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass
class Truth:
    """What the evaluation needs from ``truth.jsonl``, gathered in one pass."""

    click_labels: dict[str, str] = field(default_factory=dict)
    conversions: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[str, tuple[dict[str, float], dict[str, int]]] = field(default_factory=dict)
    offenders: set[tuple[str, str]] = field(default_factory=set)
    offenses: set[tuple[str, str, str]] = field(default_factory=set)
    domains: set[tuple[str, str]] = field(default_factory=set)
    inflation: dict[tuple[str, str], float] = field(default_factory=dict)
    offending: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Offending impression or click id -> (brand, offender)."""
    partners: dict[str, dict[str, Any]] = field(default_factory=dict)
    start: int = 0

    def add(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind == "click":
            self.click_labels[record["click_id"]] = record["label"]
            if "p" in record:
                self.outcomes[record["click_id"]] = (record["p"], record["y"])
            if "offense" in record:
                offense = record["offense"]
                self.offending[record["click_id"]] = (offense["brand"], offense["offender"])
        elif kind == "conversion":
            self.conversions[record["event_id"]] = record
        elif kind == "impression":
            self.offending[record["impression_id"]] = (record["brand"], record["offender"])
        elif kind == "bidder" and record["offender"]:
            key = (record["brand"], record["partner_id"] or record["display_domain"])
            self.offenders.add(key)
            self.offenses.add((*key, record["offense"]))
            self.domains.add((record["brand"], record["display_domain"]))
            self.inflation[key] = record["cpc_inflation"]
        elif kind == "partner":
            self.partners[record["partner_id"]] = record
        elif kind == "meta":
            self.start = event_ms(record["start"])

    def timed_ids(self) -> set[str]:
        """Events whose time the alert timing needs: fraud and offending ones."""
        fraud = {k for k, label in self.click_labels.items() if label != "clean"}
        fraud |= {k for k, c in self.conversions.items() if c["label"] != "clean"}
        return fraud | set(self.offending)


def evaluate(directory: Path, store: Store) -> Evaluation:
    scenario = json.loads((directory / "scenario.json").read_text(encoding="utf-8"))
    result = Evaluation({k: scenario.get(k) for k in ("scenario", "seed", "lines", "events")})
    truth = Truth()
    for record in _truth(directory / "truth.jsonl"):
        truth.add(record)
    _attribution(result, store, truth.conversions)
    _fraud(result, store, truth.click_labels, truth.conversions)
    _partner_verdicts(result, store, truth.partners)
    _brand(result, store, truth.offenders, truth.inflation)
    _brand_kinds(result, store, truth.offenses)
    _domain_traces(result, store, truth.domains)
    from clicktrail.evaluation_live import alert_timing, models  # it builds on this module

    models(result, store, truth, directory)
    alert_timing(result, store, truth, directory / "events.jsonl")
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
        ratio(sum(right.values()), sum(total.values())),
        f"{sum(right.values()):,} of {sum(total.values()):,} conversions",
    )
    for touch in ("click", "view", "none"):
        result.add(
            "attribution",
            f"  of which touch={touch}",
            ratio(right[touch], total[touch]),
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
        ratio(false_positives, len(clean)),
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
            ratio(caught, len(members)),
            f"{caught:,} of {len(members):,} planted",
        )
        result.add(
            "fraud",
            f"{pattern} precision",
            ratio(right, len(named)),
            f"{right:,} of {len(named):,} flagged as {pattern}" if named else "nothing flagged",
        )


def _partner_verdicts(result: Evaluation, store: Store, partners: dict[str, Any]) -> None:
    """Partner-level verdicts against the partners the truth names as cheats: overall,
    and for click flooding, which in the field only shows at partner level (CTIT shape,
    conversion rate) once a flood is spread too thin for per-address counters."""
    from clicktrail.processors.fraud import pattern_of

    reasons: dict[str, set[str]] = {}
    for partner, reason in store.rows(
        f"SELECT DISTINCT partner_id, arrayJoin(reasons) FROM {store.database}.fraud_verdicts "
        "WHERE subject_type = 'partner' AND action != 'ok'"
    ):
        reasons.setdefault(partner, set()).add(reason)
    cheats = {key for key, p in partners.items() if p.get("fraud")}
    for label, planted, judged in (
        ("partners with planted fraud", cheats, set(reasons)),
        (
            "click_flooding partners",
            {key for key in cheats if "click_flooding" in partners[key]["fraud"]},
            {p for p, rs in reasons.items() if any(pattern_of(r) == "click_flooding" for r in rs)},
        ),
    ):
        found = len(planted & judged)
        result.add(
            "fraud",
            f"{label} given a verdict (recall)",
            ratio(found, len(planted)),
            f"{found} of {len(planted)}: {', '.join(sorted(planted - judged)) or 'none missed'}",
        )
        right = len(judged & planted)
        result.add(
            "fraud",
            f"{label} given a verdict (precision)",
            ratio(right, len(judged)),
            f"{right} of {len(judged)}: {', '.join(sorted(judged - planted)) or 'no honest one'}",
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
        # keyword estimates pooled per offender, weighted by the offender's impressions there
        "SELECT brand_id, offender_id, "
        "sumIf(est_cpc_inflation * impressions, isNotNull(est_cpc_inflation)) "
        "/ nullIf(sumIf(impressions, isNotNull(est_cpc_inflation)), 0) "
        f"FROM {db}.brand_conflicts FINAL "
        "WHERE offender_kind != 'domain' GROUP BY brand_id, offender_id"
    ):
        estimates[(brand, offender)] = estimate
    found = set(estimates)
    true_found = found & offenders
    result.add(
        "brand conflict",
        "offenders found (recall)",
        ratio(len(true_found), len(offenders)),
        f"{len(true_found)} of {len(offenders)} (brand, offender) pairs",
    )
    result.add(
        "brand conflict",
        "offenders found (precision)",
        ratio(len(true_found), len(found)),
        f"{len(found)} reported" if found else "no conflicts reported",
    )
    errors = {
        key: abs(estimate - inflation[key])
        for key, estimate in estimates.items()
        if estimate is not None and key in inflation
    }
    shown = ", ".join(
        f"{o}@{b} {estimates[(b, o)]:.2f} vs {inflation[(b, o)]:.2f}" for b, o in sorted(errors)
    )
    result.add(
        "brand conflict",
        "CPC inflation, mean absolute error",
        sum(errors.values()) / len(errors) if errors else None,
        f"estimated for {len(errors)} of {len(true_found)} offenders (truth: relative CPC raise)",
    )
    worst = max(errors, key=lambda key: errors[key]) if errors else None
    result.add(
        "brand conflict",
        "CPC inflation, worst offender's absolute error",
        errors[worst] if worst else None,
        f"estimated vs true: {shown}" if errors else "no estimate",
    )
    sent, pairs = store.rows(
        f"SELECT uniqExactIf(alert_id, status = 'sent'), uniqExactIf(dedup_key, status = 'sent') "
        f"FROM {db}.alerts WHERE kind = 'brand_conflict'"
    )[0]
    result.add(
        "brand conflict",
        "alerts delivered",
        float(sent),
        f"to {pairs:,} (brand, offender) keys: new or escalated conflicts only",
    )


def _brand_kinds(result: Evaluation, store: Store, offenses: set[tuple[str, str, str]]) -> None:
    """Per planted offense kind: a reported (brand, offender) counts for the kinds its
    conflicts' signals stand for, mapped as the offline scorer maps them."""
    from clicktrail.processors.brand.offline import OFFENSES
    from clicktrail.processors.brand.signals import OFFENSE_OF_SIGNAL

    reported = {
        (brand, offender, OFFENSE_OF_SIGNAL.get(signal, signal))
        for brand, offender, signal in store.rows(
            f"SELECT DISTINCT brand_id, offender_id, signal FROM {store.database}.brand_conflicts "
            "FINAL WHERE offender_kind != 'domain'"
        )
    }
    for kind in OFFENSES:
        planted = {o[:2] for o in offenses if o[2] == kind}
        found = {o[:2] for o in reported if o[2] == kind}
        right = planted & found
        result.add(
            "brand conflict",
            f"  of which {kind} (recall)",
            ratio(len(right), len(planted)),
            f"{len(right)} of {len(planted)} pairs" if planted else "none planted",
        )
        result.add(
            "brand conflict",
            f"  of which {kind} (precision)",
            ratio(len(right), len(found)),
            f"{len(right)} of {len(found)} reported" if found else "none reported",
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
        ratio(len(right), len(traced)),
        f"{len(right)} of {len(traced)} domains shown by planted offenders"
        if traced
        else "no domain conflicts reported",
    )


def stored_clicks(store: Store) -> int:
    """Clicks the store holds (0 when its tables do not exist yet): a replayed run is
    scored as it is rather than replayed twice."""
    try:
        return int(store.rows(f"SELECT count() FROM {store.database}.clicks")[0][0])
    except StoreError:
        return 0


def replay_scenario(directory: Path, store: Store, progress: Callable[[str], None]) -> None:
    from clicktrail.config import load_registry
    from clicktrail.runtime.replay import expand, replay, replay_runtime
    from clicktrail.sinks.migrations import migrate

    migrate(store)
    runtime = replay_runtime(load_registry(directory / "registry.yaml"), store)
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
