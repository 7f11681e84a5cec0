"""The toy problem the contract checks train on: 4 classes of 1x8x8 uint8 images, class k brightens quadrant k.

Learnable in a few steps, so a check trains for real in well under a second on a CPU; it says nothing about
accuracy. Images reach a method as the harness gives them: normalised float batches from ``ShuffledPasses``
for training, and ``bench.run.evaluate``'s batches at inference.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from bench.run.batching import ShuffledPasses, normalise
from bench.run.loop import train_epoch
from noprop.core.method import Method
from noprop.core.settings import CommonSettings
from noprop.core.spec import MethodSpec

SHAPE = {"in_channels": 1, "image_size": 8, "num_classes": 4}
SMALL = {"T": 3, "width": 0.25, "embed_dim": 8}  # a method's own defaults are kept for every other key
BATCH = 32


def quadrant_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` uint8 images [n, 1, 8, 8] and their labels, drawn on the CPU from ``seed``."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g, device="cpu")
    x = 96 + 24 * torch.randn(n, 1, 8, 8, generator=g, device="cpu")
    for c in range(4):
        r, col = divmod(c, 2)
        x[y == c, :, 4 * r : 4 * r + 4, 4 * col : 4 * col + 4] += 96
    return x.clamp(0, 255).to(torch.uint8), y


@dataclass
class Toy:
    """One method on the toy problem, on one device: build it, hand it passes, read it as the harness does."""

    spec: MethodSpec
    device: torch.device

    def __post_init__(self) -> None:
        train_x, self.train_y = quadrant_images(256, 0)
        test_x, self.test_y = quadrant_images(128, 1)
        self.train_x, self.test_x = train_x.to(self.device), test_x.to(self.device)
        self.train_y, self.test_y = self.train_y.to(self.device), self.test_y.to(self.device)
        self.mean = (self.train_x.float() / 255).mean().reshape(1).to(self.device)
        self.std = (self.train_x.float() / 255).std().reshape(1).to(self.device)

    def settings(self, **overrides: object) -> CommonSettings:
        return self.spec.settings(**{**SHAPE, **SMALL, "total_steps": 4 * len(self.passes(0)), **overrides})

    def build(self, seed: int = 0, **overrides: object) -> Method:
        """The method as ``bench.run.methods.build`` makes it: seeded, prototype images from training data;
        ``overrides``: settings other than the toy's."""
        torch.manual_seed(seed)
        prototypes = (normalise(self.train_x, self.mean, self.std), self.train_y)
        model = self.spec.factory(self.settings(**overrides), prototype_data=prototypes, generator_seed=seed)
        return model.to(self.device)

    def passes(self, seed: int) -> ShuffledPasses:
        return ShuffledPasses(self.train_x, self.train_y, self.mean, self.std, BATCH, seed)

    def first_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return next(iter(self.passes(7)()))

    def trained(self, seed: int = 0) -> Method:
        """Built from ``seed`` and trained for one epoch on passes of the same seed: a copy of the one trained model
        of this method, seed and device (several checks read one; the checks that train compare fresh builds)."""
        key = (self.spec.name, id(self.spec.factory), str(self.device), seed)
        if key not in _TRAINED:
            _TRAINED.clear()  # one method's models at a time
            model = self.build(seed)
            train_epoch(model, self.passes(seed))
            _TRAINED[key] = model
        return copy.deepcopy(_TRAINED[key])


_TRAINED: dict[tuple[object, ...], Method] = {}
