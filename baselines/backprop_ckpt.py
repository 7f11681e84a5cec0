"""Backprop with per-block activation checkpointing: the matched backprop baseline's computation, keeping only
each block's inputs for backward and re-running the block's forward there.

The fair memory twin of the block-local methods: backprop's result (weights, BatchNorm statistics and optimiser state
equal the plain baseline's, tested in float64) at backprop's parameters and optimiser state but about one block's
activations, for one more forward pass of every block per step. A method of its own, not a switch of the baseline,
so that one sweep runs both side by side and the report pairs them (switches are one value per run).
"""

from __future__ import annotations

from torch import Tensor, nn

from baselines.backprop import BackpropBaseline, BackpropSettings
from baselines.recompute import recomputed
from noprop.core.spec import MethodSpec


class CheckpointedBackprop(BackpropBaseline):
    """``BackpropBaseline`` whose T blocks run under ``baselines.recompute.recomputed`` while training: the same
    function, initialisation, loss and optimiser; every block's forward runs twice per step."""

    def run_block(self, block: nn.Module, x: Tensor, z: Tensor, W: Tensor) -> Tensor:
        return recomputed(block, x, z, W, call=lambda *a: block(*a)[1])

    def recorded_settings(self) -> dict[str, str | int]:
        return {"checkpointing": "per block"}


METHOD = MethodSpec(
    name="backprop-ckpt", factory=CheckpointedBackprop, settings=BackpropSettings, aliases=("bp-ckpt",),
    baseline="backprop", columns={"checkpointing": "str"},
    summary="The backprop baseline with each block's activations recomputed in backward (torch.utils.checkpoint)")
