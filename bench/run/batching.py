"""Device-resident mini-batching: index slices of a seeded permutation, normalised per batch.

The whole split already lives on the training device as uint8 (``bench.run.data``), each pass's order is drawn there
by a generator of that device, and a batch costs one gather and one fused multiply-add: no DataLoader workers, no
per-sample transforms, no host copy per batch or per pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def normaliser(mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and shift so that ``x_uint8 * scale + shift == (x / 255 - mean) / std`` per channel."""
    scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)
    shift = (-mean / std).view(1, -1, 1, 1)
    return scale, shift


def normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Normalise uint8 images [B, C, H, W] to float32 with the given channel statistics."""
    scale, shift = normaliser(mean, std)
    return torch.addcmul(shift, x.float(), scale)


class ShuffledPasses:
    """A reusable source of training passes (``noprop.core.method.Passes``): each call yields one shuffled pass.

    Calling it again draws a new permutation from its own seeded generator, so NoProp-DT's
    T passes per epoch and backprop's single pass see the same sequence of orders per seed. The generator lives on the
    data's device and draws the permutation there (a CUDA generator draws other orders than a CPU one from the same
    seed: a seed gives the same batches on every CPU, and on every GPU).
    """

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
        batch_size: int, seed: int,
    ) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size
        self.scale, self.shift = normaliser(mean, std)
        self.generator = torch.Generator(device=x.device).manual_seed(seed)

    def __len__(self) -> int:
        return len(self._starts()) - 1

    def sizes(self) -> list[int]:
        """The size of each batch of a pass, in order (the same for every pass)."""
        bounds = self._starts()
        return [b - a for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def _starts(self) -> list[int]:
        """Batch start offsets; a final batch of a single example joins the one before (BatchNorm needs 2)."""
        n = self.y.numel()
        starts = list(range(0, n, self.batch_size))
        if len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()
        return starts + [n]

    def __call__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.y.numel()
        order = torch.randperm(n, generator=self.generator, device=self.x.device)
        bounds = self._starts()
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            idx = order[start:stop]
            yield torch.addcmul(self.shift, self.x[idx].float(), self.scale), self.y[idx]


def eval_batches(
    x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, batch_size: int = 1000
) -> Iterator[torch.Tensor]:
    """Normalised images in order, for evaluation (labels are never passed to the model)."""
    scale, shift = normaliser(mean, std)
    for start in range(0, x.shape[0], batch_size):
        yield torch.addcmul(shift, x[start : start + batch_size].float(), scale)
