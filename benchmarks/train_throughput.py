"""Training throughput (forward + backward + SGD step, samples/s) of models on this CPU.

Usage: python benchmarks/train_throughput.py [--models stgcn] [--sizes small base]
"""

from __future__ import annotations

import argparse
import time

import torch

from common import command, machine, update_section, write_json
from skelrobust.models import create_model
from skelrobust.report.tables import format_table
from skelrobust.skeleton import get_skeleton


def throughput(name: str, size: str, batch: int, frames: int, joints_layout: str,
               iters: int, warmup: int = 2) -> dict[str, float]:
    torch.manual_seed(0)
    model = create_model(name, skeleton=joints_layout, num_classes=60, size=size)
    v = get_skeleton(joints_layout).num_joints
    x = torch.randn(batch, 3, frames, v, 1)
    y = torch.randint(0, 60, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    train_s = (time.perf_counter() - t0) / iters
    model.eval()
    with torch.no_grad():
        model(x)
        t0 = time.perf_counter()
        for _ in range(iters):
            model(x)
        infer_s = (time.perf_counter() - t0) / iters
    params = sum(p.numel() for p in model.parameters())
    return {"model": name, "size": size, "params": params, "batch": batch, "frames": frames,
            "train_samples_per_s": batch / train_s, "infer_samples_per_s": batch / infer_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=["stgcn"])
    ap.add_argument("--sizes", nargs="+", default=["small", "base"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = [throughput(m, s, args.batch, args.frames, "ntu25", args.iters)
            for m in args.models for s in args.sizes]
    info = machine()
    write_json("train_throughput", {"machine": info, "command": command(), "rows": rows})
    table = format_table(rows, ["model", "size", "params", "train_samples_per_s",
                                "infer_samples_per_s"], fmt="markdown",
                         headers={"train_samples_per_s": "train samples/s (fwd+bwd+step)",
                                  "infer_samples_per_s": "inference samples/s"})
    update_section("train_throughput", (
        f"### Training throughput, batch {args.batch}, T={args.frames}, V=25 (ntu25), "
        f"60 classes\n\n{table}\nMachine: {info['cpu']}, {info['cores']} cores, torch "
        f"{info['torch']} with {args.threads} threads, {info['date']}.\n\n"
        f"Command: `{command()}`\n"))
    print(table)


if __name__ == "__main__":
    main()
