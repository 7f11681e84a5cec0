"""noprop.dt.grouped: the T blocks as one stacked computation compute what the blocks compute one by one."""

import copy
import dataclasses

import pytest
import torch

from bench.run.loop import first_steps, train_epoch
from noprop.dt.grouped import GroupedBlocks
from tests.noprop.dt.test_model import CountingBatches, X, Y, accuracy, make


def block_outputs(model, x, z):
    return [model.blocks[t](x, z[t], model.embedding.W) for t in range(model.s.T)]


@pytest.mark.parametrize("embedding", ["one-hot", "learned", "prototype"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_batched_forward_is_each_blocks_forward(embedding: str, channels_last: bool) -> None:
    model = make(embedding=embedding, dropout=0.0, order="interleaved")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    reference = copy.deepcopy(model)
    x = X[:32].contiguous(memory_format=torch.channels_last) if channels_last else X[:32]
    z = torch.randn(model.s.T, 32, model.dim)
    grouped = GroupedBlocks(model.blocks)
    logits, u_hat = grouped(x, z, model.embedding.W)
    grouped.steps += 1  # its caller counts the training-mode forwards (NoPropDT.before_step)
    for t, (ref_logits, ref_u) in enumerate(block_outputs(reference, x, z)):
        torch.testing.assert_close(logits[t], ref_logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(u_hat[t], ref_u, rtol=1e-4, atol=1e-5)
    grouped.unstack(model.blocks)  # the training-mode BatchNorm statistics each block gathered, back in its block
    for ours, theirs in zip(model.blocks.buffers(), reference.blocks.buffers(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("grad_clip", [None, 0.05])
def test_batched_steps_make_the_same_updates_as_block_by_block_steps(grad_clip: float | None) -> None:
    """Same noise (same seed), no dropout: weights, statistics and AdamW moments agree after three steps and after
    leaving the stack; per-block clipping (0.05 clips every block here) too. In float64: AdamW's first steps move a
    weight by about lr whatever its gradient's size, so float32 rounding of a near-zero gradient could flip one."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # built in float64 throughout, the schedule's constants included
    try:
        one_by_one = make(embedding="learned", dropout=0.0, order="interleaved", grad_clip=grad_clip, lr=1e-2)
    finally:
        torch.set_default_dtype(default)
    batched = copy.deepcopy(one_by_one)
    x = X.double()
    torch.manual_seed(5)
    rows_ref = [first_steps(one_by_one, x[i : i + 64], Y[i : i + 64])[0] for i in (0, 64, 128)]
    torch.manual_seed(5)
    with batched.batched_blocks():
        rows = [first_steps(batched, x[i : i + 64], Y[i : i + 64])[0] for i in (0, 64, 128)]
    close = {"rtol": 1e-6, "atol": 1e-8}  # float64; a bias before BatchNorm has a zero gradient up to rounding
    for a, b in zip(rows, rows_ref, strict=True):
        torch.testing.assert_close(a, b, **close)
    for (name, ours), theirs in zip(batched.state_dict().items(), one_by_one.state_dict().values(), strict=True):
        torch.testing.assert_close(ours, theirs, **close, msg=name)
    for ours, theirs in zip(batched._block_opts, one_by_one._block_opts, strict=True):
        for p_ours, p_theirs in zip(ours.param_groups[0]["params"], theirs.param_groups[0]["params"], strict=True):
            for key in ("exp_avg", "exp_avg_sq", "step"):
                torch.testing.assert_close(ours.state[p_ours][key], theirs.state[p_theirs][key], **close)
    assert batched._block_updates == one_by_one._block_updates == [3, 3, 3]


def test_batched_epochs_learn_and_hand_over_to_unbatched_ones() -> None:
    model = make(lr=3e-2, dropout=0.2, order="interleaved", batched_blocks=True)
    for _ in range(2):
        train_epoch(model, CountingBatches())
    plain = copy.deepcopy(model)
    plain.s = dataclasses.replace(plain.s, batched_blocks=False)
    stats = train_epoch(plain, CountingBatches())  # continues from the state the batched epochs left in the blocks
    assert accuracy(plain) > 0.6 and stats["steps"] == 16  # chance is 0.25


def test_batched_blocks_need_the_interleaved_order() -> None:
    with pytest.raises(ValueError, match="batched_blocks"):
        make(order="paper", batched_blocks=True)
