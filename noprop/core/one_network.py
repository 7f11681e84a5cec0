"""Training shared by the methods that are one network under one optimiser (the backprop baseline, the CNN
reference, NoProp-CT and NoProp-FM): one step per mini-batch on the sum of the method's loss terms, checkpointed
as weights, optimiser state and an update counter.

A subclass names its loss terms in ``TERMS`` and computes them in ``loss_terms``; everything else is here once.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from noprop.core.method import Passes, read_back
from noprop.core.reading import eval_mode
from noprop.core.settings import CommonSettings, set_lr


class OneNetwork(nn.Module):
    """Subclasses build their layers, then call ``use_optimiser(optimiser)``. The optimised loss is the sum of the
    terms ``loss_terms`` returns; ``fit_epoch`` reports it as "loss" and each term under its name in ``TERMS``."""

    s: CommonSettings
    TERMS: tuple[str, ...] = ("ce",)

    def use_optimiser(self, optimiser: torch.optim.Optimizer) -> None:
        self._opt = optimiser
        self._updates = 0

    def recorded_settings(self) -> dict[str, str | int]:
        return {}

    def loss_terms(self, x: Tensor, y: Tensor) -> Tensor:
        """The mean of each term of ``TERMS`` over the mini-batch, as one 1-D tensor."""
        raise NotImplementedError

    def training_state(self) -> dict:
        """Weights, optimiser state and update counter: everything needed to continue training exactly."""
        return {"model": self.state_dict(), "opt": self._opt.state_dict(), "updates": self._updates}

    def load_training_state(self, state: dict) -> None:
        """Restore what `training_state` saved (optimiser state follows each parameter's device)."""
        self.load_state_dict(state["model"])
        self._opt.load_state_dict(state["opt"])
        self._updates = int(state["updates"])

    def train_step(self, x: Tensor, y: Tensor) -> Tensor:
        """One optimiser step on one mini-batch; returns the detached [loss, *terms] (no host sync)."""
        terms = self.loss_terms(x, y)
        loss = terms.sum()
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.s.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.parameters(), self.s.grad_clip)
        set_lr(self._opt, self.s, self._updates)
        self._opt.step()
        self._updates += 1
        return torch.cat([loss.reshape(1), terms]).detach()

    def fit_epoch(self, passes: Passes) -> dict[str, float]:
        """One pass of `passes()`, one step per mini-batch. Returns "loss" and every term (means over examples)
        and "steps"; NaN is returned, never raised; one device sync at the end."""
        self.train()
        total: Tensor | None = None
        count = steps = 0
        for x, y in passes():
            weighted = self.train_step(x, y).double() * y.shape[0]
            total = weighted if total is None else total + weighted
            count, steps = count + y.shape[0], steps + 1
        names = ("loss", *self.TERMS)
        means = (read_back(total) / count).tolist() if total is not None and count else [math.nan] * len(names)
        return {**dict(zip(names, means, strict=True)), "steps": float(steps)}

    def infer(self, x: Tensor, generator: torch.Generator | None, deterministic: bool) -> Tensor:
        """Logits from images alone (the method's inference); called by ``predict`` in eval mode without grad."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, x: Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> Tensor:
        """Logits from images alone, in eval mode (the training mode is restored afterwards)."""
        with eval_mode(self):
            return self.infer(x, generator, deterministic)
