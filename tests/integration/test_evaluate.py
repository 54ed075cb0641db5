"""simulate | evaluate end to end: numbers come from the truth file and the store."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import orjson

from clicktrail.processors.brand.offline import OFFENSES

CLI = [sys.executable, "-m", "clicktrail.cli.main", "--log-level", "warning"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


def rows(path: Path) -> dict[str, dict[str, object]]:
    return {r["what"].strip(): r for r in json.loads(path.read_text())["rows"]}


def test_simulate_then_evaluate(tmp_path: Path) -> None:
    run("simulate", "--out", "sim", "--events", "8000", "--seed", "11", cwd=tmp_path)
    result = run("evaluate", "sim", "--json", "eval.json", cwd=tmp_path)
    assert "| attribution" in result.stdout
    first = rows(tmp_path / "eval.json")
    accuracy = first["last-click credit matches truth"]["value"]
    assert isinstance(accuracy, float) and accuracy >= 0.95
    scenario = json.loads((tmp_path / "sim" / "scenario.json").read_text())
    patterns = {p for p in [*scenario["clicks"], *scenario["conversions"]] if p != "clean"}
    for pattern in patterns:  # the embedded pipeline's verdicts, scored against the truth
        assert first[f"{pattern} recall"]["value"] >= 0.9, pattern
        assert first[f"{pattern} precision"]["value"] >= 0.9, pattern
    false_positive_rate = first["clean events flagged (false-positive rate)"]["value"]
    assert isinstance(false_positive_rate, float) and false_positive_rate < 0.01
    assert first["offenders found (recall)"]["value"] >= 0.9
    assert first["offenders found (precision)"]["value"] >= 0.9
    traced = first["auction-insights domains (precision)"]  # replayed from the export
    assert traced["value"] == 1.0 and not str(traced["detail"]).startswith("0 of"), traced
    for kind in OFFENSES:  # every planted kind of brand bidding, named as the truth names it
        recall, precision = (
            first[f"of which {kind} (recall)"],
            first[f"of which {kind} (precision)"],
        )
        if recall["detail"] != "none planted":
            assert recall["value"] >= 0.9, recall
            assert precision["value"] >= 0.9, precision
    assert "purchase AUC, 2nd half" in first and "purchase progressive AUC (live)" in first
    assert_alert_timing(first)

    # Change the truth for one credited conversion: the score must move by exactly one.
    truth = tmp_path / "sim" / "truth.jsonl"
    lines = truth.read_bytes().splitlines()
    for i, line in enumerate(lines):
        record = orjson.loads(line)
        if record["kind"] == "conversion" and record["touch"] == "click":
            record["credit"] = "not-the-credited-click"
            lines[i] = orjson.dumps(record)
            break
    truth.write_bytes(b"\n".join(lines) + b"\n")
    run("evaluate", "sim", "--json", "eval2.json", cwd=tmp_path)
    second = rows(tmp_path / "eval2.json")
    matched = int(
        str(first["last-click credit matches truth"]["detail"]).split()[0].replace(",", "")
    )
    assert str(second["last-click credit matches truth"]["detail"]).startswith(
        f"{matched - 1:,} of"
    )


def test_fraud_conflicts_and_models_views(tmp_path: Path) -> None:
    run("simulate", "--out", "sim", "--events", "8000", "--seed", "11", cwd=tmp_path)
    run("replay", "--config", "sim/registry.yaml", "sim/events.jsonl", cwd=tmp_path)
    fraud = run("fraud", "--limit", "3", cwd=tmp_path).stdout.splitlines()
    assert fraud[0].split()[:4] == ["partner", "clicks", "flagged_clicks", "flagged_share"]
    flagged = {line.split()[0] for line in fraud[2:5]}
    planted = {
        "net-flood",
        "net-inject",
        "pub-botfarm",
        "pub-cloudhost",
        "aff-incent",
        "aff-turncoat",
        "aff-shadow",
    }
    assert flagged <= planted, "the most flagged partners are the planted cheaters"
    conflicts = run("conflicts", cwd=tmp_path).stdout
    assert "aff-brandjack" in conflicts
    assert "agency-searchpro" not in conflicts, "authorized to bid on the brand"

    models = run("models", "--lift", cwd=tmp_path).stdout
    quality, _, lifted = models.partition("\n\n")
    lines = quality.splitlines()
    assert lines[0].split()[:6] == ["action", "model", "examples", "positives", "base_rate", "auc"]
    by_action = {line.split()[0]: line.split() for line in lines[2:-1]}
    assert set(by_action) == {"lead", "signup", "add_to_cart", "purchase", "install"}
    assert all(int(row[2]) > 0 for row in by_action.values()), "every model learned"
    for row in by_action.values():  # top features (the cell may be cut short with an ellipsis)
        assert any("=" in cell and ":" in cell for cell in row[7:]), row
    lift_lines = lifted.splitlines()
    assert lift_lines[0].split()[:5] == ["action", "clicks", "base_rate", "top_decile_rate", "lift"]
    lifts = {line.split()[0]: float(line.split()[4]) for line in lift_lines[2:-1]}
    assert set(lifts) == set(by_action)
    assert max(lifts.values()) > 1.5, "the top decile converts better than the average"


def assert_alert_timing(found: dict[str, dict[str, object]]) -> None:
    """Alerts go to planted offenders and cheaters only, and never before they offend."""
    assert found["brand: alerts for non-offenders"]["value"] == 0
    assert found["brand: true offenders alerted"]["value"] >= 0.375  # 4 of 8 pairs at 8k events
    assert found["brand: first alert delay, median (min)"]["value"] >= 0
    assert 1 <= found["brand: offending events seen at first alert, median"]["value"] <= 25
    assert found["fraud_share: clean partners alerted (false alerts)"]["value"] == 0
    assert found["fraud_share: cheating partners alerted"]["value"] >= 2 / 7
    delays = {w: r["value"] for w, r in found.items() if w.startswith("fraud_share: ")}
    assert all(d >= 0 for w, d in delays.items() if w.endswith("delay (min)") and d is not None)
    turncoat = [d for w, d in delays.items() if w.startswith("fraud_share: turncoat ")]
    assert turncoat and turncoat[0] is not None and 0 <= turncoat[0] <= 240, delays


def test_models_scored_against_true_outcomes(tmp_path: Path) -> None:
    """Click-time scores against the simulator's outcomes, beside the oracle."""
    run("simulate", "--out", "sim", "--events", "8000", "--seed", "11", cwd=tmp_path)
    run("evaluate", "sim", "--json", "eval.json", cwd=tmp_path)
    found = rows(tmp_path / "eval.json")

    actions = {w.split()[0] for w in found if w.endswith(" AUC, 2nd half")}
    assert actions == {"lead", "signup", "add_to_cart", "purchase", "install"}
    judged = 0
    for action in sorted(actions):
        second = found[f"{action} AUC, 2nd half"]
        converted = re.search(r"\(([\d,]+) converted\)", str(second["detail"]))
        assert converted, second
        model, gap = second["value"], found[f"{action} AUC, 2nd half gap to oracle"]["value"]
        assert isinstance(model, float) and isinstance(gap, float)
        assert "oracle" in str(found[f"{action} AUC, all clicks"]["detail"])
        if int(converted.group(1).replace(",", "")) < 50:
            continue  # too few conversions for a stable AUC on 8,000 events
        judged += 1
        assert model >= 0.6, second  # clearly better than chance
        assert gap <= 0.22, (action, gap)  # on the oracle's own clicks: 0.10-0.17 here
        assert found[f"{action} calibration error, 2nd half"]["value"] < 0.1
        assert found[f"{action} lift of the top score decile"]["value"] > 1.1
        assert found[f"{action} top 3 deciles keep conversions"]["value"] > 0.4  # random: 0.3
        assert found[f"{action} progressive AUC (live)"]["value"] > 0.55
        # beside a plain online logistic regression on the same clicks and labels
        assert found[f"{action} plain baseline AUC, 2nd half"]["value"] > 0.5
        assert found[f"{action} model minus plain baseline, 2nd half"]["value"] >= 0, action
    assert judged >= 3


def test_evaluate_matrix_reports_the_worst_run_and_reuses_its_runs(tmp_path: Path) -> None:
    args = ("evaluate", "--matrix", "2", "--events", "3000", "--seed", "5", "mx")
    first = run(*args, "--json", "m1.json", cwd=tmp_path)
    assert "| section" in first.stdout and "worst run" in first.stdout
    data = json.loads((tmp_path / "m1.json").read_text())
    assert [r["run"] for r in data["runs"]] == ["v01-s5", "v02-s6"]
    assert [r["index"] for r in data["runs"]] == [1, 2]  # each run its own variant
    recall = next(m for m in data["measures"] if m["measure"] == "bot recall")
    values = [v for v in recall["values"].values() if v is not None]
    assert recall["worst"][1] == min(values)
    again = run(*args, "--json", "m2.json", cwd=tmp_path)  # scored again, not re-simulated
    assert "simulating" not in again.stderr and "replayed" not in again.stderr
    assert json.loads((tmp_path / "m2.json").read_text())["measures"] == data["measures"]
