"""NoProp-CT (paper §2.3 and Appendix B): one network û(x, z_t, t) for every noise level t in [0, 1], trained on a
random t per example with a learned noise schedule; inference integrates the probability-flow ODE from z_0 to z_1.

Choices the paper leaves open (ours): the probability-flow ODE is the DDIM one (û held along a step); the classifier
on z_1 starts at torch's default, as NoProp-DT's; Adam's weight decay (the paper's 1e-3) applies to every parameter,
the schedule's included; the schedule's initial ends are noprop.continuous.learned_schedule's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop.continuous.base import ContinuousSettings, ContinuousTime
from noprop.continuous.learned_schedule import LearnedSchedule
from noprop.core.settings import setting
from noprop.core.spec import MethodSpec


@dataclass(frozen=True)
class CTSettings(ContinuousSettings):
    """NoProp-CT's own key besides the continuous ones."""

    ct_eta: float = setting(1.0, "noprop-ct: the paper's eta, weight of its denoising loss", gt=0)


class NoPropCT(ContinuousTime):
    """Loss per example (t ~ U(0, 1), z_t ~ q(z_t | y) = N(√ᾱ_t u_y, (1 − ᾱ_t) I)):
    CE(classifier(z_1), y) with z_1 ~ q(z_1 | y), + KL(q(z_0 | y) ‖ N(0, I)), + ½ η SNR′(t) ‖û(x, z_t, t) − u_y‖².
    One Adam over the network, classifier, schedule and (if learned) embedding."""

    TERMS = ("ce", "kl", "denoise")

    def __init__(self, s: CTSettings, prototype_data: tuple[Tensor, Tensor] | None = None,
                 generator_seed: int = 0) -> None:
        super().__init__(s, prototype_data, generator_seed)
        self.classifier = nn.Linear(self.embedding.W.shape[1], s.num_classes)
        self.schedule = LearnedSchedule()
        self.start_training()

    def u_hat(self, h: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """û = softmax(logits) · W_embed, a convex combination of the class embeddings (h: the image features)."""
        return self.net.from_features(h, z, t).softmax(dim=-1) @ self.embedding.W

    def loss_terms(self, x: Tensor, y: Tensor) -> Tensor:
        u = self.embedding.W[y]
        t = torch.rand(y.shape[0], device=u.device, dtype=u.dtype)
        gamma, d_gamma = self.schedule.gamma_with_derivative(t)
        ab = torch.sigmoid(-gamma).unsqueeze(-1)
        z_t = ab.sqrt() * u + (1 - ab).sqrt() * torch.randn_like(u)
        weight = 0.5 * self.s.ct_eta * -d_gamma * torch.exp(-gamma)  # ½ η SNR′(t), SNR = exp(−γ)
        denoise = weight * (self.u_hat(self.net.image_path(x), z_t, t) - u).square().sum(dim=-1)
        ends = self.schedule.alpha_bar_ends()
        z_1 = ends[1].sqrt() * u + (1 - ends[1]).sqrt() * torch.randn_like(u)
        ce = F.cross_entropy(self.classifier(z_1), y)
        kl = 0.5 * (ends[0] * u.square() + (1 - ends[0]) - 1 - torch.log(1 - ends[0])).sum(dim=-1)
        return torch.stack([ce, kl.mean(), denoise.mean()])

    def velocity(self, h: Tensor, z: Tensor, t: float) -> Tensor:
        """The probability-flow (DDIM) ODE: z = √ᾱ û + √(1 − ᾱ) ε̂ moved along t with û and ε̂ held, so
        dz/dt = ᾱ′ (û / (2√ᾱ) − ε̂ / (2√(1 − ᾱ)))."""
        tt = torch.full((z.shape[0],), t, device=z.device, dtype=z.dtype)
        ab, d_ab = self.schedule.alpha_bar_with_derivative(tt[:1])
        u = self.u_hat(h, z, tt)
        eps = (z - ab.sqrt() * u) / (1 - ab).sqrt()
        return d_ab * (u / (2 * ab.sqrt()) - eps / (2 * (1 - ab).sqrt()))

    def read_out(self, z1: Tensor) -> Tensor:
        """The classifier on z_1, as trained by the CE term."""
        return self.classifier(z1)


METHOD = MethodSpec(
    name="noprop-ct", factory=NoPropCT, settings=CTSettings, aliases=("ct",), baseline="backprop",
    summary="NoProp-CT: one network over continuous t with a learned noise schedule; ODE inference (paper Sec. 2.3)",
    columns={"ode_steps": "int", "integrator": "str"}, epochs_key="continuous_epochs")
