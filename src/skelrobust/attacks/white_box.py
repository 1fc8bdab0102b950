"""Shared pieces of the white-box (gradient) attacks.

:class:`GradientAttack` is the base of every attack that follows the
classifier's gradient (SMART, CIASA, FGSM/I-FGSM/PGD/MI-FGSM). Its
:meth:`~GradientAttack.gradient` is the *only* place where such an attack
queries its victim during the optimisation, through the victim's
:class:`~skelrobust.attacks.oracle.GradientOracle` (which counts the queries);
:class:`~skelrobust.attacks.eot.EOT` swaps that victim for the expectation over
its randomness.

Objectives are minimised, one value per sample:

- ``loss="ce"``: the cross-entropy of the goal, ``−CE(z, y)`` for AB and ABN (push the
  true class down), ``CE(z, c)`` for SA (pull the target up);
- ``loss="margin"``: the Carlini-Wagner margin of :func:`~skelrobust.attacks.base.goal_margin`
  (negative exactly when the goal is reached).

Budgets: :func:`steepest` is the unit step of steepest descent under each norm of
:data:`~skelrobust.attacks.base.NORMS`, and :func:`project_exact` the projection onto
its ball that holds exactly in float32, not just up to rounding.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from skelrobust.attacks.base import Attack, budget_size, check_norm, project_budget
from skelrobust.attacks.oracle import GradientOracle
from skelrobust.errors import ConfigError

__all__ = ["LOSSES", "GradientAttack", "joint_unit", "per_sample_norm", "project_exact",
           "project_joint_exact", "project_linf_exact", "sample_view", "steepest", "unit"]

LOSSES = ("ce", "margin")
_NUDGES = 4  # one-ulp moves towards x after the float64 projection; one suffices in practice


def sample_view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-sample values ``(N,)`` shaped to broadcast against ``like`` ``(N, ...)``."""
    return v.view(-1, *([1] * (like.dim() - 1)))


def per_sample_norm(x: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """``‖x_i‖_p`` over all but the batch dimension: ``(N,)``."""
    return torch.linalg.vector_norm(x.flatten(1), ord=p, dim=1)


def unit(x: torch.Tensor, p: float = 2.0, eps: float = 1e-20) -> torch.Tensor:
    """``x_i / ‖x_i‖_p`` per sample (zero stays zero)."""
    return x / sample_view(per_sample_norm(x, p).clamp_min(eps), x)


def joint_unit(x: torch.Tensor, eps: float = 1e-20) -> torch.Tensor:
    """Each joint's xyz vector ``x_{n,:,t,v,m} / ‖x_{n,:,t,v,m}‖₂`` (zero stays zero)."""
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(eps)


def steepest(g: torch.Tensor, norm: str) -> torch.Tensor:
    """The unit step that maximises ``⟨g, δ⟩`` in the ball of ``norm``.

    ``sign(g)`` (``"linf"``), each joint's unit gradient ``g_j/‖g_j‖₂`` (``"joint"``) or
    ``g/‖g‖₂`` per sample (``"l2"``); times ``α`` it is one step of size ``α``.
    """
    if norm == "linf":
        return g.sign()
    if norm == "joint":
        return joint_unit(g)
    check_norm(norm, "steepest")
    return unit(g)


def project_exact(x_adv: torch.Tensor, x: torch.Tensor, budget_m: float,
                  norm: str) -> torch.Tensor:
    """``x_adv`` projected onto the ball ``‖x_adv − x‖ ≤ budget`` of ``norm``, exactly in float.

    :func:`~skelrobust.attacks.base.project_budget` of ``x_adv − x``, computed in
    float64 for the groups (coordinates, joints or samples) outside the ball and
    rounded once; the few that rounding leaves outside (checked in float64) move
    one representable value towards ``x`` per coordinate. Groups inside are
    returned bit for bit; differentiable like ``project_budget``.
    """
    x64 = x.detach().double()
    for attempt in range(_NUDGES + 2):
        d = x_adv.double() - x64
        over = budget_size(d.detach(), norm) > budget_m
        if not bool(over.any()):
            break
        if attempt == 0:
            moved = (x64 + project_budget(d, budget_m, norm)).to(x_adv.dtype)
        elif attempt <= _NUDGES:
            moved = torch.nextafter(x_adv, x)
        else:  # never seen: give up the perturbation of the group, never the budget
            moved = x.to(x_adv.dtype).expand_as(x_adv)
        x_adv = torch.where(over, moved, x_adv)
    return x_adv


def project_linf_exact(x_adv: torch.Tensor, x: torch.Tensor, budget_m: float) -> torch.Tensor:
    """:func:`project_exact` for ``|x_adv − x| ≤ budget`` per coordinate."""
    return project_exact(x_adv, x, budget_m, "linf")


def project_joint_exact(x_adv: torch.Tensor, x: torch.Tensor, budget_m: float) -> torch.Tensor:
    """:func:`project_exact` for ``‖x_adv − x‖₂ ≤ budget`` per joint (over xyz, dim 1)."""
    return project_exact(x_adv, x, budget_m, "joint")


class GradientAttack(Attack):
    """Base of the white-box attacks: objective per goal and its input gradient.

    Subclasses call :meth:`gradient` once per optimisation step; it runs one
    forward and one backward pass of the victim (input gradient only) through
    its :class:`~skelrobust.attacks.oracle.GradientOracle`, which counts one query
    for each sample it is given. ``loss``: ``"ce"`` or ``"margin"`` (module doc);
    ``**options``: the shared options of :class:`~skelrobust.attacks.base.Attack`.
    """

    name = "gradient"

    def __init__(self, victim: nn.Module | GradientOracle, loss: str = "ce",
                 **options: Any) -> None:
        super().__init__(victim, **options)
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
        (for query counting; ``None``: all). Against an EOT victim
        (:class:`~skelrobust.attacks.oracle.ExpectationOracle`) the logits are the
        expectation over the victim's randomness.
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
