"""SMART on a small classifier trained on ``synthetic``: success per goal, perceptual report, cost.

    python benchmarks/smart_synthetic.py --model mlp --samples 64
    python benchmarks/smart_synthetic.py --model stgcn --epochs 4 --samples 32 --cost-steps 10

Writes ``benchmarks/results/smart_synthetic_<model>.json``. The attack cost is the
wall time of SMART divided by ``steps ×`` one forward + input-gradient backward pass
of the classifier on the same batch (see ``attack_cost.py``); samples/s at 200
steps has every clip run all 200 steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from attack_cost import cost_ratio, samples_per_second
from attack_fixtures import victim
from common import command, machine, write_json
from skelrobust.attacks import SMART


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--step-mm", type=float, default=0.5)
    ap.add_argument("--cost-steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    v = victim(args.model, epochs=args.epochs)
    x, y = v.x[:args.samples], v.y[:args.samples]
    out = {"command": command(), "machine": machine(), "model": args.model,
           "clean_accuracy": v.clean_accuracy, "samples": len(y),
           "steps": args.steps, "step_mm": args.step_mm, "goals": {}}
    for goal in ("ab", "abn", "sa"):
        atk = SMART(v.classifier, preset="legacy", goal=goal, n=3, steps=args.steps,
                    step_mm=args.step_mm, target_mode="random")
        summary = atk.attack(x, y).summary()
        out["goals"][summary["goal"]] = summary
        per = summary["perceptual"]
        print(f"{summary['goal']:6s} success {summary['success_rate']:5.1f} %  iterations "
              f"{summary['iterations_mean']:6.1f}  joint {per['joint_mm_mean']:.1f} mm (max "
              f"{per['joint_mm_max']:.0f})  bone {per['bone_pct_mean']:.2f} %  angle "
              f"{per['angle_deg_mean']:.2f} deg  acc {per['acceleration_mm_s2_mean']:.0f} mm/s2"
              f"  {summary['seconds']:.1f} s")
    out["samples_per_second_200_steps"] = samples_per_second(v.classifier, x, y, 200)
    out["cost"] = cost_ratio(v.classifier, x, y, args.cost_steps, args.repeats)
    print(f"samples/s at 200 steps: {out['samples_per_second_200_steps']:.1f}")
    print("cost:", {k: round(val, 3) for k, val in out["cost"].items()})
    print("wrote", write_json(f"smart_synthetic_{args.model}", out))


if __name__ == "__main__":
    main()
