"""Fixed-step ODE integrators for the continuous-time variants' inference: dz/dt = f(z, t) from t = 0 to 1.

The paper integrates NoProp-CT's probability-flow ODE and NoProp-FM's velocity field with 1000 steps and does not
name the integrator (our choice: Euler, first order, one evaluation of f per step; Heun, second order, two). A
fixed step keeps the cost of inference a known number of network evaluations, which the run row records.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

INTEGRATORS = ("euler", "heun")  # the slope integrators; a method may add an exact step of its own (NoProp-CT: ddim)
Field = Callable[[Tensor, float], Tensor]  # f(z, t) -> dz/dt, t a Python float shared by the batch
Step = Callable[[Tensor, float, float], Tensor]  # (z at t0, t0, t1) -> z at t1


def evaluations(method: str, steps: int) -> int:
    """Evaluations of f that `integrate` makes (the cost of one inference pass, in network calls)."""
    return steps * (2 if method == "heun" else 1)


def march(step: Step, z0: Tensor, steps: int, t0: float = 0.0, t1: float = 1.0) -> Tensor:
    """z(t1) from z(t0) = z0 in ``steps`` equal steps of a method's own update (one network evaluation each)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    h = (t1 - t0) / steps
    z = z0
    for i in range(steps):
        z = step(z, t0 + i * h, t0 + (i + 1) * h)
    return z


def integrate(f: Field, z0: Tensor, steps: int, method: str = "euler", t0: float = 0.0, t1: float = 1.0) -> Tensor:
    """z(t1) from z(t0) = z0 in ``steps`` equal steps of Euler (z += h f(z, t)) or Heun (the trapezoid of f at both
    ends of an Euler step)."""
    if method not in INTEGRATORS:
        raise ValueError(f"unknown integrator {method!r}; use one of {', '.join(INTEGRATORS)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    h = (t1 - t0) / steps
    z = z0
    for i in range(steps):
        t = t0 + i * h
        slope = f(z, t)
        if method == "heun":
            slope = 0.5 * (slope + f(z + h * slope, t + h))
        z = z + h * slope
    return z
