"""The committed JSON Schemas are exactly what the models generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clicktrail.cli.main import main
from clicktrail.contracts.jsonschema import generate

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "events"


def test_committed_schemas_match_the_models() -> None:
    generated = generate()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    assert sorted(committed) == sorted(generated), "run 'make schemas'"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} drifted from the models: run 'make schemas'"


def test_the_event_schema_covers_the_three_types() -> None:
    union = json.loads(generate()["event.json"])
    assert sorted(union["discriminator"]["mapping"]) == ["click", "conversion", "impression"]


def test_check_mode_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "--out", str(tmp_path)]) == 0
    assert main(["schemas", "--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "click.json").write_text("{}", encoding="utf-8")
    assert main(["schemas", "--out", str(tmp_path), "--check"]) == 1
    assert "click.json" in capsys.readouterr().err
