"""The tables of the papers, built from the store's cells (mean ± std over seeds).

- ``results``: every setting of the sweep, one row each (nothing left out);
- ``goals`` (SMART, Wang et al. CVPR 2021): success of each goal (AB / ABN / SA) and the mean
  joint displacement, per dataset × model × attack, undefended;
- ``defenses`` (BEAT, Wang et al. CVPR 2022): each classifier's clean accuracy and the success
  and millimetres of every attack, undefended and under each defense;
- ``transfer-*``: success of motion crafted on a surrogate (rows) against each victim
  (columns), the diagonal white-box;
- ``queries``, ``iterations``, ``budget`` (BASAR, Diao et al. ICCV 2021): success and mean
  joint displacement at each query budget, iteration count or budget in mm;
- ``failed``: every failed cell and its error.

Descriptor columns with one value in the whole table (e.g. ``defense`` in a sweep without
defenses) are left out; ``dataset`` and ``model`` (and mostly ``attack``) always stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from skelrobust.bench.schema import canonical_json
from skelrobust.report.aggregate import group, summarize
from skelrobust.report.collect import Cell, setting_key, slug
from skelrobust.report.series import CURVES, Curve, classifier_key, clean_accuracy, describe

__all__ = ["Table", "build_tables", "curve_table", "defense_table", "failed_table",
           "goal_table", "results_table", "transfer_tables"]

DESCRIPTORS = ("dataset", "model", "size", "defense", "surrogate", "attack", "goal", "budget",
               "options", "clips")
GOAL_NAMES = {"ab": "AB", "abn": "ABN", "sa": "SA"}
#: Attack options that belong to a goal (a goal table puts its goals side by side).
GOAL_OPTIONS = ("top_n", "target", "target_mode")
#: The most rows of one curve in a curve table (the plot shows every point).
TABLE_POINTS = 12


@dataclass
class Table:
    """A table to write: ``name`` (the file stem), a title, rows and their columns."""

    name: str
    title: str
    rows: list[dict[str, Any]]
    columns: list[str]
    note: str = ""


def _pruned(title: str, name: str, rows: list[dict[str, Any]], columns: Sequence[str],
            keep: Sequence[str] = ("dataset", "model"), note: str = "") -> Table:
    """A :class:`Table` without the descriptor columns that hold one value in every row."""
    def constant(col: str) -> bool:
        return len({str(r.get(col)) for r in rows}) <= 1

    shown = [c for c in columns if c not in DESCRIPTORS or c in keep or not constant(c)]
    return Table(name, title, rows, shown, note)


#: The figures of a results row: column -> a :meth:`Cell.value` path or a function.
FIGURES: dict[str, Any] = {
    "success %": "success_pct", "robust acc %": "robust_accuracy_pct",
    "joint mm": "perceptual.joint_mm_mean", "bone %": "perceptual.bone_pct_mean",
    "queries": "queries_mean", "iterations": "iterations_mean", "s": lambda c: c.seconds}


def results_table(cells: Sequence[Cell]) -> Table:
    """Every setting (its seeds together): clean accuracy, success, robust accuracy, joint
    displacement, bone-length change, queries, iterations and seconds. Failed seeds are
    counted in a ``failed`` column (a setting whose seeds all failed reads ``failed``)."""
    accuracy = clean_accuracy(cells)
    rows = []
    for members in group(cells, setting_key).values():
        row: dict[str, Any] = dict(describe(members[0]))
        row["seeds"] = len(members)
        row["failed"] = sum(not c.ok for c in members)
        stats = {"clean acc %": summarize(members, "clean_accuracy_pct")}
        if not stats["clean acc %"].n:
            stats["clean acc %"] = accuracy[classifier_key(members[0])]
        stats.update({name: summarize(members, metric) for name, metric in FIGURES.items()})
        row.update({k: replace(s, failed=0) if s.n else s for k, s in stats.items()})
        rows.append(row)
    figures = [k for k in ("clean acc %", *FIGURES)
               if k == "success %" or any(r[k].n for r in rows)]
    failed = ["failed"] if any(r["failed"] for r in rows) else []
    return _pruned("All results (mean ± std over seeds)", "results", rows,
                   [*DESCRIPTORS, "seeds", *failed, *figures], keep=("dataset", "model", "attack"))


def _attacks(cells: Sequence[Cell]) -> list[Cell]:
    """The attack cells of one classifier each (no ``clean`` cell, no transfer cell)."""
    return [c for c in cells if c.attack != "clean" and c.surrogate is None]


def goal_table(cells: Sequence[Cell]) -> Table | None:
    """Success (%) and mean joint displacement (mm) of each goal side by side, undefended."""
    chosen = [c for c in _attacks(cells) if c.defense == "none"]
    if not chosen:
        return None

    def row_key(cell: Cell) -> str:
        spec = {k: v for k, v in cell.spec.items() if k not in ("seed", "goal")}
        spec["options"] = {k: v for k, v in cell.options.items() if k not in GOAL_OPTIONS}
        return canonical_json(spec)

    goals = [g for g in GOAL_NAMES if any(c.spec.get("goal") == g for c in chosen)]
    goals += sorted({c.get("goal") for c in chosen} - set(goals))
    rows = []
    for members in group(chosen, row_key).values():
        row: dict[str, Any] = describe(members[0], hide=GOAL_OPTIONS)
        by_goal = group(members, lambda c: c.get("goal"))
        for goal in goals:
            name = GOAL_NAMES.get(goal, goal)
            row[f"{name} %"] = summarize(by_goal.get(goal, []), "success_pct")
            row[f"{name} mm"] = summarize(by_goal.get(goal, []), "perceptual.joint_mm_mean")
        rows.append(row)
    names = [GOAL_NAMES.get(g, g) for g in goals]
    columns = [c for c in DESCRIPTORS if c != "goal"]
    return _pruned("Attack success by goal (%), and mean joint displacement (mm)", "goals", rows,
                   [*columns, *(f"{n} %" for n in names), *(f"{n} mm" for n in names)],
                   keep=("dataset", "model", "attack"),
                   note="AB: anything but the true class; ABN: the true class out of the top "
                        "N; SA: a specified target class (SMART's goals).")


def defense_table(cells: Sequence[Cell]) -> Table | None:
    """Clean accuracy and the success (%) and mm of each attack run on a defense, for every
    model that has a defense: undefended first, then each defense."""
    def model(cell: Cell) -> tuple[str, ...]:
        return cell.get("dataset"), cell.get("model"), cell.get("size", "")

    def setting(cell: Cell) -> tuple[str, ...]:
        return cell.attack, cell.get("goal"), canonical_json(cell.budget)

    defended = [c for c in cells if c.defense != "none"]
    if not defended:
        return None
    models, settings = {model(c) for c in defended}, {setting(c) for c in _attacks(defended)}
    chosen = [c for c in cells if model(c) in models]
    attacked = [c for c in _attacks(chosen) if setting(c) in settings]
    goals = {c.get("goal") for c in attacked}
    budgets = {a: {canonical_json(c.budget) for c in attacked if c.attack == a}
               for a in {c.attack for c in attacked}}

    def label(cell: Cell) -> str:
        parts = [cell.attack] + ([cell.get("goal")] if len(goals) > 1 else [])
        if len(budgets[cell.attack]) > 1:
            parts.append(describe(cell)["budget"])
        return " ".join(parts)

    labels = list(dict.fromkeys(label(c) for c in attacked))
    accuracy = clean_accuracy(chosen)
    rows = []
    ordered = sorted(group(chosen, classifier_key).values(),
                     key=lambda m: (model(m[0]), m[0].defense != "none", m[0].defense))
    for members in ordered:
        row: dict[str, Any] = describe(members[0])
        row["clean acc %"] = accuracy[classifier_key(members[0])]
        ids = {c.id for c in members}
        by_label = group([c for c in attacked if c.id in ids], label)
        for name in labels:
            row[f"{name} success %"] = summarize(by_label.get(name, []), "success_pct")
            row[f"{name} mm"] = summarize(by_label.get(name, []), "perceptual.joint_mm_mean")
        rows.append(row)
    columns = ["dataset", "model", "size", "defense", "clean acc %",
               *(f"{n} {unit}" for n in labels for unit in ("success %", "mm"))]
    return _pruned("Clean accuracy and attack success (%, mm) before and after each defense",
                   "defenses", rows, columns, keep=("dataset", "model", "defense"),
                   note="Clean acc: top-1 on the whole test split where the checkpoint records "
                        "it, else on the sweep's clips. Success: % of the clips the classifier "
                        "gets right when clean; mm: mean joint displacement of the successful "
                        "adversarial clips.")


def transfer_tables(cells: Sequence[Cell]) -> list[Table]:
    """One matrix per (dataset, attack, goal, budget, defense): rows the surrogate the motion
    was crafted on, columns the victim; success (%). The diagonal, when the store has no
    transfer cell for it, is the white-box cell of the same attack on that model."""
    transfer = [c for c in cells if c.surrogate is not None]
    white = group(_attacks(cells), lambda c: setting_key(c, drop=("options",)))
    tables = []
    matrices = group(transfer, lambda c: setting_key(c, drop=("model", "options")))
    for members in matrices.values():
        fields = describe(members[0])
        surrogates = sorted({str(c.surrogate) for c in members})
        victims = sorted({c.get("model") for c in members})
        pairs = group(members, lambda c: (c.surrogate, c.get("model")))
        rows = []
        for source in surrogates:
            row: dict[str, Any] = {"surrogate \\ victim": source}
            for victim in victims:
                chosen = pairs.get((source, victim))
                if chosen is None and source == victim:
                    probe = {k: v for k, v in members[0].spec.items() if k != "options"}
                    probe["model"] = victim
                    chosen = white.get(setting_key(Cell("", members[0].path, probe, "ok"),
                                                   drop=("options",)))
                row[victim] = summarize(chosen or [], "success_pct")
            rows.append(row)
        what = ", ".join(f"{k} {fields[k]}" for k in ("dataset", "attack", "goal", "budget",
                                                      "defense"))
        name = "transfer-" + slug(f"{fields['dataset']} {fields['attack']} {fields['goal']}")
        tables.append(Table(name, f"Transfer success (%): {what}", rows,
                            ["surrogate \\ victim", *victims],
                            note="Rows: the model the motion was crafted on; columns: the "
                                 "victim. The diagonal is the white-box attack."))
    seen: dict[str, int] = {}
    for table in tables:  # the same slug twice (e.g. two budgets): number them
        seen[table.name] = seen.get(table.name, 0) + 1
        if seen[table.name] > 1:
            table.name += f"-{seen[table.name]}"
    return tables


def curve_table(curves: Sequence[Curve], kind: str) -> Table | None:
    """Success (%), mean joint displacement (mm) and robust accuracy at the points of every
    curve of ``kind`` (at most :data:`TABLE_POINTS` evenly spaced, the last included), one row
    per point."""
    if not curves:
        return None
    spec = CURVES[kind]
    rows = []
    for curve in curves:
        step = -(-len(curve.points) // TABLE_POINTS)  # at most TABLE_POINTS rows, the last kept
        for x, stats in curve.points[::-1][::step][::-1]:
            rows.append({**curve.fields, spec.axis: int(x) if x == int(x) else x,
                         "success %": stats["success_pct"], "joint mm": stats["joint_mm_mean"],
                         "robust acc %": stats["robust_accuracy_pct"]})
    figures = [k for k in ("success %", "joint mm", "robust acc %") if any(r[k].n for r in rows)]
    titles = {"queries": "Success and mean joint displacement at each query budget",
              "iterations": "Success and mean joint displacement at each iteration count",
              "budget": "Success and mean joint displacement at each budget (mm)"}
    return _pruned(titles[kind], kind, rows, [*DESCRIPTORS, spec.axis, *figures],
                   keep=("dataset", "model", "attack"))


def failed_table(cells: Sequence[Cell]) -> Table | None:
    """Every failed cell, its attempts and the first line of its error."""
    failed = [c for c in cells if not c.ok]
    if not failed:
        return None
    rows = []
    for cell in failed:
        error = cell.error or {}
        message = str(error.get("message", "")).strip().splitlines()
        text = f"{error.get('type', 'error')}: {message[0] if message else ''}"
        rows.append({"cell": cell.id, **describe(cell), "seed": cell.seed,
                     "attempts": cell.attempts, "error": text[:200]})
    return _pruned(f"Failed cells ({len(failed)})", "failed", rows,
                   ["cell", *DESCRIPTORS, "seed", "attempts", "error"],
                   keep=("cell", "dataset", "model", "attack"),
                   note="Their tracebacks are in the cells' JSON files.")


def build_tables(cells: Sequence[Cell], curve_sets: dict[str, list[Curve]]) -> list[Table]:
    """Every table the cells have data for, in reading order."""
    out = [results_table(cells), goal_table(cells), defense_table(cells),
           *transfer_tables(cells), *(curve_table(curve_sets.get(k, []), k) for k in CURVES),
           failed_table(cells)]
    return [t for t in out if t is not None and t.rows]
