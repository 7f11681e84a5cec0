"""random-features: a frozen, randomly initialised CNN (the harness's CNN reference at init) with a trained linear
readout. No gradient reaches the network: the smallest honest backprop-free baseline, and an example of a method
that lives in its own package (docs/plugins.md).

The CNN reference (``cnn``) is its end-to-end twin: the same network and readout, every weight trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop.core.blocks import conv_path, scaled
from noprop.core.one_network import OneNetwork
from noprop.core.settings import CommonSettings, adamw, setting
from noprop.core.spec import MethodSpec


@dataclass(frozen=True)
class RandomFeaturesSettings(CommonSettings):
    """Its one key of its own (named after the method, so no other method's key can clash with it)."""

    rf_feature_scale: float = setting(1.0, "random-features: multiplier on the frozen features before the readout",
                                      gt=0)


class RandomFeatures(OneNetwork):
    """logits = Linear(scale * features(x)); features: conv_path at its random init, frozen (eval mode, so its
    BatchNorm uses the initial statistics and dropout is off); the readout trained with cross-entropy and AdamW."""

    TERMS = ("ce",)

    def __init__(self, s: RandomFeaturesSettings, prototype_data: tuple[Tensor, Tensor] | None = None,
                 generator_seed: int = 0) -> None:
        super().__init__()
        self.s = s
        self.features = conv_path(s.in_channels, s.image_size, s.width, s.dropout).requires_grad_(False)
        self.readout = nn.Linear(scaled(256, s.width), s.num_classes)
        self.use_optimiser(adamw(self.readout.parameters(), s))

    def train(self, mode: bool = True) -> RandomFeatures:
        super().train(mode)
        self.features.eval()  # frozen: never in training mode
        return self

    @property
    def block_passes_per_sample(self) -> int:
        """One forward pass of the (frozen) image path per training image."""
        return 1

    def logits(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            h = self.features(x) * self.s.rf_feature_scale
        return self.readout(h)

    def loss_terms(self, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(self.logits(x), y).reshape(1)

    def infer(self, x: Tensor, generator: torch.Generator | None, deterministic: bool) -> Tensor:
        """Logits from images alone; nothing is sampled, so ``generator`` and ``deterministic`` change nothing."""
        return self.logits(x)

    def label_embedding(self) -> Tensor:
        """No label embedding: the targets are the one-hot classes."""
        return torch.eye(self.s.num_classes, device=self.readout.weight.device)


METHOD = MethodSpec(
    name="random-features", factory=RandomFeatures, settings=RandomFeaturesSettings, baseline="cnn",
    summary="Example plug-in: a frozen random CNN with a trained linear readout (no gradient reaches the network)",
    capturable=True)  # OneNetwork keeps its bookkeeping in before_step and offers optimizers() (docs/plugins.md)
