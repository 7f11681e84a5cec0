"""Time to accuracy from hand-written epochs with known times: which accuracy is read, when a target is reached,
what a group's mean covers, and how the table and the ``--targets`` option present it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report.build import build
from bench.report.load import load
from bench.report.views import time_to_accuracy
from tests.report.helpers import epoch_rows, invoke_report, run_row, write_folder


def folder(tmp_path: Path) -> Path:
    """NoProp-DT seeds 0 and 1 on test accuracy (only seed 1 reaches 85 %), backprop with a validation split whose
    validation accuracy reaches 80 % an epoch before its test accuracy does."""
    np0, np1 = (run_row(f"np{s}", "fashion-mnist", "noprop-dt", s, 84.0, 2.0) for s in (0, 1))
    bp = run_row("bp0", "fashion-mnist", "backprop", 0, 86.0, 4.0, config_hash="cfg000000002")
    epochs = (epoch_rows(np0, (79.0, 80.0, 84.0)) + epoch_rows(np1, (81.0, 85.0, 84.0), times=(1.0, 3.0, 2.0))
              + [{**row, "val_acc": val} for row, val in zip(epoch_rows(bp, (70.0, 79.0, 86.0)), (75.0, 80.0, 90.0),
                                                             strict=True)])
    return write_folder(tmp_path / "res", [np0, np1, bp], epochs)


def test_per_run_reads_validation_where_there_is_one_and_the_first_epoch_at_or_above(tmp_path: Path) -> None:
    report = build(load([folder(tmp_path)]), targets=[80.0, 85.0])
    tta = report.data["time_to_accuracy"].per_run.set_index(["run_id", "target_pct"])
    assert tta.loc[("np0", 80.0), ["reached", "epoch", "cum_train_time_s", "measured_on"]].tolist() == [
        True, 2, 4.0, "test"]
    assert not tta.loc[("np0", 85.0), "reached"]
    assert tta.loc[("np1", 80.0), ["epoch", "cum_train_time_s"]].tolist() == [1, 1.0]
    assert tta.loc[("np1", 85.0), ["epoch", "cum_train_time_s"]].tolist() == [2, 4.0]
    assert tta.loc[("bp0", 80.0), ["epoch", "cum_train_time_s", "measured_on"]].tolist() == [2, 8.0, "val"]
    assert tta.loc[("bp0", 85.0), ["epoch", "cum_train_time_s"]].tolist() == [3, 12.0]


def test_group_mean_is_over_the_runs_that_reached_it(tmp_path: Path) -> None:
    report = build(load([folder(tmp_path)]), targets=[80.0, 85.0, 95.0])
    groups = time_to_accuracy.per_group(report.data["time_to_accuracy"].per_run)
    noprop = groups[groups["method"] == "noprop-dt"].set_index("target_pct")
    assert noprop.loc[80.0, ["n_runs", "n_reached", "epoch_mean", "cum_train_time_s_mean"]].tolist() == [
        2, 2, 1.5, 2.5]
    assert noprop.loc[85.0, ["n_reached", "cum_train_time_s_mean"]].tolist() == [1, 4.0]
    header, rows = time_to_accuracy.rows(report)
    assert header[-3:] == ["to 80 %", "to 85 %", "to 95 %"]
    by_method = {row[1]: row for row in rows}
    assert by_method["noprop-dt"][2:] == ["one-hot", "test", "2.5 s (1.5 ep)", "4 s (2 ep) [1/2]", "not reached"]
    assert by_method["backprop"][3:] == ["val", "8 s (2 ep)", "12 s (3 ep)", "not reached"]


def test_accuracy_vs_time_curves_average_the_runs_per_epoch(tmp_path: Path) -> None:
    curves = build(load([folder(tmp_path)])).data["time_to_accuracy"].curves
    noprop = curves[curves["method"] == "noprop-dt"].set_index("epoch")
    assert noprop.loc[1, ["acc_mean", "cum_train_time_s_mean", "n_runs"]].tolist() == [80.0, 1.5, 2]
    assert set(curves.loc[curves["method"] == "backprop", "measured_on"]) == {"val"}


@pytest.mark.parametrize("text, message", [("80,x", "'x' is not a number"), ("0", "not a percentage"),
                                           ("101", "not a percentage"), (",", "at least one")])
def test_bad_targets_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        time_to_accuracy.parse_targets(text)


def test_targets_parse_sorted_and_deduplicated() -> None:
    assert time_to_accuracy.parse_targets("90, 85%,85") == [85.0, 90.0]


def test_report_option_writes_the_table_and_rejects_bad_targets(tmp_path: Path) -> None:
    res = folder(tmp_path)
    out = tmp_path / "report"
    result = invoke_report(str(res), "--out", str(out), "--targets", "80,85")
    assert result.exit_code == 0, result.output
    assert "Time to accuracy" in result.output
    md = (out / "summary.md").read_text()
    assert "| fashion-mnist | noprop-dt | one-hot | test | 2.5 s (1.5 ep) | 4 s (2 ep) [1/2] |" in md
    assert (out / "time_to_accuracy.png").is_file()
    assert len((out / "time_to_accuracy.csv").read_text().splitlines()) == 1 + 3 * 2
    bad = invoke_report(str(res), "--out", str(out), "--targets", "80,abc")
    assert bad.exit_code == 2 and "bad --targets: target 'abc' is not a number" in bad.output
