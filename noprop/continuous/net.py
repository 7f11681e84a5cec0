"""The network of the continuous-time variants (paper Fig. 6 right): one û(x, z_t, t) for every t, no BatchNorm.

NoProp-CT reads its logits as û = softmax(logits) · W_embed; NoProp-FM as a velocity v = logits · W_embed. Both
share this module.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from noprop.core.blocks import conv_path, scaled
from noprop.core.sinusoid import EMBED_DIM, sinusoid

TIME_DIM = EMBED_DIM  # the paper's "64-d positional embedding" of t
TIME_SCALE = 1000.0  # t in [0, 1] is embedded as the step t · 1000 of a 1000-step diffusion (our choice)


def time_embedding(t: Tensor, dim: int = TIME_DIM, scale: float = TIME_SCALE) -> Tensor:
    """Sinusoidal embedding [B, dim] of t [B] (``noprop.core.sinusoid``) at the scale of a 1000-step diffusion."""
    return sinusoid(t, dim, scale)


class ContinuousTimeNet(nn.Module):
    """Image path (as NoProp-DT's, ending FC 256 → ReLU), z_t → FC 256 → ReLU, t → 64-d sinusoid → FC 256 → ReLU;
    concatenated → FC 256 → ReLU → FC 128 → ReLU → FC classes. Returns logits."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, embed_dim: int, width: float = 1.0,
                 dropout: float = 0.2) -> None:
        super().__init__()
        h1, h2 = scaled(256, width), scaled(128, width)
        self.image_path = conv_path(in_channels, image_size, width, dropout, batch_norm=False)
        self.label_path = nn.Sequential(nn.Linear(embed_dim, h1), nn.ReLU())
        self.time_path = nn.Sequential(nn.Linear(TIME_DIM, h1), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(3 * h1, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(),
                                  nn.Linear(h2, num_classes))

    def forward(self, x: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """Logits [B, classes] for images x, noisy label embeddings z [B, d] and times t [B] in [0, 1]."""
        return self.from_features(self.image_path(x), z, t)

    def from_features(self, image_features: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """The logits from the image path's output: inference computes that once per image, not once per ODE step
        (the image does not change along t)."""
        features = [image_features, self.label_path(z), self.time_path(time_embedding(t.to(z.dtype)))]
        return self.head(torch.cat(features, dim=-1))
