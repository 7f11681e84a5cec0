"""``report`` aggregation and the ``noprop-bench report`` command, on hand-written CSVs with known values.

The rows are written with ``bench.results.append_rows`` so they follow the real schema; the values are chosen so
every mean, sd, se and ratio is exact in floating point and can be asserted with ``==``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench import report as rep
from bench.cli import app
from bench.report import paper
from bench.results import EPOCH_COLUMNS, EPOCHS_FILE, RUN_COLUMNS, RUNS_FILE, SCHEMA_VERSION, append_rows

FUTURE = SCHEMA_VERSION + 1

MB = 2**20
runner = CliRunner()


def run_row(run_id: str, dataset: str, method: str, seed: int, test_acc: float, time_per_epoch: float, *,
            status: str = "ok", embedding: str = "one-hot", config_hash: str = "cfg000000001",
            cuda_mb: int | None = None, reserved_mb: int | None = None, rss_mb: int = 1000, reason: str = "",
            embed_dim: int = 20) -> dict:
    """One run row as ``run`` writes it (only the columns the report reads, plus a config)."""
    ok = status == "ok"
    return {
        "run_id": run_id, "timestamp": "2025-01-01T00:00:00+00:00", "status": status, "reason": reason,
        "dataset": dataset, "method": method, "embedding": embedding, "order": "paper" if method == "noprop-dt" else "",
        "seed": seed, "epochs_planned": 2, "epochs_done": 2 if ok else 1, "config_hash": config_hash,
        "test_acc": test_acc if ok else None, "test_acc_std": 0.5 if ok else None, "test_acc_repeats": 5,
        "train_acc": test_acc + 10 if ok else None, "train_time_s": 2 * time_per_epoch,
        "time_per_epoch_s": time_per_epoch, "samples_per_s": 1000.0 / time_per_epoch, "params": 12345,
        "peak_cuda_allocated_bytes": None if cuda_mb is None else cuda_mb * MB,
        "peak_cuda_reserved_bytes": None if reserved_mb is None else reserved_mb * MB,
        "peak_rss_bytes": rss_mb * MB, "measured_in": "subprocess", "device": "cuda" if cuda_mb else "cpu",
        "device_name": "Test GPU" if cuda_mb else "Test CPU",
        "config_json": json.dumps({"epochs": 2, "embedding": embedding, "embed_dim": embed_dim, "T": 10}),
    }


def epoch_rows(run: dict, accs: tuple[float, float]) -> list[dict]:
    rows, cum = [], 0.0
    for epoch, acc in enumerate(accs, start=1):
        cum += run["time_per_epoch_s"]
        rows.append({"run_id": run["run_id"], "dataset": run["dataset"], "method": run["method"], "seed": run["seed"],
                     "epoch": epoch, "train_loss": 1.0 / epoch, "test_acc": acc,
                     "epoch_time_s": run["time_per_epoch_s"], "cum_train_time_s": cum,
                     "peak_rss_bytes": run["peak_rss_bytes"]})
    return rows


def write_folder(folder: Path, runs: list[dict], epochs: list[dict] | None = None) -> Path:
    append_rows(folder / RUNS_FILE, RUN_COLUMNS, runs)
    if epochs:
        append_rows(folder / EPOCHS_FILE, EPOCH_COLUMNS, epochs)
    return folder


def known_runs() -> tuple[list[dict], list[dict]]:
    """CIFAR-10 with both methods on CUDA, MNIST with NoProp-DT only (one seed), and two runs that failed."""
    runs = [
        run_row("np0", "cifar10", "noprop-dt", 0, 78.0, 1.0, cuda_mb=512, reserved_mb=600),
        run_row("np1", "cifar10", "noprop-dt", 1, 80.0, 2.0, cuda_mb=512, reserved_mb=600),
        run_row("np2", "cifar10", "noprop-dt", 2, 82.0, 3.0, cuda_mb=512, reserved_mb=600),
        run_row("bp0", "cifar10", "backprop", 0, 79.0, 1.0, cuda_mb=1024, reserved_mb=1200),
        run_row("bp1", "cifar10", "backprop", 1, 80.0, 1.0, cuda_mb=1024, reserved_mb=1200),
        run_row("bp2", "cifar10", "backprop", 2, 81.0, 1.0, cuda_mb=1024, reserved_mb=1200),
        run_row("mn0", "mnist", "noprop-dt", 0, 99.0, 4.0, rss_mb=2000),
        run_row("bad1", "cifar10", "noprop-dt", 3, 0.0, 1.0, status="failed", reason="RuntimeError: boom"),
        run_row("bad2", "cifar10", "backprop", 3, 0.0, 1.0, status="oom", reason="CUDA out of memory [device 0]"),
    ]
    curves = {"np0": (50.0, 78.0), "np1": (60.0, 80.0), "np2": (70.0, 82.0), "bp0": (70.0, 79.0), "bp1": (70.0, 80.0),
              "bp2": (70.0, 81.0), "mn0": (90.0, 99.0)}
    epochs = [row for run in runs if run["run_id"] in curves for row in epoch_rows(run, curves[run["run_id"]])]
    return runs, epochs


@pytest.fixture
def known(tmp_path: Path) -> Path:
    runs, epochs = known_runs()
    return write_folder(tmp_path / "results", runs, epochs)


def summary_row(summary: pd.DataFrame, dataset: str, method: str) -> pd.Series:
    rows = summary[(summary["dataset"] == dataset) & (summary["method"] == method)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_aggregates_are_exact(known: Path):
    report = rep.build(rep.load([known]))
    noprop = summary_row(report.summary, "cifar10", "noprop-dt")
    backprop = summary_row(report.summary, "cifar10", "backprop")
    assert noprop["n_seeds"] == 3 and noprop["seeds"] == "0,1,2"
    assert noprop["test_acc_pct_mean"] == 80.0
    assert noprop["test_acc_pct_sd"] == 2.0  # sample sd (ddof=1) of 78, 80, 82
    assert noprop["test_acc_pct_se"] == 2.0 / math.sqrt(3)
    assert backprop["test_acc_pct_sd"] == 1.0 and backprop["test_acc_pct_se"] == 1.0 / math.sqrt(3)
    assert noprop["train_acc_pct_mean"] == 90.0
    assert noprop["inference_sd_pct_mean"] == 0.5
    assert noprop["time_per_epoch_s_mean"] == 2.0 and noprop["time_per_epoch_s_sd"] == 1.0
    assert noprop["samples_per_s_mean"] == (1000.0 + 500.0 + 1000.0 / 3) / 3
    assert noprop["peak_cuda_allocated_mb_mean"] == 512.0 and noprop["peak_cuda_reserved_mb_mean"] == 600.0
    assert noprop["peak_rss_mb_mean"] == 1000.0
    # NoProp-DT / backprop, on the NoProp-DT row, against the same config; the backprop row has none
    assert noprop["time_per_epoch_ratio_noprop_to_backprop"] == 2.0
    assert noprop["peak_cuda_allocated_ratio_noprop_to_backprop"] == 0.5
    assert noprop["peak_cuda_reserved_ratio_noprop_to_backprop"] == 0.5
    assert noprop["peak_rss_ratio_noprop_to_backprop"] == 1.0
    assert noprop["ratio_backprop_config_hash"] == "cfg000000001"
    assert pd.isna(backprop["time_per_epoch_ratio_noprop_to_backprop"])
    # the paper's numbers beside ours
    assert noprop["paper_test_acc_pct"] == 79.25 and noprop["test_acc_minus_paper_pct"] == 80.0 - 79.25
    assert backprop["paper_test_acc_pct"] == 79.92
    assert noprop["paper_peak_gpu_mb"] == 0.64 * 1024
    assert noprop["peak_cuda_allocated_minus_paper_mb"] == 512.0 - 0.64 * 1024


def test_summary_csv_round_trips_the_numbers_with_explicit_columns(known: Path, tmp_path: Path):
    report = rep.build(rep.load([known]))
    csv_path, md_path = rep.write_tables(report, tmp_path / "out")
    written = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    assert list(written.columns) == rep.SUMMARY_COLUMNS
    for column in ("test_acc_pct_mean", "test_acc_pct_sd", "test_acc_pct_se", "time_per_epoch_s_mean",
                   "peak_rss_mb_mean", "time_per_epoch_ratio_noprop_to_backprop"):
        assert column in written.columns
    noprop = summary_row(written, "cifar10", "noprop-dt")
    assert noprop["test_acc_pct_se"] == 2.0 / math.sqrt(3)
    assert noprop["time_per_epoch_ratio_noprop_to_backprop"] == 2.0
    mnist = summary_row(written, "mnist", "noprop-dt")
    assert pd.isna(mnist["test_acc_pct_sd"]) and pd.isna(mnist["test_acc_pct_se"])  # one seed: no sd
    md = md_path.read_text()
    assert "| mnist | noprop-dt | one-hot | cfg000000001 | 1 | 99.00 ± - | - | 99.47 (-0.47) |" in md
    assert "| cifar10 | noprop-dt | one-hot | cfg000000001 | 3 | 80.00 ± 2.00 | 1.15 | 79.25 (+0.75) |" in md


def test_one_seed_reads_as_dash_and_single_method_dataset_still_summarised_with_warning(known: Path):
    report = rep.build(rep.load([known]))
    mnist = summary_row(report.summary, "mnist", "noprop-dt")
    assert mnist["n_seeds"] == 1 and mnist["test_acc_pct_mean"] == 99.0
    assert math.isnan(mnist["test_acc_pct_sd"]) and math.isnan(mnist["test_acc_pct_se"])
    assert all(pd.isna(mnist[c]) for c in rep.RATIO_COLUMNS)
    assert mnist["peak_rss_mb_mean"] == 2000.0 and pd.isna(mnist["peak_cuda_allocated_mb_mean"])
    assert any(w.startswith("mnist: only noprop-dt has ok runs") for w in report.warnings)
    _, rows = rep.display_rows(report.summary)
    mnist_row = next(r for r in rows if r[0] == "mnist")
    assert mnist_row[5] == "99.00 ± -" and mnist_row[6] == "-" and mnist_row[-1] == "-"


def test_non_ok_runs_are_counted_listed_and_left_out(known: Path, tmp_path: Path):
    report = rep.build(rep.load([known]))
    assert sorted(report.not_ok["run_id"]) == ["bad1", "bad2"]
    assert rep.status_counts(report.not_ok) == {"failed": 1, "oom": 1}
    assert summary_row(report.summary, "cifar10", "noprop-dt")["n_seeds"] == 3  # seed 3 failed: not counted
    assert set(report.curves["n_runs"]) == {1, 3}
    line = rep.not_ok_line(report)
    assert line.startswith("2 of 9 matching runs did not finish ok (failed: 1, oom: 1)")
    _, md = rep.write_tables(report, tmp_path / "out")
    text = md.read_text()
    assert line in text and "RuntimeError: boom" in text and "| bad2 |" in text


def test_epoch_curves_mean_and_sd_across_seeds(known: Path):
    report = rep.build(rep.load([known]))
    curve = report.curves[(report.curves["dataset"] == "cifar10") & (report.curves["method"] == "noprop-dt")]
    first, last = curve.iloc[0], curve.iloc[1]
    assert (first["epoch"], first["n_runs"]) == (1, 3)
    assert first["test_acc_pct_mean"] == 60.0 and first["test_acc_pct_sd"] == 10.0
    assert last["test_acc_pct_mean"] == 80.0 and last["test_acc_pct_sd"] == 2.0
    assert first["cum_train_time_s_mean"] == 2.0 and last["cum_train_time_s_mean"] == 4.0


def test_memory_long_uses_cuda_where_measured_else_rss(known: Path):
    report = rep.build(rep.load([known]))
    measures = report.memory.groupby("dataset")["measure"].agg(lambda s: sorted(set(s))).to_dict()
    assert measures == {"cifar10": ["CUDA allocated", "CUDA reserved"], "mnist": ["RSS (CPU)"]}
    assert sorted(report.memory[report.memory["dataset"] == "mnist"]["mb"]) == [2000.0]


def test_filters_by_dataset_and_method_alias(known: Path):
    report = rep.build(rep.load([known]), datasets=["cifar10"], methods=["noprop"])
    assert set(zip(report.summary["dataset"], report.summary["method"], strict=True)) == {("cifar10", "noprop-dt")}
    assert list(report.not_ok["run_id"]) == ["bad1"]
    assert any("only noprop-dt" in w for w in report.warnings)


def test_ratio_falls_back_to_another_backprop_config_with_a_warning(tmp_path: Path):
    folder = write_folder(tmp_path / "r", [
        run_row("n", "cifar100", "noprop-dt", 0, 40.0, 3.0, config_hash="aaaaaaaaaaaa", rss_mb=500),
        run_row("b", "cifar100", "backprop", 0, 40.0, 1.5, config_hash="bbbbbbbbbbbb", rss_mb=1000),
    ])
    report = rep.build(rep.load([folder]))
    noprop = summary_row(report.summary, "cifar100", "noprop-dt")
    assert noprop["time_per_epoch_ratio_noprop_to_backprop"] == 2.0
    assert noprop["peak_rss_ratio_noprop_to_backprop"] == 0.5
    assert noprop["ratio_backprop_config_hash"] == "bbbbbbbbbbbb"
    assert any("no backprop run with the same config" in w for w in report.warnings)


def test_repeated_seed_is_averaged_and_duplicate_folders_counted_once(tmp_path: Path):
    folder = write_folder(tmp_path / "r", [
        run_row("a", "mnist", "backprop", 0, 90.0, 1.0),
        run_row("b", "mnist", "backprop", 0, 92.0, 1.0),
        run_row("c", "mnist", "backprop", 1, 95.0, 1.0),
    ])
    report = rep.build(rep.load([folder, folder]))
    row = summary_row(report.summary, "mnist", "backprop")
    assert row["n_seeds"] == 2 and row["test_acc_pct_mean"] == 93.0 and row["test_acc_pct_sd"] == math.sqrt(8)
    assert any("seed 0 has 2 ok runs" in w for w in report.warnings)
    assert report.sources == [str(folder)]


def write_other_schema(folder: Path) -> Path:
    """A runs.csv as a future schema version would write it: same columns, the next schema_version."""
    folder.mkdir(parents=True)
    with open(folder / RUNS_FILE, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(RUN_COLUMNS)
        writer.writerow([str(FUTURE), "x1", "", "ok"] + [""] * (len(RUN_COLUMNS) - 4))
    return folder


def test_other_schema_folder_is_a_clear_warning_and_the_rest_is_reported(known: Path, tmp_path: Path):
    other = write_other_schema(tmp_path / "old")
    missing = tmp_path / "missing"
    loaded = rep.load([other, known, missing])
    assert loaded.sources == [str(known)]
    assert any(str(other) in w and f"schema_version {FUTURE}" in w for w in loaded.warnings)
    assert any(str(missing) in w and "does not exist" in w for w in loaded.warnings)
    report = rep.build(loaded)
    assert len(report.summary) == 3


def test_subfolders_holding_results_are_found(known: Path, tmp_path: Path):
    folders, warnings = rep.find_folders([tmp_path])
    assert folders == [known] and not warnings


def test_paper_numbers():
    assert paper.accuracy_pct("mnist", "noprop-dt", "learned", 20) == 99.49
    assert paper.accuracy_pct("mnist", "noprop-dt", "learned", 16) is None  # only dim 20 is the paper's setup
    assert paper.accuracy_pct("cifar100", "backprop", "prototype") == 47.80
    assert paper.accuracy_pct("fashion-mnist", "noprop-dt", "one-hot") is None
    assert paper.peak_gpu_mb("cifar100", "backprop", "one-hot") == 1.73 * 1024
    assert paper.peak_gpu_mb("mnist", "noprop-dt", "learned") is None
    assert len(paper.TEST_ACCURACY_PCT) == 8 * 3 and len(paper.PEAK_GPU_GB) == 2 * 3


# ------------------------------------------------------------------------------------------------ the command


def invoke(*args: str):
    return runner.invoke(app, ["report", *args], env={"COLUMNS": "250"})


def test_cli_reports_other_folders_when_one_has_another_schema(known: Path, tmp_path: Path):
    other = write_other_schema(tmp_path / "old")
    out = tmp_path / "rep"
    result = invoke(str(other), str(known), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and f"schema_version {FUTURE}" in result.output
    assert "NoProp-DT vs backprop" in result.output and "did not finish ok" in result.output
    assert "out of memory [device 0]" in result.output  # text from the CSV is shown, never read as Rich markup
    assert (out / "summary.csv").is_file() and (out / "summary.md").is_file()
    assert f"schema_version {FUTURE}" in (out / "summary.md").read_text()
    listed = result.output[result.output.index("wrote "):]
    for name in ("summary.csv", "summary.md", "accuracy.png", "curves.png", "memory.png", "throughput.png"):
        assert name in listed and (out / name).stat().st_size > 0


def test_cli_default_out_is_report_inside_the_first_folder(known: Path):
    result = invoke(str(known), "--dataset", "cifar10", "--methods", "noprop,backprop")
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
    result = invoke(*args)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "nothing to report" in errors[0]
    assert "Traceback" not in result.output
    if case == "only-failed":
        assert "none of the 1 matching runs finished ok (1 failed)" in errors[0]


def test_cli_rejects_an_unknown_figure_format(known: Path):
    result = invoke(str(known), "--format", "bmp")
    assert result.exit_code == 2 and "unknown --format 'bmp'" in result.output


def test_terminal_summary_is_readable_at_80_columns(known: Path, tmp_path: Path):
    result = runner.invoke(app, ["report", str(known), "--out", str(tmp_path / "rep")], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if "accuracy (ok runs" in line)
    end = next(i for i, line in enumerate(lines) if "mean ± sd and se over seeds" in line)  # the legend follows
    tables = lines[start:end]
    assert all(len(line) <= 80 for line in tables)
    rows = [line for line in tables if line.startswith("cifar10 noprop-dt")]
    assert len(rows) == 2 and "80.00 ± 2.00" in rows[0] and "…" not in "".join(tables)  # whole cells, no ellipses
