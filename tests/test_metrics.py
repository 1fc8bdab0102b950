"""Perceptual metrics on analytic perturbations, and goal/success bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrobust.data.synthetic import generate_synthetic
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.metrics import goal_reached, perceptual_report, robust_accuracy, success_rate
from skelrobust.skeleton import get_skeleton

FPS = 30.0


@pytest.fixture(scope="module")
def motion():
    data = generate_synthetic(num_clips=4, num_frames=20, seed=3)
    return data.x.astype(np.float64), data.skeleton


def test_global_translation(motion):
    q, skel = motion
    qa = q.copy()
    qa[:, 0] += 0.010  # 10 mm along x, every joint and frame
    s = perceptual_report(q, qa, skel, fps=FPS).summary()
    assert s["joint_mm_mean"] == pytest.approx(10.0) and s["joint_mm_max"] == pytest.approx(10.0)
    for key in ("bone_pct_max", "angle_deg_max", "velocity_mm_s_max", "acceleration_mm_s2_max"):
        assert s[key] == pytest.approx(0.0, abs=1e-6), key
    assert s["frames_touched"] == 20 and s["joints_touched"] == skel.num_joints


def test_one_joint_one_frame(motion):
    q, skel = motion
    qa = q.copy()
    qa[:, 2, 7, 3] += 0.005  # 5 mm up, joint 3, frame 7
    rep = perceptual_report(q, qa, skel, fps=FPS)
    s = rep.summary()
    assert s["joint_mm_max"] == pytest.approx(5.0)
    assert s["joint_mm_mean"] == pytest.approx(5.0 / (20 * skel.num_joints))
    assert s["velocity_mm_s_max"] == pytest.approx(5.0 * FPS)
    assert s["acceleration_mm_s2_max"] == pytest.approx(2 * 5.0 * FPS ** 2)  # stencil 1,-2,1
    np.testing.assert_array_equal(rep.per_sample["frames_touched"], 1)
    np.testing.assert_array_equal(rep.per_sample["joints_touched"], 1)
    assert s["bone_pct_max"] > 0 and s["angle_deg_max"] > 0


def test_scaling_changes_bones_by_the_factor_and_keeps_angles(motion):
    q, skel = motion
    root = q[:, :, :, skel.center:skel.center + 1]
    qa = root + 1.1 * (q - root)
    s = perceptual_report(q, qa, skel).summary()
    assert s["bone_pct_mean"] == pytest.approx(10.0) and s["bone_pct_max"] == pytest.approx(10.0)
    assert s["angle_deg_max"] == pytest.approx(0.0, abs=1e-5)


def test_rotation_keeps_bones_and_angles(motion):
    q, skel = motion
    c, s_ = np.cos(0.3), np.sin(0.3)
    rot = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]])
    qa = np.einsum("ij,njtvm->nitvm", rot, q)
    s = perceptual_report(q, qa, skel).summary()
    assert s["bone_pct_max"] < 1e-9 and s["angle_deg_max"] < 1e-5 and s["joint_mm_max"] > 1


def test_padding_and_absent_bodies_are_ignored(motion):
    q, skel = motion
    q2 = np.concatenate([q, np.zeros_like(q)], axis=-1)  # second body absent
    qa = q2.copy()
    qa[:, :, 15:] += 1.0  # huge change after the clip ends (length 15)
    qa[..., 1] += 1.0  # and on the absent body
    s = perceptual_report(q2, qa, skel, lengths=np.full(4, 15)).summary()
    assert s["joint_mm_max"] == 0.0 and s["velocity_mm_s_max"] == 0.0


def test_torch_and_numpy_agree_and_inputs_untouched(motion):
    q, skel = motion
    qa = q + np.random.default_rng(0).normal(0, 0.003, q.shape)
    tq, tqa = torch.tensor(q, dtype=torch.float32), torch.tensor(qa, dtype=torch.float32)
    before = tqa.clone()
    a = perceptual_report(q, qa, skel).summary()
    b = perceptual_report(tq, tqa, skel).summary()
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-3), key
    assert torch.equal(tqa, before)


def test_zero_length_bones_skipped():
    skel = get_skeleton("hdm05_25")  # hip offsets of length 0 at the root
    rng = np.random.default_rng(0)
    q = rng.normal(0, 0.3, (2, 3, 5, 25, 1))
    q[:, :, :, [0, 5]] = q[:, :, :, [10]]  # zero-length bones
    qa = q + 0.001
    s = perceptual_report(q, qa, skel).summary()
    assert np.isfinite(s["bone_pct_max"]) and s["bone_pct_max"] < 1e-6


def test_report_errors(motion):
    q, skel = motion
    with pytest.raises(ShapeError, match="same shape"):
        perceptual_report(q, q[:, :, :10], skel)
    with pytest.raises(ConfigError, match="fps"):
        perceptual_report(q, q, skel, fps=0)


def test_goals_and_rates():
    logits = torch.tensor([[5.0, 1.0, 0.0], [1.0, 5.0, 4.0], [0.0, 1.0, 5.0]])
    y = torch.tensor([0, 2, 2])
    assert goal_reached(logits, y, "ab").tolist() == [False, True, False]
    assert goal_reached(logits, y, "abn", n=2).tolist() == [False, False, False]
    assert goal_reached(logits, torch.tensor([1, 0, 1]), "abn", n=2).tolist() == [False, True,
                                                                                   False]
    assert goal_reached(logits, y, "sa", target=torch.tensor([0, 1, 1])).tolist() == [
        True, True, False]
    assert success_rate(logits, y) == pytest.approx(100 / 3)
    assert robust_accuracy(logits, y) == pytest.approx(200 / 3)
    with pytest.raises(ConfigError, match="target"):
        goal_reached(logits, y, "sa")
    with pytest.raises(ConfigError, match="goal must be"):
        goal_reached(logits, y, "xx")
    with pytest.raises(ShapeError):
        goal_reached(logits[0], y)
