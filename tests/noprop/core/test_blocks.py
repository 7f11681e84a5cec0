"""DenoiseBlock: shapes, û a convex combination of embedding rows, width scaling."""

import pytest
import torch

from noprop.core.blocks import DenoiseBlock
from noprop.core.embeddings import LearnedEmbedding


def test_vector_label_block_outputs_convex_combination_of_rows() -> None:
    torch.manual_seed(0)
    W = LearnedEmbedding(5, 8, seed=0).W.detach()  # orthonormal rows: û @ W.T recovers the mixing weights
    block = DenoiseBlock(1, 8, 5, 8, image_label=False, width=0.25, dropout=0.0)
    logits, u_hat = block(torch.randn(6, 1, 8, 8), torch.randn(6, 8), W)
    assert logits.shape == (6, 5) and u_hat.shape == (6, 8)
    weights = u_hat @ W.T
    torch.testing.assert_close(weights, logits.softmax(-1), atol=1e-5, rtol=0)
    assert torch.all(weights >= -1e-6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(6), atol=1e-5, rtol=0)


def test_one_hot_output_is_a_probability_vector() -> None:
    block = DenoiseBlock(3, 8, 4, 4, image_label=False, width=0.25, dropout=0.2)
    _, u_hat = block(torch.randn(3, 3, 8, 8), torch.randn(3, 4), torch.eye(4))
    assert torch.all(u_hat >= 0)
    torch.testing.assert_close(u_hat.sum(-1), torch.ones(3))


def test_image_label_block_takes_flat_image_sized_z() -> None:
    W = torch.randn(4, 3 * 8 * 8)
    block = DenoiseBlock(3, 8, 4, 3 * 8 * 8, image_label=True, width=0.25, dropout=0.0)
    logits, u_hat = block(torch.randn(2, 3, 8, 8), torch.randn(2, 3 * 8 * 8), W)
    assert logits.shape == (2, 4) and u_hat.shape == (2, 192)
    torch.testing.assert_close(u_hat, logits.softmax(-1) @ W)
    with pytest.raises(ValueError, match="embed_dim"):
        DenoiseBlock(3, 8, 4, 10, image_label=True)


def test_width_scales_parameter_count() -> None:
    def count(width: float) -> int:
        return sum(p.numel() for p in DenoiseBlock(1, 28, 10, 10, False, width).parameters())

    assert count(0.25) < count(0.5) < count(1.0)
    assert count(1e-3) > 0  # every width at least 1


def test_pool_before_relu_is_the_same_function_and_gradient() -> None:
    """conv_path runs maxpool -> ReLU; the paper's ReLU -> maxpool order must give identical outputs and grads."""
    from torch import nn

    from noprop.core.blocks import conv_path

    torch.manual_seed(4)
    ours = conv_path(3, 8, 0.25, dropout=0.0).eval()
    order = [0, 2, 1, 3, 4, 5, 6, 7, 9, 8, *range(10, len(ours))]  # swap each maxpool/ReLU pair back
    assert [type(ours[i]) for i in (1, 2, 8, 9)] == [nn.MaxPool2d, nn.ReLU, nn.MaxPool2d, nn.ReLU]
    paper = nn.Sequential(*(ours[i] for i in order))
    x = torch.randn(16, 3, 8, 8)
    x[:, :, :4] = -x[:, :, :4].abs()  # some pooling windows entirely negative
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_a, out_b = ours(xa), paper(xb)
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=0)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=0)
