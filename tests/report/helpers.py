"""Hand-written results folders with known values, shared by the report tests (and by anything else that needs a
small, exact results folder).

The rows are written with ``bench.results.append_rows`` so they follow the real schema; the values are chosen so
every mean, sd, se and ratio is exact in floating point and can be asserted with ``==``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from bench.cli import app
from bench.results import EPOCH_COLUMNS, EPOCHS_FILE, RUN_COLUMNS, RUNS_FILE, SCHEMA_VERSION, append_rows

FUTURE = SCHEMA_VERSION + 1
MB = 2**20
runner = CliRunner()


def run_row(run_id: str, dataset: str, method: str, seed: int, test_acc: float, time_per_epoch: float, *,
            status: str = "ok", embedding: str = "one-hot", config_hash: str = "cfg000000001",
            cuda_mb: int | None = None, reserved_mb: int | None = None, rss_mb: int = 1000, reason: str = "",
            embed_dim: int = 20, **columns: object) -> dict:
    """One run row as ``run`` writes it (only the columns the report reads, plus a config); ``columns`` adds or
    overrides any other column (``precision``, ``channels_last``, ``epoch_time_median_s``, ...)."""
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
        **columns,
    }


def epoch_rows(run: dict, accs: tuple[float, ...], times: tuple[float, ...] | None = None) -> list[dict]:
    """The run's epochs with the given test accuracies; each epoch takes ``time_per_epoch_s`` unless ``times``."""
    rows, cum = [], 0.0
    times = times or (run["time_per_epoch_s"],) * len(accs)
    for epoch, (acc, seconds) in enumerate(zip(accs, times, strict=True), start=1):
        cum += seconds
        rows.append({"run_id": run["run_id"], "dataset": run["dataset"], "method": run["method"], "seed": run["seed"],
                     "epoch": epoch, "train_loss": 1.0 / epoch, "test_acc": acc, "epoch_time_s": seconds,
                     "cum_train_time_s": cum, "peak_rss_bytes": run["peak_rss_bytes"]})
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


def switched_runs() -> list[dict]:
    """One Fashion-MNIST config run by both methods with channels_last on and off (two seeds each), in one folder:
    the layout is not part of config_hash, so only the switch column tells the runs apart."""
    rows = []
    for layout, slow in (("true", 1.0), ("false", 1.5)):
        for method, acc in (("noprop-dt", 80.0), ("backprop", 70.0)):
            for seed in (0, 1):
                rows.append(run_row(f"{method[:2]}{layout[0]}{seed}", "fashion-mnist", method, seed, acc + seed,
                                    2.0 * slow, precision="fp32", channels_last=layout == "true",
                                    epoch_time_median_s=1.0 * slow))
    return rows


def summary_row(summary: pd.DataFrame, dataset: str, method: str) -> pd.Series:
    rows = summary[(summary["dataset"] == dataset) & (summary["method"] == method)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def write_other_schema(folder: Path) -> Path:
    """A runs.csv as a future schema version would write it: same columns, the next schema_version."""
    folder.mkdir(parents=True)
    with open(folder / RUNS_FILE, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(RUN_COLUMNS)
        writer.writerow([str(FUTURE), "x1", "", "ok"] + [""] * (len(RUN_COLUMNS) - 4))
    return folder


def invoke_report(*args: str, columns: str = "250"):
    return runner.invoke(app, ["report", *args], env={"COLUMNS": columns})
