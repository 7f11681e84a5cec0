"""Training shared by the methods that are one network under one optimiser (the backprop baseline, the CNN
reference, NoProp-CT, NoProp-FM and the example plug-in): one step per mini-batch on the sum of the method's loss
terms, checkpointed as weights, optimiser state and an update counter.

A subclass stores its settings as ``self.s``, builds its layers, calls ``use_optimiser(optimiser)``, names its loss
terms in ``TERMS`` and computes them in ``loss_terms``, and reads images in ``infer``; everything else the harness
asks of a method (``noprop.core.method.Method``) is here once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from noprop.core.method import ALL, EpochPlan, Part, StepRecord
from noprop.core.reading import eval_mode
from noprop.core.settings import CommonSettings, set_lr


class OneNetwork(nn.Module):
    """Subclasses build their layers, then call ``use_optimiser(optimiser)``. The optimised loss is the sum of the
    terms ``loss_terms`` returns; ``epoch_stats`` reports it as "loss" and each term under its name in ``TERMS``."""

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

    # ---- training: one part, the whole network -------------------------------------------------------------

    def epoch_plan(self) -> EpochPlan:
        """One pass; each batch trains the whole network once."""
        return EpochPlan()

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self._opt]

    def random_streams(self) -> list[torch.Generator]:
        """None besides torch's default one."""
        return []

    def before_step(self, part: Part = ALL) -> None:
        """The learning rate of the coming update (``lr_factor`` of the updates so far), then count it."""
        set_lr(self._opt, self.s, self._updates)
        self._updates += 1

    def train_step(self, x: Tensor, y: Tensor, part: Part = ALL) -> Tensor:
        """One optimiser step on one mini-batch; returns the detached [loss, *terms] (no host sync)."""
        terms = self.loss_terms(x, y)
        loss = terms.sum()
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.s.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.parameters(), self.s.grad_clip)
        self._opt.step()
        return torch.cat([loss.reshape(1), terms]).detach()

    def epoch_stats(self, records: Sequence[StepRecord]) -> dict[str, float]:
        """"loss" and every term (means over examples) and "steps"; NaN is returned, never raised."""
        total: Tensor | None = None
        count = 0
        for record in records:
            weighted = record.stats.double() * record.examples
            total = weighted if total is None else total + weighted
            count += record.examples
        names = ("loss", *self.TERMS)
        means = (total / count).tolist() if total is not None and count else [math.nan] * len(names)
        return {**dict(zip(names, means, strict=True)), "steps": float(len(records))}

    # ---- inference ------------------------------------------------------------------------------------------

    def infer(self, x: Tensor, generator: torch.Generator | None, deterministic: bool) -> Tensor:
        """Logits from images alone (the method's inference); called by ``predict`` in eval mode without grad."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, x: Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> Tensor:
        """Logits from images alone, in eval mode (the training mode is restored afterwards)."""
        with eval_mode(self):
            return self.infer(x, generator, deterministic)
