"""The sinusoidal embedding of a scalar per example (NoProp-CT's time, DiffusionBlocks' noise level): one place, so
the methods that condition a network on a scalar read it the same way."""

from __future__ import annotations

import math

import torch
from torch import Tensor

EMBED_DIM = 64  # NoProp's "64-d positional embedding" of t


def sinusoid(values: Tensor, dim: int = EMBED_DIM, scale: float = 1.0) -> Tensor:
    """[B, dim]: sin and cos of scale · values [B] at dim / 2 geometric frequencies 1..1e-4."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=values.device, dtype=values.dtype) / half)
    angles = scale * values.unsqueeze(-1) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
