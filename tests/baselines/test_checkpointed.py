"""Checkpointed backprop computes what plain backprop computes: after a few steps with dropout on, the weights,
BatchNorm statistics (batch counters included) and optimiser state of backprop-ckpt equal the backprop baseline's,
and cnn-ckpt's the CNN reference's, in float64; and it keeps fewer activations for backward."""

from collections.abc import Callable

import pytest
import torch
from torch import nn

from baselines.backprop import BackpropBaseline, BackpropSettings
from baselines.backprop_ckpt import CheckpointedBackprop
from baselines.cnn import CNNReference
from baselines.cnn_ckpt import CheckpointedCNN
from baselines.recompute import recomputed
from bench.run.loop import first_steps
from bench.run.measure import SavedActivationMeter
from noprop.core.settings import CommonSettings
from tests.toy import quadrant_data, small_settings

X, Y = quadrant_data(96, 0)
PAIRS = [(BackpropBaseline, CheckpointedBackprop, BackpropSettings), (CNNReference, CheckpointedCNN, CommonSettings)]


def trained(cls: type[nn.Module], settings: type[CommonSettings], steps: int = 4) -> nn.Module:
    """``cls`` built from seed 0 in float64, trained ``steps`` steps from the same random stream."""
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = cls(small_settings(settings, image_size=8, dropout=0.3, embedding="learned"))
    finally:
        torch.set_default_dtype(default)
    assert model.classifier.weight.dtype == torch.float64
    torch.manual_seed(1)
    for i in range(steps):
        first_steps(model, X[i * 24:(i + 1) * 24].double(), Y[i * 24:(i + 1) * 24])
    return model


def assert_same_tensors(a: object, b: object) -> None:
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()  # type: ignore[union-attr]
        for k in a:
            assert_same_tensors(a[k], b[k])  # type: ignore[index]
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)  # type: ignore[arg-type]
        for u, v in zip(a, b, strict=True):  # type: ignore[call-overload]
            assert_same_tensors(u, v)
    else:
        assert a == b


@pytest.mark.parametrize("plain, checkpointed, settings", PAIRS)
def test_checkpointed_training_equals_plain(plain: type, checkpointed: type, settings: type) -> None:
    a, b = trained(plain, settings), trained(checkpointed, settings)
    state_a, state_b = a.training_state(), b.training_state()
    assert any("num_batches_tracked" in k for k in state_a["model"])
    assert_same_tensors(state_a, state_b)
    assert int(state_b["model"][next(k for k in state_b["model"] if "num_batches_tracked" in k)]) == 4


def test_without_freezing_the_recomputation_batch_norm_counts_twice() -> None:
    """The pitfall guarded: a plain torch.utils.checkpoint of a block with BatchNorm updates its statistics twice."""
    torch.manual_seed(0)
    part = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    x = torch.randn(8, 4)
    torch.utils.checkpoint.checkpoint(part, x, use_reentrant=False).sum().backward()
    assert int(part[1].num_batches_tracked) == 2
    recomputed(part, x).sum().backward()
    assert int(part[1].num_batches_tracked) == 3


def _saved_bytes(plain: type, checkpointed: type, settings: type) -> list[int]:
    saved = []
    for cls in (plain, checkpointed):
        torch.manual_seed(0)
        model = cls(small_settings(settings, image_size=16, width=1.0))
        with SavedActivationMeter() as meter:
            _step(model)
        saved.append(meter.peak_bytes)
    return saved


@pytest.mark.parametrize("plain, checkpointed, settings", PAIRS)
def test_checkpointing_keeps_fewer_activations(plain: type, checkpointed: type, settings: type) -> None:
    saved = _saved_bytes(plain, checkpointed, settings)
    assert saved[1] < saved[0]


def test_checkpointed_backprop_keeps_one_blocks_recomputed_activations() -> None:
    """T equal blocks: backprop keeps T blocks' activations, the checkpointed twin one block's (recomputed in its
    backward, which the meter counts) plus the blocks' inputs, not the inputs alone (0.2 % of backprop's, before)."""
    plain, checkpointed = _saved_bytes(BackpropBaseline, CheckpointedBackprop, BackpropSettings)
    blocks = small_settings(BackpropSettings).T
    assert plain / blocks <= checkpointed < 1.5 * plain / blocks


def _step(model: nn.Module) -> None:
    x = torch.randn(32, 1, 16, 16)
    first_steps(model, x, torch.randint(0, 4, (32,)))


@pytest.mark.parametrize("cls, settings", [(CheckpointedBackprop, BackpropSettings),
                                           (CheckpointedCNN, CommonSettings)])
def test_inference_runs_without_checkpointing(cls: type, settings: type, monkeypatch: pytest.MonkeyPatch) -> None:
    model = cls(small_settings(settings))
    calls: list[Callable] = []
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda *a, **k: calls.append(a[0]))
    model.predict(X[:4])
    assert calls == []
