"""DenoiseBlock: the NoProp-DT block (paper Fig. 6; docs/method.md), shared with the backprop baseline so the two
methods are matched layer for layer."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from noprop.core.dropout import Dropout
from noprop.core.embeddings import embedding_dim
from noprop.core.settings import CommonSettings


def scaled(n: int, width: float) -> int:
    """A paper width times the multiplier, at least 1."""
    return max(1, round(n * width))


def conv_path(in_channels: int, image_size: int, width: float, dropout: float, batch_norm: bool = True
              ) -> nn.Sequential:
    """conv3x3 32 → ReLU → maxpool2 → dropout → conv3x3 64 → ReLU → dropout → conv3x3 128 → ReLU → maxpool2 →
    dropout → flatten → linear 256 → BN (→ ReLU instead with ``batch_norm=False``: NoProp-CT's block, paper Fig. 6
    right, has no BatchNorm). Padding 1, stride 1 (our choice; the paper gives neither).

    Each ReLU → maxpool pair runs as maxpool → ReLU: the same function with the same gradient (both are
    monotone; where a pooling window is all non-positive both give 0 and pass no gradient), but the ReLU then
    touches a quarter of the elements (measured: a 1.19x faster block step at the paper width on a 2-core CPU in
    channels_last, no change in NCHW). Parameterised layers keep their Sequential indices, so state_dict keys
    are unchanged.
    """
    c1, c2, c3, h = (scaled(n, width) for n in (32, 64, 128, 256))
    side = image_size // 2 // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 3, padding=1),
        nn.MaxPool2d(2),
        nn.ReLU(),
        Dropout(dropout),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        Dropout(dropout),
        nn.Conv2d(c2, c3, 3, padding=1),
        nn.MaxPool2d(2),
        nn.ReLU(),
        Dropout(dropout),
        nn.Flatten(),
        nn.Linear(c3 * side * side, h),
        nn.BatchNorm1d(h) if batch_norm else nn.ReLU(),
    )


def pooling_stages(path: nn.Sequential) -> list[nn.Sequential]:
    """``conv_path`` cut after each max-pooling stage (its ReLU and dropout included): [conv 32 → pool → ReLU →
    dropout], [conv 64 → ReLU → dropout → conv 128 → pool → ReLU → dropout], [flatten → linear 256 → BN]. The
    stages share the path's modules (their weights and state are the path's), so chaining them is the path.
    Decoupled greedy learning trains one module per stage and checkpointed backprop recomputes one per stage."""
    layers = list(path)
    pools = [i for i, layer in enumerate(layers) if isinstance(layer, nn.MaxPool2d)]
    cuts = [0]
    for i in pools:
        end = i + 1
        while end < len(layers) and not isinstance(layers[end], (nn.Conv2d, nn.Flatten, nn.Linear)):
            end += 1  # the ReLU and dropout after the pool belong to its stage
        cuts.append(end)
    cuts.append(len(layers))
    return [path[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def head_layers(features: int, width: float, out: int) -> nn.Sequential:
    """The block's head on its concatenated features: linear 256 → BN → ReLU → linear 128 → BN → ReLU → linear
    ``out`` (the classes for NoProp-DT's block)."""
    h1, h2 = scaled(256, width), scaled(128, width)
    return nn.Sequential(
        nn.Linear(features, h1),
        nn.BatchNorm1d(h1),
        nn.ReLU(),
        nn.Linear(h1, h2),
        nn.BatchNorm1d(h2),
        nn.ReLU(),
        nn.Linear(h2, out),
    )


class VectorLabelPath(nn.Module):
    """h = ReLU(BN(linear 256 (z))); out = BN(linear 256 (ReLU(BN(linear 256 (h))))) + h."""

    def __init__(self, embed_dim: int, width: float) -> None:
        super().__init__()
        h = scaled(256, width)
        self.inp = nn.Sequential(nn.Linear(embed_dim, h), nn.BatchNorm1d(h), nn.ReLU())
        self.res = nn.Sequential(nn.Linear(h, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, h), nn.BatchNorm1d(h))

    def forward(self, z: Tensor) -> Tensor:
        h = self.inp(z)
        return self.res(h) + h


class ImageLabelPath(nn.Module):
    """For prototype embeddings z is image-sized: reshape it and reuse the image path's architecture
    (its own weights, dropout included: our reading of "a conv path like the image path")."""

    def __init__(self, in_channels: int, image_size: int, width: float, dropout: float) -> None:
        super().__init__()
        self.shape = (in_channels, image_size, image_size)
        self.net = conv_path(in_channels, image_size, width, dropout)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.view(z.shape[0], *self.shape))


class DenoiseBlock(nn.Module):
    """Maps (x, z_{t-1}) to logits over classes and û_t = softmax(logits) @ W_embed, a prediction of u_y."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        num_classes: int,
        embed_dim: int,
        image_label: bool,
        width: float = 1.0,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if image_label and embed_dim != in_channels * image_size**2:
            raise ValueError(
                f"image_label=True needs embed_dim == C*H*W = {in_channels * image_size**2}, got {embed_dim}"
            )
        self.image_path = conv_path(in_channels, image_size, width, dropout)
        self.label_path: nn.Module = (
            ImageLabelPath(in_channels, image_size, width, dropout)
            if image_label
            else VectorLabelPath(embed_dim, width)
        )
        self.head = head_layers(2 * scaled(256, width), width, num_classes)

    def forward(self, x: Tensor, z: Tensor, W_embed: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.head(torch.cat([self.image_path(x), self.label_path(z)], dim=-1))
        return logits, logits.softmax(dim=-1) @ W_embed


def make_blocks(s: CommonSettings) -> nn.ModuleList:
    """T independent blocks sized for the settings' embedding; NoProp-DT and its backprop baseline build their stack
    here."""
    d = embedding_dim(s.embedding, s.num_classes, s.embed_dim, s.in_channels, s.image_size)
    return nn.ModuleList(
        DenoiseBlock(s.in_channels, s.image_size, s.num_classes, d, s.embedding == "prototype", s.width, s.dropout)
        for _ in range(s.T)
    )
