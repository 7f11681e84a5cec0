"""The CNN reference: one block's image path and a linear classifier, trained end to end like the baseline."""

import copy

import pytest
import torch

from baselines.cnn import CNNReference
from bench.run.loop import train_epoch
from noprop.core.blocks import conv_path
from tests.baselines.test_backprop import X, batches, small
from tests.toy import quadrant_data


def test_it_is_one_block_image_path_and_a_linear_classifier() -> None:
    s = small()
    model = CNNReference(s)
    assert str(model.image_path) == str(conv_path(s.in_channels, s.image_size, s.width, s.dropout))
    assert isinstance(model.classifier, torch.nn.Linear) and model.classifier.out_features == s.num_classes
    assert model(X[:5]).shape == (5, s.num_classes)


def test_learns_and_every_gradient_is_used() -> None:
    torch.manual_seed(0)
    model = CNNReference(small(lr=1e-2, dropout=0.0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(3):
        stats = train_epoch(model, batches)
    assert stats["steps"] == 16 and stats["loss"] < 1.0
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert {n for n, _ in model.named_parameters()} <= changed
    x_test, y_test = quadrant_data(256, 1)
    assert float((model.predict(x_test).argmax(1) == y_test).float().mean()) > 0.9  # chance 0.25


def test_inference_draws_no_noise_and_restores_mode() -> None:
    model = CNNReference(small())
    first = model.predict(X[:8], torch.Generator(X.device).manual_seed(1))
    assert torch.equal(first, model.predict(X[:8], torch.Generator(X.device).manual_seed(2), deterministic=True))
    assert model.training


def test_training_state_resumes_exactly() -> None:
    torch.manual_seed(0)
    a = CNNReference(small(dropout=0.0))
    train_epoch(a, batches)
    b = CNNReference(small(dropout=0.0))
    b.load_training_state(copy.deepcopy(a.training_state()))  # as a checkpoint file would: no shared tensors
    train_epoch(a, batches)
    train_epoch(b, batches)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, msg=k)


@pytest.mark.parametrize("classes", [4, 10])
def test_label_embedding_is_the_one_hot_targets(classes: int) -> None:
    assert torch.equal(CNNReference(small(num_classes=classes)).label_embedding().cpu(),
                       torch.eye(classes, device="cpu"))
