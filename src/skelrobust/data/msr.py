"""MSR Action3D, skeleton (real-world coordinate) files.

Li, Zhang and Liu, "Action Recognition Based on a Bag of 3D Points", CVPR
Workshops 2010. 20 actions by 10 subjects, 2-3 episodes each; 567 clips.
``a<action>_s<subject>_e<episode>_skeleton3D.txt`` holds 20 rows per frame,
``x y z confidence``, in metres in the depth camera frame (y up). The joint
order of these files (MSR's own) is remapped by name to ``kinect20`` and the
axes turned z-up (see :mod:`~skelrobust.data.kinect`).

Cross-subject protocol: subjects 1, 3, 5, 7, 9 train, 2, 4, 6, 8, 10 test.
``standard_list=True`` keeps the 557 clips of ``files_used_in_cvpr12_paper.txt``
(the ten others have broken or missing skeletons). Untracked frames (all zero)
are trimmed at the ends and stay zero inside; clips with fewer than
``min_frames`` tracked frames are dropped with a counted warning.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.kinect import (
    camera_to_zup,
    file_layout,
    find_folder,
    finish_split,
    load_folder,
    parse_table,
    read_text,
)
from skelrobust.data.registry import DatasetSpec, register_dataset
from skelrobust.errors import ConfigError, DatasetFormatError, DatasetNotFoundError

__all__ = ["MSR_ACTIONS", "MSR_JOINT_ORDER", "load_msr", "read_msr_skeleton"]

MSR_ACTIONS: tuple[str, ...] = (
    "high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch",
    "high throw", "draw x", "draw tick", "draw circle", "hand clap", "two hand wave",
    "side-boxing", "bend", "forward kick", "side kick", "jogging", "tennis swing",
    "tennis serve", "golf swing", "pick up & throw",
)
#: Row order of the ``skeleton3D`` files, as kinect20 joint names.
MSR_JOINT_ORDER: tuple[str, ...] = (
    "left_shoulder", "right_shoulder", "shoulder_center", "spine", "left_hip", "right_hip",
    "hip_center", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand",
    "right_hand", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_foot",
    "right_foot", "head",
)
STANDARD_LIST = "files_used_in_cvpr12_paper.txt"
_SOURCE = file_layout("msr20", "kinect20", MSR_JOINT_ORDER)
_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)_skeleton3D")


def read_msr_skeleton(path: str | Path) -> tuple[np.ndarray, int, dict[str, Any]]:
    """One clip: ``((T, 1, 20, 3) z-up metres in file joint order, class index, meta)``."""
    path = Path(path)
    m = _NAME.fullmatch(path.stem)
    if m is None or not 1 <= int(m.group(1)) <= len(MSR_ACTIONS):
        raise DatasetFormatError(f"{path}: name is not a<1-20>_s<subject>_e<episode>_skeleton3D")
    action, subject, episode = map(int, m.groups())
    lines = read_text(path).splitlines()
    rows = parse_table(lines, path, 4)
    if len(rows) % 20:
        raise DatasetFormatError(f"{path}, line {len(lines)}: file ends inside a frame ({len(rows)}"
                                 " rows is not a multiple of 20 joints; truncated file?)")
    clip = rows[:, :3].reshape(-1, 20, 3)
    meta = {"subject": subject, "episode": episode, "action": action}
    return camera_to_zup(clip)[:, None], action - 1, meta


def load_msr(root: str | Path, split: str = "train", *, standard_list: bool = False,
             num_frames: int | None = None, temporal: str = "zero", min_frames: int = 2,
             strict: bool = False, use_cache: bool = True) -> SkeletonDataset:
    """MSR Action3D cross-subject split ``train`` (odd subjects), ``test`` (even) or ``all``."""
    if split not in ("train", "test", "all"):
        raise ConfigError(f"msr-action3d: split must be train, test or all, got {split!r}")
    folder = find_folder(Path(root), "a*_s*_e*_skeleton3D.txt")
    files = sorted(folder.glob("a*_s*_e*_skeleton3D.txt"))
    data = load_folder("msr-action3d", files, folder, read_msr_skeleton, class_names=MSR_ACTIONS,
                       skeleton="kinect20", source=_SOURCE, strict=strict, min_frames=min_frames,
                       use_cache=use_cache,
                       info={"units": "m", "frame": "depth camera frame turned z-up",
                             "protocol": "cross-subject: subjects 1,3,5,7,9 train"})
    subject = data.meta.get("subject", np.zeros(0, np.int64))
    mask = np.ones(len(data), bool) if split == "all" else (
        (subject % 2 == 1) == (split == "train"))
    if standard_list:
        listing = folder / STANDARD_LIST
        if not listing.is_file():
            raise DatasetNotFoundError(f"msr-action3d: standard_list=True needs {listing}")
        names = {ln.strip() for ln in read_text(listing).splitlines() if ln.strip()}
        stems = data.meta.get("source", np.zeros(0, str))
        mask &= np.isin(np.char.replace(stems.astype(str), "_skeleton3D", ""), list(names))
    out = finish_split(data, mask, split, num_frames, temporal)
    out.info["standard_list"] = standard_list
    return out


register_dataset(DatasetSpec(
    name="msr-action3d", layout="kinect20", num_classes=20, splits=("train", "test", "all"),
    description="MSR Action3D (Li et al. CVPRW 2010), Kinect v1-style 20-joint skeletons",
    loader=load_msr, default_folder="msr-action3d",
    protocol="cross-subject: odd subjects train, even test; standard_list=True for the 557 "
             "files of the CVPR 2012 paper",
    protocol_name="cross-subject"))
