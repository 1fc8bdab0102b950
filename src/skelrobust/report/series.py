"""The data behind the curves and the trade-off: series of points, each a :class:`Stat` per
metric over the seeds, read from the store.

A curve (:class:`Curve`) comes from one setting's ``metrics.curves[kind]`` (a list of points
the runner recorded along one run, e.g. success at every query budget); for iterations, from
the clips' iteration counts when the attack stops at success (``per_clip``: the share fooled
within ``i`` steps); or from cells that differ only in one budget key (``max_queries``,
``steps``, ``budget_mm``). The trade-off
(:func:`tradeoff`) puts each defense's clean accuracy beside its robust accuracy under each
attack setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from skelrobust.report.aggregate import Stat, group, summarize
from skelrobust.report.collect import (
    SURROGATE_KEYS,
    Cell,
    budget_label,
    finite,
    options_label,
    setting_key,
)

__all__ = ["CURVES", "METRICS", "Curve", "CurveKind", "TradeoffPoint", "classifier_key",
           "clean_accuracy", "curves", "describe", "tradeoff"]

#: Metrics of a curve point: name -> the path of the same figure in a cell's metrics.
METRICS = {"success_pct": "success_pct", "joint_mm_mean": "perceptual.joint_mm_mean",
           "robust_accuracy_pct": "robust_accuracy_pct"}
#: The most points of a curve read from the clips' iteration counts.
MAX_POINTS = 60


@dataclass(frozen=True)
class CurveKind:
    """``x``: the x key of ``metrics.curves[name]`` points; ``budget``: the key of the budget
    (or of the attack options) whose values, across cells, also make this curve; ``axis``:
    the x axis's label."""

    name: str
    x: str
    budget: str
    axis: str


CURVES = {k.name: k for k in (
    CurveKind("queries", "queries", "max_queries", "queries"),
    CurveKind("iterations", "iterations", "steps", "iterations"),
    CurveKind("budget", "budget_mm", "budget_mm", "perturbation budget (mm)"),
)}


def describe(cell: Cell, skip: str | None = None,
             hide: tuple[str, ...] = ()) -> dict[str, str]:
    """The fields that name a cell's setting in a table row or a legend (no seed): the model
    and the defense with their options in brackets, the attack's options (but ``hide``), the
    clips. ``skip``: a budget key left out (the one a curve sweeps)."""
    def named(name: str, options: Any) -> str:
        text = options_label(options if isinstance(options, dict) else None)
        return f"{name} ({text})" if text else name

    out = {"dataset": cell.get("dataset"),
           "model": named(cell.get("model"), cell.spec.get("model_options")),
           "size": cell.get("size", ""),
           "defense": named(cell.defense, cell.spec.get("defense_options")),
           "attack": cell.attack, "goal": cell.get("goal", ""),
           "budget": budget_label(cell.budget, skip=skip),
           "options": options_label(cell.options, hide=(*SURROGATE_KEYS, *hide,
                                                        *([skip] if skip else []))),
           "clips": cell.get("clips", "")}
    if cell.surrogate is not None:
        out["surrogate"] = cell.surrogate
    return out


@dataclass(frozen=True)
class Curve:
    """One line: ``points`` ``[(x, {metric: Stat})]`` sorted by x, of the setting ``fields``;
    ``step``: a step function (each value holds until the next point)."""

    kind: CurveKind
    fields: dict[str, str]
    points: list[tuple[float, dict[str, Stat]]]
    step: bool = False

    def has(self, metric: str) -> bool:
        return any(stats[metric].n for _, stats in self.points)


def _point(source: dict[str, Any] | Cell) -> dict[str, float | None]:
    if isinstance(source, Cell):
        return {name: source.value(path) for name, path in METRICS.items()}
    return {name: finite(source.get(name)) for name in METRICS}


def _curve(kind: CurveKind, fields: dict[str, str],
           values: dict[float, list[dict[str, float | None]]], failed: dict[float, int]
           ) -> Curve | None:
    xs = sorted(set(values) | set(failed))
    if len(xs) < 2:
        return None
    points = [(x, {m: Stat.of((v[m] for v in values.get(x, [])), failed.get(x, 0))
                   for m in METRICS}) for x in xs]
    return Curve(kind, fields, points)


def _recorded(cells: Sequence[Cell], kind: CurveKind) -> list[Curve]:
    """Curves from ``metrics.curves[kind]``, one per setting, points merged over seeds."""
    out = []
    for members in group(cells, setting_key).values():
        values: dict[float, list[dict[str, float | None]]] = {}
        for cell in members:
            for pt in cell.metrics.get("curves", {}).get(kind.name, []) if cell.ok else []:
                x = finite(pt.get(kind.x)) if isinstance(pt, dict) else None
                if x is not None:
                    values.setdefault(x, []).append(_point(pt))
        failed = sum(not c.ok for c in members)
        curve = _curve(kind, describe(members[0]), values, dict.fromkeys(values, failed))
        if curve is not None:
            out.append(curve)
    return out


def _clip_iterations(cell: Cell) -> tuple[np.ndarray, np.ndarray] | None:
    """``(iterations, success)`` of a cell's attacked clips when the attack stopped at success
    (the successful clips used at least two different iteration counts), else ``None``."""
    its, ok = cell.per_clip.get("iterations"), cell.per_clip.get("success")
    if not cell.ok or not isinstance(its, list) or not isinstance(ok, list) or (
            len(its) != len(ok) or not its):
        return None
    try:
        iterations, success = np.asarray(its, dtype=float), np.asarray(ok, dtype=bool)
    except (TypeError, ValueError):
        return None
    return (iterations, success) if len(np.unique(iterations[success])) > 1 else None


def _from_clips(cells: Sequence[Cell], kind: CurveKind) -> list[Curve]:
    """Success within ``i`` iterations, from each clip's iteration count and success
    (``per_clip``): the share of attacked clips fooled after at most ``i`` steps."""
    out = []
    for members in group(cells, setting_key).values():
        runs = [r for r in (_clip_iterations(c) for c in members) if r is not None]
        if not runs:
            continue
        top = max(float(its.max()) for its, _ in runs)
        grid = np.unique(np.concatenate([[0.0, top], *(its[ok] for its, ok in runs)]))
        if len(grid) > MAX_POINTS:
            grid = np.unique(np.round(np.linspace(0.0, top, MAX_POINTS)))
        values = {float(x): [{**dict.fromkeys(METRICS), "success_pct": 100.0 * float(
            (ok & (its <= x)).mean())} for its, ok in runs] for x in grid}
        failed = sum(not c.ok for c in members)
        curve = _curve(kind, describe(members[0]), values, dict.fromkeys(values, failed))
        if curve is not None:
            out.append(replace(curve, step=True))
    return out


def _swept(cells: Sequence[Cell], kind: CurveKind) -> list[Curve]:
    """Curves across cells that differ only in ``kind.budget`` (a key of the budget, or of the
    attack options) and their seed."""
    out = []
    for members in group(cells, lambda c: setting_key(c, skip=kind.budget)).values():
        values: dict[float, list[dict[str, float | None]]] = {}
        failed: dict[float, int] = {}
        for cell in members:
            x = finite(cell.budget.get(kind.budget, cell.options.get(kind.budget)))
            if x is None:
                continue
            if cell.ok:
                values.setdefault(x, []).append(_point(cell))
            else:
                failed[x] = failed.get(x, 0) + 1
        curve = _curve(kind, describe(members[0], skip=kind.budget), values, failed)
        if curve is not None:
            out.append(curve)
    return out


def _has_recorded(cell: Cell, kind: CurveKind) -> bool:
    return cell.ok and isinstance(cell.metrics.get("curves", {}).get(kind.name), list)


def _has_clips(cell: Cell, kind: CurveKind) -> bool:
    return kind.name == "iterations" and _clip_iterations(cell) is not None


def curves(cells: Sequence[Cell], kind: str) -> list[Curve]:
    """Every curve of ``kind`` (a key of :data:`CURVES`) the cells hold, each setting from its
    best source: the curve the runner recorded, else (iterations) the clips' iteration
    counts, else the cells across the swept budget."""
    spec = CURVES[kind]
    rest = [c for c in cells if c.attack != "clean"]
    out: list[Curve] = []
    for has, make in ((_has_recorded, _recorded), (_has_clips, _from_clips)):
        keys = {setting_key(c) for c in rest if has(c, spec)}
        out += make([c for c in rest if setting_key(c) in keys], spec)
        rest = [c for c in rest if setting_key(c) not in keys]
    return out + _swept(rest, spec)


def classifier_key(cell: Cell) -> str:
    """What identifies the classifier a cell attacked (its spec without the attack)."""
    return setting_key(cell, drop=("attack", "goal", "budget", "options", "clips"))


def _whole_split(cell: Cell) -> float | None:
    """Top-1 (%) of the cell's classifier on its whole test split (its checkpoint record)."""
    return finite(cell.checkpoint.get("test_top1")) if cell.ok else None


def clean_accuracy(cells: Sequence[Cell]) -> dict[str, Stat]:
    """Clean accuracy (%) of each classifier (:func:`classifier_key`), one value per seed: on
    its whole test split where the checkpoint records it, else on the clips of its
    ``"clean"`` cells, else on those of its first attack cell."""
    out = {}
    for key, members in group(cells, classifier_key).items():
        by_seed = group(members, lambda c: str(c.seed)).values()
        first = [next((c for c in seeds if c.ok), seeds[0]) for seeds in by_seed]
        if any(_whole_split(c) is not None for c in first):
            out[key] = summarize(first, _whole_split)
            continue
        clean = [c for c in members if c.attack == "clean"]
        out[key] = summarize(clean or first, "clean_accuracy_pct")
    return out


@dataclass(frozen=True)
class TradeoffPoint:
    """One defense under one attack setting: clean and robust accuracy (%)."""

    fields: dict[str, str]
    clean: Stat
    robust: Stat


def tradeoff(cells: Sequence[Cell]) -> list[list[TradeoffPoint]]:
    """For each attack setting run on two classifiers or more that differ in their defense,
    one point per defense (undefended first). Empty when no cell has a defense."""
    if all(c.defense == "none" for c in cells):
        return []
    accuracy = clean_accuracy(cells)
    attacked = [c for c in cells if c.attack != "clean"]
    out = []
    for members in group(attacked, lambda c: setting_key(
            c, drop=("defense", "defense_options"))).values():
        points = [TradeoffPoint(describe(seeds[0]), accuracy[classifier_key(seeds[0])],
                                summarize(seeds, "robust_accuracy_pct"))
                  for seeds in group(members, setting_key).values()]
        if len(points) > 1:
            out.append(sorted(points, key=lambda p: p.fields["defense"] != "none"))
    return out
