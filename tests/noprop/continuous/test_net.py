"""The continuous-time network: the paper's Fig. 6 right block, conditioned on t, without BatchNorm."""

import torch
from torch import nn

from noprop.continuous.net import TIME_DIM, ContinuousTimeNet, time_embedding


def test_no_batchnorm_and_every_parameter_gets_a_gradient() -> None:
    net = ContinuousTimeNet(1, 8, num_classes=4, embed_dim=4, width=0.25)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    logits = net(torch.randn(6, 1, 8, 8), torch.randn(6, 4), torch.rand(6))
    assert logits.shape == (6, 4)
    logits.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_the_output_depends_on_t_and_one_example_does_not_see_another() -> None:
    torch.manual_seed(0)
    net = ContinuousTimeNet(1, 8, num_classes=4, embed_dim=4, width=0.25, dropout=0.0)
    x, z = torch.randn(3, 1, 8, 8), torch.randn(3, 4)
    early, late = net(x, z, torch.full((3,), 0.1)), net(x, z, torch.full((3,), 0.9))
    assert not torch.allclose(early, late)
    mixed = net(x, z, torch.tensor([0.1, 0.9, 0.1]))  # no batch statistics: rows are independent
    torch.testing.assert_close(mixed[[0, 2]], early[[0, 2]])
    torch.testing.assert_close(mixed[1], late[1])


def test_time_embedding_is_bounded_and_tells_nearby_times_apart() -> None:
    e = time_embedding(torch.tensor([0.0, 0.001, 0.5, 1.0]))
    assert e.shape == (4, TIME_DIM) and e.abs().max() <= 1.0
    assert torch.equal(e[0, TIME_DIM // 2:], torch.ones(TIME_DIM // 2))  # cos(0) = 1
    assert (e[0] - e[1]).norm() > 0.5  # one step of a 1000-step diffusion apart
