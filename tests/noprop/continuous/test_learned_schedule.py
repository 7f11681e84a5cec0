"""The learned schedule's invariants hold for any parameter values, not just at initialisation."""

import pytest
import torch

from noprop.continuous.learned_schedule import GAMMA_CLEAN, GAMMA_NOISY, LearnedSchedule

T = torch.linspace(0, 1, 201, dtype=torch.float64)


def scrambled(seed: int) -> LearnedSchedule:
    """A schedule whose every parameter is random and large: what training could leave behind."""
    schedule = LearnedSchedule(hidden=64).double()
    g = torch.Generator(device="cpu").manual_seed(seed)  # the same values on every device
    with torch.no_grad():
        for p in schedule.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype, device="cpu") * 3)
    return schedule


@pytest.mark.parametrize("seed", range(5))
def test_snr_rises_from_the_noisy_end_to_the_clean_end_whatever_the_weights(seed: int) -> None:
    s = scrambled(seed)
    gamma_bar = s.gamma_bar(T).detach()
    assert gamma_bar[0] == pytest.approx(0.0, abs=1e-9) and gamma_bar[-1] == pytest.approx(1.0, abs=1e-9)
    assert torch.all(torch.diff(gamma_bar) > 0)
    assert torch.all(torch.diff(s.snr(T).detach()) > 0)  # z_0 noise, z_1 clean: SNR increasing in t
    assert float(s.gamma1.detach()) > float(s.gamma0.detach())


@pytest.mark.parametrize("seed", range(5))
def test_derivatives_are_positive_and_match_finite_differences(seed: int) -> None:
    s = scrambled(seed)
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    d = s.snr_derivative(t)
    assert torch.all(d > 0)  # every loss weight ½ η SNR′(t) is positive
    h = 1e-6
    numeric = (s.snr(t + h) - s.snr(t - h)).detach() / (2 * h)
    torch.testing.assert_close(d.detach(), numeric, rtol=1e-5, atol=1e-9)
    ab, d_ab = s.alpha_bar_with_derivative(t)
    torch.testing.assert_close(ab, s.alpha_bar(t))
    assert torch.all(d_ab > 0)  # the probability-flow ODE moves towards the clean end
    numeric_ab = (s.alpha_bar(t + h) - s.alpha_bar(t - h)).detach() / (2 * h)
    torch.testing.assert_close(d_ab.detach(), numeric_ab, rtol=1e-5, atol=1e-9)


def test_initial_ends_and_gradients_reach_every_parameter() -> None:
    s = LearnedSchedule(hidden=16)
    ends = s.gamma(torch.tensor([0.0, 1.0])).detach()
    assert ends.tolist() == pytest.approx([GAMMA_NOISY, GAMMA_CLEAN], rel=1e-5)
    torch.testing.assert_close(s.alpha_bar_ends(), s.alpha_bar(torch.tensor([0.0, 1.0])))
    s.snr_derivative(torch.rand(8)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in s.parameters())
