"""The run recipe in-process, driven by a stub method: rows, resume, divergence, OOM and failures, early stopping.

The stub is a linear classifier on pixels behind the ``Method`` interface whose epoch can be told to fail when it
starts, so each outcome is reached in well under a second. The data are the tiny random MNIST-format
files (code paths only; the accuracies mean nothing).
"""

from __future__ import annotations

import math
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.results import ResultsError, read_epochs, read_runs
from bench.run import checkpoint
from bench.run.config import RunConfig
from bench.run.data import DataError, Splits
from bench.run.recipe import Run
from noprop.core.method import ALL, EpochPlan, Method, Part, StepRecord


class StubMethod(nn.Module):
    """A linear classifier with a scripted failure: ``fail`` happens when epoch ``fail_at`` is planned (NaN: its
    statistics)."""

    def __init__(self, features: int, classes: int, fail_at: int | None = None, fail: str = "") -> None:
        super().__init__()
        self.net = nn.Linear(features, classes)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.05)
        self.epochs, self.fail_at, self.fail, self.classes = 0, fail_at, fail, classes

    @property
    def block_passes_per_sample(self) -> int:
        return 2

    def recorded_settings(self) -> dict[str, str | int]:
        return {"order": "stub-order"}

    def epoch_plan(self) -> EpochPlan:
        self.epochs += 1
        if self.epochs == self.fail_at and self.fail != "nan":
            raise {"interrupt": KeyboardInterrupt(), "oom": torch.cuda.OutOfMemoryError("CUDA out of memory."),
                   "error": ValueError("stub broke")}[self.fail]
        return EpochPlan()

    def train_step(self, x: Tensor, y: Tensor, part: Part = ALL) -> Tensor:
        loss = F.cross_entropy(self.net(x.flatten(1)), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.detach()

    def epoch_stats(self, records: Sequence[StepRecord]) -> dict[str, float]:
        if self.epochs == self.fail_at:
            return {"loss": math.nan}
        return {"loss": float(torch.stack([r.stats for r in records]).mean())}

    @torch.no_grad()
    def predict(self, x: Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> Tensor:
        if deterministic:
            return self.net(x.flatten(1))
        noise = torch.randn(x.shape[0], self.classes, generator=generator, device=x.device)
        return self.net(x.flatten(1)) + 0.5 * noise  # stochastic, like NoProp-DT's inference

    def label_embedding(self) -> Tensor:
        return torch.eye(self.classes)

    def training_state(self) -> dict:
        return {"model": self.state_dict(), "opt": self.opt.state_dict(), "epochs": self.epochs}

    def load_training_state(self, state: dict) -> None:
        self.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.epochs = state["epochs"]


def stub(fail_at: int | None = None, fail: str = ""):
    def build(name: str, config: RunConfig, splits: Splits, batches_per_pass: int, seed: int) -> Method:
        torch.manual_seed(seed)
        spec = splits.spec
        return StubMethod(spec.channels * spec.size**2, spec.num_classes, fail_at, fail)

    return build


@pytest.fixture
def config(tiny_mnist: Path, tmp_path: Path, device: torch.device) -> RunConfig:
    return RunConfig(dataset="mnist", data_dir=str(tiny_mnist), download=False, out=str(tmp_path / "out"),
                     epochs=3, batch_size=64, eval_repeats=3, T=3, device=str(device))


@pytest.fixture(autouse=True)
def _keep_sigint() -> Iterator[None]:
    """An interrupted run ignores a second Ctrl-C while it records; give pytest its handler back."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


def stored_det_differs(epochs: pd.DataFrame) -> bool:
    """The deterministic column is its own reading, not a copy of the stochastic one (the stub's noise is large)."""
    return bool((epochs["test_acc_det"] != epochs["test_acc"]).any())


def test_ok_run_writes_its_rows_and_what_the_method_declares(config: RunConfig):
    events: list[dict] = []
    row = Run(config, "stub", 0, build=stub(), emit=events.append).execute()
    assert row["status"] == "ok" and row["epochs_done"] == 3 and row["order"] == "stub-order"
    assert row["block_samples_per_s"] == pytest.approx(2 * row["samples_per_s"])
    assert row["test_acc_repeats"] == 3 and row["test_acc_std"] > 0  # stochastic inference, three repeats
    # the deterministic reading of the same weights (the stub's logits without their noise), and both costs
    assert 0 <= row["test_acc_det"] <= 100 and row["test_infer_s"] > 0 and row["test_infer_det_s"] > 0
    epochs = read_epochs(config.out)
    assert epochs["test_acc_det"].notna().all() and stored_det_differs(epochs)
    assert list(epochs["epoch"]) == [1, 2, 3]
    assert row["epoch_time_median_s"] == pytest.approx(float(epochs["epoch_time_s"].median()))
    assert row["time_per_epoch_s"] == pytest.approx(float(epochs["epoch_time_s"].mean()))
    stored = read_runs(config.out)
    assert len(stored) == 1 and stored.loc[0, "run_id"] == row["run_id"]
    assert [e.get("phase", e["event"]) for e in events] == [  # what the run is doing before each epoch row
        "start", "loading data", "building the model", "measuring one step", "epoch 1", "epoch", "epoch 2", "epoch",
        "epoch 3", "epoch", "final evaluation", "end"]
    assert not list((Path(config.out) / "checkpoints").glob("*"))  # removed once the run is ok
    # what the run used and shared: its process's CPU time, the machine's load and CPUs, the RSS it started from
    assert 0 < stored.loc[0, "cpu_time_s"] and stored.loc[0, "cpus"] >= 1
    assert 0 <= stored.loc[0, "load_avg"] <= stored.loc[0, "load_avg_max"]
    assert 0 < stored.loc[0, "rss_at_start_bytes"] <= stored.loc[0, "peak_rss_bytes"]


def test_interrupted_run_resumes_to_the_rows_of_an_uninterrupted_one(config: RunConfig, tmp_path: Path):
    with pytest.raises(KeyboardInterrupt):
        Run(config, "stub", 1, build=stub(fail_at=2, fail="interrupt")).execute()
    runs = read_runs(config.out)
    assert list(runs["status"]) == ["interrupted"] and list(runs["epochs_done"]) == [1]
    (ckpt,) = (Path(config.out) / "checkpoints").glob("*.pt")
    assert checkpoint.load(ckpt)["progress"]["epochs_done"] == 1  # a plain dict, read with weights_only

    resumed = Run(config, "stub", 1, build=stub(), resume=True).execute()
    clean_config = RunConfig(**{**config.to_dict(), "out": str(tmp_path / "clean")})
    clean = Run(clean_config, "stub", 1, build=stub()).execute()
    assert resumed["run_id"] == runs.loc[0, "run_id"] and resumed["status"] == "ok"
    assert resumed["test_acc"] == clean["test_acc"] and resumed["train_acc"] == clean["train_acc"]
    assert list(read_epochs(config.out)["train_loss"]) == list(read_epochs(clean_config.out)["train_loss"])
    assert len(read_runs(config.out)) == 1  # the interrupted row was replaced, not duplicated


@pytest.mark.parametrize("fail,status,reason", [
    ("nan", "diverged", "training loss became nan in epoch 2"),
    ("oom", "oom", "OutOfMemoryError: CUDA out of memory."),
    ("error", "failed", "ValueError: stub broke"),
])
def test_a_failing_method_is_recorded_with_its_reason(config: RunConfig, fail: str, status: str, reason: str):
    row = Run(config, "stub", 0, build=stub(fail_at=2, fail=fail)).execute()
    assert (row["status"], row["reason"]) == (status, reason)
    stored = read_runs(config.out)
    assert list(stored["status"]) == [status] and stored.loc[0, "reason"] == reason
    assert len(read_epochs(config.out)) == (2 if fail == "nan" else 1)  # the diverged epoch is recorded too


def test_bad_input_raises_before_any_row(config: RunConfig, tmp_path: Path):
    config.data_dir = str(tmp_path / "empty")
    with pytest.raises(DataError, match="mnist: not found"):
        Run(config, "stub", 0, build=stub()).execute()
    assert not (Path(config.out) / "runs.csv").exists()


def test_a_corrupt_checkpoint_is_one_clear_error(config: RunConfig):
    with pytest.raises(KeyboardInterrupt):
        Run(config, "stub", 0, build=stub(fail_at=2, fail="interrupt")).execute()
    (ckpt,) = (Path(config.out) / "checkpoints").glob("*.pt")
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ResultsError, match="cannot be read.*delete it"):
        Run(config, "stub", 0, build=stub(), resume=True)


def test_early_stopping_on_the_validation_split(config: RunConfig):
    config.val_size, config.early_stopping_patience, config.epochs = 32, 1, 20
    row = Run(config, "stub", 0, build=stub()).execute()
    assert row["status"] == "ok" and row["early_stopped"] and row["epochs_done"] < 20
    assert row["reason"] == f"early stopped after epoch {row['epochs_done']}"
    assert row["best_val_epoch"] == row["epochs_done"] - 1
