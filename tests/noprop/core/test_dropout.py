"""noprop.core.dropout: the cheap-mask dropout behaves like nn.Dropout (rate, scaling, gradient, eval)."""

import pytest
import torch

from noprop.core.dropout import Dropout, keep_mask


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_keep_rate_matches_p(p: float) -> None:
    torch.manual_seed(0)
    n = 1_000_003  # not a multiple of the 4 lanes per draw
    kept = keep_mask(torch.Size([n]), p, torch.device("cpu")).float().mean().item()
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(kept - (1 - p)) < 5 * sd + 2**-16  # 5 sigma, plus the 1/65536 rounding of p


def test_mask_lanes_are_independent_of_position() -> None:
    torch.manual_seed(1)
    mask = keep_mask(torch.Size([400_000, 4]), 0.5, torch.device("cpu")).float()
    for lane in range(4):  # each int16 lane of a 64-bit draw must be a fair coin (no stuck sign bit)
        assert abs(mask[:, lane].mean().item() - 0.5) < 0.005


def test_training_output_is_masked_and_scaled_and_grad_follows_mask() -> None:
    torch.manual_seed(2)
    x = torch.rand(64, 32, 5, 5) + 0.5  # no zeros, so a zero output means dropped
    x.requires_grad_()
    y = Dropout(0.25).train()(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.75)


def test_eval_and_zero_p_are_identity_and_bad_p_is_refused() -> None:
    x = torch.randn(8, 4)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)


def test_seeded_masks_repeat() -> None:
    torch.manual_seed(3)
    a = keep_mask(torch.Size([1000]), 0.2, torch.device("cpu"))
    torch.manual_seed(3)
    assert torch.equal(a, keep_mask(torch.Size([1000]), 0.2, torch.device("cpu")))


def test_bf16_input_keeps_its_dtype() -> None:
    x = torch.randn(16, 16, dtype=torch.bfloat16)
    assert Dropout(0.2).train()(x).dtype == torch.bfloat16
