"""DiffusionBlocks' noise levels (arXiv 2506.14202): the log-normal distribution of σ, its split into blocks of
equal probability mass, the blocks' widened ranges, the truncated draw, the inference levels and EDM's
preconditioning. Pure arithmetic on σ, tested against the values the paper's construction gives."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist

import torch
from torch import Tensor

P_MEAN, P_STD = -1.2, 1.2  # ln σ ~ N(P_mean, P_std²), EDM's training distribution
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0
_NORMAL = NormalDist()


def cdf(sigma: float) -> float:
    """Φ((ln σ − P_mean) / P_std): where σ sits in the noise distribution's probability mass."""
    return _NORMAL.cdf((math.log(sigma) - P_MEAN) / P_STD)


def sigma_at(q: float) -> float:
    """The σ at probability mass ``q`` (the inverse of ``cdf``)."""
    return math.exp(P_MEAN + P_STD * _NORMAL.inv_cdf(q))


@dataclass(frozen=True)
class Partition:
    """B blocks over [σ_min, σ_max], each owning an equal share of the probability mass, widened by ``overlap``
    (γ) times its width in ln σ on both sides for training."""

    blocks: int
    overlap: float

    @property
    def mass(self) -> tuple[float, float]:
        return cdf(SIGMA_MIN), cdf(SIGMA_MAX)

    def boundaries(self) -> list[float]:
        """σ_0 = σ_min < σ_1 < ... < σ_B = σ_max; block b (1-based) owns [σ_{b−1}, σ_b)."""
        lo, hi = self.mass
        inner = [sigma_at(lo + b / self.blocks * (hi - lo)) for b in range(1, self.blocks)]
        return [SIGMA_MIN, *inner, SIGMA_MAX]

    def training_range(self, b: int) -> tuple[float, float]:
        """Block b's (1-based) range widened by γ · ln(σ_hi / σ_lo) on both sides in ln σ, clipped to the whole."""
        edges = self.boundaries()
        lo, hi = math.log(edges[b - 1]), math.log(edges[b])
        pad = self.overlap * (hi - lo)
        return max(SIGMA_MIN, math.exp(lo - pad)), min(SIGMA_MAX, math.exp(hi + pad))

    @cached_property
    def _masses(self) -> list[tuple[float, float]]:
        """Each block's widened range as probability mass (Φ_lo, Φ_hi), computed once, not per training step."""
        return [(cdf(lo), cdf(hi)) for lo, hi in map(self.training_range, range(1, self.blocks + 1))]

    def draw(self, b: int, n: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """[n] σ from the log-normal truncated to block b's training range: u ~ U(Φ_lo, Φ_hi), σ = Φ⁻¹(u)."""
        lo, hi = self._masses[b - 1]
        u = lo + (hi - lo) * torch.rand(n, device=device, dtype=torch.float64)
        return torch.exp(P_MEAN + P_STD * torch.special.ndtri(u)).to(dtype)

    def levels(self, steps: int) -> list[tuple[float, int]]:
        """Inference: ``steps`` + 1 levels equally spaced in probability mass from σ_max down to σ_min, each with the
        block (1-based) whose range holds it. Owners are exact in integers: level i sits at the fraction
        (steps − i) / steps of the mass, so its block is ⌊(steps − i) · B / steps⌋ + 1, a level on a boundary going
        to the higher-noise block and σ_max to block B."""
        lo, hi = self.mass
        out = []
        for i in range(steps + 1):
            sigma = SIGMA_MAX if i == 0 else SIGMA_MIN if i == steps else sigma_at(hi - i / steps * (hi - lo))
            out.append((sigma, min(self.blocks, (steps - i) * self.blocks // steps + 1)))
        return out


@dataclass(frozen=True)
class Preconditioning:
    """EDM's scalings for σ_data (Karras et al. 2022): D = c_skip z + c_out F(c_in z, c_noise)."""

    sigma_data: float

    def scalings(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(c_skip, c_out, c_in, c_noise) for σ [B], each [B, 1] but c_noise [B]."""
        sd2, s2 = self.sigma_data ** 2, sigma.pow(2)
        c_skip = sd2 / (s2 + sd2)
        c_out = sigma * self.sigma_data / (s2 + sd2).sqrt()
        c_in = 1 / (s2 + sd2).sqrt()
        return c_skip[:, None], c_out[:, None], c_in[:, None], sigma.log() / 4

    def loss_weight(self, sigma: Tensor) -> Tensor:
        """w(σ) = (σ² + σ_d²) / (σ σ_d)²."""
        return (sigma.pow(2) + self.sigma_data ** 2) / (sigma * self.sigma_data).pow(2)
