"""GTU 3D Actions (Kinect v2), 14 exercise-like actions, 508 clips.

Files ``gtu/<folder 1-14>/movement<N>.txt`` hold 25 rows per frame, ``x y z``
in metres in the Kinect v2 camera frame, joints in the NTU RGB+D order
(layout ``ntu25``; the camera frame is turned z-up, see
:mod:`~skelrobust.data.kinect`). Class names come from the releasing
repository, which lists them in lexicographic folder order (1, 10, 11, ...,
14, 2, ..., 9); the class index follows that order (:data:`GTU_FOLDERS`).
"13 and 14 bend the leg left or right" is read as 13 left, 14 right.

The release has no subject ids, so the split is a seeded stratified one:
``train_fraction`` (default 0.7) of each class, drawn with ``seed``.

Note: in the clips of folder 10 ("right-handed shaking") the joint labelled
*left* hand moves (and the right one in folder 2, "left-handed shaking"; the
same for the legs in folders 13/14), while the skeletons are geometrically
consistent Kinect v2 output. Either the names are from the viewer's side or
the recording mirrored the person; ``mirror=True`` mirrors every clip (x
negated, left and right joints swapped) so that names and limbs agree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.kinect import (
    camera_to_zup,
    finish_split,
    load_folder,
    natural_key,
    parse_table,
    read_text,
)
from skelrobust.data.registry import DatasetSpec, register_dataset
from skelrobust.errors import ConfigError, DatasetFormatError, DatasetNotFoundError
from skelrobust.skeleton import get_skeleton

__all__ = ["GTU_ACTIONS", "GTU_FOLDERS", "load_gtu", "read_gtu_movement", "stratified_split"]

#: Folder of each class index (lexicographic order, as the releasing repository).
GTU_FOLDERS: tuple[str, ...] = tuple(sorted(str(i) for i in range(1, 15)))
_NAMES = {
    "1": "opening and closing the arms", "10": "right-handed shaking",
    "11": "right and left waist stretch", "12": "walking", "13": "bend the leg left",
    "14": "bend the leg right", "2": "left-handed shaking", "3": "one right-left step",
    "4": "crouching", "5": "standing on the sandal", "6": "sit and applause", "7": "lower back",
    "8": "right and left 8-step motion", "9": "neck relaxation",
}
GTU_ACTIONS: tuple[str, ...] = tuple(_NAMES[f] for f in GTU_FOLDERS)
_CLASS = {f: i for i, f in enumerate(GTU_FOLDERS)}
_FILE = re.compile(r"movement(\d+)")


def read_gtu_movement(path: str | Path, mirror: bool = False
                      ) -> tuple[np.ndarray, int, dict[str, Any]]:
    """One clip: ``((T, 1, 25, 3) z-up metres, class index, meta)``; the folder is the class."""
    path = Path(path)
    folder, m = path.parent.name, _FILE.fullmatch(path.stem)
    if folder not in _CLASS or m is None:
        raise DatasetFormatError(f"{path}: expected <class folder 1-14>/movement<N>.txt")
    lines = read_text(path).splitlines()
    rows = parse_table(lines, path, 3)
    if len(rows) % 25:
        raise DatasetFormatError(f"{path}, line {len(lines)}: file ends inside a frame ({len(rows)}"
                                 " rows is not a multiple of 25 joints; truncated file?)")
    clip = camera_to_zup(rows.reshape(-1, 25, 3))
    if mirror:
        clip = clip[:, get_skeleton("ntu25").mirror_permutation] * np.array([-1.0, 1.0, 1.0])
    return clip[:, None], _CLASS[folder], {"source": f"{folder}/{path.stem}",
                                      "folder": int(folder), "movement": int(m.group(1))}


def stratified_split(y: np.ndarray, train_fraction: float, seed: int) -> np.ndarray:
    """Boolean train mask holding ``round(train_fraction * n_c)`` random clips of each class."""
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"gtu: train_fraction must be in (0, 1), got {train_fraction}")
    rng = np.random.default_rng(seed)
    train = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        train[idx[:round(train_fraction * len(idx))]] = True
    return train


def load_gtu(root: str | Path, split: str = "train", *, seed: int = 0,
             train_fraction: float = 0.7, mirror: bool = False, num_frames: int | None = None,
             temporal: str = "zero", min_frames: int = 2, strict: bool = False,
             use_cache: bool = True) -> SkeletonDataset:
    """GTU split ``train`` / ``test`` (seeded, stratified by class) or ``all``."""
    if split not in ("train", "test", "all"):
        raise ConfigError(f"gtu: split must be train, test or all, got {split!r}")
    root = Path(root)
    files = sorted((f for d in GTU_FOLDERS for f in (root / d).glob("movement*.txt")),
                   key=natural_key)
    if not files:
        raise DatasetNotFoundError(f"gtu: no <1-14>/movement*.txt files in {str(root)!r}")
    data = load_folder("gtu", files, root, lambda p: read_gtu_movement(p, mirror),
                       class_names=GTU_ACTIONS, skeleton="ntu25", params={"mirror": mirror},
                       strict=strict, min_frames=min_frames, use_cache=use_cache,
                       info={"units": "m", "frame": "Kinect v2 camera frame turned z-up",
                             "protocol": f"stratified {train_fraction:.0%} train, seed {seed}"})
    train = stratified_split(data.y, train_fraction, seed)
    mask = np.ones(len(data), bool) if split == "all" else train == (split == "train")
    return finish_split(data, mask, split, num_frames, temporal)


register_dataset(DatasetSpec(
    name="gtu", layout="ntu25", num_classes=14, splits=("train", "test", "all"),
    description="GTU 3D Actions, Kinect v2, 25 joints in NTU order",
    loader=load_gtu, default_folder="gtu",
    protocol="no subject ids: seeded stratified split (seed, train_fraction)",
    protocol_name="stratified"))
