"""What NoProp-CT and NoProp-FM share: one network û(x, z_t, t) (paper Fig. 6 right) over a label embedding, one
Adam over everything, and inference that integrates an ODE in t from noise z_0 (t = 0) to z_1 (t = 1) in a fixed
number of steps, then reads a class from z_1.

A variant says how it trains (``loss_terms``), which ODE it integrates (``velocity``) and how it reads z_1
(``read_out``); the step count and integrator are settings a run row records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from noprop.continuous.net import ContinuousTimeNet
from noprop.continuous.ode import integrate, march
from noprop.core.embeddings import check_prototype_data, make_embedding
from noprop.core.one_network import OneNetwork
from noprop.core.reading import start_z
from noprop.core.settings import CommonSettings, setting


@dataclass(frozen=True)
class ContinuousSettings(CommonSettings):
    """The keys NoProp-CT and NoProp-FM share: their training length and how inference integrates the ODE."""

    continuous_epochs: int | None = setting(
        None, "epochs for noprop-ct and noprop-fm (none = epochs; the paper trains them 100 / 500 / 1000 epochs on "
        "MNIST / CIFAR-10 / CIFAR-100)", section="What to run", ge=1)
    ode_steps: int = setting(20, "noprop-ct, noprop-fm: ODE steps from noise to label at inference (the paper: "
                             "1000; 20 reaches the same accuracy, measured in results/reference)", ge=1)
    integrator: Literal["euler", "heun", "ddim"] = setting(
        "euler", "noprop-ct, noprop-fm: the ODE integrator; euler and heun step the drift (heun: second order, two "
        "network calls a step), ddim (noprop-ct only) takes DDIM's exact step with û and ε̂ held over it")

    def check(self) -> None:
        if self.integrator == "ddim" and not self.exact_step_offered:
            raise ValueError("integrator ddim is NoProp-CT's exact step; use euler or heun")

    exact_step_offered = False  # a variant whose model has ``exact_step`` says so (NoProp-CT)


class ContinuousTime(OneNetwork):
    """The embedding and network; subclasses add their own parts, then call ``start_training()``."""

    def __init__(self, s: ContinuousSettings, prototype_data: tuple[Tensor, Tensor] | None,
                 generator_seed: int) -> None:
        super().__init__()
        check_prototype_data(s, prototype_data)
        self.s = s
        self.inference_steps = s.ode_steps
        self.embedding = make_embedding(s.embedding, s.num_classes, s.embed_dim, prototype_data, generator_seed)
        self.net = ContinuousTimeNet(s.in_channels, s.image_size, s.num_classes, self.embedding.W.shape[1], s.width,
                                     s.dropout)

    def start_training(self, undecayed: Iterable[nn.Parameter] = ()) -> None:
        """Adam (not AdamW) over every parameter, with the paper's lr and weight decay, except ``undecayed`` (weight
        decay 0: parameters whose value 0 means nothing, such as a schedule's ends)."""
        kept = {id(p) for p in undecayed}
        groups = [{"params": [p for p in self.parameters() if id(p) not in kept]},
                  {"params": [p for p in self.parameters() if id(p) in kept], "weight_decay": 0.0}]
        self.use_optimiser(torch.optim.Adam([g for g in groups if g["params"]], lr=self.s.lr,
                                            weight_decay=self.s.weight_decay))

    @property
    def block_passes_per_sample(self) -> int:
        """One pass of the one network per training image."""
        return 1

    def recorded_settings(self) -> dict[str, str | int]:
        return {"ode_steps": self.inference_steps, "integrator": self.s.integrator}

    def label_embedding(self) -> Tensor:
        return self.embedding.W.detach()

    def velocity(self, h: Tensor, z: Tensor, t: float) -> Tensor:
        """dz/dt at time t for the images whose features (the image path's output) are h."""
        raise NotImplementedError

    def exact_step(self, h: Tensor, z: Tensor, t0: float, t1: float) -> Tensor:
        """z at t1 from z at t0 by the variant's own exact update (integrator ddim), for variants that have one."""
        raise NotImplementedError

    def read_out(self, z1: Tensor) -> Tensor:
        """Logits [B, classes] from the integrated z_1."""
        raise NotImplementedError

    def infer(self, x: Tensor, generator: torch.Generator | None, deterministic: bool) -> Tensor:
        """z_0 ~ N(0, I) from ``generator`` (0 for the deterministic reading), integrated to t = 1 in
        ``inference_steps`` steps of the settings' integrator, then read out. Labels are never seen."""
        z0 = start_z(x, self.embedding.W, generator, deterministic)
        h = self.net.image_path(x)  # once: the image does not change along t
        if self.s.integrator == "ddim":
            z1 = march(lambda z, t0, t1: self.exact_step(h, z, t0, t1), z0, self.inference_steps)
        else:
            z1 = integrate(lambda z, t: self.velocity(h, z, t), z0, self.inference_steps, self.s.integrator)
        return self.read_out(z1)
