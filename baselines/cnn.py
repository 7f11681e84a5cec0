"""The conventional CNN reference: one DenoiseBlock's image path and a linear classifier, trained end to end.

It answers "where does a plain CNN of the same block land?" beside NoProp-DT and its backprop baseline, with the
same optimiser, data, epoch budget and measurements. It has no label path, no z and no noise.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from baselines.endtoend import EndToEnd
from noprop.core.blocks import conv_path, pooling_stages, scaled
from noprop.core.settings import CommonSettings
from noprop.core.spec import MethodSpec


class CNNReference(EndToEnd):
    """logits = Linear(256 → classes)(image path(x)): the block's conv3x3 32/64/128 path ending in linear 256 and
    BatchNorm (noprop.core.blocks.conv_path), then a linear classifier. Cross-entropy, one AdamW over all parameters."""

    def __init__(self, s: CommonSettings, prototype_data: tuple[Tensor, Tensor] | None = None,
                 generator_seed: int = 0) -> None:
        super().__init__()
        self.s = s
        self.image_path = conv_path(s.in_channels, s.image_size, s.width, s.dropout)
        self.classifier = nn.Linear(scaled(256, s.width), s.num_classes)
        self.stages = pooling_stages(self.image_path)  # views of image_path's layers: no weights of their own
        self.start_training()

    @property
    def block_passes_per_sample(self) -> int:
        """One pass through one block's image path per image (a part of one block: throughput is per image)."""
        return 1

    def forward(self, x: Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> Tensor:
        """Logits; inference draws no noise, so ``generator`` and ``deterministic`` change nothing."""
        h = x
        for stage in self.stages:
            h = self.run_stage(stage, h)
        return self.classifier(h)

    def run_stage(self, stage: nn.Module, h: Tensor) -> Tensor:
        """One pooling stage of the image path (a checkpointed subclass recomputes it in backward)."""
        return stage(h)

    def label_embedding(self) -> Tensor:
        """A CNN has no label embedding; its targets are the one-hot classes, returned as the identity."""
        return torch.eye(self.s.num_classes, device=self.classifier.weight.device)


METHOD = MethodSpec(
    name="cnn", factory=CNNReference,
    summary="A conventional CNN reference: one block's image path and a linear classifier, trained end to end",
    capturable=True)
