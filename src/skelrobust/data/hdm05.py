"""HDM05 (Müller et al. 2007, "Documentation Mocap Database HDM05") from its ASF/AMC files.

Layout of the dataset folder (``root``)::

    <class>/HDM_<actor>_<class>_<NNN>_<fps>.amc    (any case of the extension)
    asf/HDM_<actor>.asf

Each clip goes through Acclaim forward kinematics (:mod:`skelrobust.data.acclaim`,
checked against the HDM05 toolbox to 0.001 mm), giving the 31 joints of the
``hdm05_31`` layout (root + end point of every ASF bone), converted to metres
(ASF units × 0.0254 / 0.45) and to z-up (``(x, y, z) → (x, −z, y)``).

* **Labels**: the motion class in the file name; class names are the sorted
  classes of *all* files under ``root`` (so both splits share label ids).
* **Split** (cross-subject): actors bd, bk, dg → ``train``; mm, tr → ``test``;
  ``all`` holds both.
* **Frame rate**: 120 Hz recordings go to ``fps`` (default 30) by **decimation**
  (every 4th frame, each output frame a recorded pose) when the ratio is an
  integer, else by linear interpolation (:func:`change_rate`).
* **Windows** (optional): ``window=60, stride=20`` cuts each clip into fixed
  windows as the SMART (Wang et al. CVPR 2021) / BASAR (Diao et al. CVPR 2021)
  research code does; a clip shorter than the window gives one zero-padded window.
* **Padding**: clips are zero-padded to the longest one (``lengths`` holds the
  valid frames), or fitted to ``num_frames`` with ``temporal`` = ``zero`` /
  ``repeat`` / ``edge`` (:func:`~skelrobust.data.transforms.crop_or_pad`) or
  ``resample`` (:func:`~skelrobust.data.transforms.resample`).
* ``layout="hdm05_25"`` converts to the 25-joint SMART/BASAR layout
  (:data:`HDM05_31_TO_25`, :func:`to_hdm05_25`).

Parsed datasets are cached (:func:`~skelrobust.data.cache.cached_load`), keyed by
the bytes of every AMC/ASF file used and the parameters.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skelrobust.data.acclaim import AcclaimSkeleton, forward_kinematics, load_amc, load_asf
from skelrobust.data.cache import cached_load
from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.registry import DatasetSpec, register_dataset
from skelrobust.data.transforms import crop_or_pad, remap_joints, resample
from skelrobust.errors import ConfigError, DatasetFormatError, DatasetNotFoundError
from skelrobust.progress import progress_bar
from skelrobust.skeleton import get_skeleton

__all__ = [
    "HDM05_31_TO_25",
    "SPLIT_ACTORS",
    "Y_UP_TO_Z_UP",
    "HDM05File",
    "change_rate",
    "clip_positions",
    "find_hdm05_files",
    "load_hdm05",
    "pack_clips",
    "to_hdm05_25",
    "y_up_to_z_up",
]

#: Rotation (+90° about x) taking y-up coordinates to z-up: ``(x, y, z) → (x, −z, y)``.
#: A subject facing +z with its left side on +x (the Acclaim rest pose) ends up
#: facing −y with its left on +x, the body frame of ``transforms.view_normalize``.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


#: Cross-subject protocol: actors of each split.
SPLIT_ACTORS: dict[str, tuple[str, ...]] = {
    "train": ("bd", "bk", "dg"),
    "test": ("mm", "tr"),
    "all": ("bd", "bk", "dg", "mm", "tr"),
}

#: ``hdm05_25`` joint → ``hdm05_31`` joint (the end point of that ASF bone).
#:
#: The SMART/BASAR 25 joints are the joints of BASAR's ``hdm05_rest.bvh`` (CMU
#: BVH names, ``Hips`` dropped), i.e. of the CMU ``rest.bvh`` without ``Head``,
#: ``LeftShoulder``, ``RightShoulder``, ``LeftFingerBase`` and
#: ``RightFingerBase``. A BVH joint sits at the *start* of the ASF bone it is
#: named after (``LeftUpLeg`` = lfemur starts where lhipjoint ends), so each is
#: the end point of the parent bone: ``LHipJoint``/``RHipJoint``/``LowerBack``
#: → root; ``LeftUpLeg`` → lhipjoint; ``LeftLeg`` → lfemur (knee); ``LeftFoot``
#: → ltibia (ankle); ``LeftToeBase`` → lfoot; ``Spine`` → lowerback; ``Spine1``
#: → upperback; ``Neck`` → thorax; ``Neck1`` → lowerneck; ``LeftArm`` →
#: lclavicle (shoulder); ``LeftForeArm`` → lhumerus (elbow); ``LeftHand`` →
#: lradius (wrist); ``LeftHandIndex1`` → lhand (finger base); ``LThumb`` →
#: lwrist (thumb base). Dropped from the 31: upperneck and head (head top),
#: l/rfingers and l/rthumb tips, l/rtoes tips. Verified in the tests: the
#: retargeted BASAR BVH clip mapped this way equals its joints picked by the
#: research code's names, and the SMART arrays' bone lengths equal those of
#: ``hdm05_rest.bvh`` under the ``hdm05_25`` parents.
HDM05_31_TO_25: dict[str, str] = {
    "left_pelvis": "root", "left_hip": "lhipjoint", "left_knee": "lfemur",
    "left_ankle": "ltibia", "left_toe": "lfoot",
    "right_pelvis": "root", "right_hip": "rhipjoint", "right_knee": "rfemur",
    "right_ankle": "rtibia", "right_toe": "rfoot",
    "root": "root", "belly": "lowerback", "chest": "upperback", "neck": "thorax",
    "upper_neck": "lowerneck",
    "left_shoulder": "lclavicle", "left_elbow": "lhumerus", "left_wrist": "lradius",
    "left_hand": "lhand", "left_thumb": "lwrist",
    "right_shoulder": "rclavicle", "right_elbow": "rhumerus", "right_wrist": "rradius",
    "right_hand": "rhand", "right_thumb": "rwrist",
}

_NAME = re.compile(r"HDM_(?P<actor>[A-Za-z]+)_(?P<cls>[A-Za-z0-9]+)_(?P<take>\d+)_(?P<fps>\d+)"
                   r"\.amc", re.IGNORECASE)
_TEMPORAL = ("zero", "repeat", "edge", "resample")


def y_up_to_z_up(points: np.ndarray) -> np.ndarray:
    """Rotate ``(..., 3)`` y-up points into z-up (see :data:`Y_UP_TO_Z_UP`)."""
    return np.asarray(points) @ Y_UP_TO_Z_UP.T


def change_rate(positions: np.ndarray, source_hz: float, target_hz: float | None) -> np.ndarray:
    """Resample ``(T, ...)`` frames from ``source_hz`` to ``target_hz``.

    Integer ratios (120 → 30 Hz; to 0.1 %, as BVH frame times are rounded)
    **decimate**: frames ``0, k, 2k, ...`` are kept, so every output frame is a
    recorded pose (as the HDM05 subsampling of the SMART/BASAR code). Other
    ratios interpolate linearly at times ``i/target_hz`` within the clip.
    ``target_hz=None`` or equal rates return the input.
    """
    if target_hz is None or math.isclose(source_hz, target_hz, rel_tol=1e-6):
        return positions
    if target_hz <= 0 or source_hz <= 0:
        raise ValueError(f"frame rates must be positive, got {source_hz} -> {target_hz}")
    ratio = source_hz / target_hz
    if math.isclose(ratio, round(ratio), rel_tol=1e-3) and round(ratio) >= 1:
        return positions[:: round(ratio)]
    t = positions.shape[0]
    pos = np.arange(math.floor((t - 1) / ratio) + 1) * ratio
    lo = np.minimum(np.floor(pos).astype(np.int64), t - 1)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo).reshape(-1, *([1] * (positions.ndim - 1)))
    return positions[lo] * (1.0 - w) + positions[hi] * w


@dataclass(frozen=True)
class HDM05File:
    """One HDM05 clip file and what its name says."""

    path: Path
    actor: str
    motion_class: str
    take: int
    fps: float


def find_hdm05_files(root: str | Path) -> list[HDM05File]:
    """Every ``HDM_<actor>_<class>_<NNN>_<fps>.amc`` under ``root`` (sorted by path)."""
    root = Path(root)
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".amc" and p.is_file())
    if not paths:
        raise DatasetNotFoundError(
            f"hdm05: no .amc files under {str(root)!r} (expected "
            f"<class>/HDM_<actor>_<class>_<NNN>_120.amc and asf/HDM_<actor>.asf)")
    out = []
    for p in paths:
        m = _NAME.fullmatch(p.name)
        if m is None:
            raise DatasetFormatError(f"{p}: file name does not match "
                                     f"HDM_<actor>_<class>_<NNN>_<fps>.amc")
        out.append(HDM05File(path=p, actor=m["actor"].lower(), motion_class=m["cls"],
                             take=int(m["take"]), fps=float(m["fps"])))
    return out


def _asf_path(root: Path, actor: str) -> Path:
    path = root / "asf" / f"HDM_{actor}.asf"
    if not path.is_file():
        raise DatasetNotFoundError(f"hdm05: skeleton file {str(path)!r} of actor {actor!r} "
                                   f"is missing")
    return path


def clip_positions(skeleton: AcclaimSkeleton, amc_path: str | Path, source_fps: float,
                   fps: float | None) -> np.ndarray:
    """One clip as ``float32 (T, 31, 3)``: metres, z-up, ``hdm05_31`` joint order."""
    joints = get_skeleton("hdm05_31").joint_names
    pos = forward_kinematics(skeleton, load_amc(amc_path), joints)
    pos = change_rate(pos, source_fps, fps) * skeleton.metres_per_unit
    return y_up_to_z_up(pos).astype(np.float32)


def pack_clips(clips: list[np.ndarray], num_frames: int | None = None,
               temporal: str = "zero") -> tuple[np.ndarray, np.ndarray]:
    """``(T_i, V, 3)`` clips → zero-padded ``(N, 3, T, V, 1)`` and ``lengths``.

    ``T`` is the longest clip, or ``num_frames`` fitted with ``temporal``.
    """
    if temporal not in _TEMPORAL:
        raise ConfigError(f"temporal must be one of {_TEMPORAL}, got {temporal!r}")
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    v = clips[0].shape[1]
    x = np.zeros((len(clips), 3, int(lengths.max()), v, 1), dtype=np.float32)
    for i, c in enumerate(clips):
        x[i, :, : len(c), :, 0] = np.moveaxis(c, -1, 0)
    if num_frames is not None:
        if num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
        if temporal == "resample":
            x, lengths = resample(x, num_frames, lengths)
        else:
            x, lengths = crop_or_pad(x, num_frames, lengths, temporal)
    return x, lengths


def _windows(length: int, window: int, stride: int) -> list[tuple[int, int]]:
    if length <= window:
        return [(0, length)]
    return [(s, s + window) for s in range(0, length - window + 1, stride)]


def to_hdm05_25(data: SkeletonDataset) -> SkeletonDataset:
    """Convert an ``hdm05_31`` dataset to the SMART/BASAR ``hdm05_25`` layout."""
    x = remap_joints(data.x, data.skeleton, "hdm05_25", HDM05_31_TO_25)
    return SkeletonDataset(x=x, y=data.y, class_names=data.class_names, skeleton="hdm05_25",
                           lengths=data.lengths, meta=data.meta, name=data.name,
                           info=dict(data.info))


def load_hdm05(root: str | Path, split: str = "train", fps: float | None = 30.0,
               num_frames: int | None = None, temporal: str = "zero",
               window: int | None = None, stride: int = 20, layout: str = "hdm05_31",
               use_cache: bool = True) -> SkeletonDataset:
    """Load split ``split`` of HDM05 from its ASF/AMC files (see the module docstring).

    ``fps=None`` keeps 120 Hz. Meta columns: ``actor`` (and ``subject``, the
    same), ``source`` (path relative to ``root``), ``take``, ``start`` (first
    frame of the window at the output rate; 0 without windows).
    """
    if split not in SPLIT_ACTORS:
        raise ConfigError(f"hdm05: split must be one of {list(SPLIT_ACTORS)}, got {split!r}")
    if layout not in ("hdm05_31", "hdm05_25"):
        raise ConfigError(f"hdm05: layout must be hdm05_31 or hdm05_25, got {layout!r}")
    if temporal not in _TEMPORAL:
        raise ConfigError(f"hdm05: temporal must be one of {_TEMPORAL}, got {temporal!r}")
    if window is not None and (window < 1 or stride < 1):
        raise ConfigError(f"hdm05: window and stride must be >= 1, got {window}, {stride}")
    root = Path(root)
    files = find_hdm05_files(root)
    class_names = sorted({f.motion_class for f in files})
    chosen = [f for f in files if f.actor in SPLIT_ACTORS[split]]
    if not chosen:
        raise DatasetNotFoundError(f"hdm05: no clips of split {split!r} (actors "
                                   f"{', '.join(SPLIT_ACTORS[split])}) under {str(root)!r}")
    asf = {a: _asf_path(root, a) for a in sorted({f.actor for f in chosen})}
    params: dict[str, Any] = {"split": split, "fps": fps, "num_frames": num_frames,
                              "temporal": temporal, "window": window, "stride": stride,
                              "layout": layout, "classes": class_names, "version": 1}

    def parse() -> SkeletonDataset:
        skeletons = {a: load_asf(p) for a, p in asf.items()}
        clips, labels, meta = [], [], {"actor": [], "source": [], "take": [], "start": []}
        for f in progress_bar(chosen, desc="parsing hdm05", unit="file"):
            pos = clip_positions(skeletons[f.actor], f.path, f.fps, fps)
            spans = _windows(len(pos), window, stride) if window else [(0, len(pos))]
            for start, stop in spans:
                clips.append(pos[start:stop])
                labels.append(class_names.index(f.motion_class))
                meta["actor"].append(f.actor)
                meta["source"].append(f.path.relative_to(root).as_posix())
                meta["take"].append(f.take)
                meta["start"].append(start)
        x, lengths = pack_clips(clips, window if window and num_frames is None else num_frames,
                                temporal)
        cols = {k: np.asarray(v) for k, v in meta.items()}
        cols["subject"] = cols["actor"]
        data = SkeletonDataset(x=x, y=np.array(labels), class_names=class_names,
                               skeleton="hdm05_31", lengths=lengths, meta=cols, name="hdm05")
        return to_hdm05_25(data) if layout == "hdm05_25" else data

    data = cached_load("hdm05", [f.path for f in chosen] + list(asf.values()), root, params,
                       parse, use_cache=use_cache)
    data.info.update({"fps": fps or 120.0, "split": split, "protocol": "cross-subject",
                      "units": "m", "up": "z"})
    return data


register_dataset(DatasetSpec(
    name="hdm05",
    layout="hdm05_31",
    num_classes=None,
    splits=tuple(SPLIT_ACTORS),
    description="HDM05 mocap (Müller et al. 2007) from ASF/AMC via forward kinematics; "
                "classes are the motion classes found under the root (11 in the shared subset)",
    loader=load_hdm05,
    default_folder="hdm05",
    protocol="cross-subject: actors bd, bk, dg train; mm, tr test",
    protocol_name="cross-subject",
    extra={"layouts": ("hdm05_31", "hdm05_25"), "source_fps": 120},
))
