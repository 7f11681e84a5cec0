"""Noise schedules in the paper's time direction: z_0 is noise, z_T is (almost) the clean label embedding.

Everything is computed in float64 and returned as float32 by default. Arrays indexed by t have length T+1 so
code reads like the paper (`a[t]`, `w[t]`); the t=0 entries of the per-block arrays (`loss_weight`, `a`, `b`,
`c`) are 0 and unused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

# ᾱ is mapped into [ALPHA_BAR_MIN, ALPHA_BAR_MAX] (our choice: the paper gives no formula) so that
# ᾱ_0 ≈ 0 (z_0 is essentially pure noise), ᾱ_T < 1 and every SNR(t) = ᾱ_t / (1 - ᾱ_t) is finite.
# ᾱ_T = 0.99 (not 0.9999) keeps SNR(T) = 99, so the last block's loss weight stays within a few times its
# neighbour's instead of ~400x (with 0.9999, w_T ≈ 4982 against w_{T-1} ≈ 13 and the reported loss is block T's).
ALPHA_BAR_MIN = 1e-4
ALPHA_BAR_MAX = 0.99
COSINE_OFFSET = 0.008  # the s of Nichol & Dhariwal's cosine schedule


@dataclass(frozen=True)
class Schedule:
    """Fixed schedule tensors, all with shape [T+1] (float32 unless asked otherwise)."""

    alpha_bar: Tensor  # ᾱ_t = ∏_{s=t..T} α_s, strictly increasing in t
    alpha: Tensor  # α_t = ᾱ_t / ᾱ_{t+1} for t < T, α_T = ᾱ_T
    snr: Tensor  # SNR(t) = ᾱ_t / (1 - ᾱ_t)
    loss_weight: Tensor  # w_t = (T/2) η (SNR(t) - SNR(t-1)), t = 1..T (Eq. 8)
    a: Tensor  # Eq. 3 coefficient of û_t
    b: Tensor  # Eq. 3 coefficient of z_{t-1}
    c: Tensor  # Eq. 3 noise variance

    @property
    def T(self) -> int:
        return self.alpha_bar.shape[0] - 1


def _alpha_bar(kind: str, T: int) -> list[float]:
    """ᾱ_0..ᾱ_T, strictly increasing, affinely mapped onto [ALPHA_BAR_MIN, ALPHA_BAR_MAX].

    cosine: the standard cosine curve f(τ) = cos²(π/2 · (τ + s)/(1 + s)) read backwards (τ = 1 - t/T), so ᾱ
    rises slowly near pure noise and flattens near the clean label. linear: ᾱ linear in t. An affine map
    rather than clipping keeps ᾱ strictly increasing for any T (clipping would create ties and hence zero
    loss weights).
    """
    if kind == "cosine":

        def f(tau: float) -> float:
            return math.cos(math.pi / 2 * (tau + COSINE_OFFSET) / (1 + COSINE_OFFSET)) ** 2

        f0, f1 = f(0.0), f(1.0)
        unit = [(f(1.0 - t / T) - f1) / (f0 - f1) for t in range(T + 1)]
    elif kind == "linear":
        unit = [t / T for t in range(T + 1)]
    else:
        raise ValueError(f"schedule={kind!r} is invalid; allowed: cosine, linear")
    return [ALPHA_BAR_MIN + (ALPHA_BAR_MAX - ALPHA_BAR_MIN) * u for u in unit]


def make_schedule(kind: str, T: int, eta: float, dtype: torch.dtype = torch.float32) -> Schedule:
    """Build the schedule for T blocks; `eta` is the paper's η (0.1 for NoProp-DT). Computed in float64,
    returned in `dtype` (float32 for the models; float64 lets tests check formulas without rounding
    noise)."""
    if T < 1:
        raise ValueError(f"T={T!r} is invalid; allowed: an int >= 1")
    ab = torch.tensor(_alpha_bar(kind, T), dtype=torch.float64, device="cpu")  # small, host-side
    # ᾱ_t = ∏_{s=t..T} α_s  =>  α_T = ᾱ_T and α_t = ᾱ_t / ᾱ_{t+1}.
    alpha = torch.empty_like(ab)
    alpha[T] = ab[T]
    alpha[:T] = ab[:T] / ab[1:]
    snr = ab / (1 - ab)
    zero = torch.zeros(1, dtype=torch.float64, device="cpu")
    # Eq. 8 weight of block t's L2 term: (T/2) η (SNR(t) - SNR(t-1)).
    w = torch.cat([zero, (T / 2) * eta * (snr[1:] - snr[:-1])])
    # Eq. 3: the Gaussian posterior q(z_t | z_{t-1}, u) of the forward (t -> t-1) noising process.
    ab_t, ab_prev, alpha_prev = ab[1:], ab[:-1], alpha[:-1]
    a = ab_t.sqrt() * (1 - alpha_prev) / (1 - ab_prev)
    b = alpha_prev.sqrt() * (1 - ab_t) / (1 - ab_prev)
    c = ((1 - ab_t) * (1 - alpha_prev) / (1 - ab_prev)).clamp_min(0.0)
    a, b, c = (torch.cat([zero, v]) for v in (a, b, c))
    return Schedule(*(v.to(dtype) for v in (ab, alpha, snr, w, a, b, c)))
