"""SBU Kinect Interaction (clean version): two-person interactions, 282 clips.

Yun, Honorio, Chattopadhyay, Berg and Samaras, "Two-person Interaction
Detection Using Body-Pose Features and Multiple Instance Learning", CVPR
Workshops 2012. Eight interactions by seven actors in 21 actor-pair sets;
files ``s<aa>s<bb>/<class 01-08>/<rep>/skeleton_pos.txt`` are CSV rows of
the frame index then 2 people x 15 joints x (x, y, z) (layout ``sbu15``,
M = 2).

Units: the release normalises x and y to [0, 1] and z to its own scale. The
conversion of the dataset's readme, ``X = 1280 - 2560 x``, ``Y = 960 - 1920 y``,
``Z = 10000 z / 7.8125`` (millimetres, OpenNI camera frame, y up), gives
plausible bone lengths on these files (median upper arm 28 cm, thigh 43 cm,
shin 41 cm) and right-handed, consistent skeletons (the people face each
other; handshakes join the joints labelled right). It is applied and the
result turned into metres, z-up (see :mod:`~skelrobust.data.kinect`).

Protocol: the five standard folds by actor-pair set (Yun et al. 2012); split
``fold<k>-test`` is fold ``k``, ``fold<k>-train`` the other four.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.kinect import camera_to_zup, finish_split, load_folder, parse_table, read_text
from skelrobust.data.mocap import ascii_digits
from skelrobust.data.registry import DatasetSpec, register_dataset
from skelrobust.errors import ConfigError, DatasetFormatError, DatasetNotFoundError

__all__ = ["SBU_ACTIONS", "SBU_FOLDS", "load_sbu", "read_sbu_csv", "sbu_to_metres"]

#: Class folders 01-08 (checked on the files: 01/02 the distance shrinks/grows,
#: 03 a foot rises, 04 the partner is pushed back, 05 hands stay joined, 06
#: torsos meet, 07 hands meet at arm's length, 08 a fist rises to face height).
SBU_ACTIONS: tuple[str, ...] = (
    "approaching", "departing", "kicking", "pushing", "shaking hands", "hugging",
    "exchanging objects", "punching",
)
#: The standard five folds of actor-pair sets.
SBU_FOLDS: tuple[tuple[str, ...], ...] = (
    ("s01s02", "s03s04", "s05s02", "s06s04"),
    ("s02s03", "s02s07", "s03s05", "s05s03"),
    ("s01s03", "s01s07", "s07s01", "s07s03"),
    ("s02s01", "s02s06", "s03s02", "s03s06"),
    ("s04s02", "s04s03", "s04s06", "s06s02", "s06s03"),
)
_FOLD = {s: k + 1 for k, sets in enumerate(SBU_FOLDS) for s in sets}
_SET = re.compile(r"s(\d\d)s(\d\d)")


def sbu_to_metres(p: np.ndarray) -> np.ndarray:
    """Normalised SBU ``(..., 3)`` -> camera frame in metres (x left, y up, z depth)."""
    return np.stack([(1280.0 - 2560.0 * p[..., 0]) / 1000.0, (960.0 - 1920.0 * p[..., 1]) / 1000.0,
                     p[..., 2] * (10000.0 / 7.8125) / 1000.0], axis=-1)


def read_sbu_csv(path: str | Path) -> tuple[np.ndarray, int, dict[str, Any]]:
    """One clip: ``((T, 2, 15, 3) z-up metres, class index, meta)``."""
    path = Path(path)
    rep_dir, class_dir, set_dir = path.parent, path.parent.parent, path.parent.parent.parent
    m = _SET.fullmatch(set_dir.name)
    if m is None or not (ascii_digits(class_dir.name) and 1 <= int(class_dir.name) <= 8):
        raise DatasetFormatError(f"{path}: expected s<aa>s<bb>/<class 01-08>/<rep>/"
                                 "skeleton_pos.txt")
    rows = parse_table(read_text(path).splitlines(), path, 91, sep=",")
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: reported below
        metres = sbu_to_metres(rows[:, 1:].reshape(-1, 2, 15, 3))
    bad = ~np.isfinite(metres)
    if bad.any():
        frame = int(np.argwhere(bad)[0][0]) + 1
        raise DatasetFormatError(f"{path}: frame {frame}: a coordinate overflows when "
                                 "converted to metres (SBU stores values normalised to ~[0, 1])")
    clip = camera_to_zup(metres)
    meta = {"source": f"{set_dir.name}/{class_dir.name}/{rep_dir.name}", "set": set_dir.name,
            "actor_a": int(m.group(1)), "actor_b": int(m.group(2)),
            "fold": _FOLD.get(set_dir.name, 0), "repetition": rep_dir.name}
    return clip, int(class_dir.name) - 1, meta


def load_sbu(root: str | Path, split: str = "fold1-train", *, num_frames: int | None = None,
             temporal: str = "zero", min_frames: int = 2, strict: bool = False,
             use_cache: bool = True) -> SkeletonDataset:
    """SBU split ``fold<1-5>-train`` / ``fold<1-5>-test`` or ``all``."""
    fold, _, part = split.partition("-")
    if split != "all" and (fold not in {f"fold{k}" for k in range(1, 6)}
                           or part not in ("train", "test")):
        raise ConfigError(f"sbu: split must be fold<1-5>-train, fold<1-5>-test or all, "
                          f"got {split!r}")
    root = Path(root)
    files = sorted(root.glob("s[0-9][0-9]s[0-9][0-9]/[0-9][0-9]/*/skeleton_pos.txt"))
    if not files:
        raise DatasetNotFoundError(f"sbu: no s<aa>s<bb>/<class>/<rep>/skeleton_pos.txt files in "
                                   f"{str(root)!r}")
    data = load_folder("sbu", files, root, read_sbu_csv, class_names=SBU_ACTIONS,
                       skeleton="sbu15", num_bodies=2, strict=strict, min_frames=min_frames,
                       use_cache=use_cache,
                       info={"units": "m (from the readme's de-normalisation)",
                             "frame": "OpenNI camera frame turned z-up",
                             "protocol": "five folds by actor-pair set"})
    folds = data.meta.get("fold", np.zeros(0, np.int64))
    mask = np.ones(len(data), bool) if split == "all" else (
        (folds == int(fold[4:])) == (part == "test"))
    return finish_split(data, mask, split, num_frames, temporal)


register_dataset(DatasetSpec(
    name="sbu", layout="sbu15", num_classes=8,
    splits=(*(f"fold{k}-{p}" for k in range(1, 6) for p in ("train", "test")), "all"),
    description="SBU Kinect Interaction, clean (Yun et al. CVPRW 2012), two people",
    loader=load_sbu, default_folder="sbu", protocol="five standard folds by actor-pair set"))
