"""What one cell computes: its classifier, its test clips, the attack (or cascade) on those the
classifier gets right, the figures of :class:`~skelrobust.bench.schema.CellMetrics`, and the
clips for the report's viewer (``artifacts/<id>.npz``).

The clips are the first ``clips`` of a seeded permutation of the test split (so a larger
``clips`` extends a smaller one); the attack runs on those the victim classifies correctly,
``success_pct`` is over them and ``robust_accuracy_pct`` over all the selected clips.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from skelrobust.bench.schema import CellSpec, cell_id
from skelrobust.bench.store import Store

__all__ = ["compute_cell", "select_clips"]


def select_clips(total: int, clips: int, seed: int) -> torch.Tensor:
    """Sorted indices of the first ``clips`` of a permutation of ``range(total)`` seeded by
    ``seed`` (all of them when ``clips >= total``)."""
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[:clips].sort().values


def compute_cell(spec: CellSpec, store: Store) -> dict[str, Any]:
    """The result fields of ``spec`` that the cell computes (``metrics``, ``per_clip``,
    ``checkpoint``, ``artifacts``); raises on any error (the runner records it)."""
    from skelrobust.attacks.sampling import batched_logits
    from skelrobust.bench.checkpoints import classifier_for
    from skelrobust.config import load_for_classifier

    victim, base, checkpoint = classifier_for(spec, store)
    test = load_for_classifier(base)
    x_all, y_all = test.tensors()
    index = select_clips(len(y_all), int(spec["clips"]), int(spec["seed"]))
    x, y = x_all[index], y_all[index]
    lengths = torch.from_numpy(test.lengths)[index].long()
    torch.manual_seed(int(spec["seed"]))  # a stochastic victim: repeatable clean answers
    clean_pred = batched_logits(victim, x).argmax(1).cpu()
    correct = clean_pred == y
    n, n_correct = len(y), int(correct.sum())
    metrics: dict[str, Any] = {"clips": n, "clean_correct": n_correct,
                               "clean_accuracy_pct": 100.0 * n_correct / max(n, 1)}
    out: dict[str, Any] = {"metrics": metrics, "checkpoint": checkpoint, "artifacts": {}}
    if spec["attack"] == "clean":
        metrics["robust_accuracy_pct"] = metrics["clean_accuracy_pct"]
        out["per_clip"] = {"index": index.tolist(), "y": y.tolist(),
                           "clean_pred": clean_pred.tolist()}
        return out
    attacks = [spec["attack"]] if isinstance(spec["attack"], str) else list(spec["attack"])
    attacked = torch.nonzero(correct).flatten()
    if not len(attacked):
        metrics.update(success_pct=None, robust_accuracy_pct=0.0)
        out["per_clip"] = {k: [] for k in ("index", "y", "clean_pred", "adv_pred", "success",
                                           "joint_mm", "queries", "iterations")}
        return out
    from skelrobust.bench.cascade import run_cascade

    xa, ya, la = x[attacked], y[attacked], lengths[attacked]
    if spec.get("surrogate"):  # transfer: crafted on the surrogate, replayed on the victim
        surrogate, surrogate_base, record = classifier_for(_surrogate_spec(spec), store)
        out["checkpoint"] = {**checkpoint, "surrogate": record}
        res = run_cascade(attacks, _AttackMaker(spec, surrogate, surrogate_base), xa, ya, la,
                          batched_logits(surrogate, xa).argmax(1).cpu(), victim.skeleton)
        res = _replay(res, victim, clean_pred[attacked], int(spec["seed"]))
    else:
        res = run_cascade(attacks, _AttackMaker(spec, victim, base), xa, ya, la,
                          clean_pred[attacked], victim.skeleton)
    ok = res.success.numpy()
    per = res.report.per_sample if res.report is not None else {}
    metrics.update(
        success_pct=100.0 * float(ok.mean()),
        robust_accuracy_pct=100.0 * int((res.adv_pred == res.y).sum()) / n,
        queries_mean=float(res.queries.float().mean()),
        iterations_mean=float(res.iterations.float().mean()),
        perceptual=_summary(per, ok), stages=res.info["stages"])
    if res.info["curves"]:
        metrics["curves"] = res.info["curves"]
    per_clip: dict[str, Any] = {
        "index": index[attacked].tolist(), "y": res.y.tolist(),
        "clean_pred": res.clean_pred.tolist(), "adv_pred": res.adv_pred.tolist(),
        "success": res.success.tolist(), "joint_mm": per["joint_mm_mean"].tolist(),
        "queries": res.queries.tolist(), "iterations": res.iterations.tolist()}
    if res.target is not None:
        per_clip["target"] = res.target.tolist()
    if len(attacks) > 1:
        per_clip["fooled_by"] = res.info["fooled_by"]
    out["per_clip"] = per_clip
    from skelrobust.attacks.running import save_clips

    path = save_clips(store.artifact_path(cell_id(spec)), res, x[attacked], lengths[attacked],
                      index[attacked], victim.class_names, victim.skeleton.name)
    out["artifacts"] = {"adversarial": str(path.relative_to(store.root))}
    return out


def _surrogate_spec(spec: CellSpec) -> CellSpec:
    """The cell of the surrogate itself: its model, undefended, on the victim's data."""
    sur = {k: v for k, v in spec.items() if k != "surrogate"}
    sur.update(spec["surrogate"], defense="none", defense_options={}, defense_train={})
    return CellSpec(**sur)  # type: ignore[typeddict-item]


def _replay(res: Any, victim: Any, clean_pred: torch.Tensor, seed: int) -> Any:
    """``res`` (crafted on a surrogate) judged on ``victim``: its answers to the adversarial
    motion decide success; the victim answered no query of the attack's."""
    from dataclasses import replace

    from skelrobust.attacks.sampling import batched_logits
    from skelrobust.metrics import goal_reached

    torch.manual_seed(seed)  # a stochastic victim: repeatable answers
    logits = batched_logits(victim, res.x_adv).cpu()
    success = goal_reached(logits, res.y, res.goal, res.target, n=res.n)
    info = {**res.info, "surrogate_success": res.success.tolist()}
    return replace(res, success=success, clean_pred=clean_pred, adv_pred=logits.argmax(1),
                   queries=torch.zeros_like(res.queries), info=info)


def _summary(per_sample: dict[str, np.ndarray], ok: np.ndarray) -> dict[str, float]:
    """The perceptual summary over the successful clips (empty when none succeeded)."""
    from skelrobust.metrics import PerceptualReport

    if not ok.any():
        return {}
    return PerceptualReport({k: v[ok] for k, v in per_sample.items()}).summary()


class _AttackMaker:
    """Builds each attack of a cell with its options, budget, goal and seed, and the data the
    runner's own options ask for (the attacker's pool, a discriminator's training clips)."""

    def __init__(self, spec: CellSpec, victim: Any, base: Any) -> None:
        self.spec, self.victim, self.base = spec, victim, base
        self._splits: dict[str, Any] = {}

    def options(self, name: str) -> dict[str, Any]:
        options = self.spec.get("options") or {}
        if isinstance(self.spec["attack"], list):
            options = options.get(name, {})
        return dict(options)

    def split(self, name: str) -> Any:
        from skelrobust.bench.checkpoints import training_split
        from skelrobust.config import load_for_classifier

        split = training_split(self.base) if name == "train" else name
        if split not in self._splits:
            self._splits[split] = load_for_classifier(self.base, split=split)
        return self._splits[split]

    def __call__(self, name: str) -> Any:
        from skelrobust.attacks.registry import ATTACKS, attack_arguments
        from skelrobust.attacks.running import QUERY_BATCH, prepare_attack

        options = self.options(name)
        pool_split = options.pop("pool", "train")
        discriminator = options.pop("discriminator", None)
        if isinstance(discriminator, bool):  # true: fit_discriminator's defaults
            discriminator = {} if discriminator else None
        query_batch = options.pop("query_batch", QUERY_BATCH)
        accepted = attack_arguments(ATTACKS[name])
        budget = {k: v for k, v in (self.spec.get("budget") or {}).items() if k in accepted}
        pool = None
        if "pool" in accepted and pool_split not in (None, "none"):
            data = self.split(str(pool_split))
            pool = (torch.from_numpy(data.x), torch.from_numpy(data.y).long(),
                    torch.from_numpy(data.lengths))
        clips = (torch.from_numpy(self.split("train").x) if discriminator is not None
                 else None)
        kwargs = {"seed": self.spec["seed"], **options, **budget, "goal": self.spec["goal"]}
        return prepare_attack(name, self.victim, pool=pool, discriminator=discriminator,
                              discriminator_clips=clips, query_batch=query_batch, **kwargs)
