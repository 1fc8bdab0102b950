"""Northwestern-UCLA Multiview Action 3D (NW-UCLA).

Wang, Nie, Xia, Wu and Zhu, "Cross-view Action Modeling, Learning and
Recognition", CVPR 2014. Ten actions by ten subjects, recorded by three
Kinect v1 sensors at once; 1,484 clips. Files are the JSON release used by
CTR-GCN/InfoGCN: ``a<action>_s<subject>_e<episode>_v<view>.json`` holding
``{"file_name", "skeletons": [T][20][3], "label"}`` (metres, Kinect camera
frame, joints in the Kinect SDK order). Loaded z-up (see
:mod:`~skelrobust.data.kinect`), layout ``kinect20``.

Cross-view protocol: views 1 and 2 train, view 3 tests. Policy for short
clips (two clips have a single frame): clips with fewer than ``min_frames``
(default 2) frames are dropped with a counted warning (``info["dropped"]``).
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
    json_loads,
    load_folder,
    number_array,
    read_text,
)
from skelrobust.data.registry import DatasetSpec, register_dataset
from skelrobust.errors import ConfigError, DatasetFormatError
from skelrobust.skeleton import get_skeleton

__all__ = ["NWUCLA_ACTIONS", "load_nwucla", "read_nwucla_json"]

#: Action id (file name ``a<id>``) -> name; the class index is the position.
NWUCLA_ACTIONS: dict[int, str] = {
    1: "pick up with one hand", 2: "pick up with two hands", 3: "drop trash", 4: "walk around",
    5: "sit down", 6: "stand up", 8: "donning", 9: "doffing", 11: "throw", 12: "carry",
}
_CLASS = {a: i for i, a in enumerate(NWUCLA_ACTIONS)}
_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)_v(\d+)")
# The JSON stores the Kinect SDK (NUI_SKELETON_POSITION) order, the order of kinect20.
_SOURCE = file_layout("nwucla20", "kinect20", get_skeleton("kinect20").joint_names)


def read_nwucla_json(path: str | Path) -> tuple[np.ndarray, int, dict[str, Any]]:
    """One clip: ``((T, 1, 20, 3) z-up metres, class index, meta)``."""
    path = Path(path)
    m = _NAME.fullmatch(path.stem)
    if m is None or int(m.group(1)) not in _CLASS:
        raise DatasetFormatError(f"{path}: name is not a<action>_s<subject>_e<episode>_v<view> "
                                 f"with an action in {list(NWUCLA_ACTIONS)}")
    action, subject, episode, view = map(int, m.groups())
    obj = json_loads(read_text(path), path)
    if not isinstance(obj, dict) or "skeletons" not in obj:
        raise DatasetFormatError(f"{path}: expected a JSON object with 'skeletons'")
    label = obj.get("label")
    if label is not None and (isinstance(label, bool) or label != _CLASS[action] + 1):
        raise DatasetFormatError(f"{path}: label {label!r} disagrees with action a{action:02d} "
                                 f"of the file name (expected {_CLASS[action] + 1})")
    frames = obj["skeletons"]
    clip = (np.zeros((0, 20, 3)) if isinstance(frames, list) and not frames
            else number_array(frames, path, "skeletons", (None, 20, 3)))
    meta = {"subject": subject, "episode": episode, "view": view, "action": action}
    return camera_to_zup(clip)[:, None], _CLASS[action], meta


def load_nwucla(root: str | Path, split: str = "train", *, num_frames: int | None = None,
                temporal: str = "zero", min_frames: int = 2, strict: bool = False,
                use_cache: bool = True) -> SkeletonDataset:
    """NW-UCLA cross-view split ``train`` (views 1, 2), ``test`` (view 3) or ``all``.

    ``root`` is the folder of the JSON files or its parent (``all_sqe/``).
    """
    if split not in ("train", "test", "all"):
        raise ConfigError(f"nw-ucla: split must be train, test or all, got {split!r}")
    folder = find_folder(Path(root), "a*_s*_e*_v*.json", ["all_sqe"])
    files = sorted(folder.glob("a*_s*_e*_v*.json"))
    data = load_folder("nw-ucla", files, folder, read_nwucla_json,
                       class_names=list(NWUCLA_ACTIONS.values()), skeleton="kinect20",
                       source=_SOURCE, strict=strict, min_frames=min_frames, use_cache=use_cache,
                       info={"units": "m", "frame": "Kinect camera frame turned z-up",
                             "protocol": "cross-view: views 1-2 train, view 3 test"})
    view = data.meta.get("view", np.zeros(0, np.int64))
    mask = np.ones(len(data), bool) if split == "all" else ((view == 3) == (split == "test"))
    return finish_split(data, mask, split, num_frames, temporal)


register_dataset(DatasetSpec(
    name="nw-ucla", layout="kinect20", num_classes=10, splits=("train", "test", "all"),
    description="Northwestern-UCLA Multiview Action 3D (Wang et al. CVPR 2014), Kinect v1, "
                "JSON release",
    loader=load_nwucla, default_folder="nw-ucla", protocol="cross-view: view 3 tests",
    protocol_name="cross-view"))
