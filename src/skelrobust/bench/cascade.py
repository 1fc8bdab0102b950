"""Attacks in cascade, as AutoAttack runs them: each attack of the list attacks only the clips
that are still robust (goal not reached) after the ones before it.

Per clip the worst case is kept: the motion of the first attack that reached the goal;
failing that, the first that made the clip misclassified; failing that, the first attack's
motion. So a clip is still correct after the cascade exactly when it is correct under
every attack that ran on it, and the cascade's robust accuracy is the per-clip minimum over
its attacks. One attack is a cascade of one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from skelrobust.attacks.base import AttackResult
from skelrobust.metrics import perceptual_report

__all__ = ["run_cascade"]


def run_cascade(attacks: list[str], make: Callable[[str], Any], x: torch.Tensor,
                y: torch.Tensor, lengths: torch.Tensor, clean_pred: torch.Tensor,
                skeleton: Any) -> AttackResult:
    """Run ``attacks`` in order (``make(name)`` builds each) on clips ``x`` the victim gets
    right (``clean_pred``). Returns one :class:`AttackResult` over all clips whose ``info``
    holds ``fooled_by`` (per clip, the attack whose motion reached the goal, or ``None``),
    ``stages`` (per attack: clips attacked, successes, seconds, settings) and, for a single
    label-only attack run with ``snapshot_queries``, ``curves`` (success and distance after
    each query count)."""
    from skelrobust.attacks.running import attack_settings

    n = len(y)
    x_adv, adv_pred = x.clone(), clean_pred.clone()
    success = torch.zeros(n, dtype=torch.bool)
    assigned = torch.zeros(n, dtype=torch.bool)
    queries = torch.zeros(n, dtype=torch.long)
    iterations = torch.zeros(n, dtype=torch.long)
    target: torch.Tensor | None = None
    fooled = np.full(n, None, dtype=object)
    stages: list[dict[str, Any]] = []
    curves: dict[str, list[dict[str, float]]] = {}
    goal, top_n, seconds = "ab", 1, 0.0
    for name in attacks:
        todo = torch.nonzero(~success).flatten()
        if not len(todo):
            stages.append({"attack": name, "clips": 0, "success": 0, "seconds": 0.0})
            continue
        atk = make(name)
        res = atk.attack(x[todo], y[todo], lengths=lengths[todo])
        goal, top_n, seconds = res.goal, res.n, seconds + res.seconds
        hit = res.success.cpu()
        wrong = res.adv_pred.cpu() != y[todo]
        keep = hit | ~assigned[todo] | (wrong & (adv_pred[todo] == y[todo]))
        rows = todo[keep]
        x_adv[rows] = res.x_adv.detach().cpu()[keep]
        adv_pred[rows] = res.adv_pred.cpu()[keep]
        if res.target is not None:
            target = torch.full((n,), -1, dtype=torch.long) if target is None else target
            target[rows] = res.target.cpu()[keep]
        assigned[rows] = True
        success[todo[hit]] = True
        fooled[todo[hit].numpy()] = name
        queries[todo] += res.queries.cpu().long()
        iterations[todo] += res.iterations.cpu().long()
        stages.append({"attack": name, "clips": len(todo), "success": int(hit.sum()),
                       "seconds": res.seconds,
                       "queries_mean": float(res.queries.float().mean()),
                       "settings": attack_settings(atk)})
        if len(attacks) == 1 and getattr(atk, "snapshots", None):
            curves["queries"] = _query_curve(atk.snapshots, x, skeleton, lengths)
    report = perceptual_report(x, x_adv, skeleton, lengths)
    return AttackResult(x_adv=x_adv, y=y, success=success, clean_pred=clean_pred,
                        adv_pred=adv_pred, iterations=iterations, queries=queries,
                        seconds=seconds, goal=goal, n=top_n, target=target, report=report,
                        info={"fooled_by": fooled.tolist(), "stages": stages, "curves": curves})


def _query_curve(snapshots: dict[int, tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor,
                 skeleton: Any, lengths: torch.Tensor) -> list[dict[str, float]]:
    """Success % and mean joint displacement (mm, over the successful clips) at each
    snapshot's query count."""
    points = []
    for q in sorted(snapshots):
        x_q, found = snapshots[q]
        found = found.cpu()
        point = {"queries": float(q), "success_pct": 100.0 * float(found.float().mean())}
        if bool(found.any()):
            rep = perceptual_report(x[found], x_q.cpu()[found], skeleton, lengths[found])
            point.update({k: float(np.nanmean(rep.per_sample[k])) for k in (
                "joint_mm_mean", "bone_pct_mean")})
        points.append(point)
    return points
