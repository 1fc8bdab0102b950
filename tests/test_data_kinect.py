"""Kinect-family loaders: NW-UCLA, UTD-MHAD, MSR Action3D, GTU, SBU, Kinetics-skeleton."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import skelrobust.data.gtu as gtu
import skelrobust.data.kinetics as kinetics
import skelrobust.data.msr as msr
import skelrobust.data.nwucla as nwucla
import skelrobust.data.sbu as sbu
import skelrobust.data.utdmhad as utd
from mutations import check_mutations
from skelrobust.data.kinect import camera_to_zup
from skelrobust.data.registry import dataset_spec, load_dataset
from skelrobust.data.transforms import center, view_normalize
from skelrobust.errors import ConfigError, DatasetFormatError

# folder, registry name, split -> clips (measured on the shared data)
COUNTS = {
    ("nw-ucla", "train"): 1019, ("nw-ucla", "test"): 463, ("nw-ucla", "all"): 1482,
    ("utd-mhad", "train"): 431, ("utd-mhad", "test"): 430, ("utd-mhad", "all"): 861,
    ("msr-action3d", "train"): 291, ("msr-action3d", "test"): 275, ("msr-action3d", "all"): 566,
    ("gtu", "train"): 355, ("gtu", "test"): 153, ("gtu", "all"): 508,
    ("sbu", "fold1-test"): 55, ("sbu", "fold2-test"): 52, ("sbu", "fold3-test"): 56,
    ("sbu", "fold4-test"): 54, ("sbu", "fold5-test"): 65, ("sbu", "all"): 282,
}
CLASSES = {"nw-ucla": 10, "utd-mhad": 27, "msr-action3d": 20, "gtu": 14, "sbu": 8}
FILES = {"nw-ucla": 1484, "utd-mhad": 861, "msr-action3d": 567, "gtu": 508, "sbu": 282}


def load(name: str, split: str, root, **kw):
    """``load_dataset`` quietly (the dropped-clip warnings are asserted in their own test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_dataset(name, root=root(name), split=split, **kw)


@pytest.fixture(scope="module")
def all_sets(real_data_root):
    return {name: load(name, "all", real_data_root) for name in CLASSES}


# ---------------------------------------------------------------------- counts and splits
@pytest.mark.realdata
@pytest.mark.parametrize(("name", "split"), sorted(COUNTS))
def test_counts_per_split(real_data_root, name, split):
    data = load(name, split, real_data_root)
    assert len(data) == COUNTS[name, split]
    assert data.num_classes == CLASSES[name] == dataset_spec(name).num_classes
    assert (data.class_counts() > 0).all()  # every class in every split
    assert data.info["files"] == FILES[name] and data.info["split"] == split
    assert data.num_frames == data.lengths.max() and (data.lengths >= 2).all()


@pytest.mark.realdata
def test_default_folders_under_skelrobust_data(real_data_root, monkeypatch):
    monkeypatch.setenv("SKELROBUST_DATA", str(real_data_root("sbu").parent))
    for name in ("sbu", "nw-ucla", "utd-mhad", "msr-action3d", "gtu"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            assert len(load_dataset(name, split="all")) == COUNTS[name, "all"]


@pytest.mark.realdata
def test_split_partitions(all_sets, real_data_root):
    nw = all_sets["nw-ucla"]
    assert nw.meta["view"].min() == 1 and nw.meta["view"].max() == 3
    for name, key, test in (("nw-ucla", "view", {3}), ("utd-mhad", "subject", {2, 4, 6, 8}),
                            ("msr-action3d", "subject", {2, 4, 6, 8, 10})):
        tr, te = load(name, "train", real_data_root), load(name, "test", real_data_root)
        assert set(te.meta[key]) == test and not set(tr.meta[key]) & test
        assert sorted([*tr.meta["source"], *te.meta["source"]]) == sorted(
            all_sets[name].meta["source"])
    folds = [set(load("sbu", f"fold{k}-test", real_data_root).meta["source"])
             for k in range(1, 6)]
    assert sum(map(len, folds)) == 282 and len(set().union(*folds)) == 282
    train1 = load("sbu", "fold1-train", real_data_root)
    assert len(train1) == 227 and not set(train1.meta["set"]) & set(sbu.SBU_FOLDS[0])


@pytest.mark.realdata
def test_short_and_untracked_clips_are_dropped_with_a_count(real_data_root):
    with pytest.warns(UserWarning, match="dropped 2 clips"):
        nw = nwucla.load_nwucla(real_data_root("nw-ucla"), "all")
    assert sorted(d["file"] for d in nw.info["dropped"]) == [
        "a02_s09_e04_v02.json", "a02_s09_e04_v03.json"]
    with pytest.warns(UserWarning, match="dropped 1 clips"):
        m = msr.load_msr(real_data_root("msr-action3d"), "all")
    assert m.info["dropped"] == [{"file": "a13_s09_e02_skeleton3D.txt", "frames": 0}]
    with pytest.warns(UserWarning):
        short = nwucla.load_nwucla(real_data_root("nw-ucla"), "all", min_frames=9)
    assert len(short) == 1476  # 8 clips have 1 to 8 frames


@pytest.mark.realdata
def test_msr_standard_list(real_data_root):
    sizes = {s: len(load("msr-action3d", s, real_data_root, standard_list=True))
             for s in ("all", "train", "test")}
    assert sizes == {"all": 557, "train": 284, "test": 273}


@pytest.mark.realdata
def test_gtu_split_is_seeded_and_stratified(real_data_root):
    a = load("gtu", "train", real_data_root)
    b = load("gtu", "train", real_data_root)
    c = load("gtu", "train", real_data_root, seed=1)
    np.testing.assert_array_equal(a.meta["source"], b.meta["source"])
    assert set(a.meta["source"]) != set(c.meta["source"])
    full = load("gtu", "all", real_data_root).class_counts()
    np.testing.assert_array_equal(a.class_counts(), np.round(0.7 * full))
    assert gtu.GTU_ACTIONS[1] == "right-handed shaking" and gtu.GTU_FOLDERS[6] == "2"


# ---------------------------------------------------------------------- geometry
def _valid(x):
    return np.abs(x).sum(axis=(1, 3)) > 0  # (N, T, M)


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_axes_are_z_up_metres_and_skeletons_right_handed(all_sets, name):
    data = all_sets[name]
    sk, x = data.skeleton, data.x
    valid = _valid(x)
    head, hip = sk.joint_index("head"), sk.frame.hip[0]
    rise = (x[:, 2, :, head] - x[:, 2, :, hip])[valid]
    assert (rise > 0).mean() > 0.99 and 0.3 < np.median(rise) < 0.9  # metres, head above hips
    # handedness: the facing direction (left-right shoulders x up) agrees with the feet
    # (the partner's position for SBU); a mirrored skeleton (bad axis or order) fails
    p = np.moveaxis(x, 1, -1)  # (N, T, V, M, 3)
    ls, rs = sk.frame.left_shoulder[0], sk.frame.right_shoulder[0]
    facing = np.cross(p[:, :, ls] - p[:, :, rs], p[:, :, head] - p[:, :, hip])
    if name == "sbu":
        ahead = p[:, :, sk.center, ::-1] - p[:, :, sk.center]
        both = valid.all(axis=2, keepdims=True)
        agree = (facing * ahead).sum(-1)[np.broadcast_to(both, valid.shape)]
    else:
        foot = [sk.joint_index("left_foot"), sk.joint_index("right_foot")]
        ankle = [sk.joint_index("left_ankle"), sk.joint_index("right_ankle")]
        ahead = (p[:, :, foot] - p[:, :, ankle]).mean(axis=2)
        agree = (facing * ahead).sum(-1)[valid]
    assert (agree > 0).mean() > 0.9
    # and view normalisation puts the left shoulder at +x
    xn = view_normalize(center(x, sk.center), sk)
    assert (xn[:, 0, 0, ls, 0] > xn[:, 0, 0, rs, 0]).all()


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "spread"), [("nw-ucla", 0.35), ("utd-mhad", 0.2),
                                              ("msr-action3d", 0.05), ("gtu", 0.15),
                                              ("sbu", 0.05)])
def test_bone_lengths_plausible_and_consistent(all_sets, name, spread):
    """Median bone lengths in cm ranges; per clip, the median (p90 - p10) / median of a bone.

    Kinect v1 lengths vary per frame: measured median relative spread NW-UCLA 0.28,
    UTD-MHAD 0.13, GTU 0.09, SBU 0.015, MSR 0.000 (a fitted skeleton, constant lengths).
    """
    data = all_sets[name]
    sk = data.skeleton
    bl = sk.bone_lengths(data.x) * 100.0  # (N, T, B, M) cm
    valid = _valid(data.x)
    per_bone = np.array([np.median(bl[:, :, b][valid]) for b in range(sk.num_bones)])
    assert ((per_bone > 3.0) & (per_bone < 60.0)).all(), per_bone
    names = [sk.joint_names[c] for c, _ in sk.bones]
    for limb, lo, hi in (("left_elbow", 20, 35), ("right_knee", 30, 56)):
        assert lo < per_bone[names.index(limb)] < hi
    spreads = []
    for i in range(len(data)):
        for m in range(data.num_bodies):
            b = bl[i][valid[i, :, m]][:, :, m]
            if len(b) >= 5:
                q10, q90 = np.percentile(b, [10, 90], axis=0)
                spreads.append(np.median((q90 - q10) / np.median(b, axis=0)))
    assert np.median(spreads) < spread


@pytest.mark.realdata
def test_left_right_labels_follow_the_actions(all_sets):
    def motion(data, joint, cls, m=0):
        j = data.skeleton.joint_index(joint)
        step = np.abs(np.diff(data.x[:, :, :, j, m], axis=2)).sum(axis=1)  # (N, T - 1)
        inside = np.arange(data.num_frames - 1) < data.lengths[:, None] - 1
        return np.median((step * inside)[data.y == cls].sum(axis=1))

    u = all_sets["utd-mhad"]  # class 2: right hand wave
    assert motion(u, "right_hand", 2) > 3 * motion(u, "left_hand", 2)
    m = all_sets["msr-action3d"]  # class 0: high arm wave (right arm by the protocol)
    assert motion(m, "right_hand", 0) > 3 * motion(m, "left_hand", 0)
    g = all_sets["gtu"]  # the documented mismatch: "right-handed shaking" moves the left hand
    right_shaking = gtu.GTU_ACTIONS.index("right-handed shaking")
    assert motion(g, "left_hand", right_shaking) > 3 * motion(g, "right_hand", right_shaking)
    s = all_sets["sbu"]  # shaking hands joins the right hands
    shake = s.y == sbu.SBU_ACTIONS.index("shaking hands")
    x, outside = s.x[shake], ~s.frame_mask()[shake]
    rh, lh = s.skeleton.joint_index("right_hand"), s.skeleton.joint_index("left_hand")
    rr = np.where(outside, np.inf, np.linalg.norm(x[:, :, :, rh, 0] - x[:, :, :, rh, 1], axis=1))
    ll = np.where(outside, np.inf, np.linalg.norm(x[:, :, :, lh, 0] - x[:, :, :, lh, 1], axis=1))
    rr, ll = rr.min(axis=1), ll.min(axis=1)
    assert np.median(rr) < 0.1 < np.median(ll)


@pytest.mark.realdata
def test_gtu_mirror_option(real_data_root):
    plain = load("gtu", "all", real_data_root)
    mirrored = load("gtu", "all", real_data_root, mirror=True)
    perm = plain.skeleton.mirror_permutation
    np.testing.assert_allclose(mirrored.x[:, 0], -plain.x[:, 0][:, :, perm])
    np.testing.assert_allclose(mirrored.x[:, 1:], plain.x[:, 1:][:, :, :, perm])


@pytest.mark.realdata
def test_remap_to_kinect20_by_name(real_data_root):
    path = real_data_root("utd-mhad") / "Skeleton" / "a1_s1_t1_skeleton.mat"
    raw = scipy.io.loadmat(path)["d_skel"][:, :, 0]  # file order: head first
    data = load("utd-mhad", "all", real_data_root)
    i = int(np.flatnonzero(data.meta["source"] == "a1_s1_t1_skeleton")[0])
    sk = data.skeleton
    first = data.x[i, :, 0, :, 0].T  # (20, 3) z-up
    for file_row, joint in ((0, "head"), (3, "hip_center"), (8, "right_shoulder")):
        np.testing.assert_allclose(first[sk.joint_index(joint)], camera_to_zup(raw[file_row]),
                                   atol=1e-6)


def test_camera_to_zup_is_a_proper_rotation():
    basis = camera_to_zup(np.eye(3))
    assert np.isclose(np.linalg.det(basis), 1.0)
    np.testing.assert_array_equal(camera_to_zup([0.0, 1.0, 0.0]), [0.0, 0.0, 1.0])  # up -> +z


# ---------------------------------------------------------------------- corrupt files, cache
@pytest.mark.realdata
def test_corrupt_file_in_a_folder_is_skipped_or_raises(real_data_root, tmp_path):
    src = real_data_root("msr-action3d")
    for f in sorted(src.glob("a01_s0[12]_*_skeleton3D.txt")):
        shutil.copy(f, tmp_path / f.name)
    bad = tmp_path / "a01_s01_e01_skeleton3D.txt"
    bad.write_text(bad.read_text().replace("0.", "x.", 1))
    with pytest.warns(UserWarning, match=r"skipped 1 of 6 files .*a01_s01_e01_skeleton3D\.txt, "
                                         r"line 1: '-x\.371736' is not a number"):
        data = msr.load_msr(tmp_path, "all")
    assert len(data) == 5 and data.info["skipped"][0]["file"] == bad.name
    with pytest.raises(DatasetFormatError, match="line 1"):
        msr.load_msr(tmp_path, "all", strict=True)
    lines = bad.read_text().replace("x.", "0.", 1).splitlines()
    bad.write_text("\n".join(lines[:-3]))
    with pytest.raises(DatasetFormatError, match="not a multiple of 20 joints"):
        msr.read_msr_skeleton(bad)


@pytest.mark.realdata
def test_cache_roundtrip_and_key(real_data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SKELROBUST_CACHE", str(tmp_path / "cache"))
    root = real_data_root("sbu")
    first = sbu.load_sbu(root, "all")
    second = sbu.load_sbu(root, "all")
    assert second.info.get("cache") == "hit" and "cache" not in first.info
    np.testing.assert_array_equal(first.x, second.x)
    np.testing.assert_array_equal(first.meta["set"], second.meta["set"])
    sbu.load_sbu(root, "all", min_frames=3)
    assert len(list((tmp_path / "cache").glob("sbu-*.npz"))) == 2


@pytest.mark.realdata
def test_utd_corrupt_mat(real_data_root, tmp_path):
    src = real_data_root("utd-mhad") / "Skeleton" / "a1_s1_t1_skeleton.mat"
    target = tmp_path / src.name
    target.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(DatasetFormatError, match=r"a1_s1_t1_skeleton\.mat"):
        utd.read_utd_mat(target)


# ---------------------------------------------------------------------- Kinetics (synthetic)
def _video(t: int, people: list[list[float]], label: int) -> dict:
    """``t`` frames; person k has constant pose ``people[k][0]`` and score ``people[k][1]``."""
    frames = []
    for i in range(t):
        skel = [{"pose": [p[0], p[0] + 0.1] * 18, "score": [p[1]] * 18} for p in people]
        frames.append({"frame_index": i, "skeleton": skel})
    return {"data": frames, "label": f"class {label}", "label_index": label}


@pytest.fixture
def kinetics_root(tmp_path):
    for part, videos in (("train", {"v1": (4, [[0.2, 0.3], [0.6, 0.9], [0.4, 0.5]], 3),
                                    "v2": (6, [[0.5, 1.0]], 7), "v3": (3, [], 1)}),
                         ("val", {"w1": (5, [[0.5, 0.8]], 3)})):
        folder = tmp_path / f"kinetics_{part}"
        folder.mkdir()
        labels = {}
        for vid, (t, people, label) in videos.items():
            (folder / f"{vid}.json").write_text(json.dumps(_video(t, people, label)))
            labels[vid] = {"has_skeleton": bool(people), "label": f"class {label}",
                           "label_index": label}
        (tmp_path / f"kinetics_{part}_label.json").write_text(json.dumps(labels))
    return tmp_path


def test_kinetics_reader_follows_stgcn(kinetics_root):
    data = kinetics.load_kinetics(kinetics_root, "train")
    assert len(data) == 2 and data.x.shape == (2, 3, 6, 18, 2) and data.num_classes == 400
    assert data.info["no_skeleton"] == ["v3"] and data.class_names[7] == "class 7"
    np.testing.assert_array_equal(data.y, [3, 7])
    np.testing.assert_array_equal(data.lengths, [4, 6])
    v1 = data.x[0]  # ranked by score: person 2 (0.9), then person 3 (0.5)
    np.testing.assert_allclose(v1[:, 0, 0, 0], [0.6 - 0.5, -(0.7 - 0.5), 0.9], atol=1e-6)
    np.testing.assert_allclose(v1[:, 0, 0, 1], [0.4 - 0.5, -(0.5 - 0.5), 0.5], atol=1e-6)
    assert not v1[:, 4:].any()  # zero padding after the clip
    assert not data.x[1, :, :, :, 1].any()  # a single person: the second body is empty
    val = load_dataset("kinetics", root=kinetics_root, split="val")
    assert len(val) == 1 and val.skeleton.name == "openpose18"
    with pytest.raises(ConfigError):
        kinetics.load_kinetics(kinetics_root, "test")


def test_kinetics_bad_json_is_skipped(kinetics_root):
    (kinetics_root / "kinetics_train" / "v2.json").write_text('{"data": [{"frame_index": -1}]}')
    with pytest.warns(UserWarning, match="skipped 1"):
        data = kinetics.load_kinetics(kinetics_root, "train", use_cache=False)
    assert len(data) == 1


# ---------------------------------------------------------------------- hypothesis: mutations
MUTATION_SETTINGS = settings(max_examples=40, deadline=None,
                             suppress_health_check=list(HealthCheck))


@pytest.mark.realdata
@MUTATION_SETTINGS
@given(data=st.data())
def test_nwucla_json_mutations(real_data_root, data):
    src = real_data_root("nw-ucla") / "all_sqe" / "a05_s03_e02_v03.json"
    check_mutations(data, src, src.name, nwucla.read_nwucla_json)


@pytest.mark.realdata
@MUTATION_SETTINGS
@given(data=st.data())
def test_msr_text_mutations(real_data_root, data):
    src = real_data_root("msr-action3d") / "a01_s01_e01_skeleton3D.txt"
    check_mutations(data, src, src.name, msr.read_msr_skeleton)


@pytest.mark.realdata
@MUTATION_SETTINGS
@given(data=st.data())
def test_gtu_text_mutations(real_data_root, data):
    src = real_data_root("gtu") / "3" / "movement5.txt"
    check_mutations(data, src, "3/movement5.txt", gtu.read_gtu_movement)


@pytest.mark.realdata
def test_sbu_overflowing_value_is_a_format_error(real_data_root, tmp_path):
    """A finite value too large for the mm conversion names the file, not a RuntimeWarning."""
    src = real_data_root("sbu") / "s01s02" / "05" / "001" / "skeleton_pos.txt"
    lines = src.read_text().splitlines()
    fields = lines[2].split(",")
    fields[4] = "1e306"
    lines[2] = ",".join(fields)
    target = tmp_path / "s01s02" / "05" / "001" / "skeleton_pos.txt"
    target.parent.mkdir(parents=True)
    target.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DatasetFormatError, match=r"skeleton_pos\.txt: frame 3: .*overflows"):
            sbu.read_sbu_csv(target)


@pytest.mark.realdata
@MUTATION_SETTINGS
@given(data=st.data())
def test_sbu_csv_mutations(real_data_root, data):
    src = real_data_root("sbu") / "s01s02" / "05" / "001" / "skeleton_pos.txt"
    check_mutations(data, src, "s01s02/05/001/skeleton_pos.txt", sbu.read_sbu_csv)


@MUTATION_SETTINGS
@given(data=st.data())
def test_kinetics_json_mutations(tmp_path_factory, data):
    src = tmp_path_factory.getbasetemp() / "kinetics_source.json"
    if not src.exists():
        src.write_text(json.dumps(_video(3, [[0.2, 0.3], [0.6, 0.9]], 5), indent=1))
    check_mutations(data, src, "k.json", kinetics.read_kinetics_json)
