"""Attack outcome and perceptual metrics, in physical units.

Success of an attack goal, for logits ``z`` of the adversarial motion, true
class ``y`` and target ``c``:

- anything-but (AB, untargeted): ``argmax z ≠ y``;
- anything-but-N (ABN-N): ``y ∉ topN(z)``;
- specified target (SA): ``argmax z = c``.

The perceptual report compares a clean motion ``q`` and its adversarial
``q̂`` (``(N, 3, T, V, M)`` metres) over the frames inside each clip's length
and the bodies present in the clean motion:

- joint displacement ``‖q̂_tv − q_tv‖`` (mm; mean and max per sample);
- bone-length change ``|ℓ̂_b − ℓ_b| / ℓ_b`` (% of the clean length; zero-length
  bones such as ``hdm05_25``'s hip offsets are skipped);
- joint-angle change ``|θ̂ − θ|`` at every pair of adjacent bones (degrees);
- velocity and acceleration deviation ``‖∂ⁿq̂ − ∂ⁿq‖`` for ``n = 1, 2`` by
  finite differences at ``fps`` (mm/s, mm/s²) — the quantities SMART's
  dynamics loss keeps small (Wang et al., CVPR 2021, Eq. 4);
- how many frames and joints were touched (any coordinate changed by more
  than ``touched_mm``; 0 counts every bit-level change);
- how many joint-frames count (``joint_frames``: joints × valid frames ×
  present bodies, the mask of ``joint_mm_mean``) and how many of them moved
  strictly more than each of :data:`DISPLACEMENT_THRESHOLDS_MM`
  (``joint_frames_over_20mm``, ``joint_frames_over_50mm``).

:meth:`PerceptualReport.summary` aggregates over samples, ignoring NaN
(empty clips): ``<metric>`` is the mean over samples, except the ``*_max``
keys, the max over samples. Means hide the tails, so for the per-clip maxima
``joint_mm_max``, ``bone_pct_max`` and ``angle_deg_max`` it adds
``<key>_mean``, ``<key>_median`` and ``<key>_p95`` over clips (numpy's linear
interpolation); the max over clips stays ``<key>``. The ``joint_frames*``
counts are summed over samples (totals, not means), and
``joint_frames_over_20mm_pct`` / ``joint_frames_over_50mm_pct`` pool them:
``100 · Σ over / Σ joint_frames`` (NaN without any joint-frame).
:func:`perceptual_rows` lays these out as rows for people.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from skelrobust.errors import ConfigError, ShapeError
from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = [
    "DISPLACEMENT_THRESHOLDS_MM",
    "GOALS",
    "TAIL_KEYS",
    "PerceptualReport",
    "frames_over_key",
    "goal_reached",
    "perceptual_report",
    "perceptual_rows",
    "robust_accuracy",
    "success_rate",
]

GOALS = ("ab", "abn", "sa")
# Joint-frames displaced strictly more than these (mm) are counted per sample.
DISPLACEMENT_THRESHOLDS_MM = (20.0, 50.0)
# Per-clip maxima whose distribution over clips the summary describes.
TAIL_KEYS = ("joint_mm_max", "bone_pct_max", "angle_deg_max")
COUNT_PREFIX = "joint_frames"


def frames_over_key(threshold_mm: float) -> str:
    """Per-sample key of the joint-frames displaced more than ``threshold_mm``."""
    return f"{COUNT_PREFIX}_over_{threshold_mm:g}mm"


def _tensor(a: Any) -> torch.Tensor:
    return a.detach() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))


def goal_reached(logits: Any, y: Any, goal: str = "ab", target: Any = None,
                 n: int = 1) -> torch.Tensor:
    """Per-sample success ``(N,)`` bool of ``goal`` (``"ab"``, ``"abn"`` with ``n``, ``"sa"``)."""
    z, y = _tensor(logits), _tensor(y).long()
    if z.dim() != 2 or y.shape != z.shape[:1]:
        raise ShapeError(f"goal_reached: expected logits (N, K) and labels (N,), got "
                         f"{tuple(z.shape)} and {tuple(y.shape)}")
    if goal == "ab":
        return z.argmax(1) != y
    if goal == "abn":
        if not 1 <= n <= z.shape[1]:
            raise ConfigError(f"goal_reached: n must be in [1, {z.shape[1]}], got {n}")
        return ~(z.topk(n, dim=1).indices == y[:, None]).any(1)
    if goal == "sa":
        if target is None:
            raise ConfigError("goal_reached: goal 'sa' needs target classes")
        return z.argmax(1) == _tensor(target).long()
    raise ConfigError(f"goal must be one of {GOALS}, got {goal!r}")


def success_rate(logits: Any, y: Any, goal: str = "ab", target: Any = None, n: int = 1) -> float:
    """Percentage of samples whose adversarial logits reach ``goal``."""
    hit = goal_reached(logits, y, goal, target, n)
    return 100.0 * float(hit.float().mean()) if len(hit) else float("nan")


def robust_accuracy(logits: Any, y: Any) -> float:
    """Top-1 accuracy (%) on adversarial inputs."""
    return 100.0 - success_rate(logits, y, "ab")


@dataclass
class PerceptualReport:
    """Per-sample perceptual metrics (arrays ``(N,)``) and their summary over samples."""

    per_sample: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """Mean over samples of every metric (``*_max`` keys: max), tails and pooled fractions.

        See the module doc: ``joint_frames*`` counts are summed, the per-clip
        maxima of :data:`TAIL_KEYS` get ``_mean``/``_median``/``_p95`` over
        clips, and ``joint_frames_over_<t>mm_pct`` pools the counts.
        """
        out: dict[str, float] = {}
        for key, val in self.per_sample.items():
            finite = val[np.isfinite(val)]
            if key.startswith(COUNT_PREFIX):
                out[key] = float(finite.sum())
            elif not len(finite):
                out[key] = float("nan")
            else:
                out[key] = float(finite.max() if key.endswith("_max") else finite.mean())
        for key in TAIL_KEYS:
            if key not in self.per_sample:
                continue
            finite = self.per_sample[key][np.isfinite(self.per_sample[key])]
            stats = ((finite.mean(), *np.percentile(finite, [50.0, 95.0])) if len(finite)
                     else (np.nan,) * 3)
            out.update({f"{key}_{name}": float(v) for name, v in zip(("mean", "median", "p95"),
                                                                       stats)})
        total = out.get(COUNT_PREFIX, 0.0)
        for thr in DISPLACEMENT_THRESHOLDS_MM:
            key = frames_over_key(thr)
            if key in out:
                out[f"{key}_pct"] = 100.0 * out[key] / total if total > 0 else float("nan")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(),
                "per_sample": {k: v.tolist() for k, v in self.per_sample.items()}}


def _masked_stats(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (mean, max) of ``values`` over ``mask`` (both ``(N, ...)``); NaN where empty."""
    n = values.shape[0]
    v, m = values.reshape(n, -1), np.broadcast_to(mask, values.shape).reshape(n, -1)
    count = m.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, (v * m).sum(1) / np.maximum(count, 1), np.nan)
    mx = np.where(count > 0, np.where(m, v, -np.inf).max(1, initial=-np.inf), np.nan)
    return mean, mx


def perceptual_report(clean: Any, adv: Any, skeleton: Skeleton | str,
                      lengths: Any = None, fps: float = 30.0,
                      touched_mm: float = 0.0) -> PerceptualReport:
    """Compare clean and adversarial motion ``(N, 3, T, V, M)`` (metres); see the module doc."""
    skel = get_skeleton(skeleton)
    q = _tensor(clean).double().cpu().numpy()
    qa = _tensor(adv).double().cpu().numpy()
    if q.shape != qa.shape or q.ndim != 5 or q.shape[1] != 3:
        raise ShapeError(f"perceptual_report: expected two motions of the same shape "
                         f"(N, 3, T, V, M), got {q.shape} and {qa.shape}")
    skel.check_motion(q)
    if fps <= 0:
        raise ConfigError(f"perceptual_report: fps must be > 0, got {fps}")
    n, t = q.shape[0], q.shape[2]
    lengths = np.full(n, t) if lengths is None else np.asarray(_tensor(lengths).cpu(), np.int64)
    in_clip = np.arange(t)[None, :] < lengths[:, None]  # (N, T)
    present = np.abs(q).sum(axis=(1, 3)) > 0  # (N, T, M) body present in the clean frame
    valid = in_clip[:, :, None] & present  # (N, T, M)

    delta = qa - q
    disp = np.sqrt((delta ** 2).sum(1)) * 1e3  # (N, T, V, M) mm
    out: dict[str, np.ndarray] = {}
    out["joint_mm_mean"], out["joint_mm_max"] = _masked_stats(disp, valid[:, :, None, :])

    bl, bla = skel.bone_lengths(q), skel.bone_lengths(qa)  # (N, T, B, M)
    real_bone = bl > 1e-6
    with np.errstate(invalid="ignore", divide="ignore"):
        bone_pct = np.where(real_bone, np.abs(bla - bl) / np.where(real_bone, bl, 1.0), 0) * 100
    out["bone_pct_mean"], out["bone_pct_max"] = _masked_stats(
        bone_pct, valid[:, :, None, :] & real_bone)

    if len(skel.angle_triplets):
        ang = np.abs(skel.joint_angles(qa, degrees=True, eps=0.0)
                     - skel.joint_angles(q, degrees=True, eps=0.0))
        tri = skel.angle_triplets
        nondegenerate = (np.linalg.norm(q[:, :, :, tri[:, 0]] - q[:, :, :, tri[:, 1]], axis=1)
                         > 1e-6) & (np.linalg.norm(q[:, :, :, tri[:, 2]] - q[:, :, :, tri[:, 1]],
                                                   axis=1) > 1e-6)
        out["angle_deg_mean"], out["angle_deg_max"] = _masked_stats(
            ang, valid[:, :, None, :] & nondegenerate)

    for order, name in ((1, "velocity_mm_s"), (2, "acceleration_mm_s2")):
        if t <= order:
            out[f"{name}_mean"] = out[f"{name}_max"] = np.full(n, np.nan)
            continue
        dev = np.diff(delta, n=order, axis=2) * fps ** order  # (N, 3, T-order, V, M) m/s^n
        dev = np.sqrt((dev ** 2).sum(1)) * 1e3
        ok = np.ones_like(valid[:, order:])
        for k in range(order + 1):  # all frames of the stencil valid
            ok &= valid[:, k:t - order + k]
        out[f"{name}_mean"], out[f"{name}_max"] = _masked_stats(dev, ok[:, :, None, :])

    touched = (np.abs(delta).max(axis=1) * 1e3 > touched_mm) if touched_mm > 0 else (
        (delta != 0).any(axis=1))  # (N, T, V, M)
    out["frames_touched"] = touched.any(axis=(2, 3)).sum(1).astype(np.float64)
    out["joints_touched"] = touched.any(axis=(1, 3)).sum(1).astype(np.float64)

    joint_ok = np.broadcast_to(valid[:, :, None, :], disp.shape)  # (N, T, V, M)
    out[COUNT_PREFIX] = joint_ok.sum(axis=(1, 2, 3)).astype(np.float64)
    for thr in DISPLACEMENT_THRESHOLDS_MM:
        out[frames_over_key(thr)] = ((disp > thr) & joint_ok).sum(axis=(1, 2, 3)).astype(np.float64)
    return PerceptualReport(per_sample=out)


def perceptual_rows(summary: dict[str, float]) -> list[dict[str, Any]]:
    """Rows ``metric, mean, median, p95, max`` of a :meth:`PerceptualReport.summary`.

    One row per per-clip maximum of :data:`TAIL_KEYS` (its distribution over
    clips), one for the mean joint displacement (mean over clips of each
    clip's mean) and one per displacement threshold (``mean``: the % of all
    joint-frames beyond it). Metrics absent from ``summary`` are left out;
    render with :func:`skelrobust.report.tables.format_table`.
    """
    labels = {"joint_mm_max": "joint displacement, clip max (mm)",
              "bone_pct_max": "bone-length change, clip max (%)",
              "angle_deg_max": "joint-angle change, clip max (deg)"}
    rows: list[dict[str, Any]] = [
        {"metric": labels[key], "mean": summary.get(f"{key}_mean"),
         "median": summary.get(f"{key}_median"), "p95": summary.get(f"{key}_p95"),
         "max": summary[key]}
        for key in TAIL_KEYS if key in summary]
    single = {"joint_mm_mean": "joint displacement, clip mean (mm)"}
    single.update({f"{frames_over_key(thr)}_pct": f"joint-frames moved > {thr:g} mm (%)"
                   for thr in DISPLACEMENT_THRESHOLDS_MM})
    rows += [{"metric": label, "mean": summary[key], "median": None, "p95": None, "max": None}
             for key, label in single.items() if key in summary]
    return rows
