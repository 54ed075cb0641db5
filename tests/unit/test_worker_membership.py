"""A worker's static group membership id follows its data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from clicktrail.runtime.faust_app import INSTANCE_FILE, WorkerSettings, instance_id


def test_the_id_is_made_once_per_data_directory(tmp_path: Path) -> None:
    first = instance_id(tmp_path / "w1")
    assert first == instance_id(tmp_path / "w1"), "a restart on the same state is the same member"
    assert (tmp_path / "w1" / INSTANCE_FILE).read_text().strip() == first
    assert instance_id(tmp_path / "w2") != first, "another data directory, another member"
    WorkerSettings(bootstrap="k:9092", instance_id=first)


def test_an_unusable_id_file_is_replaced_and_bad_ids_refused(tmp_path: Path) -> None:
    (tmp_path / INSTANCE_FILE).write_text("has spaces\n")
    assert " " not in instance_id(tmp_path)
    with pytest.raises(ValueError, match="instance_id"):
        WorkerSettings(bootstrap="k:9092", instance_id="a/b")
