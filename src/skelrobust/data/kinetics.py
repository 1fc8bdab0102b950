"""Kinetics-skeleton: OpenPose 2-D poses of Kinetics-400 clips, as released with ST-GCN.

Yan, Xiong and Lin, "Spatial Temporal Graph Convolutional Networks for
Skeleton-Based Action Recognition", AAAI 2018. Layout::

    <root>/kinetics_train/<video>.json     <root>/kinetics_train_label.json
    <root>/kinetics_val/<video>.json       <root>/kinetics_val_label.json

A clip is ``{"data": [{"frame_index": t, "skeleton": [{"pose": [x, y] * 18,
"score": [s] * 18}, ...]}, ...], "label", "label_index"}``; the label file maps
each video id to ``{"has_skeleton", "label", "label_index"}``. 18 OpenPose
joints (layout ``openpose18``).

**Channels**: as in ST-GCN, ``C = 3`` holds ``(x, y, score)``, not xyz and not
metres: x and y are image coordinates normalised to [0, 1], centred
(``x - 0.5``, ``0.5 - y``, so y points up) and zeroed where the score is 0.
As ST-GCN's feeder: the first ``max_people_in`` (5) people of each frame are
read, then in every frame the people are ranked by their summed joint score
and the best ``max_bodies`` (2) kept; ``frame_index`` is the frame position
(frames with nobody at the start and end are trimmed, as for every loader).
Videos whose label entry says ``has_skeleton: false`` are left out (counted in
``info["no_skeleton"]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.kinect import finish_split, json_loads, load_folder, number_array, read_text
from skelrobust.data.registry import DatasetSpec, Protocol, register_dataset
from skelrobust.errors import ConfigError, DatasetFormatError, DatasetNotFoundError

__all__ = ["load_kinetics", "read_kinetics_json", "read_kinetics_labels"]

MAX_FRAME_INDEX = 100_000  # guards against absurd allocations from corrupt files


def read_kinetics_labels(path: str | Path) -> dict[str, dict[str, Any]]:
    """The label file: ``{video_id: {"has_skeleton", "label", "label_index"}}``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"kinetics: label file {str(path)!r} is missing")
    obj = json_loads(read_text(path), path)
    if not isinstance(obj, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("label_index"), int) for v in obj.values()):
        raise DatasetFormatError(f"{path}: expected {{video: {{'label_index': int, ...}}}}")
    return obj


def read_kinetics_json(path: str | Path, label_index: int | None = None, max_people_in: int = 5,
                       max_bodies: int = 2) -> tuple[np.ndarray, int, dict[str, Any]]:
    """One clip: ``((T, max_bodies, 18, 3) as (x, y, score), label, meta)``."""
    path = Path(path)
    obj = json_loads(read_text(path), path)
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise DatasetFormatError(f"{path}: expected a JSON object with a 'data' list")
    label = obj.get("label_index", label_index) if label_index is None else label_index
    if not isinstance(label, int) or isinstance(label, bool) or label < 0:
        raise DatasetFormatError(f"{path}: missing or invalid label_index {label!r}")
    frames, people, poses, scores = [], [], [], []
    for k, frame in enumerate(obj["data"]):
        t = frame.get("frame_index") if isinstance(frame, dict) else None
        skels = frame.get("skeleton") if isinstance(frame, dict) else None
        if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < MAX_FRAME_INDEX \
                or not isinstance(skels, list):
            raise DatasetFormatError(f"{path}: data[{k}] needs an integer frame_index in "
                                     f"[0, {MAX_FRAME_INDEX}) and a 'skeleton' list")
        for m, skel in enumerate(skels[:max_people_in]):
            if not isinstance(skel, dict):
                raise DatasetFormatError(f"{path}: data[{k}].skeleton[{m}] is not an object")
            frames.append(t)
            people.append(m)
            poses.append(skel.get("pose"))
            scores.append(skel.get("score"))
    num_t = max(frames, default=-1) + 1
    data = np.zeros((num_t, max_people_in, 18, 3))
    if frames:
        pose = number_array(poses, path, "pose", (len(poses), 36)).reshape(-1, 18, 2)
        score = number_array(scores, path, "score", (len(scores), 18))
        data[frames, people] = np.concatenate([pose, score[..., None]], axis=-1)
    data[..., :2] -= 0.5  # ST-GCN centralisation, y up, zero where undetected
    data[..., 1] *= -1.0
    data[..., :2] *= (data[..., 2:] != 0)
    rank = np.argsort(-data[..., 2].sum(axis=2), axis=1, kind="stable")[:, :max_bodies]
    data = np.take_along_axis(data, rank[:, :, None, None], axis=1)
    return data, label, {"video": path.stem}


def load_kinetics(root: str | Path, split: str = "train", *, num_classes: int = 400,
                  max_bodies: int = 2, max_people_in: int = 5, num_frames: int | None = None,
                  temporal: str = "zero", min_frames: int = 2, strict: bool = False,
                  use_cache: bool = True) -> SkeletonDataset:
    """Kinetics-skeleton split ``train`` or ``val`` (folders and label files of ST-GCN)."""
    if split not in ("train", "val"):
        raise ConfigError(f"kinetics: split must be train or val, got {split!r}")
    root = Path(root)
    folder = root / f"kinetics_{split}"
    if not folder.is_dir():
        raise DatasetNotFoundError(f"kinetics: folder {str(folder)!r} is missing")
    labels = read_kinetics_labels(root / f"kinetics_{split}_label.json")
    names = {}
    for part in ("train", "val"):  # class names from every label file present
        lp = root / f"kinetics_{part}_label.json"
        for v in (labels if part == split else read_kinetics_labels(lp) if lp.is_file() else {}
                  ).values():
            names.setdefault(v["label_index"], str(v.get("label", "")))
    files, no_skeleton = [], []
    for f in sorted(folder.glob("*.json")):
        entry = labels.get(f.stem)
        if entry is not None and not entry.get("has_skeleton", True):
            no_skeleton.append(f.stem)
        else:
            files.append(f)
    size = max(num_classes, max(names, default=-1) + 1)
    classes = [names.get(i) or f"class_{i}" for i in range(size)]

    def reader(path: Path) -> tuple[np.ndarray, int, dict[str, Any]]:
        entry = labels.get(path.stem)
        clip, label, meta = read_kinetics_json(
            path, None if entry is None else entry["label_index"], max_people_in, max_bodies)
        if label >= size:
            raise DatasetFormatError(f"{path}: label_index {label} >= {size} classes")
        return clip, label, meta

    data = load_folder(f"kinetics-{split}", files, root, reader, class_names=classes,
                       skeleton="openpose18", num_bodies=max_bodies, strict=strict,
                       min_frames=min_frames, use_cache=use_cache,
                       params={"max_bodies": max_bodies, "max_people_in": max_people_in,
                               "num_classes": size,
                               "labels": {f.stem: labels.get(f.stem) for f in files}},
                       info={"channels": "x, y, score (ST-GCN)", "units": "normalised image",
                             "no_skeleton": no_skeleton})
    data.info["no_skeleton"] = no_skeleton
    return finish_split(data, np.ones(len(data), bool), split, num_frames, temporal)


register_dataset(DatasetSpec(
    name="kinetics", layout="openpose18", num_classes=400, splits=("train", "val"),
    description="Kinetics-skeleton (Yan et al. AAAI 2018): OpenPose 2-D poses, channels "
                "(x, y, score)",
    loader=load_kinetics, default_folder="kinetics",
    protocol="the ST-GCN train / val folders and label files",
    explicit_protocols=(Protocol("standard", train="train", test="val"),)))
