"""`noprop-bench run` end to end: rows and columns, divergence, bad input, concurrency (stopping and resuming:
test_stopping.py).

Synthetic MNIST-format files check code paths only (their accuracy means nothing); the smoke test uses the
real Fashion-MNIST files.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.results import EPOCH_COLUMNS, RUN_COLUMNS
from bench.run import data
from tests.conftest import TINY, cli


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        out = list(reader)
    return out


def header(path: Path) -> list[str]:
    with open(path) as f:
        return f.readline().strip().split(",")


def test_sweep_in_child_processes_writes_every_row(tiny_mnist, tmp_path):
    out = tmp_path / "res"
    proc = cli("run", *TINY, "--data-dir", str(tiny_mnist), "--epochs", "2", "--seeds", "0,1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert header(out / "runs.csv") == list(RUN_COLUMNS) and header(out / "epochs.csv") == list(EPOCH_COLUMNS)
    runs, epochs = rows(out / "runs.csv"), rows(out / "epochs.csv")
    assert sorted((r["method"], r["seed"]) for r in runs) == [
        ("backprop", "0"), ("backprop", "1"), ("noprop-dt", "0"), ("noprop-dt", "1")]
    assert len(epochs) == 8 and {r["run_id"] for r in epochs} == {r["run_id"] for r in runs}
    for r in runs:
        assert r["status"] == "ok" and r["measured_in"] == "subprocess" and r["epochs_done"] == "2"
        assert float(r["train_time_s"]) > 0 and int(r["peak_rss_bytes"]) > 0 and int(r["params"]) > 0
        assert 0 <= float(r["test_acc"]) <= 100 and r["test_acc_repeats"] == "2"
        assert (out / "artifacts" / f"{r['run_id']}.npz").is_file()
    assert len({r["config_hash"] for r in runs}) == 1 and list(out.glob("config-*.json"))
    # NoProp-DT (paper order) steps one of T = 3 blocks at a time; backprop saves activations of all three
    saved = {r["method"]: int(r["peak_saved_activation_bytes"]) for r in runs if r["seed"] == "0"}
    assert 2.5 * saved["noprop-dt"] < saved["backprop"] < 3.5 * saved["noprop-dt"]
    # both methods do (nearly) the same matrix arithmetic per image; GFLOP/s is that times samples/s
    flop = {r["method"]: float(r["train_gflop_per_sample"]) for r in runs if r["seed"] == "0"}
    assert flop["noprop-dt"] > 0 and 0.9 < flop["backprop"] / flop["noprop-dt"] < 1.1
    for r in runs:
        expected = float(r["train_gflop_per_sample"]) * float(r["samples_per_s"])
        assert abs(float(r["train_gflop_per_s"]) - expected) <= 1e-9 * expected
    assert not list((out / "checkpoints").glob("*.pt"))  # completed runs leave no checkpoint behind
    assert "Runs" in proc.stdout and "noprop-dt" in proc.stdout


def test_jsonl_mode_prints_one_event_per_line(tiny_mnist, tmp_path):
    import json

    proc = cli("run", *TINY, "--data-dir", str(tiny_mnist), "--epochs", "1", "--methods", "backprop",
               "--out", str(tmp_path), "--in-process", "--jsonl")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events if e["event"] != "phase"] == ["start", "epoch", "end"]
    assert [e["phase"] for e in events if e["event"] == "phase"][-2:] == ["epoch 1", "final evaluation"]
    assert events[-1]["row"]["status"] == "ok" and events[-1]["row"]["measured_in"] == "process"


def test_continuous_variants_record_their_budget_steps_and_sweep(tiny_mnist, tmp_path):
    import numpy as np

    out = tmp_path / "res"
    proc = cli("run", *TINY, "--data-dir", str(tiny_mnist), "--methods", "ct,fm,noprop", "--epochs", "1",
               "--continuous-epochs", "2", "--ode-steps", "3", "--integrator", "heun", "--ode-steps-sweep", "1,4",
               "--out", str(out), "--in-process", "--quiet")
    assert proc.returncode == 0, proc.stderr
    runs = {r["method"]: r for r in rows(out / "runs.csv")}
    assert {m: r["epochs_done"] for m, r in runs.items()} == {"noprop-ct": "2", "noprop-fm": "2", "noprop-dt": "1"}
    for method in ("noprop-ct", "noprop-fm"):
        r = runs[method]
        assert (r["status"], r["ode_steps"], r["integrator"], r["order"]) == ("ok", "3", "heun", "")
        assert int(r["test_images"]) > 0 and float(r["test_infer_s"]) > 0
        with np.load(out / "artifacts" / f"{r['run_id']}.npz") as f:
            assert f["sweep_steps"].tolist() == [1.0, 4.0] and f["sweep_infer_s"].min() > 0
    assert runs["noprop-dt"]["ode_steps"] == "" and runs["noprop-dt"]["order"] == "paper"


def test_divergence_is_recorded_and_the_sweep_goes_on(tiny_mnist, tmp_path):
    proc = cli("run", *TINY, "--data-dir", str(tiny_mnist), "--epochs", "2", "--lr", "1e30", "--out", str(tmp_path),
               "--in-process", "--quiet")
    assert proc.returncode == 1 and "did not finish ok" in proc.stderr
    runs = rows(tmp_path / "runs.csv")
    assert [(r["method"], r["status"]) for r in runs] == [("noprop-dt", "diverged"), ("backprop", "diverged")]
    assert all("nan" in r["reason"] or "inf" in r["reason"] for r in runs)


@pytest.mark.parametrize("args,message", [
    (["--methods", "noprop,sgd"], "unknown method sgd"),
    (["--dataset", "imagenet"], "unknown dataset"),
    (["--epochs", "0"], "'epochs': 0"),
    (["--colour", "red"], "No such option: --colour"),
    (["--channels-last", "maybe"], "'maybe' is not true or false"),
    (["--device", "cuda:7"] if not __import__("torch").cuda.is_available() else ["--device", "tpu"], "device"),
    (["--config", "/no/such.yaml"], "not found"),
    (["--slurm-time", "5"], "apply to --executor slurm"),
])
def test_bad_input_is_one_line_and_non_zero(tiny_mnist, tmp_path, args, message):
    proc = cli("run", "--data-dir", str(tiny_mnist), "--out", str(tmp_path), *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2  # one line (Rich may wrap it once)


def test_missing_dataset_offline_is_one_line(tmp_path):
    proc = cli("run", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--download", "false", "--out",
               str(tmp_path / "out"), "--in-process")
    assert proc.returncode == 2 and "cifar-10-python.tar.gz" in proc.stderr and "Traceback" not in proc.stderr


def test_two_concurrent_sweeps_into_one_folder(tiny_mnist, tmp_path):
    args = [sys.executable, "-m", "bench.cli", "run", *TINY, "--data-dir", str(tiny_mnist), "--epochs", "1",
            "--out", str(tmp_path), "--in-process", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on a 2-core machine: no oversubscription
    procs = [subprocess.Popen(args + ["--seeds", s], stderr=subprocess.PIPE, text=True, env=env)
             for s in ("0,1", "2,3")]
    for p in procs:
        assert p.wait(timeout=240) == 0, p.stderr.read()
    runs, epochs = rows(tmp_path / "runs.csv"), rows(tmp_path / "epochs.csv")
    assert len(runs) == 8 and len(epochs) == 8
    assert sorted(int(r["seed"]) for r in runs) == [0, 0, 1, 1, 2, 2, 3, 3]
    text = (tmp_path / "runs.csv").read_text()
    assert text.count("schema_version") == 1 and text.endswith("\n")


EXAMPLE_PLUGIN = importlib.util.find_spec("random_features") is not None


@pytest.mark.slow
@pytest.mark.skipif(not (data.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
@pytest.mark.skipif(not EXAMPLE_PLUGIN, reason="the example plug-in is not installed (pip install -e "
                    "docs/plugin-example; CI installs it)")
def test_the_example_plugin_in_the_smoke_config_on_real_fashion_mnist(tmp_path):
    """docs/plugins.md from install to report, beside a built-in method: its rows say where it came from and its
    baseline, and it keeps the contract. (The main job itself, the smoke config's NoProp-DT and backprop, runs in
    tests/report/test_ci_workflow.py, as the copied CI workflow runs it.)"""
    proc = cli("run", "--config", "smoke", "--methods", "random-features,noprop", "--epochs", "1", "--out",
               str(tmp_path), "--quiet", timeout=400)
    assert proc.returncode == 0, proc.stderr
    runs = rows(tmp_path / "runs.csv")
    assert [(r["method"], r["status"], r["epochs_done"]) for r in runs] == [("random-features", "ok", "1"),
                                                                            ("noprop-dt", "ok", "1")]
    assert all(r["dataset"] == "fashion-mnist" and float(r["samples_per_s"]) > 0 for r in runs)
    the_example_plugin_reports_and_keeps_the_contract(tmp_path, runs)


def the_example_plugin_reports_and_keeps_the_contract(out: Path, runs: list[dict]) -> None:
    plugin, dt = runs[0], runs[1]
    assert (plugin["method_origin"], plugin["method_origin_version"], plugin["baseline"]) == (
        "noprop-bench-random-features", "0.1.0", "cnn")
    assert (dt["method_origin"], dt["baseline"]) == ("built-in", "backprop")
    report = cli("report", str(out), "--out", str(out / "report"))
    assert report.returncode == 0, report.stderr
    assert (out / "report" / "confusion_fashion-mnist_random-features_one-hot.png").is_file()
    assert "random-features" in (out / "report" / "summary.md").read_text()
    check = cli("check", "random-features")
    assert check.returncode == 0 and "random-features keeps the method contract" in check.stdout, check.stderr
