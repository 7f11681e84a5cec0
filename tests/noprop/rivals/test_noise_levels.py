"""DiffusionBlocks' noise levels give the values the paper's construction gives (docs/rivals.md §2)."""

import math

import pytest
import torch

from noprop.rivals.noise_levels import SIGMA_MAX, SIGMA_MIN, Partition, Preconditioning, cdf, sigma_at


@pytest.mark.parametrize("blocks, expected", [
    (3, [0.002, 0.180, 0.505, 80]),
    (10, [0.002, 0.065, 0.110, 0.161, 0.222, 0.301, 0.408, 0.565, 0.827, 1.402, 80]),
])
def test_equal_mass_boundaries(blocks: int, expected: list[float]) -> None:
    edges = Partition(blocks, 0.1).boundaries()
    assert [round(s, 3) for s in edges] == pytest.approx(expected)
    masses = [cdf(b) - cdf(a) for a, b in zip(edges, edges[1:], strict=False)]
    assert masses == pytest.approx([masses[0]] * blocks)


def test_widened_ranges_overlap_their_neighbours_and_stay_inside() -> None:
    p = Partition(3, 0.1)
    edges = p.boundaries()
    for b in range(1, 4):
        lo, hi = p.training_range(b)
        assert SIGMA_MIN <= lo <= edges[b - 1] and edges[b] <= hi <= SIGMA_MAX
        if 1 < b < 3:  # an inner block widens by γ times its width in ln σ on both sides
            width = math.log(edges[b] / edges[b - 1])
            assert math.log(edges[b - 1] / lo) == pytest.approx(0.1 * width)
            assert math.log(hi / edges[b]) == pytest.approx(0.1 * width)
    assert Partition(3, 0.0).training_range(2) == pytest.approx((edges[1], edges[2]))


def test_draws_stay_in_the_block_range_and_follow_the_truncated_log_normal() -> None:
    torch.manual_seed(0)
    p = Partition(3, 0.1)
    lo, hi = p.training_range(2)
    sigma = p.draw(2, 20_000, torch.device("cpu"), torch.float64)
    assert lo <= float(sigma.min()) and float(sigma.max()) <= hi
    mid = sigma_at((cdf(lo) + cdf(hi)) / 2)  # the truncated distribution's median
    assert float((sigma < mid).double().mean()) == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("blocks, steps, owners", [(3, 3, [3, 3, 2, 1]), (10, 10, [10, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]),
                                                   (3, 4, [3, 3, 2, 1, 1]), (3, 1, [3, 1])])
def test_inference_levels_run_from_sigma_max_to_sigma_min_each_by_its_owner(blocks: int, steps: int,
                                                                           owners: list[int]) -> None:
    p = Partition(blocks, 0.1)
    levels = p.levels(steps)
    sigmas = [s for s, _ in levels]
    assert sigmas[0] == SIGMA_MAX and sigmas[-1] == SIGMA_MIN and sigmas == sorted(sigmas, reverse=True)
    assert [b for _, b in levels] == owners
    edges = p.boundaries()
    for sigma, b in levels[1:-1]:  # a level on a boundary belongs to the higher-noise block
        assert edges[b - 1] * (1 - 1e-9) <= sigma <= edges[b] * (1 + 1e-9)


def test_edm_preconditioning_identities() -> None:
    pre = Preconditioning(0.5)
    sigma = torch.tensor([0.002, 0.3, 80.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = pre.scalings(sigma)
    sd = 0.5
    torch.testing.assert_close(c_in.squeeze(1) ** 2 * (sigma**2 + sd**2), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(c_skip.squeeze(1), sd**2 / (sigma**2 + sd**2))
    torch.testing.assert_close(pre.loss_weight(sigma), 1 / c_out.squeeze(1) ** 2)  # w(σ) = 1 / c_out²
    torch.testing.assert_close(c_noise, sigma.log() / 4)
