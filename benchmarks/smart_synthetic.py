"""SMART on a small classifier trained on ``synthetic``: success per goal, perceptual report, cost.

    python benchmarks/smart_synthetic.py --model mlp --samples 64
    python benchmarks/smart_synthetic.py --model stgcn --epochs 4 --samples 32 --cost-steps 10

Writes ``benchmarks/results/smart_synthetic_<model>.json``. The attack cost is the
wall time of SMART divided by ``steps ×`` one forward + input-gradient backward pass
of the classifier on the same batch, both timed interleaved (best of ``--repeats``),
with a step size so small that no sample stops early (every step is paid for).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from attack_fixtures import victim
from common import command, machine, write_json
from skelrobust.attacks import SMART


def cost_ratio(clf: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
               repeats: int) -> dict[str, float]:
    def forward_backward() -> None:
        xg = x.detach().requires_grad_(True)
        loss = F.cross_entropy(clf(xg), y, reduction="none")
        torch.autograd.grad(loss.sum(), xg)

    forward_backward()
    base, attack = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            forward_backward()
        base.append(time.perf_counter() - t0)
        res = SMART(clf, steps=steps, lr=1e-4, report=False).attack(x, y)
        attack.append(res.seconds)
        assert not bool(res.success.any()), "a sample stopped early: lower lr"
    ratios = sorted(a / b for a, b in zip(attack, base))
    return {"steps": steps, "batch": len(x), "fwd_bwd_ms": 1000 * min(base) / steps,
            "smart_step_ms": 1000 * min(attack) / steps,
            "ratio_best": min(attack) / min(base), "ratio_median": ratios[len(ratios) // 2]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--cost-steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    v = victim(args.model, epochs=args.epochs)
    x, y = v.x[:args.samples], v.y[:args.samples]
    out = {"command": command(), "machine": machine(), "model": args.model,
           "clean_accuracy": v.clean_accuracy, "samples": len(y),
           "steps": args.steps, "lr_mm": args.lr, "goals": {}}
    for goal in ("ab", "abn", "sa"):
        atk = SMART(v.classifier, goal=goal, n=3, steps=args.steps, lr=args.lr,
                    target_mode="random")
        summary = atk.attack(x, y).summary()
        out["goals"][summary["goal"]] = summary
        per = summary["perceptual"]
        print(f"{summary['goal']:6s} success {summary['success_rate']:5.1f} %  iterations "
              f"{summary['iterations_mean']:6.1f}  joint {per['joint_mm_mean']:.1f} mm (max "
              f"{per['joint_mm_max']:.0f})  bone {per['bone_pct_mean']:.2f} %  angle "
              f"{per['angle_deg_mean']:.2f} deg  acc {per['acceleration_mm_s2_mean']:.0f} mm/s2"
              f"  {summary['seconds']:.1f} s")
    res200 = SMART(v.classifier, steps=200, lr=args.lr, report=False).attack(x, y)
    out["samples_per_second_200_steps"] = len(y) / res200.seconds
    out["cost"] = cost_ratio(v.classifier, x, y, args.cost_steps, args.repeats)
    print(f"samples/s at 200 steps: {out['samples_per_second_200_steps']:.1f}")
    print("cost:", {k: round(val, 3) for k, val in out["cost"].items()})
    print("wrote", write_json(f"smart_synthetic_{args.model}", out))


if __name__ == "__main__":
    main()
