"""Re-run the NW-UCLA SMART-AB cells with the code at hand and compare with another code tree.

The victim interface (``attacks/oracle.py``) moved every query of the attacks behind an
oracle. This script shows that the white-box figures did not move: it runs SMART-AB (the
``smart-ab`` cell of ``attack_zoo.py``) on every NW-UCLA zoo checkpoint, on the 16 test
clips of the retrained checkpoints (``sets_extra`` of ``attack_zoo.json``), and records per
model a SHA-256 of the adversarial motions, success, steps and the perceptual means.

    # the code before the change, from a worktree of that commit
    git worktree add /tmp/before <commit>
    PYTHONPATH=/tmp/before/src python benchmarks/smart_recheck.py --out before.json
    python benchmarks/smart_recheck.py --out after.json --compare before.json

``--compare`` writes the ``attack_smart_recheck`` section of ``docs/BENCHMARKS.md``.
SMART's arguments are the cell's (``goal="ab"``, every other argument at the defaults the
stored cells used: 1000 steps, step 0.5 mm, w 0.6, α 0.3, β (0.6, 0, 0.4), per-frame
derivatives); when the code has presets, the preset that reproduces those defaults is named.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command, machine, update_section
from skelrobust.attacks import SMART
from skelrobust.classifier import Classifier
from skelrobust.config import load_prepared
from zoo_accuracy import MODELS, models_dir

SET = "nw-ucla (joint-norm rows, retrained checkpoints)"
LEGACY_PRESET = "legacy"  # the preset that reproduces the defaults of the stored cells


def smart_arguments() -> dict[str, Any]:
    params = inspect.signature(SMART.__init__).parameters
    return {"goal": "ab", **({"preset": LEGACY_PRESET} if "preset" in params else {})}


def run(models: list[str], data_root: Path) -> dict[str, Any]:
    store = json.loads((RESULTS / "attack_zoo.json").read_text())
    index = torch.tensor(store["sets_extra"][SET]["index"])
    out: dict[str, Any] = {"arguments": smart_arguments(), "cells": {}}
    data = None
    for model in models:
        path = models_dir() / f"{model}_nw-ucla" / "classifier.safetensors"
        if not path.exists():
            print(f"skip {model}: no checkpoint {path}")
            continue
        clf = Classifier.load(path).eval()
        if data is None:
            data = load_prepared("nw-ucla", "test", str(data_root / "nw-ucla"), clf.preprocess)
        x, y = data.tensors()
        lengths = torch.from_numpy(data.lengths[index.numpy()])
        t0 = time.perf_counter()
        res = SMART(clf, **out["arguments"]).attack(x[index], y[index], lengths=lengths)
        per = res.summary()["perceptual"]
        out["cells"][model] = {
            "sha256": hashlib.sha256(res.x_adv.contiguous().numpy().tobytes()).hexdigest(),
            "success_rate": res.success_rate, "iterations_mean": float(
                res.iterations.float().mean()), "queries_mean": float(res.queries.float().mean()),
            "joint_mm_mean": per["joint_mm_mean"], "bone_pct_mean": per["bone_pct_mean"],
            "angle_deg_mean": per["angle_deg_mean"], "seconds": time.perf_counter() - t0}
        print(f"{model}: {out['cells'][model]}", flush=True)
    return out


def compare(after: dict[str, Any], before: dict[str, Any]) -> str:
    rows = ["| model | x_adv identical | success % | steps | queries before → now | "
            "joint mm | bone % | angle deg |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    same_all = True
    for model, a in after["cells"].items():
        b = before["cells"].get(model)
        if b is None:
            continue
        same = a["sha256"] == b["sha256"]
        same_all &= same and all(a[k] == b[k] for k in (
            "success_rate", "iterations_mean", "joint_mm_mean", "bone_pct_mean"))
        rows.append(f"| {model} | {'yes' if same else 'NO'} | {a['success_rate']:.1f} | "
                    f"{a['iterations_mean']:.1f} | {b['queries_mean']:.1f} → "
                    f"{a['queries_mean']:.1f} | {a['joint_mm_mean']:.2f} | "
                    f"{a['bone_pct_mean']:.2f} | {a['angle_deg_mean']:.2f} |")
    verdict = ("every figure identical, bit for bit" if same_all else
               "SOME FIGURES DIFFER (see the rows marked NO)")
    return (f"SMART-AB on the 16 NW-UCLA test clips of the retrained zoo checkpoints, run "
            f"with the code before the victim interface and with the code now "
            f"(arguments now: {after['arguments']}): {verdict}. `queries` now counts the "
            "attack's own queries only (the clean and final evaluations are bookkeeping, 2 "
            "per clip, reported apart), so it is 2 lower; `x_adv identical` compares SHA-256 "
            "of the adversarial motions. Machine: "
            f"{after['machine']['cpu']}, {after['machine']['torch_threads']} thread(s).\n\n"
            f"Command: `{after['command']}` (before: the same script with "
            "`PYTHONPATH=<worktree of the commit before>/src`).\n\n" + "\n".join(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--out", required=True)
    ap.add_argument("--compare", help="JSON of the same script run on the other code")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=os.environ.get("SKELROBUST_DATA", str(
        Path(__file__).resolve().parents[2] / "shared" / "data")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = {**run(args.models, Path(args.data)), "command": command(), "machine": machine()}
    Path(args.out).write_text(json.dumps(result, indent=2))
    if args.compare:
        text = compare(result, json.loads(Path(args.compare).read_text()))
        update_section("attack_smart_recheck", text)
        print(text)


if __name__ == "__main__":
    main()
