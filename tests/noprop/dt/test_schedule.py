"""The noise schedule runs in the paper's direction with finite positive weights and Eq. 3 coefficients."""

import math

import pytest
import torch

from noprop.dt.schedule import make_schedule

KINDS = ["cosine", "linear"]
TS = [1, 2, 3, 10, 50, 100]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T", TS)
def test_alpha_bar_runs_from_noise_to_almost_clean(kind: str, T: int) -> None:
    ab = make_schedule(kind, T, 0.1).alpha_bar.double()
    assert ab.shape == (T + 1,)
    assert torch.all(ab[1:] > ab[:-1]), "ᾱ must increase with t (z_0 noise, z_T clean)"
    assert ab[0] < 0.01
    assert 0.99 < ab[T] < 1.0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T", TS)
def test_alpha_bar_is_product_of_alphas_up_to_T(kind: str, T: int) -> None:
    sched = make_schedule(kind, T, 0.1)
    ab, alpha = sched.alpha_bar.double(), sched.alpha.double()
    for t in range(T + 1):
        assert math.isclose(float(alpha[t:].prod()), float(ab[t]), rel_tol=1e-4)
    assert torch.all((alpha > 0) & (alpha < 1))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T", TS)
def test_snr_and_loss_weights_finite_and_positive(kind: str, T: int) -> None:
    eta = 0.1
    sched = make_schedule(kind, T, eta)
    snr, w = sched.snr.double(), sched.loss_weight.double()
    assert torch.all(torch.isfinite(snr)) and torch.all(snr[1:] > snr[:-1])
    assert torch.all(torch.isfinite(w[1:])) and torch.all(w[1:] > 0)
    ab = sched.alpha_bar.double()
    for t in range(1, T + 1):
        snr_t, snr_prev = ab[t] / (1 - ab[t]), ab[t - 1] / (1 - ab[t - 1])
        assert math.isclose(float(w[t]), T / 2 * eta * float(snr_t - snr_prev), rel_tol=1e-3)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T", [2, 10, 50])
def test_eq3_coefficients_match_direct_formulas(kind: str, T: int) -> None:
    sched = make_schedule(kind, T, 0.1, dtype=torch.float64)
    ab = sched.alpha_bar.tolist()
    for t in range(1, T + 1):
        alpha_prev = ab[t - 1] / ab[t]  # from ᾱ_{t-1} = α_{t-1} ᾱ_t
        a = math.sqrt(ab[t]) * (1 - alpha_prev) / (1 - ab[t - 1])
        b = math.sqrt(alpha_prev) * (1 - ab[t]) / (1 - ab[t - 1])
        c = (1 - ab[t]) * (1 - alpha_prev) / (1 - ab[t - 1])
        assert math.isclose(float(sched.a[t]), a, rel_tol=1e-9)
        assert math.isclose(float(sched.b[t]), b, rel_tol=1e-9)
        assert math.isclose(float(sched.c[t]), c, rel_tol=1e-9)
        assert float(sched.c[t]) >= 0
    f32 = make_schedule(kind, T, 0.1)
    for name in ("a", "b", "c"):
        torch.testing.assert_close(getattr(f32, name), getattr(sched, name).float(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_eq3_step_with_perfect_prediction_preserves_marginals(kind: str) -> None:
    """If z_{t-1} ~ q(z_{t-1}|y) and û = u_y, Eq. 3 must give z_t ~ q(z_t|y) (a posterior step)."""
    T = 10
    sched = make_schedule(kind, T, 0.1)
    ab, a, b, c = (v.double() for v in (sched.alpha_bar, sched.a, sched.b, sched.c))
    for t in range(1, T + 1):
        mean = a[t] + b[t] * ab[t - 1].sqrt()
        var = b[t] ** 2 * (1 - ab[t - 1]) + c[t]
        assert math.isclose(float(mean), float(ab[t].sqrt()), rel_tol=1e-4)
        assert math.isclose(float(var), float(1 - ab[t]), rel_tol=1e-3, abs_tol=1e-7)


def test_unknown_schedule_is_rejected() -> None:
    with pytest.raises(ValueError, match="sigmoid"):
        make_schedule("sigmoid", 10, 0.1)
