"""``--track mlflow``: what a sweep logged, read back through MLflow's own API (``mlflow.search_runs`` and the
client's metric history), is the CSVs' figures, parameters and tags; a resumed run continues its MLflow run.
Skipped where MLflow is not installed (CI installs it). Synthetic MNIST-format files: code paths only."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY, cli

pytest.importorskip("mlflow", reason="MLflow is not installed: pip install -e '.[mlflow]'")
import mlflow  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

RUN = ["run", *TINY, "--seeds", "0", "--quiet", "--track", "mlflow"]
FIGURES = ("train_loss", "test_acc", "test_acc_det", "epoch_time_s", "cum_train_time_s")


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def tracked(out: Path):
    uri = f"sqlite:///{out.resolve() / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[out.name]), MlflowClient(tracking_uri=uri)


def history(client: MlflowClient, run_id: str, name: str) -> dict[int, float]:
    """A metric's value per step (a step logged twice, by an epoch redone after a stop, keeps its last value)."""
    return {m.step: m.value for m in sorted(client.get_metric_history(run_id, name), key=lambda m: m.timestamp)}


def check_against_csv(out: Path, client: MlflowClient, found) -> None:
    runs = {r["method"]: r for r in rows(out / "runs.csv")}
    epochs: dict[str, list[dict]] = {}
    for r in rows(out / "epochs.csv"):
        epochs.setdefault(r["method"], []).append(r)
    assert sorted(found["params.method"]) == sorted(runs)
    for _, t in found.iterrows():
        method = t["params.method"]
        run = runs[method]
        assert t["status"] == "FINISHED" and t["tags.config_hash"] == run["config_hash"]
        assert t["tags.run_id"] == run["run_id"] and t["tags.git_commit"] == run["git_commit"]
        assert t["params.seed"] == run["seed"] and t["params.lr"] == repr(json.loads(run["config_json"])["lr"])
        assert t["metrics.final.test_acc"] == float(run["test_acc"])
        for name in FIGURES:
            assert history(client, t["run_id"], name) == {int(r["epoch"]): float(r[name]) for r in epochs[method]}


def test_each_run_logs_the_csv_figures_params_and_tags(tiny_mnist: Path, tmp_path: Path) -> None:
    out = tmp_path / "res"
    proc = cli(*RUN, "--data-dir", str(tiny_mnist), "--out", str(out), "--epochs", "3", "--methods",
               "noprop,backprop")
    assert proc.returncode == 0, proc.stderr
    found, client = tracked(out)
    assert len(found) == 2
    check_against_csv(out, client, found)

    elsewhere = tmp_path / "elsewhere"  # the folder the user runs `report` from
    elsewhere.mkdir()
    report = cli("report", str(out), cwd=elsewhere)
    assert report.returncode == 0 and "attached the report to MLflow" in report.stdout, report.stderr
    [run] = client.search_runs([found["experiment_id"][0]], filter_string="tags.`noprop_bench.report` = '1'")
    attached = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/summary.csv", "report/summary.md"} <= attached, attached
    assert not (elsewhere / "mlruns").exists()  # the artifacts live beside the store, not where the command ran
    assert list((out / "mlartifacts").rglob("summary.md"))


def test_a_resumed_run_continues_its_mlflow_run(tiny_mnist: Path, tmp_path: Path) -> None:
    out = tmp_path / "res"
    args = [*RUN, "--data-dir", str(tiny_mnist), "--out", str(out), "--epochs", "12", "--methods", "noprop"]
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "XDG_CACHE_HOME": "/nonexistent"})
    deadline = time.time() + 180
    while not list((out / "checkpoints").glob("*.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    found, _ = tracked(out)
    assert list(found["status"]) == ["KILLED"]
    resumed = cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    found, client = tracked(out)
    assert len(found) == 1  # the same MLflow run, continued
    check_against_csv(out, client, found)


def test_without_mlflow_it_is_one_line(tiny_mnist: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "block"
    (blocker / "mlflow").mkdir(parents=True)
    (blocker / "mlflow" / "__init__.py").write_text("raise ImportError('not installed')\n")
    proc = cli(*RUN, "--data-dir", str(tiny_mnist), "--out", str(tmp_path / "res"),
               env={"PYTHONPATH": os.pathsep.join([str(blocker), str(Path.cwd()), os.environ.get("PYTHONPATH", "")])})
    assert proc.returncode == 2 and "pip install 'noprop-bench[mlflow]'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "res" / "runs.csv").exists()
