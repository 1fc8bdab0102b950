"""Label-only attacks (BASAR, HopSkipJump) on the zoo's ``small`` checkpoints, beside SMART.

    python benchmarks/blackbox_zoo.py --datasets nw-ucla --models stgcn --runs basar-ab
    python benchmarks/blackbox_zoo.py --tables-only      # rebuild the docs from the JSON

Per dataset the attacked clips are the 16 test clips of the white-box tables
(``attack_zoo.json``: the NW-UCLA set of the retrained checkpoints, the HDM05 set);
the attacker's pool is the training split (the clips an attacker holds, with their
labels). One run of ``--queries`` (10,000) queries per clip gives the figures at every
budget of ``BUDGETS`` (``snapshot_queries``: the best motion after at most ``q``
queries). Success at a budget is re-checked on the classifier; the perceptual report
(mean joint displacement mm, bone-length change %, acceleration deviation mm/s²,
joint-angle limit violations %) averages the successful clips. Joint-angle limits are
estimated from the training clips (min/max per joint angle), the same for every row,
so clean motion has its own (small) violation rate. SMART rows are the white-box
attack on the same clips (its default preset, 1000 steps, per-sample early stop).

Cost: ``wall / victim`` is the attack's wall time over the time spent inside the
victim for its queries (measured by the oracle: the floor a label-only attack cannot
go under); ``wall / (q × t_fwd)`` uses the victim's forward time per sample measured
apart at batch 16; ``projection %`` is BASAR's manifold projection's share of the wall
time. Cells are resumable (``benchmarks/results/blackbox_zoo.json``); adversarial
motions go to ``<models>/attacks/blackbox/`` (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, store_cell, update_section
from skelrobust.attacks.joint_limits import JointLimits
from skelrobust.attacks.oracle import QueryOracle
from skelrobust.attacks.registry import create_attack
from skelrobust.attacks.running import QUERY_BATCH  # the largest batch of one victim call
from skelrobust.classifier import Classifier
from skelrobust.config import load_prepared
from skelrobust.metrics import goal_reached, perceptual_report
from skelrobust.report.tables import format_table
from zoo_accuracy import models_dir

DATASETS = ("nw-ucla", "hdm05")
MODELS = ["stgcn", "ctrgcn", "sgn", "msg3d"]
BUDGETS = (500, 1000, 2000, 5000, 10000)
SETS = {"nw-ucla": ("sets_extra", "nw-ucla (joint-norm rows, retrained checkpoints)"),
        "hdm05": ("sets", "hdm05")}
RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "basar-ab": ("basar", {"goal": "ab"}),
    "basar-sa": ("basar", {"goal": "sa", "target_mode": "random"}),
    "hsja-ab": ("hsja", {"goal": "ab"}),
    "hsja-sa": ("hsja", {"goal": "sa", "target_mode": "random"}),
    "smart-ab": ("smart", {"goal": "ab"}),
    "smart-sa": ("smart", {"goal": "sa", "target_mode": "random"}),
}
STORE_NAME = "blackbox_zoo"


def clip_set(dataset: str, data_root: Path, clf: Classifier) -> dict[str, Any]:
    """The white-box tables' 16 clips of ``dataset`` and the training pool."""
    zoo = json.loads((RESULTS / "attack_zoo.json").read_text())
    group, key = SETS[dataset]
    index = torch.tensor(zoo[group][key]["index"])
    test = load_prepared(dataset, "test", str(data_root / dataset), clf.preprocess)
    train = load_prepared(dataset, "train", str(data_root / dataset), clf.preprocess)
    x, y = test.tensors()
    px, py = train.tensors()
    limits = JointLimits.from_clips(px, clf.skeleton, lengths=torch.from_numpy(train.lengths))
    return {"x": x[index], "y": y[index], "index": index,
            "lengths": torch.from_numpy(test.lengths[index.numpy()]),
            "pool": (px, py, torch.from_numpy(train.lengths)), "limits": limits}


def violation_pct(x: torch.Tensor, lengths: torch.Tensor, skeleton: Any,
                  limits: JointLimits) -> np.ndarray:
    """Per clip: % of its defined joint angles (real frames, present bodies) outside the limits."""
    from skelrobust.attacks.base import motion_mask
    from skelrobust.attacks.joint_limits import angle_validity

    x64 = x.double()
    valid = angle_validity(x64, skeleton, motion_mask(x64, lengths))
    angles = torch.as_tensor(skeleton.joint_angles(x64))
    lo, hi = limits.lower.view(1, 1, -1, 1), limits.upper.view(1, 1, -1, 1)
    out = ((angles < lo) | (angles > hi)) & valid
    return (100.0 * out.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1)).numpy()


def motion_stats(clean: torch.Tensor, adv: torch.Tensor, ok: np.ndarray, clips: dict[str, Any],
                 skeleton: Any) -> dict[str, float]:
    """Means over the clips ``ok`` of the perceptual figures of the tables."""
    if not ok.any():
        return {}
    rep = perceptual_report(clean, adv, skeleton, clips["lengths"]).per_sample
    viol = violation_pct(adv, clips["lengths"], skeleton, clips["limits"])
    return {"joint_mm_mean": float(rep["joint_mm_mean"][ok].mean()),
            "joint_mm_max": float(rep["joint_mm_max"][ok].mean()),
            "bone_pct_mean": float(rep["bone_pct_mean"][ok].mean()),
            "bone_pct_max": float(rep["bone_pct_max"][ok].mean()),
            "accel_dev_mm_s2": float(rep["acceleration_mm_s2_mean"][ok].mean()),
            "accel_mm_s2": float(mean_acceleration(adv, clips["lengths"])[ok].mean()),
            "angle_violation_pct": float(viol[ok].mean())}


def mean_acceleration(x: torch.Tensor, lengths: torch.Tensor, fps: float = 30.0) -> np.ndarray:
    """Per clip: mean joint acceleration ``‖ẍ‖`` in mm/s² over real frames and present bodies."""
    from skelrobust.attacks.base import motion_mask
    from skelrobust.attacks.manifold import acceleration

    mask = motion_mask(x, lengths)[:, 0]  # (N, T, 1, M)
    acc = torch.linalg.vector_norm(acceleration(x), dim=1)
    ok = (mask[:, 2:] * mask[:, 1:-1] * mask[:, :-2]).expand_as(acc)
    return (1e3 * fps ** 2 * (acc * ok).flatten(1).sum(1)
            / ok.flatten(1).sum(1).clamp_min(1)).double().numpy()


def forward_seconds(clf: Classifier, x: torch.Tensor, repeats: int = 5) -> float:
    """The classifier's forward time per sample at batch ``len(x)`` (median of ``repeats``)."""
    times = []
    with torch.no_grad():
        clf(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            clf(x)
            times.append(time.perf_counter() - t0)
    return float(np.median(times)) / len(x)


def run_cell(run: str, clf: Classifier, clips: dict[str, Any], queries: int,
             seed: int) -> dict[str, Any]:
    name, kwargs = RUNS[run]
    x, y, lengths = clips["x"], clips["y"], clips["lengths"]
    label_only = name != "smart"
    budgets = [q for q in BUDGETS if q <= queries]
    extra = {"max_queries": queries, "pool": clips["pool"],
             "snapshot_queries": budgets} if label_only else {}
    victim = (QueryOracle.from_classifier(clf, access="label", batch_size=QUERY_BATCH)
              if label_only else clf)
    atk = create_attack(name, victim, seed=seed, **kwargs, **extra)
    res = atk.attack(x, y, lengths=lengths)
    out: dict[str, Any] = {"run": run, "attack": name, "arguments": kwargs,
                           "samples": len(y), "max_queries": queries if label_only else None,
                           "seconds": res.seconds,
                           "seconds_per_sample": res.seconds / len(y),
                           "threads": torch.get_num_threads(),
                           "query_batch": QUERY_BATCH if label_only else None,
                           "clean_correct": int((res.clean_pred == y).sum()),
                           "queries_mean": float(res.queries.float().mean())}
    correct = (res.clean_pred == y).numpy()

    def success(x_adv: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return goal_reached(clf(x_adv), y, atk.goal, res.target).numpy() & correct

    if label_only:
        t_fwd = forward_seconds(clf, x)
        total_queries = float(res.queries.sum())
        out.update(victim_seconds=atk.victim.victim_seconds, forward_seconds_per_sample=t_fwd,
                   cost_ratio_oracle=res.seconds / max(atk.victim.victim_seconds, 1e-9),
                   cost_ratio=res.seconds / max(total_queries * t_fwd, 1e-9),
                   projection_seconds=float(getattr(atk, "projection_seconds", 0.0)))
        out["budgets"] = {}
        for q in budgets:
            x_q, _ = atk.snapshots[q]
            ok = success(x_q)
            out["budgets"][str(q)] = {"success_pct": 100.0 * ok.sum() / max(correct.sum(), 1),
                                      **motion_stats(x, x_q, ok, clips, clf.skeleton)}
    ok = success(res.x_adv)
    out["final"] = {"success_pct": 100.0 * ok.sum() / max(correct.sum(), 1),
                    "iterations_mean": float(res.iterations.float().mean()),
                    **motion_stats(x, res.x_adv, ok, clips, clf.skeleton)}
    out["clean"] = {"angle_violation_pct": float(violation_pct(
        x, lengths, clf.skeleton, clips["limits"]).mean()), "accel_mm_s2": float(
        mean_acceleration(x, lengths).mean())}
    path = models_dir() / "attacks" / "blackbox"
    path.mkdir(parents=True, exist_ok=True)
    res.save_npz(str(path / f"{run}.npz"), x_clean=x, lengths=lengths, index=clips["index"],
                 class_names=np.asarray(clf.class_names), layout=np.asarray(clf.skeleton.name))
    return out


def fmt(v: Any, digits: int = 1) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def tables(store: dict[str, Any]) -> str:
    cells = store.get("cells", {})
    parts = []
    for dataset in DATASETS:
        for goal in ("ab", "sa"):
            rows = []
            for key, c in sorted(cells.items()):
                d, model, run = key.split("/")
                if d != dataset or not run.endswith(goal) or c.get("attack") == "smart":
                    continue
                row = {"model": model, "attack": c["attack"]}
                for q in BUDGETS:
                    b = c["budgets"].get(str(q), {})
                    row[f"{q}"] = (f"{fmt(b.get('success_pct'), 0)} % / "
                                   f"{fmt(b.get('joint_mm_mean'))} mm / "
                                   f"{fmt(b.get('bone_pct_mean'), 2)} %")
                smart = cells.get(f"{dataset}/{model}/smart-{goal}", {}).get("final", {})
                row["SMART"] = (f"{fmt(smart.get('success_pct'), 0)} % / "
                                f"{fmt(smart.get('joint_mm_mean'))} mm / "
                                f"{fmt(smart.get('bone_pct_mean'), 2)} %") if smart else "–"
                row["s/clip"] = fmt(c["seconds_per_sample"])
                row["queries"] = str(c.get("max_queries") or max(BUDGETS))
                rows.append(row)
            if rows:
                parts.append(f"**{dataset}, {goal.upper()}** (success / mean joint "
                             "displacement / mean bone-length change, at each query budget)"
                             f"\n\n{format_table(rows, fmt='markdown')}")
        rows = []
        for key, c in sorted(cells.items()):
            d, model, run = key.split("/")
            if d != dataset:
                continue
            at = c["budgets"].get("5000", {}) if "budgets" in c else c["final"]
            rows.append({"model": model, "run": run, "success %": fmt(at.get("success_pct")),
                         "joint mm": fmt(at.get("joint_mm_mean")),
                         "bone %": fmt(at.get("bone_pct_mean"), 2),
                         "bone max %": fmt(at.get("bone_pct_max"), 2),
                         "accel dev mm/s²": fmt(at.get("accel_dev_mm_s2"), 0),
                         "accel mm/s² (clean)": f"{fmt(at.get('accel_mm_s2'), 0)} "
                                                f"({fmt(c['clean']['accel_mm_s2'], 0)})",
                         "angle viol. % (clean)": f"{fmt(at.get('angle_violation_pct'), 2)} "
                                                  f"({fmt(c['clean']['angle_violation_pct'], 2)})",
                         "wall/victim": fmt(c.get("cost_ratio_oracle"), 2),
                         "wall/(q·t_fwd)": fmt(c.get("cost_ratio"), 2),
                         "call batch": ("-" if "budgets" not in c
                                        else str(c.get("query_batch") or "whole")),
                         "projection %": fmt(100 * c.get("projection_seconds", 0.0)
                                             / c["seconds"]) if "budgets" in c else "-"})
        if rows:
            parts.append(f"**{dataset}: on-manifold evidence and cost** (label-only rows at "
                         "5,000 queries, SMART final)\n\n" + format_table(rows, fmt="markdown"))
    goals = goal_rows(cells)
    if goals:
        parts.append("**Goals** (at 5,000 queries BASAR's mean joint displacement within 2× "
                     "SMART's and bone-length change ≤ 0.5 %; BASAR's displacement below "
                     "HopSkipJump's at every budget)\n\n" + format_table(goals, fmt="markdown"))
    m = store.get("machine", {})
    head = ("### Label-only attacks: BASAR and HopSkipJump beside SMART\n\n"
            "The 16 test clips of the white-box tables (NW-UCLA: the set of the retrained "
            "checkpoints; HDM05: its set) on the zoo's `small` checkpoints; the attacker's "
            "pool is the training split; SA targets are drawn at random per clip, seeded, the "
            "same for every attack. One run of `queries` queries per cell (10,000 for the first "
            "pair, NW-UCLA ST-GCN; 5,000 for the others, to fit the grid in the time at "
            "hand: their 10,000 column is empty) gives every budget "
            "(the best motion after at most q queries). Success: % of the clean-correct "
            "clips, re-checked on the classifier; perceptual figures are means over the "
            "successful clips. SMART: white-box, preset `paper` (the default), its final "
            "result. Angle violations: % of the defined joint angles outside the min/max "
            "of the training clips. Cost: `wall/victim` is the attack's wall time over the "
            "time spent inside the victim for its queries, at the batch sizes the attack "
            "used (the floor of a label-only attack); `wall/(q·t_fwd)` divides by queries × "
            "the forward time per sample at batch 16 measured apart (a CPU forward costs "
            "more per sample in large batches, so it overstates HopSkipJump's cost, whose "
            "gradient estimates send 100+ probes per clip at once; `call batch`: the largest "
            "batch one victim call ran, `whole` for the cells run before the oracle's calls "
            "were split at 64, whose HopSkipJump time is therefore up to ~2.5× its floor); "
            "`projection %`: "
            "BASAR's time on the manifold. `s/clip`: wall seconds per clip for the cell's "
            "`queries`; the 5,000-query cells of 2026-12-01 ran with other work on the same "
            "2 cores (tests, defense experiments), so their s/clip is inflated by up to ~2×; "
            "the cost ratios are taken within one process and less affected.\n\n"
            f"Machine: {m.get('cpu', '?')}, torch {m.get('torch', '?')}, threads per cell in "
            f"the JSON. Commands: `{'`, `'.join(sorted(set(store.get('commands', []))))}`")
    return head + "\n\n" + "\n\n".join(parts)


def goal_rows(cells: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals per dataset, model and goal, from the stored cells."""
    rows = []
    for key, c in sorted(cells.items()):
        d, model, run = key.split("/")
        if c.get("attack") != "basar":
            continue
        goal = run.split("-")[-1]
        smart = cells.get(f"{d}/{model}/smart-{goal}", {}).get("final", {})
        hsja = cells.get(f"{d}/{model}/hsja-{goal}", {}).get("budgets", {})
        at = c["budgets"].get("5000", {})
        ratio = (at.get("joint_mm_mean", np.nan) / smart["joint_mm_mean"]
                 if smart.get("joint_mm_mean") else np.nan)
        below = [c["budgets"][q].get("joint_mm_mean", np.inf)
                 < hsja.get(q, {}).get("joint_mm_mean", np.nan) for q in c["budgets"]]
        rows.append({"dataset": d, "model": model, "goal": goal.upper(),
                     "BASAR/SMART mm": fmt(ratio, 2),
                     "≤ 2×": "met" if ratio <= 2 else ("missed" if ratio == ratio else "–"),
                     "bone %": fmt(at.get("bone_pct_mean"), 3),
                     "≤ 0.5 %": "met" if at.get("bone_pct_mean", np.inf) <= 0.5 else "missed",
                     "below HSJA": ("–" if not hsja else
                                    f"{sum(below)}/{len(below)} budgets")})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--queries", type=int, default=max(BUDGETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--tables-only", action="store_true")
    ap.add_argument("--store", default=STORE_NAME,
                    help="result file under benchmarks/results (a pilot keeps its own)")
    ap.add_argument("--data", default=os.environ.get("SKELROBUST_DATA", str(
        Path(__file__).resolve().parents[2] / "shared" / "data")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store_path = RESULTS / f"{args.store}.json"
    store = json.loads(store_path.read_text()) if store_path.exists() else {"cells": {}}
    for dataset in [] if args.tables_only else args.datasets:
        for model in args.models:
            path = models_dir() / f"{model}_{dataset}" / "classifier.safetensors"
            if not path.exists():
                print(f"skip {model} on {dataset}: no checkpoint {path}")
                continue
            clf = Classifier.load(path).eval()
            clips = None
            for run in args.runs:
                key = f"{dataset}/{model}/{run}"
                if key in store["cells"] and not args.force:
                    continue
                clips = clips or clip_set(dataset, Path(args.data), clf)
                cell = run_cell(run, clf, clips, args.queries, args.seed)
                cell["index"] = clips["index"].tolist()
                store = store_cell(args.store, key, cell)
                f = cell["final"]
                print(f"{key}: success {fmt(f.get('success_pct'))} %, joint "
                      f"{fmt(f.get('joint_mm_mean'))} mm, bone {fmt(f.get('bone_pct_mean'), 2)}"
                      f" %, {cell['seconds']:.0f} s", flush=True)
    if args.store == STORE_NAME:
        update_section("attack_blackbox", tables(store))
    else:
        print(tables(store))


if __name__ == "__main__":
    main()
