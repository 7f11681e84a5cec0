"""Evaluation: predictions from images alone, seeded so stochastic inference is repeatable.

Labels are only compared after the model has produced its predictions; the model never sees them.
"""

from __future__ import annotations

import statistics

import torch

from bench.run.batching import eval_batches


@torch.no_grad()
def predictions(model: torch.nn.Module, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, seed: int,
                batch_size: int = 1000, deterministic: bool = False) -> torch.Tensor:
    """Predicted classes for uint8 images ``x``; one inference run seeded by ``seed`` (or the deterministic
    reading: z_0 = 0, no injected noise).

    The noise comes from a private generator, so evaluating never shifts the training run's random stream.
    """
    generator = torch.Generator(device=x.device).manual_seed(seed)
    batches = eval_batches(x, mean, std, batch_size)
    return torch.cat([model.predict(batch, generator=generator, deterministic=deterministic).argmax(dim=1)
                      for batch in batches])


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Percentage of correct predictions."""
    return 100.0 * float((pred == y).float().mean()) if y.numel() else float("nan")


def repeated_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor,
                      std: torch.Tensor, seed: int, repeats: int) -> tuple[float, float, list[float], torch.Tensor]:
    """Mean and sample standard deviation of accuracy over ``repeats`` seeded inference runs.

    Returns (mean, std, per-repeat accuracies, predictions of the first repeat).
    """
    accs, first = [], None
    for r in range(repeats):
        pred = predictions(model, x, mean, std, seed=seed * 1000 + r)
        first = pred if first is None else first
        accs.append(accuracy(pred, y))
    std_ = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return statistics.fmean(accs), std_, accs, first
