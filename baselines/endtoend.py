"""Training shared by the methods trained end to end by back-propagation (the matched backprop baseline and the
CNN reference): one AdamW over every parameter, one step per mini-batch, cross-entropy on the model's logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from noprop.core.one_network import OneNetwork
from noprop.core.settings import adamw


class EndToEnd(OneNetwork):
    """A classifier whose ``forward(x, generator, deterministic)`` gives logits, trained as one network.

    Subclasses build their layers, then call ``start_training()`` to create the AdamW over all of them.
    """

    TERMS = ("ce",)

    def start_training(self) -> None:
        self.use_optimiser(adamw(self.parameters(), self.s))

    def loss_terms(self, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(self(x), y).reshape(1)

    def infer(self, x: Tensor, generator: torch.Generator | None, deterministic: bool) -> Tensor:
        return self(x, generator, deterministic)
