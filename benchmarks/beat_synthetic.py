"""BEAT on the synthetic victim of the tests: its variants against SMART-AB, and why.

    python benchmarks/beat_synthetic.py [--threads 1] [--clips 40] [--tables-only]

The victim is ``tests/attack_fixtures.victim()`` (a small MLP trained 8 epochs on 400
synthetic clips; 120 test clips). Each variant is trained with ``train_defense`` (6
epochs: 1 burn-in, 5 posterior draws) and attacked with SMART-AB (preset ``paper``,
``--steps`` steps) on the first ``--clips`` correctly classified test clips; success
re-checked on the defended classifier, mean joint displacement of the successful clips.
``sampler-adversary`` measures what SGLD with the released code's plain gradient step
does to the adversaries ``x̃`` (their displacement and the base's accuracy on them)
against the normalised step BEAT uses here. Writes ``results/beat_synthetic.json`` and
section ``beat_synthetic`` of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from attack_fixtures import PREP, victim
from common import RESULTS, command, machine, update_section, write_json
from skelrobust.attacks.base import motion_mask
from skelrobust.attacks.registry import create_attack
from skelrobust.config import load_prepared
from skelrobust.defenses.beat import BEAT
from skelrobust.defenses.training import train_defense
from skelrobust.report.tables import format_table
from skelrobust.training import TrainConfig, evaluate

SCHEDULE = {"burn_in": 1, "sample_every": 1}
#: name → (BEAT arguments, training options, TrainConfig overrides, optimiser)
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any], str | None]] = {
    "beat (defaults)": ({}, {}, {}, None),
    "beat, penultimate features": ({"features": "penultimate", "hidden": 256}, {}, {}, None),
    "beat, prior σ 1": ({}, {"prior_std": 1.0}, {}, None),
    "beat, λ 1 (milder x̃)": ({}, {"distance_weight": 1.0}, {}, None),
    "released code (friction 1, logit sum, raw SGLD)": (
        {"prediction": "logit-sum"},
        {"sampler": "sghmc", "friction": 1.0, "adversary_gradient": "raw",
         "adversary_step": 2.0}, {"lr": 0.001}, None),
    "head-only AT ceiling (Adam, no energy)": (
        {"features": "penultimate", "hidden": 512, "samples": 1},
        {"energy_weight": 0.0, "adversary_weight": 1.0, "burn_in": 5}, {"lr": 1e-3}, "adam"),
}


def smart(classifier: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
          steps: int) -> dict[str, float]:
    res = create_attack("smart", classifier, goal="ab", steps=steps).attack(x, y)
    ok = res.success
    mm = res.report.per_sample["joint_mm_mean"][ok.numpy()].mean() if ok.any() else float("nan")
    return {"success_pct": 100.0 * float(ok.float().mean()), "joint_mm_mean": float(mm),
            "seconds": res.seconds}


def adversary_scale(base: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[dict]:
    """x̃ of 10 SGLD steps from x: plain step 2 (released code) vs normalised steps."""
    rows = []
    for gradient, step in (("raw", 2.0), ("normalized", 0.03)):
        d = BEAT(base, training={"adversary_gradient": gradient, "adversary_step": step})
        obj = d.training_objective(len(x))
        torch.manual_seed(0)
        mask = motion_mask(x)
        x_tilde = obj.sample_adversary(x, y, mask)
        disp = (x_tilde - x).norm(dim=1).sum((1, 2, 3)) / (mask.sum((1, 2, 3, 4)) * x.shape[3])
        with torch.no_grad():
            acc = (base(x_tilde).argmax(1) == y).float().mean()
            ce = F.cross_entropy(base(x_tilde), y)
        rows.append({"gradient": gradient, "step": step,
                     "displacement_mm": 1000 * float(disp.mean()),
                     "base_accuracy_pct": 100 * float(acc), "base_ce": float(ce)})
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    v = victim()
    base = v.classifier
    train = load_prepared("synthetic", "train", preprocess_args=PREP, num_clips=400,
                          num_frames=32, seed=0)
    test = load_prepared("synthetic", "test", preprocess_args=PREP, num_clips=120,
                         num_frames=32, seed=0)
    x, y = v.x[:args.clips], v.y[:args.clips]
    out: dict[str, Any] = {"rows": {}, "threads": args.threads, "clips": len(y),
                           "steps": args.steps}
    out["rows"]["undefended"] = {"clean_top1": evaluate(base, test).top1,
                                 **smart(base, x, y, args.steps), "train_seconds": 0.0}
    for name, (beat_args, options, overrides, optimiser) in VARIANTS.items():
        torch.manual_seed(0)
        d = BEAT(base, **{"samples": 5, **beat_args}, training={**SCHEDULE, **options})
        cfg = TrainConfig(**{**d.training_defaults, "epochs": 6, "keep": "last",
                             "progress": False, **overrides})
        t0 = time.perf_counter()
        if optimiser == "adam":  # the ceiling: no sampler, the head trained to convergence
            from skelrobust.training import fit

            obj = d.training_objective(len(train))
            fit(d, train, None, cfg, loss=obj,
                optimizer=lambda params, c: torch.optim.Adam(params, lr=c.lr))
        else:
            train_defense(d, train, None, cfg)
        seconds = time.perf_counter() - t0
        d.eval()
        out["rows"][name] = {"clean_top1": evaluate(d, test).top1,
                             **smart(d, x, y, args.steps), "train_seconds": seconds}
        print(name, out["rows"][name], flush=True)
    out["adversary_scale"] = adversary_scale(base, x, y)
    return out


def tables(store: dict[str, Any]) -> str:
    rows = [{"variant": k, "clean top-1 %": f"{r['clean_top1']:.1f}",
             "SMART-AB %": f"{r['success_pct']:.1f}", "joint mm": f"{r['joint_mm_mean']:.1f}",
             "train s": f"{r['train_seconds']:.0f}"} for k, r in store["rows"].items()]
    adv = [{"SGLD step on x̃": f"{a['gradient']} ({a['step']})",
            "x̃ displacement mm": f"{a['displacement_mm']:.1f}",
            "base accuracy on x̃ %": f"{a['base_accuracy_pct']:.1f}",
            "base CE on x̃": f"{a['base_ce']:.4f}"} for a in store["adversary_scale"]]
    m = store["machine"]
    return ("### BEAT on the synthetic victim (variants, SMART-AB)\n\n"
            f"The tests' synthetic MLP victim; {store['clips']} clean-correct test clips; SMART "
            f"preset `paper` with {store['steps']} steps; BEAT 6 epochs (1 burn-in, 5 "
            "posterior draws). Goal of the issue's test: SMART-AB success down by ≥ 30 "
            "points at ≤ 3 points of clean accuracy — **missed** by every variant (see "
            "DESIGN-NOTES, BEAT).\n\n" + format_table(rows, fmt="markdown")
            + "\n\n**Adversaries x̃ (10 SGLD steps from x, λ = 1e-5)**\n\n"
            + format_table(adv, fmt="markdown")
            + f"\n\nMachine: {m['cpu']}, torch {m['torch']}, {store['threads']} thread(s). "
            f"Command: `{store['command']}`")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--tables-only", action="store_true")
    args = ap.parse_args()
    path = RESULTS / "beat_synthetic.json"
    if args.tables_only:
        store = json.loads(path.read_text())
    else:
        store = {**run(args), "machine": machine(), "command": command()}
        write_json("beat_synthetic", store)
    update_section("beat_synthetic", tables(store))


if __name__ == "__main__":
    main()
