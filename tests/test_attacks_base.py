"""The attack base: budgets and their exact projections, input checks, result info, progress."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attack_fixtures import eager_progress  # noqa: F401 (fixture)
from skelrobust.attacks import FGSM, PGD, project_budget
from skelrobust.attacks.base import NORMS, Attack, budget_size
from skelrobust.attacks.white_box import (
    joint_unit,
    project_exact,
    project_joint_exact,
    steepest,
)
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.progress import progress_bar

T, V, K = 8, 25, 5


class Linear(nn.Module):
    """A tiny victim without skeleton: logits linear in the motion."""

    num_classes = K

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * T * V, K)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(K, 3 * T * V, generator=torch.Generator()
                                             .manual_seed(0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def clf():
    return Linear().eval()


def _motion(n=4, seed=0, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, T, V, 1, generator=g) * scale


# ---------------------------------------------------------------------- budgets
def test_joint_projection_scales_each_joint_vector():
    eps = 0.02
    delta = torch.zeros(2, 3, T, V, 1)
    delta[0, :, 1, 2, 0] = torch.tensor([0.024, 0.0, 0.032])  # length 2ε
    delta[0, :, 3, 4, 0] = torch.tensor([0.01, -0.005, 0.002])  # inside
    delta[1, 0, 0, 0, 0] = 0.05  # along an axis
    out = project_budget(delta, eps, "joint")
    assert torch.allclose(out[0, :, 1, 2, 0], delta[0, :, 1, 2, 0] / 2)
    assert torch.equal(out[0, :, 3, 4, 0], delta[0, :, 3, 4, 0])  # inside: untouched
    assert torch.allclose(out[1, :, 0, 0, 0], torch.tensor([eps, 0.0, 0.0]))
    assert bool((out == 0).sum() == (delta == 0).sum())  # zeros stay zero, nothing NaN
    # the other balls, unchanged: per coordinate and per sample
    assert torch.equal(project_budget(delta, eps, "linf"), delta.clamp(-eps, eps))
    l2 = project_budget(delta, eps, "l2").flatten(1).norm(dim=1)
    assert torch.allclose(l2, torch.full((2,), eps))


def test_budget_sizes_and_unknown_norm():
    delta = _motion(2)
    assert budget_size(delta, "joint").shape == (2, 1, T, V, 1)
    assert budget_size(delta, "l2").shape == (2, 1, 1, 1, 1)
    assert torch.equal(budget_size(delta, "linf"), delta.abs())
    assert NORMS[0] == "joint"
    for call in (lambda: project_budget(delta, 0.1, "l1"), lambda: budget_size(delta, "L2"),
                 lambda: steepest(delta, "l1")):
        with pytest.raises(ConfigError, match="'joint', 'linf', 'l2'"):
            call()


def test_joint_steepest_step_is_the_unit_gradient_per_joint():
    g = _motion(2)
    g[0, :, 0, 0, 0] = 0
    step = steepest(g, "joint")
    lengths = step.norm(dim=1)
    assert float(lengths[0, 0, 0, 0]) == 0.0  # zero stays zero
    assert torch.allclose(lengths.flatten()[1:], torch.ones(lengths.numel() - 1))
    assert torch.equal(step, joint_unit(g))
    assert float((step * g).sum(1).min()) >= 0  # along each joint's gradient


@pytest.mark.parametrize("scale", [0.05, 1.0, 7.0])
def test_joint_projection_is_exact_in_float32(scale):
    """``x + ε·u`` rounds outside the ball for many joints; the projection never does."""
    x = _motion(64, seed=1, scale=scale)
    eps = 0.0123
    u = joint_unit(_motion(64, seed=2))
    naive = x + eps * u
    d = (naive.double() - x.double()).norm(dim=1)
    assert float((d > eps).float().mean()) > 0.05  # rounding overshoots often
    inside = x + 0.5 * eps * u
    mixed = torch.where(torch.arange(V).view(1, 1, 1, V, 1) % 2 == 0, naive, inside)
    fixed = project_joint_exact(mixed, x, eps)
    dist = (fixed.double() - x.double()).norm(dim=1)
    assert float(dist.max()) <= eps
    ulp = float(torch.finfo(torch.float32).eps * x.abs().max())
    assert float(dist[..., ::2, :].min()) > eps - 4 * ulp  # moved by rounding only
    ok = (d <= eps).unsqueeze(1).expand_as(x)
    assert torch.equal(fixed[ok], mixed[ok])  # those rounding left inside: untouched
    assert torch.equal(fixed[..., 1::2, :], mixed[..., 1::2, :])  # inside: bit for bit
    far = project_joint_exact(x + 3 * eps * u, x, eps)  # well outside: onto the sphere
    assert float((far.double() - x.double()).norm(dim=1).max()) <= eps


@pytest.mark.parametrize("norm", NORMS)
def test_exact_projection_of_every_norm(norm):
    x = _motion(8, seed=3, scale=2.0)
    eps = 0.0371
    x_adv = x + 0.2 * _motion(8, seed=4)
    out = project_exact(x_adv, x, eps, norm)
    size = budget_size(out.double() - x.double(), norm)
    assert float(size.max()) <= eps
    assert float(size.max()) > eps - 1e-6


# ---------------------------------------------------------------------- inputs
def test_numpy_inputs_are_accepted(clf):
    x, y = _motion(3), torch.tensor([0, 3, 4])
    atk = FGSM(clf, budget_mm=30.0, report=False)
    ref = atk.attack(x, y, lengths=torch.tensor([8, 5, 8]))
    x_np = x.double().numpy().copy()
    before = x_np.copy()
    res = atk.attack(x_np, y.numpy(), lengths=np.array([8, 5, 8]))
    assert res.x_adv.dtype == torch.float32
    assert torch.equal(res.x_adv, ref.x_adv)
    assert np.array_equal(x_np, before)  # never mutated
    sa = FGSM(clf, goal="sa", budget_mm=30.0, report=False)
    assert torch.equal(sa.attack(x_np, y.numpy(), target=np.array([1, 1, 2])).target,
                       torch.tensor([1, 1, 2]))


def test_labels_outside_the_classes_are_refused(clf):
    x = _motion(3)
    atk = FGSM(clf, report=False)
    with pytest.raises(ConfigError, match=r"labels y must be in \[0, 4\], got 5"):
        atk(x, torch.tensor([0, 5, 1]))
    with pytest.raises(ConfigError, match=r"got -1"):
        atk(x, np.array([0, -1, 1]))
    with pytest.raises(ConfigError, match="integers"):
        atk(x, np.array([0.0, 1.5, 1.0]))
    with pytest.raises(ShapeError, match="labels"):
        atk(x, torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match=r"target must be in \[0, 4\], got 7"):
        FGSM(clf, goal="sa", report=False)(x, torch.tensor([0, 1, 2]), target=[1, 7, 0])


def test_bad_lengths_are_refused(clf):
    x, y = _motion(3), torch.tensor([0, 1, 2])
    atk = FGSM(clf, report=False)
    with pytest.raises(ShapeError, match="lengths"):
        atk(x, y, lengths=torch.tensor([8, 8]))
    with pytest.raises(ConfigError, match=rf"lengths must be in \[1, {T}\], got 0"):
        atk(x, y, lengths=[8, 0, 3])
    with pytest.raises(ConfigError, match=rf"got {T + 1}"):
        atk(x, y, lengths=np.array([8, T + 1, 3]))
    with pytest.raises(ShapeError, match="motion"):
        atk(x.numpy()[0], y)


# ---------------------------------------------------------------------- results, progress
def test_results_state_norm_and_budget(clf):
    x, y = _motion(2), torch.tensor([0, 1])
    assert FGSM(clf, budget_mm=12, report=False).attack(x, y).summary()["norm"] == "joint"
    summary = PGD(clf, budget_mm=12, norm="linf", steps=2, report=False).attack(x, y).summary()
    assert (summary["norm"], summary["budget_mm"]) == ("linf", 12.0)
    assert "norm" not in Attack(clf).threat_model()  # no budget, nothing claimed


@pytest.mark.usefixtures("eager_progress")
def test_goal_counts_on_the_bar(clf):
    atk = FGSM(clf, report=False)
    with atk.step_bar(3) as hidden:
        atk.show_goals(hidden, torch.tensor([True, False]))  # no-op when hidden
    atk.progress = True
    with atk.step_bar(3) as bar:
        atk.show_goals(bar, torch.tensor([True, False, True]))
        assert "reached=2/3" in bar.postfix and "active=1" in bar.postfix
        atk.show_goals(bar, torch.tensor([True, False, False]), frozen=False)
        assert bar.postfix == "reached=1/3"
    with progress_bar(range(2), enabled=False) as off:
        assert off.disable
