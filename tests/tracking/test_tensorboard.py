"""``--track tensorboard``: what a sweep logged, read back with TensorBoard's own event accumulator, is the
epochs.csv's per-epoch figures (at TensorBoard's 32-bit precision), also across an interrupted and resumed run.
Skipped where TensorBoard is not installed (CI installs it). Synthetic MNIST-format files: code paths only."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from tests.conftest import TINY, cli

pytest.importorskip("tensorboard", reason="TensorBoard is not installed: pip install -e '.[tensorboard]'")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

RUN = ["run", *TINY, "--seeds", "0", "--epochs", "3", "--quiet", "--track", "tensorboard"]
FIGURES = ("train_loss", "test_acc", "test_acc_det", "epoch_time_s", "cum_train_time_s")


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def logged(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder))
    events.Reload()
    return events


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_each_run_logs_the_csv_figures_per_epoch(tiny_mnist: Path, tmp_path: Path, executor: str) -> None:
    """Under any executor: the trackers are fed on the driver (a Ray task's events travel to it)."""
    if executor == "ray":
        pytest.importorskip("ray", reason="Ray is not installed")
    proc = cli(*RUN, "--data-dir", str(tiny_mnist), "--out", str(tmp_path), "--methods", "noprop,backprop",
               "--executor", executor, "--threads", "1", timeout=400)
    assert proc.returncode == 0, proc.stderr
    folders = sorted((tmp_path / "tensorboard").iterdir())
    assert len(folders) == 2
    by_method = {}
    for r in rows(tmp_path / "epochs.csv"):
        by_method.setdefault(r["method"], []).append(r)
    for folder in folders:
        method = next(m for m in by_method if folder.name == f"{m} seed 0")  # a name a person reads
        events = logged(folder)
        for name in FIGURES:
            scalars = events.Scalars(name)
            assert [s.step for s in scalars] == [1, 2, 3]
            expected = [float(r[name]) for r in by_method[method]]
            assert [s.value for s in scalars] == pytest.approx(expected, rel=1e-6), name
        [run] = [r for r in rows(tmp_path / "runs.csv") if r["method"] == method]
        [final] = events.Scalars("final/test_acc")
        assert final.value == pytest.approx(float(run["test_acc"]), rel=1e-6)


def test_without_tensorboard_it_is_one_line(tiny_mnist: Path, tmp_path: Path) -> None:
    """torch.utils.tensorboard without the tensorboard package: one line, exit 2, no run started."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "tensorboard.py").write_text("raise ImportError('not installed')\n")
    proc = cli(*RUN, "--data-dir", str(tiny_mnist), "--out", str(tmp_path / "res"),
               env={"PYTHONPATH": os.pathsep.join([str(blocker), str(Path.cwd()), os.environ.get("PYTHONPATH", "")])})
    assert proc.returncode == 2 and "pip install 'noprop-bench[tensorboard]'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "res" / "runs.csv").exists()


def test_a_runs_folder_is_its_readable_name_found_again_on_resume(tmp_path: Path) -> None:
    """TensorBoard names a run by its folder: ``noprop-dt seed 0 (lr=0.003)`` (a sweep point's label as the report
    labels the group), not the run key; the same key finds its folder again; another run of the same name (a second
    config into the same folder) gets a digest of its key."""
    from bench.tracking.base import run_name
    from bench.tracking.tensorboard import TensorBoardTracker

    tracker = TensorBoardTracker(tmp_path)
    name = run_name({"method": "noprop-dt", "seed": 0}, "lr=0.003, order=paper")
    first = tracker._folder("fashion-mnist-noprop-dt-abc-fp32-true-false-1-seed0", name)
    assert first.name == "noprop-dt seed 0 (lr=0.003, order=paper)"
    assert tracker._folder("fashion-mnist-noprop-dt-abc-fp32-true-false-1-seed0", "anything") == first
    other = tracker._folder("fashion-mnist-noprop-dt-def-fp32-true-false-1-seed0", name)
    assert other != first and other.name.startswith("noprop-dt seed 0 (lr=0.003, order=paper) [")
