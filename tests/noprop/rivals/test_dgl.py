"""DGL trains the CNN reference's network module by module: the same network, no gradient across a module
boundary, auxiliary heads only in training."""

import torch
from torch import nn

from baselines.cnn import CNNReference
from bench.run.loop import first_steps, train_epoch
from noprop.core.settings import CommonSettings
from noprop.rivals.dgl import DecoupledGreedy, DGLSettings
from tests.toy import quadrant_data, small_settings

X, Y = quadrant_data(512, 0)


def small(cls: type = DGLSettings, **kw: object) -> CommonSettings:
    return small_settings(cls, **kw)


def test_the_network_is_the_cnn_reference_s() -> None:
    torch.manual_seed(0)
    cnn = CNNReference(small(CommonSettings))
    torch.manual_seed(0)
    dgl = DecoupledGreedy(small())
    network = {k: v for k, v in dgl.state_dict().items() if not k.startswith("aux.")}
    assert network.keys() == cnn.state_dict().keys()
    assert all(torch.equal(v, cnn.state_dict()[k]) for k, v in network.items())
    assert len(dgl.stages) == 3 and len(dgl.aux) == 2


def test_optimisers_partition_the_parameters_by_module() -> None:
    dgl = DecoupledGreedy(small())
    owned = [{id(p) for g in o.param_groups for p in g["params"]} for o in dgl._opts]
    assert sum(map(len, owned)) == len(set().union(*owned)) == len(list(dgl.parameters()))
    assert {id(p) for p in dgl.classifier.parameters()} <= owned[-1]


def test_module_one_learns_from_its_own_head_alone() -> None:
    """A DGL step moves module 1 exactly as training (module 1, head 1) alone on the batch does: the later
    modules' losses never reach it."""
    torch.manual_seed(0)
    full = DecoupledGreedy(small(dropout=0.0))
    torch.manual_seed(0)
    alone = DecoupledGreedy(small(dropout=0.0))
    first_steps(full, X[:32], Y[:32])
    loss = nn.functional.cross_entropy(alone.aux[0](alone.stages[0](X[:32])), Y[:32])
    alone._opts[0].zero_grad()
    loss.backward()
    alone._opts[0].step()
    for a, b in zip(full.stages[0].parameters(), alone.stages[0].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(full.stages[1][0].weight, alone.stages[1][0].weight)


def test_heads_count_apart_and_stay_out_of_inference() -> None:
    dgl = DecoupledGreedy(small())
    calls = []
    for head in dgl.aux:
        head.register_forward_hook(lambda *_: calls.append(1))
    dgl.predict(X[:4])
    assert calls == []
    assert dgl.recorded_settings()["training_only_params"] == sum(p.numel() for p in dgl.aux.parameters()) > 0
    assert dgl.recorded_settings()["dgl_modules"] == "conv 8 | conv 16, conv 32 | linear 64"


def test_learns_the_toy_problem() -> None:
    """Code path, not accuracy: 3 epochs on the separable toy (measured 1.0 with seed 0; chance 0.25)."""
    torch.manual_seed(0)
    dgl = DecoupledGreedy(small())
    for _ in range(3):
        stats = train_epoch(dgl, lambda: ((X[i:i + 32], Y[i:i + 32]) for i in range(0, 512, 32)))
    x, y = quadrant_data(256, 1)
    assert stats["steps"] == 16 and stats["ce_3"] < 0.5
    assert float((dgl.predict(x).argmax(1) == y).float().mean()) > 0.8
