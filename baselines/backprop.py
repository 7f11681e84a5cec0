"""The matched backprop baseline (paper Eqs. 17-19): NoProp-DT's blocks, embedding and classifier chained
end to end and trained by ordinary back-propagation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop.method import Passes, read_back
from noprop.settings import MethodSettings, adamw, set_lr
from noprop.stack import DenoiserStack

MIX_INIT = 1.0  # w_t at init: a_t = tanh(1) ≈ 0.76, a moderate step towards û (our choice; the paper is silent)


class BackpropBaseline(DenoiserStack):
    """z_0 ~ N(0, I); z_t = (1 - a_t) z_{t-1} + a_t û_t(x, z_{t-1}), a_t = tanh(w_t) with learned w_t (Eqs.
    17-19); logits = classifier(z_T); cross-entropy (our choice of loss); one AdamW over all parameters
    (the T mixing scalars included, weight decay too), clipping over all parameters."""

    def __init__(self, s: MethodSettings, prototype_data: tuple[Tensor, Tensor] | None = None,
                 generator_seed: int = 0) -> None:
        super().__init__(s, prototype_data, generator_seed)
        self.mix = nn.Parameter(torch.full((s.T,), MIX_INIT))
        self._opt = adamw(self.parameters(), s)
        self._updates = 0

    @property
    def block_passes_per_sample(self) -> int:
        """Every image passes through the T blocks once, forward and backward."""
        return self.s.T

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

    def forward(self, x: Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> Tensor:
        """Logits; z_0 ~ N(0, I) from ``generator``, or z_0 = 0 (its mean) when ``deterministic``."""
        W = self.embedding.W
        shape = (x.shape[0], self.dim)
        if deterministic:
            z = torch.zeros(shape, device=x.device, dtype=W.dtype)
        else:
            z = torch.randn(shape, device=x.device, dtype=W.dtype, generator=generator)
        a = torch.tanh(self.mix)
        for t, block in enumerate(self.blocks):
            _, u_hat = block(x, z, W)
            z = (1 - a[t]) * z + a[t] * u_hat  # Eq. 17-19
        return self.classifier(z)

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
        """Logits from images alone; z_0 is drawn from `generator` or torch's default generator (z_0 = 0 when
        ``deterministic``)."""
        was_training = self.training
        self.eval()
        try:
            return self(x, generator, deterministic)
        finally:
            self.train(was_training)
