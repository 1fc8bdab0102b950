"""The skeleton dataset type and the ``(N, C, T, V, M)`` motion convention.

``x`` is ``float32 (N, 3, T, V, M)``: clips, xyz, frames, joints, bodies, in
metres in a body-centred frame after preprocessing; frames beyond
``lengths[i]`` and absent bodies are zero.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from skelrobust.errors import InvalidMotionError, LayoutError, ShapeError
from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = ["SkeletonDataset", "TorchSkeletonDataset", "check_motion"]


def check_motion(x: Any, name: str = "x", skeleton: Skeleton | None = None,
                 min_frames: int = 1) -> None:
    """Validate a motion batch ``(N, 3, T, V, M)``: shape, layout and finite values."""
    shape = tuple(x.shape)
    if len(shape) != 5:
        raise ShapeError(f"{name}: expected a (N, 3, T, V, M) motion batch, got shape {shape}")
    if shape[1] != 3:
        raise ShapeError(f"{name}: expected 3 coordinates on axis 1, got {shape[1]} "
                         f"(shape {shape}; is it pyskl's (N, M, T, V, C)?)")
    if shape[2] < min_frames:
        raise InvalidMotionError(f"{name}: expected at least {min_frames} frames, got {shape[2]}")
    if skeleton is not None and shape[3] != skeleton.num_joints:
        raise LayoutError(f"{name}: layout {skeleton.name!r} has {skeleton.num_joints} joints, "
                          f"the motion has {shape[3]} (shape {shape})")
    finite = torch.isfinite(x).all() if isinstance(x, torch.Tensor) else np.isfinite(x).all()
    if not bool(finite):
        raise InvalidMotionError(f"{name}: contains NaN or infinite coordinates")


@dataclass
class SkeletonDataset:
    """Clips of one layout with labels, valid lengths, class names and metadata.

    ``meta`` maps a column name (``subject``, ``view``, ``source``...) to one
    value per clip.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    skeleton: Skeleton
    lengths: np.ndarray | None = None
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.skeleton = get_skeleton(self.skeleton)
        self.x = np.ascontiguousarray(self.x, dtype=np.float32)
        self.y = np.asarray(self.y, dtype=np.int64).reshape(-1)
        check_motion(self.x, f"dataset {self.name or '?'}: x", self.skeleton)
        n, t = self.x.shape[0], self.x.shape[2]
        if len(self.y) != n:
            raise ShapeError(f"dataset {self.name!r}: {len(self.y)} labels for {n} clips")
        if n and (self.y.min() < 0 or self.y.max() >= len(self.class_names)):
            raise ShapeError(f"dataset {self.name!r}: labels outside [0, {len(self.class_names)})")
        self.lengths = (np.full(n, t, dtype=np.int64) if self.lengths is None
                        else np.asarray(self.lengths, dtype=np.int64).reshape(-1))
        if len(self.lengths) != n or (n and (self.lengths.min() < 1 or self.lengths.max() > t)):
            raise ShapeError(f"dataset {self.name!r}: lengths must be {n} values in [1, {t}]")
        self.class_names = [str(c) for c in self.class_names]
        self.meta = {k: np.asarray(v) for k, v in self.meta.items()}
        for key, col in self.meta.items():
            if len(col) != n:
                raise ShapeError(f"dataset {self.name!r}: meta column {key!r} has {len(col)} "
                                 f"values for {n} clips")

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_frames(self) -> int:
        return int(self.x.shape[2])

    @property
    def num_bodies(self) -> int:
        return int(self.x.shape[4])

    # ------------------------------------------------------------------ views
    def subset(self, index: Sequence[int] | np.ndarray) -> SkeletonDataset:
        """A new dataset with the clips at ``index`` (integer or boolean)."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return SkeletonDataset(
            x=self.x[idx], y=self.y[idx], class_names=list(self.class_names),
            skeleton=self.skeleton, lengths=self.lengths[idx],
            meta={k: v[idx] for k, v in self.meta.items()}, name=self.name, info=dict(self.info),
        )

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` as torch tensors sharing memory with the arrays."""
        return torch.from_numpy(self.x), torch.from_numpy(self.y)

    def torch_dataset(self) -> TorchSkeletonDataset:
        return TorchSkeletonDataset(self)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y, minlength=self.num_classes)

    @property
    def split_label(self) -> str:
        """``"<dataset> <split>"`` for messages, from ``info`` (set by ``load_dataset``)."""
        return f"{self.info.get('dataset', self.name)} {self.info.get('split', '')}".strip()

    def fingerprint(self) -> str:
        """SHA-256 of the motion, labels and lengths (identifies training data)."""
        h = hashlib.sha256()
        for arr in (self.x, self.y, self.lengths):
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(self.skeleton.name.encode())
        return h.hexdigest()[:16]

    def frame_mask(self) -> np.ndarray:
        """Boolean ``(N, T)``: True for frames within each clip's length."""
        return np.arange(self.num_frames)[None, :] < self.lengths[:, None]

    def summary(self) -> dict[str, Any]:
        """Counts per class, frame-length and bone-length statistics (cm).

        For each bone: ``mean`` and ``std`` over all present frames of all clips
        (cm), and ``temporal_cv_pct``, the median over clips and bodies of the
        within-clip coefficient of variation ``100·std_t(l)/mean_t(l)`` (a
        rigid skeleton gives 0; Kinect tracking noise gives a few percent).
        """
        bl = self.skeleton.bone_lengths(self.x)  # (N, T, B, M)
        valid = self.frame_mask()[:, :, None, None] & (np.abs(self.x).sum(axis=(1, 3)) > 0)[
            :, :, None, :]
        valid = np.broadcast_to(valid, bl.shape)
        bone = np.where(valid, bl, np.nan) * 100.0
        n_bones = bl.shape[2]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (absent bodies)
            mean = np.nanmean(bone, axis=(0, 1, 3)) if valid.any() else np.zeros(n_bones)
            std = np.nanstd(bone, axis=(0, 1, 3)) if valid.any() else np.zeros(n_bones)
            clip_cv = np.nanstd(bone, axis=1) / np.nanmean(bone, axis=1) * 100.0  # (N, B, M)
            cv = np.nanmedian(clip_cv.transpose(1, 0, 2).reshape(n_bones, -1), axis=1) \
                if valid.any() else np.zeros(n_bones)
        names = self.skeleton.joint_names
        keys = [f"{names[c]}-{names[p]}" for c, p in self.skeleton.bones]
        return {
            "name": self.name,
            "layout": self.skeleton.name,
            "clips": len(self),
            "classes": self.num_classes,
            "frames_per_clip": int(self.num_frames),
            "bodies": self.num_bodies,
            "class_counts": {c: int(k) for c, k in zip(self.class_names, self.class_counts())},
            "length": {
                "min": int(self.lengths.min()) if len(self) else 0,
                "mean": float(self.lengths.mean()) if len(self) else 0.0,
                "max": int(self.lengths.max()) if len(self) else 0,
            },
            "bone_length_cm": {k: round(float(v), 2) for k, v in zip(keys, mean)},
            "bone_length_std_cm": {k: round(float(v), 2) for k, v in zip(keys, std)},
            "bone_length_temporal_cv_pct": {k: round(float(v), 3) for k, v in zip(keys, cv)},
        }

    # ------------------------------------------------------------------ storage
    def save_npz(self, path: str) -> None:
        """Write the dataset to one ``.npz`` (no pickles)."""
        meta = {f"meta__{k}": v for k, v in self.meta.items()}
        np.savez(path, x=self.x, y=self.y, lengths=self.lengths,
                 class_names=np.asarray(self.class_names, dtype=str),
                 layout=np.asarray(self.skeleton.name), name=np.asarray(self.name), **meta)

    @classmethod
    def load_npz(cls, path: str) -> SkeletonDataset:
        with np.load(path, allow_pickle=False) as f:
            meta = {k[6:]: f[k] for k in f.files if k.startswith("meta__")}
            return cls(x=f["x"], y=f["y"], lengths=f["lengths"],
                       class_names=[str(c) for c in f["class_names"]],
                       skeleton=str(f["layout"]), name=str(f["name"]), meta=meta)

    def __repr__(self) -> str:
        return (f"SkeletonDataset(name={self.name!r}, clips={len(self)}, "
                f"shape={tuple(self.x.shape)}, classes={self.num_classes}, "
                f"layout={self.skeleton.name!r})")


class TorchSkeletonDataset(Dataset):
    """A ``torch.utils.data.Dataset`` view: item ``i`` is ``(x[i], y[i])``."""

    def __init__(self, data: SkeletonDataset) -> None:
        self.data = data
        self._x, self._y = data.tensors()

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._x[i], self._y[i]
