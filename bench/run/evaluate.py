"""Evaluation: predictions from images alone, seeded so stochastic inference is repeatable.

Labels are only compared after the model has produced its predictions; the model never sees them.
"""

from __future__ import annotations

import statistics

import torch

from bench.run.batching import eval_batches
from bench.run.measure import Stopwatch
from noprop.core.method import StepsAtInference


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


def steps_sweep(model: StepsAtInference, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                seed: int, steps: list[int]) -> dict[str, list[float]]:
    """Test accuracy and the time of one inference pass at each ODE step count (the headline reading's first
    seed at every count, so only the step count differs); the model's own step count is restored afterwards."""
    own = model.inference_steps
    out: dict[str, list[float]] = {"steps": [], "test_acc": [], "infer_s": []}
    try:
        for k in steps:
            model.inference_steps = k
            with Stopwatch(x.device) as clock:
                pred = predictions(model, x, mean, std, seed=seed * 1000)  # type: ignore[arg-type]
            out["steps"].append(k)
            out["test_acc"].append(accuracy(pred, y))
            out["infer_s"].append(clock.elapsed)
    finally:
        model.inference_steps = own
    return out
