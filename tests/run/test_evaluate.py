"""The harness's evaluation: images in, predictions out; labels only compared afterwards."""

from __future__ import annotations

import inspect

import pytest
import torch

from bench.run import methods
from bench.run.config import RunConfig
from bench.run.data import Splits, channel_stats, get_spec
from bench.run.evaluate import accuracy, predictions, repeated_accuracy


def tiny_splits() -> Splits:
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=g, device="cpu")
    x = x.to(torch.get_default_device())  # the suite's device
    y = torch.arange(64) % 10
    mean, std = channel_stats(x)
    return Splits(spec=get_spec("mnist"), source="synthetic", train_x=x, train_y=y, test_x=x[:40], test_y=y[:40],
                  val_x=None, val_y=None, mean=mean, std=std)


@pytest.mark.parametrize("method", ["noprop-dt", "backprop"])
def test_predictions_do_not_depend_on_labels(method):
    splits = tiny_splits()
    model = methods.build(method, RunConfig(width=0.125, T=3), splits, batches_per_pass=1, seed=0)
    assert list(inspect.signature(model.predict).parameters) == ["x", "generator", "deterministic"]  # no labels
    order = torch.randperm(40, generator=torch.Generator(device="cpu").manual_seed(1), device="cpu")
    shuffled = splits.test_y[order.to(splits.test_y.device)]
    *_, with_true = repeated_accuracy(model, splits.test_x, splits.test_y, splits.mean, splits.std, 7, 3)
    mean, std, accs, with_shuffled = repeated_accuracy(model, splits.test_x, shuffled, splits.mean, splits.std, 7, 3)
    assert torch.equal(with_true, with_shuffled)  # the labels reach only the comparison, never the model
    assert torch.equal(with_true, predictions(model, splits.test_x, splits.mean, splits.std, seed=7000))
    assert len(accs) == 3 and std >= 0 and min(accs) <= mean <= max(accs)
    assert mean == pytest.approx(sum(accuracy(predictions(model, splits.test_x, splits.mean, splits.std, 7000 + r),
                                              shuffled) for r in range(3)) / 3)


def test_evaluation_leaves_the_training_random_stream_alone():
    splits = tiny_splits()
    model = methods.build("noprop-dt", RunConfig(width=0.125, T=3), splits, batches_per_pass=1, seed=0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    predictions(model, splits.test_x, splits.mean, splits.std, seed=5)
    assert torch.equal(torch.rand(3), expected)
