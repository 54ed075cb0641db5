"""The matrix's arithmetic: worst is the run furthest from the goal, in the measure's own
direction; the goal column judges the worst case, never the median."""

from __future__ import annotations

import json

from clicktrail.evaluation import Evaluation
from clicktrail.evaluation_matrix import Matrix, Measure

FP = "clean events flagged (false-positive rate)"


def run(fp: float | None = None, **values: float | None) -> Evaluation:
    result = Evaluation({})
    if fp is not None:
        result.add("fraud", FP, fp)
    for what, value in values.items():
        section = "per-action model" if "gap" in what else "fraud"
        result.add(section, what.replace("_", " "), value)
    return result


def test_worst_is_the_lowest_recall_and_the_highest_false_positive_rate() -> None:
    matrix = Matrix()
    matrix.add("a", {"seed": 1}, run(bot_recall=0.99, fp=0.0002))
    matrix.add("b", {"seed": 2}, run(bot_recall=0.91, fp=0.0001))
    matrix.add("c", {"seed": 3}, run(bot_recall=0.97, fp=0.003))
    recall = matrix.measures[("fraud", "bot recall")]
    assert recall.worst() == ("b", 0.91) and recall.median() == 0.97
    assert recall.meets_goal() is False  # the median meets 0.95; the worst does not
    rate = matrix.measures[("fraud", FP)]
    assert rate.worst() == ("c", 0.003) and rate.meets_goal() is False


def test_a_run_without_the_measure_is_left_out_not_counted_as_zero() -> None:
    measure = Measure("fraud", "orphan precision", {"a": None, "b": 0.98, "c": 0.96})
    assert measure.worst() == ("c", 0.96) and measure.meets_goal() is True
    assert Measure("fraud", "orphan precision", {"a": None}).worst() is None


def test_the_gap_to_the_oracle_is_worse_when_larger() -> None:
    matrix = Matrix()
    matrix.add("a", {}, run(install_AUC_2nd_half_gap_to_oracle=0.004))
    matrix.add("b", {}, run(install_AUC_2nd_half_gap_to_oracle=0.03))
    gap = matrix.measures[("per-action model", "install AUC 2nd half gap to oracle")]
    assert gap.worst() == ("b", 0.03) and gap.meets_goal() is False


def test_table_and_json_name_the_worst_run() -> None:
    matrix = Matrix()
    matrix.add("v01-s1", {"seed": 1, "variant": {"index": 1}}, run(bot_recall=0.5))
    matrix.add("v02-s2", {"seed": 2, "variant": {"index": 2}}, run(bot_recall=1.0))
    table = matrix.table()
    assert "| fraud   | bot recall | 0.5000 | 0.7500 | v01-s1" in table and "MISSED" in table
    data = json.loads(matrix.as_json())
    assert data["runs"][0] == {"run": "v01-s1", "seed": 1, "index": 1}
    assert data["measures"][0]["worst"] == ["v01-s1", 0.5]
