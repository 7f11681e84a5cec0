"""noprop.dt.parallel: how blocks are dealt out, what a step sends, and per-block random streams.

The two-process equality of whole training runs is tested in tests/run/test_block_parallel.py; here a group
of one process checks the sharded code path in this process.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
import torch.distributed as dist

from bench.run.loop import train_epoch
from noprop.core.method import BlockParallel
from noprop.dt.model import NoPropDT, block_seed
from noprop.dt.parallel import BlockShard
from tests.noprop.dt.test_model import CountingBatches, make


@pytest.fixture
def group_of_one() -> Iterator[None]:
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize(("T", "world", "expected"), [
    (10, 2, [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]),
    (10, 3, [[1, 2, 3, 4], [5, 6, 7], [8, 9, 10]]),
    (3, 3, [[1], [2], [3]]),
])
def test_blocks_are_dealt_out_in_contiguous_nearly_equal_runs(T: int, world: int, expected: list) -> None:
    assert [BlockShard(T, rank, world).blocks for rank in range(world)] == expected
    with pytest.raises(ValueError, match="cannot split"):
        BlockShard(T, 0, T + 1)


def test_a_sharded_step_sends_only_the_shared_gradients_and_changes_nothing(group_of_one: None) -> None:
    plain = make(order="interleaved", embedding="learned", embed_dim=8)
    sharded = copy.deepcopy(plain)
    assert isinstance(sharded, BlockParallel)
    sharded.split_blocks_over_group(torch.device("cpu"))
    assert sharded.shard is not None and sharded.shard.blocks == list(range(1, plain.s.T + 1))
    batches = CountingBatches()
    train_epoch(plain, batches)
    sent_by_epoch_stats = plain.s.T * 6 * 8  # the epoch's per-block sums, float64
    train_epoch(sharded, batches)
    shared = sum(p.numel() for p in [*sharded.classifier.parameters(), *sharded.embedding.parameters()])
    steps = len(list(CountingBatches()()))
    assert sharded.shard.reduced_bytes == steps * shared * 4 + sent_by_epoch_stats
    for a, b in zip(plain.state_dict().values(), sharded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_interleaved_blocks_draw_from_streams_of_their_own() -> None:
    model = make(order="interleaved", dropout=0.2, T=5)
    streams = model.block_streams()
    assert len({s.initial_seed() for s in streams}) == model.s.T
    assert streams[2].initial_seed() == block_seed(0, 3)
    assert all(m.generator is streams[0] for m in model.blocks[0].modules() if hasattr(m, "generator"))
    # a block's step draws from its own stream only: training block 3 alone leaves block 5's stream untouched
    before = streams[4].get_state()
    model.before_step(3)
    model.train_step(*next(iter(CountingBatches()())), 3)
    fresh = torch.Generator(streams[2].device).manual_seed(block_seed(0, 3)).get_state()
    assert torch.equal(streams[4].get_state(), before) and not torch.equal(streams[2].get_state(), fresh)


def test_a_copy_of_a_sharded_model_trains_alone() -> None:
    model = make(order="interleaved")
    model.shard = BlockShard(model.s.T, rank=0, world=2)
    scratch = copy.deepcopy(model)
    assert isinstance(scratch, NoPropDT) and scratch.shard is None and model.shard is not None
