"""The Ray executor (``--executor ray``): the same rows as the local executor, Ctrl-C and ``--resume``, a killed
task, and one-line errors. Runs on a local Ray of 2 CPUs started once for the module; the tests that need Ray are
skipped where it is not installed (``.ci/setup`` installs the ``ray`` extra, so CI runs them).

The tiny synthetic MNIST checks code paths, not accuracy; every run is seeded, so two executors give equal numbers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.executors import local
from bench.executors import ray as ray_executor
from bench.executors.sweep import SweepInterrupted
from bench.results import read_epochs, read_runs
from bench.run import config as cfg
from bench.run import stopping
from bench.run.recipe import RunError, quiet
from tests.conftest import TINY, cli, suite_device, two_gpus_on_cuda

# Columns that differ between two measurements of the same run: ids, clocks, memory, where it ran and what the machine
# was doing meanwhile (its load, the CPU time, the thread count a run without --threads chooses from it).
MEASURED = {
    "rss_at_start_bytes", "cpu_time_s", "load_avg", "load_avg_max", "cpus", "threads",
    "run_id", "timestamp", "train_time_s", "eval_time_s", "startup_time_s", "warmup_time_s", "time_per_epoch_s",
    "epoch_time_median_s", "samples_per_s", "block_samples_per_s", "train_gflop_per_s", "peak_cuda_allocated_bytes",
    "peak_cuda_reserved_bytes", "peak_rss_bytes", "measured_in", "device_name", "torch_version",
    "cuda_version", "python_version", "git_commit", "git_dirty", "hostname", "config_json",
    "epoch_time_s", "cum_train_time_s", "test_infer_s", "test_infer_det_s",
}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """One local Ray instance of 2 CPUs for the module, started the way the executor starts its own, from a process
    that ignores SIGINT, as a command started in the background does (its workers inherit that: a task must still be
    cancellable, bench.run.stopping.interruptible)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (CI installs it)")
    with pytest.MonkeyPatch.context() as env, stopping.restored_after():
        env.setenv("RAY_worker_niceness", "0")
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        ray_executor.start_local(ray, num_cpus=2)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the driver's own Ctrl-C is not under test here
        yield ray
        ray.shutdown()


def tiny(data_root: Path, out: Path, **keys: Any) -> cfg.RunConfig:
    """TINY's config: both methods, seed 0, one torch thread per run (so the two runs share the 2 CPUs)."""
    return cfg.resolve(dataset="mnist", overrides={
        "width": 0.125, "T": 3, "batch_size": 64, "eval_repeats": 2, "epochs": 2, "threads": 1,
        "data_dir": str(data_root), "download": False, "device": str(suite_device()), "out": str(out), **keys})


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns two executors must agree on, one row per (method, seed[, epoch]) in a fixed order."""
    keys = [c for c in ("method", "seed", "epoch") if c in frame.columns]
    kept = [c for c in frame.columns if c not in MEASURED]
    return frame[kept].sort_values(keys).reset_index(drop=True)


def test_same_rows_as_the_local_executor(ray_cluster, tiny_mnist, tmp_path):
    events: list[dict] = []
    rows = ray_executor.run_sweep(tiny(tiny_mnist, tmp_path / "ray", threads=2), resume=False, emit=events.append)
    local.run_sweep(tiny(tiny_mnist, tmp_path / "local", threads=2), resume=False, in_process=False, emit=quiet)

    assert [(r["method"], r["status"]) for r in rows] == [("noprop-dt", "ok"), ("backprop", "ok")]
    runs = read_runs(tmp_path / "ray")
    assert set(runs["measured_in"]) == {"ray-task"} and (runs["peak_rss_bytes"] > 0).all()
    pd.testing.assert_frame_equal(comparable(runs), comparable(read_runs(tmp_path / "local")))
    pd.testing.assert_frame_equal(comparable(read_epochs(tmp_path / "ray")),
                                  comparable(read_epochs(tmp_path / "local")))
    for run_id in runs["run_id"]:
        assert (tmp_path / "ray" / "artifacts" / f"{run_id}.npz").is_file()
    assert not list((tmp_path / "ray" / "checkpoints").glob("*.pt"))
    assert list((tmp_path / "ray").glob("config-*.json"))
    kinds = [e["event"] for e in events if e["event"] != "phase"]
    assert kinds == ["start", "epoch", "epoch", "end"] * 2  # 2 threads each on Ray's 2 CPUs: one run at a time
    starts = [e for e in events if e["event"] == "start"]
    assert len({e["pid"] for e in starts} | {os.getpid()}) == 3  # each run in a worker process of its own


def test_a_budgeted_sweep_stops_every_method_where_the_local_one_does(ray_cluster, tiny_mnist, tmp_path):
    """A GFLOP budget (issue 36) under Ray: each method stops at the same step as under the local executor, so the
    rows (budget spent, epochs, accuracies) are the local ones."""
    keys = {"budget_gflop": 2.0, "epochs": 20}
    ray_executor.run_sweep(tiny(tiny_mnist, tmp_path / "ray", **keys), resume=False, emit=quiet)
    local.run_sweep(tiny(tiny_mnist, tmp_path / "local", **keys), resume=False, in_process=False, emit=quiet)
    runs = read_runs(tmp_path / "ray")
    assert (runs["budget_unit"] == "gflop").all() and (runs["budget_spent"] >= 2.0).all()
    pd.testing.assert_frame_equal(comparable(runs), comparable(read_runs(tmp_path / "local")))


@two_gpus_on_cuda()
def test_a_block_parallel_run_is_one_task_with_the_rows_of_one_process(ray_cluster, tiny_mnist, tmp_path):
    """--block-workers 2 under Ray: one task (asking 2 x 1 CPUs) that starts its own follower; the rows equal a local
    single-process run's, apart from the switch itself."""
    keys = {"methods": ["noprop-dt"], "order": "interleaved", "threads": 1}
    (row,) = ray_executor.run_sweep(tiny(tiny_mnist, tmp_path / "ray", block_workers=2, **keys), resume=False,
                                    emit=quiet)
    local.run_sweep(tiny(tiny_mnist, tmp_path / "local", **keys), resume=False, in_process=False, emit=quiet)
    assert row["status"] == "ok" and row["block_workers"] == 2 and row["measured_in"] == "ray-task"
    ray_runs, local_runs = read_runs(tmp_path / "ray"), read_runs(tmp_path / "local")
    assert list(local_runs["block_workers"]) == [1]
    assert ray_runs["config_hash"].iloc[0] == local_runs["config_hash"].iloc[0]
    for col in ("test_acc", "train_acc", "params", "epochs_done"):
        assert ray_runs[col].iloc[0] == pytest.approx(local_runs[col].iloc[0], rel=1e-6), col
    assert list(read_epochs(tmp_path / "ray")["train_loss"]) == pytest.approx(
        list(read_epochs(tmp_path / "local")["train_loss"]), rel=1e-5)


def test_interrupted_sweep_resumes_to_the_same_rows(ray_cluster, tiny_mnist, tmp_path):
    epochs = 5
    straight = tiny(tiny_mnist, tmp_path / "straight", epochs=epochs)
    ray_executor.run_sweep(straight, resume=False, emit=quiet)

    cut = tiny(tiny_mnist, tmp_path / "cut", epochs=epochs)
    seen: dict[str, int] = {}

    def ctrl_c_once_every_run_has_two_epochs(event: dict) -> None:
        """As Ctrl-C in the driver, once each run has a checkpoint (its first epoch's, saved before epoch 2)."""
        if event["event"] == "epoch" and not seen.get("pressed"):
            seen[event["key"]] = event["epoch"]
            if sum(1 for k, v in seen.items() if k != "pressed" and v >= 2) == 2:
                seen["pressed"] = 1
                raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted):
        ray_executor.run_sweep(cut, resume=False, emit=ctrl_c_once_every_run_has_two_epochs)
    interrupted = read_runs(tmp_path / "cut")
    assert set(interrupted["status"]) <= {"interrupted", "ok"} and "interrupted" in set(interrupted["status"]), \
        interrupted[["method", "status", "reason", "epochs_done"]].to_string()
    assert ((interrupted["epochs_done"] >= 2) & (interrupted["epochs_done"] <= epochs)).all()

    rows = ray_executor.run_sweep(cut, resume=True, emit=quiet)
    assert all(r["status"] == "ok" for r in rows)
    final = read_runs(tmp_path / "cut")
    assert len(final) == 2 and set(final["run_id"]) == set(interrupted["run_id"])  # completed, not duplicated
    epoch_rows = read_epochs(tmp_path / "cut")
    assert len(epoch_rows) == 2 * epochs and not epoch_rows.duplicated(["run_id", "epoch"]).any()
    pd.testing.assert_frame_equal(comparable(final), comparable(read_runs(tmp_path / "straight")))
    pd.testing.assert_frame_equal(comparable(epoch_rows), comparable(read_epochs(tmp_path / "straight")))


def test_a_killed_task_is_recorded_failed_and_the_sweep_goes_on(ray_cluster, tiny_mnist, tmp_path):
    def kill_noprop(event: dict) -> None:
        if event["event"] == "start" and event["method"] == "noprop-dt":
            os.kill(event["pid"], signal.SIGKILL)  # as the OOM killer would

    rows = ray_executor.run_sweep(tiny(tiny_mnist, tmp_path, epochs=3), resume=False, emit=kill_noprop)
    by_method = {r["method"]: r for r in rows}
    killed = by_method["noprop-dt"]
    assert killed["status"] == "failed" and killed["measured_in"] == "ray-task"
    assert "before recording its result" in killed["reason"] and "Error" in killed["reason"]
    assert by_method["backprop"]["status"] == "ok"
    runs = read_runs(tmp_path)
    assert sorted(zip(runs["method"], runs["status"], strict=True)) == [("backprop", "ok"), ("noprop-dt", "failed")]


def test_a_run_that_cannot_start_stops_the_sweep(ray_cluster, tmp_path):
    """An archive that is there but unreadable passes the sweep's early check for data and stops the sweep from its
    task (missing data stops it before any task: tests/cli/test_commands.py)."""
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not a tar archive")
    config = cfg.resolve(dataset="cifar10", overrides={"data_dir": str(tmp_path), "download": False,
                                                       "out": str(tmp_path / "out"), "threads": 1})
    with pytest.raises(RunError, match="cifar-10-python.tar.gz"):
        ray_executor.run_sweep(config, resume=False, emit=quiet)
    assert not (tmp_path / "out" / "runs.csv").exists()


def test_the_command_line_starts_ray_for_the_sweep_and_stops_it(tiny_mnist, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (CI installs it)")
    proc = cli("run", *TINY, "--data-dir", str(tiny_mnist), "--out", str(tmp_path), "--epochs", "1", "--methods",
               "backprop", "--threads", "1", "--executor", "ray", "--jsonl", timeout=180)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events if e["event"] != "phase"] == ["start", "epoch", "end"]
    assert events[0]["pid"] > 0 and "phase" in {e["event"] for e in events}
    assert events[-1]["row"]["measured_in"] == "ray-task" and len(read_runs(tmp_path)) == 1
    assert "Traceback" not in proc.stderr


def one_line_error(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2  # one line (Rich may wrap it once)


def test_without_ray_the_ray_executor_is_one_line(tiny_mnist, tmp_path):
    as_if_missing = "import sys; sys.modules['ray'] = None; from bench.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", as_if_missing, "run", *TINY, "--data-dir", str(tiny_mnist),
                           "--out", str(tmp_path), "--executor", "ray", "--quiet"],
                          capture_output=True, text=True, timeout=120)
    one_line_error(proc, "pip install 'noprop-bench[ray]'")


def test_an_unreachable_cluster_is_one_line(tiny_mnist, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (CI installs it)")
    proc = cli("run", *TINY, "--data-dir", str(tiny_mnist), "--out", str(tmp_path), "--executor", "ray",
               "--ray-address", "127.0.0.1:1", "--quiet", timeout=120)
    one_line_error(proc, "cannot reach the Ray cluster at 127.0.0.1:1")


@pytest.mark.parametrize("args,message", [
    (["--executor", "ray", "--in-process"], "does not combine with --executor ray"),
    (["--ray-address", "127.0.0.1:1"], "--ray-address applies to --executor ray"),
    (["--executor", "spark"], "'spark' is not one of"),
])
def test_executor_options_that_mean_nothing_are_usage_errors(tmp_path, args, message):
    one_line_error(cli("run", "--out", str(tmp_path), *args), message)
