"""``bench.report.aggregate``: the numbers over seeds, on hand-written CSVs with known values (``helpers``)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.report import aggregate, cells, paper, tables
from bench.report.baselines import RATIO_COLUMNS
from bench.report.build import build as build_report
from bench.report.load import load
from tests.report.helpers import epoch_rows, run_row, summary_row, switched_runs, write_folder


def build(*folders: Path, **filters) -> aggregate.Report:
    return build_report(load(list(folders)), **filters)


def test_aggregates_are_exact(known: Path):
    report = build(known)
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
    # NoProp-DT / its declared baseline (backprop), on the NoProp-DT row, against the same config; backprop has none
    assert noprop["time_per_epoch_ratio_to_baseline"] == 2.0
    assert noprop["peak_cuda_allocated_ratio_to_baseline"] == 0.5
    assert noprop["peak_cuda_reserved_ratio_to_baseline"] == 0.5
    assert noprop["peak_rss_ratio_to_baseline"] == 1.0
    assert noprop["baseline_config_hash"] == "cfg000000001" and noprop["baseline"] == "backprop"
    assert pd.isna(backprop["time_per_epoch_ratio_to_baseline"])
    # the paper's numbers beside ours
    assert noprop["paper_test_acc_pct"] == 79.25 and noprop["test_acc_minus_paper_pct"] == 80.0 - 79.25
    assert backprop["paper_test_acc_pct"] == 79.92
    assert noprop["paper_peak_gpu_mb"] == 0.64 * 1024
    assert noprop["peak_cuda_allocated_minus_paper_mb"] == 512.0 - 0.64 * 1024


def test_one_seed_reads_as_dash_and_single_method_dataset_still_summarised_with_warning(known: Path):
    report = build(known)
    mnist = summary_row(report.summary, "mnist", "noprop-dt")
    assert mnist["n_seeds"] == 1 and mnist["test_acc_pct_mean"] == 99.0
    assert math.isnan(mnist["test_acc_pct_sd"]) and math.isnan(mnist["test_acc_pct_se"])
    assert all(pd.isna(mnist[c]) for c in RATIO_COLUMNS)
    assert mnist["peak_rss_mb_mean"] == 2000.0 and pd.isna(mnist["peak_cuda_allocated_mb_mean"])
    assert any(w.startswith("mnist: only noprop-dt has ok runs") for w in report.warnings)
    _, rows = cells.display_rows(report.summary)
    mnist_row = next(r for r in rows if r[0] == "mnist")
    assert mnist_row[4] == "99.00 ± -" and mnist_row[5] == "-" and mnist_row[-1] == "-"


def test_non_ok_runs_are_counted_listed_and_left_out(known: Path, tmp_path: Path):
    report = build(known)
    assert sorted(report.not_ok["run_id"]) == ["bad1", "bad2"]
    assert aggregate.status_counts(report.not_ok) == {"failed": 1, "oom": 1}
    assert summary_row(report.summary, "cifar10", "noprop-dt")["n_seeds"] == 3  # seed 3 failed: not counted
    assert set(report.data["curves"]["n_runs"]) == {1, 3}
    line = tables.not_ok_line(report)
    assert line.startswith("2 of 9 matching runs did not finish ok (failed: 1, oom: 1)")
    *_, md = tables.write_tables(report, tmp_path / "out")  # summary.md comes last
    text = md.read_text()
    assert line in text and "RuntimeError: boom" in text and "| bad2 |" in text


def test_epoch_curves_mean_and_sd_across_seeds(known: Path):
    report = build(known)
    curves = report.data["curves"]
    curve = curves[(curves["dataset"] == "cifar10") & (curves["method"] == "noprop-dt")]
    first, last = curve.iloc[0], curve.iloc[1]
    assert (first["epoch"], first["n_runs"]) == (1, 3)
    assert first["test_acc_pct_mean"] == 60.0 and first["test_acc_pct_sd"] == 10.0
    assert last["test_acc_pct_mean"] == 80.0 and last["test_acc_pct_sd"] == 2.0
    assert first["cum_train_time_s_mean"] == 2.0 and last["cum_train_time_s_mean"] == 4.0


def test_memory_long_uses_cuda_where_measured_else_rss(known: Path):
    report = build(known)
    memory = report.data["memory"]
    measures = memory.groupby("dataset")["measure"].agg(lambda s: sorted(set(s))).to_dict()
    assert measures == {"cifar10": ["CUDA allocated", "CUDA reserved"], "mnist": ["RSS (CPU)"]}
    assert sorted(memory[memory["dataset"] == "mnist"]["mb"]) == [2000.0]


def test_filters_by_dataset_and_method_alias(known: Path):
    report = build(known, datasets=["cifar10"], methods=["noprop"])
    assert set(zip(report.summary["dataset"], report.summary["method"], strict=True)) == {("cifar10", "noprop-dt")}
    assert list(report.not_ok["run_id"]) == ["bad1"]
    assert any("only noprop-dt" in w for w in report.warnings)


def test_ratio_falls_back_to_another_backprop_config_with_a_warning(tmp_path: Path):
    folder = write_folder(tmp_path / "r", [
        run_row("n", "cifar100", "noprop-dt", 0, 40.0, 3.0, config_hash="aaaaaaaaaaaa", rss_mb=500),
        run_row("b", "cifar100", "backprop", 0, 40.0, 1.5, config_hash="bbbbbbbbbbbb", rss_mb=1000),
    ])
    report = build(folder)
    noprop = summary_row(report.summary, "cifar100", "noprop-dt")
    assert noprop["time_per_epoch_ratio_to_baseline"] == 2.0
    assert noprop["peak_rss_ratio_to_baseline"] == 0.5
    assert noprop["baseline_config_hash"] == "bbbbbbbbbbbb"
    assert any("no backprop run with the same config" in w for w in report.warnings)


def test_repeated_seed_is_averaged_and_duplicate_folders_counted_once(tmp_path: Path):
    folder = write_folder(tmp_path / "r", [
        run_row("a", "mnist", "backprop", 0, 90.0, 1.0),
        run_row("b", "mnist", "backprop", 0, 92.0, 1.0),
        run_row("c", "mnist", "backprop", 1, 95.0, 1.0),
    ])
    report = build(folder, folder)
    row = summary_row(report.summary, "mnist", "backprop")
    assert row["n_seeds"] == 2 and row["test_acc_pct_mean"] == 93.0 and row["test_acc_pct_sd"] == math.sqrt(8)
    assert any("seed 0 has 2 ok runs" in w for w in report.warnings)
    assert report.sources == [str(folder)]


def test_paper_numbers():
    assert paper.accuracy_pct("mnist", "noprop-dt", "learned", 20) == 99.49
    assert paper.accuracy_pct("mnist", "noprop-dt", "learned", 16) is None  # only dim 20 is the paper's setup
    assert paper.accuracy_pct("cifar100", "backprop", "prototype") == 47.80
    assert paper.accuracy_pct("fashion-mnist", "noprop-dt", "one-hot") is None
    assert paper.peak_gpu_mb("cifar100", "backprop", "one-hot") == 1.73 * 1024
    assert paper.peak_gpu_mb("mnist", "noprop-dt", "learned") is None
    assert paper.accuracy_pct("cifar100", "noprop-fm", "one-hot") == 6.38  # FM fails one-hot on CIFAR-100
    assert paper.accuracy_pct("cifar10", "noprop-ct", "learned", 20) == 71.77
    assert paper.peak_gpu_mb("cifar10", "noprop-fm", "one-hot") == 0.44 * 1024
    assert len(paper.TEST_ACCURACY_PCT) == 11 * 3 and len(paper.PEAK_GPU_GB) == 4 * 3


# ------------------------------------------------------------------------------- execution switches split groups


def test_runs_differing_only_in_a_switch_are_two_groups_not_one_average(tmp_path: Path):
    report = build(write_folder(tmp_path / "one-folder", switched_runs()))
    noprop = report.summary[report.summary["method"] == "noprop-dt"].set_index("channels_last")
    assert len(report.summary) == 4 and sorted(noprop.index) == ["false", "true"]
    assert set(noprop["config_hash"]) == {"cfg000000001"} and set(noprop["precision"]) == {"fp32"}
    assert list(noprop["n_seeds"]) == [2, 2]  # each layout holds its own two seeds; none averaged across layouts
    assert noprop.loc["true", "time_per_epoch_s_mean"] == 2.0 and noprop.loc["false", "time_per_epoch_s_mean"] == 3.0
    # ratios pair NoProp-DT with backprop of the same layout
    assert list(noprop["time_per_epoch_ratio_to_baseline"]) == [1.0, 1.0]
    assert not any("seed 0 has 2 ok runs" in w for w in report.warnings)
    assert any("2 different settings" in w for w in report.warnings)
    assert sorted(noprop["setting"]) == ["channels_last=false", "channels_last=true"]


def test_every_switch_column_is_a_group_key():
    from bench.results.schema import SWITCH_COLUMNS

    assert aggregate.GROUP[-len(SWITCH_COLUMNS):] == list(SWITCH_COLUMNS)
    keys = aggregate.with_keys(pd.DataFrame({c: [pd.NA] for c in aggregate.GROUP} | {"status": ["ok"]}))
    assert list(keys.loc[0, aggregate.GROUP]) == [""] * len(aggregate.GROUP)  # missing keys become ""
    flags = aggregate.key_text(pd.Series([True, False, pd.NA], dtype="boolean"))
    assert list(flags) == ["true", "false", ""]


def test_ratio_prefers_backprop_of_the_same_switches_and_flags_another(tmp_path: Path):
    rows = [run_row("n", "mnist", "noprop-dt", 0, 99.0, 4.0, precision="bf16", channels_last=True),
            run_row("b", "mnist", "backprop", 0, 99.0, 2.0, precision="fp32", channels_last=True)]
    report = build(write_folder(tmp_path / "r", rows))
    assert summary_row(report.summary, "mnist", "noprop-dt")["time_per_epoch_ratio_to_baseline"] == 2.0
    assert any("no backprop run with the same config and switches; ratios use backprop config cfg000000001, "
               "precision=fp32, channels_last=true" in w for w in report.warnings)


# ------------------------------------------------------------------------------------------- median epoch time


def test_median_epoch_time_from_the_row_or_else_from_its_epochs(tmp_path: Path):
    new = run_row("new", "mnist", "backprop", 0, 90.0, 5.0, epoch_time_median_s=3.0)
    old = run_row("old", "mnist", "backprop", 1, 90.0, 5.0)  # no epoch_time_median_s, as rows before schema 3
    lone = run_row("lone", "mnist", "backprop", 2, 90.0, 5.0)  # neither the column nor epochs
    epochs = epoch_rows(new, (1.0, 2.0, 3.0), (9.0, 4.0, 4.0)) + epoch_rows(old, (1.0, 2.0, 3.0), (11.0, 2.0, 2.0))
    report = build(write_folder(tmp_path / "r", [new, old, lone], epochs))
    per_seed = report.per_seed.set_index("seed")["epoch_time_median_s"]
    assert per_seed[0.0] == 3.0 and per_seed[1.0] == 2.0 and math.isnan(per_seed[2.0])
    row = summary_row(report.summary, "mnist", "backprop")
    assert row["time_per_epoch_s_mean"] == 5.0 and row["epoch_time_median_s_mean"] == 2.5
    assert row["epoch_time_median_s_sd"] == math.sqrt(0.5)


def test_with_epoch_medians_leaves_recorded_medians_alone():
    runs = pd.DataFrame({"results_dir": ["a", "a"], "run_id": ["x", "y"], "epoch_time_median_s": [7.0, None]})
    epochs = pd.DataFrame({"results_dir": ["a"] * 3, "run_id": ["x", "y", "y"], "epoch_time_s": [1.0, 4.0, 6.0]})
    assert list(aggregate.with_epoch_medians(runs, epochs)["epoch_time_median_s"]) == [7.0, 5.0]


def test_methods_with_different_passes_per_image_at_equal_epochs_are_noted():
    """NoProp-CT (one network pass per image) beside NoProp-DT (T block passes) at equal epochs: the report says
    that its parts get T times fewer updates at that budget."""
    folder = Path(__file__).resolve().parents[2] / "results" / "reference" / "continuous-fashion-mnist-cpu"
    report = aggregate.over_seeds(load([folder]))
    noted = [w for w in report.warnings if "different block passes per image" in w]
    assert len(noted) == 1 and "noprop-ct 1" in noted[0] and "noprop-dt 10" in noted[0]
    smoke = aggregate.over_seeds(load([folder.parent / "smoke-cpu"]))
    assert not [w for w in smoke.warnings if "block passes" in w]  # NoProp-DT and backprop: T passes each


def test_a_recorded_departure_from_the_paper_is_repeated_once_per_group():
    ok = pd.DataFrame({"variant": ["noprop-ct (a)", "noprop-ct (a)", "noprop-ct (b)", "noprop-dt (a)"],
                       "departure": ["ct_weight uniform: not the paper's loss"] * 2 + ["", None]})
    warnings: list[str] = []
    aggregate._note_departures(ok, warnings)
    assert warnings == ["noprop-ct (a): ct_weight uniform: not the paper's loss"]
