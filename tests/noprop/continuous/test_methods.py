"""NoProp-CT and NoProp-FM on the toy problem: they learn, their inference never sees labels and reads each image
on its own, the FM target is the straight path's exact velocity, and training resumes exactly."""

import copy

import pytest
import torch

from bench.run.loop import train_epoch
from noprop.continuous.base import ContinuousTime
from noprop.continuous.ct import CTSettings, NoPropCT
from noprop.continuous.fm import FMSettings, NoPropFM, nearest_class_logits, path_point, target_velocity
from noprop.continuous.ode import evaluations
from tests.baselines.test_backprop import X, batches
from tests.toy import quadrant_data, small_settings

VARIANTS = [NoPropCT, NoPropFM]


def small(cls: type, **kw: object) -> CTSettings | FMSettings:
    """The toy problem's settings for NoProp-CT or NoProp-FM."""
    return small_settings(CTSettings if cls is NoPropCT else FMSettings, **kw)  # type: ignore[return-value]


@pytest.mark.parametrize("cls", VARIANTS)
def test_learns_the_toy_problem_with_label_free_inference(cls: type[ContinuousTime]) -> None:
    torch.manual_seed(0)
    model = cls(small(cls, lr=3e-3, dropout=0.0, ode_steps=10))
    for _ in range(8):
        stats = train_epoch(model, batches)
    assert stats["steps"] == 16 and set(stats) == {"loss", "steps", *cls.TERMS}
    assert all(v >= 0 for v in stats.values()) and stats["loss"] == pytest.approx(
        sum(stats[k] for k in cls.TERMS), rel=1e-6)
    x_test, y_test = quadrant_data(256, 1)
    pred = model.predict(x_test, torch.Generator(x_test.device).manual_seed(0)).argmax(1)
    acc = float((pred == y_test).float().mean())
    assert acc > 0.6, acc  # chance 0.25


@pytest.mark.parametrize("cls", VARIANTS)
@pytest.mark.parametrize("integrator", ["euler", "heun"])
def test_predict_is_seeded_and_the_deterministic_reading_ignores_the_seed(cls: type[ContinuousTime],
                                                                         integrator: str) -> None:
    model = cls(small(cls, ode_steps=3, integrator=integrator))
    a = model.predict(X[:8], torch.Generator(X.device).manual_seed(1))
    assert torch.equal(a, model.predict(X[:8], torch.Generator(X.device).manual_seed(1)))
    assert not torch.equal(a, model.predict(X[:8], torch.Generator(X.device).manual_seed(2)))
    d = model.predict(X[:8], torch.Generator(X.device).manual_seed(1), deterministic=True)
    assert torch.equal(d, model.predict(X[:8], torch.Generator(X.device).manual_seed(2), deterministic=True))
    assert model.training
    own = {"ct_weight": "paper", "departure": ""} if cls is NoPropCT else {}
    assert model.recorded_settings() == {"ode_steps": 3, "integrator": integrator, **own}
    assert evaluations(integrator, model.inference_steps) == (6 if integrator == "heun" else 3)


@pytest.mark.parametrize("cls", VARIANTS)
def test_inference_reads_each_image_alone(cls: type[ContinuousTime]) -> None:
    """Labels never reach predict, and no image's prediction depends on the others in its batch (no batch
    statistics, no shared noise in the deterministic reading)."""
    model = cls(small(cls, ode_steps=4))
    train_epoch(model, batches)
    whole = model.predict(X[:6], deterministic=True)
    alone = torch.cat([model.predict(X[i : i + 1], deterministic=True) for i in range(6)])
    torch.testing.assert_close(whole, alone, rtol=1e-4, atol=1e-5)


def test_fm_target_is_the_exact_velocity_of_the_straight_path() -> None:
    here = torch.get_default_device()  # the suite's device
    g = torch.Generator(here).manual_seed(0)
    u, z0 = (torch.randn(5, 7, generator=g, dtype=torch.float64, device=here) for _ in range(2))
    none = torch.zeros_like(u)
    t1, t2 = torch.full((5,), 0.2, dtype=torch.float64), torch.full((5,), 0.7, dtype=torch.float64)
    slope = (path_point(u, z0, t2, 0.0, none) - path_point(u, z0, t1, 0.0, none)) / 0.5
    torch.testing.assert_close(slope, target_velocity(u, z0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(path_point(u, z0, torch.zeros(5, dtype=torch.float64), 0.0, none), z0)
    torch.testing.assert_close(path_point(u, z0, torch.ones(5, dtype=torch.float64), 0.0, none), u)
    # integrating the exact target from z_0 lands on u_y, whatever the step count
    assert torch.allclose(z0 + 1.0 * target_velocity(u, z0), u)


def test_fm_reads_the_nearest_class_embedding() -> None:
    W = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    z = torch.tensor([[2.0, 0.5], [0.1, -0.2], [0.2, 2.2]])
    assert nearest_class_logits(z, W).argmax(1).tolist() == [1, 0, 2]


def test_fm_embedding_term_only_when_the_embedding_trains() -> None:
    torch.manual_seed(0)
    one_hot = NoPropFM(small(NoPropFM))
    assert one_hot.loss_terms(X[:16], torch.arange(16) % 4)[1] == 0
    learned = NoPropFM(small(NoPropFM, embedding="learned", embed_dim=8))
    terms = learned.loss_terms(X[:16], torch.arange(16) % 4)
    assert terms[1] > 0
    terms.sum().backward()
    assert learned.embedding.weight.grad is not None and learned.embedding.weight.grad.abs().sum() > 0


def test_ct_loss_weights_and_terms_are_positive_for_scrambled_schedules() -> None:
    torch.manual_seed(0)
    model = NoPropCT(small(NoPropCT, embedding="learned", embed_dim=8))
    with torch.no_grad():
        for p in model.schedule.parameters():
            p.copy_(torch.randn_like(p) * 3)
    assert (model.schedule.snr_derivative(torch.rand(64)) > 0).all()
    ce, kl, denoise = model.loss_terms(X[:32], torch.arange(32) % 4)
    assert ce > 0 and kl >= 0 and denoise >= 0


@pytest.mark.parametrize("cls", VARIANTS)
def test_training_state_resumes_exactly(cls: type[ContinuousTime]) -> None:
    torch.manual_seed(0)
    a = cls(small(cls, dropout=0.0, embedding="learned", embed_dim=8))
    train_epoch(a, batches)
    b = cls(small(cls, dropout=0.0, embedding="learned", embed_dim=8))
    b.load_training_state(copy.deepcopy(a.training_state()))
    torch.manual_seed(1)
    train_epoch(a, batches)
    torch.manual_seed(1)
    train_epoch(b, batches)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, msg=k)


def test_ct_classifier_starts_as_the_readout_of_each_clean_class_embedding():
    """Before any training, the classifier on z_1 reads every clean class embedding u_c as class c (the readout
    start); with classifier_init random it is torch's default Linear, which does not."""
    for embedding in ("one-hot", "learned"):
        model = NoPropCT(small(NoPropCT, embedding=embedding, embed_dim=8))
        W = model.embedding.W.detach()
        assert torch.equal(model.classifier(W).argmax(dim=1), torch.arange(W.shape[0]))
    torch.manual_seed(0)
    random = NoPropCT(small(NoPropCT, classifier_init="random"))
    assert not torch.equal(random.classifier.weight, model.classifier.weight)


def test_ct_uniform_weight_is_the_mean_of_the_paper_weight_over_t():
    """ct_weight uniform: one weight for every t, equal to the mean over t ~ U(0, 1) of ½ η SNR'(t) (the integral of
    the derivative), so the two losses weigh denoising the same on average."""
    paper, uniform = (NoPropCT(small(NoPropCT, ct_weight=w)) for w in ("paper", "uniform"))
    uniform.schedule.load_state_dict(paper.schedule.state_dict())
    t = (torch.arange(20000, dtype=torch.float64) + 0.5) / 20000
    schedule = paper.schedule.double()
    with torch.no_grad():
        gamma, d_gamma = schedule.gamma_with_derivative(t)
        ends = schedule.alpha_bar_ends()
        w_paper = paper.denoise_weight(gamma, d_gamma, ends)
        w_uniform = uniform.denoise_weight(gamma, d_gamma, ends)
    assert torch.all(w_uniform == w_uniform[0])
    torch.testing.assert_close(w_paper.mean(), w_uniform[0], rtol=1e-3, atol=0)


def test_ct_schedule_is_left_out_of_weight_decay():
    model = NoPropCT(small(NoPropCT))
    decay = {id(p): g["weight_decay"] for g in model._opt.param_groups for p in g["params"]}
    assert all(decay[id(p)] == 0.0 for p in model.schedule.parameters())
    assert all(decay[id(p)] == model.s.weight_decay for p in model.net.parameters())


def test_ddim_is_the_exact_solution_of_the_drift_that_euler_steps_for_a_fixed_u_hat(monkeypatch):
    """With û held fixed, one DDIM step from t = 0 to 1 lands on the closed-form endpoint √ᾱ(1) û + √(1 − ᾱ(1)) ε̂_0,
    fifty DDIM steps land on it too (the step is exact, so steps compose), and Euler steps of the instantaneous drift
    converge to it (the two integrate the same ODE)."""
    from noprop.continuous.ode import integrate, march

    model = NoPropCT(small(NoPropCT)).double()
    u = torch.softmax(torch.randn(5, 4, dtype=torch.float64), dim=-1) @ model.embedding.W.double()
    monkeypatch.setattr(model, "u_hat", lambda h, z, t: u)
    z0 = torch.randn(5, 4, dtype=torch.float64)
    with torch.no_grad():
        ab = model.schedule.alpha_bar(torch.tensor([0.0, 1.0], dtype=torch.float64))
        endpoint = ab[1].sqrt() * u + (1 - ab[1]).sqrt() * (z0 - ab[0].sqrt() * u) / (1 - ab[0]).sqrt()
        one = march(lambda z, a, b: model.exact_step(None, z, a, b), z0, 1)
        fifty = march(lambda z, a, b: model.exact_step(None, z, a, b), z0, 50)
        euler = integrate(lambda z, t: model.velocity(None, z, t), z0, 4000, "euler")
    torch.testing.assert_close(one, endpoint, rtol=0, atol=1e-12)
    torch.testing.assert_close(fifty, endpoint, rtol=0, atol=1e-10)
    torch.testing.assert_close(euler, endpoint, rtol=0, atol=2e-3)


def test_ddim_is_noprop_ct_s_alone():
    with pytest.raises(ValueError, match="integrator ddim is NoProp-CT's exact step"):
        small(NoPropFM, integrator="ddim")
    assert small(NoPropCT, integrator="ddim").integrator == "ddim"
