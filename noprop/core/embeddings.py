"""Label embeddings W_embed [num_classes, d]: one-hot (fixed), learned (orthogonal init), prototype (medoid
init).

Each embedding exposes `W`; blocks output û = softmax(logits) @ W, so û is always a convex combination of
rows.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from noprop.core.settings import CommonSettings

MEDOID_SAMPLE = 500  # at most this many images per class enter the medoid search (O(n²) distances)


class OneHotEmbedding(nn.Module):
    """The identity, d = num_classes; a buffer, never trained."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.eye(num_classes, device=torch.get_default_device()))

    @property
    def W(self) -> Tensor:
        return self.weight


class LearnedEmbedding(nn.Module):
    """A trainable [num_classes, d] matrix with orthogonal init (orthonormal rows when d >= num_classes)."""

    def __init__(self, num_classes: int, dim: int, seed: int = 0) -> None:
        super().__init__()
        # Drawn on the CPU from a seeded generator, so the embedding is the same on every device.
        weight = torch.empty(num_classes, dim, device="cpu")
        nn.init.orthogonal_(weight, generator=torch.Generator(device="cpu").manual_seed(seed))
        self.weight = nn.Parameter(weight.to(torch.get_default_device()))

    @property
    def W(self) -> Tensor:
        return self.weight


class PrototypeEmbedding(nn.Module):
    """A trainable [num_classes, C*H*W] matrix whose rows start as each class's medoid training image."""

    def __init__(self, images: Tensor, labels: Tensor, num_classes: int, seed: int = 0) -> None:
        super().__init__()
        self.image_shape = tuple(images.shape[1:])
        self.weight = nn.Parameter(class_medoids(images, labels, num_classes, seed).flatten(1).float())

    @property
    def W(self) -> Tensor:
        return self.weight


def medoid_index(points: Tensor) -> int:
    """Index of the row of `points` [n, d] whose median Euclidean distance to the OTHER rows is smallest."""
    n = points.shape[0]
    if n == 1:
        return 0
    p = points.flatten(1).double()
    dist = torch.cdist(p, p)
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=p.device)
    others = dist[off_diagonal].view(n, n - 1)
    return int(others.median(dim=1).values.argmin())


def class_medoids(
    images: Tensor, labels: Tensor, num_classes: int, seed: int = 0, max_per_class: int = MEDOID_SAMPLE
) -> Tensor:
    """Per-class medoid images [num_classes, *image_shape]; classes larger than `max_per_class` are subsampled
    with a seeded permutation so the O(n²) search stays bounded."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    labels_cpu = labels.detach().cpu()
    rows = []
    for cls in range(num_classes):
        idx = (labels_cpu == cls).nonzero().flatten()
        if idx.numel() == 0:
            raise ValueError(f"prototype embedding: class {cls} has no images in prototype_data")
        if idx.numel() > max_per_class:
            idx = idx[torch.randperm(idx.numel(), generator=gen, device="cpu")[:max_per_class]]
        members = images[idx.to(images.device)].detach()
        rows.append(members[medoid_index(members)])
    return torch.stack(rows)


def check_prototype_data(s: CommonSettings, prototype_data: tuple[Tensor, Tensor] | None) -> None:
    """Fail early when prototype images do not match the settings' image shape."""
    if s.embedding != "prototype" or prototype_data is None:
        return
    expected = (s.in_channels, s.image_size, s.image_size)
    if tuple(prototype_data[0].shape[1:]) != expected:
        raise ValueError(f"prototype_data images have shape {tuple(prototype_data[0].shape[1:])}, need {expected}")


def make_embedding(
    kind: str,
    num_classes: int,
    embed_dim: int,
    prototype_data: tuple[Tensor, Tensor] | None = None,
    seed: int = 0,
) -> nn.Module:
    """Build the embedding named by `kind` ("one-hot" | "learned" | "prototype")."""
    if kind == "one-hot":
        return OneHotEmbedding(num_classes)
    if kind == "learned":
        return LearnedEmbedding(num_classes, embed_dim, seed)
    if kind == "prototype":
        if prototype_data is None:
            raise ValueError("embedding='prototype' needs prototype_data=(images, labels)")
        images, labels = prototype_data
        return PrototypeEmbedding(images, labels, num_classes, seed)
    raise ValueError(f"embedding={kind!r} is invalid; allowed: one-hot, learned, prototype")


def embedding_dim(kind: str, num_classes: int, embed_dim: int, in_channels: int, image_size: int) -> int:
    """d for an embedding kind, known before the embedding exists (blocks are sized from it)."""
    return {"one-hot": num_classes, "learned": embed_dim, "prototype": in_channels * image_size**2}[kind]
