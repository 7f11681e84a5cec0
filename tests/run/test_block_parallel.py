"""bench.run.block_parallel (``block_workers``): two gloo processes train exactly what one NoProp-DT process trains,
and a method that cannot split its blocks is one clear error.

The comparison uses the smoke config on the real Fashion-MNIST files; only equality between the two ways of
training is asserted, never an accuracy.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from torch import nn

from bench.executors.one_run import execute_run
from bench.run import checkpoint, data
from bench.run import config as cfg
from bench.run.block_parallel import split_over_group
from bench.run.identity import RunError
from tests.conftest import cli, suite_device, two_gpus_on_cuda

real_data = pytest.mark.skipif(not (data.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                               reason="Debian's dataset-fashion-mnist is not installed")


@pytest.fixture(autouse=True)
def _keep_sigint() -> Iterator[None]:
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


def smoke(out: Path, workers: int) -> cfg.RunConfig:
    return cfg.resolve(config="smoke", overrides={
        "methods": ["noprop-dt"], "order": "interleaved", "block_workers": workers, "threads": 1, "epochs": 2,
        "eval_repeats": 1, "out": str(out), "device": str(suite_device())})


def stop_after_first_epoch(event: dict[str, Any]) -> None:
    """Interrupts the run as epoch 2 is reported: epoch 1's checkpoint stays behind."""
    if event["event"] == "epoch" and event["epoch"] == 2:
        raise KeyboardInterrupt


def assert_close(a: Any, b: Any, where: str = "") -> None:
    """Nested dicts/lists of tensors and numbers equal to float tolerance."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=lambda m: f"{where}: {m}")
        else:
            assert torch.equal(a, b), where
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-6), where
    else:
        assert a == b, where


@real_data
@two_gpus_on_cuda()
def test_two_processes_train_the_blocks_of_one_and_resume_to_the_same_rows(tmp_path: Path) -> None:
    states, rows = {}, {}
    for workers in (1, 2):
        config = smoke(tmp_path / f"n{workers}", workers)
        with pytest.raises(KeyboardInterrupt):
            execute_run(config, "noprop-dt", 0, resume=False, emit=stop_after_first_epoch, measured_in="process")
        (found,) = (Path(config.out) / "checkpoints").glob("*.pt")
        states[workers] = checkpoint.load(found)["model"]
        row = execute_run(config, "noprop-dt", 0, resume=True, emit=lambda e: None, measured_in="process")
        assert row["status"] == "ok" and row["block_workers"] == workers and row["epochs_done"] == 2
        rows[workers] = (pd.read_csv(Path(config.out) / "runs.csv"), pd.read_csv(Path(config.out) / "epochs.csv"))
    # after epoch 1: every block's weights, BatchNorm statistics, AdamW moments and random stream, the classifier
    # and its optimiser, the same whether two processes or one trained them
    one, two = states[1], states[2]
    assert len(one["block_opts"]) == len(two["block_opts"]) == 10
    assert_close(one, two, "state")
    # finished from those checkpoints: the same rows (the interrupted attempt replaced, not duplicated)
    (runs1, epochs1), (runs2, epochs2) = rows[1], rows[2]
    assert len(runs1) == len(runs2) == 1 and len(epochs1) == len(epochs2) == 2
    for col in ("test_acc", "train_acc"):
        assert runs2[col].iloc[0] == pytest.approx(runs1[col].iloc[0], abs=0.2)  # one image in 1000 may flip
    assert list(epochs2["train_loss"]) == pytest.approx(list(epochs1["train_loss"]), rel=1e-5)


@real_data
@two_gpus_on_cuda()
def test_block_workers_are_checked_before_any_run(tmp_path: Path) -> None:
    proc = cli("run", "--config", "smoke", "--block-workers", "2", "--out", str(tmp_path))
    assert proc.returncode == 2 and "noprop-dt: block_workers 2 splits NoProp-DT's blocks: it needs order " \
        "interleaved" in proc.stderr
    proc = cli("run", "--config", "smoke", "--order", "interleaved", "--block-workers", "2", "--out", str(tmp_path))
    assert proc.returncode == 2 and "backprop: block_workers 2 splits a method's blocks over processes, which it " \
        "cannot do" in proc.stderr
    proc = cli("run", "--config", "smoke", "--methods", "noprop", "--order", "interleaved", "--block-workers", "11",
               "--out", str(tmp_path))
    assert proc.returncode == 2 and "more than the T=10 blocks" in proc.stderr
    assert not (tmp_path / "runs.csv").exists()


def test_a_method_that_cannot_split_its_blocks_is_one_clear_error() -> None:
    with pytest.raises(RunError, match="but stub cannot train a share of its blocks") as raised:
        split_over_group(nn.Linear(2, 2), "stub", torch.device("cpu"))  # type: ignore[arg-type]
    assert "\n" not in str(raised.value)


@two_gpus_on_cuda()
def test_a_budget_stops_every_block_worker_at_the_same_step(tmp_path: Path, tiny_mnist: Path) -> None:
    """A GFLOP budget ending inside epoch 2: the followers stop where the leader does (the same budget travels with
    each epoch), so two workers' row is one worker's."""
    rows = {}
    for workers in (1, 2):
        config = cfg.resolve(dataset="mnist", overrides={
            "methods": ["noprop-dt"], "order": "interleaved", "block_workers": workers, "threads": 1, "T": 3,
            "width": 0.125, "batch_size": 64, "epochs": 10, "eval_repeats": 1, "budget_gflop": 2.0,
            "data_dir": str(tiny_mnist), "download": False, "out": str(tmp_path / f"n{workers}"),
            "device": str(suite_device())})
        rows[workers] = execute_run(config, "noprop-dt", 0, resume=False, emit=lambda e: None,
                                    measured_in="process")
    one, two = rows[1], rows[2]
    assert one["status"] == two["status"] == "ok" and one["reason"].startswith("budget spent")
    assert (one["epochs_done"], one["budget_spent"]) == (two["epochs_done"], two["budget_spent"])
    assert two["test_acc"] == pytest.approx(one["test_acc"], abs=1e-9)
