"""A tiny separable image problem for code-path tests (learnable in a few steps; says nothing about accuracy)."""

import torch
from torch import Tensor

from noprop.core.settings import CommonSettings

SMALL = dict(in_channels=1, image_size=8, num_classes=4, T=3, width=0.25, embed_dim=8)  # the toy problem's shape


def quadrant_data(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """4 classes of 1x8x8 images, class k brightens quadrant k; drawn on the CPU (the same on every device), returned
    on the suite's device."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g, device="cpu")
    x = 0.5 * torch.randn(n, 1, 8, 8, generator=g, device="cpu")
    for c in range(4):
        r, col = divmod(c, 2)
        x[y == c, :, r * 4 : (r + 1) * 4, col * 4 : (col + 1) * 4] += 2.0
    device = torch.get_default_device()
    return x.to(device), y.to(device)


def small_settings(cls: type[CommonSettings], **kw: object) -> CommonSettings:
    """A method's settings for the toy problem: 1x8x8 images, 4 classes, 3 narrow blocks; ``kw`` overrides."""
    return cls(**{**SMALL, **kw})  # type: ignore[arg-type]
