"""Late collapse: a method whose final test accuracy lies more than the margin below the test accuracy after its
best validation epoch is named; without a validation split the report says it did not check."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report import tables
from bench.report.build import build
from bench.report.load import load
from tests.report.helpers import invoke_report, run_row, write_folder


def _rows() -> list[dict]:
    """NoProp-CT on CIFAR-100 as a public reproduction saw it: 47.66 % at its best validation epoch, seed 0 ending at
    23.0 % and seed 1 at 45.0 % (2.66 points, within a 5-point margin); backprop steady."""
    val = {"val_acc": 50.0, "best_val_epoch": 30, "epochs_done": 100}
    return [run_row("ct0", "cifar100", "noprop-ct", 0, 23.0, 1.0, best_val_test_acc=47.66, **val),
            run_row("ct1", "cifar100", "noprop-ct", 1, 45.0, 1.0, best_val_test_acc=47.66, **val),
            run_row("bp0", "cifar100", "backprop", 0, 50.0, 1.0, best_val_test_acc=50.5, **val),
            run_row("bp1", "cifar100", "backprop", 1, 51.0, 1.0, best_val_test_acc=51.0, **val)]


def test_a_seed_falling_more_than_the_margin_names_its_method(tmp_path: Path) -> None:
    report = build(load([write_folder(tmp_path / "res", _rows())]))
    groups = report.data["collapse"].set_index("method")
    ct = groups.loc["noprop-ct"]
    assert (ct["collapsed"], ct["collapsed_seeds"], ct["n_with_val"]) == (True, "0", 2)
    assert ct["drop_pct_mean"] == pytest.approx((24.66 + 2.66) / 2) and ct["drop_pct_max"] == 47.66 - 23.0
    assert not groups.loc["backprop", "collapsed"]
    named = [w for w in report.warnings if "LATE COLLAPSE" in w]
    assert named == ["noprop-ct (one-hot): LATE COLLAPSE: final test accuracy 34.00 % is 13.66 points below the "
                     "47.66 % after its best validation epoch (mean over 2 seeds; seed 0 fell more than 5 points)"]
    tables.write_tables(report, tmp_path / "out")
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "| cifar100 | noprop-ct | one-hot | 2 (2) | 30 of 100 | 47.66 | 34.00 | -13.66 | -24.66 | COLLAPSED " \
           "(seed 0) |" in md


def test_the_margin_is_the_reports_option(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "res", _rows())
    assert not build(load([folder]), collapse_margin=25.0).data["collapse"]["collapsed"].any()
    both = build(load([folder]), collapse_margin=2.0).data["collapse"].set_index("method")
    assert both.loc["noprop-ct", "collapsed_seeds"] == "0,1"
    result = invoke_report(str(folder), "--out", str(tmp_path / "out"), "--collapse-margin", "25")
    assert result.exit_code == 0, result.output
    assert "LATE COLLAPSE" not in result.output and "Late collapse (margin 25 points)" in result.output


def test_without_a_validation_split_nothing_is_selected_on_test(tmp_path: Path) -> None:
    rows = [run_row(f"ct{s}", "cifar100", "noprop-ct", s, 23.0, 1.0) for s in (0, 1)]
    report = build(load([write_folder(tmp_path / "res", rows)]))
    assert report.data["collapse"]["n_with_val"].tolist() == [0]
    assert not any("LATE COLLAPSE" in w for w in report.warnings)
    written = tables.write_tables(report, tmp_path / "out")
    assert "collapse.csv" not in {p.name for p in written}
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "## Late collapse\n\nNot checked: no run has a validation split" in md
