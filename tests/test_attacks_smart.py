"""SMART and the perceptual losses: success per goal, perceptual invariants, early stop, budgets,
presets (paper, the two research codes, legacy) and the exact-bone-length option."""

from __future__ import annotations

import math

import pytest
import torch

from attack_fixtures import eager_progress, one_thread, victim  # noqa: F401 (fixtures)
from skelrobust.attacks import SMART, motion_mask
from skelrobust.attacks.base import project_budget
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
from skelrobust.attacks.running import attack_settings
from skelrobust.attacks.smart import DEFAULT_PRESET, PRESETS, joint_position_weights, spine_joints
from skelrobust.attacks.white_box import per_sample_norm, project_exact
from skelrobust.errors import ConfigError
from skelrobust.skeleton import get_skeleton

FAST = {"steps": 200, "step_mm": 2.0}  # the MLP needs ~40 mm on average: take 2 mm steps


@pytest.fixture(scope="module")
def v():
    return victim()


@pytest.fixture(scope="module")
def batch(v):
    return v.x[:16], v.y[:16]


@pytest.fixture(scope="module")
def ab(v, batch):
    return SMART(v.classifier, goal="ab", **FAST).attack(*batch)  # the default: "paper"


@pytest.fixture(scope="module")
def legacy_ab(v, batch):
    return SMART(v.classifier, goal="ab", preset="legacy", **FAST).attack(*batch)


@pytest.fixture(scope="module")
def bare_ab(v, batch):
    """Without L_p (w = 1): the same for every preset that steps per clip."""
    return SMART(v.classifier, goal="ab", w=1.0, **FAST).attack(*batch)


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


NTU = get_skeleton("ntu25")
CODE_WEIGHTS = {"reduction": "sum", "position_weights": joint_position_weights("spine", NTU)}


@pytest.mark.parametrize("fps, padded, extra", [(None, True, {}), (30.0, True, {}),
                                                (None, False, {}), (30.0, True, CODE_WEIGHTS),
                                                (None, False, CODE_WEIGHTS)])
def test_closed_form_gradient_equals_autograd(fps, padded, extra):
    """Also with the research codes' sums over frames and per-joint position weights."""
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
        loss = smart_perceptual_loss(xg, x64, ref, "ntu25", mask.double(), alpha, betas, fps,
                                     **extra)
        (auto,) = torch.autograd.grad(loss.sum(), xg)
        closed = SmartPerceptualGradient(x, "ntu25", mask, alpha, betas, fps, **extra)(xa)
        assert torch.allclose(closed.double(), auto, rtol=1e-4,
                              atol=1e-5 * float(auto.abs().max()))
        zero = SmartPerceptualGradient(x, "ntu25", mask, alpha, betas, fps, **extra)(x)
        assert not bool(zero.any())  # exactly zero at the clean motion, not rounding noise
        rows = SmartPerceptualGradient(x, "ntu25", mask, alpha, betas, fps, **extra).rows(
            torch.tensor([2, 0]))(xa[[2, 0]])
        assert torch.allclose(rows, closed[[2, 0]], atol=1e-6 * float(auto.abs().max()))
        assert closed.dtype == torch.float32
        alone = SmartPerceptualGradient(x[1:2], "ntu25", mask[1:2], alpha, betas, fps,
                                        **extra)(xa[1:2])
        assert torch.equal(alone, closed[1:2])  # a sample's gradient ignores its batch


def test_sums_and_position_weights_of_the_research_codes():
    """``reduction="sum"``: the mean times the valid-stencil count; weights: on position only."""
    x = _motion(n=2)
    xa = x + 0.01 * _motion(n=2, seed=3)
    mask = motion_mask(x, torch.tensor([10, 7]))
    frames = torch.tensor([10.0, 7.0], dtype=x.dtype)
    for order, count in ((0, frames), (2, frames - 2)):
        mean = temporal_smoothness_loss(xa - x, mask, order)
        total = temporal_smoothness_loss(xa - x, mask, order, reduction="sum")
        assert torch.allclose(total, mean * count)
    ref = bone_lengths(x, "ntu25")
    assert torch.allclose(bone_length_loss(xa, ref, "ntu25", mask, reduction="sum"),
                          bone_length_loss(xa, ref, "ntu25", mask) * frames)
    spine = spine_joints(NTU)
    only_spine = [1.0 if j in spine else 0.0 for j in range(25)]
    delta = (xa - x) * mask
    want = (delta[:, :, :, list(spine)] ** 2).sum((1, 2, 3, 4))
    got = dynamics_loss(xa, x, mask, betas=(1.0, 0.0, 1.0), reduction="sum",
                        position_weights=only_spine)
    acc = temporal_smoothness_loss(xa - x, mask, 2, reduction="sum")
    assert torch.allclose(got, want + acc)  # the acceleration term is not weighted
    with pytest.raises(ValueError, match="reduction"):
        dynamics_loss(xa, x, reduction="median")
    with pytest.raises(ValueError, match="one weight per joint"):
        dynamics_loss(xa, x, position_weights=[1.0, 2.0])


def test_acceleration_term_scales_with_fps():
    """Per second at f fps, the n-th derivative's term is f^(2n) times its per-frame value."""
    x = _motion(n=2, t=12).float()
    xa = x + 0.01 * _motion(n=2, t=12, seed=4).float()
    for order in (1, 2):
        betas = tuple(1.0 if n == order else 0.0 for n in range(3))
        per_frame = SmartPerceptualGradient(x, "ntu25", None, 1.0, betas, None)(xa)
        at_30 = SmartPerceptualGradient(x, "ntu25", None, 1.0, betas, 30.0)(xa)
        want = per_frame * 30.0 ** (2 * order)
        assert torch.allclose(at_30, want, rtol=1e-5, atol=1e-6 * float(want.abs().max()))
        assert torch.allclose(dynamics_loss(xa, x, betas=betas, fps=30.0),
                              dynamics_loss(xa, x, betas=betas) * 30.0 ** (2 * order),
                              rtol=1e-5)
    position = (1.0, 0.0, 0.0)
    assert torch.equal(SmartPerceptualGradient(x, "ntu25", None, 1.0, position, 30.0)(xa),
                       SmartPerceptualGradient(x, "ntu25", None, 1.0, position, None)(xa))
    # the legacy preset takes derivatives per frame: its acceleration term is 30^4 times smaller
    assert PRESETS["legacy"]["fps"] is None
    assert all(PRESETS[k]["fps"] == 30.0 for k in ("paper", "cvpr2021-code", "benchmark"))


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
    # sensible: tens of mm on average for this (robust) MLP
    assert 15.0 < per["joint_mm_mean"] < 60.0  # measured 41 mm


def _means(res, keep):
    return {k: v[keep.numpy()].mean() for k, v in res.report.per_sample.items()}


def test_perceptual_loss_matters(ab, legacy_ab, bare_ab):
    """Without L_p (w = 1) the attack adds far more acceleration; per frame, more bone change.

    Per second at 30 fps (the paper, both codes) the acceleration term outweighs the
    bone-length term ~10⁵ times, so only the legacy per-frame derivatives keep bones
    (measured mean bone change: bare 13 %, legacy 3.4 %, paper 12 %).
    """
    both = ab.success & legacy_ab.success & bare_ab.success
    assert int(both.sum()) >= 8
    paper, legacy, plain = _means(ab, both), _means(legacy_ab, both), _means(bare_ab, both)
    for smart in (paper, legacy):
        assert smart["acceleration_mm_s2_mean"] < 0.5 * plain["acceleration_mm_s2_mean"]
    assert paper["acceleration_mm_s2_mean"] < legacy["acceleration_mm_s2_mean"]
    assert legacy["bone_pct_mean"] < 0.7 * plain["bone_pct_mean"]
    assert legacy["bone_pct_mean"] < 6.0
    assert paper["bone_pct_mean"] > 0.6 * plain["bone_pct_mean"]


def test_early_stop_freezes_successful_samples(v, batch, ab):
    x, y = batch
    ok = ab.success & (ab.iterations < FAST["steps"])
    assert bool(ok.any())
    assert torch.equal(ab.queries, ab.iterations + (ab.iterations < FAST["steps"]).long())
    i = int(torch.nonzero(ok)[0])
    k = int(ab.iterations[i])
    # stopping after k steps gives the very same motion: nothing moved after success
    short = SMART(v.classifier, goal="ab", steps=k, step_mm=FAST["step_mm"]).attack(x[i:i + 1],
                                                                          y[i:i + 1])
    assert torch.allclose(short.x_adv[0], ab.x_adv[i], atol=1e-6)
    assert bool(short.success[0])
    if k > 0:
        before = SMART(v.classifier, goal="ab", steps=k - 1, step_mm=FAST["step_mm"]).attack(
            x[i:i + 1], y[i:i + 1])
        assert not bool(before.success[0])  # the first success is the one kept


def test_input_never_mutated_alone_equals_batched_deterministic(v, batch, ab):
    x, y = batch
    x0 = x.clone()
    atk = SMART(v.classifier, goal="sa", target_mode="random", steps=60, step_mm=1.0, seed=5)
    res = atk.attack(x[:6], y[:6])
    assert torch.equal(x, x0)
    for i in (0, 4):
        alone = atk.attack(x[i:i + 1], y[i:i + 1])
        assert alone.target[0] == res.target[i]
        assert torch.allclose(alone.x_adv[0], res.x_adv[i], atol=1e-5)
        assert alone.iterations[0] == res.iterations[i]
    again = atk.attack(x[:6], y[:6])
    assert torch.equal(again.x_adv, res.x_adv) and torch.equal(again.target, res.target)
    other = SMART(v.classifier, goal="sa", target_mode="random", steps=60, step_mm=1.0, seed=6)
    assert not torch.equal(other.attack(x[:6], y[:6]).target, res.target)


@pytest.mark.parametrize("norm, budget", [(None, 15.0), ("linf", 15.0), ("l2", 300.0)])
def test_hard_budget(v, batch, norm, budget):
    """Exact in float32 for every norm; the default bounds each joint's displacement."""
    x, y = batch
    kw = {} if norm is None else {"norm": norm}
    res = SMART(v.classifier, steps=80, step_mm=1.0, budget_mm=budget, **kw).attack(x, y)
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
    atk = SMART(v.classifier, steps=3, step_mm=1.0)
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
    res = SMART(v.classifier, steps=30, step_mm=1.0).attack(x, y, lengths=lengths)
    outside = (motion_mask(x, lengths) == 0).expand_as(x)
    assert bool((res.x_adv[outside] == 0).all())
    assert bool((res.x_adv[~outside] != x[~outside]).any())


def test_bad_arguments(v):
    for kw in ({"w": 1.5}, {"alpha": -0.1}, {"step_mm": 0}, {"steps": -1}, {"betas": (-1.0,)},
               {"budget_mm": 0}, {"norm": "l1"}, {"class_loss": "hinge"}, {"fps": 0},
               {"step_norm": "joint"}, {"reduction": "median"}, {"position_weights": "torso"},
               {"position_weights": [1.0, 2.0]}, {"position_weights": [-1.0] * 25},
               {"max_angle_deg": 30.0}, {"keep_bone_lengths": True, "max_angle_deg": 0.0},
               {"preset": "legacy", "step_mm": -1.0}):
        with pytest.raises(ConfigError):
            SMART(v.classifier, **kw)
    with pytest.raises(ConfigError, match="'joint', 'linf', 'l2'"):
        SMART(v.classifier, budget_mm=10, norm="L2")
    with pytest.raises(ConfigError, match="'joint', 'linf'"):  # no realignment under an L2 ball
        SMART(v.classifier, budget_mm=10, norm="l2", keep_bone_lengths=True)


# ---------------------------------------------------------------------- presets
# (steps, step mm, w, weights of position / velocity / acceleration / bone length, fps,
#  step_norm, position_weights, reduction, budget_mm, norm), as docs/DESIGN-NOTES.md states
EXPECTED = {
    "paper": (1000, 0.5, 0.6, (0.18, 0.0, 0.12, 0.7), 30.0, "clip", "uniform", "sum", None,
              "joint"),
    "cvpr2021-code": (1000, 0.3086, 0.6, (0.4, 0.0, 0.18, 0.42), 30.0, "frame", "spine", "sum",
                      None, "joint"),
    "benchmark": (200, 0.0471, 0.6, (0.18, 0.0, 0.12, 0.7), 30.0, "clip", "spine", "sum", 10.0,
                  "linf"),
    "legacy": (1000, 0.5, 0.6, (0.18, 0.0, 0.12, 0.7), None, "clip", "uniform", "mean", None,
               "joint"),
}
RESOLVED = ("steps", "step_mm", "w", "alpha", "betas", "budget_mm", "norm", "class_loss", "fps",
            "step_norm", "position_weights", "reduction", "keep_bone_lengths", "max_angle_deg",
            "preset")


@pytest.mark.parametrize("preset", list(EXPECTED))
def test_presets_resolve_to_documented_values(v, preset):
    atk = SMART(v.classifier, preset=preset)
    steps, step_mm, w, weights, fps, step_norm, pw, reduction, budget, norm = EXPECTED[preset]
    assert atk.preset == preset
    assert (atk.steps, atk.w, atk.fps, atk.step_norm, atk.position_weights, atk.reduction,
            atk.budget_mm, atk.norm, atk.class_loss) == (steps, w, fps, step_norm, pw,
                                                         reduction, budget, norm, "ce")
    assert atk.step_mm == pytest.approx(step_mm, abs=5e-4)
    assert [atk.alpha * b for b in atk.betas] + [1 - atk.alpha] == pytest.approx(weights)
    assert not atk.keep_bone_lengths and atk.max_angle_deg is None
    recorded = attack_settings(atk)  # what the CLI writes: every resolved value, by name
    assert {k: recorded[k] for k in RESOLVED} == {k: getattr(atk, k) for k in RESOLVED}


def test_default_preset_is_the_paper_and_unknown_presets_are_refused(v):
    assert set(PRESETS) == set(EXPECTED)
    assert DEFAULT_PRESET == "paper" and SMART(v.classifier).preset == "paper"
    with pytest.raises(ConfigError, match="paper, cvpr2021-code, benchmark, legacy"):
        SMART(v.classifier, preset="cvpr2021")


def test_explicit_arguments_override_the_preset(v):
    atk = SMART(v.classifier, preset="benchmark", steps=7, step_mm=1.0, budget_mm=math.inf,
                norm="joint", position_weights="uniform")
    assert (atk.steps, atk.step_mm, atk.budget_mm, atk.norm, atk.position_weights) == (
        7, 1.0, None, "joint", "uniform")
    assert (atk.fps, atk.reduction, atk.alpha, atk.preset) == (30.0, "sum", 0.3, "benchmark")
    own = SMART(v.classifier, preset="cvpr2021-code", position_weights=[1.0] * 25, fps=60)
    assert own.position_weights == (1.0,) * 25 and own.fps == 60.0
    assert own.step_norm == "frame"


class _PreviousSMART(SMART):
    """SMART's loop as it was before the presets: one unit step per clip, nothing else."""

    def perturb(self, x, y, target, mask):
        n, full_mask = x.shape[0], bool(mask.all())
        percep_all = SmartPerceptualGradient(x, self.skeleton, mask, self.alpha, self.betas,
                                             self.fps)
        scale = (mask.flatten(1).sum(1) * 3 * x.shape[3]).sqrt() * (self.step_mm / 1000.0)
        budget = None if self.budget_mm is None else self.budget_mm / 1000.0
        x_adv, done = x.clone(), torch.zeros(n, dtype=torch.bool)
        iterations = torch.full((n,), self.steps, dtype=torch.long)
        idx, percep = None, percep_all
        for step in range(self.steps):
            xa, xc, ya, ta, ma, sa = self.rows(idx, x_adv, x, y, target, mask, scale)
            logits, _, g_class = self.gradient(xa, ya, ta, ~done)
            hit = self.reached(logits, ya, ta)
            g_percep = percep(xa)
            if not full_mask:
                g_class = g_class * ma
            sa = sa * (~hit).to(x.dtype)
            a = sa * self.w / per_sample_norm(g_class).clamp_min(1e-20)
            b = sa * (1 - self.w) / per_sample_norm(g_percep).clamp_min(1e-20)
            xa = torch.addcmul(xa, g_class, a.view(-1, 1, 1, 1, 1), value=-1.0)
            xa = torch.addcmul(xa, g_percep, b.view(-1, 1, 1, 1, 1), value=-1.0)
            if budget is not None:
                xa = xc + project_budget(xa - xc, budget, self.norm) * ma
            x_adv = xa if idx is None else x_adv.index_copy(0, idx, xa)
            if bool(hit.any()):
                rows = torch.arange(n) if idx is None else idx
                iterations[rows[hit]] = step
                done[rows[hit]] = True
                idx = (~done).nonzero()[:, 0]
                if len(idx) == 0:
                    break
                percep = percep_all.rows(idx)
        if budget is not None:
            x_adv = project_exact(x_adv, x, budget, self.norm)
        return x_adv, iterations


def _padded(batch, k=6):
    x, y = batch[0][:k].clone(), batch[1][:k]
    lengths = torch.tensor([32, 20, 32, 27, 32, 32][:k])
    for i, t in enumerate(lengths.tolist()):
        x[i, :, t:] = 0
    return x, y, lengths


@pytest.mark.parametrize("kw", [
    {"goal": "ab", "steps": 60, "step_mm": 2.0},
    {"goal": "sa", "target_mode": "random", "steps": 30, "seed": 3},
    {"goal": "ab", "steps": 30, "step_mm": 1.0, "budget_mm": 10.0, "norm": "linf"},
    {"goal": "abn", "n": 3, "steps": 30, "step_mm": 2.0, "class_loss": "margin"},
])
def test_legacy_preset_is_the_previous_smart_bit_for_bit(v, batch, kw):
    """Every stored SMART figure was made with these settings: ``preset="legacy"`` keeps them."""
    x, y, lengths = _padded(batch)
    old = _PreviousSMART(v.classifier, preset="legacy", **kw).attack(x, y, lengths=lengths)
    new = SMART(v.classifier, preset="legacy", **kw).attack(x, y, lengths=lengths)
    assert torch.equal(new.x_adv, old.x_adv) and torch.equal(new.iterations, old.iterations)
    # also as explicit arguments on the default preset: per-frame derivatives, means
    explicit = SMART(v.classifier, fps=1.0, reduction="mean", **kw).attack(x, y, lengths=lengths)
    assert torch.equal(explicit.x_adv, old.x_adv)


def test_per_frame_step_moves_every_valid_frame_alike(v, batch):
    """The CVPR 2021 code's normalisation: each frame's step has the same length."""
    x, y, lengths = _padded(batch)
    valid = motion_mask(x, lengths)[:, 0, :, 0].bool()  # (N, T, M)
    for w in (0.6, 1.0):  # at the clean motion the perceptual gradient is exactly zero
        atk = SMART(v.classifier, preset="cvpr2021-code", steps=1, step_mm=2.0, w=w)
        res = atk.attack(x, y, lengths=lengths)
        moved = res.iterations == 1  # not at its goal before the step
        assert int(moved.sum()) >= 4
        size = torch.linalg.vector_norm(res.x_adv.double() - x.double(), dim=(1, 3))
        sel = valid & moved[:, None, None]
        want = w * math.sqrt(3 * 25) * 2.0e-3
        assert torch.allclose(size[sel], torch.full_like(size[sel], want), rtol=1e-3)
        assert not bool(size[~valid].any())
    # per clip (the paper): the whole step has that length per coordinate, frames differ
    clip = SMART(v.classifier, steps=1, step_mm=2.0, w=1.0).attack(x, y, lengths=lengths)
    i = int(torch.nonzero(clip.iterations == 1)[0])
    size = torch.linalg.vector_norm(clip.x_adv[i].double() - x[i].double(), dim=(0, 2))
    total = float(size[valid[i]].square().sum().sqrt())
    assert total == pytest.approx(math.sqrt(3 * 25 * int(valid[i].sum())) * 2.0e-3, rel=1e-3)
    assert float(size[valid[i]].std() / size[valid[i]].mean()) > 0.05


def _bone_change(x_adv, x, lengths=None):
    """Relative change of every bone length, ``(N, T, B, M)``, zero outside the clips."""
    valid = motion_mask(x, lengths)[:, 0, :, 0][:, :, None]  # (N, T, 1, M)
    clean = bone_lengths(x.double(), "ntu25")
    rel = (bone_lengths(x_adv.double(), "ntu25") - clean).abs() / clean.clamp_min(1e-3)
    return rel * valid


@pytest.mark.parametrize("preset", ["paper", "cvpr2021-code", "legacy"])
def test_keep_bone_lengths_keeps_every_bone_the_presets_do_not(v, batch, preset):
    x, y, lengths = _padded(batch)
    kw = {"goal": "ab", "preset": preset, **FAST}
    free = SMART(v.classifier, **kw).attack(x, y, lengths=lengths)
    kept = SMART(v.classifier, keep_bone_lengths=True, **kw).attack(x, y, lengths=lengths)
    assert float(_bone_change(free.x_adv[free.success], x[free.success]).amax()) > 0.1
    assert float(_bone_change(kept.x_adv, x, lengths).amax()) < 1e-4
    assert kept.success_rate >= 80.0
    outside = (motion_mask(x, lengths) == 0).expand_as(x)
    assert bool((kept.x_adv[outside] == 0).all())


@pytest.mark.parametrize("norm", ["joint", "linf"])
def test_keep_bone_lengths_within_a_budget_and_an_angle(v, batch, norm):
    x, y = batch[0][:4], batch[1][:4]
    res = SMART(v.classifier, steps=40, step_mm=2.0, budget_mm=30.0, norm=norm,
                keep_bone_lengths=True, max_angle_deg=20.0).attack(x, y)
    delta = res.x_adv.double() - x.double()
    size = delta.norm(dim=1) if norm == "joint" else delta.abs()
    assert float(size.max()) <= 0.030
    assert float(size.max()) > 0.015  # it moved
    assert float(_bone_change(res.x_adv, x).amax()) < 1e-4
    skel = get_skeleton("ntu25")
    bones = torch.as_tensor(skel.bones)
    vec = [(m.double()[:, :, :, bones[:, 0]] - m.double()[:, :, :, bones[:, 1]])
           for m in (x, res.x_adv)]
    cos = (vec[0] * vec[1]).sum(1) / (vec[0].norm(dim=1) * vec[1].norm(dim=1))
    assert float(torch.rad2deg(torch.arccos(cos.clamp(-1, 1))).max()) <= 20.0 + 1e-2


def test_frame_steps_and_realignment_do_not_depend_on_the_batch(v, batch):
    x, y = batch
    atk = SMART(v.classifier, preset="cvpr2021-code", steps=60, step_mm=2.0,
                keep_bone_lengths=True)
    res = atk.attack(x[:5], y[:5])
    for i in (0, 3):
        alone = atk.attack(x[i:i + 1], y[i:i + 1])
        assert torch.allclose(alone.x_adv[0], res.x_adv[i], atol=1e-5)
        assert alone.iterations[0] == res.iterations[i]


def test_spine_joints_follow_the_authors_layout():
    hdm = get_skeleton("hdm05_25")
    assert spine_joints(hdm) == (10, 11, 12, 13, 14)  # the joints the research code weights 0.04
    assert joint_position_weights("spine", hdm) == (0.02,) * 10 + (0.04,) * 5 + (0.02,) * 10
    assert joint_position_weights("uniform", hdm) is None

    def names(layout):
        skel = get_skeleton(layout)
        return [skel.joint_names[j] for j in spine_joints(skel)]

    assert names("ntu25") == ["spine_base", "spine_mid", "spine_shoulder", "neck"]
    assert names("kinect20") == ["hip_center", "spine", "shoulder_center"]
    assert names("hdm05_31") == ["root", "lowerback", "upperback", "thorax", "lowerneck",
                                 "upperneck"]
    assert names("coco17") == []
