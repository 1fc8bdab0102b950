"""Perceptual metrics on analytic perturbations, and goal/success bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrobust.data.synthetic import generate_synthetic
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.metrics import (
    DISPLACEMENT_THRESHOLDS_MM,
    PerceptualReport,
    goal_reached,
    perceptual_report,
    perceptual_rows,
    robust_accuracy,
    success_rate,
)
from skelrobust.report.tables import format_table
from skelrobust.skeleton import BodyFrame, Skeleton, get_skeleton

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


def test_tails_of_per_clip_max_displacement(motion):
    q, skel = motion
    q = q[:3]
    qa = q.copy()
    qa[:, 0] += np.array([0.010, 0.030, 0.200])[:, None, None, None]  # per-clip translation
    rep = perceptual_report(q, qa, skel)
    np.testing.assert_allclose(rep.per_sample["joint_mm_max"], [10.0, 30.0, 200.0])
    s = rep.summary()
    assert s["joint_mm_max"] == pytest.approx(200.0)  # max over clips, as before
    assert s["joint_mm_mean"] == pytest.approx(80.0)  # mean over clips, as before
    assert s["joint_mm_max_median"] == pytest.approx(30.0)
    assert s["joint_mm_max_p95"] == pytest.approx(183.0)  # 30 + 0.9 * (200 - 30)
    assert s["joint_mm_max_p95"] == pytest.approx(np.percentile([10.0, 30.0, 200.0], 95))
    assert s["joint_mm_max_mean"] == pytest.approx(80.0)
    for key in ("bone_pct_max", "angle_deg_max"):
        assert s[f"{key}_median"] == pytest.approx(0.0, abs=1e-6), key


def test_joint_frame_fractions_respect_lengths_and_bodies(motion):
    q, skel = motion
    v = skel.num_joints
    q2 = np.concatenate([q, np.zeros_like(q)], axis=-1)  # second body absent
    qa = q2.copy()
    qa[:, 0] += np.array([0.010, 0.030, 0.200, 0.300])[:, None, None, None]
    qa[:, :, 12:] += 1.0  # huge change on padding frames...
    qa[3] += 1.0  # ...and on an empty clip (length 0)
    lengths = np.array([12, 10, 5, 0])
    rep = perceptual_report(q2, qa, skel, lengths=lengths)
    np.testing.assert_array_equal(rep.per_sample["joint_frames"], [12 * v, 10 * v, 5 * v, 0])
    np.testing.assert_array_equal(rep.per_sample["joint_frames_over_20mm"], [0, 10 * v, 5 * v, 0])
    np.testing.assert_array_equal(rep.per_sample["joint_frames_over_50mm"], [0, 0, 5 * v, 0])
    assert np.isnan(rep.per_sample["joint_mm_max"][3])
    s = rep.summary()
    assert s["joint_frames"] == 27 * v  # counts are summed over samples
    assert s["joint_frames_over_20mm"] == 15 * v and s["joint_frames_over_50mm"] == 5 * v
    assert s["joint_frames_over_20mm_pct"] == pytest.approx(100 * 15 / 27)
    assert s["joint_frames_over_50mm_pct"] == pytest.approx(100 * 5 / 27)
    assert s["joint_mm_max"] == pytest.approx(200.0)  # the empty clip's NaN is ignored
    assert s["joint_mm_max_median"] == pytest.approx(30.0)
    assert DISPLACEMENT_THRESHOLDS_MM == (20.0, 50.0)


def test_empty_report_summary():
    keys = ("joint_mm_max", "joint_frames", "joint_frames_over_20mm", "joint_frames_over_50mm")
    s = PerceptualReport({k: np.zeros(0) for k in keys}).summary()
    assert s["joint_frames"] == 0 and s["joint_frames_over_50mm"] == 0
    assert np.isnan(s["joint_frames_over_20mm_pct"]) and np.isnan(s["joint_mm_max_p95"])
    assert np.isnan(s["joint_mm_max"]) and "bone_pct_max_median" not in s


CHAIN = Skeleton(name="chain3", joint_names=("root", "elbow", "hand"), parents=(-1, 0, 1),
                 frame=BodyFrame(hip=(0,), spine=(1,), left_shoulder=(1,), right_shoulder=(2,)))


def _bent_chain(stretch: np.ndarray, bend_deg: np.ndarray, frames: int = 6) -> np.ndarray:
    """Chain root → elbow (+x) → hand, hand bent by ``bend_deg`` and its bone scaled."""
    n = len(stretch)
    x = np.zeros((n, 3, frames, 3, 1))
    x[:, 2] = 1.0  # 1 m up: every joint away from the origin
    x[:, 0, :, 1] = 0.3
    theta, scale = np.radians(bend_deg)[:, None, None], 1 + stretch[:, None, None]
    x[:, 0, :, 2] = 0.3 + 0.25 * scale * np.sin(theta)
    x[:, 1, :, 2] = 0.25 * scale * np.cos(theta)
    return x


def test_bone_and_angle_tails_on_a_known_stretch_and_bend():
    stretch, bend = np.array([0.01, 0.05, 0.31]), np.array([5.0, 20.0, 60.0])
    q = _bent_chain(np.zeros(3), np.zeros(3))
    qa = _bent_chain(stretch, bend)
    rep = perceptual_report(q, qa, CHAIN)
    np.testing.assert_allclose(rep.per_sample["bone_pct_max"], [1.0, 5.0, 31.0])
    np.testing.assert_allclose(rep.per_sample["angle_deg_max"], bend, rtol=1e-6)
    s = rep.summary()
    assert s["bone_pct_max"] == pytest.approx(31.0) and s["angle_deg_max"] == pytest.approx(60.0)
    assert s["bone_pct_max_median"] == pytest.approx(5.0)
    assert s["bone_pct_max_p95"] == pytest.approx(5.0 + 0.9 * 26.0)
    assert s["angle_deg_max_median"] == pytest.approx(20.0)
    assert s["angle_deg_max_p95"] == pytest.approx(20.0 + 0.9 * 40.0)
    assert s["bone_pct_mean"] == pytest.approx(np.mean([0.5, 2.5, 15.5]))  # one of two bones
    hand = 250 * np.hypot((1 + stretch) * np.sin(np.radians(bend)),
                          (1 + stretch) * np.cos(np.radians(bend)) - 1)
    np.testing.assert_allclose(rep.per_sample["joint_mm_max"], hand)


def test_perceptual_rows_read_the_summary(motion):
    q, skel = motion
    qa = q.copy()
    qa[:, 0] += np.array([0.010, 0.030, 0.200, 0.040])[:, None, None, None]
    s = perceptual_report(q, qa, skel).summary()
    rows = {r["metric"]: r for r in perceptual_rows(s)}
    assert list(rows) == ["joint displacement, clip max (mm)", "bone-length change, clip max (%)",
                          "joint-angle change, clip max (deg)",
                          "joint displacement, clip mean (mm)", "joint-frames moved > 20 mm (%)",
                          "joint-frames moved > 50 mm (%)"]
    joint = rows["joint displacement, clip max (mm)"]
    assert joint["mean"] == pytest.approx(70.0) and joint["median"] == pytest.approx(35.0)
    assert joint["p95"] == pytest.approx(s["joint_mm_max_p95"]) and joint["max"] == 200.0
    assert rows["joint displacement, clip mean (mm)"]["mean"] == pytest.approx(70.0)
    assert rows["joint-frames moved > 20 mm (%)"]["mean"] == pytest.approx(75.0)
    assert rows["joint-frames moved > 50 mm (%)"]["mean"] == pytest.approx(25.0)
    text = format_table(perceptual_rows(s), digits=1)
    assert "joint-frames moved > 50 mm (%)" in text and "200.0" in text
    assert perceptual_rows({}) == []


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
