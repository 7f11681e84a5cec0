"""Inverted dropout whose mask is cheap to draw on the CPU.

``nn.Dropout`` on the CPU draws one float per element with ``bernoulli_``; in a DenoiseBlock step at the paper's
width that was about 15 % of the step's time. Here each element's keep test uses 16 random bits instead: one
full-range 64-bit draw gives four elements their bits, about 3x cheaper than a float draw per element. An element
is kept when its 16 bits (as a signed number) are at least ``-32768 + round(p * 65536)``, so the drop probability
is p rounded to a multiple of 1/65536 (0.2 becomes 0.199997). Kept elements are scaled by 1 / (1 - p), as in
``nn.Dropout``. On other devices ``F.dropout`` is already a fused kernel and is used as it is.

A module given its own ``generator`` draws its masks from it (on any device) instead of torch's default stream:
NoProp-DT's interleaved order gives each block one, so a block's masks do not depend on which process trains it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LANES = 4  # int16 lanes per int64 draw
_LOW = -(2**15)


def keep_mask(shape: torch.Size, p: float, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
    """A bool tensor of ``shape``: True with probability 1 - p (p rounded to a multiple of 1/65536)."""
    n = shape.numel()
    draws = torch.empty(-(-n // _LANES), dtype=torch.int64, device=device).random_(-(2**63), 2**63 - 1,
                                                                                  generator=generator)
    bits = draws.view(torch.int16)[:n]
    return (bits >= _LOW + round(p * 2**16)).view(shape)


class Dropout(nn.Module):
    """Drop-in for ``nn.Dropout(p)`` (same training/eval behaviour and scaling) with the cheap CPU mask."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu" and self.generator is None:
            return F.dropout(x, self.p, training=True)
        scale = keep_mask(x.shape, self.p, x.device, self.generator).to(x.dtype) * (1.0 / (1.0 - self.p))
        return x * scale

    def extra_repr(self) -> str:
        return f"p={self.p}"
