"""``noprop-bench sweep GRID.yaml``: a grid's points expand in order into validated configs, each point's runs are
ordinary rows, ``--dry-run`` lists them, ``--resume`` skips what is done, and the report tells the points apart by
the grid's keys. Synthetic MNIST-format files: code paths only."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.run.config import ConfigError
from bench.run.grid import read_grid
from tests.conftest import cli

GRID = {"config": "smoke", "dataset": "mnist", "methods": ["noprop"], "seeds": [0], "epochs": 1, "width": 0.125,
        "T": 3, "batch_size": 64, "eval_repeats": 1, "train_subset": None, "test_subset": None,
        "grid": {"embedding": ["one-hot", "learned"], "order": ["paper", "interleaved"]}}


def write(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_grid_expands_into_its_product_in_order(tmp_path: Path) -> None:
    points = read_grid(write(tmp_path, GRID))
    # as the report labels its groups (the embedding by its value), and tracked runs their names
    assert [p.label() for p in points] == ["one-hot, order=paper", "one-hot, order=interleaved",
                                           "learned, order=paper", "learned, order=interleaved"]
    assert all(p.config.width == 0.125 and p.config.continuous_epochs == 20 for p in points)  # fixed, and smoke's
    assert len({p.config.model_hash("noprop-dt") for p in points}) == 4


@pytest.mark.parametrize("change, message", [
    ({"grid": {}}, "needs a 'grid'"),
    ({"grid": {"colour": [1, 2]}}, "unknown config key 'colour'"),
    ({"grid": {"seeds": [[0], [1]]}}, "'seeds' is swept by every point"),
    ({"grid": {"order": "paper"}}, "needs a non-empty list"),
    ({"grid": {"order": ["paper", "paper"]}}, "lists a value twice"),
    ({"grid": {"order": ["paper", "sideways"]}}, "point order=sideways"),
    ({"grid": {"epochs": [1, 2]}}, "both a grid key and a fixed key"),
    ({"grid": {"out": ["a", "b"]}}, "one results folder"),
])
def test_a_malformed_grid_is_one_error(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_grid(write(tmp_path, {**GRID, **change}))


def test_a_sweep_gives_a_row_per_point_and_the_report_labels_them(tiny_mnist: Path, tmp_path: Path) -> None:
    grid, out = write(tmp_path, GRID), tmp_path / "res"
    listed = cli("sweep", str(grid), "--dry-run", "--data-dir", str(tiny_mnist), "--out", str(out))
    assert listed.returncode == 0 and "4 points" in listed.stdout and not out.exists(), listed.stderr
    proc = cli("sweep", str(grid), "--data-dir", str(tiny_mnist), "--out", str(out), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    found = rows(out / "runs.csv")
    assert len(found) == 4 and {r["status"] for r in found} == {"ok"}
    assert {(r["embedding"], r["order"]) for r in found} == {(e, o) for e in ("one-hot", "learned")
                                                             for o in ("paper", "interleaved")}
    again = cli("sweep", str(grid), "--data-dir", str(tiny_mnist), "--out", str(out), "--resume", "--jsonl")
    assert again.returncode == 0 and again.stdout.count('"skipped"') == 4 and len(rows(out / "runs.csv")) == 4
    report = cli("report", str(out), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert len(summary) == 4
    for setting in summary["setting"]:
        assert "order=" in setting and ("one-hot" in setting or "learned" in setting), setting


def test_a_grid_key_given_as_an_option_is_refused(tmp_path: Path) -> None:
    proc = cli("sweep", str(write(tmp_path, GRID)), "--order", "paper", "--dry-run")
    assert proc.returncode == 2 and "grid key" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_the_sweep_clock_estimates_from_trained_runs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.cli import progress

    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    clock = progress.SweepClock(total=5)
    assert clock.left() == "time left unknown"
    now[0] = 130.0
    clock.done(trained=False)  # skipped (--resume) after 30 s of checking: not a run's time
    now[0] = 190.0
    clock.done(trained=True)  # one run in 60 s; 3 to go
    assert clock.left() == "about 3:00 left"
