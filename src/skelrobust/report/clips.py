"""Clean vs adversarial clips for the report's 3-D viewer, read from the cells' artifacts.

For each attack (and goal), a few clips are taken from the ``artifacts/<id>.npz`` files
(:data:`~skelrobust.bench.schema.ARTIFACT_KEYS`), successful ones first, and encoded
compactly for the page: only the real frames (``lengths``), positions as integers in units
of 0.1 mm in ``(frame, body, joint, xyz)`` order, and the adversarial clip as its
difference from the clean one (mostly small numbers). The viewer adds them back.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from skelrobust.errors import SkelRobustError
from skelrobust.report.aggregate import group
from skelrobust.report.collect import Cell, budget_label
from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = ["UNIT_MM", "encode_clip", "up_axis", "viewer_clips"]

log = logging.getLogger("skelrobust")

#: The unit of the encoded positions, in mm.
UNIT_MM = 0.1


def up_axis(clip: np.ndarray, skeleton: Skeleton) -> tuple[int, int]:
    """``(axis, sign)`` of the body's up direction in a clip ``(3, T, V, M)``: the coordinate
    that dominates the mean hip-to-spine vector of the first body (z up when undecided)."""
    hip = clip[:, :, list(skeleton.frame.hip), 0].mean(axis=2)
    spine = clip[:, :, list(skeleton.frame.spine), 0].mean(axis=2)
    present = np.abs(clip[:, :, :, 0]).sum(axis=(0, 2)) > 0
    vec = (spine - hip)[:, present].mean(axis=1) if present.any() else np.zeros(3)
    if not np.isfinite(vec).all() or np.abs(vec).max() < 1e-6:
        return 2, 1
    axis = int(np.abs(vec).argmax())
    return axis, 1 if vec[axis] > 0 else -1


def encode_clip(clean: np.ndarray, adv: np.ndarray, length: int, skeleton: Skeleton
                ) -> dict[str, Any]:
    """The viewer's data of one clip pair ``(3, T, V, M)`` in metres, cut to ``length``."""
    t = max(1, min(int(length), clean.shape[1]))
    to_units = 1000.0 / UNIT_MM
    c = np.rint(clean[:, :t].transpose(1, 3, 2, 0) * to_units).astype(np.int64)  # (T, M, V, 3)
    a = np.rint(adv[:, :t].transpose(1, 3, 2, 0) * to_units).astype(np.int64)
    axis, sign = up_axis(clean[:, :t], skeleton)
    return {"layout": skeleton.name, "parents": list(skeleton.parents), "frames": t,
            "bodies": int(clean.shape[3]), "joints": skeleton.num_joints, "unit_mm": UNIT_MM,
            "up": [axis, sign], "clean": c.ravel().tolist(), "delta": (a - c).ravel().tolist()}


def _load(cell: Cell) -> dict[str, np.ndarray] | None:
    """The arrays of a cell's artifact, or ``None`` (with a warning) when unusable."""
    try:
        with np.load(cell.artifact, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        log.warning("report: cannot read %s (%s); its clips are not shown", cell.artifact, err)
        return None
    missing = {"x_clean", "x_adv", "layout"} - set(data)
    x = data.get("x_clean")
    problem = f"lacks {sorted(missing)}" if missing else ""
    if not problem and (x.ndim != 5 or x.shape[1] != 3 or data["x_adv"].shape != x.shape):
        problem = f"holds clips of shape {x.shape} / {data['x_adv'].shape}, not (N, 3, T, V, M)"
    if not problem:
        try:
            skeleton = get_skeleton(str(data["layout"]))
        except SkelRobustError as err:
            problem = str(err)
        else:
            if skeleton.num_joints != x.shape[3]:
                problem = f"has {x.shape[3]} joints, not the {skeleton.num_joints} of its layout"
    if problem:
        log.warning("report: %s %s; its clips are not shown", cell.artifact, problem)
        return None
    return data


def _name(names: Sequence[str], data: dict[str, np.ndarray], key: str, i: int) -> str | None:
    if key not in data or i >= len(data[key]):
        return None
    label = int(data[key][i])
    return names[label] if 0 <= label < len(names) else str(label)


def _clips_of(cell: Cell, data: dict[str, np.ndarray], take: int) -> list[dict[str, Any]]:
    x, xa = data["x_clean"], data["x_adv"]
    n = len(x)
    success = data.get("success", np.zeros(n, dtype=bool)).astype(bool)
    order = [int(i) for i in np.argsort(~success[:n], kind="stable")][:take]
    lengths = data.get("lengths", np.full(n, x.shape[2]))
    names = [str(s) for s in data.get("class_names", [])]
    skeleton = get_skeleton(str(data["layout"]))
    out = []
    for i in order:
        clip = encode_clip(x[i], xa[i], int(lengths[i]), skeleton)
        index = int(data["index"][i]) if "index" in data and i < len(data["index"]) else i
        where = " · ".join([cell.get("dataset"), cell.get("model"), cell.defense,
                            budget_label(cell.budget), f"seed {cell.seed}", f"clip {index}"])
        clip.update(attack=cell.attack, goal=cell.get("goal", ""), where=where, cell=cell.id,
                    true=_name(names, data, "y", i), clean_pred=_name(names, data, "clean_pred",
                                                                      i),
                    adv_pred=_name(names, data, "adv_pred", i),
                    success=bool(success[i]) if i < len(success) else None)
        out.append(clip)
    return out


def viewer_clips(cells: Sequence[Cell], per_attack: int = 3) -> list[dict[str, Any]]:
    """Up to ``per_attack`` clips for each (attack, goal), successful ones first."""
    if per_attack <= 0:
        return []
    with_clips = [c for c in cells if c.ok and c.artifact is not None and c.attack != "clean"]
    out = []
    for members in group(with_clips, lambda c: (c.attack, c.get("goal", ""))).values():
        chosen: list[dict[str, Any]] = []
        for cell in members:
            data = _load(cell)
            if data is not None:
                chosen += _clips_of(cell, data, per_attack - len(chosen))
            if len(chosen) >= per_attack:
                break
        out += chosen
    return out
