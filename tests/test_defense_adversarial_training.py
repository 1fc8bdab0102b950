"""Adversarial-training losses (SMART-AT, TRADES, MART, MMAT) and their defended classifiers.

The formulas are checked against values computed by hand and with numpy, apart
from the inner maximisation; the inner maximisation against its contract (it
raises its objective, keeps the budget, runs in eval mode, leaves no parameter
gradient, never touches the input); the defenses against the registry and files.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from attack_fixtures import PREP, one_thread  # noqa: F401 (fixture)
from skelrobust.attacks.registry import create_attack
from skelrobust.classifier import Classifier
from skelrobust.config import load_prepared
from skelrobust.defenses.adversarial_training import (
    MART,
    TRADES,
    AdversariallyTrained,
    MARTDefense,
    SignAscent,
    SmartAT,
    SmartATDefense,
    TRADESDefense,
    eval_mode,
    kl_per_sample,
    mart_loss,
    trades_loss,
    weighted_ce,
)
from skelrobust.defenses.base import create_defense, get_defense, list_defenses
from skelrobust.defenses.mmat import MMAT, MMATDefense
from skelrobust.errors import ConfigError
from skelrobust.training import TrainConfig, fit

T = 16
LOSSES = {"smart-at": SmartAT, "trades": TRADES, "mart": MART, "mmat": MMAT}
FAST = {"smart-at": {"steps": 3}, "trades": {"steps": 3}, "mart": {"steps": 3},
        "mmat": {"steps": 3, "projection_steps": 2}}


@pytest.fixture(scope="module")
def data():
    return load_prepared("synthetic", "train", preprocess_args={**PREP, "num_frames": T},
                         num_clips=16, num_frames=T, seed=0)


@pytest.fixture(scope="module")
def batch(data):
    x, y = data.tensors()
    return x[:6].contiguous(), y[:6].contiguous()


def small_net(data, batchnorm: bool = True, seed: int = 0) -> Classifier:
    """A linear classifier (optionally with a BatchNorm hidden layer) on the data's clips."""
    torch.manual_seed(seed)
    x, _ = data.tensors()
    d = int(np.prod(x.shape[1:]))
    layers: list[nn.Module] = [nn.Flatten()]
    if batchnorm:
        layers += [nn.Linear(d, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, data.num_classes)]
    else:
        layers += [nn.Linear(d, data.num_classes)]
    return Classifier.from_module(nn.Sequential(*layers), data.skeleton, data.class_names)


@pytest.fixture(scope="module")
def mlp(data):
    torch.manual_seed(0)
    return Classifier.create("mlp", data, size="small", preprocess=PREP).eval()


# ---------------------------------------------------------------------- numpy references
def np_softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def np_ce(z, y):
    return float(-np.log(np_softmax(z)[np.arange(len(y)), y]).mean())


def np_kl(p, q):
    return (p * (np.log(p) - np.log(q))).sum(1)


def np_trades(zc, za, y, beta):
    return np_ce(zc, y) + beta * float(np_kl(np_softmax(zc), np_softmax(za)).mean())


def np_mart(zc, za, y, beta):
    pc, pa, rows = np_softmax(zc), np_softmax(za), np.arange(len(y))
    others = pa.copy()
    others[rows, y] = -1.0
    bce = -np.log(pa[rows, y]) - np.log(1 - others.max(1))
    return float((bce + beta * np_kl(pc, pa) * (1 - pc[rows, y])).mean())


def t64(a):
    return torch.tensor(a, dtype=torch.float64)


# ---------------------------------------------------------------------- the formulas
def test_formulas_by_hand_on_two_classes():
    """p(x) = (1/2, 1/2), p(x′) = (3/4, 1/4), y = 0, β = 6."""
    clean, adv, y = t64([[0.0, 0.0]]), t64([[math.log(3.0), 0.0]]), torch.tensor([0])
    kl = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)  # = 0.5·log(4/3)
    assert float(kl_per_sample(F.log_softmax(clean, 1), F.log_softmax(adv, 1))) == (
        pytest.approx(kl, abs=1e-12))
    assert float(trades_loss(clean, adv, y, 6.0)) == pytest.approx(math.log(2) + 6 * kl,
                                                                   abs=1e-12)
    bce = -math.log(0.75) - math.log(1 - 0.25)  # −log p_y(x′) − log(1 − max_{k≠y} p_k(x′))
    assert float(mart_loss(clean, adv, y, 6.0)) == pytest.approx(bce + 6 * kl * 0.5, abs=1e-12)
    ce_adv = -math.log(0.75)
    assert float(weighted_ce(y, (1.0, clean), (3.0, adv))) == pytest.approx(
        (math.log(2) + 3 * ce_adv) / 4, abs=1e-12)
    assert float(weighted_ce(y, (0.0, None), (2.0, adv))) == pytest.approx(ce_adv, abs=1e-12)


def test_formulas_match_numpy():
    rng = np.random.default_rng(0)
    zc, za = rng.normal(size=(7, 5)) * 3, rng.normal(size=(7, 5)) * 3
    y = rng.integers(0, 5, 7)
    yt = torch.as_tensor(y)
    for beta in (0.0, 1.0, 6.0):
        assert float(trades_loss(t64(zc), t64(za), yt, beta)) == pytest.approx(
            np_trades(zc, za, y, beta), rel=1e-10)
        assert float(mart_loss(t64(zc), t64(za), yt, beta)) == pytest.approx(
            np_mart(zc, za, y, beta), rel=1e-10)


def test_mart_gradient_flows_through_both_logits():
    clean = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    adv = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    mart_loss(clean, adv, torch.tensor([0, 1, 2, 0]), 6.0).backward()
    assert clean.grad.abs().sum() > 0 and adv.grad.abs().sum() > 0


# ---------------------------------------------------------------------- whole losses
def linear_logits(net: Classifier, x: torch.Tensor) -> np.ndarray:
    """The linear network's logits computed with numpy from its weights (float64)."""
    lin = net.model[1]
    w, b = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
    return x.double().flatten(1).numpy() @ w.T + b


@pytest.mark.parametrize("name", ["smart-at", "trades", "mart", "mmat"])
def test_loss_at_a_fixed_adversary_matches_numpy(data, batch, name):
    """``steps=0`` and no start noise: x′ = x, so each loss is a formula of the clean logits."""
    net = small_net(data, batchnorm=False).train()
    x, y = batch
    opts = {"steps": 0} if name == "smart-at" else {"steps": 0, "init_std_mm": 0.0}
    if name == "mmat":
        opts["on_weight"] = 0.0
    loss, logits = LOSSES[name](**opts)(net, x, y)
    z, yy = linear_logits(net, x), y.numpy()
    expected = {"smart-at": np_ce(z, yy), "trades": np_ce(z, yy), "mmat": np_ce(z, yy),
                "mart": np_mart(z, z, yy, 6.0)}[name]
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(logits.double().numpy(), z, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [TRADES, MART])
def test_loss_is_the_formula_at_its_adversary(data, batch, cls):
    net = small_net(data).train()
    x, y = batch
    loss_fn = cls(beta=2.0, steps=3)
    fresh = copy.deepcopy(net)  # the BatchNorm statistics before the loss's forward passes
    torch.manual_seed(5)
    loss, _ = loss_fn(net, x, y)
    torch.manual_seed(5)
    x_adv = loss_fn.adversary(fresh, x, y)
    formula = trades_loss if cls is TRADES else mart_loss
    expected = formula(net(x), net(x_adv), y, 2.0)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_smart_at_uses_the_smart_attack(data, batch):
    net = small_net(data).train()
    x, y = batch
    loss_fn = SmartAT(steps=5, clean_weight=0.25)
    x_adv = loss_fn.adversary(net, x, y)
    with eval_mode(net):
        ref = create_attack("smart", net, steps=5, step_mm=0.5, budget_mm=10.0, norm="linf",
                            report=False)(x, y)
    assert torch.equal(x_adv, ref)
    assert float((x_adv.double() - x.double()).abs().max()) <= 0.010
    loss, _ = loss_fn(net, x, y)
    expected = 0.25 * F.cross_entropy(net(x), y) + 0.75 * F.cross_entropy(net(x_adv), y)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_mmat_mixes_clean_off_and_on_manifold(data, batch):
    net = small_net(data).train()
    x, y = batch
    loss_fn = MMAT(steps=3, projection_steps=2, clean_weight=2.0, off_weight=1.0, on_weight=1.0)
    fresh = copy.deepcopy(net)
    torch.manual_seed(3)
    loss, _ = loss_fn(net, x, y)
    torch.manual_seed(3)
    x_off, x_on = loss_fn.adversaries(fresh, x, y)
    expected = (2 * F.cross_entropy(net(x), y) + F.cross_entropy(net(x_off), y)
                + F.cross_entropy(net(x_on), y)) / 4
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert float((x_off.double() - x.double()).abs().max()) <= 0.010
    bones = data.skeleton.bones

    def length(m):
        return torch.linalg.vector_norm(m[:, :, :, bones[:, 0]] - m[:, :, :, bones[:, 1]], dim=1)

    assert float((length(x_on) - length(x)).abs().max()) < 1e-4  # on the clean skeleton
    assert not torch.equal(x_on, x_off)


# ---------------------------------------------------------------------- inner maximisation
@pytest.mark.parametrize("norm", ["linf", "joint"])
@pytest.mark.parametrize("cls", [TRADES, MART])
def test_inner_maximisation_raises_objective_within_budget(data, batch, cls, norm):
    net = small_net(data).train()
    x, y = batch
    x = x.clone()
    x[:, :, -2:] = 0  # padding frames: never perturbed
    budget = 20.0
    loss_fn = cls(steps=10, budget_mm=budget, norm=norm)
    torch.manual_seed(1)
    start = cls(steps=0, budget_mm=budget, norm=norm).adversary(net, x, y)
    torch.manual_seed(1)
    x_adv = loss_fn.adversary(net, x, y)
    objective = loss_fn.objective(net, x, y)
    with torch.no_grad(), eval_mode(net) as module:
        before, after = objective(module(start)), objective(module(x_adv))
    assert bool((after > before).all())
    if cls is TRADES:  # the KL starts near 0 at the small random start
        assert float(after.sum()) > 1.5 * float(before.sum())
    delta = x_adv.double() - x.double()
    size = delta.abs() if norm == "linf" else torch.linalg.vector_norm(delta, dim=1)
    assert float(size.max()) <= budget / 1000.0
    assert float(size.max()) >= budget / 1000.0 * 0.99  # the steps use the budget
    assert torch.equal(x_adv[:, :, -2:], x[:, :, -2:])


def test_sign_ascent_defaults_follow_the_papers():
    ascent = SignAscent()
    assert (ascent.budget_mm, ascent.steps, ascent.step_mm, ascent.norm) == (10.0, 10, 2.5,
                                                                             "linf")
    assert ascent.init_std_mm == pytest.approx(10.0 * 0.001 / 0.031)


@pytest.mark.parametrize("name", list(LOSSES))
def test_contract_modes_gradients_input_logits(data, batch, name):
    """Train mode back (each module's own), no parameter gradient from the inner attack, the
    input untouched, the clean logits returned, BatchNorm statistics kept by the search."""
    net = small_net(data).train()
    net.model[2].eval()  # a module kept in eval mode on purpose stays so
    x, y = batch
    x_before = x.clone()
    loss_fn = LOSSES[name](**FAST[name])
    bn = net.model[2]
    stats = (bn.running_mean.clone(), bn.running_var.clone())
    if name == "mmat":
        loss_fn.adversaries(net, x, y)
    else:
        loss_fn.adversary(net, x, y)
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    loss, logits = loss_fn(net, x, y)
    assert net.training and net.model[1].training and not net.model[2].training
    assert all(p.grad is None for p in net.parameters())
    assert torch.equal(x, x_before)
    if name != "smart-at":  # SMART-AT's default clean weight is 0: eval-mode logits
        expected = net(x)
    else:
        with eval_mode(net), torch.no_grad():
            expected = net(x)
    torch.testing.assert_close(logits, expected.detach())
    assert loss.dim() == 0 and math.isfinite(float(loss.detach()))
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


# ---------------------------------------------------------------------- options
@pytest.mark.parametrize(("name", "options", "option"), [
    ("trades", {"beta": -1.0}, "beta"), ("mart", {"beta": -0.5}, "beta"),
    ("trades", {"budget_mm": 0.0}, "budget_mm"), ("mart", {"budget_mm": -3.0}, "budget_mm"),
    ("mmat", {"budget_mm": 0}, "budget_mm"), ("smart-at", {"budget_mm": 0.0}, "budget_mm"),
    ("trades", {"steps": -1}, "steps"), ("mart", {"steps": -2}, "steps"),
    ("smart-at", {"steps": -1}, "steps"), ("mmat", {"steps": -1}, "steps"),
    ("trades", {"steps": 2.5}, "steps"), ("trades", {"step_mm": 0.0}, "step_mm"),
    ("trades", {"norm": "l3"}, "norm"), ("mart", {"init_std_mm": -1.0}, "init_std_mm"),
    ("smart-at", {"clean_weight": 1.5}, "clean_weight"), ("smart-at", {"preset": "x"}, "preset"),
    ("mmat", {"on_weight": -1.0}, "on_weight"), ("mmat", {"projection_steps": -1},
                                                 "projection_steps"),
    ("mmat", {"clean_weight": 0.0, "off_weight": 0.0, "on_weight": 0.0}, "clean_weight"),
    ("trades", {"beta": float("nan")}, "beta"),
])
def test_bad_options_name_the_option(mlp, name, options, option):
    with pytest.raises(ConfigError, match=option):
        LOSSES[name](**options)
    with pytest.raises(ConfigError, match=option):
        create_defense(name, mlp, **options)


def test_unknown_defense_option_is_named(mlp):
    with pytest.raises(ConfigError, match="gamma"):
        create_defense("trades", mlp, gamma=1.0)


# ---------------------------------------------------------------------- the defenses
def test_registered():
    names = list_defenses()
    for name, cls in (("smart-at", SmartATDefense), ("trades", TRADESDefense),
                      ("mart", MARTDefense), ("mmat", MMATDefense)):
        assert name in names
        assert get_defense(name) is cls and issubclass(cls, AdversariallyTrained)
        assert cls.freezes_base is False and cls.loss_class is LOSSES[name]


@pytest.mark.parametrize("name", list(LOSSES))
def test_defense_trains_a_copy_and_reloads(tmp_path, data, batch, mlp, name):
    x, y = batch
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    d = create_defense(name, mlp, **FAST[name])
    assert d.args == LOSSES[name](**FAST[name]).args
    assert d.training_loss().args == d.args
    torch.testing.assert_close(d(x), mlp(x))  # the copy answers as the base did
    opt = torch.optim.SGD([p for p in d.parameters() if p.requires_grad], lr=0.5)
    d.train()
    torch.manual_seed(0)
    loss, _ = d.training_loss()(d, x, y)
    loss.backward()
    opt.step()
    d.eval()
    assert all(torch.equal(v, mlp.state_dict()[k]) for k, v in before.items())  # caller's
    assert not torch.equal(d(x), mlp(x))
    d.args["trained_from"] = "abc123"  # provenance the caller may add is kept
    d.save(tmp_path / "d.safetensors")
    back = Classifier.load(tmp_path / "d.safetensors")
    assert type(back) is type(d) and back.args == d.args
    assert torch.equal(back(x), d(x))
    assert torch.equal(back.predict(x), d.predict(x))


def test_fit_with_the_loss(data):
    """The loss plugs into the one training loop."""
    d = create_defense("trades", Classifier.create("mlp", data, size="small"), steps=2)
    cfg = TrainConfig(epochs=1, batch_size=8, lr=0.05, warmup_epochs=0, seed=0,
                      progress=False, keep="last")
    w0 = {k: v.clone() for k, v in d.state_dict().items()}
    result = fit(d, data, None, cfg, loss=d.training_loss())
    assert math.isfinite(result.history[-1]["loss"])
    assert any(not torch.equal(v, d.state_dict()[k]) for k, v in w0.items())
