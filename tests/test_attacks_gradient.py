"""FGSM, I-FGSM (BIM), PGD and MI-FGSM: success, exact budgets, seeding, restarts, queries."""

from __future__ import annotations

import pytest
import torch

from attack_fixtures import eager_progress, one_thread, victim  # noqa: F401 (fixtures)
from skelrobust.attacks import BIM, FGSM, IFGSM, MIFGSM, PGD, motion_mask
from skelrobust.attacks.white_box import project_linf_exact
from skelrobust.errors import ConfigError

# mm: the small MLP needs large perturbations (PGD L∞ 20 mm fools ~20 %); the default
# per-joint ball is smaller than the L∞ cube of the same ε (PGD: 88 % at 80 mm, 100 % at 100)
EPS = 100.0


def joint_displacement(x_adv, x):
    """Largest distance any joint moved, in float64: ``max ‖x_adv − x‖₂`` over xyz."""
    return float((x_adv.double() - x.double()).norm(dim=1).max())


@pytest.fixture(scope="module")
def v():
    return victim()


@pytest.fixture(scope="module")
def batch(v):
    return v.x[:24], v.y[:24]


def _attacks(clf, **kw):
    return [FGSM(clf, budget_mm=EPS, **kw), BIM(clf, budget_mm=EPS, **kw),
            PGD(clf, budget_mm=EPS, steps=10, **kw), MIFGSM(clf, budget_mm=EPS, **kw)]


def test_success_on_synthetic_classifier(v, batch):
    x, y = batch
    rates = {atk.name: atk.attack(x, y).success_rate for atk in _attacks(v.classifier)}
    assert rates["pgd"] >= 90.0, rates
    assert min(rates.values()) >= 60.0, rates
    assert rates["pgd"] >= rates["fgsm"], rates  # iterating never hurts here
    l2 = PGD(v.classifier, budget_mm=EPS * 30, norm="l2", steps=10).attack(x, y)
    assert l2.success_rate >= 80.0
    sa = PGD(v.classifier, goal="sa", target_mode="random", budget_mm=EPS, steps=10)
    res = sa.attack(x, y)
    assert res.success_rate >= 60.0
    assert bool((res.adv_pred[res.success] == res.target[res.success]).all())


@pytest.mark.parametrize("kind", ["fgsm", "bim", "pgd", "mifgsm"])
def test_linf_budget_in_mm_is_exact(v, batch, kind):
    x, y = batch
    atk = {a.name: a for a in _attacks(v.classifier, norm="linf")}[kind]
    x_adv = atk(x, y)
    dist = (x_adv.double() - x.double()).abs().max()
    assert float(dist) <= EPS / 1000.0  # never beyond the budget, not even by one rounding
    assert float(dist) >= EPS / 1000.0 - 1e-6  # and the sign steps use all of it


@pytest.mark.parametrize("kind", ["fgsm", "bim", "pgd", "mifgsm"])
def test_default_budget_bounds_every_joint_exactly(v, batch, kind):
    """``budget_mm`` means "no joint moves more than ε" by default, exactly in float32."""
    x, y = batch
    atk = {a.name: a for a in _attacks(v.classifier)}[kind]
    res = atk.attack(x, y)
    assert atk.norm == "joint"
    assert res.summary()["norm"] == "joint" and res.summary()["budget_mm"] == EPS
    dist = joint_displacement(res.x_adv, x)
    assert dist <= EPS / 1000.0  # never beyond the budget, not even by one rounding
    # and the steps use it: FGSM/PGD fill the ball, BIM/MI-FGSM's ε/steps steps turn a little
    assert dist >= EPS / 1000.0 * (1 - 1e-5 if kind in ("fgsm", "pgd") else 0.99)


def test_joint_budget_is_not_the_linf_cube(v, batch):
    """Under L∞ a joint moves up to ε·√3; under the joint norm never more than ε."""
    x, y = batch
    linf = PGD(v.classifier, budget_mm=EPS, steps=10, norm="linf")(x, y)
    joint = PGD(v.classifier, budget_mm=EPS, steps=10)(x, y)
    assert joint_displacement(linf, x) > 1.5 * EPS / 1000.0
    assert joint_displacement(joint, x) <= EPS / 1000.0
    # the joint ball holds the per-coordinate bound too, and reaches it only along an axis
    assert float((joint.double() - x.double()).abs().max()) <= EPS / 1000.0


def test_joint_random_start_is_uniform_in_each_joint_ball(v, batch):
    x = batch[0]
    atk = PGD(v.classifier, budget_mm=EPS, steps=1)
    start = atk._start(x, motion_mask(x), 0).double()
    r = start.norm(dim=1) / (EPS / 1000.0)  # (N, T, V, M), uniform in the ball: r³ ~ U(0, 1)
    assert float(r.max()) <= 1.0 + 1e-6
    assert abs(float((r ** 3).mean()) - 0.5) < 0.02
    direction = start / start.norm(dim=1, keepdim=True)
    assert float(direction.mean(dim=(0, 2, 3, 4)).abs().max()) < 0.02  # no preferred axis
    assert torch.equal(start, atk._start(x, motion_mask(x), 0))
    assert not torch.equal(start, atk._start(x, motion_mask(x), 1).double())  # restarts differ


def test_project_linf_exact_removes_rounding_overshoot():
    x = torch.linspace(-1.3, 1.7, 10001)
    eps = 0.0123
    naive = x + torch.full_like(x, eps)  # x + eps rounds above x + eps for many x
    assert float((naive.double() - x.double()).max()) > eps
    fixed = project_linf_exact(naive, x, eps)
    assert float((fixed.double() - x.double()).abs().max()) <= eps
    assert float((fixed.double() - x.double()).min()) > eps - 1e-6


def test_l2_budget(v, batch):
    x, y = batch
    eps = 500.0
    for atk in (PGD(v.classifier, budget_mm=eps, norm="l2", steps=5),
                FGSM(v.classifier, budget_mm=eps, norm="l2"),
                MIFGSM(v.classifier, budget_mm=eps, norm="l2", steps=5)):
        delta = (atk(x, y).double() - x.double()).flatten(1).norm(dim=1)
        assert float(delta.max()) <= eps / 1000.0, atk.name  # exact in float32 too
    # one FGSM step moves exactly the whole budget
    delta = (FGSM(v.classifier, budget_mm=eps, norm="l2")(x, y) - x).double().flatten(1)
    expected = torch.full((len(x),), eps / 1000.0, dtype=torch.float64)
    assert torch.allclose(delta.norm(dim=1), expected, rtol=1e-4)


def test_input_never_mutated(v, batch):
    x, y = batch
    restarts = PGD(v.classifier, budget_mm=EPS, norm="l2", steps=3, restarts=2)
    for atk in [*_attacks(v.classifier), restarts]:
        x0, y0 = x.clone(), y.clone()
        atk(x, y)
        assert torch.equal(x, x0) and torch.equal(y, y0), atk.name


@pytest.mark.parametrize("norm", ["joint", "linf", "l2"])
def test_alone_equals_batched(v, batch, norm):
    x, y = batch
    eps = EPS if norm != "l2" else EPS * 30
    for atk in (PGD(v.classifier, budget_mm=eps, norm=norm, steps=6, early_stop=True),
                MIFGSM(v.classifier, budget_mm=eps, norm=norm, steps=6)):
        batched = atk.attack(x[:8], y[:8])
        for i in (0, 5):
            alone = atk.attack(x[i:i + 1], y[i:i + 1])
            assert torch.allclose(alone.x_adv[0], batched.x_adv[i], atol=1e-5), atk.name
            assert alone.iterations[0] == batched.iterations[i]


def test_deterministic_under_seed(v, batch):
    x, y = batch
    a = PGD(v.classifier, budget_mm=EPS, steps=4, seed=3)(x, y)
    b = PGD(v.classifier, budget_mm=EPS, steps=4, seed=3)(x, y)
    c = PGD(v.classifier, budget_mm=EPS, steps=4, seed=4)(x, y)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)  # the random start depends on the seed


def test_padding_and_absent_bodies_untouched(v, batch):
    x, y = batch[0][:4].clone(), batch[1][:4]
    lengths = torch.tensor([32, 20, 9, 32])
    for i, n in enumerate(lengths.tolist()):
        x[i, :, n:] = 0
    for atk in (PGD(v.classifier, budget_mm=EPS, steps=3),
                PGD(v.classifier, budget_mm=EPS, norm="linf", steps=3),
                PGD(v.classifier, budget_mm=EPS * 30, norm="l2", steps=3)):
        res = atk.attack(x, y, lengths=lengths)
        outside = motion_mask(x, lengths) == 0
        assert bool((res.x_adv.masked_select(outside.expand_as(x)) == 0).all())


def test_restarts_keep_the_best_per_sample(v, batch):
    x, y = batch
    atk = PGD(v.classifier, budget_mm=30.0, steps=3, restarts=3, seed=1)
    best = atk(x, y)
    mask = motion_mask(x)
    with torch.no_grad():
        margins = torch.stack([atk.margin(v.classifier(atk._run(x, y, None, mask, r)[0]), y, None)
                               for r in range(3)])
        got = atk.margin(v.classifier(best), y, None)
    assert torch.allclose(got, margins.min(0).values, atol=1e-5)
    assert bool((margins.max(0).values - margins.min(0).values > 1e-4).any())  # restarts differ


def test_early_stop_freezes_and_counts_queries(v, batch):
    x, y = batch
    res = PGD(v.classifier, budget_mm=EPS, steps=10, early_stop=True).attack(x, y)
    full = PGD(v.classifier, budget_mm=EPS, steps=10).attack(x, y)
    ok = res.success
    assert bool(ok.any()) and bool((res.iterations[ok] < 10).all())
    # one query per step taken; the clean and final checks are bookkeeping, counted apart
    assert torch.equal(res.queries, res.iterations + ok.long())
    assert res.info["bookkeeping_queries"] == 2
    assert torch.equal(full.queries, torch.full_like(full.queries, 10))
    # early-stopped samples moved less than when running all the steps
    d_stop = (res.x_adv - x).flatten(1).norm(dim=1)
    d_full = (full.x_adv - x).flatten(1).norm(dim=1)
    assert bool((d_stop[ok] <= d_full[ok] + 1e-6).all())


def test_momentum(v, batch):
    x, y = batch
    plain = BIM(v.classifier, budget_mm=EPS, steps=5)(x, y)
    no_decay = MIFGSM(v.classifier, budget_mm=EPS, steps=5, decay=0.0)(x, y)
    momentum = MIFGSM(v.classifier, budget_mm=EPS, steps=5, decay=1.0)(x, y)
    assert torch.equal(plain, no_decay)  # μ = 0 is I-FGSM
    assert not torch.equal(plain, momentum)
    assert IFGSM is BIM


def test_bad_arguments(v):
    for cls in (PGD, FGSM, BIM, MIFGSM):
        with pytest.raises(ConfigError, match=r"'joint', 'linf', 'l2'.*'l1'"):
            cls(v.classifier, norm="l1")
    with pytest.raises(ConfigError):
        PGD(v.classifier, budget_mm=0)
    with pytest.raises(ConfigError):
        BIM(v.classifier, steps=0)
    with pytest.raises(ConfigError):
        PGD(v.classifier, loss="hinge")


def test_margin_objective(v, batch):
    """``loss="margin"`` follows the CW margin of the goal: a different path, as effective."""
    x, y = batch
    margin = PGD(v.classifier, budget_mm=EPS, steps=10, loss="margin")
    res = margin.attack(x, y)
    assert res.success_rate >= 90.0
    assert not torch.equal(res.x_adv, PGD(v.classifier, budget_mm=EPS, steps=10)(x, y))
    with torch.no_grad():
        logits = v.classifier(x)
    assert torch.equal(margin.objective(logits, y, None), margin.margin(logits, y, None))


@pytest.mark.usefixtures("eager_progress")
def test_progress_bar_on_stderr_only_when_asked(v, batch, capsys):
    x, y = batch[0][:2], batch[1][:2]
    atk = PGD(v.classifier, budget_mm=EPS, steps=3, early_stop=True)
    atk(x, y)
    assert capsys.readouterr().err == ""
    atk.progress = True
    quiet = atk(x, y)
    err = capsys.readouterr().err
    assert "pgd steps" in err
    atk.progress = False
    assert torch.equal(quiet, atk(x, y))  # the bar changes nothing
    assert capsys.readouterr().err == ""
