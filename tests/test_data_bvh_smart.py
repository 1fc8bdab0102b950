"""BVH parser/FK, the ``bvh`` and ``smart-hdm05`` datasets, and fuzzing of the text parsers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mutations import mutations
from skelrobust.data import acclaim, bvh, hdm05, smart
from skelrobust.data.transforms import remap_joints
from skelrobust.errors import DatasetFormatError, DatasetNotFoundError, LayoutError
from skelrobust.skeleton import get_skeleton

pytestmark = pytest.mark.realdata

CLIP = "HDM_bd_cartwheelLHandStart1Reps_001_120.bvh"
LAYOUTS = {CLIP: "hdm05_31", "hdm05_rest.bvh": "hdm05_25", "rest.bvh": "hdm05_31",
           "skel_motionbuilder.bvh": "hdm05_31", "ntu_rest.bvh": "bvh_Hips_26j_"}


@pytest.fixture
def bvh_root(real_data_root):
    return real_data_root("bvh")


@pytest.fixture
def smart_root(real_data_root):
    return real_data_root("smart-format")


# ---------------------------------------------------------------------- BVH
def test_every_bvh_file_parses_with_rigid_bones(bvh_root):
    files = sorted(bvh_root.glob("*.bvh"))
    assert {f.name for f in files} == set(LAYOUTS)
    for f in files:
        motion = bvh.load_bvh(f)
        pos = motion.forward_kinematics()
        assert pos.shape == (motion.num_frames, len(motion.names), 3)
        assert np.isfinite(pos).all()
        par = np.array(motion.parents)
        kids = np.flatnonzero(par >= 0)
        length = np.linalg.norm(pos[:, kids] - pos[:, par[kids]], axis=-1)
        rest = np.linalg.norm(motion.offsets[kids], axis=-1)
        assert (np.abs(length - rest) <= 1e-6 * np.maximum(rest, 1.0)).all(), f.name
        layout, lpos = bvh.bvh_to_layout(motion)
        assert layout.name.startswith(LAYOUTS[f.name]), (f.name, layout.name)
        assert lpos.shape == (motion.num_frames, layout.num_joints, 3)
    clip = bvh.load_bvh(bvh_root / CLIP)
    assert clip.num_frames == 401 and len(clip.joint_names) == 31
    assert clip.frame_time == pytest.approx(1 / 120, rel=1e-3)


def test_bvh_rotation_order_and_position_channels():
    text = """HIERARCHY
ROOT r
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT a
  {
    OFFSET 1 0 0
    CHANNELS 4 Xrotation Zrotation Yposition Yrotation
    End Site
    {
      OFFSET 0 2 0
    }
  }
}
MOTION
Frames: 1
Frame Time: 0.5
1 2 3 90 0 0 0 90 5 0
"""
    m = bvh.parse_bvh(text, "t.bvh")
    pos = m.positions(end_sites=True)[0]
    np.testing.assert_allclose(pos[0], [1, 2, 3], atol=1e-12)
    # root Rz(90): a's translation (1, 5, 0) (Yposition replaces OFFSET y) -> (-5, 1, 0)
    np.testing.assert_allclose(pos[1], [-4, 3, 3], atol=1e-12)
    # a: Rx(0)·Rz(90)·Ry(0), so G_a = Rz(90)·Rz(90) = Rz(180): end site (0, 2, 0) -> (0, -2, 0)
    np.testing.assert_allclose(pos[2], [-4, 1, 3], atol=1e-12)
    with pytest.raises(DatasetFormatError, match=r"t\.bvh:19: field 3"):
        bvh.parse_bvh(text.replace("1 2 3 90", "1 2 x 90"), "t.bvh")
    with pytest.raises(DatasetFormatError, match="Frames says 2"):
        bvh.parse_bvh(text.replace("Frames: 1", "Frames: 2"), "t.bvh")


def test_hdm05_25_mapping_matches_the_research_code_selection(bvh_root):
    """BASAR picks its 25 joints from CMU ``rest.bvh`` (same tree as the HDM05 clip):
    drop Hips and indices 16, 17, 21, 24, 28. Our 31 -> 25 mapping must agree."""
    clip = bvh.load_bvh(bvh_root / CLIP)
    rest = bvh.load_bvh(bvh_root / "rest.bvh")
    assert [bvh.CMU_TO_ACCLAIM[n] for n in rest.joint_names[1:]] == list(clip.joint_names[1:])
    keep = np.delete(np.arange(31), [16, 17, 21, 24, 28])[1:]
    research = clip.positions()[:, keep]  # (T, 25, 3): BVH joints = starts of bones
    names = [clip.joint_names[k] for k in keep]
    layout = get_skeleton("hdm05_25")
    assert names == [bvh.BVH_START_TO_25[j] for j in layout.joint_names]
    skel31, pos31 = bvh.bvh_to_layout(clip)  # end points of bones, independent code path
    assert skel31.name == "hdm05_31"
    x31 = np.moveaxis(pos31, -1, 0)[None, ..., None]
    x25 = remap_joints(x31, "hdm05_31", "hdm05_25", hdm05.HDM05_31_TO_25)
    np.testing.assert_allclose(np.moveaxis(x25[0, ..., 0], 0, -1), research, atol=1e-9)
    basar_layout, basar = bvh.bvh_to_layout(bvh.load_bvh(bvh_root / "hdm05_rest.bvh"))
    assert basar_layout is layout
    rest25 = rest.positions()[:, keep]
    np.testing.assert_allclose(basar, rest25, atol=1e-9)


def test_bvh_dataset(bvh_root, tmp_path):
    data = bvh.load_bvh_dataset(bvh_root, pattern=f"{CLIP[:6]}*.bvh", fps=30)
    assert data.skeleton.name == "hdm05_31" and len(data) == 1
    assert data.num_frames == 101 and data.class_names == ["unlabelled"]
    femur = data.skeleton.bone_lengths(data.x)[0, 0, data.skeleton.joint_index("lfemur") - 1, 0]
    assert 0.35 < femur < 0.5  # "acclaim" units: 7.16 units = 0.40 m
    assert data.x[0, 2, 0, data.skeleton.joint_index("head"), 0] > data.x[0, 2, 0, 4, 0]  # z-up
    with pytest.raises(DatasetFormatError, match="hierarchy gives layout"):
        bvh.load_bvh_dataset(bvh_root)  # mixed hierarchies in one folder
    for label in ("cartwheel", "rest"):  # labels from sub-folders
        (tmp_path / "f" / label).mkdir(parents=True)
    (tmp_path / "f" / "cartwheel" / "a.bvh").symlink_to((bvh_root / CLIP).resolve())
    (tmp_path / "f" / "rest" / "b.bvh").symlink_to((bvh_root / "rest.bvh").resolve())
    folders = bvh.load_bvh_dataset(tmp_path / "f")
    assert folders.class_names == ["cartwheel", "rest"] and list(folders.y) == [0, 1]
    assert list(folders.lengths) == [401, 1]
    (tmp_path / "f" / "labels.csv").write_text(
        "file,label,split\ncartwheel/a.bvh,x,train\nrest/b.bvh,y,test\n")
    test = bvh.load_bvh_dataset(tmp_path / "f", split="test", use_cache=False)
    assert len(test) == 1 and test.class_names == ["y"]
    generic = bvh.load_bvh_dataset(bvh_root, pattern="ntu_rest.bvh", unit_scale="m")
    assert generic.skeleton.name.startswith("bvh_Hips_26j_") and generic.x.shape[3] == 26
    again = bvh.load_bvh_dataset(bvh_root, pattern="ntu_rest.bvh", unit_scale="m")
    np.testing.assert_array_equal(again.x, generic.x)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"no \.bvh files"):
        bvh.load_bvh_dataset(tmp_path / "empty")


# ---------------------------------------------------------------------- SMART
def test_smart_format_loads_and_round_trips(smart_root, real_data_root, tmp_path):
    data = smart.load_smart(smart_root, "train")
    raw = np.load(smart_root / "adClassTrain.npz")
    assert data.x.shape == (7, 3, 60, 25, 1) and data.skeleton.name == "hdm05_25"
    assert data.num_classes == 65 and list(data.y) == list(raw["classes"])
    mean, std = smart.load_smart_core(smart_root / "preprocess_core.npz")
    back = smart.to_smart_format(data, mean, std)
    assert back.shape == raw["clips"].shape and back.dtype == np.float32
    np.testing.assert_allclose(back, raw["clips"], atol=1e-5, rtol=0)
    smart.save_smart_npz(tmp_path / "ad.npz", data, mean, std)
    with np.load(tmp_path / "ad.npz") as f:
        np.testing.assert_allclose(f["clips"], raw["clips"], atol=1e-5, rtol=0)
    assert not data.x[:, :, :, [0, 5, 10]].any()  # root-centred, hip bases on the root
    with pytest.raises(DatasetNotFoundError, match=r"adClassTest\.npz"):
        smart.load_smart(smart_root, "test")
    with pytest.raises(LayoutError, match="hdm05_25"):
        smart.to_smart_format(hdm05.load_hdm05(real_data_root("hdm05"), "test"), mean, std)


def test_smart_units_match_the_rest_skeleton_and_hdm05(smart_root, bvh_root, real_data_root):
    data = smart.load_smart(smart_root)
    skel = data.skeleton
    lengths = skel.bone_lengths(data.x)[..., 0]  # (N, T, 24), metres
    rest = bvh.load_bvh(bvh_root / "hdm05_rest.bvh")
    _, pos = bvh.bvh_to_layout(rest)
    rest_x = np.moveaxis(pos, -1, 0)[None, ..., None] * smart.SMART_METRES_PER_UNIT
    rest_len = skel.bone_lengths(rest_x)[0, 0, :, 0]
    np.testing.assert_allclose(lengths, np.broadcast_to(rest_len, lengths.shape), atol=1e-5)
    amc = hdm05.load_hdm05(real_data_root("hdm05"), "test", layout="hdm05_25")
    amc_len = np.median(skel.bone_lengths(amc.x)[..., 0][amc.frame_mask()], axis=0)
    long = [skel.joint_index(j) - (skel.joint_index(j) > skel.center) for j in
            ("left_knee", "left_ankle", "right_knee", "right_ankle", "left_elbow", "left_wrist",
             "right_elbow", "right_wrist")]
    ratio = lengths[0, 0, long].sum() / amc_len[long].sum()
    assert 0.9 < ratio < 1.1  # metres both; inches or cm would be off by > 2x
    z = data.x[:, 2, :, :, 0]
    assert (z[:, :, skel.joint_index("upper_neck")] > z[:, :, skel.joint_index("left_ankle")]).all()


# ---------------------------------------------------------------------- fuzzing
def _head(path, lines: int) -> bytes:
    return b"".join(path.read_bytes().splitlines(keepends=True)[:lines])


def _check(parse, text: bytes) -> None:
    try:
        out = parse(text)
    except DatasetFormatError as err:
        assert "mutated" in str(err)  # names the file
        return
    assert np.isfinite(out).all()


@pytest.fixture(scope="module")
def texts(real_data_root):
    root = real_data_root("hdm05")
    return {
        "asf": (root / "asf" / "HDM_bd.asf").read_bytes(),
        "amc": _head(root / "squat1Reps" / "HDM_bd_squat1Reps_001_120.amc", 3 + 30 * 6),
        "bvh": _head(real_data_root("bvh") / CLIP, 187 + 12).replace(b"Frames: 401",
                                                                      b"Frames: 12"),
    }


_FUZZ = settings(max_examples=150, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow, HealthCheck.data_too_large])


@_FUZZ
@given(data=st.data())
def test_fuzz_asf(texts, data):
    amc = acclaim.parse_amc(texts["amc"], "ok.amc")
    text = data.draw(mutations(texts["asf"]))
    _check(lambda t: acclaim.forward_kinematics(acclaim.parse_asf(t, "mutated.asf"), amc), text)


@_FUZZ
@given(data=st.data())
def test_fuzz_amc(texts, data):
    skel = acclaim.parse_asf(texts["asf"], "ok.asf")
    text = data.draw(mutations(texts["amc"]))

    def run(t: bytes) -> np.ndarray:
        motion = acclaim.parse_amc(t, "mutated.amc")
        assert all(np.isfinite(v).all() for v in motion.values.values())
        return acclaim.forward_kinematics(skel, motion)

    _check(run, text)


@_FUZZ
@given(data=st.data())
def test_fuzz_bvh(texts, data):
    text = data.draw(mutations(texts["bvh"]))
    _check(lambda t: bvh.bvh_to_layout(bvh.parse_bvh(t, "mutated.bvh"))[1], text)
