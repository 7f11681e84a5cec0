"""pytest-benchmark suite: one training step and one inference pass of each method, and the batching path.

Small CPU shapes (width 0.25, batch 64, T = 10) for MNIST- (1x28x28) and CIFAR-shaped (3x32x32) inputs, so the
whole suite runs in well under a minute. Models and data get the run's fast paths (``bench.run.switches``): the
default channels_last layout, and bf16 autocast where a benchmark names it. In the normal test run
(``--benchmark-disable``) each body runs once as a smoke test; CI's benchmark step times them and compares with
the committed baseline (see docs/performance.md).
"""

from __future__ import annotations

import contextlib
import itertools

import pytest
import torch

from bench.run import methods
from bench.run import switches as execution
from bench.run.batching import ShuffledPasses
from bench.run.config import RunConfig
from bench.run.data import Splits, channel_stats, get_spec
from bench.run.loop import train_epoch
from bench.run.measure import synchronize
from tests.conftest import suite_device

SHAPES = {"mnist": "mnist", "cifar": "cifar10"}
BATCH = 64
DEVICE = suite_device()  # pytest --device cuda on a GPU machine


def synthetic_splits(dataset: str, n: int = 4 * BATCH) -> Splits:
    """Random uint8 images of the dataset's shape: these benchmarks time arithmetic, not learning."""
    spec = get_spec(dataset)
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randint(0, 256, (n, *spec.image_shape), dtype=torch.uint8, generator=g, device="cpu")
    y = torch.arange(n, device="cpu") % spec.num_classes
    mean, std = channel_stats(x)
    x, y, mean, std = (t.to(DEVICE) for t in (x, y, mean, std))
    return Splits(spec=spec, source="synthetic", train_x=x, train_y=y, test_x=x, test_y=y, val_x=None, val_y=None,
                  mean=mean, std=std)


def build(method: str, dataset: str, order: str = "paper", T: int = 10, precision: str = "fp32", **kw: object):
    """A model as a run builds it, with the run's layout and precision settings (returned as ``config``)."""
    config = RunConfig(dataset=dataset, width=0.25, batch_size=BATCH, order=order, T=T, precision=precision, **kw)
    splits = execution.prepare_splits(synthetic_splits(dataset), config)
    batches = ShuffledPasses(splits.train_x, splits.train_y, splits.mean, splits.std, BATCH, seed=0)
    model = execution.prepare_model(methods.build(method, config, splits, len(batches), seed=0), config)
    return model, batches, config


def timed(benchmark, fn, *args, config: RunConfig | None = None, **extra) -> None:
    """Benchmark ``fn(*args)`` under the config's precision, synchronising the device after each call so queued
    GPU work is counted."""
    config = config or RunConfig()
    benchmark.extra_info.update(torch_version=torch.__version__, device=str(DEVICE),
                                threads=torch.get_num_threads(), precision=config.precision,
                                channels_last=config.channels_last, **extra)

    def call() -> None:
        with execution.precision(config, DEVICE):
            fn(*args)
        synchronize(DEVICE)

    benchmark(call)


def one_batch(batches: ShuffledPasses):
    x, y = next(iter(batches()))
    return lambda: iter([(x, y)])


@pytest.mark.parametrize("shape", SHAPES)
def test_noprop_one_block_step(benchmark, shape):
    """NoProp-DT with T = 1: one block (and the classifier) trained on one mini-batch, the paper order's unit."""
    model, batches, config = build("noprop-dt", SHAPES[shape], T=1)
    timed(benchmark, train_epoch, model, one_batch(batches), config=config, shape=shape,
          unit="one block, one batch of 64")


@pytest.mark.parametrize("method,order,precision", [
    ("noprop-dt", "paper", "fp32"), ("noprop-dt", "interleaved", "fp32"), ("backprop", "", "fp32"),
    ("noprop-dt", "paper", "bf16"), ("backprop", "", "bf16"),
])
@pytest.mark.parametrize("shape", SHAPES)
def test_all_blocks_train_one_batch(benchmark, shape, method, order, precision):
    """Every one of the T blocks trained once on one mini-batch: the per-batch cost of an epoch."""
    model, batches, config = build(method, SHAPES[shape], order or "paper", precision=precision)
    timed(benchmark, train_epoch, model, one_batch(batches), config=config, shape=shape, method=method, order=order,
          unit="all T blocks, one batch of 64")


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_interleaved_step_batched_or_not(benchmark, shape, batched):
    """One interleaved step of all T blocks, block by block or as one stacked computation (``batched_blocks``)."""
    model, batches, config = build("noprop-dt", SHAPES[shape], "interleaved")
    x, y = next(iter(batches()))
    with model.batched_blocks() if batched else contextlib.nullcontext():
        timed(benchmark, model.train_step, x, y, config=config, shape=shape, batched_blocks=batched,
              unit="all T blocks, one batch of 64")


@pytest.mark.parametrize("method", ["noprop-dt", "backprop"])
@pytest.mark.parametrize("shape", SHAPES)
def test_inference_pass(benchmark, shape, method):
    """One stochastic inference pass through all T blocks for one mini-batch."""
    model, batches, config = build(method, SHAPES[shape])
    x, _ = next(iter(batches()))
    g = torch.Generator(device=DEVICE).manual_seed(0)
    timed(benchmark, model.predict, x, g, config=config, shape=shape, method=method,
          unit="inference, one batch of 64")


@pytest.mark.parametrize("shape", SHAPES)
def test_batching_pass(benchmark, shape):
    """The harness's data path: a shuffled, normalised pass over 4,096 images (no model)."""
    splits = synthetic_splits(SHAPES[shape], n=4096)
    batches = ShuffledPasses(splits.train_x, splits.train_y, splits.mean, splits.std, 128, seed=0)
    timed(benchmark, lambda: sum(1 for _ in itertools.chain(batches())), shape=shape,
          unit="one pass of 4096 images, batch 128")
