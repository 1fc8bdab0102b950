"""BEAT (defenses/beat.py, energy.py) and its SG-MCMC samplers (defenses/sghmc.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attack_fixtures import one_thread  # noqa: F401  (autouse: single-threaded module)
from defense_fixtures import tiny_data, tiny_mlp
from skelrobust.attacks.base import motion_mask
from skelrobust.classifier import Classifier
from skelrobust.defenses.beat import BEAT
from skelrobust.defenses.energy import BEATObjective, skeletal_distance
from skelrobust.defenses.sghmc import SGHMC, AdaptiveSGHMC
from skelrobust.defenses.training import train_defense
from skelrobust.errors import ConfigError
from skelrobust.training import TrainConfig

FAST = {"burn_in": 1, "sample_every": 1, "sgld_steps": 2, "adversary_steps": 2,
        "buffer_size": 8}


@pytest.fixture(scope="module")
def data():
    return tiny_data()


@pytest.fixture
def base(data):
    return tiny_mlp(data)


def _randomise_posterior(d: BEAT, kept: int) -> None:
    torch.manual_seed(3)
    with torch.no_grad():
        for name in ("w1", "b1", "w2", "b2"):
            getattr(d, f"posterior_{name}").normal_(0, 0.3)
        d.kept.fill_(kept)


def test_untrained_beat_answers_as_its_base(base, data):
    x, _ = data.tensors()
    d = BEAT(base).eval()
    assert torch.allclose(d(x), F.log_softmax(base(x), 1), atol=1e-6)  # f_θ′ starts at 0
    assert torch.equal(d(x).argmax(1), base(x).argmax(1))


def test_prediction_is_the_average_of_the_weight_samples(base, data):
    """log (1/S) Σ_s softmax(f_s(φ(x)) + g(x)), each head computed by hand."""
    x, _ = data.tensors()
    d = BEAT(base, samples=3, hidden=7).eval()
    _randomise_posterior(d, kept=3)
    g = base(x)
    probs = []
    for s in range(3):
        h = torch.relu(g @ d.posterior_w1[s].T + d.posterior_b1[s])
        probs.append(F.softmax(h @ d.posterior_w2[s].T + d.posterior_b2[s] + g, 1))
    expected = torch.stack(probs).mean(0)
    assert torch.allclose(d(x).exp(), expected, atol=1e-6)
    assert torch.allclose(d(x).exp().sum(1), torch.ones(len(x)), atol=1e-5)
    # the released code's rule: the heads' logits summed
    summed = BEAT.from_args(base, {**d.args, "prediction": "logit-sum"}).eval()
    summed.load_state_dict(d.state_dict())
    assert torch.allclose(summed(x), d.sample_logits(x).sum(0), atol=1e-5)
    # only the kept draws count
    _randomise_posterior(d, kept=1)
    assert torch.allclose(d(x), F.log_softmax(d.sample_logits(x)[0], 1), atol=1e-6)
    assert d.sample_logits(x).shape == (1, len(x), base.num_classes)


def test_keep_sample_fills_slots_then_slides(base):
    d = BEAT(base, samples=2)
    for i in range(3):
        with torch.no_grad():
            d.w2.fill_(float(i + 1))
        d.keep_sample()
    assert d.num_samples == 3
    assert d.posterior_w2[0].unique().tolist() == [3.0]  # the oldest replaced
    assert d.posterior_w2[1].unique().tolist() == [2.0]


def test_penultimate_features_and_bad_options(base, data):
    x, _ = data.tensors()
    d = BEAT(base, features="penultimate").eval()
    assert d.w1.shape[-1] == base.num_features
    assert torch.allclose(d(x), F.log_softmax(base(x), 1), atol=1e-5)
    for bad, match in (({"features": "pixels"}, "features"), ({"prediction": "vote"},
                       "prediction"), ({"samples": 0}, "samples")):
        with pytest.raises(ConfigError, match=match):
            BEAT(base, **bad)
    with pytest.raises(ConfigError, match="adversary_step"):
        BEAT(base, training={"adversary_step": -1.0}).training_objective(10)
    with pytest.raises(ConfigError, match="sampler"):
        BEAT(base, training={"sampler": "hmc"}).training_objective(10)


def test_objective_samples_and_terms(base, data):
    x, y = data.tensors()
    x, y = x[:6], y[:6]
    d = BEAT(base, training=FAST).train()
    obj = d.training_objective(len(data))
    assert isinstance(obj, BEATObjective)
    before = x.clone()
    mask = motion_mask(x)
    torch.manual_seed(0)
    x_tilde = obj.sample_adversary(x, y, mask)
    assert torch.equal(x, before)  # input not mutated
    assert torch.equal(x_tilde * (1 - mask), x * (1 - mask))  # padding stays as it was
    assert (x_tilde - x).abs().max() > 1e-4  # the adversary moved
    x_model = obj.sample_x(mask)
    assert torch.equal(x_model * (1 - mask), torch.zeros_like(x_model))
    assert obj.buffer is not None and obj.buffer.shape[0] == 8
    loss, logits = obj(d, x, y)
    assert set(obj.last_terms) == {"clean", "energy", "adversary"}
    assert obj.last_terms["energy"] != 0.0  # unnormalised logits: a real energy
    assert torch.allclose(loss.detach(), torch.tensor(
        obj.last_terms["clean"] + 0.1 * obj.last_terms["energy"]
        + 0.1 * obj.last_terms["adversary"]), atol=1e-5)
    assert logits.shape == (6, base.num_classes)
    loss.backward()
    assert all(p.grad is None for p in base.parameters())  # the base is never trained
    assert d.w2.grad is not None and d.w2.grad.abs().sum() > 0


def test_skeletal_distance_by_hand(base, data):
    x, _ = data.tensors()
    x = x[:2]
    from skelrobust.attacks.losses import bone_lengths
    ref = bone_lengths(x, base.skeleton)
    assert torch.allclose(skeletal_distance(x, x, ref, base.skeleton), torch.zeros(2),
                          atol=1e-9)
    mask = motion_mask(x)
    shifted = x + 0.01 * mask  # 1 cm on every coordinate of every valid frame: rigid
    d = skeletal_distance(shifted, x, ref, base.skeleton, mask)
    # only the position term: 3 coordinates × V joints × (0.01 m)² per valid frame
    assert torch.allclose(d, torch.full((2,), 3 * base.skeleton.num_joints * 1e-4), rtol=1e-4)


def test_training_keeps_draws_and_the_base(base, data, tmp_path):
    state = {k: v.clone() for k, v in base.state_dict().items()}
    d = BEAT(base, samples=2, training=FAST)
    result = train_defense(d, data, None, TrainConfig(epochs=3, batch_size=8, lr=0.01,
                                                      schedule="none", weight_decay=0.0,
                                                      progress=False, keep="last"),
                           out_dir=tmp_path)
    assert len(result.history) == 3 and d.num_samples == 2  # epochs 2 and 3 kept
    assert all(torch.equal(v, d.base.state_dict()[k]) for k, v in state.items())
    reloaded = Classifier.load(tmp_path)
    x, _ = data.tensors()
    assert isinstance(reloaded, BEAT) and torch.equal(reloaded(x), d.eval()(x))
    assert d.info["training"]["epochs"] == 3 and d.info["training"]["seconds"] > 0


@pytest.mark.parametrize("sampler", [SGHMC, AdaptiveSGHMC])
def test_samplers_draw_the_posterior_of_a_gaussian(sampler):
    """U(θ) = |D|·mean loss + θ²/(2σ_p²) with loss = (θ − 1)²/2 over |D| = 4 data points
    has the posterior N(μ, s²), s² = 1 / (4 + 1/σ_p²), μ = 4 s²; the chain's moments match."""
    torch.manual_seed(0)
    theta = torch.nn.Parameter(torch.zeros(2000))  # 2000 independent chains at once
    opt = sampler([theta], lr=0.05 if sampler is SGHMC else 0.1, num_data=4, friction=0.1,
                  prior_std=1.0)
    draws = []
    for step in range(3000):
        opt.zero_grad()
        (0.5 * (theta - 1.0) ** 2).sum().backward()
        opt.step()
        if step >= 1500 and step % 50 == 0:
            draws.append(theta.detach().clone())
    d = torch.stack(draws)
    s2 = 1.0 / (4 + 1.0)
    assert d.mean().item() == pytest.approx(4 * s2, abs=0.03)
    assert d.var().item() == pytest.approx(s2, rel=0.15)


def test_sampler_options_are_checked():
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ConfigError, match="friction"):
        SGHMC(p, lr=0.1, num_data=1, friction=0.0)
    with pytest.raises(ConfigError, match="lr"):
        AdaptiveSGHMC(p, lr=0.0, num_data=1)


def test_query_gradient_matches_autograd_on_a_linear_box():
    """The antithetic estimate is unbiased for a linear g: vᵀ ∂g/∂x = vᵀ W."""
    from skelrobust.defenses.query_gradient import query_logits

    torch.manual_seed(0)
    w = torch.randn(4, 3 * 5 * 6 * 1)

    def box(x):
        return x.flatten(1) @ w.T

    x = torch.randn(2, 3, 5, 6, 1, requires_grad=True)
    mask = torch.ones(2, 1, 5, 1, 1)
    v = torch.randn(2, 4)
    (est,) = torch.autograd.grad((query_logits(box, x, mask, samples=4000) * v).sum(), x)
    (true,) = torch.autograd.grad((box(x) * v).sum(), x)
    cos = F.cosine_similarity(est.flatten(1), true.flatten(1)).min()
    assert cos > 0.8
    assert torch.allclose(query_logits(box, x, mask), box(x))  # forward: the answers


def test_black_box_base_is_only_run_forward(base, data):
    x, y = data.tensors()
    x, y = x[:4], y[:4]
    d = BEAT(base, training={**FAST, "base_gradients": "queries", "query_samples": 4}).train()
    grad_modes = []
    hook = base.register_forward_pre_hook(lambda m, a: grad_modes.append(
        torch.is_grad_enabled()))
    try:
        loss, _ = d.training_objective(len(data))(d, x, y)
        loss.backward()
    finally:
        hook.remove()
    assert grad_modes and not any(grad_modes)  # every call: no graph through the base
    assert d.w2.grad is not None and d.w2.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="features='logits'"):
        BEAT(base, features="penultimate",
             training={"base_gradients": "queries"}).training_objective(10)
