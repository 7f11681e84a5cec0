"""NoProp-CT on the toy problem: it learns, its inference never sees labels, and it resumes exactly."""

import copy

import torch

from noprop.ct import NoPropCT
from tests.baselines.test_backprop import X, Y, batches, small
from tests.toy import quadrant_data


def test_learns_the_toy_problem_with_label_free_inference() -> None:
    torch.manual_seed(0)
    model = NoPropCT(small(lr=1e-2, dropout=0.0), steps=20)
    for _ in range(4):
        stats = model.fit_epoch(batches)
    assert stats["steps"] == 16 and all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert stats["denoise"] >= 0 and stats["kl"] >= 0
    x_test, y_test = quadrant_data(256, 1)
    acc = float((model.predict(x_test, torch.Generator().manual_seed(0)).argmax(1) == y_test).float().mean())
    assert acc > 0.6, acc  # chance 0.25


def test_predict_is_seeded_and_the_deterministic_reading_ignores_the_seed() -> None:
    model = NoPropCT(small(), steps=3, integrator="heun")
    a = model.predict(X[:8], torch.Generator().manual_seed(1))
    assert torch.equal(a, model.predict(X[:8], torch.Generator().manual_seed(1)))
    assert not torch.equal(a, model.predict(X[:8], torch.Generator().manual_seed(2)))
    d = model.predict(X[:8], torch.Generator().manual_seed(1), deterministic=True)
    assert torch.equal(d, model.predict(X[:8], torch.Generator().manual_seed(2), deterministic=True))
    assert model.training


def test_training_state_resumes_exactly() -> None:
    torch.manual_seed(0)
    a = NoPropCT(small(dropout=0.0))
    a.fit_epoch(batches)
    b = NoPropCT(small(dropout=0.0))
    b.load_training_state(copy.deepcopy(a.training_state()))
    torch.manual_seed(1)
    a.fit_epoch(batches)
    torch.manual_seed(1)
    b.fit_epoch(batches)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, msg=k)
    assert Y.numel() == 256
