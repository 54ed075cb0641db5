"""What the pipeline gives while it runs, scored against the simulator's truth: the
per-action scores each click got, and the alerts that went out.

Scores: the store keeps the score each click was given at click time, before anything was
learned from it (``click_scores``); the truth keeps, for each clean click of a pool user,
the true probability ``p`` and the outcome ``y`` per action. Scoring those scores against
``y`` measures the model on real outcomes, free of the pipeline's own labels (late, stolen
or cut off by a horizon), and ``p`` scored the same way on the very same clicks is the
ceiling. The live progressive AUC from ``model_quality`` stays beside it: it is what an
operator sees, on the labels the pipeline learned.

Alerts: how long after the first offending or fraudulent event (event time, from the
alert bodies and ``events.jsonl``) the first alert went out, and who was alerted wrongly.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import orjson

from clicktrail.evaluation import Evaluation, Truth, event_ms, ratio
from clicktrail.metrics import auc
from clicktrail.processors.models.lift import lift
from clicktrail.processors.models.quality import BUCKETS
from clicktrail.sinks.store import Store

SECTION = "per-action model"
TOP_DECILES = 3
ALERTS = "alert timing"
EVENT_TIME = "event time; wall-clock event-to-alert latency is what clicktrail bench measures"
_ID_OF = {"click": "click_id", "impression": "impression_id", "conversion": "event_id"}


@dataclass(frozen=True, slots=True)
class Scored:
    """One click and action: when, the model's score, the true probability and outcome."""

    ts: int
    click_id: str
    score: float
    p: float
    y: int
    cost: float | None


def calibration_error(pairs: Iterable[tuple[float, int]]) -> float | None:
    """Expected calibration error over equal-width score buckets, as the live metric has it:
    sum over buckets of |scores - outcomes|, over all clicks."""
    count = 0
    scores = [0.0] * BUCKETS
    outcomes = [0] * BUCKETS
    for score, y in pairs:
        bucket = min(int(min(max(score, 0.0), 1.0) * BUCKETS), BUCKETS - 1)
        scores[bucket] += score
        outcomes[bucket] += y
        count += 1
    if not count:
        return None
    return sum(abs(s - o) for s, o in zip(scores, outcomes, strict=True)) / count


def scored_clicks(
    store: Store, outcomes: dict[str, tuple[dict[str, float], dict[str, int]]]
) -> dict[str, list[Scored]]:
    """Per action, the clicks that have both a click-time score and a true outcome, by time.

    ``cost`` is the click's cost from ``clicks`` (None when the click carries none)."""
    db = store.database
    per_action: dict[str, list[Scored]] = {}
    for click_id, ts, scores, cost in store.rows(
        f"SELECT s.click_id, toUnixTimestamp64Milli(any(s.ts)), any(s.scores), any(c.cost) "
        f"FROM {db}.click_scores AS s LEFT JOIN "
        f"(SELECT click_id, any(cost) AS cost FROM {db}.clicks GROUP BY click_id) AS c "
        "ON s.click_id = c.click_id GROUP BY s.click_id"
    ):
        truth = outcomes.get(click_id)
        if truth is None:
            continue
        p, y = truth
        for action, score in scores.items():
            if action in p:
                per_action.setdefault(action, []).append(
                    Scored(
                        int(ts),
                        click_id,
                        float(score),
                        p[action],
                        y[action],
                        None if cost is None else float(cost),
                    )
                )
    for rows in per_action.values():
        rows.sort(key=lambda r: (r.ts, r.click_id))
    return per_action


def _auc_pair(rows: list[Scored]) -> tuple[float | None, float | None]:
    """(model AUC on y, oracle AUC of p on y) over the same clicks; None without both classes."""
    model = auc((r.score, r.y) for r in rows)
    oracle = auc((r.p, r.y) for r in rows)
    return (None if math.isnan(model) else model), (None if math.isnan(oracle) else oracle)


def _compare(result: Evaluation, what: str, rows: list[Scored], gap_row: bool) -> None:
    model, oracle = _auc_pair(rows)
    positives = sum(r.y for r in rows)
    gap = oracle - model if model is not None and oracle is not None else None
    shown = "-" if oracle is None else f"{oracle:.4f}"
    detail = f"oracle {shown} on the same {len(rows):,} clicks ({positives:,} converted)"
    if gap is not None:
        detail += f", gap {gap:+.4f}"
    result.add(SECTION, what, model, detail)
    if gap_row:
        result.add(SECTION, f"{what} gap to oracle", gap, "goal: at most 0.01")


def _live(store: Store) -> dict[str, tuple[Any, ...]]:
    return {
        row[0]: row[1:]
        for row in store.rows(
            "SELECT action, argMax(auc, ts), argMax(examples, ts), argMax(positives, ts), "
            f"argMax(calibration_error, ts) FROM {store.database}.model_quality GROUP BY action"
        )
    }


def models(result: Evaluation, store: Store, truth: Truth, directory: Path | None = None) -> None:
    """Per action: click-time AUC against true outcomes on the second half of the clicks
    by time (the model has warmed up) and on all of them, each beside the oracle on the
    same clicks; calibration and lift on the second half; the live progressive AUC; and,
    with the scenario's ``directory``, the model beside a plain baseline (see
    :func:`baseline`)."""
    per_action = scored_clicks(store, truth.outcomes)
    live = _live(store)
    actions = sorted({a for p, _ in truth.outcomes.values() for a in p} | set(live))
    if not per_action:
        result.add(SECTION, "click-time scores", None, "no click_scores rows match the truth")
    for action in actions:
        rows = per_action.get(action, [])
        second = rows[len(rows) // 2 :]
        if rows:
            _compare(result, f"{action} AUC, 2nd half", second, gap_row=True)
            _compare(result, f"{action} AUC, all clicks", rows, gap_row=False)
            result.add(
                SECTION,
                f"{action} calibration error, 2nd half",
                calibration_error((r.score, r.y) for r in second),
                f"ECE over {BUCKETS} score buckets, click-time scores vs true outcomes",
            )
            _lift(result, action, second)
        figures = live.get(action)
        oracle = _auc_pair(rows)[1] if rows else None
        if figures is None:
            result.add(SECTION, f"{action} progressive AUC (live)", None, "no model_quality rows")
        else:
            value, examples, positives, ece = figures
            result.add(
                SECTION,
                f"{action} progressive AUC (live)",
                value,
                f"on the pipeline's own labels: {examples:,} examples, {positives:,} positives "
                f"(truth: {sum(r.y for r in rows):,} caused)"
                + (f", ECE {ece:.4f}" if ece is not None else "")
                + (f"; oracle {oracle:.4f} on all clicks" if oracle is not None else ""),
            )
    if directory is not None:
        baseline(result, directory)


def baseline(result: Evaluation, directory: Path) -> None:
    """The adaptive model beside a plain online logistic regression (one-hot and per-IP
    counts, learning rate 0.1) on the same clicks with the same delayed labels (the
    truth's, so neither depends on the pipeline's attribution): the second-half AUC of
    each and their difference (DeLong interval), which must not be negative; and the
    best attainable by a batch learner of the same features (``models.ceiling``)."""
    from clicktrail.processors.models.ceiling import ceiling
    from clicktrail.processors.models.offline import run

    ceilings = ceiling(directory)
    for action, figures in sorted(run(directory)["actions"].items()):
        mine, plain = figures["auc_second_half"], figures["baseline_auc_second_half"]
        result.add(
            SECTION,
            f"{action} plain baseline AUC, 2nd half",
            plain,
            f"model {_shown(mine)} on the same clicks and labels, serving {figures['serving']}",
        )
        interval = figures["minus_baseline_95"]
        result.add(
            SECTION,
            f"{action} model minus plain baseline, 2nd half",
            None if mine is None or plain is None else mine - plain,
            "goal: at least 0"
            + (f"; 95% interval {interval[0]:+.4f} to {interval[1]:+.4f}" if interval else ""),
        )
        result.add(
            SECTION,
            f"{action} model minus plain baseline, upper 95% bound",
            interval[1] if interval else None,
            "DeLong, paired on the same clicks; goal: at least 0 (never significantly below)",
        )
        best = ceilings.get(action)
        if best is None:
            continue
        result.add(
            SECTION,
            f"{action} best attainable AUC, 2nd half",
            best.auc,
            f"batch L2 logistic regression on the same features, refitted on every true label "
            f"known so far; oracle {best.oracle_auc:.4f} on the same {best.examples:,} clicks "
            f"({best.positives:,} converted)",
        )
        result.add(
            SECTION,
            f"{action} oracle minus best attainable, 2nd half",
            best.gap,
            "the part of the gap to the oracle no learner of these features closes here",
        )
        result.add(
            SECTION,
            f"{action} best attainable minus model, 2nd half",
            None if mine is None else best.auc - mine,
            "goal: at most 0.01",
        )


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _lift(result: Evaluation, action: str, rows: list[Scored]) -> None:
    """Spend is the clicks' cost only when every click has one; otherwise one per click
    (display, affiliate and e-mail clicks carry no cost, mixing units would mislead)."""
    priced = sum(r.cost is not None for r in rows)
    costs = priced == len(rows)
    figures = lift((r.score, r.y, r.cost if costs else None) for r in rows)
    if figures is None:
        result.add(SECTION, f"{action} lift of the top score decile", None, "no conversions")
        return
    result.add(
        SECTION,
        f"{action} lift of the top score decile",
        figures.lift,
        f"converts {figures.top_decile_rate:.2%} vs {figures.base_rate:.2%} on "
        f"{figures.clicks:,} clicks, 2nd half",
    )
    spend = "cost" if costs else f"clicks; {priced:,} of {len(rows):,} carry a cost"
    result.add(
        SECTION,
        f"{action} top {TOP_DECILES} deciles keep conversions",
        figures.capture[TOP_DECILES - 1],
        f"and save {figures.spend_saved[TOP_DECILES - 1]:.1%} of spend ({spend})",
    )


def _event_times(path: Path, wanted: set[str]) -> dict[str, tuple[int, str | None]]:
    """Event time (epoch ms, earliest copy) and partner of the wanted events."""
    found: dict[str, tuple[int, str | None]] = {}
    with path.open("rb") as lines:
        for line in lines:
            event = orjson.loads(line)
            key = event.get(_ID_OF.get(event.get("type"), "event_id"))
            if key not in wanted:
                continue
            ts = event_ms(event["ts"])
            if key not in found or ts < found[key][0]:
                found[key] = (ts, event.get("partner_id"))
    return found


def _sent(store: Store, kind: str, *, resolved: bool = False) -> list[dict[str, Any]]:
    """Bodies of the alerts of a kind that were sent, once per alert (not per destination);
    without the ``resolved`` ones unless asked: an all-clear alerts nobody to a cheater."""
    bodies = [
        orjson.loads(payload)
        for (payload,) in store.rows(
            f"SELECT any(payload) FROM {store.database}.alerts "
            f"WHERE kind = '{kind}' AND status = 'sent' GROUP BY alert_id"
        )
    ]
    return [b for b in bodies if resolved or b.get("change") != "resolved"]


def _minutes(ms: float) -> float:
    return round(ms / 60_000, 1)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))


def _brand_alert_timing(
    result: Evaluation, store: Store, truth: Truth, times: dict[str, tuple[int, str | None]]
) -> None:
    """Per true (brand, offender): how long after its first offending event, and after how
    many offending events, the first alert about it went out. The start is the earliest
    ``first_seen`` in the pair's alerts; the truth's first offending event is shown beside
    it, so evidence that starts late shows up."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    began: dict[tuple[str, str], int] = {}
    wrong: Counter[tuple[str, str]] = Counter()
    for body in _sent(store, "brand_conflict"):
        evidence = body["evidence"]
        pair = (evidence["brand"], evidence["offender"])
        domain = evidence["offender_kind"] == "domain"  # from auction insights
        if pair not in (truth.domains if domain else truth.offenders):
            wrong[pair] += 1
            continue
        if domain:  # a display domain, not a party whose offending events are known
            continue
        seen = event_ms(evidence["first_seen"])
        began[pair] = min(began.get(pair, seen), seen)
        if pair not in first or event_ms(body["ts"]) < event_ms(first[pair]["ts"]):
            first[pair] = body
    true_began: dict[tuple[str, str], int] = {}
    for key, pair in truth.offending.items():
        if key in times:
            true_began[pair] = min(true_began.get(pair, times[key][0]), times[key][0])
    delays = {pair: event_ms(body["ts"]) - began[pair] for pair, body in first.items()}
    true_delays = [event_ms(first[p]["ts"]) - true_began[p] for p in first if p in true_began]
    counts = {
        pair: body["evidence"]["impressions"] + body["evidence"]["clicks"]
        for pair, body in first.items()
    }
    result.add(
        ALERTS,
        "brand: true offenders alerted",
        ratio(len(first), len(truth.offenders)),
        f"{len(first)} of {len(truth.offenders)} (brand, offender) pairs",
    )
    result.add(
        ALERTS,
        "brand: alerts for non-offenders",
        float(sum(wrong.values())),
        ", ".join(f"{b}/{o}" for b, o in sorted(wrong)) or "none",
    )
    if not delays:
        result.add(ALERTS, "brand: first alert delay, median (min)", None, "no offender alerted")
        return
    worst = max(delays, key=lambda p: delays[p])
    result.add(
        ALERTS,
        "brand: first alert delay, median (min)",
        _minutes(median(delays.values())),
        f"evidence first_seen to the pair's first alert ts, {EVENT_TIME}",
    )
    result.add(
        ALERTS,
        "brand: first alert delay, max (min)",
        _minutes(delays[worst]),
        f"{worst[0]}/{worst[1]}; from the first truly offending event: median "
        f"{_minutes(median(true_delays)) if true_delays else '-'} min",
    )
    result.add(
        ALERTS,
        "brand: offending events seen at first alert, median",
        float(median(counts.values())),
        f"max {max(counts.values())} (impressions + clicks in the first alert's evidence)",
    )


def _fraud_alert_timing(
    result: Evaluation, store: Store, truth: Truth, times: dict[str, tuple[int, str | None]]
) -> None:
    """Per cheating partner: event time from its first fraudulent event (a click or
    conversion of its with a label it is planted to commit, from ``bad_from`` on) to its
    first ``fraud_share`` alert (negative: alerted before it cheated); and the alerts about
    partners that never cheat."""
    cheaters = {k: p for k, p in truth.partners.items() if p["fraud"]}
    labels = {**truth.click_labels, **{k: c["label"] for k, c in truth.conversions.items()}}
    began: dict[str, int] = {}
    for key, label in labels.items():
        ts, partner = times.get(key, (0, None))
        if partner not in cheaters or label not in cheaters[partner]["fraud"]:
            continue
        if ts >= (cheaters[partner]["bad_from"] or 0):
            began[partner] = min(began.get(partner, ts), ts)
    alerted: dict[str, int] = {}
    for body in _sent(store, "fraud_share"):
        partner, ts = body["evidence"]["partner"], event_ms(body["ts"])
        alerted[partner] = min(alerted.get(partner, ts), ts)
    turncoats = {k for k, p in cheaters.items() if (p["bad_from"] or 0) > truth.start}
    delays: dict[str, float] = {}
    for partner in sorted(cheaters, key=lambda k: (k in turncoats, k)):
        start = began.get(partner, cheaters[partner]["bad_from"] or truth.start)
        delay = _minutes(alerted[partner] - start) if partner in alerted else None
        if delay is not None and partner not in turncoats:
            delays[partner] = delay
        what = f"turncoat {partner}" if partner in turncoats else partner
        result.add(
            ALERTS,
            f"fraud_share: {what} delay (min)",
            delay,
            f"{partner}: first fraudulent event {_when(start)}"
            + (f", first alert {_when(alerted[partner])}" if partner in alerted else ", no alert")
            + (" (turns bad mid-stream)" if partner in turncoats else ""),
        )
    if delays:
        slowest = max(delays, key=lambda k: delays[k])
        result.add(
            ALERTS,
            "fraud_share: delay, median (min)",
            float(median(delays.values())),
            f"{len(delays)} partners cheating from the start; {EVENT_TIME}",
        )
        result.add(ALERTS, "fraud_share: delay, max (min)", delays[slowest], slowest)
    caught = sorted(set(cheaters) & set(alerted))
    missed = sorted(set(cheaters) - set(alerted))
    result.add(
        ALERTS,
        "fraud_share: cheating partners alerted",
        ratio(len(caught), len(cheaters)),
        f"{len(caught)} of {len(cheaters)}"
        + (f"; not alerted: {', '.join(missed)}" if missed else ""),
    )
    false = sorted(set(alerted) - set(cheaters))
    result.add(
        ALERTS,
        "fraud_share: clean partners alerted (false alerts)",
        float(len(false)),
        ", ".join(false) or "none",
    )
    changes = Counter(str(b.get("change")) for b in _sent(store, "fraud_share", resolved=True))
    partners = len({b["evidence"]["partner"] for b in _sent(store, "fraud_share", resolved=True)})
    result.add(
        ALERTS,
        "fraud_share: alerts sent",
        float(sum(changes.values())),
        f"to {partners} partners; "
        + (", ".join(f"{n} {change}" for change, n in sorted(changes.items())) or "none"),
    )


def alert_timing(result: Evaluation, store: Store, truth: Truth, events: Path) -> None:
    """Brand and fraud alerts against the truth, in event time."""
    times = _event_times(events, truth.timed_ids())
    _brand_alert_timing(result, store, truth, times)
    _fraud_alert_timing(result, store, truth, times)
