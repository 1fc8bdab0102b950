"""Readers for the preprocessed array files other skeleton code bases ship.

- ST-GCN / 2s-AGCN (Yan et al. AAAI 2018; Shi et al. CVPR 2019):
  ``<part>_data_joint.npy`` ``(N, C=3, T, V, M)`` + ``<part>_label.pkl``
  holding ``(sample_names, labels)``;
- CTR-GCN (Chen et al. ICCV 2021) ``NTU60_CS.npz``: ``x_train (N, T, 150)``
  (2 bodies x 25 joints x xyz per frame), one-hot ``y_train``, ``x_test``,
  ``y_test``;
- pyskl (Duan et al. 2022) annotation pickles: ``{'split': {name: [frame_dir]},
  'annotations': [{'frame_dir', 'label', 'keypoint' (M, T, V, C),
  'total_frames', ...}]}``.

Arrays are returned as stored (no unit or axis change: each code base has its
own preprocessing). ``.npy``/``.npz`` are read with ``allow_pickle=False`` and
pickles with :func:`~skelrobust.data.safe_pickle.safe_load`. ``meta["source"]``
holds the sample names; dataset loaders (e.g. NTU) add what the names encode.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.kinect import stack_clips
from skelrobust.data.safe_pickle import safe_load
from skelrobust.errors import ConfigError, DatasetFormatError, DatasetNotFoundError
from skelrobust.skeleton import get_skeleton

__all__ = ["read_ctrgcn_npz", "read_pyskl", "read_stgcn", "valid_lengths"]


def valid_lengths(x: np.ndarray) -> np.ndarray:
    """Last non-zero frame + 1 of each clip of ``(N, C, T, V, M)`` (at least 1)."""
    nonzero = np.abs(x).sum(axis=(1, 3, 4)) > 0  # (N, T)
    last = x.shape[2] - np.argmax(nonzero[:, ::-1], axis=1)
    return np.where(nonzero.any(axis=1), last, 1).astype(np.int64)


def _names_meta(names: Sequence[str]) -> dict[str, np.ndarray]:
    return {"source": np.asarray([Path(str(s)).stem for s in names], dtype=str)}


def _classes(labels: np.ndarray, class_names: Sequence[str] | None) -> list[str]:
    if class_names is not None:
        return list(class_names)
    return [f"class_{i}" for i in range(int(labels.max(initial=-1)) + 1)]


def read_stgcn(data_path: str | Path, label_path: str | Path, *, layout: str = "ntu25",
               class_names: Sequence[str] | None = None, name: str = "stgcn") -> SkeletonDataset:
    """ST-GCN / 2s-AGCN arrays: ``data.npy (N, C=3, T, V, M)`` + ``(sample_names, labels)`` pickle.

    Returned as stored (for 2s-AGCN NTU data: already through the pipeline).
    """
    try:
        x = np.load(data_path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{data_path}: no such file") from None
    except (OSError, ValueError) as err:
        raise DatasetFormatError(f"{data_path}: not a readable .npy array ({err})") from None
    skel = get_skeleton(layout)
    if x.ndim != 5 or x.shape[1] != 3 or x.shape[3] != skel.num_joints:
        raise DatasetFormatError(f"{data_path}: expected (N, 3, T, {skel.num_joints}, M) data "
                                 f"for layout {layout!r}, got {x.shape}")
    pair = safe_load(label_path)
    if not (isinstance(pair, tuple | list) and len(pair) == 2):
        raise DatasetFormatError(f"{label_path}: expected a (sample_names, labels) pair")
    names, labels = list(pair[0]), np.asarray(pair[1])
    if labels.ndim != 1 or len(names) != len(labels) or len(labels) != len(x) or (
            len(labels) and not np.issubdtype(labels.dtype, np.integer)):
        raise DatasetFormatError(f"{label_path}: {len(names)} names and {labels.shape} integer "
                                 f"labels do not match {len(x)} clips in {data_path}")
    data = np.asarray(x, dtype=np.float32)
    return SkeletonDataset(x=data, y=labels, class_names=_classes(labels, class_names),
                           skeleton=skel, lengths=valid_lengths(data), meta=_names_meta(names),
                           name=name, info={"source": "stgcn", "file": str(data_path)})


def read_ctrgcn_npz(path: str | Path, part: str = "train", *,
                    class_names: Sequence[str] | None = None,
                    name: str = "ctrgcn") -> SkeletonDataset:
    """CTR-GCN ``NTU60_CS.npz``-style file: ``x_<part> (N, T, 150)``, one-hot ``y_<part>``.

    Each frame holds 2 bodies x 25 joints x xyz (CTR-GCN's reshape to
    ``(N, T, 2, 25, 3)``); returned as stored, ``(N, 3, T, 25, 2)``.
    """
    if part not in ("train", "test"):
        raise ConfigError(f"read_ctrgcn_npz: part must be 'train' or 'test', got {part!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = f[f"x_{part}"], f[f"y_{part}"]
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: no such file") from None
    except KeyError as err:
        raise DatasetFormatError(f"{path}: missing array {err}") from None
    except (OSError, ValueError) as err:
        raise DatasetFormatError(f"{path}: not a readable .npz ({err})") from None
    if x.ndim != 3 or x.shape[2] != 150 or len(y) != len(x):
        raise DatasetFormatError(f"{path}: expected x_{part} (N, T, 150) and N labels, got "
                                 f"{x.shape} and {y.shape}")
    if y.ndim == 2:
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise DatasetFormatError(f"{path}: y_{part} is not one-hot")
        y = y.argmax(axis=1)
    data = np.ascontiguousarray(
        x.reshape(len(x), x.shape[1], 2, 25, 3).transpose(0, 4, 1, 3, 2), dtype=np.float32)
    return SkeletonDataset(x=data, y=y.astype(np.int64),
                           class_names=_classes(y, class_names), skeleton="ntu25",
                           lengths=valid_lengths(data), name=name,
                           info={"source": "ctrgcn", "file": str(path)})


_PYSKL_LAYOUTS = {(25, 3): "ntu25", (17, 2): "coco17", (18, 2): "openpose18"}


def read_pyskl(path: str | Path, split: str, *, class_names: Sequence[str] | None = None,
               max_bodies: int = 2, name: str = "pyskl") -> SkeletonDataset:
    """pyskl annotation pickle: ``{'split': {name: [frame_dir...]}, 'annotations': [...]}``.

    Each annotation has ``frame_dir``, ``label``, ``keypoint (M, T, V, C)``
    and ``total_frames``; 2-D files (``C = 2``) also ``keypoint_score (M, T, V)``,
    stored as the third channel (x, y, score). Coordinates are as stored (for
    NTU 3-D: raw camera frame).
    """
    obj = safe_load(path)
    if not (isinstance(obj, dict) and isinstance(obj.get("split"), dict)
            and isinstance(obj.get("annotations"), list)):
        raise DatasetFormatError(f"{path}: expected a dict with 'split' and 'annotations'")
    if split not in obj["split"]:
        raise DatasetFormatError(f"{path}: no split {split!r} (has {sorted(obj['split'])})")
    wanted = {str(s) for s in obj["split"][split]}
    clips, labels, dirs = [], [], []
    layout = None
    for k, ann in enumerate(obj["annotations"]):
        if not isinstance(ann, dict) or str(ann.get("frame_dir")) not in wanted:
            continue
        try:
            kp = np.asarray(ann["keypoint"], dtype=np.float32)
            label = int(ann["label"])
            if kp.ndim != 4 or (kp.shape[2], kp.shape[3]) not in _PYSKL_LAYOUTS:
                raise ValueError(f"keypoint shape {kp.shape}")
            this = _PYSKL_LAYOUTS[(kp.shape[2], kp.shape[3])]
            if kp.shape[3] == 2:
                score = np.asarray(ann["keypoint_score"], dtype=np.float32).reshape(kp.shape[:3])
                kp = np.concatenate([kp, score[..., None]], axis=-1)
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetFormatError(f"{path}: annotation {k} ({ann.get('frame_dir')!r}) is "
                                     f"malformed: {err}") from None
        if layout not in (None, this):
            raise DatasetFormatError(f"{path}: annotations mix layouts {layout} and {this}")
        layout = this
        clips.append(kp[:max_bodies].transpose(1, 0, 2, 3))  # (T, M, V, C)
        labels.append(label)
        dirs.append(str(ann["frame_dir"]))
    if layout is None:
        raise DatasetFormatError(f"{path}: split {split!r} matches no annotation")
    x, lengths = stack_clips(clips, get_skeleton(layout).num_joints, max_bodies)
    y = np.asarray(labels, dtype=np.int64)
    return SkeletonDataset(x=x, y=y, class_names=_classes(y, class_names), skeleton=layout,
                           lengths=np.maximum(lengths, 1), meta=_names_meta(dirs), name=name,
                           info={"source": "pyskl", "file": str(path), "split": split})
