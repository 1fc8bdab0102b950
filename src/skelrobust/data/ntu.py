"""NTU RGB+D 60 and 120: the raw ``.skeleton`` parser, the 2s-AGCN pipeline, splits, readers.

Datasets: Shahroudy et al., "NTU RGB+D: A Large Scale Dataset for 3D Human
Activity Analysis", CVPR 2016 (60 actions, setups 1-17), and Liu et al.,
"NTU RGB+D 120: A Large-Scale Benchmark for 3D Human Activity
Understanding", TPAMI 2019 (120 actions, setups 1-32). Kinect v2, 25 joints
(layout ``ntu25``), up to several bodies per frame, metres, camera frame.

``load_dataset("ntu60", split="xsub-train")`` reads the raw files and applies
:func:`ntu_pipeline`, the ``pre_normalization`` of 2s-AGCN (Shi et al. CVPR
2019) that third-party checkpoints (2s-AGCN, MS-G3D, Shift-GCN...) were
trained on. The loader also reads the preprocessed forms other code bases
ship: the ST-GCN/2s-AGCN ``.npy`` + label pickle, the CTR-GCN ``NTU60_CS.npz``
and the pyskl annotation pickle (``source=``; detected by default). Pickles
go through :mod:`~skelrobust.data.safe_pickle`.

**2s-AGCN rotation versus** :func:`~skelrobust.data.transforms.view_normalize`:
2s-AGCN rotates hip→spine onto +z by the minimal rotation, then the
*left→right* shoulder vector (joint 9 − joint 5) onto +x by a second minimal
rotation about a general axis, which tilts the spine off +z again by up to
~10°; the right shoulder ends at +x. ``view_normalize`` (Gram-Schmidt) keeps
the spine exactly on +z and puts the *left* shoulder at +x, i.e. it differs by
a half-turn about z plus that tilt. Checkpoints trained on 2s-AGCN data need
``rotation="agcn"`` (the default); ``rotation="gram-schmidt"`` gives the
library-wide body frame.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.kinect import (
    ParseLog,
    camera_to_zup,
    find_folder,
    finish_split,
    load_cached,
    parse_table,
    read_text,
    stack_clips,
)
from skelrobust.data.mocap import ascii_digits
from skelrobust.data.preprocessed import read_ctrgcn_npz, read_pyskl, read_stgcn
from skelrobust.data.registry import DatasetSpec, register_dataset
from skelrobust.data.transforms import body_frame_rotation, center
from skelrobust.errors import ConfigError, DatasetFormatError, DatasetNotFoundError, LayoutError
from skelrobust.progress import progress_bar
from skelrobust.skeleton import get_skeleton

__all__ = [
    "NTU_ACTIONS", "NTUSkeletonFile", "agcn_rotations", "load_ntu", "ntu_pipeline",
    "parse_ntu_name", "read_ntu_skeleton", "select_bodies",
]

# Official action names, A1-A120 (https://github.com/shahroudy/NTURGB-D).
NTU_ACTIONS: tuple[str, ...] = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup",
    "throw", "sitting down", "standing up (from sitting position)", "clapping", "reading",
    "writing", "tear up paper", "wear jacket", "take off jacket", "wear a shoe",
    "take off a shoe", "wear on glasses", "take off glasses", "put on a hat/cap",
    "take off a hat/cap", "cheer up", "hand waving", "kicking something",
    "put something inside pocket / take out something from pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone",
    "playing with phone/tablet", "typing on a keyboard", "pointing to something with finger",
    "taking a selfie", "check time (from watch)", "rub two hands together", "nod head/bow",
    "shake head", "wipe face", "salute", "put the palms together",
    "cross hands in front (say stop)",
    "sneeze/cough", "staggering", "falling", "touch head (headache)",
    "touch chest (stomachache/heart pain)", "touch back (backache)", "touch neck (neckache)",
    "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person", "kicking other person", "pushing other person",
    "pat on back of other person", "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball",
    "tennis bat swing", "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up",
    "thumb down", "make ok sign", "make victory sign", "staple book", "counting money",
    "cutting nails", "cutting paper (using scissors)", "snapping fingers", "open bottle",
    "sniff (smell)", "squat down", "toss a coin", "fold paper", "ball up paper",
    "play magic cube", "apply cream on face", "apply cream on hand back", "put on bag",
    "take off bag", "put something into a bag", "take something out of a bag", "open a box",
    "move heavy objects", "shake fist", "throw up cap/hat", "hands up (both hands)",
    "cross arms", "arm circles", "arm swings", "running on the spot", "butt kicks (kick backward)",
    "cross toe touch", "side kick", "yawn", "stretch oneself", "blow nose",
    "hit other person with something", "wield knife towards other person",
    "knock over other person (hit with body)", "grab other person's stuff",
    "shoot at other person with a gun", "step on foot", "high-five", "cheers and drink",
    "carry something with other person", "take a photo of other person", "follow other person",
    "whisper in other person's ear", "exchange things with other person",
    "support somebody with one's hand", "finger-guessing game (playing rock-paper-scissors)",
)
# Cross-subject training performers (Shahroudy et al. 2016, Sec. 3.2; Liu et al. 2019).
XSUB60_TRAIN = frozenset((1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38))
XSUB120_TRAIN = XSUB60_TRAIN | frozenset((
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
    89, 91, 92, 93, 94, 95, 97, 98, 100, 103))
XVIEW_TRAIN_CAMERAS = frozenset((2, 3))  # camera 1 is the test view; cross-setup: even setups train

_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_FIELDS = ("setup", "camera", "subject", "replication", "action")
_SPINE, _HIP, _LSHOULDER, _RSHOULDER = 1, 0, 4, 8


def parse_ntu_name(name: str) -> dict[str, int] | None:
    """``S001C002P003R002A013`` -> setup, camera, subject, replication, action (or None)."""
    m = _NAME.search(name)
    return None if m is None else dict(zip(_FIELDS, map(int, m.groups())))


# ---------------------------------------------------------------------- raw parser
@dataclass
class NTUSkeletonFile:
    """One ``.skeleton`` file: ``xyz (T, B, 25, 3)`` (metres, camera frame; body ``b``
    of a frame in slot ``b``, zeros where a frame has fewer bodies), ``body_ids (T, B)``
    (-1 where absent) and ``tracking (T, B, 25)`` joint tracking states."""

    path: Path
    xyz: np.ndarray
    body_ids: np.ndarray
    tracking: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.xyz.shape[0])


def read_ntu_skeleton(path: str | Path) -> NTUSkeletonFile:
    """Parse a raw NTU RGB+D ``.skeleton`` file (every frame and body).

    Layout: frame count; per frame a body count; per body one line of 10 body
    fields (body id, clipped edges, hand states, restricted, lean x/y,
    tracking state), the joint count (25), then 25 lines of 12 numbers (x y z,
    depth x y, colour x y, orientation w x y z, tracking state). A truncated or
    corrupt file raises :class:`DatasetFormatError` naming the file and line.
    """
    path = Path(path)
    lines = read_text(path).splitlines()
    n, pos = len(lines), 0

    def next_tokens(what: str) -> list[str]:
        nonlocal pos
        if pos >= n:
            raise DatasetFormatError(f"{path}, line {pos + 1}: file ends where {what} was expected "
                                     "(truncated file)")
        pos += 1
        return lines[pos - 1].split()

    def count(what: str, lo: int, hi: int) -> int:
        tokens = next_tokens(what)
        if len(tokens) != 1 or not ascii_digits(tokens[0]) or not lo <= int(tokens[0]) <= hi:
            raise DatasetFormatError(f"{path}, line {pos}: expected {what} (an integer in "
                                     f"[{lo}, {hi}]), got {lines[pos - 1].strip()[:40]!r}")
        return int(tokens[0])

    frames = count("the frame count", 0, 10**6)
    starts: list[int] = []
    slots: list[tuple[int, int, int]] = []  # (frame, slot, body id)
    for t in range(frames):
        for b in range(count(f"the body count of frame {t + 1}", 0, 64)):
            fields = next_tokens(f"the body line of body {b + 1} in frame {t + 1}")
            try:
                body_id = int(fields[0])
                if len(fields) != 10 or not np.isfinite([float(v) for v in fields]).all():
                    raise ValueError
            except (ValueError, IndexError, OverflowError):
                raise DatasetFormatError(f"{path}, line {pos}: expected 10 numeric body fields "
                                         f"(frame {t + 1}, body {b + 1})") from None
            count(f"the joint count of frame {t + 1}, body {b + 1}", 25, 25)
            if pos + 25 > n:
                cut = n > pos and len(lines[-1].split()) < 12
                raise DatasetFormatError(
                    f"{path}, line {n}: file ends inside frame {t + 1}, body {b + 1} after "
                    f"{n - pos} of 25 joint lines{' (the last one cut short)' if cut else ''}; "
                    "truncated file")
            starts.append(pos)
            slots.append((t, b, body_id))
            pos += 25
    extra = next((i for i in range(pos, n) if lines[i].strip()), None)
    if extra is not None:
        raise DatasetFormatError(f"{path}, line {extra + 1}: unexpected data after the "
                                 f"{frames} declared frames")
    num_slots = 1 + max((b for _, b, _ in slots), default=-1)
    xyz = np.zeros((frames, num_slots, 25, 3))
    ids = np.full((frames, num_slots), -1, dtype=np.int64)
    tracking = np.zeros((frames, num_slots, 25), dtype=np.int8)
    if slots:
        index = (np.asarray(starts)[:, None] + np.arange(25)).ravel()
        values = parse_table([lines[i] for i in index], path, 12,
                             line_numbers=(index + 1).tolist()).reshape(len(slots), 25, 12)
        state = values[..., 11]
        if not np.isin(state, (0.0, 1.0, 2.0)).all():
            k = int(np.flatnonzero(~np.isin(state.ravel(), (0.0, 1.0, 2.0)))[0])
            raise DatasetFormatError(f"{path}, line {index[k] + 1}: joint tracking state must be "
                                     f"0, 1 or 2, got {state.ravel()[k]:g}")
        t_idx, b_idx, body = (np.asarray(c) for c in zip(*slots))
        xyz[t_idx, b_idx] = values[..., :3]
        ids[t_idx, b_idx] = body
        tracking[t_idx, b_idx] = values[..., 11].astype(np.int8)
    return NTUSkeletonFile(path=path, xyz=xyz, body_ids=ids, tracking=tracking)


def select_bodies(xyz: np.ndarray, keep: int = 2, max_slots: int = 4) -> np.ndarray:
    """The ``keep`` most active bodies of ``(T, B, V, 3)`` -> ``(T, keep, V, 3)``.

    As 2s-AGCN's ``read_xyz``: bodies are the per-frame slots (the ``b``-th
    body listed in a frame), at most ``max_slots``; activity is the summed
    standard deviation of x, y and z over the slot's non-zero frames and all
    joints. Ties keep the lower slot first.
    """
    t, b = xyz.shape[:2]
    slots = np.zeros((t, max(max_slots, keep), *xyz.shape[2:]))
    slots[:, :min(b, max_slots)] = xyz[:, :max_slots]
    valid = slots.sum(axis=(2, 3)) != 0  # (T, S)
    energy = np.zeros(slots.shape[1])
    for s in np.flatnonzero(valid.any(axis=0)):
        pts = slots[valid[:, s], s]  # (t_s, V, 3)
        energy[s] = pts[..., 0].std() + pts[..., 1].std() + pts[..., 2].std()
    order = np.argsort(-energy, kind="stable")[:keep]
    return slots[:, order]


# ---------------------------------------------------------------------- pipeline
def _rodrigues(axis: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` rotations by ``theta`` about ``axis`` (Euler-Rodrigues, as 2s-AGCN)."""
    ident = (np.abs(axis).sum(-1) < 1e-6) | (np.abs(theta) < 1e-6)
    norm = np.linalg.norm(axis, axis=-1, keepdims=True)
    u = axis / np.where(norm > 0, norm, 1.0)
    a = np.cos(theta / 2.0)
    b, c, d = (-u * np.sin(theta / 2.0)[:, None]).T
    rot = np.stack([
        a * a + b * b - c * c - d * d, 2 * (b * c + a * d), 2 * (b * d - a * c),
        2 * (b * c - a * d), a * a + c * c - b * b - d * d, 2 * (c * d + a * b),
        2 * (b * d + a * c), 2 * (c * d - a * b), a * a + d * d - b * b - c * c,
    ], axis=-1).reshape(-1, 3, 3)
    rot[ident] = np.eye(3)
    return rot


def _align(v: np.ndarray, target: Sequence[float]) -> np.ndarray:
    """The minimal rotations taking each ``v (N, 3)`` onto ``target`` (2s-AGCN conventions)."""
    e = np.asarray(target, dtype=np.float64)
    norm = np.linalg.norm(v, axis=-1)
    cos = (v @ e) / np.where(norm > 0, norm, 1.0)
    theta = np.where(np.abs(v).sum(-1) < 1e-6, 0.0, np.arccos(np.clip(cos, -1.0, 1.0)))
    return _rodrigues(np.cross(v, e), theta)


def agcn_rotations(x: np.ndarray, zaxis: tuple[int, int] = (_HIP, _SPINE),
                   xaxis: tuple[int, int] = (_RSHOULDER, _LSHOULDER)) -> np.ndarray:
    """2s-AGCN's sequential rotations ``(N, 3, 3)`` from body 0, frame 0 of centred ``x``.

    First ``x[zaxis[1]] - x[zaxis[0]]`` (hip→spine) onto +z, then, on the
    rotated skeleton, ``x[xaxis[0]] - x[xaxis[1]]`` (right minus left
    shoulder) onto +x, each by the minimal rotation.
    """
    pose = x[:, :, 0, :, 0].transpose(0, 2, 1).astype(np.float64)  # (N, V, 3)
    rz = _align(pose[:, zaxis[1]] - pose[:, zaxis[0]], (0.0, 0.0, 1.0))
    pose = np.einsum("nij,nvj->nvi", rz, pose)
    rx = _align(pose[:, xaxis[0]] - pose[:, xaxis[1]], (1.0, 0.0, 0.0))
    return rx @ rz


def _fill_null_frames(s: np.ndarray, lengths: np.ndarray, t_out: int, loop: bool) -> np.ndarray:
    """2s-AGCN's null-frame padding on ``s (N, M, T, V, C)``.

    A body whose first frame is empty has its non-empty frames moved to the
    front; then the frames after its last non-empty one are filled by looping
    its frames ``[0, L)`` — up to ``t_out`` (``loop``, as 2s-AGCN) or up to the
    clip's own length (frames after it stay zero).
    """
    n, _, t = s.shape[:3]
    present = np.abs(s).sum(axis=(3, 4)) > 0  # (N, M, T)
    ar = np.broadcast_to(np.arange(t), present.shape)
    compact = ~present[:, :, 0] & present.any(axis=2)
    order = np.where(compact[..., None], np.argsort(~present, axis=2, kind="stable"), ar)
    s = np.take_along_axis(s, order[..., None, None], axis=2)
    present = np.take_along_axis(present, order, axis=2)
    last = np.where(present.any(axis=2), t - np.argmax(present[:, :, ::-1], axis=2), 0)  # L
    t_idx = np.arange(t_out)[None, None, :]
    src = np.where(t_idx < last[..., None], t_idx, t_idx % np.maximum(last, 1)[..., None])
    end = np.full(n, t_out) if loop else np.minimum(lengths, t_out)
    keep = (t_idx < end[:, None, None]) & (last[..., None] > 0)
    src = np.minimum(src, t - 1)
    out = np.take_along_axis(s, src[..., None, None], axis=2)
    return out * keep[..., None, None]


def ntu_pipeline(x: np.ndarray, lengths: np.ndarray | None = None, *,
                 num_frames: int | None = 300, pad: str = "loop",
                 rotation: str = "agcn", chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The standard NTU preprocessing (2s-AGCN ``pre_normalization``) of camera-frame motion.

    ``x`` is ``(N, 3, T, 25, M)`` in the Kinect camera frame with bodies
    already ranked by activity (:func:`select_bodies`). Steps: null frames
    filled by repetition (:func:`_fill_null_frames`); every body centred on
    body 0's spine joint (index 1) per frame; rotated by :func:`agcn_rotations`
    (``rotation="agcn"``) or by the Gram-Schmidt body frame of
    :func:`~skelrobust.data.transforms.body_frame_rotation`
    (``"gram-schmidt"``); fitted to ``num_frames`` (``None``: keep ``T``).
    ``pad="loop"`` (default) loops every body to ``num_frames`` exactly as
    2s-AGCN's arrays, which is what third-party NTU checkpoints were trained
    on (zero padding costs the Shift-GCN NTU-60 checkpoint 3 of the 8 shared
    files); ``pad="zero"`` fills null frames only within each clip and
    zero-pads after it (the convention of the other loaders). Returns the motion (float32)
    and the new lengths. (Presence is "any coordinate non-zero" where 2s-AGCN
    tests a zero coordinate *sum*, and centring masks whole absent body-frames
    where it masks joints; both agree on real data.)
    """
    if pad not in ("zero", "loop") or rotation not in ("agcn", "gram-schmidt"):
        raise ConfigError(f"ntu_pipeline: pad must be 'zero' or 'loop' and rotation 'agcn' or "
                          f"'gram-schmidt', got {pad!r}, {rotation!r}")
    if x.ndim != 5 or x.shape[1] != 3 or x.shape[3] != 25:
        raise LayoutError(f"ntu_pipeline: expected (N, 3, T, 25, M) motion, got {x.shape}")
    n, t = x.shape[0], x.shape[2]
    lengths = np.full(n, t, np.int64) if lengths is None else np.asarray(lengths, np.int64)
    t_out = t if num_frames is None else int(num_frames)
    out = np.zeros((n, 3, t_out, 25, x.shape[4]), dtype=np.float32)
    for lo in range(0, n, chunk):  # bounded memory on the full datasets
        s = x[lo:lo + chunk].astype(np.float64).transpose(0, 4, 2, 3, 1)  # (n, M, T, V, C)
        s = _fill_null_frames(s, lengths[lo:lo + chunk], t_out, pad == "loop")
        part = center(s.transpose(0, 4, 2, 3, 1), _SPINE, "frame").astype(np.float64)
        rot = (agcn_rotations(part) if rotation == "agcn"
               else body_frame_rotation(part, get_skeleton("ntu25")))
        out[lo:lo + chunk] = np.einsum("nij,njtvm->nitvm", rot, part)
    new_len = np.full(n, t_out, np.int64) if pad == "loop" else np.minimum(lengths, t_out)
    return out, np.maximum(new_len, 1)


# ---------------------------------------------------------------------- loaders
_BENCHMARKS = {  # benchmark -> (ST-GCN folder, CTR-GCN file, pyskl split prefix)
    "ntu60": {"xsub": ("xsub", "NTU60_CS.npz"), "xview": ("xview", "NTU60_CV.npz")},
    "ntu120": {"xsub": ("xsub", "NTU120_CSub.npz"), "xset": ("xset", "NTU120_CSet.npz")},
}
_RAW_FOLDERS = ("nturgb+d_skeletons", "nturgbd_skeletons")


def _is_train(meta: dict[str, np.ndarray], dataset: str, benchmark: str) -> np.ndarray:
    if benchmark == "xsub":
        train = XSUB60_TRAIN if dataset == "ntu60" else XSUB120_TRAIN
        return np.isin(meta["subject"], list(train))
    if benchmark == "xview":
        return np.isin(meta["camera"], list(XVIEW_TRAIN_CAMERAS))
    return meta["setup"] % 2 == 0  # xset


def _detect(root: Path) -> str:
    for folder in (root, *(root / f for f in _RAW_FOLDERS)):
        if folder.is_dir() and next(folder.glob("*.skeleton"), None) is not None:
            return "raw"
    if next(root.glob("*/*_data*.npy"), None) is not None:
        return "stgcn"
    if next(root.glob("NTU*.npz"), None) is not None:
        return "ctrgcn"
    if next(root.glob("*.pkl"), None) is not None:
        return "pyskl"
    raise DatasetNotFoundError(f"no NTU RGB+D data in {str(root)!r}: expected .skeleton files, "
                               "<benchmark>/<part>_data_joint.npy, NTU*.npz or a pyskl .pkl")


def _parse_raw(dataset: str, files: Sequence[Path], log: ParseLog, max_bodies: int,
               pipeline: bool, num_frames: int | None, pad: str, rotation: str) -> SkeletonDataset:
    clips, metas = [], []
    for f in progress_bar(files, desc=f"parsing {dataset}", unit="file"):
        parsed = log.read(f, read_ntu_skeleton)
        if parsed is None:
            continue
        tracked = int((parsed.body_ids >= 0).any(axis=1).sum()) if parsed.num_frames else 0
        if not log.keep(f, tracked):
            continue
        clips.append(select_bodies(parsed.xyz, keep=max_bodies).astype(np.float32))
        metas.append({**parse_ntu_name(f.name), "source": f.stem,  # type: ignore[dict-item]
                      "bodies": parsed.xyz.shape[1]})
    x, lengths = stack_clips(clips, 25, max_bodies)
    if pipeline:
        x, lengths = ntu_pipeline(x, lengths, num_frames=num_frames, pad=pad, rotation=rotation)
    else:
        x = np.moveaxis(camera_to_zup(np.moveaxis(x, 1, -1)), -1, 1)
    meta = {k: np.asarray([m[k] for m in metas]) for k in (*_FIELDS, "source", "bodies")}
    meta["view"] = meta["camera"]
    y = meta["action"].astype(np.int64) - 1 if metas else np.zeros(0, np.int64)
    frame = ("2s-AGCN pre_normalization" if rotation == "agcn" else "Gram-Schmidt body frame") \
        if pipeline else "camera, z-up (x, y, z) -> (-x, z, y)"
    return SkeletonDataset(x=x, y=y, class_names=list(NTU_ACTIONS[:60 if dataset == "ntu60"
                                                                   else 120]),
                           skeleton="ntu25", lengths=np.maximum(lengths, 1), meta=meta,
                           name=dataset, info={**log.info(), "source": "raw", "frame": frame,
                                               "units": "m"})


def load_ntu(root: str | Path, split: str, *, dataset: str = "ntu60", source: str = "auto",
             pipeline: bool = True, num_frames: int | None = 300, pad: str = "loop",
             rotation: str = "agcn", max_bodies: int = 2, min_frames: int = 2,
             strict: bool = False, use_cache: bool = True, exclude: Sequence[str] = (),
             annotation_file: str | None = None) -> SkeletonDataset:
    """Load an NTU RGB+D split: ``<benchmark>-train`` / ``<benchmark>-test`` or ``all`` (raw).

    Benchmarks: ``xsub`` (performers of :data:`XSUB60_TRAIN` /
    :data:`XSUB120_TRAIN` train) and ``xview`` (cameras 2, 3 train; NTU60) or
    ``xset`` (even setups train; NTU120). ``source`` is ``raw``, ``stgcn``,
    ``ctrgcn``, ``pyskl`` or ``auto`` (detected from ``root``). Raw files go
    through :func:`ntu_pipeline` when ``pipeline`` (else: camera frame turned
    z-up); files that do not parse are skipped with a warning (listed in
    ``info["skipped"]``) unless ``strict``; ``exclude`` lists sample names to
    ignore (e.g. the official samples with missing skeletons).
    """
    root = Path(root)
    if dataset not in _BENCHMARKS:
        raise ConfigError(f"load_ntu: dataset must be 'ntu60' or 'ntu120', got {dataset!r}")
    benchmark, _, part = split.partition("-")
    if split != "all" and (benchmark not in _BENCHMARKS[dataset] or part not in ("train", "test")):
        raise ConfigError(f"{dataset}: unknown split {split!r}")
    source = _detect(root) if source == "auto" else source
    classes = NTU_ACTIONS[:60 if dataset == "ntu60" else 120]
    if source == "raw":
        folder = find_folder(root, "*.skeleton", _RAW_FOLDERS)
        skip = {Path(e).stem for e in exclude}
        files = sorted(f for f in folder.glob("*.skeleton") if f.stem not in skip and (
            dataset == "ntu120" or (parse_ntu_name(f.name) or {"setup": 0})["setup"] <= 17))
        log = ParseLog(dataset, strict=strict, min_frames=min_frames)
        params = {"max_bodies": max_bodies, "pipeline": pipeline, "min_frames": min_frames,
                  "num_frames": num_frames if pipeline else None, "pad": pad,
                  "rotation": rotation}
        data = load_cached(f"{dataset}-raw", files, folder, params,
                           lambda: _parse_raw(dataset, files, log, max_bodies, pipeline,
                                              num_frames, pad, rotation), use_cache, strict)
        mask = np.ones(len(data), bool) if split == "all" else (
            _is_train(data.meta, dataset, benchmark) == (part == "train"))
        return finish_split(data, mask, split, num_frames)
    if split == "all":
        raise ConfigError(f"{dataset}: split 'all' needs the raw .skeleton files")
    folder_name, npz_name = _BENCHMARKS[dataset][benchmark]
    if source == "stgcn":
        stem = "train" if part == "train" else "val"
        data_path = next((root / folder_name / f"{stem}_data{s}.npy" for s in ("_joint", "")
                          if (root / folder_name / f"{stem}_data{s}.npy").exists()),
                         root / folder_name / f"{stem}_data_joint.npy")
        data = read_stgcn(data_path, root / folder_name / f"{stem}_label.pkl",
                          class_names=classes, name=dataset)
    elif source == "ctrgcn":
        data = read_ctrgcn_npz(root / npz_name, part, class_names=classes, name=dataset)
    elif source == "pyskl":
        ann = root / annotation_file if annotation_file else next(
            iter(sorted(root.glob(f"{dataset}_*.pkl")) or sorted(root.glob("*.pkl"))), None)
        if ann is None or not ann.exists():
            raise DatasetNotFoundError(f"{dataset}: no pyskl annotation pickle in {str(root)!r}")
        data = read_pyskl(ann, f"{benchmark}_{'train' if part == 'train' else 'val'}",
                          class_names=classes, max_bodies=max_bodies, name=dataset)
        if pipeline and data.skeleton.name == "ntu25":
            x, lengths = ntu_pipeline(data.x, data.lengths, num_frames=num_frames, pad=pad,
                                      rotation=rotation)
            data = SkeletonDataset(x=x, y=data.y, class_names=data.class_names,
                                   skeleton="ntu25", lengths=lengths, meta=data.meta,
                                   name=dataset, info=data.info)
    else:
        raise ConfigError(f"{dataset}: source must be auto, raw, stgcn, ctrgcn or pyskl, "
                          f"got {source!r}")
    parsed = [parse_ntu_name(str(s)) for s in data.meta.get("source", [])]
    if parsed and all(p is not None for p in parsed):
        for key in _FIELDS:
            data.meta[key] = np.asarray([p[key] for p in parsed], np.int64)  # type: ignore[index]
    return finish_split(data, np.ones(len(data), bool), split, num_frames)


def _register(dataset: str, benchmarks: tuple[str, str], description: str) -> None:
    splits = (*(f"{b}-{p}" for b in benchmarks for p in ("train", "test")), "all")

    def loader(root: Any, split: str, **kwargs: Any) -> SkeletonDataset:
        return load_ntu(root, split, dataset=dataset, **kwargs)

    register_dataset(DatasetSpec(
        name=dataset, layout="ntu25", num_classes=60 if dataset == "ntu60" else 120,
        splits=splits, description=description, loader=loader, default_folder="ntu",
        protocol=" / ".join(benchmarks) + " (official subject/camera/setup lists)"))


_register("ntu60", ("xsub", "xview"),
          "NTU RGB+D 60 (Shahroudy et al. CVPR 2016): raw .skeleton files or ST-GCN/CTR-GCN/pyskl "
          "preprocessed forms, 2s-AGCN pipeline")
_register("ntu120", ("xsub", "xset"),
          "NTU RGB+D 120 (Liu et al. TPAMI 2019): raw .skeleton files or ST-GCN/CTR-GCN/pyskl "
          "preprocessed forms, 2s-AGCN pipeline")
