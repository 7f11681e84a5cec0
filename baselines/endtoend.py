"""Training shared by the methods trained end to end by back-propagation (the matched backprop baseline and the
CNN reference): one AdamW over every parameter, one step per mini-batch, cross-entropy on the model's logits."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop.method import Passes, read_back
from noprop.settings import MethodSettings, adamw, set_lr


class EndToEnd(nn.Module):
    """A classifier whose ``forward(x, generator, deterministic)`` gives logits, trained as one network.

    Subclasses build their layers, then call ``start_training()`` to create the optimiser over all of them.
    """

    s: MethodSettings

    def start_training(self) -> None:
        self._opt = adamw(self.parameters(), self.s)
        self._updates = 0

    def recorded_settings(self) -> dict[str, str]:
        return {}

    def training_state(self) -> dict:
        """Weights, optimiser state and update counter: everything needed to continue training exactly."""
        return {"model": self.state_dict(), "opt": self._opt.state_dict(), "updates": self._updates}

    def load_training_state(self, state: dict) -> None:
        """Restore what `training_state` saved (optimiser state follows each parameter's device)."""
        self.load_state_dict(state["model"])
        self._opt.load_state_dict(state["opt"])
        self._updates = int(state["updates"])

    def train_step(self, x: Tensor, y: Tensor) -> Tensor:
        """One AdamW step of the whole network on one mini-batch; returns the detached loss (no host sync)."""
        loss = F.cross_entropy(self(x), y)
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.s.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.parameters(), self.s.grad_clip)
        set_lr(self._opt, self.s, self._updates)
        self._opt.step()
        self._updates += 1
        return loss.detach()

    def fit_epoch(self, passes: Passes) -> dict[str, float]:
        """One pass of `passes()`, one AdamW step per mini-batch. Returns "loss" (= "ce", mean over examples)
        and "steps"; NaN is returned, never raised; one device sync at the end."""
        self.train()
        total: Tensor | None = None
        count = 0
        steps = 0
        for x, y in passes():
            weighted = self.train_step(x, y).double() * y.shape[0]
            total = weighted if total is None else total + weighted
            count += y.shape[0]
            steps += 1
        mean = read_back(total).item() / count if total is not None and count > 0 else math.nan
        return {"loss": mean, "ce": mean, "steps": float(steps)}

    @torch.no_grad()
    def predict(self, x: Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> Tensor:
        """Logits from images alone, in eval mode (the training mode is restored afterwards)."""
        was_training = self.training
        self.eval()
        try:
            return self(x, generator, deterministic)
        finally:
            self.train(was_training)
