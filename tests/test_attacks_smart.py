"""SMART and the perceptual losses: success per goal, perceptual invariants, early stop, budgets."""

from __future__ import annotations

import math

import pytest
import torch

from attack_fixtures import eager_progress, one_thread, victim  # noqa: F401 (fixtures)
from skelrobust.attacks import SMART, motion_mask
from skelrobust.attacks.losses import (
    SmartPerceptualGradient,
    apply_banded,
    bone_length_loss,
    bone_lengths,
    difference_matrix,
    dynamics_bands,
    dynamics_loss,
    finite_difference,
    joint_angle_loss,
    joint_angles,
    smart_perceptual_loss,
    temporal_smoothness_loss,
)
from skelrobust.errors import ConfigError

FAST = {"steps": 200, "lr": 2.0}  # the MLP needs ~40 mm on average: take 2 mm steps


@pytest.fixture(scope="module")
def v():
    return victim()


@pytest.fixture(scope="module")
def batch(v):
    return v.x[:16], v.y[:16]


@pytest.fixture(scope="module")
def ab(v, batch):
    return SMART(v.classifier, goal="ab", **FAST).attack(*batch)


# ---------------------------------------------------------------------- losses
def _motion(n=3, t=10, m=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, t, 25, m, generator=g, dtype=torch.float64) * 0.3


def test_finite_differences_of_polynomials():
    t = torch.arange(8, dtype=torch.float64)
    x = torch.zeros(1, 3, 8, 25, 1, dtype=torch.float64)
    x[:, 0] = (2.0 + 0.5 * t + 0.25 * t ** 2)[None, :, None, None]
    d1, _ = finite_difference(x, 1)
    d2, _ = finite_difference(x, 2)
    d3, _ = finite_difference(x, 3)
    assert torch.allclose(d2[:, 0], torch.full_like(d2[:, 0], 0.5))
    assert torch.allclose(d3, torch.zeros_like(d3))
    assert torch.allclose(d1[:, 0, :, 0, 0], 0.5 + 0.25 * (2 * t[:-1] + 1))
    d2s, _ = finite_difference(x, 2, fps=30.0)
    assert torch.allclose(d2s, d2 * 900)
    assert torch.equal(difference_matrix(8, 2) @ x[0, 0, :, 0, 0], d2[0, 0, :, 0, 0])


def test_dynamics_loss_on_analytic_perturbations():
    x = _motion()
    offset = x + torch.tensor([0.01, -0.02, 0.005], dtype=x.dtype).view(1, 3, 1, 1, 1)
    # a constant offset changes position only: no velocity or acceleration deviation
    assert torch.allclose(dynamics_loss(offset, x, betas=(0, 1, 1)), torch.zeros(3, dtype=x.dtype))
    assert torch.allclose(dynamics_loss(offset, x, betas=(1, 0, 0)),
                          torch.full((3,), 25 * (0.01 ** 2 + 0.02 ** 2 + 0.005 ** 2),
                                     dtype=x.dtype))
    # a linear drift has velocity but no acceleration
    t = torch.arange(10, dtype=x.dtype).view(1, 1, 10, 1, 1)
    drift = x + 0.001 * t
    assert float(dynamics_loss(drift, x, betas=(0, 0, 1)).abs().max()) < 1e-15
    assert torch.allclose(dynamics_loss(drift, x, betas=(0, 1, 0)),
                          torch.full((3,), 3 * 25 * 1e-6, dtype=x.dtype))
    # smoothness of the perturbation is the same term
    assert torch.allclose(temporal_smoothness_loss(drift - x, order=1),
                          dynamics_loss(drift, x, betas=(0, 1)))
    assert torch.equal(temporal_smoothness_loss(x[:, :, :1], order=1), torch.zeros(3,
                                                                                  dtype=x.dtype))


def test_bone_and_angle_losses_are_rigid_invariant():
    x = _motion()
    c, s = math.cos(0.7), math.sin(0.7)
    rot = torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=x.dtype)
    moved = torch.einsum("ij,njtvm->nitvm", rot, x) + 0.3
    ref_l, ref_a = bone_lengths(x, "ntu25"), joint_angles(x, "ntu25")
    assert float(bone_length_loss(moved, ref_l, "ntu25").abs().max()) < 1e-12
    assert float(joint_angle_loss(moved, ref_a, "ntu25").abs().max()) < 1e-8
    scaled = x * 1.1  # a uniform scale changes every bone by 10 %, and no angle
    expected = ((0.1 * ref_l) ** 2).sum((2, 3)).mean(1)
    assert torch.allclose(bone_length_loss(scaled, ref_l, "ntu25"), expected, rtol=1e-6)
    assert float(joint_angle_loss(scaled, ref_a, "ntu25").abs().max()) < 1e-8


def test_losses_per_sample_and_masked():
    x = _motion(n=4)
    xa = x + 0.01 * _motion(n=4, seed=1)
    lengths = torch.tensor([10, 6, 10, 3])
    x[1, :, 6:] = 0
    x[3, :, 3:] = 0
    xa = torch.where(x == 0, torch.zeros_like(xa), xa)
    mask = motion_mask(x, lengths)
    ref = bone_lengths(x, "ntu25")
    full = smart_perceptual_loss(xa, x, ref, "ntu25", mask)
    for i in range(4):
        one = smart_perceptual_loss(xa[i:i + 1], x[i:i + 1], ref[i:i + 1], "ntu25",
                                    mask[i:i + 1])
        assert torch.allclose(one, full[i:i + 1])
    # frames past the length do not count: garbage there changes nothing
    junk = xa.clone()
    junk[1, :, 7:] = 5.0
    assert torch.allclose(smart_perceptual_loss(junk, x, ref, "ntu25", mask)[1], full[1])


@pytest.mark.parametrize("fps, padded", [(None, True), (30.0, True), (None, False)])
def test_closed_form_gradient_equals_autograd(fps, padded):
    x = _motion(n=3, t=9, m=2 if padded else 1).float()
    if padded:  # per-sample operators; else one operator shared by all samples
        x[1, :, 6:] = 0
        x[2, :, :, :, 1] = 0
    mask = motion_mask(x, torch.tensor([9, 6, 9]) if padded else None)
    xa = (x + 0.02 * _motion(n=3, t=9, m=x.shape[-1], seed=2).float()) * mask
    x64 = x.double()
    ref = bone_lengths(x64, "ntu25")
    for alpha, betas in ((0.3, (0.6, 0.0, 0.4)), (0.5, (0.2, 0.3, 0.5))):
        xg = xa.double().requires_grad_(True)  # float64 autograd as the reference
        loss = smart_perceptual_loss(xg, x64, ref, "ntu25", mask.double(), alpha, betas, fps)
        (auto,) = torch.autograd.grad(loss.sum(), xg)
        closed = SmartPerceptualGradient(x, "ntu25", mask, alpha, betas, fps)(xa)
        assert torch.allclose(closed.double(), auto, rtol=1e-4,
                              atol=1e-5 * float(auto.abs().max()))
        zero = SmartPerceptualGradient(x, "ntu25", mask, alpha, betas, fps)(x)
        assert not bool(zero.any())  # exactly zero at the clean motion, not rounding noise
        rows = SmartPerceptualGradient(x, "ntu25", mask, alpha, betas, fps).rows(
            torch.tensor([2, 0]))(xa[[2, 0]])
        assert torch.allclose(rows, closed[[2, 0]], atol=1e-6 * float(auto.abs().max()))
        assert closed.dtype == torch.float32
        alone = SmartPerceptualGradient(x[1:2], "ntu25", mask[1:2], alpha, betas, fps)(xa[1:2])
        assert torch.equal(alone, closed[1:2])  # a sample's gradient ignores its batch


def test_apply_banded_equals_the_dense_operator():
    """The diagonals applied by shifts give ``Σ_n c_n Dⁿᵀ W_n Dⁿ δ`` as a dense matrix does."""
    t = 7
    w = torch.ones(2, 1, t, 1, 1, dtype=torch.float64)
    w[1, :, 5:] = 0  # second sample: 5 valid frames
    betas = (0.6, 0.3, 0.4)
    bands = dynamics_bands(w, 0.5, betas, fps=10.0)
    assert [b.shape[2] for b in bands] == [t, t - 1, t - 2]
    gen = torch.Generator().manual_seed(0)
    delta = torch.randn(2, 3, t, 4, 1, dtype=torch.float64, generator=gen)
    for i in range(2):
        wt = w[i, 0, :, 0, 0]
        dense = torch.zeros(t, t, dtype=torch.float64)
        for order, beta in enumerate(betas):
            d = difference_matrix(t, order) * 10.0 ** order
            wn = wt
            for _ in range(order):
                wn = wn[1:] * wn[:-1]
            dense += 2 * 0.5 * beta / wn.sum() * d.T @ torch.diag(wn) @ d
        want = torch.einsum("st,ctvm->csvm", dense, delta[i])
        assert torch.allclose(apply_banded(bands, delta)[i], want, rtol=1e-12, atol=1e-12)
    assert not apply_banded([], delta).any()


# ---------------------------------------------------------------------- SMART
def test_smart_success_per_goal_and_perceptual_report(v, batch, ab):
    x, y = batch
    assert ab.success_rate >= 95.0
    sa = SMART(v.classifier, goal="sa", target_mode="random", **FAST).attack(x, y)
    assert sa.success_rate >= 80.0
    assert bool((sa.adv_pred[sa.success] == sa.target[sa.success]).all())
    abn = SMART(v.classifier, goal="abn", n=3, **FAST).attack(x, y)
    assert abn.success_rate >= 60.0
    top3 = v.classifier(abn.x_adv).topk(3, dim=1).indices
    assert not bool((top3[abn.success] == y[abn.success, None]).any())
    per = ab.summary()["perceptual"]
    # sensible: tens of mm on average for this (robust) MLP, bones kept within a few %
    assert 15.0 < per["joint_mm_mean"] < 60.0  # measured 38 mm
    assert per["bone_pct_mean"] < 6.0


def test_perceptual_loss_matters(v, batch, ab):
    """Without L_p (w = 1) the same attack changes bones and acceleration much more."""
    x, y = batch
    bare = SMART(v.classifier, goal="ab", w=1.0, **FAST).attack(x, y)
    both = ab.success & bare.success
    assert int(both.sum()) >= 8
    smart = {k: v[both.numpy()].mean() for k, v in ab.report.per_sample.items()}
    plain = {k: v[both.numpy()].mean() for k, v in bare.report.per_sample.items()}
    assert smart["bone_pct_mean"] < 0.7 * plain["bone_pct_mean"]
    assert smart["acceleration_mm_s2_mean"] < 0.8 * plain["acceleration_mm_s2_mean"]


def test_early_stop_freezes_successful_samples(v, batch, ab):
    x, y = batch
    ok = ab.success & (ab.iterations < FAST["steps"])
    assert bool(ok.any())
    assert torch.equal(ab.queries, ab.iterations + 2 + (ab.iterations < FAST["steps"]).long())
    i = int(torch.nonzero(ok)[0])
    k = int(ab.iterations[i])
    # stopping after k steps gives the very same motion: nothing moved after success
    short = SMART(v.classifier, goal="ab", steps=k, lr=FAST["lr"]).attack(x[i:i + 1],
                                                                          y[i:i + 1])
    assert torch.allclose(short.x_adv[0], ab.x_adv[i], atol=1e-6)
    assert bool(short.success[0])
    if k > 0:
        before = SMART(v.classifier, goal="ab", steps=k - 1, lr=FAST["lr"]).attack(
            x[i:i + 1], y[i:i + 1])
        assert not bool(before.success[0])  # the first success is the one kept


def test_input_never_mutated_alone_equals_batched_deterministic(v, batch, ab):
    x, y = batch
    x0 = x.clone()
    atk = SMART(v.classifier, goal="sa", target_mode="random", steps=60, lr=1.0, seed=5)
    res = atk.attack(x[:6], y[:6])
    assert torch.equal(x, x0)
    for i in (0, 4):
        alone = atk.attack(x[i:i + 1], y[i:i + 1])
        assert alone.target[0] == res.target[i]
        assert torch.allclose(alone.x_adv[0], res.x_adv[i], atol=1e-5)
        assert alone.iterations[0] == res.iterations[i]
    again = atk.attack(x[:6], y[:6])
    assert torch.equal(again.x_adv, res.x_adv) and torch.equal(again.target, res.target)
    other = SMART(v.classifier, goal="sa", target_mode="random", steps=60, lr=1.0, seed=6)
    assert not torch.equal(other.attack(x[:6], y[:6]).target, res.target)


@pytest.mark.parametrize("norm, budget", [(None, 15.0), ("linf", 15.0), ("l2", 300.0)])
def test_hard_budget(v, batch, norm, budget):
    """Exact in float32 for every norm; the default bounds each joint's displacement."""
    x, y = batch
    kw = {} if norm is None else {"norm": norm}
    res = SMART(v.classifier, steps=80, lr=1.0, budget_mm=budget, **kw).attack(x, y)
    delta = res.x_adv.double() - x.double()
    size = {None: delta.norm(dim=1), "linf": delta.abs(), "l2": delta.flatten(1).norm(dim=1)}
    assert float(size[norm].max()) <= budget / 1000.0
    assert float(size[norm].max()) > 0.9 * budget / 1000.0  # the budget binds
    summary = res.summary()
    assert (summary["norm"], summary["budget_mm"]) == (norm or "joint", budget)
    if norm == "linf":  # a joint moves farther than the budget under L∞, never by default
        assert float(delta.norm(dim=1).max()) > budget / 1000.0


def test_unbudgeted_result_states_no_budget(ab):
    assert (ab.summary()["norm"], ab.summary()["budget_mm"]) == ("joint", None)


@pytest.mark.usefixtures("eager_progress")
def test_progress_bar_on_stderr_only_when_asked(v, batch, capsys):
    x, y = batch[0][:2], batch[1][:2]
    atk = SMART(v.classifier, steps=3, lr=1.0)
    quiet = atk(x, y)
    assert capsys.readouterr().err == ""
    atk.progress = True
    assert torch.equal(atk(x, y), quiet)
    assert "smart steps" in capsys.readouterr().err


def test_padding_untouched(v, batch):
    x, y = batch[0][:3].clone(), batch[1][:3]
    lengths = torch.tensor([32, 18, 25])
    for i, n in enumerate(lengths.tolist()):
        x[i, :, n:] = 0
    res = SMART(v.classifier, steps=30, lr=1.0).attack(x, y, lengths=lengths)
    outside = (motion_mask(x, lengths) == 0).expand_as(x)
    assert bool((res.x_adv[outside] == 0).all())
    assert bool((res.x_adv[~outside] != x[~outside]).any())


def test_bad_arguments(v):
    for kw in ({"w": 1.5}, {"alpha": -0.1}, {"lr": 0}, {"steps": -1}, {"betas": (-1.0,)},
               {"budget_mm": 0}, {"norm": "l1"}, {"class_loss": "hinge"}):
        with pytest.raises(ConfigError):
            SMART(v.classifier, **kw)
    with pytest.raises(ConfigError, match="'joint', 'linf', 'l2'"):
        SMART(v.classifier, budget_mm=10, norm="L2")
