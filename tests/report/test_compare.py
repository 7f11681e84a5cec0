"""``bench.report.compare``, the regression gate: exact numbers from the pure functions, exit codes and key lines
from the CLI.

Results folders are written by hand with ``bench.results.append_rows`` (the real schema), with values chosen so
means, sds, medians and ratios are exact in floating point.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.report import compare as gate
from bench.report.load import InputError
from bench.results import EPOCH_COLUMNS, EPOCHS_FILE, RUN_COLUMNS, RUNS_FILE, append_rows, read_runs

MB = 2**20
runner = CliRunner()


def run_row(run_id: str, seed: int, test_acc: float | None = 90.0, time_per_epoch: float = 1.0, *,
            status: str = "ok", dataset: str = "fashion-mnist", method: str = "noprop-dt",
            embedding: str = "one-hot", config_hash: str = "cfg000000001", rss_mb: int = 1000,
            cuda_mb: int | None = None, saved_mb: int | None = None, device_name: str = "Test CPU",
            **columns: object) -> dict:
    """One run row with the columns ``compare`` reads; ``columns`` adds others (switches, the median epoch)."""
    return {
        "run_id": run_id, "status": status, "dataset": dataset, "method": method, "embedding": embedding,
        "seed": seed, "config_hash": config_hash, "test_acc": test_acc, "time_per_epoch_s": time_per_epoch,
        "samples_per_s": 1000.0 / time_per_epoch, "peak_rss_bytes": rss_mb * MB,
        "peak_cuda_allocated_bytes": None if cuda_mb is None else cuda_mb * MB,
        "peak_saved_activation_bytes": None if saved_mb is None else saved_mb * MB, "device_name": device_name,
        **columns,
    }


def seeds(prefix: str, accs: list[float], **kwargs) -> list[dict]:
    """One ok run per seed 0, 1, ... with the given accuracies and otherwise the same values."""
    return [run_row(f"{prefix}{i}", i, acc, **kwargs) for i, acc in enumerate(accs)]


def folder(path: Path, rows: list[dict]) -> Path:
    append_rows(path / RUNS_FILE, RUN_COLUMNS, rows)
    return path


def frame(tmp_path: Path, name: str, rows: list[dict]) -> pd.DataFrame:
    """Rows as ``read_runs`` returns them (typed columns), for the pure functions."""
    return read_runs(folder(tmp_path / name, rows))


def invoke(*args: object, env_columns: str = "250"):
    return runner.invoke(app, ["compare", *map(str, args)], env={"COLUMNS": env_columns})


# ------------------------------------------------------------------------------------------ pure functions


def test_aggregate_means_sds_and_medians_over_seeds(tmp_path):
    rows = [run_row("a", 0, 80.0, 1.0, rss_mb=100), run_row("b", 1, 84.0, 2.0, rss_mb=300),
            run_row("c", 2, 82.0, 6.0, rss_mb=200),
            run_row("d", 2, 82.0, 6.0, rss_mb=200),  # seed 2 twice: averaged, counts once
            run_row("x", 3, 10.0, 100.0, status="failed")]
    agg = gate.summarize_side(frame(tmp_path, "a", rows)).iloc[0]
    assert (agg["n_seeds"], agg["n_acc"], agg["acc_mean"], agg["acc_sd"]) == (3, 3, 82.0, 2.0)
    assert (agg["time_median"], agg["samples_median"], agg["rss_median"]) == (2.0, 500.0, 200 * MB)
    assert math.isnan(agg["cuda_median"]) and math.isnan(agg["saved_median"]) and agg["devices"] == "Test CPU"


def test_accuracy_allowance_pools_the_seed_spread():
    assert gate.accuracy_allowance(0.5, 6.0, 4, 8.0, 4) == (5.0, 10.5)  # sqrt(36/4 + 64/4) = 5; 0.5 + 2 * 5
    assert gate.accuracy_allowance(0.5, 6.0, 4, math.nan, 1) == (3.0, 6.5)  # a one-seed side adds nothing
    assert gate.accuracy_allowance(0.5, math.nan, 1, math.nan, 1) == (0.0, 0.5)


def test_accuracy_drop_within_the_seed_spread_passes_and_beyond_it_fails(tmp_path):
    base = frame(tmp_path, "base", seeds("b", [80.0, 84.0]))  # mean 82, sd sqrt(8): se term 8/2 = 4
    within = gate.compare(base, frame(tmp_path, "within", seeds("c", [78.5, 78.5])))  # sd 0: se 2, allowed 4.5
    row = within.table.iloc[0]
    assert (row["acc_drop"], row["pooled_se"], row["acc_allowed"]) == (3.5, 2.0, 4.5)
    assert not within.failed
    beyond = gate.compare(base, frame(tmp_path, "beyond", seeds("d", [77.0, 77.0])))
    assert beyond.table.iloc[0]["failed_checks"] == ["accuracy"]
    assert "drop of 5.00 points > 4.50 allowed" in beyond.failures[0]
    # the same 3.5-point drop with one seed per side has no spread to excuse it
    single = gate.compare(frame(tmp_path, "b1", seeds("e", [82.0])), frame(tmp_path, "c1", seeds("f", [78.5])))
    assert single.table.iloc[0]["failed_checks"] == ["accuracy"]


def test_time_and_memory_ratios_against_thresholds(tmp_path):
    base = frame(tmp_path, "base", [run_row("b0", 0, time_per_epoch=2.0, rss_mb=1000, saved_mb=40)])
    cand = frame(tmp_path, "cand", [run_row("c0", 0, time_per_epoch=2.5, rss_mb=1300, saved_mb=60)])
    result = gate.compare(base, cand, gate.Thresholds(max_slowdown=1.25, max_memory_growth=1.25))
    row = result.table.iloc[0]
    assert (row["slowdown"], row["samples_ratio"], row["memory_kind"], row["memory_growth"], row["saved_growth"]) \
        == (1.25, 0.8, "RSS", 1.3, 1.5)
    assert row["failed_checks"] == ["memory", "saved activations"]  # exactly at max_slowdown passes
    assert not gate.compare(base, cand, gate.Thresholds(max_memory_growth=1.5)).failed


def test_cuda_memory_is_used_when_both_sides_have_it(tmp_path):
    base = frame(tmp_path, "base", [run_row("b0", 0, rss_mb=1000, cuda_mb=100)])
    cand = frame(tmp_path, "cand", [run_row("c0", 0, rss_mb=2000, cuda_mb=110)])
    row = gate.compare(base, cand).table.iloc[0]
    assert (row["memory_kind"], row["memory_growth"], row["failed_checks"]) == ("CUDA allocated", 1.1, [])
    cpu = frame(tmp_path, "cpu", [run_row("c1", 0, rss_mb=2000)])  # one side without CUDA: RSS on both
    assert gate.compare(base, cpu).table.iloc[0]["failed_checks"] == ["memory"]


def test_unmatched_groups_device_changes_and_not_ok_rows_are_noted(tmp_path):
    base = frame(tmp_path, "base", [run_row("b0", 0), run_row("b1", 0, method="backprop")])
    cand = frame(tmp_path, "cand", [run_row("c0", 0, device_name="Other CPU"),
                                    run_row("c1", 1, None, 50.0, status="oom")])
    result = gate.compare(base, cand)
    assert len(result.table) == 1 and not result.failed
    assert result.only_baseline == ["fashion-mnist/backprop (one-hot), 1 seed"]  # by the report's label
    assert result.only_candidate == []
    assert any("candidate: 1 run(s) not ok ignored (oom: 1)" == n for n in result.notes)
    assert any("device differs (baseline: Test CPU; candidate: Other CPU)" in n for n in result.notes)


def test_nothing_matched_is_an_error_with_a_hint(tmp_path):
    base = frame(tmp_path, "base", [run_row("b0", 0)])
    cand = frame(tmp_path, "cand", [run_row("c0", 0, config_hash="cfg000000002")])
    with pytest.raises(gate.CompareError, match="nothing to compare.*different config_hash"):
        gate.compare(base, cand)
    with pytest.raises(gate.CompareError, match="candidate hold"):
        gate.compare(base, frame(tmp_path, "bad", [run_row("c1", 0, status="failed")]))


def test_thresholds_layers_and_validation(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("max_slowdown: 1.1\nmax_accuracy_drop: 1\n")
    from_file = gate.read_thresholds(path)
    assert gate.make_thresholds(from_file, {"max_slowdown": 2.0, "max_memory_growth": None}) == \
        gate.Thresholds(max_accuracy_drop=1.0, max_slowdown=2.0, max_memory_growth=1.25)
    path.write_text("max_slowdwn: 1.1\n")
    with pytest.raises(gate.CompareError, match="unknown key 'max_slowdwn'"):
        gate.read_thresholds(path)
    for text in ("max_slowdown: fast\n", "max_slowdown: 0\n", "max_accuracy_drop: -1\n", "[1, 2]\n"):
        path.write_text(text)
        with pytest.raises(gate.CompareError):
            gate.read_thresholds(path)


# --------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def base(tmp_path) -> Path:
    return folder(tmp_path / "base", seeds("b", [80.0, 84.0]) + seeds("p", [70.0, 70.0], method="backprop"))


def test_identical_results_pass(tmp_path, base):
    result = invoke(base, base)
    assert result.exit_code == 0, result.output
    assert "PASS: 2 group(s) compared, no threshold crossed" in result.output


def test_slower_candidate_fails_naming_time(tmp_path, base):
    cand = folder(tmp_path / "cand", seeds("c", [80.0, 84.0], time_per_epoch=1.3)
                  + seeds("q", [70.0, 70.0], method="backprop"))
    result = invoke(base, cand)
    assert result.exit_code == 1, result.output
    assert "FAIL: 1 of 2 group(s) crossed a threshold" in result.output
    assert "fashion-mnist/noprop-dt (one-hot): time per epoch 1 s -> 1.3 s, x1.30 > x1.25" \
        in result.output


def test_accuracy_within_seed_spread_passes_beyond_fails(tmp_path, base):
    within = folder(tmp_path / "within", seeds("c", [78.5, 78.5]))
    assert invoke(base, within).exit_code == 0
    beyond = folder(tmp_path / "beyond", seeds("c", [77.0, 77.0]))
    result = invoke(base, beyond)
    assert result.exit_code == 1 and "test accuracy 82.00% -> 77.00%" in result.output


def test_memory_growth_fails(tmp_path, base):
    cand = folder(tmp_path / "cand", seeds("c", [80.0, 84.0], rss_mb=1300))
    result = invoke(base, cand)
    assert result.exit_code == 1 and "peak RSS memory 1000.0 -> 1300.0 MB" in result.output


def test_flags_override_the_thresholds_file(tmp_path, base):
    cand = folder(tmp_path / "cand", seeds("c", [80.0, 84.0], time_per_epoch=1.2))
    strict = tmp_path / "strict.yaml"
    strict.write_text("max_slowdown: 1.1\n")
    assert invoke(base, cand).exit_code == 0
    assert invoke(base, cand, "--thresholds", strict).exit_code == 1
    assert invoke(base, cand, "--thresholds", strict, "--max-slowdown", "1.5").exit_code == 0


def test_bad_thresholds_file_is_exit_2_naming_the_key(tmp_path, base):
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_slowdown: 1.5\nmax_memory: 2\n")
    result = invoke(base, base, "--thresholds", bad)
    assert result.exit_code == 2 and "unknown key 'max_memory'" in result.output
    assert invoke(base, base, "--thresholds", tmp_path / "missing.yaml").exit_code == 2


def test_nothing_to_match_and_missing_or_foreign_folders_are_exit_2(tmp_path, base):
    other = folder(tmp_path / "other", [run_row("c0", 0, config_hash="cfg000000002")])
    result = invoke(base, other)
    assert result.exit_code == 2 and "nothing to compare" in result.output
    result = invoke(base, tmp_path / "nowhere")
    assert result.exit_code == 2 and "candidate folder" in result.output and "does not exist" in result.output
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / RUNS_FILE).write_text("schema_version,run_id\n9,x\n")
    result = invoke(foreign, base)
    assert result.exit_code == 2 and "different results schema" in result.output


def test_not_ok_rows_ignored_and_unmatched_groups_listed(tmp_path, base):
    cand = folder(tmp_path / "cand", seeds("c", [80.0, 84.0])
                  + [run_row("x", 2, None, 99.0, status="diverged", rss_mb=9999)])
    result = invoke(base, cand)
    assert result.exit_code == 0, result.output
    assert "only in baseline (not compared): fashion-mnist/backprop (one-hot)" in result.output
    assert "candidate: 1 run(s) not ok ignored (diverged: 1)" in result.output


def test_markdown_output_for_ci_logs(tmp_path, base):
    cand = folder(tmp_path / "cand", seeds("c", [80.0, 84.0], time_per_epoch=1.3, device_name="Other CPU"))
    result = invoke(base, cand, "--markdown")
    assert result.exit_code == 1
    assert result.output.startswith("## noprop-bench compare\n")
    assert "**FAIL: 1 of 1 group(s) crossed a threshold**" in result.output
    assert ("| fashion-mnist/noprop-dt (one-hot), seeds 2 vs 2 | test acc % | 82.00 ± 2.83 | "
            "82.00 ± 2.83 | +0.00 | >= -6.16 | ok |") in result.output  # allowed: 0.5 + 2 * sqrt(8/2 + 8/2)
    assert "|  | s/epoch | 1 | 1.3 | x1.30 | <= x1.25 | **FAIL** |" in result.output
    assert "- fashion-mnist/noprop-dt (one-hot): device differs" in result.output


# --------------------------------------------------------------------------------- thresholds (pydantic model)


@pytest.mark.parametrize(("text", "message"), [
    ("max_slowdown: true\n", "max_slowdown: input should be a valid number"),
    ("max_slowdown: '1.5'\n", "max_slowdown: input should be a valid number"),
    ("max_memory_growth: .inf\n", "max_memory_growth: input should be a finite number"),
    ("max_accuracy_drop: -0.1\n", "max_accuracy_drop: input should be greater than or equal to 0 (percentage points)"),
    ("max_slowdown: 0\n", "max_slowdown: input should be greater than 0 (a ratio; 1.25 allows 25% more), got 0"),
])
def test_threshold_errors_are_one_line_naming_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(gate.CompareError) as caught:
        gate.read_thresholds(path)
    assert str(caught.value).startswith(f"thresholds file {path}: {message}") and "\n" not in str(caught.value)


def test_threshold_flags_are_validated_too():
    with pytest.raises(InputError, match="command line: max_slowdown: input should be greater than 0"):
        gate.make_thresholds({"max_slowdown": 1.5}, {"max_slowdown": -1.0})
    assert gate.make_thresholds() == gate.Thresholds()
    assert set(gate.THRESHOLD_KEYS) == {"max_accuracy_drop", "max_slowdown", "max_memory_growth"}


# ---------------------------------------------------------------------------------- switches and --across


def layout(prefix: str, channels_last: bool, epoch_s: float, **kwargs) -> list[dict]:
    return seeds(prefix, [80.0, 84.0], time_per_epoch=2 * epoch_s, precision="fp32", channels_last=channels_last,
                 epoch_time_median_s=epoch_s, **kwargs)


def test_switches_are_part_of_the_match_key(tmp_path):
    base = frame(tmp_path, "base", layout("b", False, 1.0))
    cand = frame(tmp_path, "cand", layout("c", True, 0.5))
    with pytest.raises(gate.CompareError, match="different channels_last: pass --across channels_last"):
        gate.compare(base, cand)
    both = frame(tmp_path, "both", layout("d", False, 1.0) + layout("e", True, 0.5))
    result = gate.compare(both, both)  # each layout paired with itself, never averaged with the other
    assert list(result.table["channels_last"]) == ["false", "true"] and list(result.table["n_base"]) == [2, 2]


def test_across_pairs_runs_that_differ_only_in_that_switch(tmp_path):
    base = frame(tmp_path, "base", layout("b", False, 1.0))
    cand = frame(tmp_path, "cand", layout("c", True, 0.5))
    result = gate.compare(base, cand, across=["channels_last"])
    row = result.table.iloc[0]
    assert (row["time_measure"], row["time_base"], row["time_cand"], row["slowdown"]) == ("median", 1.0, 0.5, 0.5)
    assert row["channels_last"] == "false -> true" and not result.failed
    assert row["label"] == "fashion-mnist/noprop-dt (channels_last=false -> channels_last=true)"


def test_across_needs_one_value_of_the_switch_per_side(tmp_path):
    mixed = frame(tmp_path, "mixed", layout("b", False, 1.0) + layout("c", True, 0.5))
    with pytest.raises(gate.CompareError, match="the baseline holds .* with channels_last false and true"):
        gate.compare(mixed, frame(tmp_path, "cand", layout("d", True, 0.5)), across=["channels_last"])
    with pytest.raises(gate.CompareError, match="not a switch"):
        gate.compare(mixed, mixed, across=["seed"])


def test_cli_across_flag(tmp_path):
    base = folder(tmp_path / "nchw", layout("b", False, 1.0))
    cand = folder(tmp_path / "nhwc", layout("c", True, 1.5))
    plain = invoke(base, cand)
    assert plain.exit_code == 2 and "--across channels_last" in plain.output
    result = invoke(base, cand, "--across", "channels_last")
    assert result.exit_code == 1, result.output
    assert "median epoch time 1 s -> 1.5 s, x1.50 > x1.25 (max_slowdown)" in result.output
    assert invoke(base, cand, "--across", "layout").exit_code == 2  # not a switch: a usage error


# ------------------------------------------------------------------------------------------- median epoch time


def test_time_is_judged_on_the_median_epoch_with_a_fallback_to_the_mean(tmp_path):
    # the median is what is judged: the mean epoch (a slow first epoch included) would fail this candidate
    base = frame(tmp_path, "base", seeds("b", [80.0], time_per_epoch=1.0, epoch_time_median_s=1.0))
    cand = frame(tmp_path, "cand", seeds("c", [80.0], time_per_epoch=2.0, epoch_time_median_s=1.1))
    result = gate.compare(base, cand)
    assert (result.table.iloc[0]["time_measure"], result.table.iloc[0]["slowdown"]) == ("median", 1.1)
    assert not result.failed and not any("time judged on time_per_epoch_s" in n for n in result.notes)
    old = frame(tmp_path, "old", seeds("o", [80.0], time_per_epoch=2.0))  # no median (written before schema 3)
    fallback = gate.compare(base, old)
    assert (fallback.table.iloc[0]["time_measure"], fallback.table.iloc[0]["slowdown"]) == ("mean", 2.0)
    assert fallback.table.iloc[0]["failed_checks"] == ["time"]
    assert any("time judged on time_per_epoch_s" in n and "the candidate has no median epoch time" in n
               for n in fallback.notes)


def test_cli_takes_the_median_of_older_rows_from_their_epochs(tmp_path):
    base = folder(tmp_path / "base", seeds("b", [80.0], time_per_epoch=3.0))
    append_rows(base / EPOCHS_FILE, EPOCH_COLUMNS, [
        {"run_id": "b0", "dataset": "fashion-mnist", "method": "noprop-dt", "seed": 0, "epoch": e, "test_acc": 80.0,
         "epoch_time_s": t, "cum_train_time_s": 0.0} for e, t in ((1, 7.0), (2, 1.0), (3, 1.0))])
    cand = folder(tmp_path / "cand", seeds("c", [80.0], time_per_epoch=1.2, epoch_time_median_s=1.2))
    result = invoke(base, cand, "--markdown")
    assert result.exit_code == 0, result.output
    assert "|  | median s/epoch | 1 | 1.2 | x1.20 | <= x1.25 | ok |" in result.output
