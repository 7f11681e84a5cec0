"""NoProp-FM (paper §2.3): flow matching on label embeddings. The network of NoProp-CT gives a velocity
v = logits · W_embed (no softmax); inference integrates dz/dt = v from noise z_0 to z_1 and predicts the class whose
embedding is nearest to z_1.

Choices the paper leaves open (ours): the path noise σ (``fm_sigma``, small); with a learned or prototype embedding,
p̂(y | z) is a softmax over negative squared distances to the class embeddings; the loss sums the squared error over
the embedding's dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from noprop.continuous.base import ContinuousSettings, ContinuousTime
from noprop.core.settings import setting
from noprop.core.spec import MethodSpec


def path_point(u: Tensor, z0: Tensor, t: Tensor, sigma: float, noise: Tensor) -> Tensor:
    """z_t = t u_y + (1 − t) z_0 + σ ε: the straight path from noise to the label embedding, blurred by σ."""
    t = t.unsqueeze(-1)
    return t * u + (1 - t) * z0 + sigma * noise


def target_velocity(u: Tensor, z0: Tensor) -> Tensor:
    """d z_t / dt along the straight path: u_y − z_0, the same at every t."""
    return u - z0


def nearest_class_logits(z: Tensor, W: Tensor) -> Tensor:
    """−‖z − W_c‖² per class: its argmax is the nearest class embedding, its softmax the paper's p̂(y | z)."""
    return -torch.cdist(z, W).square()


@dataclass(frozen=True)
class FMSettings(ContinuousSettings):
    """NoProp-FM's own key besides the continuous ones."""

    fm_sigma: float = setting(0.1, "noprop-fm: noise around the straight path from z_0 to the label (the paper: "
                              "'small'; our choice)", ge=0)


class NoPropFM(ContinuousTime):
    """Loss per example (t ~ U(0, 1), z_0 ~ N(0, I)): ‖v(x, z_t, t) − (u_y − z_0)‖², plus, when the embedding is
    trained, −log p̂(y | z_t + (1 − t) v) (the extrapolated end of the path), which keeps the embeddings apart."""

    TERMS = ("flow", "ce")

    def __init__(self, s: FMSettings, prototype_data: tuple[Tensor, Tensor] | None = None,
                 generator_seed: int = 0) -> None:
        super().__init__(s, prototype_data, generator_seed)
        self.start_training()

    def v(self, h: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """v = logits · W_embed (h: the image features)."""
        return self.net.from_features(h, z, t) @ self.embedding.W

    def loss_terms(self, x: Tensor, y: Tensor) -> Tensor:
        W = self.embedding.W
        u = W[y]
        t = torch.rand(y.shape[0], device=u.device, dtype=u.dtype)
        z0 = torch.randn_like(u)
        z_t = path_point(u, z0, t, self.s.fm_sigma, torch.randn_like(u))
        v = self.v(self.net.image_path(x), z_t, t)
        flow = (v - target_velocity(u, z0)).square().sum(dim=-1).mean()
        if not W.requires_grad:  # one-hot: the embedding cannot collapse
            return torch.stack([flow, torch.zeros_like(flow)])
        z_end = z_t + (1 - t).unsqueeze(-1) * v
        return torch.stack([flow, F.cross_entropy(nearest_class_logits(z_end, W), y)])

    def velocity(self, h: Tensor, z: Tensor, t: float) -> Tensor:
        return self.v(h, z, torch.full((z.shape[0],), t, device=z.device, dtype=z.dtype))

    def read_out(self, z1: Tensor) -> Tensor:
        return nearest_class_logits(z1, self.embedding.W)


METHOD = MethodSpec(
    name="noprop-fm", factory=NoPropFM, settings=FMSettings, aliases=("fm",), baseline="backprop",
    summary="NoProp-FM: one network learning the flow from noise to the label embedding; ODE inference (Sec. 2.3)",
    columns={"ode_steps": "int", "integrator": "str"}, epochs_key="continuous_epochs", capturable=True)
