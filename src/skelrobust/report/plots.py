"""Plots of a sweep (PNG and SVG, matplotlib from the ``viz`` extra, imported lazily).

One figure per kind, dataset and attack (the trade-off: per dataset), only where the store
has the data: success vs iterations,
success vs perturbation budget (mm), BASAR's success and mean joint displacement vs queries,
and the defenses' accuracy–robustness trade-off (clean vs robust accuracy). Shaded bands and
error bars are ± one standard deviation over seeds. Figures are drawn on a
:class:`matplotlib.figure.Figure` (no pyplot, no global backend switch).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skelrobust.report.aggregate import Stat, group
from skelrobust.report.collect import slug
from skelrobust.report.series import CURVES, Curve, TradeoffPoint

__all__ = ["Plot", "legend_labels", "write_plots"]

log = logging.getLogger("skelrobust")

#: y axes of the curve figures: metric -> its label.
AXES = {"success_pct": "success (%)", "joint_mm_mean": "mean joint displacement (mm)"}
TITLES = {"queries": "Success and distance vs queries", "iterations": "Success vs iterations",
          "budget": "Success vs perturbation budget"}


@dataclass(frozen=True)
class Plot:
    """A figure written as ``png`` and ``svg``; ``name`` is their file stem."""

    name: str
    title: str
    png: Path
    svg: Path


def legend_labels(fields: Sequence[dict[str, str]],
                  skip: Sequence[str] = ("dataset", "attack")) -> list[str]:
    """One label per setting from the fields that differ between them (``"stgcn · beat"``),
    but ``skip`` (a figure's title says those); the attack and goal when none differ."""
    keys = [k for k in dict.fromkeys(k for f in fields for k in f) if k not in skip]
    varying = [k for k in keys if len({f.get(k) for f in fields}) > 1]
    shown = varying or [k for k in ("attack", "goal") if k in fields[0]]
    return [" · ".join(str(f.get(k, "")) for k in shown) for f in fields]


def _band(ax: Any, xs: list[float], stats: list[Stat], label: str, step: bool = False) -> None:
    """A line of means (``step``: as a step function), with a ± std band where several seeds
    give one."""
    pts = [(x, s) for x, s in zip(xs, stats) if s.n]
    if not pts:
        return
    line = ax.plot([x for x, _ in pts], [s.mean for _, s in pts], marker="" if step else "o",
                   ms=3, label=label, drawstyle="steps-post" if step else "default")[0]
    spread = [(x, s) for x, s in pts if s.n > 1]
    if spread:
        ax.fill_between([x for x, _ in spread], [s.mean - s.std for _, s in spread],
                        [s.mean + s.std for _, s in spread], color=line.get_color(), alpha=0.2,
                        lw=0, step="post" if step else None)


def _curve_figure(fig: Any, kind: str, curves: Sequence[Curve]) -> None:
    metrics = [m for m in AXES if m == "success_pct" or any(c.has(m) for c in curves)]
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    labels = legend_labels([c.fields for c in curves])
    for ax, metric in zip(axes, metrics):
        for curve, label in zip(curves, labels):
            _band(ax, [x for x, _ in curve.points], [s[metric] for _, s in curve.points], label,
                  curve.step)
        ax.set_xlabel(CURVES[kind].axis)
        ax.set_ylabel(AXES[metric])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)


def _tradeoff_figure(fig: Any, groups: Sequence[list[TradeoffPoint]]) -> None:
    ax = fig.subplots()
    labels = legend_labels([g[0].fields | {"defense": ""} for g in groups], skip=("dataset",))
    for points, label in zip(groups, labels):
        shown = [p for p in points if p.clean.n and p.robust.n]
        if not shown:
            continue
        xs, ys = [p.clean.mean for p in shown], [p.robust.mean for p in shown]
        errs = [[0.0 if p.clean.n < 2 else p.clean.std for p in shown],
                [0.0 if p.robust.n < 2 else p.robust.std for p in shown]]
        bars = ax.errorbar(xs, ys, xerr=errs[0], yerr=errs[1], fmt="o-", ms=4, capsize=2,
                           label=label)
        for p, x, y in zip(shown, xs, ys):
            ax.annotate(p.fields["defense"], (x, y), textcoords="offset points",
                        xytext=(4, 4), fontsize=7, color=bars[0].get_color())
    ax.margins(0.15)
    ax.set_xlabel("clean accuracy (%)")
    ax.set_ylabel("robust accuracy under attack (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _save(fig: Any, out: Path, name: str, title: str) -> Plot:
    import matplotlib

    fig.suptitle(title, fontsize=10)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    with matplotlib.rc_context({"svg.hashsalt": "skelrobust", "svg.fonttype": "path"}):
        fig.savefig(png, dpi=100, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return Plot(name, title, png, svg)


def write_plots(curve_sets: dict[str, list[Curve]], trade: Sequence[list[TradeoffPoint]],
                out: Path) -> list[Plot]:
    """Write every figure the data allow into ``out``; ``[]`` (and a warning) without
    matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("report: matplotlib is not installed, so no plots (pip install "
                    "'skelrobust[viz]')")
        return []
    out.mkdir(parents=True, exist_ok=True)
    plots = []
    for kind, curves in curve_sets.items():
        figures = group(curves, lambda c: (c.fields["dataset"], c.fields["attack"]))
        for (dataset, attack), members in figures.items():
            wide = 2 if any(m != "success_pct" and any(c.has(m) for c in members)
                            for m in AXES) else 1
            fig = Figure(figsize=(4.8 * wide, 3.6), layout="constrained")
            _curve_figure(fig, kind, members)
            plots.append(_save(fig, out, f"{kind}-{slug(dataset)}-{slug(attack)}",
                               f"{TITLES[kind]}: {attack} on {dataset}"))
    for dataset, groups in group(trade, lambda g: g[0].fields["dataset"]).items():
        fig = Figure(figsize=(5.4, 4.0), layout="constrained")
        _tradeoff_figure(fig, groups)
        plots.append(_save(fig, out, f"tradeoff-{slug(dataset)}",
                           f"Accuracy–robustness trade-off of the defenses ({dataset})"))
    return plots
