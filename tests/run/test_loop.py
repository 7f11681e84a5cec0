"""bench.run.loop and bench.run.capture: the one epoch loop makes every method's steps as its plan says, and a
captured sweep is refused where it cannot be fair; on CUDA, captured runs train as eager ones do."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from bench.results import read_epochs
from bench.run import config as cfg
from bench.run.capture import Steps, steps_for
from bench.run.identity import RunError
from bench.run.loop import first_steps, read_back_all, train_epoch
from bench.run.recipe import Run
from noprop.core.method import ALL, EpochPlan, Part, Pass, StepRecord
from tests.conftest import suite_device

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class Scripted(nn.Module):
    """A method that writes down what the loop asks of it, in order."""

    def __init__(self, passes: Sequence[Pass]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.passes, self.log = list(passes), []
        self.entered = self.left = 0

    def epoch_plan(self) -> EpochPlan:
        return EpochPlan(passes=self.passes, context=self._context)

    @contextlib.contextmanager
    def _context(self) -> Iterator[None]:
        self.entered += 1
        yield
        self.left += 1

    def before_step(self, part: Part) -> None:
        self.log.append(("before", part))

    def train_step(self, x: Tensor, y: Tensor, part: Part = ALL) -> Tensor:
        self.log.append(("step", part, int(x[0, 0])))
        return torch.tensor([float(x[0, 0]), 2.0], device=x.device)

    def epoch_stats(self, records: Sequence[StepRecord]) -> dict[str, float]:
        self.records = list(records)
        return {"loss": sum(float(r.stats[0]) for r in records)}


def three_batches() -> Iterator[tuple[Tensor, Tensor]]:
    device = suite_device()
    return ((torch.full((2, 1), float(i), device=device), torch.zeros(2, dtype=torch.long, device=device))
            for i in range(3))


def test_the_loop_makes_each_pass_over_fresh_batches_and_each_part_in_turn() -> None:
    model = Scripted([Pass((1, 2)), Pass((3,))])
    stats = train_epoch(model, three_batches)
    steps = [entry for entry in model.log if entry[0] == "step"]
    assert steps == [("step", p, i) for i in range(3) for p in (1, 2)] + [("step", 3, i) for i in range(3)]
    assert model.log[0] == ("before", 1) and model.log[1][0] == "step"  # before_step precedes its step
    assert (model.entered, model.left) == (1, 1) and model.training
    assert [r.part for r in model.records] == [1, 2, 1, 2, 1, 2, 3, 3, 3]
    assert all(r.examples == 2 and r.stats.device.type == "cpu" for r in model.records)
    assert stats["loss"] == 2 * (0 + 1 + 2) + (0 + 1 + 2)


def test_a_drawn_pass_asks_for_its_parts_once_per_batch() -> None:
    drawn = iter([(1,), (2,), (1,)])
    model = Scripted([Pass(draw=lambda: next(drawn))])
    train_epoch(model, three_batches)
    assert [e[1] for e in model.log if e[0] == "step"] == [1, 2, 1]


def test_first_steps_make_the_first_passs_parts_on_one_batch() -> None:
    model = Scripted([Pass((2, 1)), Pass((3,))])
    x, y = next(three_batches())
    out = first_steps(model, x, y)
    assert [e[1] for e in model.log if e[0] == "step"] == [2, 1] and len(out) == 2


def test_statistics_come_back_in_their_own_shapes_and_dtypes() -> None:
    device = suite_device()
    tensors = [torch.arange(6, dtype=torch.float32, device=device).view(2, 3),
               torch.tensor([1.5], dtype=torch.float64, device=device), torch.zeros(0, device=device)]
    back = read_back_all(tensors)
    assert [t.shape for t in back] == [t.shape for t in tensors] and [t.dtype for t in back] == [
        torch.float32, torch.float64, torch.float32]
    assert all(b.device.type == "cpu" and torch.equal(b, t.cpu()) for b, t in zip(back, tensors, strict=True))
    assert read_back_all([]) == []


def test_eager_steps_count_what_they_made() -> None:
    model = Scripted([Pass((1,))])
    steps = Steps(model)
    train_epoch(model, three_batches, steps)
    assert steps.counts() == {"capture": "none", "eager_steps": 3, "replayed_steps": 0, "capture_time_s": 0.0}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"capture": "cuda-graph", "device": "cpu"}, "needs --device cuda"),
    ({"capture": "cuda-graph", "device": "cuda", "methods": ["noprop", "backprop-ckpt"]},
     "backprop-ckpt does not declare it"),
    ({"capture": "cuda-graph", "device": "cuda", "block_workers": 2, "order": "interleaved", "methods": ["noprop"]},
     "capture and block_workers do not combine"),
])
def test_a_captured_sweep_that_cannot_be_fair_is_one_error(overrides: dict, message: str) -> None:
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.resolve(config="smoke", overrides=overrides)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_capture_off_cuda_is_refused_before_anything_runs(tmp_path: Path) -> None:
    config = cfg.resolve(config="smoke", overrides={"capture": "cuda-graph", "device": "auto", "out": str(tmp_path)})
    with pytest.raises(RunError, match="drop --capture or use --device cuda"):
        Run(config, "noprop-dt", 0)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        steps_for(Scripted([Pass()]), "cuda-graph", torch.device("cpu"))


@cuda_only
@pytest.mark.parametrize(("method", "order"), [("noprop-dt", "paper"), ("noprop-dt", "interleaved"),
                                               ("backprop", "paper"), ("noprop-ct", "paper")])
def test_a_captured_run_trains_as_an_eager_one(method: str, order: str, tiny_mnist: Path, tmp_path: Path) -> None:
    """Four epochs of the tiny config (the last, smaller batch of each pass captured from epoch 4): the same losses
    every epoch to rounding (the captured run's optimisers are capturable, which rounds the bias correction in float32
    on the device instead of in Python), most steps replayed."""
    rows = {}
    for mode in ("none", "cuda-graph"):
        config = cfg.RunConfig(dataset="mnist", data_dir=str(tiny_mnist), download=False, out=str(tmp_path / mode),
                               epochs=4, batch_size=48, eval_repeats=1, T=3, width=0.125, device="cuda",
                               order=order, capture=mode)
        rows[mode] = Run(config, method, 0).execute()
    eager, captured = rows["none"], rows["cuda-graph"]
    assert captured["status"] == eager["status"] == "ok"
    assert captured["replayed_steps"] > captured["eager_steps"] > 0 and eager["replayed_steps"] == 0
    losses = [read_epochs(tmp_path / mode)["train_loss"].tolist() for mode in ("none", "cuda-graph")]
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)
