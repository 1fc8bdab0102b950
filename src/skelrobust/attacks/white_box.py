"""Shared pieces of the white-box (gradient) attacks.

:class:`GradientAttack` is the base of every attack that follows the
classifier's gradient (SMART, CIASA, FGSM/I-FGSM/PGD/MI-FGSM). Its
:meth:`~GradientAttack.gradient` is the *only* place where such an attack
queries the classifier during the optimisation, so
:class:`~skelrobust.attacks.eot.EOT` can replace it by an expectation over the
classifier's randomness for every attack at once.

Objectives are minimised, one value per sample:

- ``loss="ce"``: the cross-entropy of the goal, ``−CE(z, y)`` for AB and ABN (push the
  true class down), ``CE(z, c)`` for SA (pull the target up);
- ``loss="margin"``: the Carlini-Wagner margin of :func:`~skelrobust.attacks.base.goal_margin`
  (negative exactly when the goal is reached).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from skelrobust.attacks.base import Attack
from skelrobust.errors import ConfigError

__all__ = ["LOSSES", "GradientAttack", "per_sample_norm", "project_linf_exact", "unit"]

LOSSES = ("ce", "margin")


def _view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def per_sample_norm(x: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """``‖x_i‖_p`` over all but the batch dimension: ``(N,)``."""
    return torch.linalg.vector_norm(x.flatten(1), ord=p, dim=1)


def unit(x: torch.Tensor, p: float = 2.0, eps: float = 1e-20) -> torch.Tensor:
    """``x_i / ‖x_i‖_p`` per sample (zero stays zero)."""
    return x / _view(per_sample_norm(x, p).clamp_min(eps), x)


def project_linf_exact(x_adv: torch.Tensor, x: torch.Tensor, budget_m: float) -> torch.Tensor:
    """``x_adv`` clipped so that ``|x_adv − x| ≤ budget`` holds exactly, not just up to rounding.

    ``x + clamp(δ)`` can land one rounding step outside the ball; the exact
    difference is checked in float64 and such coordinates are moved one
    representable value towards ``x``.
    """
    eps = torch.tensor(budget_m, dtype=x.dtype, device=x.device)
    x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps)
    for _ in range(3):  # one nudge suffices in practice
        over = (x_adv.double() - x.double()).abs() > budget_m
        if not bool(over.any()):
            break
        x_adv = torch.where(over, torch.nextafter(x_adv, x), x_adv)
    return x_adv


class GradientAttack(Attack):
    """Base of the white-box attacks: objective per goal and its input gradient.

    Subclasses call :meth:`gradient` once per optimisation step; it runs one
    forward and one backward pass of the classifier (input gradient only) and
    counts one query for each sample it is given.
    """

    name = "gradient"

    def __init__(self, classifier: nn.Module, goal: str = "ab", n: int = 3,
                 target_mode: str = "given", loss: str = "ce", seed: int = 0,
                 report: bool = True) -> None:
        super().__init__(classifier, goal=goal, n=n, target_mode=target_mode, seed=seed,
                         report=report)
        if loss not in LOSSES:
            raise ConfigError(f"{self.name}: loss must be one of {LOSSES}, got {loss!r}")
        self.loss = loss

    def objective(self, logits: torch.Tensor, y: torch.Tensor,
                  target: torch.Tensor | None) -> torch.Tensor:
        """Per-sample objective ``(N,)`` to *minimise* (see the module doc)."""
        if self.loss == "margin":
            return self.margin(logits, y, target)
        if self.goal == "sa":
            return F.cross_entropy(logits, target, reduction="none")
        return -F.cross_entropy(logits, y, reduction="none")

    def gradient(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                 active: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, objective, ∂objective/∂x)`` at ``x`` (detached outputs).

        ``x``, ``y`` and ``target`` hold the rows being attacked; ``active`` is the
        ``(N_batch,)`` bool mask saying which samples of the whole batch they are
        (for query counting; ``None``: all). Overridden by EOT.
        """
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            logits = self.logits(xg, active)
            obj = self.objective(logits, y, target)
            (grad,) = torch.autograd.grad(obj.sum(), xg)
        return logits.detach(), obj.detach(), grad

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def rows(idx: torch.Tensor | None, *tensors: torch.Tensor | None
             ) -> tuple[torch.Tensor | None, ...]:
        """Select the rows ``idx`` of each tensor (``None`` idx: all rows, no copy)."""
        if idx is None:
            return tensors
        return tuple(None if t is None else t.index_select(0, idx) for t in tensors)
