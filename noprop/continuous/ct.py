"""NoProp-CT (paper §2.3 and Appendix B): one network û(x, z_t, t) for every noise level t in [0, 1], trained on a
random t per example with a learned noise schedule; inference integrates the probability-flow ODE from z_0 to z_1.

Choices the paper leaves open (ours, each a config key where it is one): inference takes Euler (or Heun) steps of
the probability-flow ODE's instantaneous drift (``velocity``), or DDIM's exact step (``integrator: ddim``,
``exact_step``); the classifier on z_1 starts as the readout of the
label embedding (``classifier_init``; torch's default with ``random``), since it gets one update per batch where
NoProp-DT's gets T; Adam's weight decay (the paper's 1e-3) applies to every parameter but the schedule's, which it
would pull towards γ = 0; the schedule's initial γ range is [−``ct_gamma_init``, ``ct_gamma_init``]. Not the paper's
loss, and recorded as such: ``ct_weight: uniform`` replaces the ½ η SNR′(t) weight by its mean over t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop.continuous.base import ContinuousSettings, ContinuousTime
from noprop.continuous.learned_schedule import LearnedSchedule
from noprop.core.readout import ClassifierInit, classifier_init_setting, readout_init_
from noprop.core.settings import setting
from noprop.core.spec import MethodSpec

# The schedule's initial γ range [−3, 3] (ᾱ from 0.047 to 0.953; our choice, the paper leaves it open), measured on
# results/reference/continuous-fashion-mnist-cpu's config (3 epochs, 6,000 images, seeds 0 / 1, stochastic /
# deterministic test accuracy %): ±2 46.35 / 76.5 and 43.7 / 72.5; ±3 56.65 / 74.35 and 49.88 / 71.25; ±5 43.77 / 71.8
# and 32.58 / 66.8 (docs/method.md).
GAMMA_INIT = 3.0


@dataclass(frozen=True)
class CTSettings(ContinuousSettings):
    """NoProp-CT's own key besides the continuous ones."""

    exact_step_offered = True  # DDIM's step (NoPropCT.exact_step)
    ct_eta: float = setting(1.0, "noprop-ct: the paper's eta, weight of its denoising loss", gt=0)
    classifier_init: ClassifierInit = classifier_init_setting()
    ct_weight: Literal["paper", "uniform"] = setting(
        "paper", "noprop-ct: the denoising term's weight over t; paper (½ η SNR'(t)) or uniform (its mean over t, "
        "½ η (SNR(1) - SNR(0)): NOT the paper's loss)")
    ct_gamma_init: float = setting(GAMMA_INIT, "noprop-ct: the learned schedule starts with γ from -g at the clean "
                                   "end to +g at the noisy end (the paper leaves it open)", gt=0)


class NoPropCT(ContinuousTime):
    """Loss per example (t ~ U(0, 1), z_t ~ q(z_t | y) = N(√ᾱ_t u_y, (1 − ᾱ_t) I)):
    CE(classifier(z_1), y) with z_1 ~ q(z_1 | y), + KL(q(z_0 | y) ‖ N(0, I)), + ½ η SNR′(t) ‖û(x, z_t, t) − u_y‖².
    One Adam over the network, classifier, schedule and (if learned) embedding."""

    TERMS = ("ce", "kl", "denoise")

    def __init__(self, s: CTSettings, prototype_data: tuple[Tensor, Tensor] | None = None,
                 generator_seed: int = 0) -> None:
        super().__init__(s, prototype_data, generator_seed)
        self.classifier = nn.Linear(self.embedding.W.shape[1], s.num_classes)
        if s.classifier_init == "readout":
            readout_init_(self.classifier, self.embedding.W)
        self.schedule = LearnedSchedule(gamma_clean=-s.ct_gamma_init, gamma_noisy=s.ct_gamma_init)
        self.start_training(undecayed=self.schedule.parameters())

    def u_hat(self, h: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """û = softmax(logits) · W_embed, a convex combination of the class embeddings (h: the image features)."""
        return self.net.from_features(h, z, t).softmax(dim=-1) @ self.embedding.W

    def loss_terms(self, x: Tensor, y: Tensor) -> Tensor:
        u = self.embedding.W[y]
        t = torch.rand(y.shape[0], device=u.device, dtype=u.dtype)
        gamma, d_gamma = self.schedule.gamma_with_derivative(t)
        ab = torch.sigmoid(-gamma).unsqueeze(-1)
        z_t = ab.sqrt() * u + (1 - ab).sqrt() * torch.randn_like(u)
        ends = self.schedule.alpha_bar_ends()
        denoise = self.denoise_weight(gamma, d_gamma, ends) * (self.u_hat(self.net.image_path(x), z_t, t) - u
                                                               ).square().sum(dim=-1)
        z_1 = ends[1].sqrt() * u + (1 - ends[1]).sqrt() * torch.randn_like(u)
        ce = F.cross_entropy(self.classifier(z_1), y)
        kl = 0.5 * (ends[0] * u.square() + (1 - ends[0]) - 1 - torch.log(1 - ends[0])).sum(dim=-1)
        return torch.stack([ce, kl.mean(), denoise.mean()])

    def denoise_weight(self, gamma: Tensor, d_gamma: Tensor, ends: Tensor) -> Tensor:
        """½ η SNR′(t) per example (the paper; SNR = exp(−γ)), or its mean over t ~ U(0, 1), ½ η (SNR(1) − SNR(0)),
        the same for every t (``ct_weight: uniform``)."""
        if self.s.ct_weight == "uniform":
            snr = ends / (1 - ends)  # SNR = ᾱ / (1 − ᾱ) at t = 0 and t = 1
            return 0.5 * self.s.ct_eta * (snr[1] - snr[0]).expand_as(gamma)
        return 0.5 * self.s.ct_eta * -d_gamma * torch.exp(-gamma)

    def recorded_settings(self) -> dict[str, str | int]:
        departure = "ct_weight uniform: not the paper's loss" if self.s.ct_weight == "uniform" else ""
        return {**super().recorded_settings(), "ct_weight": self.s.ct_weight, "departure": departure}

    def velocity(self, h: Tensor, z: Tensor, t: float) -> Tensor:
        """The probability-flow ODE's drift at t: z = √ᾱ û + √(1 − ᾱ) ε̂ differentiated in t with û and ε̂ held,
        dz/dt = ᾱ′ (û / (2√ᾱ) − ε̂ / (2√(1 − ᾱ))). The integrator takes Euler (or Heun) steps of this instantaneous
        drift: not DDIM's exact step, which holds û and ε̂ over the whole step."""
        tt = torch.full((z.shape[0],), t, device=z.device, dtype=z.dtype)
        ab, d_ab = self.schedule.alpha_bar_with_derivative(tt[:1])
        u = self.u_hat(h, z, tt)
        eps = (z - ab.sqrt() * u) / (1 - ab).sqrt()
        return d_ab * (u / (2 * ab.sqrt()) - eps / (2 * (1 - ab).sqrt()))

    def exact_step(self, h: Tensor, z: Tensor, t0: float, t1: float) -> Tensor:
        """DDIM's step (integrator ddim): û and ε̂ = (z − √ᾱ(t0) û) / √(1 − ᾱ(t0)) at t0, held over the step,
        z(t1) = √ᾱ(t1) û + √(1 − ᾱ(t1)) ε̂: the exact solution of the drift ``velocity`` integrates, for that û."""
        tt = torch.full((z.shape[0],), t0, device=z.device, dtype=z.dtype)
        ab = self.schedule.alpha_bar(torch.tensor([t0, t1], device=z.device, dtype=z.dtype))
        u = self.u_hat(h, z, tt)
        eps = (z - ab[0].sqrt() * u) / (1 - ab[0]).sqrt()
        return ab[1].sqrt() * u + (1 - ab[1]).sqrt() * eps

    def read_out(self, z1: Tensor) -> Tensor:
        """The classifier on z_1, as trained by the CE term."""
        return self.classifier(z1)


METHOD = MethodSpec(
    name="noprop-ct", factory=NoPropCT, settings=CTSettings, aliases=("ct",), baseline="backprop",
    summary="NoProp-CT: one network over continuous t with a learned noise schedule; ODE inference (paper Sec. 2.3)",
    columns={"ode_steps": "int", "integrator": "str", "ct_weight": "str", "departure": "str"},
    epochs_key="continuous_epochs",
    capturable=True,
    version=2)  # 2: the classifier's readout start, the schedule out of weight decay, and ct_gamma_init's default
