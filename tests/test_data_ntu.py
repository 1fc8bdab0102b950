"""NTU RGB+D: raw parser, 2s-AGCN pipeline, splits, cache, preprocessed readers, safe pickles."""

from __future__ import annotations

import math
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import skelrobust.data.ntu as ntu
from mutations import check_mutations
from skelrobust.data.kinect import stack_clips
from skelrobust.data.preprocessed import read_ctrgcn_npz, read_pyskl, read_stgcn
from skelrobust.data.registry import dataset_spec, load_dataset
from skelrobust.data.safe_pickle import safe_load, safe_loads
from skelrobust.errors import ConfigError, DatasetFormatError

TRUNCATED = {"S005C002P013R002A056", "S012C001P008R002A030"}
FRAMES = {"S001C002P003R002A013": 147, "S002C002P009R001A056": 72, "S005C003P017R001A040": 51,
          "S007C003P017R001A030": 110, "S010C003P007R002A021": 87, "S010C003P025R002A032": 72,
          "S013C001P007R001A031": 53, "S015C003P007R001A023": 69}


@pytest.fixture(scope="module")
def ntu_dir(real_data_root) -> Path:
    return real_data_root("ntu") / "nturgb+d_skeletons"


def _intact(folder: Path) -> list[Path]:
    return [folder / f"{n}.skeleton" for n in sorted(FRAMES)]


# ---------------------------------------------------------------------- raw parser
@pytest.mark.realdata
def test_parser_reads_the_eight_intact_files(ntu_dir):
    for path in _intact(ntu_dir):
        f = ntu.read_ntu_skeleton(path)
        assert f.num_frames == FRAMES[path.stem]
        assert f.xyz.shape[1:] == (f.xyz.shape[1], 25, 3) and np.isfinite(f.xyz).all()
        present = f.body_ids >= 0
        assert present[:, 0].all()  # every frame of these files has a body
        depth = f.xyz[..., 2][present]
        assert 1.0 < np.median(depth) < 5.0  # metres from the sensor
    two = ntu.read_ntu_skeleton(ntu_dir / "S002C002P009R001A056.skeleton")
    assert two.xyz.shape[1] == 2 and len(np.unique(two.body_ids)) == 2  # two people (A56)


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(TRUNCATED))
def test_truncated_files_raise_naming_file_and_line(ntu_dir, name):
    with pytest.raises(DatasetFormatError, match=rf"{name}\.skeleton, line \d+: .*truncated"):
        ntu.read_ntu_skeleton(ntu_dir / f"{name}.skeleton")


@pytest.mark.realdata
def test_folder_policy_skips_truncated_with_warning_or_raises_when_strict(ntu_dir):
    with pytest.warns(UserWarning, match="skipped 2 of 10 files"):
        data = ntu.load_ntu(ntu_dir, "all")
    assert sorted(Path(s["file"]).stem for s in data.info["skipped"]) == sorted(TRUNCATED)
    assert len(data) == 8 and sorted(data.meta["source"]) == sorted(FRAMES)
    with pytest.raises(DatasetFormatError, match="truncated"):
        ntu.load_ntu(ntu_dir, "all", strict=True)  # also from the cache entry
    with pytest.raises(DatasetFormatError, match="truncated"):
        ntu.load_ntu(ntu_dir, "all", strict=True, use_cache=False)


def test_parser_structure_errors(tmp_path):
    joint = " ".join(["0.1"] * 11 + ["2"])
    body = "72057594037927936 0 1 1 1 1 0 0.1 0.2 2\n25\n" + "\n".join([joint] * 25) + "\n"
    good = "2\n1\n" + body + "0\n"
    p = tmp_path / "S001C001P001R001A001.skeleton"
    p.write_text(good)
    f = ntu.read_ntu_skeleton(p)
    assert f.xyz.shape == (2, 1, 25, 3) and f.body_ids[1, 0] == -1
    cases = {
        "x\n": "line 1: expected the frame count",
        "1\n1\n" + body.replace("\n25\n", "\n24\n"): "line 4: expected the joint count",
        good + "junk\n": "line 31: unexpected data",
        good.replace(joint, joint[:-2], 1): "line 5: expected 12 numbers",
        good.replace("0.1", "nan", 1): "line 3: expected 10 numeric body fields",
        good.replace(joint, joint.replace("0.1", "inf", 1), 1): "line 5: non-finite",
    }
    for text, message in cases.items():
        p.write_text(text)
        with pytest.raises(DatasetFormatError, match=message):
            ntu.read_ntu_skeleton(p)
    p.write_bytes(b"1\n\xff\n")
    with pytest.raises(DatasetFormatError, match="line 2: not UTF-8"):
        ntu.read_ntu_skeleton(p)


def test_select_bodies_ranks_by_motion_energy():
    rng = np.random.default_rng(0)
    xyz = np.zeros((20, 3, 25, 3))
    xyz[:, 0] = 1.0 + 0.001 * rng.standard_normal((20, 25, 3))  # still (a chair)
    xyz[:, 1] = 1.0 + 0.3 * rng.standard_normal((20, 25, 3))  # moves most
    xyz[5:15, 2] = 1.0 + 0.1 * rng.standard_normal((10, 25, 3))
    out = ntu.select_bodies(xyz, keep=2)
    assert out.shape == (20, 2, 25, 3)
    np.testing.assert_array_equal(out[:, 0], xyz[:, 1])
    np.testing.assert_array_equal(out[:, 1], xyz[:, 2])


# ---------------------------------------------------------------------- pipeline
def _rotation(axis, theta):
    """2s-AGCN's rotation_matrix, written out independently as the test's reference."""
    if np.abs(axis).sum() < 1e-6 or abs(theta) < 1e-6:
        return np.eye(3)
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * kx + (1 - math.cos(theta)) * kx @ kx  # Rodrigues


def _angle(v, e):
    if np.abs(v).sum() < 1e-6:
        return 0.0
    return math.acos(np.clip(np.dot(v / np.linalg.norm(v), e), -1, 1))


def _reference_pre_normalization(data):
    """Loop-by-loop transcription of the 2s-AGCN procedure (N, C, T, V, M) -> same."""
    s = np.transpose(data, (0, 4, 2, 3, 1)).astype(np.float64)
    for sample in s:
        for person in sample:
            if not person.any():
                continue
            if not person[0].any():
                frames = person[np.abs(person).sum(axis=(1, 2)) > 0].copy()
                person[:] = 0
                person[:len(frames)] = frames
            for t in range(len(person)):
                if not person[t].any() and not person[t:].any():
                    person[t:] = person[np.arange(t, len(person)) % t]
                    break
    for sample in s:
        origin = sample[0, :, 1:2, :].copy()
        for person in sample:
            if person.any():
                person[:] = (person - origin) * (np.abs(person).sum(-1, keepdims=True) > 0)
    for sample in s:
        if not sample.any():
            continue
        v = sample[0, 0, 1] - sample[0, 0, 0]
        rz = _rotation(np.cross(v, [0, 0, 1]), _angle(v, np.array([0, 0, 1.0])))
        sample[:] = sample @ rz.T
        v = sample[0, 0, 8] - sample[0, 0, 4]
        rx = _rotation(np.cross(v, [1, 0, 0]), _angle(v, np.array([1.0, 0, 0])))
        sample[:] = sample @ rx.T
    return np.transpose(s, (0, 4, 2, 3, 1))


@pytest.fixture(scope="module")
def camera_batch(ntu_dir):
    clips = [ntu.select_bodies(ntu.read_ntu_skeleton(p).xyz) for p in _intact(ntu_dir)]
    x, lengths = stack_clips(clips, 25, 2)
    return x, lengths


@pytest.mark.realdata
def test_pipeline_matches_the_2s_agcn_procedure(camera_batch):
    x, lengths = camera_batch
    padded = np.zeros((*x.shape[:2], 300, *x.shape[3:]), np.float32)
    padded[:, :, :x.shape[2]] = x
    gappy = padded.copy()  # null frames at the start, inside, and a body that leaves early
    gappy[0, :, :10, :, 0] = 0
    gappy[0, :, 20:25, :, 0] = 0
    gappy[1, :, :5, :, 1] = 0
    gappy[1, :, 40:, :, 1] = 0
    for batch in (padded, gappy):
        ref = _reference_pre_normalization(batch)
        loop, loop_len = ntu.ntu_pipeline(batch, lengths, num_frames=300, pad="loop")
        np.testing.assert_allclose(loop, ref, atol=2e-6)
        assert (loop_len == 300).all()
        zero, zero_len = ntu.ntu_pipeline(batch, lengths, num_frames=300, pad="zero")
        inside = (np.arange(300) < lengths[:, None])[:, None, :, None, None]
        np.testing.assert_allclose(zero, ref * inside, atol=2e-6)
        np.testing.assert_array_equal(zero_len, lengths)


@pytest.mark.realdata
def test_pipeline_geometry_and_the_gram_schmidt_difference(camera_batch):
    x, lengths = camera_batch
    agcn, _ = ntu.ntu_pipeline(x, lengths, num_frames=300)
    gs, _ = ntu.ntu_pipeline(x, lengths, num_frames=300, rotation="gram-schmidt")
    for out in (agcn, gs):
        np.testing.assert_allclose(out[:, :, 0, 1, 0], 0.0, atol=1e-6)  # spine at the origin
    spine_a = agcn[:, :, 0, 1, 0] - agcn[:, :, 0, 0, 0]
    spine_g = gs[:, :, 0, 1, 0] - gs[:, :, 0, 0, 0]
    np.testing.assert_allclose(spine_g[:, :2], 0.0, atol=1e-6)
    shoulders_a = agcn[:, :, 0, 8, 0] - agcn[:, :, 0, 4, 0]  # right minus left
    shoulders_g = gs[:, :, 0, 4, 0] - gs[:, :, 0, 8, 0]  # left minus right
    np.testing.assert_allclose(shoulders_a[:, 1:], 0.0, atol=1e-6)  # right shoulder on +x
    assert (shoulders_a[:, 0] > 0).all() and (shoulders_g[:, 0] > 0).all()
    tilt = np.degrees(np.arccos(spine_a[:, 2] / np.linalg.norm(spine_a, axis=1)))
    assert tilt.max() > 5.0  # measured 0.2 to 12.8 degrees on these files: not the same frame
    inside = np.arange(300) < lengths[:, None]
    head_up = (agcn[:, 2, :, 3, 0] - agcn[:, 2, :, 0, 0])[inside]
    assert (spine_a[:, 2] > 0).all() and (head_up > 0.3).mean() > 0.95


@pytest.mark.realdata
def test_raw_without_pipeline_is_metres_z_up(ntu_dir):
    with pytest.warns(UserWarning, match="skipped 2"):
        data = ntu.load_ntu(ntu_dir, "all", pipeline=False, num_frames=None)
    assert data.num_frames == max(FRAMES.values())
    head_up = data.x[:, 2, :, 3, 0] - data.x[:, 2, :, 0, 0]
    assert (head_up[data.frame_mask()] > 0.3).all()


# ---------------------------------------------------------------------- splits, registry, cache
@pytest.mark.realdata
def test_splits_counts_and_labels(real_data_root):
    root = real_data_root("ntu")
    expect = {("ntu60", "xsub-train"): 4, ("ntu60", "xsub-test"): 4, ("ntu60", "xview-train"): 7,
              ("ntu60", "xview-test"): 1, ("ntu120", "xset-train"): 3, ("ntu120", "xset-test"): 5,
              ("ntu120", "xsub-train"): 4, ("ntu120", "all"): 8}
    for (name, split), count in expect.items():
        with pytest.warns(UserWarning, match="skipped 2"):
            data = load_dataset(name, root=root, split=split)
        assert len(data) == count and data.x.shape[1:] == (3, 300, 25, 2)
        assert data.num_classes == (60 if name == "ntu60" else 120)
        np.testing.assert_array_equal(data.y, data.meta["action"] - 1)
        if split.startswith("xsub"):
            train = np.isin(data.meta["subject"], list(ntu.XSUB60_TRAIN))
            assert train.all() == (split == "xsub-train") and train.any() == train.all()
    assert dataset_spec("ntu60").splits == ("xsub-train", "xsub-test", "xview-train",
                                            "xview-test", "all")
    assert ntu.NTU_ACTIONS[12] == "tear up paper" and len(ntu.NTU_ACTIONS) == 120
    with pytest.raises(ConfigError):
        ntu.load_ntu(root, "xset-train", dataset="ntu60")


@pytest.mark.realdata
def test_cache_hit_and_invalidation(ntu_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SKELROBUST_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "skel"
    folder.mkdir()
    for p in _intact(ntu_dir)[:3]:
        shutil.copy(p, folder / p.name)
    first = ntu.load_ntu(folder, "all")
    assert "cache" not in first.info
    second = ntu.load_ntu(folder, "all")
    assert second.info["cache"] == "hit"
    np.testing.assert_array_equal(first.x, second.x)
    np.testing.assert_array_equal(first.meta["source"], second.meta["source"])
    entries = lambda: sorted((tmp_path / "cache").glob("*.npz"))  # noqa: E731
    assert len(entries()) == 1
    ntu.load_ntu(folder, "all", rotation="gram-schmidt")  # a parameter: a new key
    assert len(entries()) == 2
    victim = folder / _intact(ntu_dir)[0].name
    victim.write_text(victim.read_text().replace("0.", "1.", 1))  # an edited file: a new key
    edited = ntu.load_ntu(folder, "all")
    assert "cache" not in edited.info and len(entries()) == 3


@pytest.mark.parametrize("text, what", [("\u00b2\n", "the frame count"),
                                        ("1\n\u00b3\n", "the body count of frame 1")])
def test_unicode_digit_counts_are_format_errors(tmp_path, text, what):
    """``'²'.isdigit()`` is true but ``int('²')`` fails: counts must be ASCII digits."""
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=f"line {text.count(chr(10))}: expected {what}"):
        ntu.read_ntu_skeleton(path)


# ---------------------------------------------------------------------- hypothesis: mutations
@pytest.mark.realdata
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_ntu_parser_mutations_raise_only_format_errors(real_data_root, data):
    source = real_data_root("ntu") / "nturgb+d_skeletons" / "S005C003P017R001A040.skeleton"
    check_mutations(data, source, source.name, ntu.read_ntu_skeleton)


# ---------------------------------------------------------------------- safe pickles
class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_safe_pickle_refuses_code_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"split": {}, "annotations": [_Evil(str(marker))]})
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(DatasetFormatError, match=r"evil\.pkl: refused to unpickle global "
                                                 r"(posix|os|nt)\.system"):
        safe_load(path)
    assert not marker.exists()
    for module, name in (("builtins", "eval"), ("subprocess", "Popen"), ("numpy", "load")):
        blob = b"c" + module.encode() + b"\n" + name.encode() + b"\n)R."
        with pytest.raises(DatasetFormatError, match=f"refused .*{module}.{name}"):
            safe_loads(blob, "blob")


def test_safe_pickle_admits_plain_data_and_arrays(tmp_path):
    obj = {"names": ["a", "b"], "labels": [1, 2], "x": np.arange(6, dtype=np.float32).reshape(2, 3),
           "t": (1.5, None, True, b"raw"), "s": {3, 4}, "i": np.int64(7), "o": np.array([1, "x"],
                                                                                         object)}
    for protocol in (2, 4, 5):
        back = safe_loads(pickle.dumps(obj, protocol=protocol))
        np.testing.assert_array_equal(back["x"], obj["x"])
        assert back["t"] == obj["t"] and back["s"] == obj["s"] and back["i"] == 7
    with pytest.raises(DatasetFormatError, match="not a readable pickle"):
        safe_loads(pickle.dumps(obj)[:-5], "cut")


# ---------------------------------------------------------------------- preprocessed forms
def _fake_ntu(n: int, t: int = 30, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 3, t, 25, 2)).astype(np.float32)
    x[:, :, t - 5:] = 0
    x[::2, :, :, :, 1] = 0
    return x


def test_stgcn_reader_and_auto_detection(tmp_path):
    names = ["S001C001P001R001A001.skeleton", "S001C002P002R001A010.skeleton"]
    for bench, part in (("xsub", "train"), ("xsub", "val")):
        (tmp_path / bench).mkdir(exist_ok=True)
        np.save(tmp_path / bench / f"{part}_data_joint.npy", _fake_ntu(2))
        with open(tmp_path / bench / f"{part}_label.pkl", "wb") as fh:
            pickle.dump((names, [0, 9]), fh)
    data = ntu.load_ntu(tmp_path, "xsub-test")
    assert data.info["source"] == "stgcn" and data.x.shape == (2, 3, 300, 25, 2)
    np.testing.assert_array_equal(data.lengths, [25, 25])
    np.testing.assert_array_equal(data.meta["subject"], [1, 2])
    assert data.class_names[9] == "clapping"
    direct = read_stgcn(tmp_path / "xsub" / "train_data_joint.npy",
                        tmp_path / "xsub" / "train_label.pkl")
    np.testing.assert_array_equal(direct.x, np.load(tmp_path / "xsub" / "train_data_joint.npy"))
    with open(tmp_path / "xsub" / "train_label.pkl", "wb") as fh:
        pickle.dump((names, [0]), fh)
    with pytest.raises(DatasetFormatError, match="do not match"):
        ntu.load_ntu(tmp_path, "xsub-train")
    with pytest.raises(ConfigError, match="raw"):
        ntu.load_ntu(tmp_path, "all")


def test_ctrgcn_npz_reader(tmp_path):
    x = _fake_ntu(3, t=40)
    flat = x.transpose(0, 2, 4, 3, 1).reshape(3, 40, 150)  # (N, T, M, V, C) as CTR-GCN
    onehot = np.eye(60)[[4, 0, 59]]
    np.savez(tmp_path / "NTU60_CS.npz", x_train=flat, y_train=onehot, x_test=flat[:1],
             y_test=onehot[:1])
    data = ntu.load_ntu(tmp_path, "xsub-train", num_frames=None)
    assert data.info["source"] == "ctrgcn"
    np.testing.assert_allclose(data.x, x[:, :, :35])
    np.testing.assert_array_equal(data.y, [4, 0, 59])
    assert len(read_ctrgcn_npz(tmp_path / "NTU60_CS.npz", "test")) == 1
    np.savez(tmp_path / "bad.npz", x_train=flat, y_train=onehot * 2)
    with pytest.raises(DatasetFormatError, match="not one-hot"):
        read_ctrgcn_npz(tmp_path / "bad.npz")
    with pytest.raises(DatasetFormatError, match="missing array"):
        read_ctrgcn_npz(tmp_path / "bad.npz", "test")


def test_pyskl_reader_raw_coordinates_and_pipeline(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((25, 3)) * 0.3 + [0, 1, 3]
    anns = []
    for k, name in enumerate(["S001C001P001R001A001", "S001C001P003R001A002",
                              "S002C003P002R002A003"]):
        t = 20 + k
        kp = (base + 0.01 * rng.standard_normal((1, t, 25, 3))).astype(np.float32)
        anns.append({"frame_dir": name, "label": k, "keypoint": kp, "total_frames": t})
    obj = {"split": {"xsub_train": [a["frame_dir"] for a in anns[:2]],
                     "xsub_val": [anns[2]["frame_dir"]]}, "annotations": anns}
    with open(tmp_path / "ntu60_3danno.pkl", "wb") as fh:
        pickle.dump(obj, fh)
    raw = read_pyskl(tmp_path / "ntu60_3danno.pkl", "xsub_train")
    np.testing.assert_allclose(raw.x[1, :, :21, :, 0], anns[1]["keypoint"][0].transpose(2, 0, 1))
    np.testing.assert_array_equal(raw.lengths, [20, 21])
    data = ntu.load_ntu(tmp_path, "xsub-train")
    assert data.info["source"] == "pyskl" and data.x.shape == (2, 3, 300, 25, 2)
    np.testing.assert_allclose(data.x[:, :, 0, 1, 0], 0.0, atol=1e-6)  # pipeline applied
    assert len(ntu.load_ntu(tmp_path, "xsub-test")) == 1
    obj["annotations"][0]["keypoint"] = np.zeros((1, 5, 7, 3))
    with open(tmp_path / "ntu60_3danno.pkl", "wb") as fh:
        pickle.dump(obj, fh)
    with pytest.raises(DatasetFormatError, match=r"annotation 0 .* malformed"):
        read_pyskl(tmp_path / "ntu60_3danno.pkl", "xsub_train")
