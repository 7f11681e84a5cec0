"""The CNN reference with activation checkpointing at its pooling stages: the memory twin of decoupled greedy
learning, which trains the same network as one module per stage.

The same computation as ``cnn`` (tested in float64), keeping only each stage's input for backward and re-running the
stage's forward there.
"""

from __future__ import annotations

from torch import Tensor, nn

from baselines.cnn import CNNReference
from baselines.recompute import recomputed
from noprop.core.settings import CommonSettings
from noprop.core.spec import MethodSpec


class CheckpointedCNN(CNNReference):
    """``CNNReference`` whose pooling stages (``noprop.core.blocks.pooling_stages``) run under
    ``baselines.recompute.recomputed`` while training."""

    def run_stage(self, stage: nn.Module, h: Tensor) -> Tensor:
        return recomputed(stage, h)

    def recorded_settings(self) -> dict[str, str | int]:
        return {"checkpointing": "per pooling stage"}


METHOD = MethodSpec(
    name="cnn-ckpt", factory=CheckpointedCNN, settings=CommonSettings, baseline="cnn",
    columns={"checkpointing": "str"},
    summary="The CNN reference with each pooling stage's activations recomputed in backward (torch.utils.checkpoint)")
