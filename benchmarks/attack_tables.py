"""Markdown tables of ``benchmarks/results/attack_zoo.json`` for ``docs/BENCHMARKS.md``."""

from __future__ import annotations

from typing import Any

from common import update_section
from skelrobust.report.tables import format_table
from zoo_accuracy import MODELS

GOAL_COLUMNS = {"ab": "AB %", "abn-3": "ABN-3 %", "abn-5": "ABN-5 %", "sa": "SA %"}
PERCEPTUAL = {"joint_mm_mean": "joint mm", "joint_mm_max": "joint max mm",
              "bone_pct_mean": "bone %", "angle_deg_mean": "angle deg",
              "velocity_mm_s_mean": "vel mm/s", "acceleration_mm_s2_mean": "acc mm/s²",
              "frames_touched": "frames", "joints_touched": "joints"}
TITLES = {
    "smart": ("SMART (Wang et al., CVPR 2021): success per goal and perceptual cost",
              "1000 steps at most with per-sample early stop, step 0.5 mm RMS, w = 0.6, "
              "α = 0.3, β = (0.6, 0, 0.4); SA targets drawn at random per clip. Goal: AB ≥ 95 % "
              "with mean joint displacement ≤ 20 mm and mean bone-length change ≤ 2 %."),
    "ciasa": ("CIASA (Liu et al., TNNLS 2020): success and perceptual cost",
              "L∞ 20 mm, 200 steps of 1 mm (sign), joint angles within 30° of the clean "
              "bone directions, bone lengths re-projected every step, temporal smoothing, "
              "GAN regulariser (weight 0.1) with a bone-direction discriminator trained on "
              "the training clips; per-sample early stop."),
    "pgd": ("PGD (Madry et al., ICLR 2018): success and perceptual cost",
            "L∞ 10 mm, 50 steps of 0.5 mm, random start, no early stop (the budget is "
            "used up), cross-entropy loss; no perceptual constraint."),
}


def _order(dataset: str, model: str) -> tuple[str, int, str]:
    """Datasets alphabetically, models in the zoo's order (as in the accuracy table)."""
    return dataset, MODELS.index(model) if model in MODELS else len(MODELS), model


def _cells(store: dict[str, Any], attack: str) -> list[dict[str, Any]]:
    return [c for c in store.get("cells", {}).values() if c.get("attack") == attack]


def success_table(cells: list[dict[str, Any]]) -> str:
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for c in cells:
        row = by_key.setdefault((c["dataset"], c["model"]),
                                {"dataset": c["dataset"], "model": c["model"]})
        row[GOAL_COLUMNS.get(c["goal"], c["goal"])] = c["success_rate"]
        row["clips"] = c["samples"]
    goals = [g for g in GOAL_COLUMNS.values() if any(g in r for r in by_key.values())]
    rows = [by_key[k] for k in sorted(by_key, key=lambda k: _order(*k))]
    return format_table(rows, ["dataset", "model", *goals, "clips"], fmt="markdown")


def perceptual_table(cells: list[dict[str, Any]], check_goal: bool) -> str:
    rows = []
    for c in sorted(cells, key=lambda c: (c["goal"], *_order(c["dataset"], c["model"]))):
        row = {"dataset": c["dataset"], "model": c["model"], "goal": c["goal"],
               "success %": c["success_rate"], "iterations": c["iterations_mean"],
               "s": c["seconds"], "threads": c.get("threads")}
        row.update({name: c.get("perceptual", {}).get(key) for key, name in PERCEPTUAL.items()})
        if check_goal and c["goal"] == "ab":
            met = (c["success_rate"] >= 95 and (row["joint mm"] or 1e9) <= 20
                   and (row["bone %"] or 1e9) <= 2)
            row["goal"] = "ab: met" if met else "ab: not met"
        rows.append(row)
    columns = ["dataset", "model", "goal", "success %", *PERCEPTUAL.values(), "iterations", "s",
               "threads"]
    return format_table(rows, columns, fmt="markdown")


def transfer_tables(store: dict[str, Any]) -> str:
    parts = []
    for key, rows in sorted(store.get("transfer", {}).items()):
        dataset, run = key.split("/")
        victims = [k for k in rows[0] if k != "surrogate"]
        parts.append(f"**{dataset}, adversarial motions of `{run}`** (rows: surrogate "
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
        update_section(f"attack_{attack}", (
            f"### {title}\n\n{setting} Attacked clips: {sets}. Success is % of those clips; "
            "the perceptual report (mm, % of the clean bone length, degrees, mm/s, mm/s², "
            "frames and joints touched) averages the successful clips; `s` is the wall time of the "
            "cell with `threads` torch threads.\n\n"
            f"{success_table(cells)}\n{perceptual_table(cells, attack == 'smart')}\n"
            f"{where}\n\n{how}\n"))
    transfer = transfer_tables(store)
    if transfer:
        update_section("attack_transfer", (
            "### Transfer attacks: surrogate × victim\n\n"
            "The adversarial motions crafted white-box on each surrogate (same clips for "
            "every model, all classified correctly by every victim) replayed on every other "
            f"model. {sets}.\n\n{transfer}\n{where}\n\n"
            "Command: `python benchmarks/attack_zoo.py` (transfer needs no extra crafting)\n"))
