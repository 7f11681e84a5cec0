"""NoProp-CT's learned noise schedule (paper Appendix B, after Kingma et al.'s variational diffusion models).

SNR(t) = exp(−γ(t)), γ(t) = γ0 + (γ1 − γ0)(1 − γ̄(t)), with γ̄ a monotone increasing network normalised so that
γ̄(0) = 0 and γ̄(1) = 1. In the paper's time direction z_0 is noise and z_1 the clean label embedding, so SNR rises
with t: γ(0) = γ1 is the noisy end and γ(1) = γ0 the clean end, and γ1 > γ0. ᾱ(t) = SNR / (1 + SNR) = sigmoid(−γ).

Both properties hold for any parameter values, not just at initialisation: every weight of γ̄'s network is the
softplus of a free parameter (positive, so the network is increasing), and γ1 = γ0 + softplus(span) (our
parametrisation of "γ0 and γ1 trained").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GAMMA_CLEAN, GAMMA_NOISY = -5.0, 5.0  # initial γ0, γ1 by default: ᾱ(1) ≈ 0.993, ᾱ(0) ≈ 0.0067 (NoProp-CT sets its own)
HIDDEN = 1024  # width of γ̄'s hidden layer, as in variational diffusion models (our choice)


class PositiveLinear(nn.Module):
    """y = x · softplus(V)ᵀ (+ b): a linear layer whose weights are positive whatever V is."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True) -> None:
        super().__init__()
        here = torch.get_default_device()  # a module is built where its caller builds, as torch's layers are
        self.raw = nn.Parameter(torch.randn(n_out, n_in, device=here) * 0.5 - 1.0)
        self.bias = nn.Parameter(torch.zeros(n_out, device=here)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, F.softplus(self.raw), self.bias)


class MonotoneNet(nn.Module):
    """g(t) = l1(t) + l3(sigmoid(l2(l1(t)))), all weights positive: strictly increasing in t. l3 has no bias (γ̄'s
    normalisation would cancel it)."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.l1, self.l2 = PositiveLinear(1, 1), PositiveLinear(1, hidden)
        self.l3 = PositiveLinear(hidden, 1, bias=False)

    def forward(self, t: Tensor) -> Tensor:
        return self.with_derivative(t)[0]

    def with_derivative(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """g(t) and dg/dt, the derivative in closed form (the chain rule through the three layers), differentiable
        in the weights by plain autograd: no nested autograd.grad, which FLOP counting and module hooks cannot
        follow."""
        h = self.l1(t.unsqueeze(-1))
        s = torch.sigmoid(self.l2(h))
        w1, w2, w3 = (F.softplus(layer.raw) for layer in (self.l1, self.l2, self.l3))
        slope = w1[0, 0] * (1 + (s * (1 - s) * w2[:, 0]) @ w3[0])
        return (h + self.l3(s)).squeeze(-1), slope.reshape(t.shape)


class LearnedSchedule(nn.Module):
    """γ(t), SNR(t), ᾱ(t) and SNR′(t) for t in [0, 1] (tensors of any shape), differentiable in the parameters."""

    def __init__(self, hidden: int = HIDDEN, gamma_clean: float = GAMMA_CLEAN, gamma_noisy: float = GAMMA_NOISY
                 ) -> None:
        super().__init__()
        self.net = MonotoneNet(hidden)
        here = torch.get_default_device()
        self.gamma0 = nn.Parameter(torch.tensor(gamma_clean, device=here))
        span = torch.tensor(gamma_noisy - gamma_clean, device=here)
        self.span = nn.Parameter(span + torch.log(-torch.expm1(-span)))  # softplus⁻¹, so γ1 starts at GAMMA_NOISY

    @property
    def gamma1(self) -> Tensor:
        return self.gamma0 + F.softplus(self.span)

    def _net_ends(self, t: Tensor) -> Tensor:
        return self.net(torch.arange(2, device=t.device, dtype=t.dtype))  # [0, 1], made on the device: no host copy

    def gamma_bar(self, t: Tensor) -> Tensor:
        """The network normalised to γ̄(0) = 0, γ̄(1) = 1 (increasing)."""
        ends = self._net_ends(t)
        return (self.net(t) - ends[0]) / (ends[1] - ends[0])

    def gamma(self, t: Tensor) -> Tensor:
        return self.gamma0 + (self.gamma1 - self.gamma0) * (1 - self.gamma_bar(t))

    def gamma_with_derivative(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """γ(t) and γ′(t) = −(γ1 − γ0) γ̄′(t) < 0 from one pass of the network (in the graph, so a loss weighted by
        them trains the schedule)."""
        ends = self._net_ends(t)
        g, slope = self.net.with_derivative(t)
        scale = (self.gamma1 - self.gamma0) / (ends[1] - ends[0])
        return self.gamma1 - scale * (g - ends[0]), -scale * slope

    def snr(self, t: Tensor) -> Tensor:
        return torch.exp(-self.gamma(t))

    def alpha_bar(self, t: Tensor) -> Tensor:
        return torch.sigmoid(-self.gamma(t))

    def alpha_bar_ends(self) -> Tensor:
        """[ᾱ(0), ᾱ(1)] = sigmoid(−[γ1, γ0]): γ̄ is 0 and 1 there by construction, so no network pass."""
        return torch.sigmoid(-torch.stack([self.gamma1, self.gamma0]))

    def snr_derivative(self, t: Tensor) -> Tensor:
        """dSNR/dt = −γ′(t) SNR(t) > 0."""
        gamma, d_gamma = self.gamma_with_derivative(t)
        return -d_gamma * torch.exp(-gamma)

    def alpha_bar_with_derivative(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """ᾱ(t) and dᾱ/dt = −ᾱ (1 − ᾱ) γ′(t) > 0 (ᾱ = sigmoid(−γ))."""
        gamma, d_gamma = self.gamma_with_derivative(t)
        ab = torch.sigmoid(-gamma)
        return ab, -ab * (1 - ab) * d_gamma
