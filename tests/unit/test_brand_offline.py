"""One small simulated scenario, scored end to end against its truth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clicktrail.processors.brand import offline

SIMULATE = (sys.executable, "-m", "clicktrail.cli.main", "simulate")
FLOOR = 0.95  # measured 1.00 for every kind at 20 000 events, seeds 3, 5 and 9


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("brandsim")
    subprocess.run(
        [*SIMULATE, "--out", str(out), "--events", "20000", "--seed", "5"],
        check=True,
        capture_output=True,
    )
    return out


def test_every_offense_kind_is_found(scenario: Path) -> None:
    """Each planted kind is found per (brand, offender) and per event; the agency never is."""
    report = offline.evaluate(scenario)
    for kind in offline.OFFENSES:
        pairs, events = report.pairs[kind], report.events[kind]
        assert pairs.truth > 0 and events.truth > 0, kind
        assert (pairs.recall or 0) >= FLOOR and (pairs.precision or 0) >= FLOOR, kind
        assert (events.recall or 0) >= FLOOR and (events.precision or 0) >= FLOOR, kind
    assert report.authorized_flagged == []
    brandjack = report.inflation["quokka/aff-brandjack"]
    assert brandjack["estimated"] is not None and brandjack["true"] is not None
    assert abs(brandjack["estimated"] - brandjack["true"]) < 0.15
    traced = {(t["brand"], t["domain"]) for t in report.domain_traces}
    assert ("bluefin", "bluefin-loans-online.example") in traced
