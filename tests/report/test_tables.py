"""``bench.report.tables`` and the ``noprop-bench report`` command: summary.csv, summary.md, the terminal tables."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from bench.report import aggregate, cells, tables
from bench.report.build import build
from bench.report.load import load
from tests.report.helpers import (
    FUTURE,
    invoke_report,
    run_row,
    summary_row,
    switched_runs,
    write_folder,
    write_other_schema,
)


def test_summary_csv_round_trips_the_numbers_with_explicit_columns(known: Path, tmp_path: Path):
    report = build(load([known]))
    csv_path, *_, md_path = tables.write_tables(report, tmp_path / "out")  # summary.csv first, summary.md last
    written = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    assert list(written.columns) == aggregate.SUMMARY_COLUMNS
    for column in ("test_acc_pct_mean", "test_acc_pct_sd", "test_acc_pct_se", "time_per_epoch_s_mean",
                   "peak_rss_mb_mean", "time_per_epoch_ratio_to_baseline"):
        assert column in written.columns
    noprop = summary_row(written, "cifar10", "noprop-dt")
    assert noprop["test_acc_pct_se"] == 2.0 / math.sqrt(3)
    assert noprop["time_per_epoch_ratio_to_baseline"] == 2.0
    mnist = summary_row(written, "mnist", "noprop-dt")
    assert pd.isna(mnist["test_acc_pct_sd"]) and pd.isna(mnist["test_acc_pct_se"])  # one seed: no sd
    md = md_path.read_text()
    assert "| mnist | noprop-dt | one-hot | 1 | 99.00 ± - | - | 99.47 (-0.47) |" in md
    assert "| cifar10 | noprop-dt | one-hot | 3 | 80.00 ± 2.00 | 1.15 | 79.25 (+0.75) |" in md
    assert "| cifar10 | one-hot | cfg000000001 | - | one-hot | 2 |" in md  # Configs: each label's config hash


def test_markdown_table_is_one_helper_that_escapes_cells():
    text = cells.markdown_table(["a", "b"], [["x|y", "two\nlines"]])
    assert text == "| a | b |\n|---|---|\n| x\\|y | two lines |"


def test_summary_shows_switches_and_both_epoch_times(tmp_path: Path):
    report = build(load([write_folder(tmp_path / "r", switched_runs())]))
    header, rows = cells.display_rows(report.summary)
    noprop = [dict(zip(header, row, strict=True)) for row in rows if row[1] == "noprop-dt"]
    assert [r["setting"] for r in noprop] == ["channels_last=false", "channels_last=true"]  # as figures label them
    assert [(r["s/epoch"], r["median s/epoch"]) for r in noprop] == [("3", "1.5"), ("2", "1")]
    written = pd.read_csv(tables.write_tables(report, tmp_path / "out")[0])
    assert {"precision", "channels_last", "epoch_time_median_s_mean", "peak_saved_activation_mb_mean"} \
        <= set(written.columns)


# ------------------------------------------------------------------------------------------------ the command


def test_cli_reports_other_folders_when_one_has_another_schema(known: Path, tmp_path: Path):
    other = write_other_schema(tmp_path / "old")
    out = tmp_path / "rep"
    result = invoke_report(str(other), str(known), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and f"schema_version {FUTURE}" in result.output
    assert "Accuracy (ok runs" in result.output and "did not finish ok" in result.output
    assert "out of memory [device 0]" in result.output  # text from the CSV is shown, never read as Rich markup
    assert (out / "summary.csv").is_file() and (out / "summary.md").is_file()
    assert f"schema_version {FUTURE}" in (out / "summary.md").read_text()
    listed = result.output[result.output.index("wrote "):]
    for name in ("summary.csv", "summary.md", "accuracy.png", "curves.png", "memory.png", "throughput.png"):
        assert name in listed and (out / name).stat().st_size > 0


def test_cli_default_out_is_report_inside_the_first_folder(known: Path):
    result = invoke_report(str(known), "--dataset", "cifar10", "--methods", "noprop,backprop")
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(known / "report" / "summary.csv")
    assert set(summary["dataset"]) == {"cifar10"}


@pytest.mark.parametrize("case", ["empty", "missing", "only-failed", "other-schema", "filtered-out"])
def test_cli_nothing_to_report_is_one_error_line_and_exit_2(case: str, tmp_path: Path, known: Path):
    folder = tmp_path / case
    args = [str(folder)]
    if case == "empty":
        folder.mkdir()
    elif case == "only-failed":
        write_folder(folder, [run_row("f", "mnist", "backprop", 0, 0.0, 1.0, status="failed", reason="boom")])
    elif case == "other-schema":
        write_other_schema(folder)
    elif case == "filtered-out":
        args = [str(known), "--dataset", "cifar100"]
    result = invoke_report(*args)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "nothing to report" in errors[0]
    assert "Traceback" not in result.output
    if case == "only-failed":
        assert "none of the 1 matching runs finished ok (1 failed)" in errors[0]


def test_cli_rejects_an_unknown_figure_format(known: Path):
    result = invoke_report(str(known), "--format", "bmp")
    assert result.exit_code == 2 and "unknown --format 'bmp'" in result.output


def terminal_lines(output: str) -> list[str]:
    """The summary tables of ``report``'s output, from the accuracy table's title up to the legend."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "Accuracy (ok runs" in line)
    end = next(i for i, line in enumerate(lines) if "mean ± sd and se over seeds" in line)  # the legend follows
    return lines[start:end]


def test_terminal_summary_is_readable_at_80_columns(known: Path, tmp_path: Path):
    result = invoke_report(str(known), "--out", str(tmp_path / "rep"), columns="80")
    assert result.exit_code == 0, result.output
    tables_ = terminal_lines(result.output)
    assert all(len(line) <= 80 for line in tables_)
    rows = [line for line in tables_ if line.startswith("cifar10 noprop-dt")]
    assert len(rows) == 2 and "80.00 ± 2.00" in rows[0] and "…" not in "".join(tables_)  # whole cells, no ellipses


def test_terminal_summary_tells_switches_apart_at_80_columns(tmp_path: Path):
    folder = write_folder(tmp_path / "r", switched_runs())
    result = invoke_report(str(folder), "--out", str(tmp_path / "rep"), columns="80")
    assert result.exit_code == 0, result.output
    lines = terminal_lines(result.output)
    assert all(len(line) <= 80 for line in lines) and "…" not in "".join(lines)
    assert sum(line.startswith("fashion-mnist noprop-dt") for line in lines) == 4  # 2 layouts x 2 tables
    assert sum("channels_last=true" in line for line in lines) == 4  # the settings' label, as figures show it
    assert sum("channels_last=false" in line for line in lines) == 4
    assert "paper" not in "".join(lines)  # no paper numbers for Fashion-MNIST: the column is left out here
