"""Block-parallel NoProp-DT: the T blocks split over the processes of a ``torch.distributed`` group.

Why it works: in the interleaved order a step's T block losses share no activations (each block sees the images and
its own noisy label); only the classifier's and the embedding's gradients are sums over blocks. So every process
trains its own blocks on the same mini-batch, and one all-reduce per step of the shared gradients (a few hundred
bytes for a one-hot embedding) keeps the shared parameters the same everywhere. Nothing else crosses between
processes while training: not images (each loads its own), not activations.

Between epochs the owners broadcast their blocks' weights, so every process (rank 0 evaluates) holds the whole model
for inference; a checkpoint gathers every block's optimiser state and random stream onto rank 0, so it is the same
file whatever the number of processes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils._pytree import tree_map


class BlockShard:
    """This process's share of T blocks in a group of ``world`` processes: blocks split into contiguous runs."""

    def __init__(self, T: int, rank: int | None = None, world: int | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.T = T
        self.rank = dist.get_rank() if rank is None else rank
        self.world = dist.get_world_size() if world is None else world
        if not 1 <= self.world <= T:
            raise ValueError(f"cannot split {T} blocks over {self.world} processes")
        self.device = torch.device(device)  # where collectives run: the CPU for gloo, this rank's GPU for nccl
        self.blocks = [t for t in range(1, T + 1) if self.owner(t) == self.rank]
        self.reduced_bytes = 0  # payload of every all-reduce so far (the step's shared gradients, the epoch's stats)

    def owner(self, t: int) -> int:
        """The rank that trains block t (1-based): blocks are dealt out in contiguous, nearly equal runs."""
        return (t - 1) * self.world // self.T

    def all_reduce_(self, tensors: list[Tensor]) -> None:
        """Sum ``tensors`` over the group in place, as one flat message."""
        flat = torch.cat([t.reshape(-1).to(self.device) for t in tensors])
        self.reduced_bytes += flat.numel() * flat.element_size()
        dist.all_reduce(flat)
        _copy_from_flat(flat, tensors)

    def broadcast_blocks(self, blocks: nn.ModuleList) -> None:
        """Every block's weights and buffers from its owner to every process (for evaluation)."""
        for t, block in enumerate(blocks, start=1):
            tensors = [*block.parameters(), *block.buffers()]
            flat = torch.cat([x.detach().reshape(-1).to(self.device, torch.float64) for x in tensors])
            dist.broadcast(flat, src=self.owner(t))
            if self.owner(t) != self.rank:
                with torch.no_grad():
                    _copy_from_flat(flat, tensors)

    def gather_owned(self, per_block: dict[int, Any]) -> dict[int, Any]:
        """Rank 0 gets every rank's ``{block: state}`` merged (moved to the CPU); other ranks get their own back."""
        mine = tree_map(lambda x: x.cpu() if isinstance(x, Tensor) else x, per_block)
        gathered: list[Any] | None = [None] * self.world if self.rank == 0 else None
        dist.gather_object(mine, gathered, dst=0)
        if gathered is None:
            return per_block
        return {t: state for part in gathered for t, state in part.items()}

    def __deepcopy__(self, memo: dict) -> None:
        """A copy of a sharded model is a single-process model: copies train untimed probes on one process and
        must not talk to the others."""
        return None


def _copy_from_flat(flat: Tensor, tensors: list[Tensor]) -> None:
    """Copy consecutive slices of ``flat`` back into ``tensors`` (the inverse of concatenating them flattened)."""
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()
