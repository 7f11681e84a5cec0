"""``bench.report.baselines`` and the baseline a run is measured against: from a recorded ``baseline`` column,
from the method's declared baseline where rows have none, or from ``report --baseline``; the old ratio column names
still read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from bench.report.baselines import LEGACY_COLUMNS, RATIO_COLUMNS, method_order
from bench.report.build import build
from bench.report.load import load, read_summary, with_baselines
from bench.run.methods import declared_baseline
from tests.report.helpers import invoke_report, run_row, summary_row, write_folder

REFERENCE = Path(__file__).parents[2] / "results" / "reference" / "report" / "summary.csv"


def three_methods(tmp_path: Path) -> Path:
    """MNIST: NoProp-FM, backprop and the CNN, one seed each, with times 3, 2 and 1 s per epoch."""
    return write_folder(tmp_path / "r", [run_row("fm", "mnist", "noprop-fm", 0, 97.0, 3.0, rss_mb=600),
                                         run_row("bp", "mnist", "backprop", 0, 99.0, 2.0, rss_mb=1200),
                                         run_row("cn", "mnist", "cnn", 0, 98.0, 1.0, rss_mb=300)])


def test_declared_baselines_of_the_registry():
    assert [declared_baseline(m) for m in ("noprop-dt", "noprop-ct", "noprop-fm", "backprop", "cnn", "other")] == [
        "backprop", "backprop", "backprop", None, None, None]
    rivals = ("backprop-ckpt", "cnn-ckpt", "diffusion-blocks", "dgl")
    assert [declared_baseline(m) for m in rivals] == ["backprop", "cnn", "backprop", "cnn"]


def test_rows_without_a_baseline_get_the_declared_one(tmp_path: Path):
    report = build(load([three_methods(tmp_path)]))
    assert dict(zip(report.runs["method"], report.runs["baseline"], strict=True)) == {
        "noprop-fm": "backprop", "backprop": "", "cnn": ""}
    fm = summary_row(report.summary, "mnist", "noprop-fm")
    assert fm["baseline"] == "backprop" and fm["time_per_epoch_ratio_to_baseline"] == 1.5
    assert fm["peak_rss_ratio_to_baseline"] == 0.5 and fm["baseline_config_hash"] == "cfg000000001"
    for method in ("backprop", "cnn"):
        row = summary_row(report.summary, "mnist", method)
        assert row["baseline"] == "" and all(pd.isna(row[c]) for c in RATIO_COLUMNS)


def test_a_recorded_baseline_column_is_kept_and_only_gaps_are_filled():
    frame = pd.DataFrame({"method": ["noprop-fm", "cnn", "backprop", "noprop-dt"],
                          "baseline": [None, "", "noprop-dt", "cnn"]})
    assert list(with_baselines(frame)["baseline"]) == ["backprop", "", "noprop-dt", "cnn"]
    assert list(with_baselines(frame.drop(columns="baseline"))["baseline"]) == ["backprop", "", "", "backprop"]


def test_ratios_pair_each_method_with_the_baseline_its_rows_name(tmp_path: Path):
    loaded = load([three_methods(tmp_path)])
    named = {"noprop-fm": "cnn", "backprop": "cnn", "cnn": ""}  # as a schema with the column would record them
    loaded = dataclasses.replace(loaded, runs=loaded.runs.assign(baseline=loaded.runs["method"].map(named)))
    report = build(loaded)
    fm, bp = (summary_row(report.summary, "mnist", m) for m in ("noprop-fm", "backprop"))
    assert (fm["baseline"], fm["time_per_epoch_ratio_to_baseline"], fm["peak_rss_ratio_to_baseline"]) == (
        "cnn", 3.0, 2.0)
    assert (bp["baseline"], bp["time_per_epoch_ratio_to_baseline"]) == ("cnn", 2.0)
    assert pd.isna(summary_row(report.summary, "mnist", "cnn")["time_per_epoch_ratio_to_baseline"])


def test_baseline_option_pairs_every_other_method_with_it(tmp_path: Path):
    report = build(load([three_methods(tmp_path)]), baseline="cnn")
    assert summary_row(report.summary, "mnist", "noprop-fm")["time_per_epoch_ratio_to_baseline"] == 3.0
    assert summary_row(report.summary, "mnist", "backprop")["time_per_epoch_ratio_to_baseline"] == 2.0
    assert summary_row(report.summary, "mnist", "cnn")["baseline"] == ""
    assert method_order(report.runs) == ["backprop", "noprop-fm", "cnn"]  # each method before its baseline


@pytest.mark.parametrize("name", ["backprop", "bp"])  # a registry name or its alias, as run --methods takes them
def test_report_command_baseline_option_writes_it_into_summary_csv(tmp_path: Path, name: str):
    folder = three_methods(tmp_path)
    result = invoke_report(str(folder), "--out", str(tmp_path / "rep"), "--baseline", name)
    assert result.exit_code == 0, result.output
    summary = read_summary(tmp_path / "rep" / "summary.csv").set_index("method")
    assert summary.loc["cnn", "baseline"] == "backprop"
    assert summary.loc["cnn", "time_per_epoch_ratio_to_baseline"] == 0.5
    assert summary.loc["noprop-fm", "time_per_epoch_ratio_to_baseline"] == 1.5
    assert pd.isna(summary.loc["backprop", "baseline"])  # an empty cell: it has none


def test_method_order_keeps_each_family_together_each_method_just_before_its_baseline():
    """Families (a baseline and what is measured against it) in the registry's order, a method right before the one
    it is measured against; a name the registry lacks after the registry's."""
    runs = pd.DataFrame({"method": ["backprop", "cnn", "noprop-dt", "noprop-ct", "x", "dgl"],
                         "baseline": ["", "", "backprop", "backprop", "noprop-dt", "cnn"]})
    assert method_order(runs) == ["x", "noprop-dt", "noprop-ct", "backprop", "dgl", "cnn"]


def test_old_ratio_column_names_still_read():
    assert LEGACY_COLUMNS["time_per_epoch_ratio_noprop_to_backprop"] == "time_per_epoch_ratio_to_baseline"
    written = pd.read_csv(REFERENCE)
    summary = read_summary(REFERENCE)
    if "time_per_epoch_ratio_noprop_to_backprop" in written:  # until results/reference/report is regenerated
        old = written.set_index(["method", "config_hash"])["time_per_epoch_ratio_noprop_to_backprop"]
        new = summary.set_index(["method", "config_hash"])["time_per_epoch_ratio_to_baseline"]
        pd.testing.assert_series_equal(old, new, check_names=False)
    # the committed report predates the ratio of the RSS a run adds above its start
    assert set(RATIO_COLUMNS) - {"rss_above_start_ratio_to_baseline"} | {"baseline", "baseline_config_hash"} \
        <= set(summary.columns)
    paired = summary[summary["baseline_config_hash"].notna()]
    assert not paired.empty and set(paired["baseline"]) == {"backprop"}
