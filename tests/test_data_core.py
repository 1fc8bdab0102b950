"""SkeletonDataset, transforms and the parse cache."""

from __future__ import annotations

import numpy as np
import pytest

from skelrobust.data.cache import cached_load
from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.registry import load_dataset
from skelrobust.data.transforms import (
    body_frame_rotation,
    center,
    crop_or_pad,
    mirror,
    preprocess,
    random_rotate_scale,
    remap_joints,
    resample,
    view_normalize,
)
from skelrobust.errors import (
    ConfigError,
    DatasetNotFoundError,
    InvalidMotionError,
    LayoutError,
    ShapeError,
    UnknownNameError,
)
from skelrobust.skeleton import get_skeleton

NTU = get_skeleton("ntu25")


def _motion(n=3, t=12, v=25, m=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3, t, v, m)).astype(np.float32)


def _dataset(n=6, t=12, seed=0):
    x = _motion(n, t, 25, 1, seed)
    return SkeletonDataset(x=x, y=np.arange(n) % 3, class_names=["a", "b", "c"],
                           skeleton="ntu25", lengths=np.full(n, t), name="toy",
                           meta={"subject": np.arange(n)})


def test_dataset_validation_errors():
    x = _motion(2, 5, 25, 1)
    with pytest.raises(LayoutError, match="25 joints"):
        SkeletonDataset(x=x[:, :, :, :20], y=[0, 1], class_names=["a", "b"], skeleton="ntu25")
    bad = x.copy()
    bad[0, 1, 2, 3, 0] = np.nan
    with pytest.raises(InvalidMotionError, match="NaN"):
        SkeletonDataset(x=bad, y=[0, 1], class_names=["a", "b"], skeleton="ntu25")
    with pytest.raises(ShapeError, match="labels outside"):
        SkeletonDataset(x=x, y=[0, 2], class_names=["a", "b"], skeleton="ntu25")
    with pytest.raises(ShapeError, match="3 coordinates"):
        SkeletonDataset(x=np.moveaxis(x, 1, -1), y=[0, 1], class_names=["a", "b"],
                        skeleton="ntu25")
    with pytest.raises(ShapeError, match="lengths"):
        SkeletonDataset(x=x, y=[0, 1], class_names=["a", "b"], skeleton="ntu25", lengths=[0, 5])
    with pytest.raises(UnknownNameError):
        SkeletonDataset(x=x, y=[0, 1], class_names=["a", "b"], skeleton="ntu26")


def test_dataset_subset_roundtrip_and_fingerprint(tmp_path):
    d = _dataset()
    sub = d.subset(d.y == 1)
    assert len(sub) == 2 and (sub.y == 1).all() and list(sub.meta["subject"]) == [1, 4]
    path = tmp_path / "d.npz"
    d.save_npz(str(path))
    back = SkeletonDataset.load_npz(str(path))
    assert np.array_equal(back.x, d.x) and back.class_names == d.class_names
    assert back.skeleton is NTU and np.array_equal(back.meta["subject"], d.meta["subject"])
    assert back.fingerprint() == d.fingerprint()
    assert sub.fingerprint() != d.fingerprint()
    xs, ys = d.torch_dataset()[2]
    assert tuple(xs.shape) == (3, 12, 25, 1) and int(ys) == 2


def test_center_modes_keep_absent_bodies_zero():
    x = _motion()
    x[:, :, 8:, :, 1] = 0.0  # second body leaves after frame 8
    c = center(x, 1, "frame")
    assert np.allclose(c[:, :, :, 1, 0], 0.0, atol=1e-6)
    assert (c[:, :, 8:, :, 1] == 0).all()
    f = center(x, 1, "first")
    assert np.allclose(f[:, :, 0, 1, 0], 0.0, atol=1e-6)
    # "first" keeps the trajectory of the centre joint relative to frame 0
    np.testing.assert_allclose(f[:, :, 5, 1, 0], x[:, :, 5, 1, 0] - x[:, :, 0, 1, 0], atol=1e-6)
    with pytest.raises(ConfigError):
        center(x, 1, "mean")


def test_view_normalize_frame_and_rigidity():
    x = _motion(4, 6, 25, 1)
    v = view_normalize(x, NTU)
    f = NTU.frame
    up = v[:, :, 0, f.spine[0], 0] - v[:, :, 0, f.hip[0], 0]
    across = v[:, :, 0, f.left_shoulder[0], 0] - v[:, :, 0, f.right_shoulder[0], 0]
    assert np.allclose(up[:, :2], 0, atol=1e-5) and (up[:, 2] > 0).all()
    assert np.allclose(across[:, 1], 0, atol=1e-5) and (across[:, 0] > 0).all()
    np.testing.assert_allclose(NTU.bone_lengths(v), NTU.bone_lengths(x), rtol=1e-4, atol=1e-6)
    rot = body_frame_rotation(x, NTU)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, 1, 2), np.broadcast_to(np.eye(3), rot.shape),
                               atol=1e-5)
    assert np.allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    np.testing.assert_allclose(view_normalize(v, NTU), v, atol=1e-5)  # idempotent


def test_view_normalize_degenerate_clip_is_identity():
    x = np.zeros((1, 3, 4, 25, 1), dtype=np.float32)
    assert np.array_equal(view_normalize(x, NTU), x)


def test_resample_is_exact_on_linear_motion():
    t = 10
    ramp = np.linspace(0, 1, t, dtype=np.float32)
    x = np.broadcast_to(ramp[None, None, :, None, None], (2, 3, t, 25, 1)).copy()
    x[1, :, 6:] = 0.0  # second clip has 6 valid frames: ramp 0..5/9
    y, lengths = resample(x, 31, np.array([10, 6]))
    assert y.shape == (2, 3, 31, 25, 1) and (lengths == 31).all()
    np.testing.assert_allclose(y[0, 0, :, 0, 0], np.linspace(0, 1, 31), atol=1e-6)
    np.testing.assert_allclose(y[1, 0, :, 0, 0], np.linspace(0, 5 / 9, 31), atol=1e-6)


def test_crop_or_pad_modes():
    x = _motion(2, 8, 25, 1)
    lengths = np.array([8, 3])
    z, lz = crop_or_pad(x, 10, lengths, "zero")
    assert list(lz) == [8, 3] and (z[1, :, 3:] == 0).all() and (z[0, :, 8:] == 0).all()
    r, lr = crop_or_pad(x, 10, lengths, "repeat")
    assert list(lr) == [10, 10]
    np.testing.assert_array_equal(r[1, :, 3], x[1, :, 0])
    np.testing.assert_array_equal(r[1, :, 7], x[1, :, 1])
    e, _ = crop_or_pad(x, 10, lengths, "edge")
    np.testing.assert_array_equal(e[1, :, 9], x[1, :, 2])
    c, lc = crop_or_pad(x, 5, lengths, "zero")
    assert c.shape[2] == 5 and list(lc) == [5, 3]
    with pytest.raises(ConfigError):
        crop_or_pad(x, 5, lengths, "wrap")


def test_remap_joints_and_mirror():
    k20 = get_skeleton("kinect20")
    x = _motion(2, 4, 20, 1)
    order = list(reversed(k20.joint_names))
    # identity mapping returns the input; averaging mapping averages
    ident = remap_joints(x, k20, k20, {n: n for n in k20.joint_names})
    np.testing.assert_array_equal(ident, x)
    avg = remap_joints(x, k20, k20, {n: [n, order[i]] for i, n in enumerate(k20.joint_names)})
    np.testing.assert_allclose(avg[:, :, :, 0], (x[:, :, :, 0] + x[:, :, :, 19]) / 2, atol=1e-6)
    with pytest.raises(LayoutError, match="no source joint"):
        remap_joints(x, k20, k20, {"head": "head"})
    with pytest.raises(LayoutError):
        remap_joints(x, NTU, k20, {n: n for n in k20.joint_names})
    m = mirror(x, k20)
    np.testing.assert_allclose(mirror(m, k20), x)
    li, ri = k20.joint_index("left_hand"), k20.joint_index("right_hand")
    np.testing.assert_allclose(m[:, 0, :, li], -x[:, 0, :, ri])


def test_random_rotate_scale_is_seeded_and_rigid_without_scale():
    x = _motion(3, 5, 25, 1)
    a = random_rotate_scale(x, np.random.default_rng(1), max_yaw_deg=90)
    b = random_rotate_scale(x, np.random.default_rng(1), max_yaw_deg=90)
    assert np.array_equal(a, b) and not np.allclose(a, x)
    np.testing.assert_allclose(NTU.bone_lengths(a), NTU.bone_lengths(x), rtol=1e-4)


def test_preprocess_pipeline():
    d = _dataset(t=12)
    p = preprocess(d, num_frames=20, center_mode="frame")
    assert p.x.shape == (6, 3, 20, 25, 1) and (p.lengths == 20).all()
    assert np.allclose(p.x[:, :, :, NTU.center, 0], 0, atol=1e-5)


def test_registry_errors():
    with pytest.raises(UnknownNameError, match="synthetic"):
        load_dataset("nope")
    with pytest.raises(UnknownNameError, match="split"):
        load_dataset("synthetic", split="nope")


def test_cache_hits_and_invalidates(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("1")
    calls = []

    def parse():
        calls.append(1)
        return _dataset(seed=len(calls))

    files = [src / "a.txt"]
    first = cached_load("toy", files, src, {"fps": 30}, parse, directory=tmp_path / "c")
    second = cached_load("toy", files, src, {"fps": 30}, parse, directory=tmp_path / "c")
    assert len(calls) == 1 and np.array_equal(first.x, second.x)
    cached_load("toy", files, src, {"fps": 10}, parse, directory=tmp_path / "c")
    assert len(calls) == 2
    (src / "a.txt").write_text("2")
    cached_load("toy", files, src, {"fps": 30}, parse, directory=tmp_path / "c")
    assert len(calls) == 3
    # a corrupt cache entry is rebuilt, not trusted
    for f in (tmp_path / "c").iterdir():
        f.write_bytes(b"garbage")
    cached_load("toy", files, src, {"fps": 30}, parse, directory=tmp_path / "c")
    assert len(calls) == 4


def test_missing_root_is_reported(monkeypatch, tmp_path):
    from skelrobust.data.registry import DatasetSpec, resolve_root

    spec = DatasetSpec(name="toy-files", layout="ntu25", num_classes=3, splits=("train",),
                       description="test", loader=lambda root, split: _dataset(),
                       default_folder="toy")
    monkeypatch.delenv("SKELROBUST_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError, match="SKELROBUST_DATA"):
        resolve_root(spec, None)
    with pytest.raises(DatasetNotFoundError, match="not a folder"):
        resolve_root(spec, tmp_path / "missing")
    monkeypatch.setenv("SKELROBUST_DATA", str(tmp_path))
    (tmp_path / "toy").mkdir()
    assert resolve_root(spec, None) == tmp_path / "toy"
