"""``bench.report.load``: which folders are read, and what an unreadable one costs (a warning, or for compare an
error)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.report.build import build
from bench.report.load import InputError, find_folders, load, read_artifacts, read_side
from bench.results import RUNS_FILE
from bench.results.artifacts import artifact_path
from tests.report.helpers import FUTURE, epoch_rows, run_row, write_folder, write_other_schema


def test_other_schema_folder_is_a_clear_warning_and_the_rest_is_reported(known: Path, tmp_path: Path):
    other = write_other_schema(tmp_path / "old")
    missing = tmp_path / "missing"
    loaded = load([other, known, missing])
    assert loaded.sources == [str(known)]
    assert any(str(other) in w and f"schema_version {FUTURE}" in w for w in loaded.warnings)
    assert any(str(missing) in w and "does not exist" in w for w in loaded.warnings)
    report = build(loaded)
    assert len(report.summary) == 3


def test_subfolders_holding_results_are_found(known: Path, tmp_path: Path):
    folders, warnings = find_folders([tmp_path])
    assert folders == [known] and not warnings


def test_rows_are_tagged_with_their_folder(known: Path):
    loaded = load([known])
    assert set(loaded.runs["results_dir"]) == {str(known)} and set(loaded.epochs["results_dir"]) == {str(known)}


def test_read_side_needs_a_folder_with_runs(tmp_path: Path):
    with pytest.raises(InputError, match="baseline folder .* does not exist"):
        read_side(tmp_path / "nowhere", "baseline")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=f"candidate folder .* holds no {RUNS_FILE}"):
        read_side(tmp_path / "empty", "candidate")
    run = run_row("a", "mnist", "backprop", 0, 90.0, 1.0)
    side = read_side(write_folder(tmp_path / "ok", [run], epoch_rows(run, (80.0, 90.0))), "baseline")
    assert list(side.runs["run_id"]) == ["a"] and len(side.epochs) == 2 and side.warnings == []


def test_artifacts_missing_are_skipped_and_damaged_ones_warned(tmp_path: Path):
    runs = [run_row(name, "mnist", "noprop-dt", i, 90.0, 1.0) for i, name in enumerate(("good", "none", "bad"))]
    folder = write_folder(tmp_path / "r", runs)
    for name, payload in (("good", None), ("bad", b"not an npz")):
        path = artifact_path(folder, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if payload is None:
            np.savez(path, embedding=np.eye(2))
        else:
            path.write_bytes(payload)
    warnings: list[str] = []
    found = read_artifacts(load([folder]).runs, warnings)
    assert list(found) == [(str(folder), "good")] and found[(str(folder), "good")]["embedding"].shape == (2, 2)
    assert len(warnings) == 1 and "artifact of run bad could not be read" in warnings[0]
