"""CIASA: success, constraints (bone lengths, angles, budget), localisation, GAN regulariser."""

from __future__ import annotations

import math

import pytest
import torch

from attack_fixtures import eager_progress, one_thread, victim  # noqa: F401 (fixtures)
from skelrobust.attacks.base import motion_mask
from skelrobust.attacks.ciasa import CIASA, resolve_frames, resolve_joints
from skelrobust.attacks.discriminator import BoneDirectionDiscriminator, train_discriminator
from skelrobust.attacks.eot import EOT
from skelrobust.attacks.projection import (
    descendant_mask,
    realign_bone_lengths,
    realign_within_budget,
)
from skelrobust.data.synthetic import generate_synthetic
from skelrobust.errors import ConfigError, UnknownNameError
from skelrobust.skeleton import get_skeleton

# The synthetic victim needs large perturbations: plain L∞ PGD reaches ~20 % at
# 20 mm and ~80 % at 50 mm on it, so the success tests use a large budget.
STRONG = {"budget_mm": 150.0, "step_mm": 8.0, "steps": 40, "max_angle_deg": 45.0,
          "gan_weight": 0.0, "temporal_weight": 0.0}
QUICK = {"budget_mm": 60.0, "step_mm": 5.0, "steps": 8, "gan_weight": 0.0}


@pytest.fixture(scope="module")
def v():
    return victim()


@pytest.fixture(scope="module")
def clips():
    """Four raw clips of 12 frames; the last clip is padded after frame 8."""
    x = torch.as_tensor(generate_synthetic(4, 12, seed=3).x)
    x[3, :, 8:] = 0
    return x


def relative_bone_change(adv, clean, skeleton):
    lc, la = skeleton.bone_lengths(clean), skeleton.bone_lengths(adv)
    real = lc > 1e-6
    return torch.where(real, (la - lc).abs() / lc.clamp_min(1e-6), torch.zeros_like(lc))


def joint_displacement(adv, clean):
    """Largest distance any joint moved, in float64."""
    return float((adv.double() - clean.double()).norm(dim=1).max())


def bone_turn_deg(adv, clean, skeleton):
    a, c = skeleton.bone_vectors(adv), skeleton.bone_vectors(clean)
    cross = torch.linalg.cross(a, c, dim=1).norm(dim=1)
    return torch.rad2deg(torch.atan2(cross, (a * c).sum(1)))


# ---------------------------------------------------------------------- realignment
def test_realign_restores_clean_bone_lengths_and_keeps_inputs(clips):
    skel = get_skeleton("ntu25")
    noisy = clips + 0.03 * torch.randn(clips.shape, generator=torch.Generator().manual_seed(0))
    noisy_copy, clips_copy = noisy.clone(), clips.clone()
    out = realign_bone_lengths(noisy, clips, skel)
    assert torch.equal(noisy, noisy_copy) and torch.equal(clips, clips_copy)
    assert relative_bone_change(noisy, clips, skel).max() > 0.05  # the noise did break them
    assert relative_bone_change(out, clips, skel).max() <= 1e-3
    assert torch.isfinite(out).all()
    # directions are those of the perturbed bones
    assert bone_turn_deg(out[:3], noisy[:3], skel).max() < 0.01


@pytest.mark.parametrize("norm", ["joint", "linf"])
def test_realign_within_budget_holds_all_constraints(clips, norm):
    skel = get_skeleton("ntu25")
    noisy = clips + 0.03 * torch.randn(clips.shape, generator=torch.Generator().manual_seed(1))
    eps, limit = 0.012, 10.0
    out = realign_within_budget(noisy, clips, skel, eps, max_angle_deg=limit, norm=norm)
    delta = out.double() - clips.double()
    size = delta.norm(dim=1) if norm == "joint" else delta.abs()
    assert size.max() <= eps  # in float, no tolerance
    assert size.max() > 0.9 * eps  # and the budget is used
    if norm == "linf":  # the cube lets a joint move farther than ε; the default ball does not
        assert delta.norm(dim=1).max() > 1.2 * eps
    assert relative_bone_change(out, clips, skel).max() <= 1e-3
    assert bone_turn_deg(out[:3], clips[:3], skel).max() <= limit + 1e-3
    angles = (skel.joint_angles(out[:3], degrees=True) - skel.joint_angles(clips[:3],
                                                                           degrees=True)).abs()
    assert angles.max() <= 2 * limit + 1e-3


def test_realign_zero_length_bone_and_gradient_is_finite(clips):
    skel = get_skeleton("ntu25")
    clean = clips.clone()
    tip, thumb = skel.joint_index("right_hand_tip"), skel.joint_index("right_thumb")
    clean[..., tip, :] = clean[..., thumb, :]  # a zero-length bone, as in hdm05_25
    p = (clean + 0.01).requires_grad_(True)
    out = realign_within_budget(p, clean, skel, 0.02, max_angle_deg=20)
    assert torch.isfinite(out).all()
    assert torch.equal(out[..., tip, :], out[..., thumb, :])
    (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_realign_mask_moves_only_chosen_joints_and_their_descendants(clips):
    skel = get_skeleton("ntu25")
    noisy = clips + 0.02 * torch.randn(clips.shape, generator=torch.Generator().manual_seed(2))
    chosen = torch.zeros(skel.num_joints, 1, dtype=torch.bool)
    chosen[skel.joint_index("right_elbow")] = True
    out = realign_within_budget(noisy, clips, skel, 0.05, mask=chosen)
    below = {"right_elbow", "right_wrist", "right_hand", "right_thumb", "right_hand_tip"}
    moved = [skel.joint_names[j] for j in range(skel.num_joints)
             if not torch.equal(out[..., j, :], clips[..., j, :])]
    assert set(moved) == below
    assert descendant_mask(chosen.view(1, 1, 1, -1, 1), skel).sum() == len(below)
    # descendants ride rigidly: their bone vectors are the clean ones
    b = [i for i, (c, _) in enumerate(skel.bones) if skel.joint_names[c] in below - {"right_elbow"}]
    assert torch.allclose(skel.bone_vectors(out)[..., b, :], skel.bone_vectors(clips)[..., b, :],
                          atol=1e-6)
    assert relative_bone_change(out, clips, skel).max() <= 1e-3


# ---------------------------------------------------------------------- the attack
def test_ab_success_constraints_and_no_mutation(v):
    x, y = v.x[:10].clone(), v.y[:10].clone()
    x0, y0 = x.clone(), y.clone()
    atk = CIASA(v.classifier, **STRONG)
    res = atk.attack(x, y)
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert res.success_rate >= 80.0, res.summary()
    skel = v.classifier.skeleton
    assert joint_displacement(res.x_adv, x) <= STRONG["budget_mm"] * 1e-3  # default: per joint
    assert (res.summary()["norm"], res.summary()["budget_mm"]) == ("joint", STRONG["budget_mm"])
    assert relative_bone_change(res.x_adv, x, skel).max() <= 1e-3  # every bone, frame, sample
    assert bone_turn_deg(res.x_adv, x, skel).max() <= STRONG["max_angle_deg"] + 1e-3
    assert res.summary()["perceptual"]["bone_pct_max"] < 0.1
    # one query per checked iterate (0 … iterations), plus the clean and final predictions
    # one query per iterate checked (0..iterations); clean and final checks are bookkeeping
    assert (res.queries == res.iterations + 1).all()
    assert (res.iterations[res.success] < STRONG["steps"]).all()


@pytest.mark.parametrize(("goal", "extra", "floor"), [
    ("abn", {"n": 3}, 50.0), ("sa", {"target_mode": "least_likely"}, 60.0)])
def test_abn_and_sa_goals(v, goal, extra, floor):
    x, y = v.x[10:18], v.y[10:18]
    res = CIASA(v.classifier, goal=goal, **extra, **{**STRONG, "steps": 30}).attack(x, y)
    assert res.success_rate >= floor, res.summary()
    logits = v.classifier(res.x_adv).detach()
    if goal == "abn":
        top = logits.topk(3, dim=1).indices
        assert torch.equal(~(top == y[:, None]).any(1), res.success)
    else:
        assert torch.equal(logits.argmax(1) == res.target, res.success)


def test_sample_alone_equals_batch_and_is_deterministic(v):
    x, y = v.x[:4], v.y[:4]
    kw = {**QUICK, "gan_weight": 0.5, "disc_steps": 15, "temporal_weight": 0.05}
    batch = CIASA(v.classifier, seed=3, **kw).attack(x, y)
    again = CIASA(v.classifier, seed=3, **kw).attack(x, y)
    assert torch.equal(batch.x_adv, again.x_adv)
    alone = CIASA(v.classifier, seed=3, **kw).attack(x[2:3], y[2:3])
    assert torch.allclose(alone.x_adv[0], batch.x_adv[2], atol=1e-5)
    assert alone.iterations[0] == batch.iterations[2]
    assert not torch.equal(batch.x_adv, x)


def test_localised_body_part_leaves_every_other_joint_bit_identical(v):
    x, y = v.x[:6], v.y[:6]
    skel = v.classifier.skeleton
    res = CIASA(v.classifier, joints="left_arm", **{**STRONG, "steps": 15}).attack(x, y)
    arm = torch.as_tensor(skel.part_mask("left_arm"))
    assert torch.equal(res.x_adv[..., ~arm, :], x[..., ~arm, :])
    assert not torch.equal(res.x_adv[..., arm, :], x[..., arm, :])
    assert relative_bone_change(res.x_adv, x, skel).max() <= 1e-3
    assert res.report.per_sample["joints_touched"].max() <= arm.sum()


def test_localised_joint_and_frames(v):
    x, y = v.x[:4], v.y[:4]
    skel = v.classifier.skeleton
    atk = CIASA(v.classifier, joints=["right_elbow", skel.joint_index("left_knee")],
                frames=range(10, 20), **QUICK)
    out = atk(x, y)
    moving = torch.as_tensor(resolve_joints(skel, ["right_elbow", "left_knee"]))
    moving = descendant_mask(moving.view(1, 1, 1, -1, 1), skel)[0, 0, 0, :, 0]
    names = {skel.joint_names[j] for j in torch.nonzero(moving)[:, 0].tolist()}
    assert names == {"right_elbow", "right_wrist", "right_hand", "right_thumb", "right_hand_tip",
                     "left_knee", "left_ankle", "left_foot"}
    frames = resolve_frames(range(10, 20), x.shape[2])
    assert torch.equal(out[:, :, ~frames], x[:, :, ~frames])
    assert torch.equal(out[..., ~moving, :], x[..., ~moving, :])
    assert not torch.equal(out, x)
    assert relative_bone_change(out, x, skel).max() <= 1e-3


def test_padding_frames_are_never_touched(v):
    x, y = v.x[:3].clone(), v.y[:3]
    lengths = torch.tensor([32, 20, 26])
    x[1, :, 20:] = 0
    x[2, :, 26:] = 0
    res = CIASA(v.classifier, **QUICK).attack(x, y, lengths=lengths)
    valid = motion_mask(x, lengths)[:, 0, :, 0, 0] > 0  # (N, T)
    for i in range(3):
        assert torch.equal(res.x_adv[i, :, ~valid[i]], x[i, :, ~valid[i]])
    assert torch.isfinite(res.x_adv).all()


def roughness(d):
    """Squared frame-to-frame change of a perturbation per unit of its energy."""
    return float(((d[:, :, 1:] - d[:, :, :-1]) ** 2).sum() / (d ** 2).sum())


def test_temporal_smoothing_of_the_step_smooths_the_perturbation(v):
    x, y = v.x[:6], v.y[:6]
    kw = {**QUICK, "temporal_weight": 0.0}
    rough = CIASA(v.classifier, smooth_sigma=0.0, **kw)(x, y) - x
    smooth = CIASA(v.classifier, smooth_sigma=2.0, **kw)(x, y) - x
    assert roughness(smooth) < 0.5 * roughness(rough)


def test_temporal_penalty_gradient_reduces_frame_to_frame_change(v):
    x = v.x[:4]
    atk = CIASA(v.classifier, temporal_weight=1.0, gan_weight=0.0)
    noisy = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(8))
    grad = atk.regulariser_gradient(noisy, x, motion_mask(x), None, None)
    assert grad is not None and torch.isfinite(grad).all()
    step = noisy - 1e-3 * grad / grad.abs().amax()
    assert roughness(step - x) < roughness(noisy - x)
    assert CIASA(v.classifier, temporal_weight=0.0, gan_weight=0.0).regulariser_gradient(
        noisy, x, motion_mask(x), None, None) is None


# ---------------------------------------------------------------------- discriminator
def test_discriminator_learns_clean_from_perturbed():
    x = torch.as_tensor(generate_synthetic(24, 16, seed=5).x)
    disc = train_discriminator(x, steps=60, seed=0, batch_size=16)
    assert disc.info["loss_after"] < 0.8 * disc.info["loss_before"]
    assert not any(p.requires_grad for p in disc.parameters())
    noisy = realign_bone_lengths(
        x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(9)), x,
        get_skeleton("ntu25"))
    assert (disc(x) > disc(noisy)).float().mean() >= 0.8


def test_per_sample_discriminators_are_independent_of_the_batch():
    x = torch.as_tensor(generate_synthetic(3, 10, seed=6).x)
    many = train_discriminator(x, steps=10, seed=1, per_sample=True)
    one = train_discriminator(x[1:2], steps=10, seed=1, per_sample=True)
    assert many.members == 3 and one.members == 1
    assert torch.allclose(many(x)[1], one(x[1:2])[0], atol=1e-5)
    assert many.info["loss_after"] < many.info["loss_before"]


def test_gan_gradient_pulls_towards_natural_motion(v):
    x = v.x[:6]
    disc = train_discriminator(x, steps=40, seed=0)
    atk = CIASA(v.classifier, discriminator=disc, gan_weight=1.0, temporal_weight=0.0, **{
        k: val for k, val in QUICK.items() if k != "gan_weight"})
    noisy = realign_bone_lengths(
        x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(4)), x,
        atk.skeleton)
    mask = motion_mask(x)
    grad = atk.regulariser_gradient(noisy, x, mask, disc, None)
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    step = noisy - 1e-3 * grad / grad.abs().amax()
    assert (disc(step) > disc(noisy)).all()
    # a shared discriminator can be fitted on other clean clips and used by the attack
    fitted = atk.fit_discriminator(v.x[6:30], steps=5, seed=2)
    assert atk.discriminator is fitted and fitted.members == 1
    assert atk.attack(v.x[:2], v.y[:2]).x_adv.shape == v.x[:2].shape


def test_linf_budget_lets_joints_move_farther_than_the_joint_budget(v):
    x, y = v.x[:4], v.y[:4]
    eps = QUICK["budget_mm"] * 1e-3
    linf = CIASA(v.classifier, norm="linf", **QUICK).attack(x, y)
    joint = CIASA(v.classifier, **QUICK).attack(x, y)
    assert float((linf.x_adv.double() - x.double()).abs().max()) <= eps
    assert joint_displacement(linf.x_adv, x) > 1.2 * eps
    assert joint_displacement(joint.x_adv, x) <= eps
    assert joint_displacement(joint.x_adv, x) > 0.9 * eps  # the budget binds
    assert linf.summary()["norm"] == "linf" and joint.summary()["norm"] == "joint"
    for res in (linf, joint):
        assert relative_bone_change(res.x_adv, x, v.classifier.skeleton).max() <= 1e-3


@pytest.mark.usefixtures("eager_progress")
def test_progress_bars_on_stderr_only_when_asked(v, capsys):
    x, y = v.x[:2], v.y[:2]
    atk = CIASA(v.classifier, **{**QUICK, "steps": 2, "gan_weight": 0.5, "disc_steps": 2})
    quiet = atk(x, y)
    assert capsys.readouterr().err == ""
    atk.progress = True
    assert torch.equal(atk(x, y), quiet)
    err = capsys.readouterr().err
    assert "ciasa steps" in err and "discriminator steps" in err


def test_eot_wraps_ciasa(v):
    x, y = v.x[:3], v.y[:3]
    res = EOT(CIASA(v.classifier, **QUICK), samples=2).attack(x, y)
    assert joint_displacement(res.x_adv, x) <= QUICK["budget_mm"] * 1e-3
    assert relative_bone_change(res.x_adv, x, v.classifier.skeleton).max() <= 1e-3
    assert (res.queries >= 2 * res.iterations).all()


# ---------------------------------------------------------------------- configuration
def test_bad_configuration_is_rejected(v):
    clf = v.classifier
    for kw in ({"budget_mm": 0}, {"step_mm": -1}, {"steps": -1}, {"max_angle_deg": 0},
               {"gan_weight": -1}, {"step_rule": "adam"}, {"joints": [99]},
               {"joints": []}, {"confidence": -1}):
        with pytest.raises(ConfigError):
            CIASA(clf, **kw)
    with pytest.raises(UnknownNameError):
        CIASA(clf, joints="left_tail")
    with pytest.raises(ConfigError):
        CIASA(clf, frames=[40], **QUICK)(v.x[:1], v.y[:1])
    with pytest.raises(ConfigError, match=r"'joint', 'linf'.*'l2'"):
        CIASA(clf, norm="l2")  # realignment bounds joint by joint: no per-clip ball
    with pytest.raises(ConfigError, match="layout"):
        CIASA(clf, discriminator=BoneDirectionDiscriminator("kinect20"))
    assert math.isclose(CIASA(clf).budget_mm, 20.0)
