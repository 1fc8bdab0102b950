"""The procedural `synthetic` dataset: shape, determinism, physics, view, speed, difficulty."""

from __future__ import annotations

import time

import numpy as np
import pytest

from skelrobust.data import transforms
from skelrobust.data.registry import dataset_spec, load_dataset
from skelrobust.data.synthetic import (
    DRIVEN_JOINTS,
    REST_OFFSETS,
    SPLIT_SIZES,
    SYNTHETIC_CLASSES,
    forward_kinematics,
    generate_synthetic,
)
from skelrobust.errors import ConfigError, UnknownNameError
from skelrobust.skeleton import get_skeleton

NTU = get_skeleton("ntu25")
J = NTU.joint_index
K = len(SYNTHETIC_CLASSES)
CONTACT = [J(n) for n in ("left_foot", "right_foot", "left_ankle", "right_ankle")]


@pytest.fixture(scope="module")
def raw():
    """Raw world-frame clips, 40 per class."""
    return generate_synthetic(40 * K, 64, seed=3)


def _of(data, name):
    return data.x[data.y == data.class_names.index(name), ..., 0]  # (n, 3, T, V)


def test_shape_dtype_meta_and_balance(raw):
    assert raw.x.shape == (40 * K, 3, 64, 25, 1) and raw.x.dtype == np.float32
    assert np.isfinite(raw.x).all() and raw.name == "synthetic" and raw.skeleton is NTU
    assert raw.class_names == list(SYNTHETIC_CLASSES) and K >= 12
    assert (raw.lengths == 64).all()
    assert (raw.class_counts() == 40).all()
    assert not (raw.y[:K] == np.arange(K)).all()  # shuffled, not in class order
    odd = generate_synthetic(3 * K + 5, 16, seed=1)
    assert odd.x.shape[2] == 16 and np.ptp(odd.class_counts()) == 1
    for key in ("yaw_deg", "scale", "height_m", "tempo", "onset", "amplitude", "reps",
                "floor_x", "floor_y"):
        assert len(raw.meta[key]) == len(raw)
    assert np.abs(raw.meta["yaw_deg"]).max() <= 45.0 and raw.meta["tempo"].min() >= 1.0


def test_determinism_and_seeds():
    a = generate_synthetic(60, 32, seed=7)
    b = generate_synthetic(60, 32, seed=7)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert all(np.array_equal(a.meta[k], b.meta[k]) for k in a.meta)
    assert a.fingerprint() == b.fingerprint()
    c = generate_synthetic(60, 32, seed=8)
    assert not np.array_equal(a.x, c.x) and a.fingerprint() != c.fingerprint()


def test_bones_rigid_within_clip_and_size_varies(raw):
    bl = NTU.bone_lengths(raw.x)[..., 0]  # (N, T, B)
    rel = np.abs(bl - bl[:, :1]) / bl[:, :1]
    assert rel.max() < 1e-4
    size = bl[:, 0].sum(-1)
    ratio = size / np.median(size)
    assert 0.8 < ratio.min() < 0.9 and 1.1 < ratio.max() < 1.2  # body size about ±15 %
    # left and right bones of a clip are equally long (symmetric per-bone variation)
    for name in ("knee", "ankle", "elbow", "wrist"):
        left = np.linalg.norm(raw.x[:, :, 0, J(f"left_{name}")] - raw.x[:, :, 0, NTU.parents[
            J(f"left_{name}")]], axis=1)
        right = np.linalg.norm(raw.x[:, :, 0, J(f"right_{name}")] - raw.x[:, :, 0, NTU.parents[
            J(f"right_{name}")]], axis=1)
        np.testing.assert_allclose(left, right, rtol=1e-4)


def test_plausible_sizes(raw):
    thigh = np.linalg.norm(raw.x[:, :, 0, J("left_knee")] - raw.x[:, :, 0, J("left_hip")], axis=1)
    assert thigh.min() > 0.33 and thigh.max() < 0.53
    assert ((raw.meta["height_m"] > 1.45) & (raw.meta["height_m"] < 2.05)).all()
    standing = np.asarray(raw.class_names)[raw.y] != "stand_up"  # stand_up starts seated
    head = raw.x[standing, 2, 0, J("head"), 0]  # floor is z = 0
    assert head.min() > 1.3 and head.max() < 2.05
    ratio = head / raw.meta["height_m"][standing]
    assert ratio.min() > 0.88 and ratio.max() < 1.0
    # z is up: the head is above the feet in every frame of every clip
    assert (raw.x[:, 2, :, J("head")] > raw.x[:, 2][:, :, CONTACT].max(-2)).all()


@pytest.mark.parametrize("name", ["walk_in_place", "kick", "squat", "sit_down", "bow",
                                  "turn_around", "throw"])
def test_feet_on_the_floor(raw, name):
    lowest = _of(raw, name)[:, 2][:, :, CONTACT].min(-1)  # (n, T)
    assert np.abs(lowest).max() < 0.02  # only the few-mm rigid sensor jitter


def test_jump_leaves_the_floor(raw):
    lowest = _of(raw, "jump")[:, 2][:, :, CONTACT].min(-1)
    assert (lowest.max(1) > 0.08).all()  # every clip has a flight phase
    assert (np.abs(lowest[:, 0]) < 0.02).all()  # and starts on the floor


def test_every_class_moves(raw):
    path = np.linalg.norm(np.diff(raw.x[..., 0], axis=2), axis=1).sum(1)  # (N, V) metres
    for k, name in enumerate(raw.class_names):
        assert np.median(path[raw.y == k].max(1)) > 1.0, name  # fastest joint travels > 1 m
    quiet = generate_synthetic(40, 32, seed=0, noise_deg=0, noise_mm=0, sway_deg=0,
                               classes=["sit_down", "stand_up"])
    assert np.abs(np.diff(quiet.x, axis=2)).max() < 0.1  # smooth: < 10 cm per frame


def test_yaw_varies_raw_and_is_removed_by_preprocessing(raw):
    across = raw.x[:, :2, 0, J("left_shoulder"), 0] - raw.x[:, :2, 0, J("right_shoulder"), 0]
    heading = np.degrees(np.arctan2(across[:, 1], across[:, 0]))  # 180° when yaw is 0
    yaw = (heading - 180.0 + 180.0) % 360.0 - 180.0
    assert yaw.std() > 15 and yaw.min() < -35 and yaw.max() > 35
    err = (yaw - raw.meta["yaw_deg"] + 180.0) % 360.0 - 180.0
    assert np.abs(err).max() < 15  # the meta column is the facing direction
    floor = raw.x[:, :2, 0, J("spine_base"), 0]
    assert floor.std(0).min() > 0.3  # random floor position

    data = load_dataset("synthetic", split="val", num_clips=4 * K)
    assert data.info["preprocessed"] and data.x.shape == (4 * K, 3, 64, 25, 1)
    x0 = data.x[:, :, 0, :, 0]
    np.testing.assert_allclose(x0[:, :, J("spine_shoulder")], 0.0, atol=1e-5)  # centred
    up = x0[:, :, J("spine_mid")] - x0[:, :, J("spine_base")]
    side = x0[:, :, J("left_shoulder")] - x0[:, :, J("right_shoulder")]
    np.testing.assert_allclose(up[:, :2], 0.0, atol=1e-5)
    assert (up[:, 2] > 0.1).all()
    np.testing.assert_allclose(side[:, 1], 0.0, atol=1e-5)
    assert (side[:, 0] > 0.2).all()


def test_registry_splits_are_disjoint_and_seeded():
    spec = dataset_spec("synthetic")
    assert spec.layout == "ntu25" and spec.num_classes == K and not spec.needs_root
    assert spec.splits == ("train", "val", "test") and SPLIT_SIZES == {
        "train": 2000, "val": 400, "test": 600}
    splits = {s: load_dataset("synthetic", split=s, num_clips=2 * K, preprocess=False)
              for s in spec.splits}
    keys = {s: {c.tobytes() for c in d.x} for s, d in splits.items()}
    assert not (keys["train"] & keys["val"] or keys["train"] & keys["test"]
                or keys["val"] & keys["test"])
    same = generate_synthetic(2 * K, 64, seed=5 * 1000 + 2)
    assert np.array_equal(load_dataset("synthetic", split="test", num_clips=2 * K, seed=5,
                                       preprocess=False).x, same.x)
    assert len(load_dataset("synthetic", split="val")) == 400
    sub = load_dataset("synthetic", split="train", num_clips=10, classes=["sit_down", "bow"])
    assert sub.class_names == ["sit_down", "bow"] and sub.class_counts().tolist() == [5, 5]


def test_bad_arguments():
    with pytest.raises(UnknownNameError, match="dance"):
        generate_synthetic(10, classes=["wave_left", "dance"])
    with pytest.raises(ConfigError, match="distinct"):
        generate_synthetic(10, classes=["bow", "bow"])
    with pytest.raises(ConfigError, match="num_clips"):
        generate_synthetic(0)
    with pytest.raises(ConfigError, match="num_frames"):
        generate_synthetic(10, num_frames=1)
    with pytest.raises(ConfigError, match="noise_deg"):
        generate_synthetic(10, noise_deg=-1)
    with pytest.raises(UnknownNameError, match="split"):
        load_dataset("synthetic", split="holdout")


def test_forward_kinematics_rest_pose():
    """Zero angles give the rest skeleton: upright, symmetric, feet below the pelvis."""
    pos = forward_kinematics(np.zeros((1, 1, len(DRIVEN_JOINTS), 4)), np.zeros((1, 1)),
                             REST_OFFSETS[None])[0, 0]
    assert pos[J("head"), 2] > pos[J("spine_shoulder"), 2] > 0 > pos[J("left_knee"), 2]
    np.testing.assert_allclose(pos[J("left_ankle"), 0], -pos[J("right_ankle"), 0])
    assert pos[J("right_shoulder"), 0] > 0 and pos[J("left_foot"), 1] > pos[J("left_ankle"), 1]
    quarter = forward_kinematics(np.zeros((1, 1, len(DRIVEN_JOINTS), 4)), np.full((1, 1), 90.0),
                                 REST_OFFSETS[None])[0, 0]  # turned 90° to the left
    np.testing.assert_allclose(quarter[J("right_shoulder"), :2],
                               [-pos[J("right_shoulder"), 1], pos[J("right_shoulder"), 0]],
                               atol=1e-12)


@pytest.mark.parametrize("first,second", [("sit_down", "stand_up"),
                                          ("raise_both_arms", "lower_both_arms"),
                                          ("raise_right_hand", "lower_right_hand")])
def test_time_reversed_pairs_share_poses_but_not_order(first, second):
    """Single poses do not tell the pair apart; the direction of motion does."""
    data = generate_synthetic(800, 48, seed=11, classes=[first, second])
    body = transforms.preprocess(data, center_mode="frame", normalize_view=True).x[..., 0]
    mean_pose = body.mean(axis=2)  # (N, 3, V): time-averaged body-centred pose of each clip
    a, b = mean_pose[data.y == 0], mean_pose[data.y == 1]
    gap = np.abs(a.mean(0) - b.mean(0)).max()  # metres, worst joint and axis
    spread = mean_pose.std(0).max()
    assert gap < 0.025 and gap < 0.5 * spread
    # ... yet the motion goes opposite ways: pelvis (sit/stand) or wrists (arms) height
    joint = J("spine_base") if first == "sit_down" else J("right_wrist")
    z = data.x[:, 2, :, joint, 0]
    trend = z[:, -8:].mean(1) - z[:, :8].mean(1)
    sign = -1 if first == "sit_down" else 1
    assert (sign * trend[data.y == 0] > 0.15).all() and (sign * trend[data.y == 1] < -0.15).all()


def test_generation_speed():
    generate_synthetic(50, 64, seed=0)  # warm-up (imports, caches)
    start = time.perf_counter()
    data = generate_synthetic(2000, 64, seed=1)
    seconds = time.perf_counter() - start
    assert data.x.shape == (2000, 3, 64, 25, 1)
    assert seconds < 5.0, f"2000 clips of 64 frames took {seconds:.2f} s"
