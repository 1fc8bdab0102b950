"""The cost of SMART relative to one forward + backward pass of the classifier.

    python benchmarks/attack_cost.py --dataset hdm05 --batch 16

For every zoo checkpoint of the dataset: ``cost_ratio`` times ``steps`` SMART
steps and ``steps`` plain forward + input-gradient backward passes on the same
batch, interleaved (best of ``repeats``), with a step length so small that no
sample stops early, so every step is paid for (goal: ratio <= 1.3); and the
clips attacked per second when SMART runs 200 steps on each. Writes
``benchmarks/results/attack_cost.json`` and the ``attack_cost`` section of
``docs/BENCHMARKS.md``. The helpers are shared with ``smart_synthetic.py``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from skelrobust.attacks import SMART


def forward_backward_seconds(clf: nn.Module, x: torch.Tensor, y: torch.Tensor,
                             steps: int) -> float:
    """Wall time of ``steps`` forward passes plus backward passes to the input."""
    t0 = time.perf_counter()
    for _ in range(steps):
        xg = x.detach().requires_grad_(True)
        loss = F.cross_entropy(clf(xg), y, reduction="none")
        torch.autograd.grad(loss.sum(), xg)
    return time.perf_counter() - t0


def smart_seconds(clf: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Wall time of ``steps`` SMART steps on every sample (tiny steps: nobody stops early)."""
    res = SMART(clf, preset="legacy", steps=steps, step_mm=1e-4, report=False).attack(x, y)
    if bool(res.success.any()):
        raise RuntimeError("a sample stopped early while timing SMART: lower step_mm")
    return res.seconds


def cost_ratio(clf: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
               repeats: int) -> dict[str, float]:
    """SMART's wall time over ``steps ×`` one forward + backward pass, best and median."""
    was_training = clf.training
    clf.eval()
    try:
        forward_backward_seconds(clf, x, y, 1)  # warm-up
        base, attack = [], []
        for _ in range(repeats):
            base.append(forward_backward_seconds(clf, x, y, steps))
            attack.append(smart_seconds(clf, x, y, steps))
    finally:
        clf.train(was_training)
    ratios = sorted(a / b for a, b in zip(attack, base))
    return {"steps": steps, "batch": len(x), "fwd_bwd_ms": 1000 * min(base) / steps,
            "smart_step_ms": 1000 * min(attack) / steps,
            "ratio_best": min(attack) / min(base), "ratio_median": ratios[len(ratios) // 2]}


def samples_per_second(clf: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       steps: int = 200) -> float:
    """Clips attacked per second when SMART runs all ``steps`` on every clip."""
    return len(x) / smart_seconds(clf, x, y, steps)


def main() -> None:
    from attack_zoo import attack_set, load_victims
    from common import command, machine, update_section, write_json
    from skelrobust.report.tables import format_table
    from zoo_accuracy import MODELS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="hdm05")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20, help="steps per timed repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=os.environ.get("SKELROBUST_DATA", str(
        Path(__file__).resolve().parents[2] / "shared" / "data")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    victims = load_victims(args.dataset, args.models, Path(args.data), train_missing=False)
    x, y, _, _ = attack_set(args.dataset, victims, Path(args.data), args.batch, seed=0)
    rows = []
    for name, clf in victims.items():
        row = {"model": name, **cost_ratio(clf, x, y, args.steps, args.repeats),
               "samples_per_s_200": samples_per_second(clf, x, y, 200)}
        row["goal"] = "met" if row["ratio_best"] <= 1.3 else "not met"
        print(row, flush=True)
        rows.append(row)
    info = machine()
    write_json("attack_cost", {"command": command(), "machine": info, "dataset": args.dataset,
                               "rows": rows})
    table = format_table(rows, ["model", "batch", "fwd_bwd_ms", "smart_step_ms", "ratio_best",
                                "ratio_median", "samples_per_s_200", "goal"], fmt="markdown",
                         digits=2, headers={"fwd_bwd_ms": "fwd+bwd ms",
                                            "smart_step_ms": "SMART step ms",
                                            "ratio_best": "ratio (best)",
                                            "ratio_median": "ratio (median)",
                                            "samples_per_s_200": "clips/s at 200 steps"})
    update_section("attack_cost", (
        "### Attack cost: SMART step vs one forward + backward pass\n\n"
        f"{args.dataset} test clips, batch {args.batch}, the `small` zoo checkpoints. "
        "Ratio: wall time of SMART over `steps` × one forward + input-gradient backward pass "
        f"of the model on the same batch ({args.steps} steps, best and median of "
        f"{args.repeats} interleaved repeats; the step is so small that no clip stops early). "
        "Clips/s: the batch over the wall time of 200 SMART steps on every clip. "
        "Goal: ratio <= 1.3.\n\n"
        f"{table}\nMachine: {info['cpu']}, {info['cores']} cores, {args.threads} torch "
        f"threads, torch {info['torch']}, {info['date']}.\n\nCommand: `{command()}`\n"))


if __name__ == "__main__":
    main()
