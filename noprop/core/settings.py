"""Settings shared by every method (NoProp-DT, its backprop baseline, NoProp-CT and -FM), and the learning-rate
schedule they describe.

One frozen dataclass keeps the methods matched: whatever the harness sets here applies to all of them; keys one
method does not use (the ODE steps for NoProp-DT, say) leave it unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from noprop.continuous.ode import INTEGRATORS

EMBEDDINGS = ("one-hot", "learned", "prototype")
SCHEDULES = ("cosine", "linear")
LR_DECAYS = ("none", "cosine")
ORDERS = ("paper", "interleaved")
INFERENCES = ("stochastic", "deterministic")
READOUTS = ("classifier", "posterior")
MIX_INITS = ("constant", "average")
CLASSIFIER_INITS = ("readout", "random")
ODE_STEPS = 20  # continuous-time inference steps by default (the paper: 1000; chosen from the measured sweep)
FM_SIGMA = 0.1  # NoProp-FM's path noise σ: "small", not given by the paper (our choice)
CT_ETA = 1.0  # the paper's η for NoProp-CT


def _check(ok: bool, field: str, value: object, allowed: str) -> None:
    if not ok:
        raise ValueError(f"MethodSettings.{field}={value!r} is invalid; allowed: {allowed}")


@dataclass(frozen=True)
class MethodSettings:
    """Everything that defines a method's run except data and seeds.

    Step counts (`warmup_steps`, `total_steps`) count updates of ONE block: one mini-batch step. Every block
    of NoProp-DT and the whole backprop network receive the same number of updates per epoch (the number of
    mini-batches in one pass), so `total_steps = epochs * batches_per_pass` for both methods and every
    parameter follows the same lr trajectory as a function of its own updates.
    """

    in_channels: int
    image_size: int
    num_classes: int
    T: int = 10
    embedding: str = "one-hot"
    embed_dim: int = 20
    width: float = 1.0
    dropout: float = 0.2
    eta: float = 0.1
    schedule: str = "cosine"
    lr: float = 1e-3
    weight_decay: float = 1e-3
    grad_clip: float | None = None
    warmup_steps: int = 0
    lr_decay: str = "none"
    total_steps: int | None = None
    order: str = "paper"
    inference: str = "stochastic"
    readout: str = "classifier"
    batched_blocks: bool = False
    mix_init: str = "constant"
    classifier_init: str = "readout"
    ode_steps: int = ODE_STEPS
    integrator: str = "euler"
    fm_sigma: float = FM_SIGMA
    ct_eta: float = CT_ETA

    def __post_init__(self) -> None:
        _check(self.in_channels >= 1, "in_channels", self.in_channels, "an int >= 1 (1 or 3 for the datasets)")
        _check(self.image_size >= 4, "image_size", self.image_size, "an int >= 4 (28 or 32 for the datasets)")
        _check(self.num_classes >= 2, "num_classes", self.num_classes, "an int >= 2")
        _check(self.T >= 1, "T", self.T, "an int >= 1")
        _check(self.embedding in EMBEDDINGS, "embedding", self.embedding, ", ".join(EMBEDDINGS))
        _check(self.embed_dim >= 1, "embed_dim", self.embed_dim, "an int >= 1")
        _check(self.width > 0, "width", self.width, "a float > 0")
        _check(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "a float in [0, 1)")
        _check(self.eta > 0, "eta", self.eta, "a float > 0")
        _check(self.schedule in SCHEDULES, "schedule", self.schedule, ", ".join(SCHEDULES))
        _check(self.lr > 0, "lr", self.lr, "a float > 0")
        _check(self.weight_decay >= 0, "weight_decay", self.weight_decay, "a float >= 0")
        _check(self.grad_clip is None or self.grad_clip > 0, "grad_clip", self.grad_clip, "None or a float > 0")
        _check(self.warmup_steps >= 0, "warmup_steps", self.warmup_steps, "an int >= 0")
        _check(self.lr_decay in LR_DECAYS, "lr_decay", self.lr_decay, ", ".join(LR_DECAYS))
        _check(
            self.total_steps is None or self.total_steps >= 1,
            "total_steps",
            self.total_steps,
            "None or an int >= 1",
        )
        _check(
            self.lr_decay != "cosine" or self.total_steps is not None,
            "total_steps",
            self.total_steps,
            "an int >= 1 when lr_decay='cosine'",
        )
        _check(self.order in ORDERS, "order", self.order, ", ".join(ORDERS))
        _check(self.inference in INFERENCES, "inference", self.inference, ", ".join(INFERENCES))
        _check(self.readout in READOUTS, "readout", self.readout, ", ".join(READOUTS))
        _check(self.mix_init in MIX_INITS, "mix_init", self.mix_init, ", ".join(MIX_INITS))
        _check(self.classifier_init in CLASSIFIER_INITS, "classifier_init", self.classifier_init,
               ", ".join(CLASSIFIER_INITS))
        _check(self.ode_steps >= 1, "ode_steps", self.ode_steps, "an int >= 1")
        _check(self.integrator in INTEGRATORS, "integrator", self.integrator, ", ".join(INTEGRATORS))
        _check(self.fm_sigma >= 0, "fm_sigma", self.fm_sigma, "a float >= 0")
        _check(self.ct_eta > 0, "ct_eta", self.ct_eta, "a float > 0")
        _check(not self.batched_blocks or self.order == "interleaved", "batched_blocks", self.batched_blocks,
               "True only with order='interleaved' (the paper order trains one block per step)")


def lr_factor(step: float, s: MethodSettings) -> float:
    """Multiplier on `s.lr` for the update that follows `step` completed updates (0-based).

    Linear warm-up over `warmup_steps`, then optionally cosine decay reaching 0 at `total_steps`. `step` may
    be fractional (the shared classifier of NoProp-DT advances by 1/T per block update).
    """
    factor = 1.0
    if s.warmup_steps > 0 and step < s.warmup_steps:
        factor = (step + 1) / s.warmup_steps
    if s.lr_decay == "cosine":
        assert s.total_steps is not None  # guaranteed by __post_init__
        span = max(1, s.total_steps - s.warmup_steps)
        progress = min(1.0, max(0.0, (step - s.warmup_steps) / span))
        factor *= 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


def adamw(params: Iterable[Tensor], s: MethodSettings) -> torch.optim.AdamW:
    """The AdamW both methods use: the settings' lr and weight decay, fused into one kernel over all its tensors
    (the same update as the default per-tensor loop, to float rounding; measured 1.07x faster per NoProp-DT
    block step at the paper's width on a 2-core CPU)."""
    return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay, fused=True)


def set_lr(opt: torch.optim.Optimizer, s: MethodSettings, step: float) -> None:
    """Set every group's lr for the update that follows `step` completed updates."""
    lr = s.lr * lr_factor(step, s)
    for group in opt.param_groups:
        group["lr"] = lr
