"""UTD Multimodal Human Action Dataset (UTD-MHAD), skeleton modality.

Chen, Jafari and Kehtarnavaz, "UTD-MHAD: A Multimodal Dataset for Human Action
Recognition Utilizing a Depth Camera and a Wearable Inertial Sensor", ICIP
2015. 27 actions by 8 subjects, 4 trials each; 861 clips (three of the 864
were lost). MATLAB files ``a<action>_s<subject>_t<trial>_skeleton.mat`` hold
``d_skel (20, 3, T)`` in metres in the Kinect v1 camera frame, joints in the
order of ``Skeleton_joint_order.txt`` (head, shoulder centre, spine, hip
centre, left arm, right arm, left leg, right leg), remapped by name to
``kinect20`` and turned z-up (see :mod:`~skelrobust.data.kinect`).

Cross-subject protocol: odd subjects train, even subjects test.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.kinect import (
    camera_to_zup,
    file_layout,
    find_folder,
    finish_split,
    load_folder,
)
from skelrobust.data.registry import DatasetSpec, register_dataset
from skelrobust.errors import ConfigError, DatasetFormatError

__all__ = ["UTD_ACTIONS", "UTD_JOINT_ORDER", "load_utdmhad", "read_utd_mat"]

UTD_ACTIONS: tuple[str, ...] = (
    "right arm swipe to the left", "right arm swipe to the right", "right hand wave",
    "two hand front clap", "right arm throw", "cross arms in the chest", "basketball shoot",
    "right hand draw x", "right hand draw circle (clockwise)",
    "right hand draw circle (counter clockwise)", "draw triangle", "bowling (right hand)",
    "front boxing", "baseball swing from right", "tennis right hand forehand swing",
    "arm curl (two arms)", "tennis serve", "two hand push", "right hand knock on door",
    "right hand catch an object", "right hand pick up and throw", "jogging in place",
    "walking in place", "sit to stand", "stand to sit", "forward lunge (left foot forward)",
    "squat (two arms stretch out)",
)
#: ``Skeleton_joint_order.txt``, as kinect20 joint names.
UTD_JOINT_ORDER: tuple[str, ...] = (
    "head", "shoulder_center", "spine", "hip_center",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
)
_SOURCE = file_layout("utd20", "kinect20", UTD_JOINT_ORDER)
_NAME = re.compile(r"a(\d+)_s(\d+)_t(\d+)_skeleton")


def read_utd_mat(path: str | Path) -> tuple[np.ndarray, int, dict[str, Any]]:
    """One clip: ``((T, 1, 20, 3) z-up metres in file joint order, class index, meta)``."""
    path = Path(path)
    m = _NAME.fullmatch(path.stem)
    if m is None or not 1 <= int(m.group(1)) <= len(UTD_ACTIONS):
        raise DatasetFormatError(f"{path}: name is not a<1-27>_s<subject>_t<trial>_skeleton.mat")
    action, subject, trial = map(int, m.groups())
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises many exception types on corrupt files
        raise DatasetFormatError(f"{path}: not a readable MATLAB file ({err})") from None
    skel = mat.get("d_skel")
    if not isinstance(skel, np.ndarray) or skel.ndim != 3 or skel.shape[:2] != (20, 3) or (
            not np.issubdtype(skel.dtype, np.number)):
        shape = getattr(skel, "shape", None)
        raise DatasetFormatError(f"{path}: expected a numeric d_skel of shape (20, 3, T), got "
                                 f"{shape}")
    clip = skel.transpose(2, 0, 1).astype(np.float64)
    if not np.isfinite(clip).all():
        raise DatasetFormatError(f"{path}: d_skel holds non-finite values")
    meta = {"subject": subject, "trial": trial, "action": action}
    return camera_to_zup(clip)[:, None], action - 1, meta


def load_utdmhad(root: str | Path, split: str = "train", *, num_frames: int | None = None,
                 temporal: str = "zero", min_frames: int = 2, strict: bool = False,
                 use_cache: bool = True) -> SkeletonDataset:
    """UTD-MHAD cross-subject split ``train`` (odd subjects), ``test`` (even) or ``all``."""
    if split not in ("train", "test", "all"):
        raise ConfigError(f"utd-mhad: split must be train, test or all, got {split!r}")
    folder = find_folder(Path(root), "a*_s*_t*_skeleton.mat", ["Skeleton"])
    files = sorted(folder.glob("a*_s*_t*_skeleton.mat"))
    data = load_folder("utd-mhad", files, folder, read_utd_mat, class_names=UTD_ACTIONS,
                       skeleton="kinect20", source=_SOURCE, strict=strict, min_frames=min_frames,
                       use_cache=use_cache,
                       info={"units": "m", "frame": "Kinect camera frame turned z-up",
                             "protocol": "cross-subject: odd subjects train, even test"})
    subject = data.meta.get("subject", np.zeros(0, np.int64))
    mask = np.ones(len(data), bool) if split == "all" else (
        (subject % 2 == 1) == (split == "train"))
    return finish_split(data, mask, split, num_frames, temporal)


register_dataset(DatasetSpec(
    name="utd-mhad", layout="kinect20", num_classes=27, splits=("train", "test", "all"),
    description="UTD-MHAD (Chen et al. ICIP 2015), Kinect v1 skeletons from .mat files",
    loader=load_utdmhad, default_folder="utd-mhad",
    protocol="cross-subject: odd subjects train, even test",
    protocol_name="cross-subject"))
