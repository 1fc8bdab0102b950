"""HDM05 from ASF/AMC: forward kinematics vs the HDM05 toolbox, splits, units, hdm05_25."""

from __future__ import annotations

import numpy as np
import pytest

from skelrobust.data import acclaim, hdm05
from skelrobust.data.bvh import BVH_START_TO_25
from skelrobust.errors import ConfigError, DatasetFormatError, DatasetNotFoundError
from skelrobust.skeleton import get_skeleton

pytestmark = pytest.mark.realdata

# Counts found in the shared 11-class subset (288 files).
TRAIN_ACTORS = {"bd": 62, "bk": 66, "dg": 61}
TEST_ACTORS = {"mm": 44, "tr": 55}
TRAIN_CLASSES = {
    "depositFloorR": 18, "elbowToKnee1RepsLelbowStart": 18, "grabHighR": 16,
    "hopBothLegs1hops": 30, "jogLeftCircle4StepsRstart": 10, "kickLFront1Reps": 18,
    "lieDownFloor": 14, "rotateArmsBothBackward1Reps": 10, "sneak2StepsLStart": 10,
    "squat1Reps": 36, "throwBasketball": 9,
}
TEST_CLASSES = {
    "depositFloorR": 14, "elbowToKnee1RepsLelbowStart": 9, "grabHighR": 13,
    "hopBothLegs1hops": 6, "jogLeftCircle4StepsRstart": 7, "kickLFront1Reps": 11,
    "lieDownFloor": 6, "rotateArmsBothBackward1Reps": 6, "sneak2StepsLStart": 6,
    "squat1Reps": 16, "throwBasketball": 5,
}


@pytest.fixture
def root(real_data_root):
    return real_data_root("hdm05")


def _reference_files(root):
    files = sorted((root / "reference_positions").glob("*.amc.mat"))
    assert len(files) >= 2, "expected the HDM05 toolbox reference trajectories"
    return files


def test_layout_matches_asf_bone_order_and_reference_names(root):
    scipy_io = pytest.importorskip("scipy.io")
    layout = get_skeleton("hdm05_31")
    for asf in sorted((root / "asf").glob("*.asf")):
        skel = acclaim.load_asf(asf)
        assert skel.joint_names == layout.joint_names
        for b in skel.bones:  # layout parent = end point of the ASF parent bone
            assert layout.joint_names[layout.parents[layout.joint_index(b.name)]] == b.parent
    ref = scipy_io.loadmat(_reference_files(root)[0], squeeze_me=True,
                           struct_as_record=False)["mot"]
    ends = [str(n).split("_@_")[-1] for n in ref.jointNames]  # 'A_@_B' = end of bone B
    assert tuple(ends) == layout.joint_names


def test_forward_kinematics_matches_hdm05_toolbox(root):
    """Every joint and frame within 1 mm of the toolbox's own trajectories (0.001 mm seen)."""
    scipy_io = pytest.importorskip("scipy.io")
    for ref_path in _reference_files(root):
        mot = scipy_io.loadmat(ref_path, squeeze_me=True, struct_as_record=False)["mot"]
        name = ref_path.name[: -len(".mat")]
        actor, cls = name.split("_")[1:3]
        skel = acclaim.load_asf(root / "asf" / f"HDM_{actor}.asf")
        pos = acclaim.forward_kinematics(skel, acclaim.load_amc(root / cls / name))
        ref = np.stack([np.asarray(t, dtype=np.float64) for t in mot.jointTrajectories])
        ref = ref.transpose(2, 0, 1)  # (T, 31, 3), inches (ASF units / 0.45)
        assert pos.shape == ref.shape
        err_mm = np.linalg.norm(pos / skel.length_unit - ref, axis=-1) * 25.4
        assert err_mm.max() < 1.0, (name, err_mm.max())
        assert err_mm.max() < 1e-3, (name, err_mm.max())


def test_splits_counts_and_classes(root):
    train = hdm05.load_hdm05(root, "train")
    test = hdm05.load_hdm05(root, "test")
    assert len(train) == 189 and len(test) == 99 and len(train) + len(test) == 288
    assert train.class_names == test.class_names == sorted(TRAIN_CLASSES)
    assert dict(zip(train.class_names, train.class_counts().tolist())) == TRAIN_CLASSES
    assert dict(zip(test.class_names, test.class_counts().tolist())) == TEST_CLASSES
    for data, actors in ((train, TRAIN_ACTORS), (test, TEST_ACTORS)):
        got = {a: int((data.meta["actor"] == a).sum()) for a in np.unique(data.meta["actor"])}
        assert got == actors
        assert data.skeleton.name == "hdm05_31" and data.x.shape[1:] == (3, data.num_frames,
                                                                          31, 1)
        assert data.num_frames == data.lengths.max()
        assert not (data.x * ~data.frame_mask()[:, None, :, None, None]).any()  # zero padding
    assert any(s.endswith(".AMC") for s in train.meta["source"])  # upper-case extension
    assert hdm05.load_hdm05(root, "all").x.shape[0] == 288


def test_units_axes_and_rigid_bones(root):
    data = hdm05.load_hdm05(root, "train")
    skel = data.skeleton
    mask = data.frame_mask()
    bl = skel.bone_lengths(data.x)[..., 0]  # (N, T, B)
    for i in range(len(data)):
        b = bl[i, mask[i]]
        spread = (b.max(0) - b.min(0)) / np.maximum(b.mean(0), 1e-9)
        assert spread.max() < 0.10  # the requirement
        assert spread.max() < 1e-4  # mocap FK: rigid
    femur = np.median(bl[..., skel.joint_index("lfemur") - 1][mask])
    assert 0.35 < femur < 0.5  # metres
    head_z = data.x[:, 2, :, skel.joint_index("head"), 0][mask]
    toe_z = data.x[:, 2, :, skel.joint_index("ltoes"), 0][mask]
    standing = ~np.isin(data.y, [data.class_names.index("lieDownFloor")])
    assert np.median(head_z - toe_z) > 1.2 and standing.any()  # z-up, metres


def test_rate_windows_padding_and_cache(root):
    full = hdm05.load_hdm05(root, "test", fps=None)
    dec = hdm05.load_hdm05(root, "test")
    assert np.array_equal(dec.lengths, (full.lengths + 3) // 4)
    np.testing.assert_array_equal(dec.x[:, :, : dec.num_frames],
                                  full.x[:, :, ::4][:, :, : dec.num_frames])
    again = hdm05.load_hdm05(root, "test")  # from the cache
    np.testing.assert_array_equal(again.x, dec.x)
    assert list(again.meta["source"]) == list(dec.meta["source"])
    win = hdm05.load_hdm05(root, "test", window=60, stride=20)
    assert win.num_frames == 60 and win.lengths.max() == 60
    first = win.subset(win.meta["start"] == 20)
    i = list(dec.meta["source"]).index(first.meta["source"][0])
    np.testing.assert_array_equal(first.x[0, :, :, :, 0], dec.x[i, :, 20:80, :, 0])
    fixed = hdm05.load_hdm05(root, "test", num_frames=50, temporal="resample")
    assert fixed.x.shape[2] == 50 and (fixed.lengths == 50).all()
    with pytest.raises(ConfigError):
        hdm05.load_hdm05(root, "val")


def test_hdm05_25_conversion_keeps_the_tree(root):
    data = hdm05.load_hdm05(root, "test", layout="hdm05_25")
    skel = get_skeleton("hdm05_25")
    assert data.skeleton is skel and data.x.shape[3] == 25
    assert list(skel.parents) == [10, 0, 1, 2, 3, 10, 5, 6, 7, 8, -1, 10, 11, 12, 13, 13, 15,
                                  16, 17, 18, 13, 20, 21, 22, 23]
    assert set(hdm05.HDM05_31_TO_25) == set(skel.joint_names)
    # the 31-joint points of the 25 are where BASAR's BVH joints start (parent bone ends)
    layout31 = get_skeleton("hdm05_31")
    for joint, bone in BVH_START_TO_25.items():
        parent = layout31.joint_names[layout31.parents[layout31.joint_index(bone)]]
        assert hdm05.HDM05_31_TO_25[joint] == parent
    x = data.x[..., 0]
    for j in ("left_pelvis", "right_pelvis"):  # zero-length bones to the root
        np.testing.assert_array_equal(x[:, :, :, skel.joint_index(j)], x[:, :, :, 10])
    mask = data.frame_mask()
    bl = skel.bone_lengths(data.x)[..., 0]
    # Every 25-layout bone is one ASF bone, hence rigid, except wrist -> hand: it spans
    # lwrist + lhand with the hand's flexion (dofs rx rz) between them, so on HDM05's own
    # skeletons its length changes as the hand bends (the research arrays keep it rigid
    # only because their CMU rest skeleton has a zero-length wrist bone).
    two = [k for k, (c, _) in enumerate(skel.bones) if skel.joint_names[c].endswith("_hand")]
    for i in range(len(data)):
        b = bl[i, mask[i]]
        spread = (b.max(0) - b.min(0)) / np.maximum(b.mean(0), 1e-9)
        assert np.delete(spread, two).max() < 1e-4
        assert spread[two].max() < 0.5
    converted = hdm05.to_hdm05_25(hdm05.load_hdm05(root, "test"))
    np.testing.assert_array_equal(converted.x, data.x)


def test_errors_name_the_file(root, tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"no \.amc files"):
        hdm05.load_hdm05(tmp_path, "train")
    src = root / "squat1Reps" / "HDM_bd_squat1Reps_001_120.amc"
    folder = tmp_path / "squat1Reps"
    folder.mkdir()
    lines = src.read_bytes().splitlines(keepends=True)
    (folder / src.name).write_bytes(b"".join(lines[:200]) + b"rtibia 12.")  # truncated
    with pytest.raises(DatasetNotFoundError, match=r"HDM_bd\.asf"):
        hdm05.load_hdm05(tmp_path, "train")
    (tmp_path / "asf").mkdir()
    (tmp_path / "asf" / "HDM_bd.asf").write_bytes((root / "asf" / "HDM_bd.asf").read_bytes())
    with pytest.raises(DatasetFormatError, match=r"HDM_bd_squat1Reps_001_120\.amc"):
        hdm05.load_hdm05(tmp_path, "train", use_cache=False)
    with pytest.raises(DatasetNotFoundError, match="split 'test'"):
        hdm05.load_hdm05(tmp_path, "test")


def test_amc_header_comments_and_radians():
    asf = """:units
  length 1
  angle deg
:root
  order TX TY TZ RX RY RZ
  axis XYZ
:bonedata
  begin
    name a
    direction 1 0 0
    length 2
    axis 0 0 90 XYZ
    dof rz
  end
:hierarchy
  begin
    root a
  end
"""
    amc = "# comment\n:FULLY-SPECIFIED\n:RADIANS\n1\nroot 0 0 0 0 0 0\na 1.5707963267948966\n" \
          "# between frames\n\n2\nroot 1 0 0 0 0 0\na 0\n"
    skel = acclaim.parse_asf(asf, "t.asf")
    mot = acclaim.parse_amc(amc, "t.amc")
    assert mot.angle_unit == "rad" and mot.num_frames == 2
    pos = acclaim.forward_kinematics(skel, mot)
    # C = Rz(90°) (ASF degrees) and M = Rz(π/2) (AMC radians): L = C·M·C⁻¹ = Rz(90°)
    np.testing.assert_allclose(pos[0, 1], [0, 2, 0], atol=1e-12)
    np.testing.assert_allclose(pos[1, 1], [3, 0, 0], atol=1e-12)
    with pytest.raises(DatasetFormatError, match=r"t\.amc:6: .*field 1"):
        acclaim.parse_amc(amc.replace("a 1.5707963267948966", "a 1.5x"), "t.amc")
    with pytest.raises(DatasetFormatError, match="unknown bone"):
        acclaim.parse_asf(asf.replace("root a", "root b"), "t.asf")
