"""NoProp-DT: block locality, epoch structure, Eq. 3 inference, learning on a toy problem, NaN tolerance."""

import math
from collections.abc import Iterator

import pytest
import torch
from torch import Tensor

from bench.run.loop import train_epoch
from noprop.core.settings import lr_factor
from noprop.dt.model import DTSettings, NoPropDT
from tests.toy import quadrant_data, small_settings

X, Y = quadrant_data(256, 0)
X_TEST, Y_TEST = quadrant_data(256, 1)


def seeded(seed: int) -> torch.Generator:
    """A generator on the suite's device, where the model and its inputs are."""
    return torch.Generator(X_TEST.device).manual_seed(seed)


def settings(**kw: object) -> DTSettings:
    return small_settings(DTSettings, **kw)  # type: ignore[return-value]


def make(**kw: object) -> NoPropDT:
    torch.manual_seed(0)
    return NoPropDT(settings(**kw), prototype_data=(X, Y))


class CountingBatches:
    """The harness's `batches` callable, counting how many passes were requested."""

    def __init__(self, x: Tensor = X, y: Tensor = Y, size: int = 16) -> None:
        self.x, self.y, self.size, self.calls = x, y, size, 0

    def __call__(self) -> Iterator[tuple[Tensor, Tensor]]:
        self.calls += 1
        return ((self.x[i : i + self.size], self.y[i : i + self.size]) for i in range(0, len(self.y), self.size))


def accuracy(model: NoPropDT) -> float:
    torch.manual_seed(1)
    return float((model.predict(X_TEST).argmax(1) == Y_TEST).float().mean())


@pytest.mark.parametrize("embedding", ["learned", "prototype"])
@pytest.mark.parametrize("t", [1, 2, 3])
def test_block_loss_gradient_reaches_only_its_block(embedding: str, t: int) -> None:
    model = make(embedding=embedding)
    model.block_loss(t, X[:16], Y[:16]).backward()
    for s, block in enumerate(model.blocks, start=1):
        grads = [p.grad for p in block.parameters()]
        if s == t:
            assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
        else:
            assert all(g is None or torch.all(g == 0) for g in grads), f"block {s} got gradient from block {t}"
    assert model.classifier.weight.grad is not None and model.classifier.weight.grad.abs().sum() > 0
    assert model.embedding.W.grad is not None and model.embedding.W.grad.abs().sum() > 0


def test_paper_order_makes_t_passes_interleaved_one() -> None:
    for order, passes in [("paper", 3), ("interleaved", 1)]:
        batches = CountingBatches()
        stats = train_epoch(make(order=order), batches)
        assert batches.calls == passes
        assert stats["steps"] == 16 and stats["block_updates"] == 3 * 16
        assert {"loss", "ce", "kl", "block_1_mse", "block_2_mse", "block_3_mse"} <= stats.keys()
        assert all(isinstance(v, float) and math.isfinite(v) for v in stats.values())


def test_paper_order_leaves_idle_blocks_untouched() -> None:
    """Only the block being trained is stepped; idle blocks get no update and no weight decay."""
    model = make(weight_decay=0.1)
    before = [[p.detach().clone() for p in b.parameters()] for b in model.blocks]
    first_pass_only = CountingBatches()
    train_epoch(model, lambda: first_pass_only() if first_pass_only.calls == 0 else iter(()))
    changed = [
        any(not torch.equal(p, q) for p, q in zip(b.parameters(), old, strict=True))
        for b, old in zip(model.blocks, before, strict=True)
    ]
    assert changed == [True, False, False]


def test_predict_takes_images_only_and_is_reproducible_under_seed() -> None:
    model = make()
    model.train()
    torch.manual_seed(5)
    first = model.predict(X_TEST[:8])
    torch.manual_seed(5)
    again = model.predict(X_TEST[:8])
    torch.manual_seed(6)
    other = model.predict(X_TEST[:8])
    assert first.shape == (8, 4)
    assert torch.equal(first, again)
    assert not torch.equal(first, other), "stochastic inference must depend on the noise"
    assert model.training, "predict must restore training mode"


def test_deterministic_inference_ignores_rng() -> None:
    model = make(inference="deterministic")
    torch.manual_seed(1)
    first = model.predict(X_TEST[:8])
    torch.manual_seed(2)
    assert torch.equal(first, model.predict(X_TEST[:8]))


def test_the_deterministic_reading_of_a_stochastic_model_is_its_noise_free_pass() -> None:
    model = make(inference="stochastic")
    noise_free = make(inference="deterministic")
    noise_free.load_state_dict(model.state_dict())
    first = model.predict(X_TEST[:8], seeded(1), deterministic=True)
    assert torch.equal(first, model.predict(X_TEST[:8], seeded(2), deterministic=True))
    assert torch.equal(first, noise_free.predict(X_TEST[:8]))
    assert not torch.equal(first, model.predict(X_TEST[:8], seeded(1)))


def test_posterior_readout_scores_classes() -> None:
    logits = make(readout="posterior", embedding="learned").predict(X_TEST[:8])
    assert logits.shape == (8, 4) and torch.all(torch.isfinite(logits)) and torch.all(logits <= 0)


@pytest.mark.parametrize(
    "kw",
    [
        dict(order="paper"),
        dict(order="interleaved", inference="deterministic"),
        dict(embedding="learned", grad_clip=1.0, warmup_steps=5, lr_decay="cosine", total_steps=64),
    ],
)
def test_learns_separable_toy_problem(kw: dict[str, object]) -> None:
    model = make(lr=3e-2, dropout=0.0, **kw)
    for _ in range(3):
        train_epoch(model, CountingBatches())
    assert accuracy(model) > 0.6  # chance is 0.25


def test_nan_input_returns_nan_loss() -> None:
    x = X.clone()
    x[:] = float("nan")
    stats = train_epoch(make(), CountingBatches(x=x))
    assert math.isnan(stats["loss"])


def test_settings_reject_bad_values_naming_field_and_choices() -> None:
    with pytest.raises(ValueError, match=r"order='random'.*paper, interleaved"):
        settings(order="random")
    with pytest.raises(ValueError, match="embedding"):
        settings(embedding="glove")
    with pytest.raises(ValueError, match="total_steps"):
        settings(lr_decay="cosine")
    with pytest.raises(ValueError, match="dropout"):
        settings(dropout=1.0)


def test_lr_factor_warmup_then_cosine_to_zero() -> None:
    s = settings(warmup_steps=4, lr_decay="cosine", total_steps=104)
    assert [lr_factor(k, s) for k in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(54, s) == pytest.approx(0.5)
    assert lr_factor(104, s) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(1000, settings()) == 1.0


@pytest.mark.parametrize("order", ["paper", "interleaved"])
def test_epoch_stats_are_example_weighted_means_of_the_step_terms(order: str) -> None:
    """The epoch's reduction (done once, at its end) equals the means of what each block step computed."""
    torch.manual_seed(0)
    model = make(order=order)
    seen: list[tuple[int, int, list[float]]] = []  # (block, batch size, [loss, l2, ce, kl])
    original = model.block_terms

    def recording(t: int, x: Tensor, y: Tensor, noise: Tensor | None = None):
        terms = original(t, x, y, noise)
        seen.append((t, y.shape[0], [float(v.detach()) for v in terms]))
        return terms

    model.block_terms = recording  # type: ignore[method-assign]
    stats = train_epoch(model, CountingBatches(size=60))  # 256 examples: batches of 60, 60, 60, 60, 16
    n_total = sum(n for _, n, _ in seen)
    for key, i in (("loss", 0), ("ce", 2), ("kl", 3)):
        assert stats[key] == pytest.approx(sum(n * v[i] for _, n, v in seen) / n_total, rel=1e-6)
    for t in (1, 2, 3):
        rows = [(n, v[1]) for b, n, v in seen if b == t]
        assert stats[f"block_{t}_mse"] == pytest.approx(sum(n * v for n, v in rows) / sum(n for n, _ in rows),
                                                        rel=1e-6)
