"""NoProp-CT (paper §2.3 and Appendix B): one network û(x, z_t, t) for every t in [0, 1], trained on a random
noise level per example, with a learned noise schedule; inference integrates an ODE from z_0 to z_1.

Not yet registered as a method of the harness (issue 14 in progress): it has the ``Method`` interface and its
tests, and the run rows for its ODE settings come next.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop.ct_net import ContinuousTimeNet
from noprop.embeddings import check_prototype_data, make_embedding
from noprop.learned_schedule import LearnedSchedule
from noprop.method import Passes, read_back
from noprop.ode import integrate
from noprop.settings import MethodSettings, set_lr

CT_ETA = 1.0  # the paper's η for NoProp-CT
ODE_STEPS = 100  # inference steps (the paper: 1000; to be set from the steps-vs-accuracy sweep)


class NoPropCT(nn.Module):
    """Loss per example (t ~ U(0, 1), z_t ~ q(z_t | y) = N(√ᾱ_t u_y, (1 − ᾱ_t) I)):
    CE(classifier(z_1), y) with z_1 ~ q(z_1 | y), + KL(q(z_0 | y) ‖ N(0, I)), + ½ η SNR′(t) ‖û(x, z_t, t) − u_y‖².
    One Adam over the network, classifier, schedule and (if learned) embedding, as the paper (no weight decay)."""

    def __init__(self, s: MethodSettings, prototype_data: tuple[Tensor, Tensor] | None = None,
                 generator_seed: int = 0, eta: float = CT_ETA, steps: int = ODE_STEPS,
                 integrator: str = "euler") -> None:
        super().__init__()
        check_prototype_data(s, prototype_data)
        self.s, self.eta, self.steps, self.integrator = s, eta, steps, integrator
        self.embedding = make_embedding(s.embedding, s.num_classes, s.embed_dim, prototype_data, generator_seed)
        d = self.embedding.W.shape[1]
        self.net = ContinuousTimeNet(s.in_channels, s.image_size, s.num_classes, d, s.width, s.dropout)
        self.classifier = nn.Linear(d, s.num_classes)
        self.schedule = LearnedSchedule()
        self._opt = torch.optim.Adam(self.parameters(), lr=s.lr)
        self._updates = 0

    @property
    def block_passes_per_sample(self) -> int:
        """One pass of the one network per training image."""
        return 1

    def recorded_settings(self) -> dict[str, str]:
        return {}

    def label_embedding(self) -> Tensor:
        return self.embedding.W.detach()

    def u_hat(self, x: Tensor, z: Tensor, t: Tensor) -> Tensor:
        return self.net(x, z, t).softmax(dim=-1) @ self.embedding.W

    def loss_terms(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mean CE, KL and weighted denoising terms of one mini-batch."""
        u = self.embedding.W[y]
        t = torch.rand(y.shape[0], device=u.device, dtype=u.dtype)
        ab = self.schedule.alpha_bar(t).unsqueeze(-1)
        z_t = ab.sqrt() * u + (1 - ab).sqrt() * torch.randn_like(u)
        weight = 0.5 * self.eta * self.schedule.snr_derivative(t)
        denoise = weight * (self.u_hat(x, z_t, t) - u).square().sum(dim=-1)
        ends = self.schedule.alpha_bar(torch.tensor([0.0, 1.0], device=u.device, dtype=u.dtype))
        z_1 = ends[1].sqrt() * u + (1 - ends[1]).sqrt() * torch.randn_like(u)
        ce = F.cross_entropy(self.classifier(z_1), y)
        kl = 0.5 * (ends[0] * u.square() + (1 - ends[0]) - 1 - torch.log(1 - ends[0])).sum(dim=-1)
        return ce, kl.mean(), denoise.mean()

    def train_step(self, x: Tensor, y: Tensor) -> Tensor:
        """One Adam step; returns the detached [loss, ce, kl, denoise] (no host sync)."""
        ce, kl, denoise = self.loss_terms(x, y)
        loss = ce + kl + denoise
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.s.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.parameters(), self.s.grad_clip)
        set_lr(self._opt, self.s, self._updates)
        self._opt.step()
        self._updates += 1
        return torch.stack([loss, ce, kl, denoise]).detach()

    def fit_epoch(self, passes: Passes) -> dict[str, float]:
        """One pass, one step per mini-batch; means weighted by examples. NaN is returned, never raised."""
        self.train()
        total: Tensor | None = None
        count = steps = 0
        for x, y in passes():
            weighted = self.train_step(x, y).double() * y.shape[0]
            total = weighted if total is None else total + weighted
            count, steps = count + y.shape[0], steps + 1
        means = (read_back(total) / count).tolist() if total is not None and count else [math.nan] * 4
        return {**dict(zip(("loss", "ce", "kl", "denoise"), means, strict=True)), "steps": float(steps)}

    def velocity(self, x: Tensor, z: Tensor, t: float) -> Tensor:
        """The probability-flow (DDIM) ODE: z = √ᾱ û + √(1 − ᾱ) ε̂ moved along t with û and ε̂ held, so
        dz/dt = ᾱ′ (û / (2√ᾱ) − ε̂ / (2√(1 − ᾱ)))."""
        tt = torch.full((z.shape[0],), t, device=z.device, dtype=z.dtype)
        with torch.enable_grad():
            tg = tt[:1].clone().requires_grad_(True)
            ab_g = self.schedule.alpha_bar(tg)
            (d_ab,) = torch.autograd.grad(ab_g.sum(), tg)
        ab = ab_g.detach()
        u = self.u_hat(x, z, tt)
        eps = (z - ab.sqrt() * u) / (1 - ab).sqrt()
        return d_ab * (u / (2 * ab.sqrt()) - eps / (2 * (1 - ab).sqrt()))

    @torch.no_grad()
    def predict(self, x: Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> Tensor:
        """Logits of classifier(z_1): z_0 ~ N(0, I) from ``generator`` (0 when ``deterministic``), integrated to
        t = 1 in ``steps`` steps of ``integrator``. Labels are never seen."""
        was_training = self.training
        self.eval()
        try:
            shape = (x.shape[0], self.embedding.W.shape[1])
            z0 = (torch.zeros(shape, device=x.device) if deterministic
                  else torch.randn(shape, device=x.device, generator=generator))
            z1 = integrate(lambda z, t: self.velocity(x, z, t), z0, self.steps, self.integrator)
            return self.classifier(z1)
        finally:
            self.train(was_training)

    def training_state(self) -> dict:
        return {"model": self.state_dict(), "opt": self._opt.state_dict(), "updates": self._updates}

    def load_training_state(self, state: dict) -> None:
        self.load_state_dict(state["model"])
        self._opt.load_state_dict(state["opt"])
        self._updates = int(state["updates"])
