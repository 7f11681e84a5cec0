"""DiffusionBlocks trains each block alone on its own noise range and reads the chain from σ_max to σ_min."""

import pytest
import torch
from torch import Tensor, nn

from bench.run.loop import train_epoch
from noprop.rivals.diffusion_blocks import DBSettings, DiffusionBlocks
from tests.toy import quadrant_data, small_settings

X, Y = quadrant_data(512, 0)


def small(**kw: object) -> DBSettings:
    return small_settings(DBSettings, **kw)  # type: ignore[return-value]


def passes(n: int = 512):
    return lambda: ((X[i:i + 32], Y[i:i + 32]) for i in range(0, n, 32))


def snapshot(module: nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def test_a_step_of_one_block_moves_that_block_and_the_table_only() -> None:
    model = DiffusionBlocks(small(embedding="learned"))
    before = [snapshot(b) for b in model.blocks]
    table = model.table.detach().clone()
    model.before_step(2)
    model.train_step(X[:32], Y[:32], 2)
    assert [changed(s, b) for s, b in zip(before, model.blocks, strict=True)] == [False, True, False]
    assert not torch.equal(table, model.table)


@pytest.mark.parametrize("order, calls", [("every-block", 1), ("random-block", 3)])
def test_an_epoch_trains_every_block_once_per_image(order: str, calls: int) -> None:
    torch.manual_seed(0)
    model = DiffusionBlocks(small(db_order=order))
    seen = []

    def counted():
        seen.append(1)
        return passes()()

    stats = train_epoch(model, counted)
    assert len(seen) == calls and stats["block_updates"] == 3 * 16 and stats["steps"] == 16
    assert sum(model._updates) == 48
    if order == "every-block":
        assert model._updates == [16, 16, 16]


def test_inference_hands_each_level_to_its_block_and_reads_the_lowest() -> None:
    model = DiffusionBlocks(small())
    used: list[int] = []
    for b, block in enumerate(model.blocks, start=1):
        block.register_forward_hook(lambda *_, b=b: used.append(b))
    out = model.predict(X[:8])
    assert used == [3, 3, 2, 1] and out.shape == (8, 4)
    assert model.training


def test_euler_steps_move_towards_the_denoised_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every block certain of class 0, z ends near class 0's normalised embedding (EDM's sign)."""
    model = DiffusionBlocks(small(db_steps=40))
    zs: list[Tensor] = []
    certain = torch.tensor([50.0, 0, 0, 0])
    for block in model.blocks:
        monkeypatch.setattr(block, "forward", lambda f, z, s, pre: (zs.append(z), certain.expand(len(z), 4))[1])
    model.predict(X[:8], torch.Generator(X.device).manual_seed(0))
    target = model.unit_table()[0]
    assert (zs[0] - target).norm(dim=1).mean() > 20  # z_0 ~ N(0, σ_max² I)
    assert float((zs[-1] - target).norm(dim=1).max()) < 0.05


def test_deterministic_reading_starts_from_zero_and_ignores_the_generator() -> None:
    model = DiffusionBlocks(small())
    a = model.predict(X[:8], torch.Generator(X.device).manual_seed(1), deterministic=True)
    assert torch.equal(a, model.predict(X[:8], torch.Generator(X.device).manual_seed(2), deterministic=True))
    assert not torch.equal(a, model.predict(X[:8], torch.Generator(X.device).manual_seed(1)))


def test_records_its_blocks_range_and_departure() -> None:
    one_hot = DiffusionBlocks(small(db_blocks=2)).recorded_settings()
    assert one_hot["db_blocks"] == 2 and one_hot["db_steps"] == 2 and one_hot["db_sigma_range"] == "0.002-80"
    assert "one-hot" in one_hot["departure"]
    assert DiffusionBlocks(small(embedding="learned")).recorded_settings()["departure"] == ""
    with pytest.raises(ValueError, match="prototype"):
        small(embedding="prototype", embed_dim=64)


def test_learns_the_toy_problem() -> None:
    """Code path, not accuracy: 3 epochs on the separable toy (measured 0.98 with seed 0; chance 0.25)."""
    torch.manual_seed(0)
    model = DiffusionBlocks(small())
    for _ in range(3):
        stats = train_epoch(model, passes())
    x, y = quadrant_data(256, 1)
    assert stats["ce"] < 0.5
    assert float((model.predict(x, deterministic=True).argmax(1) == y).float().mean()) > 0.8
