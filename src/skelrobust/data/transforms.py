"""Preprocessing of motion arrays ``(N, 3, T, V, M)`` (numpy, vectorised over clips).

Absent bodies and frames are all-zero and stay all-zero through every
transform, as in the ST-GCN/2s-AGCN feeders. ``lengths`` (valid frames per
clip) defaults to the full ``T``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from skelrobust.data.dataset import SkeletonDataset, check_motion
from skelrobust.errors import ConfigError, InvalidMotionError, LayoutError
from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = [
    "center",
    "crop_or_pad",
    "mirror",
    "preprocess",
    "present_mask",
    "random_rotate_scale",
    "remap_joints",
    "resample",
    "view_normalize",
]


def _lengths(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    if lengths is None:
        return np.full(x.shape[0], x.shape[2], dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.shape != (x.shape[0],) or lengths.min(initial=1) < 1:
        raise ConfigError(f"lengths: expected {x.shape[0]} positive values, got {lengths.shape}")
    return lengths


def present_mask(x: np.ndarray) -> np.ndarray:
    """``(N, 1, T, 1, M)`` boolean: the body has a non-zero joint in that frame."""
    return np.abs(x).sum(axis=(1, 3), keepdims=True) > 0


def _joint_mean(x: np.ndarray, joints: Sequence[int]) -> np.ndarray:
    return x[:, :, :, list(joints), :].mean(axis=3)  # (N, 3, T, M)


def center(x: np.ndarray, joint: int | Sequence[int], mode: str = "frame") -> np.ndarray:
    """Translate so that ``joint`` of body 0 is the origin.

    ``mode="frame"`` subtracts it in every frame (2s-AGCN ``pre_normalization``);
    ``mode="first"`` subtracts its position in the first frame, keeping the
    global trajectory (walking, jumping).
    """
    joints = [joint] if isinstance(joint, int | np.integer) else list(joint)
    origin = _joint_mean(x, joints)[..., 0]  # (N, 3, T)
    if mode == "first":
        origin = np.repeat(origin[:, :, :1], x.shape[2], axis=2)
    elif mode != "frame":
        raise ConfigError(f"center: mode must be 'frame' or 'first', got {mode!r}")
    return ((x - origin[:, :, :, None, None]) * present_mask(x)).astype(np.float32)


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    ok = norm[..., 0] > 1e-8
    return v / np.where(norm > 1e-8, norm, 1.0), ok


def body_frame_rotation(x: np.ndarray, skeleton: Skeleton, frame: int = 0) -> np.ndarray:
    """Rotations ``(N, 3, 3)`` taking hip→spine to +z and right→left shoulder to +x.

    Built from body 0 at ``frame`` by Gram-Schmidt: ``z = (s − h)/|s − h|``,
    ``x = (l − r) − ((l − r)·z) z`` normalised, ``y = z × x``; rows ``x, y, z``.
    Degenerate clips (zero vectors) get the identity.
    """
    f = skeleton.frame
    pose = x[:, :, frame, :, 0]  # (N, 3, V)

    def at(js: Sequence[int]) -> np.ndarray:
        return pose[:, :, list(js)].mean(axis=2)

    z, ok_z = _unit(at(f.spine) - at(f.hip))
    across = at(f.left_shoulder) - at(f.right_shoulder)
    xa, ok_x = _unit(across - (across * z).sum(-1, keepdims=True) * z)
    y = np.cross(z, xa)
    rot = np.stack([xa, y, z], axis=1)  # rows
    rot[~(ok_z & ok_x)] = np.eye(3)
    return rot


def view_normalize(x: np.ndarray, skeleton: Skeleton | str, frame: int = 0) -> np.ndarray:
    """Rotate each clip into its body frame at ``frame`` (see :func:`body_frame_rotation`)."""
    skeleton = get_skeleton(skeleton)
    rot = body_frame_rotation(x, skeleton, frame)
    return np.einsum("nij,njtvm->nitvm", rot, x).astype(np.float32)


def resample(x: np.ndarray, num_frames: int,
             lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate the valid frames of each clip onto ``num_frames`` frames.

    Frame ``k`` of the output samples the input at ``k·(L−1)/(num_frames−1)``.
    Returns the new motion and the new lengths (all ``num_frames``).
    """
    if num_frames < 1:
        raise ConfigError(f"resample: num_frames must be >= 1, got {num_frames}")
    lengths = _lengths(x, lengths)
    n = x.shape[0]
    denom = max(num_frames - 1, 1)
    pos = np.arange(num_frames)[None, :] * (lengths[:, None] - 1) / denom  # (N, T')
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, lengths[:, None] - 1)
    w = (pos - lo).astype(np.float32)[:, None, :, None, None]
    rows = np.arange(n)[:, None]
    xt = np.moveaxis(x, 2, 1)  # (N, T, 3, V, M)
    a = np.moveaxis(xt[rows, lo], 1, 2)
    b = np.moveaxis(xt[rows, hi], 1, 2)
    out = (a * (1.0 - w) + b * w).astype(np.float32)
    return out, np.full(n, num_frames, dtype=np.int64)


def crop_or_pad(x: np.ndarray, num_frames: int, lengths: np.ndarray | None = None,
                mode: str = "zero") -> tuple[np.ndarray, np.ndarray]:
    """Fit each clip to ``num_frames``: crop the end, or pad after the valid frames.

    ``mode="zero"`` pads with zeros; ``"repeat"`` loops the clip (2s-AGCN's
    null-frame padding); ``"edge"`` holds the last frame.
    """
    lengths = _lengths(x, lengths)
    t_idx = np.arange(num_frames)[None, :]
    if mode == "repeat":
        src = t_idx % lengths[:, None]
    elif mode in ("zero", "edge"):
        src = np.minimum(t_idx, lengths[:, None] - 1)
    else:
        raise ConfigError(f"crop_or_pad: mode must be zero, repeat or edge, got {mode!r}")
    src = np.minimum(src, x.shape[2] - 1)
    out = np.moveaxis(np.moveaxis(x, 2, 1)[np.arange(x.shape[0])[:, None], src], 1, 2)
    new_len = np.minimum(lengths, num_frames) if mode == "zero" else np.full_like(
        lengths, num_frames)
    if mode == "zero":
        out = out * (t_idx < lengths[:, None])[:, None, :, None, None]
    return np.ascontiguousarray(out, dtype=np.float32), new_len


def remap_joints(x: np.ndarray, source: Skeleton | str, target: Skeleton | str,
                 mapping: Mapping[str, str | Sequence[str]]) -> np.ndarray:
    """Reorder joints from ``source`` to ``target`` layout.

    ``mapping`` gives, for every target joint name, the source joint name (or
    several, averaged). A target joint left out of the mapping is an error.
    """
    source, target = get_skeleton(source), get_skeleton(target)
    if x.shape[3] != source.num_joints:
        raise LayoutError(f"remap_joints: source layout {source.name!r} has "
                          f"{source.num_joints} joints, x has {x.shape[3]}")
    missing = [j for j in target.joint_names if j not in mapping]
    if missing:
        raise LayoutError(f"remap_joints: no source joint for target joints {missing}")
    weights = np.zeros((source.num_joints, target.num_joints), dtype=np.float32)
    for t, srcs in mapping.items():
        names = [srcs] if isinstance(srcs, str) else list(srcs)
        ids = [source.joint_index(s) for s in names]
        weights[ids, target.joint_index(t)] = 1.0 / len(ids)
    return np.einsum("nctvm,vw->nctwm", x, weights).astype(np.float32)


def mirror(x: np.ndarray, skeleton: Skeleton | str) -> np.ndarray:
    """Left-right mirror in a body-centred frame: negate x and swap left/right joints."""
    skeleton = get_skeleton(skeleton)
    out = x[:, :, :, skeleton.mirror_permutation, :].copy()
    out[:, 0] *= -1.0
    return out


def random_rotate_scale(x: np.ndarray, rng: np.random.Generator, max_yaw_deg: float = 0.0,
                        max_tilt_deg: float = 0.0, scale_range: float = 0.0) -> np.ndarray:
    """Augmentation: random rotation about z (yaw), small x/y tilts, isotropic scale."""
    n = x.shape[0]
    yaw = np.deg2rad(rng.uniform(-max_yaw_deg, max_yaw_deg, n))
    tx, ty = np.deg2rad(rng.uniform(-max_tilt_deg, max_tilt_deg, (2, n)))
    s = 1.0 + rng.uniform(-scale_range, scale_range, n)
    rot = _rot_z(yaw) @ _rot_y(ty) @ _rot_x(tx) * s[:, None, None]
    return np.einsum("nij,njtvm->nitvm", rot.astype(np.float32), x).astype(np.float32)


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([i, o, o, o, c, -s, o, s, c], -1).reshape(-1, 3, 3)


def _rot_y(a: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([c, o, s, o, i, o, -s, o, c], -1).reshape(-1, 3, 3)


def _rot_z(a: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([c, -s, o, s, c, o, o, o, i], -1).reshape(-1, 3, 3)


def preprocess(data: SkeletonDataset, num_frames: int | None = None, center_mode: str | None =
               "frame", center_joint: int | None = None, normalize_view: bool = True,
               temporal: str = "resample", min_frames: int = 1) -> SkeletonDataset:
    """The standard pipeline on a dataset: centre, view-normalise, fit to ``num_frames``.

    ``temporal`` is ``"resample"`` (interpolate the valid frames to
    ``num_frames``) or one of :func:`crop_or_pad`'s modes. Clips shorter than
    ``min_frames`` raise :class:`InvalidMotionError` (loaders drop them first).
    """
    x, lengths = data.x, data.lengths
    if lengths.min(initial=min_frames) < min_frames:
        raise InvalidMotionError(f"dataset {data.name!r}: clip with fewer than {min_frames} frames")
    skel = data.skeleton
    if center_mode is not None:
        x = center(x, skel.center if center_joint is None else center_joint, center_mode)
    if normalize_view:
        x = view_normalize(x, skel)
    if num_frames is not None:
        if temporal == "resample":
            x, lengths = resample(x, num_frames, lengths)
        else:
            x, lengths = crop_or_pad(x, num_frames, lengths, temporal)
    out = SkeletonDataset(x=x, y=data.y, class_names=data.class_names, skeleton=skel,
                          lengths=lengths, meta=data.meta, name=data.name, info=dict(data.info))
    check_motion(out.x, f"dataset {data.name!r} after preprocessing", skel)
    return out
