"""Every registered model: parameters and forward FLOPs at ``base`` and ``small``, CPU throughput.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` for one
forward pass of one clip (T=64, V=25 on ``ntu25``, one body, 60 classes;
multiply-accumulate = 2 FLOPs; element-wise ops are not counted, as usual).
Throughput (samples/s) is measured for every ``small`` model at batch 32,
T=64 with ``--threads`` torch threads: inference (eval mode, no grad) and
training (forward + backward + SGD step). Writes ``benchmarks/results/model_zoo.json``
and the ``model_zoo`` section of ``docs/BENCHMARKS.md``.

Usage: python benchmarks/model_zoo.py [--models stgcn agcn ...] [--threads 2]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from common import command, machine, update_section, write_json
from skelrobust.models import create_model, list_models
from skelrobust.report.tables import format_table
from train_throughput import throughput

LAYOUT, CLASSES, FRAMES = "ntu25", 60, 64


def _rnn_flops(module: nn.RNNBase, inputs: tuple) -> int:
    """FLOPs of one call of a recurrent layer, which ``FlopCounterMode`` does not see.

    Per time step, layer and direction: ``gates · (in·hidden + hidden·hidden)``
    multiply-adds (gates 1 for RNN, 3 for GRU, 4 for LSTM); 2 FLOPs each.
    """
    x = inputs[0]
    x = x.data if isinstance(x, nn.utils.rnn.PackedSequence) else x
    steps = x.shape[0] if isinstance(inputs[0], nn.utils.rnn.PackedSequence) else (
        x.shape[0] * x.shape[1])  # batch·time, or the packed row count
    gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
    dirs = 2 if module.bidirectional else 1
    h, total, width = module.hidden_size, 0, module.input_size
    for _ in range(module.num_layers):
        total += dirs * gates * (width * h + h * h)
        width = h * dirs
    return 2 * steps * total


def forward_flops(name: str, size: str) -> tuple[int, float]:
    """(parameters, GFLOPs of one forward pass of one clip), recurrent layers included."""
    torch.manual_seed(0)
    model = create_model(name, skeleton=LAYOUT, num_classes=CLASSES, size=size).eval()
    params = sum(p.numel() for p in model.parameters())
    rnn_flops: list[int] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: rnn_flops.append(_rnn_flops(mod, inp)))
             for m in model.modules() if isinstance(m, nn.RNNBase)]
    x = torch.randn(1, 3, FRAMES, 25, 1)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    for hook in hooks:
        hook.remove()
    return params, (counter.get_total_flops() + sum(rnn_flops)) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=None, help="default: every registered model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = args.models or list_models()
    rows = []
    for name in names:
        row: dict = {"model": name}
        for size in ("base", "small"):
            row[f"params_{size}"], row[f"gflops_{size}"] = forward_flops(name, size)
        speed = throughput(name, "small", args.batch, FRAMES, LAYOUT, args.iters)
        row["train_small"] = speed["train_samples_per_s"]
        row["infer_small"] = speed["infer_samples_per_s"]
        print(format_table([row], digits=3), flush=True)
        rows.append(row)
    info = machine()
    write_json("model_zoo", {"machine": info, "command": command(), "rows": rows})
    table = format_table(
        rows, ["model", "params_base", "gflops_base", "params_small", "gflops_small",
               "infer_small", "train_small"], fmt="markdown", digits=3,
        headers={"params_base": "params (base)", "gflops_base": "GFLOPs (base)",
                 "params_small": "params (small)", "gflops_small": "GFLOPs (small)",
                 "infer_small": "small: inference samples/s",
                 "train_small": "small: training samples/s"})
    update_section("model_zoo", (
        f"### Model zoo: size, forward FLOPs and CPU throughput\n\nParameters and GFLOPs of one "
        f"forward pass of one clip (T={FRAMES}, V=25 `{LAYOUT}`, one body, {CLASSES} classes; "
        f"`FlopCounterMode`, multiply-add = 2 FLOPs; recurrent layers, which it does not see, "
        f"added analytically). Throughput of the `small` models at batch "
        f"{args.batch}, T={FRAMES}: inference in eval mode without gradients; training = forward "
        f"+ backward + SGD step.\n\n{table}\nMachine: {info['cpu']}, {info['cores']} cores, "
        f"torch {info['torch']} with {args.threads} threads, {info['date']}.\n\n"
        f"Command: `{command()}`\n"))


if __name__ == "__main__":
    main()
