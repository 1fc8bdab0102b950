"""Joint-angle limits estimated from data, for any skeleton layout.

A joint angle is the angle at a shared joint between two adjacent bones, one per
triplet of :attr:`~skelrobust.skeleton.Skeleton.angle_triplets`
(:meth:`~skelrobust.skeleton.Skeleton.joint_angles`). :class:`JointLimits` holds,
per joint angle ``a``, a range ``[lower_a, upper_a]`` (radians) estimated from a set
of clean clips (:meth:`JointLimits.from_clips`): the minimum and maximum over every
real frame and present body, or the ``quantile`` and ``1 − quantile`` quantiles
(robust to tracking glitches). Angles at a zero-length bone (e.g. ``hdm05_25``'s
hip offsets) are undefined and never count.

A motion being attacked always lies inside its own limits:
:meth:`JointLimits.for_clips` widens the range of every clip to hold the clean
clip's own angles (then by a chosen ``margin``, and a rounding ``slack``), so the
clean motion is a feasible point of every projection that uses them. Angles are
exact here (``joint_angles(..., eps=0)``); where a bone has no length they count
as undefined (:func:`angle_validity`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from skelrobust.attacks.base import motion_mask
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = ["JointLimits", "angle_validity"]

_DEGENERATE_M = 1e-6  # a bone shorter than this (metres) has no direction
_MAX_QUANTILE_VALUES = 1 << 20  # per joint angle; more are subsampled (evenly strided)


def angle_validity(x: torch.Tensor, skeleton: Skeleton, mask: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """``(N, T, A, M)`` bool: joint angles defined in ``x`` (both bones non-zero, frame real).

    ``mask``: the ``(N, 1, T, 1, M)`` motion mask (:func:`~skelrobust.attacks.base.motion_mask`).
    """
    tri = torch.as_tensor(skeleton.angle_triplets, device=x.device)
    centre = x[..., tri[:, 1], :]
    ok = ((torch.linalg.vector_norm(x[..., tri[:, 0], :] - centre, dim=1) > _DEGENERATE_M)
          & (torch.linalg.vector_norm(x[..., tri[:, 2], :] - centre, dim=1) > _DEGENERATE_M))
    if mask is not None:
        ok = ok & (mask[:, 0] > 0)
    return ok


@dataclass(frozen=True)
class JointLimits:
    """Per joint-angle ranges ``[lower, upper]`` in radians for one skeleton layout (module doc)."""

    skeleton: str
    lower: torch.Tensor  # (A,) float64 radians
    upper: torch.Tensor  # (A,) float64 radians

    def __post_init__(self) -> None:
        lo = torch.as_tensor(self.lower, dtype=torch.float64).cpu().reshape(-1)
        hi = torch.as_tensor(self.upper, dtype=torch.float64).cpu().reshape(-1)
        a = len(get_skeleton(self.skeleton).angle_triplets)
        if lo.shape != (a,) or hi.shape != (a,):
            raise ShapeError(f"joint limits: layout {self.skeleton!r} has {a} joint angles, got "
                             f"{tuple(lo.shape)} lower and {tuple(hi.shape)} upper bounds")
        if not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()) or bool(
                (lo > hi).any()):
            raise ConfigError("joint limits: bounds must be finite with lower <= upper")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_degrees(cls, skeleton: Skeleton | str, lower: Any, upper: Any) -> JointLimits:
        """Limits given in degrees (one value per joint angle of the layout)."""
        rad = [torch.deg2rad(torch.as_tensor(np.asarray(v), dtype=torch.float64))
               for v in (lower, upper)]
        return cls(get_skeleton(skeleton).name, rad[0], rad[1])

    @classmethod
    def from_clips(cls, clips: Any, skeleton: Skeleton | str, lengths: Any = None,
                   quantile: float = 0.0, chunk: int = 256) -> JointLimits:
        """Estimate the limits from clean clips ``(P, 3, T, V, M)`` (metres).

        Over every real frame (``lengths``; frames of absent bodies are all zero and
        skipped) and defined angle: ``[min, max]`` (``quantile = 0``) or the
        ``[quantile, 1 − quantile]`` quantiles. An angle never defined in the clips
        gets ``[0, π]``.
        """
        skel = get_skeleton(skeleton)
        if not 0.0 <= quantile < 0.5:
            raise ConfigError(f"joint limits: quantile must be in [0, 0.5), got {quantile}")
        x = torch.as_tensor(np.asarray(clips) if not isinstance(clips, torch.Tensor)
                            else clips).detach()
        if x.dim() != 5 or x.shape[1] != 3 or len(x) == 0:
            raise ShapeError(f"joint limits: expected clips (P, 3, T, V, M), got "
                             f"{tuple(x.shape)}")
        skel.check_motion(x, "joint-limit clips")
        if not bool(torch.isfinite(x).all()):
            raise ShapeError("joint limits: the clips hold NaN or infinite coordinates")
        lens = None if lengths is None else torch.as_tensor(np.asarray(lengths)).long()
        a = len(skel.angle_triplets)
        lo = torch.full((a,), math.inf, dtype=torch.float64)
        hi = torch.full((a,), -math.inf, dtype=torch.float64)
        values = []
        for i in range(0, len(x), chunk):  # bounded memory on large datasets
            part = x[i:i + chunk].double()
            mask = motion_mask(part, None if lens is None else lens[i:i + chunk])
            ang = skel.joint_angles(part, eps=0.0)  # (p, T, A, M), exact where defined
            ok = angle_validity(part, skel, mask)
            if quantile > 0:
                values.append(ang.masked_fill(~ok, math.nan).permute(2, 0, 1, 3).reshape(a, -1))
            else:
                lo = torch.minimum(lo, ang.masked_fill(~ok, math.inf).amin(dim=(0, 1, 3)))
                hi = torch.maximum(hi, ang.masked_fill(~ok, -math.inf).amax(dim=(0, 1, 3)))
        if quantile > 0:
            v = torch.cat(values, dim=1)
            if v.shape[1] > _MAX_QUANTILE_VALUES:
                v = v[:, :: -(-v.shape[1] // _MAX_QUANTILE_VALUES)]
            q = torch.tensor([quantile, 1 - quantile], dtype=torch.float64)
            lo, hi = torch.nanquantile(v, q, dim=1)
        unseen = ~torch.isfinite(lo) | ~torch.isfinite(hi)
        lo = torch.where(unseen, torch.zeros_like(lo), lo)
        hi = torch.where(unseen, torch.full_like(hi, math.pi), hi)
        return cls(skel.name, lo, hi)

    # ------------------------------------------------------------------ use
    def degrees(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` in degrees, one value per joint angle."""
        return (np.degrees(self.lower.numpy()), np.degrees(self.upper.numpy()))

    def for_clips(self, x: torch.Tensor, skeleton: Skeleton, mask: torch.Tensor | None = None,
                  margin: float = 0.0, slack: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-clip ranges ``(N, 1, A, 1)`` (radians, ``x``'s dtype) holding ``x``'s own angles.

        ``[min(lower, θ_min(x_n)) − margin − slack, max(upper, θ_max(x_n)) + margin + slack]``
        over the defined angles of each clean clip ``x_n`` (radians); ``margin`` widens
        the ranges on purpose, ``slack`` absorbs float rounding.
        """
        if skeleton.name != self.skeleton:
            raise ConfigError(f"joint limits are for layout {self.skeleton!r}, the victim's is "
                              f"{skeleton.name!r}")
        ang = skeleton.joint_angles(x.double(), eps=0.0)
        ok = angle_validity(x, skeleton, mask)
        own_lo = ang.masked_fill(~ok, math.inf).amin(dim=(1, 3), keepdim=True)
        own_hi = ang.masked_fill(~ok, -math.inf).amax(dim=(1, 3), keepdim=True)
        lo = torch.minimum(self.lower.to(x.device).view(1, 1, -1, 1), own_lo) - margin - slack
        hi = torch.maximum(self.upper.to(x.device).view(1, 1, -1, 1), own_hi) + margin + slack
        return lo.to(x.dtype), hi.to(x.dtype)
