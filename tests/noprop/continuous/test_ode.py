"""The integrators reach the analytic solution of linear ODEs at their order."""

import math

import pytest
import torch

from noprop.continuous.ode import evaluations, integrate


def error(method: str, steps: int) -> float:
    """dz/dt = -1.5 z + t, z(0) = 1: z(1) = c e^{-1.5} + t/1.5 - 1/2.25 with c = 1 + 1/2.25."""
    exact = (1 + 1 / 2.25) * math.exp(-1.5) + 1 / 1.5 - 1 / 2.25
    z = integrate(lambda z, t: -1.5 * z + t, torch.ones(3, dtype=torch.float64), steps, method)
    return float((z - exact).abs().max())


@pytest.mark.parametrize("method, order", [("euler", 1), ("heun", 2)])
def test_global_error_falls_at_the_integrators_order(method: str, order: int) -> None:
    ratios = [error(method, n) / error(method, 2 * n) for n in (50, 100, 200)]
    assert ratios == pytest.approx([2**order] * 3, rel=0.05)


def test_heun_beats_euler_at_equal_evaluations() -> None:
    assert error("heun", 50) < error("euler", 100) / 10


def test_cost_and_bad_arguments() -> None:
    assert evaluations("euler", 10) == 10 and evaluations("heun", 10) == 20
    with pytest.raises(ValueError, match="unknown integrator 'rk4'"):
        integrate(lambda z, t: z, torch.ones(1), 4, "rk4")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        integrate(lambda z, t: z, torch.ones(1), 0)
