"""A small result store written per :mod:`skelrobust.bench.schema`, for the report tests.

Synthetic clips (``ntu25``) stand in for a sweep's artifacts; the figures are chosen so the
tests know every mean and standard deviation. ``make_store(root)`` writes ``root/sweep.json``,
``root/cells/*.json`` and ``root/artifacts/*.npz`` and returns the cells by a short name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from skelrobust.bench.schema import SCHEMA, cell_id
from skelrobust.data.synthetic import generate_synthetic

FRAMES = 16
#: Success (%) of SMART-AB on stgcn at 20 mm for seeds 0 and 1: mean 85, std 7.07.
SMART_AB = (80.0, 90.0)
#: BEAT's top-1 (%) on the whole test split (its checkpoint record; its clips give 88).
BEAT_TOP1 = 87.5
#: The SMART-ABN cell's clips: the steps each used (until success or 50) and their success.
ABN_CLIPS = {"iterations": [5, 12, 12, 30, 50, 50, 50],
             "success": [True, True, True, True, True, False, False]}


def spec(model: str = "stgcn", attack: Any = "smart", goal: str = "ab",
         budget: dict[str, Any] | None = None, seed: int = 0, defense: str = "none",
         **options: Any) -> dict[str, Any]:
    """A :class:`~skelrobust.bench.schema.CellSpec` on ``synthetic``."""
    return {"dataset": "synthetic", "model": model, "size": "small", "defense": defense,
            "attack": attack, "goal": goal,
            "budget": {"budget_mm": 20} if budget is None else budget, "seed": seed,
            "clips": 8, "options": options, "defense_options": {}, "model_options": {}}


def metrics(success: float, mm: float | None = 10.0, clean: float = 90.0,
            **extra: Any) -> dict[str, Any]:
    """A cell's metrics: success %, robust accuracy consistent with it, joint mm."""
    out: dict[str, Any] = {"clips": 8, "clean_correct": 7, "clean_accuracy_pct": clean,
                           "success_pct": success,
                           "robust_accuracy_pct": clean * (1 - success / 100),
                           "queries_mean": 0.0, "iterations_mean": 50.0,
                           "perceptual": {} if mm is None else {"joint_mm_mean": mm,
                                                                "bone_pct_mean": 1.5}}
    out.update(extra)
    return out


def clean_metrics(accuracy: float) -> dict[str, Any]:
    """The metrics of an ``attack: clean`` cell: accuracy only."""
    return {"clips": 8, "clean_correct": round(accuracy * 8 / 100),
            "clean_accuracy_pct": accuracy}


def artifact(path: Path, seed: int, bodies: int = 1, shift_mm: float = 15.0) -> None:
    """Four clean/adversarial clip pairs; the last one padded after 10 frames; two fooled.
    ``bodies=2`` adds a second person 1 m to the side."""
    data = generate_synthetic(num_clips=4, num_frames=FRAMES, seed=seed)
    x = np.array(data.x)
    if bodies == 2:
        x = np.concatenate([x, x + np.array([1.0, 0, 0])[None, :, None, None, None]], axis=4)
    lengths = np.array([FRAMES, FRAMES, FRAMES, 10])
    x[3, :, 10:] = 0.0
    rng = np.random.default_rng(seed)
    x_adv = x + rng.normal(0, shift_mm / 1000 / np.sqrt(3), x.shape).astype(np.float32)
    x_adv[3, :, 10:] = 0.0
    y = np.asarray(data.y)
    names = np.array(data.class_names)
    adv_pred = np.where(np.arange(4) < 2, (y + 1) % len(names), y)
    np.savez(path, x_clean=x.astype(np.float32), x_adv=x_adv.astype(np.float32),
             lengths=lengths, y=y, clean_pred=y, adv_pred=adv_pred,
             success=np.arange(4) < 2, index=np.arange(10, 14), class_names=names,
             layout=np.array("ntu25"))


def write_cell(root: Path, cell: dict[str, Any], result: dict[str, Any] | None = None,
               clips: dict[str, Any] | None = None,
               per_clip: dict[str, list[Any]] | None = None,
               test_top1: float | None = None) -> str:
    """Write ``cells/<id>.json`` (``result``: the metrics, or ``None`` for a failed cell);
    ``clips``: :func:`artifact`'s arguments to save ``artifacts/<id>.npz`` too;
    ``test_top1``: the checkpoint's accuracy on the whole test split."""
    cid = cell_id(cell)
    record: dict[str, Any] = {"schema": SCHEMA, "id": cid, "sweep": "fixture", "cell": cell,
                              "attempts": 1, "started": "2025-01-01T00:00:00Z",
                              "finished": "2025-01-01T00:00:05Z", "seconds": 5.0,
                              "threads": 1, "machine": {},
                              "checkpoint": {"path": "checkpoints/x", "test_top1": test_top1}}
    if result is None:
        record.update(status="failed", attempts=3, error={
            "type": "RuntimeError", "message": "out of memory\nmore detail",
            "traceback": "Traceback (most recent call last): ..."})
    else:
        record.update(status="ok", error=None, metrics=result, per_clip=per_clip or {})
    if clips is not None:
        (root / "artifacts").mkdir(exist_ok=True)
        artifact(root / "artifacts" / f"{cid}.npz", **clips)
        record["artifacts"] = {"adversarial": f"artifacts/{cid}.npz"}
    (root / "cells").mkdir(parents=True, exist_ok=True)
    (root / "cells" / f"{cid}.json").write_text(json.dumps(record))
    return cid


def queries_curve(scale: float) -> list[dict[str, float]]:
    """BASAR's recorded curve: success rises and distance falls with the queries."""
    return [{"queries": q, "success_pct": min(100.0, s * scale), "joint_mm_mean": mm * scale}
            for q, s, mm in ((500, 40, 90), (1000, 60, 70), (2000, 80, 55), (5000, 90, 40))]


def make_store(root: Path) -> dict[str, str]:
    """The fixture sweep; returns ``name -> cell id``."""
    ids: dict[str, str] = {}
    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.json").write_text(json.dumps({"schema": "skelrobust.sweep/1",
                                                 "name": "fixture"}))
    for seed, success in enumerate(SMART_AB):
        ids[f"smart-ab-{seed}"] = write_cell(root, spec(seed=seed), metrics(
            success, mm=12.0 + seed, curves={"iterations": [
                {"iterations": i, "success_pct": success * f} for i, f in
                ((10, 0.3), (50, 0.8), (100, 1.0))]}),
            clips={"seed": seed, "bodies": 2 if seed else 1})
    for goal, success in (("abn", 70.0), ("sa", 50.0)):
        ids[f"smart-{goal}"] = write_cell(root, spec(goal=goal), metrics(success, mm=20.0),
                                          per_clip=ABN_CLIPS if goal == "abn" else None)
    ids["agcn-ab"] = write_cell(root, spec("agcn"), metrics(95.0, mm=8.0))
    ids["agcn-sa-0"] = write_cell(root, spec("agcn", goal="sa"), metrics(60.0, mm=25.0))
    ids["agcn-sa-failed"] = write_cell(root, spec("agcn", goal="sa", seed=1), None)
    for mm, success in ((5, 20.0), (10, 55.0)):
        ids[f"smart-{mm}mm"] = write_cell(root, spec(budget={"budget_mm": mm}),
                                          metrics(success, mm=mm * 0.6))
    for seed in (0, 1):
        ids[f"basar-{seed}"] = write_cell(
            root, spec(attack="basar", budget={"max_queries": 5000}, seed=seed),
            metrics(90.0 * (1 + seed / 10), mm=40.0, queries_mean=3000.0,
                    curves={"queries": queries_curve(1 + seed / 10)}),
            clips={"seed": 10 + seed, "shift_mm": 40.0} if seed == 0 else None)
    ids["clean"] = write_cell(root, spec(attack="clean", goal="ab", budget={}),
                              clean_metrics(92.0))
    beat = {"test_top1": BEAT_TOP1}
    ids["beat-clean"] = write_cell(root, spec(attack="clean", goal="ab", budget={},
                                              defense="beat"), clean_metrics(88.0), **beat)
    ids["beat-smart"] = write_cell(root, spec(defense="beat"), metrics(30.0, mm=18.0,
                                                                        clean=88.0), **beat)
    ids["beat-basar"] = write_cell(root, spec(attack="basar", budget={"max_queries": 5000},
                                              defense="beat"), metrics(25.0, mm=60.0, clean=88.0),
                                   **beat)
    ids["transfer-agcn-stgcn"] = write_cell(root, spec("stgcn", surrogate="agcn"),
                                            metrics(35.0))
    ids["transfer-stgcn-agcn"] = write_cell(root, spec("agcn", surrogate="stgcn"),
                                            metrics(45.0))
    return ids
