"""The cost of an attack step relative to one forward + backward pass of the classifier.

Shared by the benchmark scripts. ``cost_ratio`` times ``steps`` SMART steps and
``steps`` plain forward + input-gradient backward passes on the same batch,
interleaved (best of ``repeats``), with a step length so small that no sample
stops early, so every step is paid for.
"""

from __future__ import annotations

import time

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
    res = SMART(clf, steps=steps, lr=1e-4, report=False).attack(x, y)
    if bool(res.success.any()):
        raise RuntimeError("a sample stopped early while timing SMART: lower lr")
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
