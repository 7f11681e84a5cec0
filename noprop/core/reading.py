"""What every method's inference shares: the start of the chain z_0 and running in eval mode.

The deterministic reading (z_0 = 0, the prior's mean, and no injected noise) is read beside the stochastic one for
every method (docs/method.md), so its z_0 is drawn in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


def start_z(x: Tensor, W: Tensor, generator: torch.Generator | None, deterministic: bool) -> Tensor:
    """z_0 for the images ``x``: N(0, I) from ``generator`` (torch's default when None), or 0 for the deterministic
    reading; one row per image, as wide as the class embeddings ``W`` and in their dtype."""
    shape = (x.shape[0], W.shape[1])
    if deterministic:
        return torch.zeros(shape, device=x.device, dtype=W.dtype)
    return torch.randn(shape, device=x.device, dtype=W.dtype, generator=generator)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode inside (dropout off, BatchNorm's running statistics), its own mode restored after."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
