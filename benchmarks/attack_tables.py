"""Markdown tables of ``benchmarks/results/attack_zoo.json`` for ``docs/BENCHMARKS.md``."""

from __future__ import annotations

import math
from typing import Any

from common import update_section
from skelrobust.metrics import DISPLACEMENT_THRESHOLDS_MM, frames_over_key
from skelrobust.report.tables import format_table
from zoo_accuracy import MODELS

GOAL_COLUMNS = {"ab": "AB %", "abn-3": "ABN-3 %", "abn-5": "ABN-5 %", "sa": "SA %"}
# Perceptual summary key -> column. "peak": each clip's largest value (its max over joints and
# frames), described over the successful clips by its median (p50), 95th percentile and max.
PERCEPTUAL = {"joint_mm_mean": "joint mm", "joint_mm_max_median": "peak mm p50",
              "joint_mm_max_p95": "peak mm p95", "joint_mm_max": "peak mm max",
              **{f"{frames_over_key(t)}_pct": f"> {t:g} mm %" for t in DISPLACEMENT_THRESHOLDS_MM},
              "bone_pct_mean": "bone %", "bone_pct_max_median": "peak bone % p50",
              "bone_pct_max_p95": "peak bone % p95", "bone_pct_max": "peak bone % max",
              "angle_deg_mean": "angle deg", "velocity_mm_s_mean": "vel mm/s",
              "acceleration_mm_s2_mean": "acc mm/s²", "frames_touched": "frames",
              "joints_touched": "joints"}
NOT_STORED = "–"  # a figure the cell's summary predates (NaN, no successful clip, shows "-")
# Budget norms in table order; cells that store no norm ran with the old default, L∞.
NORMS = {"linf": "L∞", "joint": "joint", "l2": "L2"}
# Budget (mm) of cells that store none: the attack's default when they ran.
DEFAULT_BUDGET_MM = {"pgd": 10.0, "ciasa": 20.0}
TAILS_NOTE = ("Means hide the tails: `peak mm` is each successful clip's largest joint "
              "displacement and `peak bone %` its largest bone-length change, given as the "
              "median (p50), 95th percentile and max over those clips; "
              + " and ".join(f"`> {t:g} mm %`" for t in DISPLACEMENT_THRESHOLDS_MM)
              + " are the % of all their joint-frames (valid frames × joints × bodies) moved "
              f"further than that. `{NOT_STORED}`: not recorded (the cell ran "
              "before these figures existed); `-`: no successful clip.")
NORM_NOTE = ("`budget`: the norm and radius of each row's perturbation budget: `L∞` bounds "
             "every coordinate (a joint may move √3 times the radius; every cell that stores "
             "no norm ran with it, the old default), `joint` bounds how far each joint moves "
             "at each frame, `L2` the whole clip's displacement.")
TITLES = {
    "smart": ("SMART (Wang et al., CVPR 2021): success per goal and perceptual cost",
              "Preset `legacy` (derivatives per frame, means over frames): 1000 steps at most "
              "with per-sample early stop, step 0.5 mm RMS, w = 0.6, "
              "α = 0.3, β = (0.6, 0, 0.4); SA targets drawn at random per clip. Goal: AB ≥ 95 % "
              "with mean joint displacement ≤ 20 mm and mean bone-length change ≤ 2 %."),
    "ciasa": ("CIASA (Liu et al., TNNLS 2020): success and perceptual cost",
              "Budget per row (`budget`), 200 steps of 1 mm (sign), joint angles within 30° "
              "of the clean bone directions, bone lengths re-projected every step, temporal "
              "smoothing, GAN regulariser (weight 0.1) with a bone-direction discriminator "
              "trained on the training clips; per-sample early stop."),
    "pgd": ("PGD (Madry et al., ICLR 2018): success and perceptual cost",
            "Budget per row (`budget`), 50 steps of 0.5 mm, random start, no early stop "
            "(the budget is used up), cross-entropy loss; no perceptual constraint."),
}


def _order(dataset: str, model: str) -> tuple[str, int, str]:
    """Datasets alphabetically, models in the zoo's order (as in the accuracy table)."""
    return dataset, MODELS.index(model) if model in MODELS else len(MODELS), model


PRESET_RUN = "smart-ab-"  # runs "smart-ab-<preset>[-bones]": SMART AB per preset (own section)


def _cells(store: dict[str, Any], attack: str) -> list[dict[str, Any]]:
    return [c for c in store.get("cells", {}).values() if c.get("attack") == attack
            and not c.get("run", "").startswith(PRESET_RUN)]


def preset_of(cell: dict[str, Any]) -> str:
    """``"paper"``, ``"legacy + exact bones"``, ... from a preset run's name."""
    name = cell["run"][len(PRESET_RUN):]
    return name.replace("-bones", " + exact bones")


def presets_section(store: dict[str, Any]) -> str:
    """SMART AB per preset on one clip set: success per model, then the perceptual rows."""
    cells = [c for c in store.get("cells", {}).values()
             if c.get("run", "").startswith(PRESET_RUN)]
    if not cells:
        return ""
    presets = list(dict.fromkeys(preset_of(c) for c in sorted(cells, key=lambda c: c["run"])))
    by_model: dict[tuple[str, str], dict[str, Any]] = {}
    for c in cells:
        row = by_model.setdefault((c["dataset"], c["model"]),
                                  {"dataset": c["dataset"], "model": c["model"]})
        row[preset_of(c)] = c["success_rate"]
    rows = [by_model[k] for k in sorted(by_model, key=lambda k: _order(*k))]
    success = format_table(rows, ["dataset", "model", *presets], fmt="markdown")
    per_rows = []
    for c in sorted(cells, key=lambda c: (_order(c["dataset"], c["model"]),
                                          presets.index(preset_of(c)))):
        per = c.get("perceptual", {})
        per_rows.append({"dataset": c["dataset"], "model": c["model"], "preset": preset_of(c),
                         "success %": c["success_rate"],
                         **{name: _figure(per, key) for key, name in PERCEPTUAL.items()},
                         "iterations": c["iterations_mean"], "s": c["seconds"],
                         "threads": c.get("threads")})
    columns = ["dataset", "model", "preset", "success %", *PERCEPTUAL.values(), "iterations",
               "s", "threads"]
    return success + "\n" + format_table(per_rows, columns, fmt="markdown")


def budget_of(cell: dict[str, Any]) -> tuple[str, float | None]:
    """``(norm, budget_mm)`` of a cell: stored in its summary, else its arguments, else defaults.

    ``budget_mm`` is ``None`` for an unbudgeted attack (SMART by default).
    """
    args = cell.get("arguments") or {}
    norm = cell.get("norm") or args.get("norm") or "linf"
    default = DEFAULT_BUDGET_MM.get(cell.get("attack", ""))
    budget = cell.get("budget_mm", args.get("budget_mm", default))
    return norm, budget


def budget_label(cell: dict[str, Any]) -> str:
    norm, budget = budget_of(cell)
    return "none" if budget is None else f"{NORMS.get(norm, norm)} {budget:g} mm"


def _budget_order(cell: dict[str, Any]) -> tuple[int, float]:
    """L∞ rows first (the stored history), then the joint and L2 rows of the same model."""
    norm, budget = budget_of(cell)
    return list(NORMS).index(norm) if norm in NORMS else len(NORMS), budget or 0.0


def _has_budget(cells: list[dict[str, Any]]) -> bool:
    return any(budget_of(c)[1] is not None for c in cells)


def success_table(cells: list[dict[str, Any]]) -> str:
    """Success % per goal; one row per dataset, model and budget (norm and radius)."""
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    order: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    for c in cells:
        key = (c["dataset"], c["model"], budget_label(c))
        row = by_key.setdefault(key, {"dataset": c["dataset"], "model": c["model"],
                                      "budget": key[2]})
        order[key] = (*_order(c["dataset"], c["model"]), *_budget_order(c))
        row[GOAL_COLUMNS.get(c["goal"], c["goal"])] = c["success_rate"]
        row["clips"] = c["samples"]
    goals = [g for g in GOAL_COLUMNS.values() if any(g in r for r in by_key.values())]
    rows = [by_key[k] for k in sorted(by_key, key=order.__getitem__)]
    budget = ["budget"] if _has_budget(cells) else []
    return format_table(rows, ["dataset", "model", *budget, *goals, "clips"], fmt="markdown")


def _figure(perceptual: dict[str, Any], key: str) -> Any:
    """A stored perceptual figure, or :data:`NOT_STORED` when the cell predates the key."""
    return perceptual.get(key, NOT_STORED)


def _at_most(value: Any, bound: float) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value) and value <= bound


def perceptual_table(cells: list[dict[str, Any]], check_goal: bool) -> str:
    """Perceptual cost per cell (means, the tails of the per-clip peaks), budget and cost."""
    rows = []
    for c in sorted(cells, key=lambda c: (c["goal"], *_order(c["dataset"], c["model"]),
                                          *_budget_order(c))):
        per = c.get("perceptual", {})
        row = {"dataset": c["dataset"], "model": c["model"], "goal": c["goal"],
               "budget": budget_label(c), "success %": c["success_rate"],
               "iterations": c["iterations_mean"], "s": c["seconds"], "threads": c.get("threads")}
        row.update({name: _figure(per, key) for key, name in PERCEPTUAL.items()})
        if check_goal and c["goal"] == "ab":
            met = (c["success_rate"] >= 95 and _at_most(row["joint mm"], 20)
                   and _at_most(row["bone %"], 2))
            row["goal"] = "ab: met" if met else "ab: not met"
        rows.append(row)
    budget = ["budget"] if _has_budget(cells) else []
    columns = ["dataset", "model", "goal", *budget, "success %", *PERCEPTUAL.values(),
               "iterations", "s", "threads"]
    return format_table(rows, columns, fmt="markdown")


def transfer_tables(store: dict[str, Any]) -> str:
    parts = []
    for key, rows in sorted(store.get("transfer", {}).items()):
        dataset, run = key.split("/")
        victims = [k for k in rows[0] if k != "surrogate"]
        crafted = store.get("cells", {}).get(f"{dataset}/{rows[0]['surrogate']}/{run}", {})
        budget = budget_label(crafted) if crafted else "none"
        budget = "" if budget == "none" else f", budget {budget}"
        parts.append(f"**{dataset}, adversarial motions of `{run}`{budget}** (rows: surrogate "
                     "the motion was crafted on; columns: victim; AB success %, the diagonal "
                     "is white-box)\n\n" + format_table(rows, ["surrogate", *victims],
                                                        fmt="markdown"))
    return "\n".join(parts)


def write_attack_sections(store: dict[str, Any]) -> None:
    info = store.get("machine", {})
    where = (f"Machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, torch "
             f"{info.get('torch', '?')}, {info.get('date', '?')}.")
    sets = ", ".join(f"{d}: {s['samples']} test clips (seed {s['seed']}) that all of "
                     f"{len(s['models'])} models classify correctly"
                     for d, s in sorted(store.get("sets", {}).items()))
    commands = sorted({c["command"] for c in store.get("cells", {}).values()})
    how = "Commands: " + "; ".join(f"`{c}`" for c in commands) if commands else ""
    for attack, (title, setting) in TITLES.items():
        cells = _cells(store, attack)
        if not cells:
            continue
        norms = f" {NORM_NOTE}" if _has_budget(cells) else ""
        update_section(f"attack_{attack}", (
            f"### {title}\n\n{setting} Attacked clips: {sets}. Success is % of those clips; "
            "the perceptual report (mm, % of the clean bone length, degrees, mm/s, mm/s², "
            "frames and joints touched) averages the successful clips; `s` is the wall time of the "
            f"cell with `threads` torch threads.{norms} {TAILS_NOTE}\n\n"
            f"{success_table(cells)}\n{perceptual_table(cells, attack == 'smart')}\n"
            f"{where}\n\n{how}\n"))
    presets = presets_section(store)
    if presets:
        update_section("attack_smart_presets", (
            "### SMART presets: the paper, the authors' CVPR 2021 code, the robustness "
            "benchmark's re-implementation, and exact bone lengths\n\n"
            "AB on the 16 NW-UCLA test clips that every retrained zoo checkpoint classifies "
            "correctly. `legacy`: this library's SMART before the presets (derivatives per "
            "frame, means over frames; the stored SMART table above ran with it); `paper`: "
            "Eqs. 1-4 with derivatives per second at 30 fps, sums over frames (the default); "
            "`cvpr2021-code`: the authors' release (step normalised per frame, 0.4/0.18/0.42, "
            "spine joints weighted twice); `benchmark`: yunfengdiao's Skeleton-Robustness-"
            "Benchmark (200 steps, ±10 mm per coordinate); `+ exact bones`: the motion "
            "re-projected onto the clean bone lengths after every step "
            "(`keep_bone_lengths=True`). See docs/DESIGN-NOTES.md (SMART presets). Wall times "
            f"ran beside other jobs (load 2.5-3.4 on 2 cores). {TAILS_NOTE}\n\n"
            f"{presets}\n{where}\n\n"
            "Command: the `smart-ab-<preset>` runs of `python benchmarks/attack_zoo.py "
            "--datasets nw-ucla --samples 16 --threads 1` on the clip set of all 10 retrained "
            "checkpoints.\n"))
    transfer = transfer_tables(store)
    if transfer:
        update_section("attack_transfer", (
            "### Transfer attacks: surrogate × victim\n\n"
            "The adversarial motions crafted white-box on each surrogate (same clips for "
            "every model, all classified correctly by every victim) replayed on every other "
            f"model. {sets}.\n\n{transfer}\n{where}\n\n"
            "Command: `python benchmarks/attack_zoo.py` (transfer needs no extra crafting)\n"))
