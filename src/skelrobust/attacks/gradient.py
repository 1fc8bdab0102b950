"""Gradient baselines on one shared iterative core: FGSM, I-FGSM (BIM), PGD, MI-FGSM.

All four are :class:`IterativeGradient` with different defaults. For a
perturbation budget ``ε`` (``budget_mm``) in the ball of ``norm``
(:func:`~skelrobust.attacks.base.project_budget`, over the real motion of
:func:`~skelrobust.attacks.base.motion_mask`) and step ``a`` (``step_mm``), each step
descends the goal's objective ``J`` (:class:`~skelrobust.attacks.white_box.GradientAttack`)
along the steepest direction of the norm (:func:`~skelrobust.attacks.white_box.steepest`):

- ``"joint"`` (default; no joint moves more than ``ε``, ``‖δ_{n,:,t,v,m}‖₂ ≤ ε``):
  ``δ_j ← Π_ε(δ_j − a·g_j/‖g_j‖₂)`` per joint ``j``, random start uniform in each
  joint's ball (direction uniform on the sphere, radius ``ε·u^{1/3}``);
- ``"linf"`` (per coordinate): ``δ ← Π_ε(δ − a·sign(g))`` (FGSM: Goodfellow et al., ICLR
  2015, one step of ``a = ε``; I-FGSM/BIM: Kurakin et al., ICLR-W 2017, Eq. 1; PGD:
  Madry et al., ICLR 2018, Eq. 2, with a uniform random start in the ball);
- ``"l2"`` (per sample): ``δ ← Π_ε(δ − a·g/‖g‖₂)``, random start uniform in direction and
  radius;
- MI-FGSM (Dong et al., CVPR 2018, Eqs. 6–7): ``g ← μ·g + ∇J/‖∇J‖₁`` (``μ`` = ``decay``,
  1.0 by default) and the step follows ``g``.

The budget holds exactly in float32 (:func:`~skelrobust.attacks.white_box.project_exact`).
PGD ``restarts`` keep, per sample, the restart with the lowest goal margin (a
successful one when there is one); iterations add up over restarts. With
``early_stop`` a sample stops moving as soon as its goal is reached (its iterations
are recorded).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from skelrobust.attacks.base import NORMS, check_norm, project_budget
from skelrobust.attacks.oracle import GradientOracle
from skelrobust.attacks.registry import register_attack
from skelrobust.attacks.white_box import GradientAttack, joint_unit, project_exact, steepest, unit
from skelrobust.errors import ConfigError

__all__ = ["BIM", "FGSM", "IFGSM", "MIFGSM", "PGD", "IterativeGradient"]

DEFAULT_NORM = NORMS[0]
_RADIUS_SALT = 1 << 20  # the joint-ball radii draw from their own per-sample stream


class IterativeGradient(GradientAttack):
    """The shared core: ``steps`` projected gradient steps, optional momentum and restarts.

    ``budget_mm`` ε and ``step_mm`` α in mm, ``norm`` of the ball, ``random_start``,
    ``restarts``, ``decay`` μ (momentum), ``early_stop``; ``loss`` and ``**options`` as
    :class:`~skelrobust.attacks.white_box.GradientAttack`.
    """

    name = "iterative-gradient"

    def __init__(self, victim: nn.Module | GradientOracle, budget_mm: float = 20.0,
                 norm: str = DEFAULT_NORM, steps: int = 10, step_mm: float | None = None,
                 random_start: bool = False, restarts: int = 1, decay: float = 0.0,
                 loss: str = "ce", early_stop: bool = False, **options: Any) -> None:
        super().__init__(victim, loss=loss, **options)
        check_norm(norm, self.name)
        if budget_mm <= 0:
            raise ConfigError(f"{self.name}: budget_mm must be > 0, got {budget_mm}")
        if steps < 1 or restarts < 1:
            raise ConfigError(f"{self.name}: steps and restarts must be >= 1, got {steps} "
                              f"and {restarts}")
        if step_mm is not None and step_mm <= 0:
            raise ConfigError(f"{self.name}: step_mm must be > 0, got {step_mm}")
        if decay < 0:
            raise ConfigError(f"{self.name}: decay must be >= 0, got {decay}")
        self.budget_mm, self.norm, self.steps = float(budget_mm), norm, int(steps)
        self.step_mm = float(step_mm) if step_mm is not None else self.default_step()
        self.random_start, self.restarts, self.decay = random_start, int(restarts), float(decay)
        self.early_stop = early_stop

    def default_step(self) -> float:
        """Step size in mm when none is given: ``ε / steps``."""
        return self.budget_mm / self.steps

    # ------------------------------------------------------------------ core
    def _start(self, x: torch.Tensor, mask: torch.Tensor, restart: int) -> torch.Tensor:
        """Initial perturbation: zero, or uniform in the ball (per-sample seeded)."""
        eps = self.budget_mm / 1000.0
        if not self.random_start:
            return torch.zeros_like(x)
        if self.norm == "linf":
            return self.per_sample_rand(x, "uniform", salt=restart) * eps * mask
        if self.norm == "joint":  # uniform in each joint's ball: radius ε·u^(1/3)
            direction = joint_unit(self.per_sample_rand(x, "normal", salt=restart))
            u = self.per_sample_rand(x, "uniform", salt=_RADIUS_SALT + restart)[:, :1].abs()
            return direction * u.pow(1 / 3) * eps * mask
        direction = unit(self.per_sample_rand(x, "normal", salt=restart) * mask)
        radius = self.per_sample_rand(x, "uniform", salt=restart + 1)[:, :1, :1, :1, :1].abs()
        return direction * radius * eps

    def _run(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
             mask: torch.Tensor, restart: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        eps, alpha = self.budget_mm / 1000.0, self.step_mm / 1000.0
        x_adv = x + self._start(x, mask, restart)
        momentum = torch.zeros_like(x) if self.decay else None
        done = torch.zeros(n, dtype=torch.bool, device=x.device)
        iterations = torch.full((n,), self.steps, dtype=torch.long)
        with self.step_bar(self.steps) as bar:
            for step in bar:
                idx = (~done).nonzero()[:, 0] if bool(done.any()) else None
                if idx is not None and len(idx) == 0:
                    break
                xa, xc, ya, ta, ma = self.rows(idx, x_adv, x, y, target, mask)
                logits, _, grad = self.gradient(xa, ya, ta, ~done)
                grad = grad * ma
                hit = self.reached(logits, ya, ta)
                keep = None
                if self.early_stop and bool(hit.any()):
                    rows = torch.arange(n, device=x.device) if idx is None else idx
                    iterations[rows[hit].cpu()] = step
                    done[rows[hit]] = True
                    keep = (~hit).to(x.dtype).view(-1, 1, 1, 1, 1)
                self.show_goals(bar, done if self.early_stop else hit, self.early_stop)
                if momentum is not None:
                    (mom,) = self.rows(idx, momentum)
                    mom = self.decay * mom + unit(grad, p=1)
                    momentum = mom if idx is None else momentum.index_copy(0, idx, mom)
                    grad = mom
                move = steepest(grad, self.norm) * alpha
                if keep is not None:
                    move = move * keep
                xa = xc + project_budget(xa - move - xc, eps, self.norm) * ma
                x_adv = xa if idx is None else x_adv.index_copy(0, idx, xa)
        return project_exact(x_adv, x, eps, self.norm), iterations

    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        best, iterations = self._run(x, y, target, mask, 0)
        if self.restarts == 1:
            return best, iterations
        with torch.no_grad():
            best_margin = self.margin(self.logits(best), y, target)
        total = iterations.clone()
        for restart in range(1, self.restarts):
            if self.early_stop and bool((best_margin < 0).all()):
                break
            cand, its = self._run(x, y, target, mask, restart)
            with torch.no_grad():
                margin = self.margin(self.logits(cand), y, target)
            better = margin < best_margin
            best = torch.where(better.view(-1, 1, 1, 1, 1), cand, best)
            best_margin = torch.where(better, margin, best_margin)
            total += its
        return best, total


@register_attack("fgsm")
class FGSM(IterativeGradient):
    """Fast gradient sign method: one step of size ``ε`` (joint, L2: along the unit gradient)."""

    name = "fgsm"

    def __init__(self, victim: nn.Module | GradientOracle, budget_mm: float = 20.0,
                 norm: str = DEFAULT_NORM, loss: str = "ce", **options: Any) -> None:
        super().__init__(victim, budget_mm=budget_mm, norm=norm, steps=1, step_mm=budget_mm,
                         loss=loss, **options)


@register_attack("bim", "ifgsm")
class BIM(IterativeGradient):
    """I-FGSM / basic iterative method: ``steps`` steps of ``α = ε / steps``, no random start."""

    name = "bim"

    def __init__(self, victim: nn.Module | GradientOracle, budget_mm: float = 20.0,
                 norm: str = DEFAULT_NORM, steps: int = 10, step_mm: float | None = None,
                 loss: str = "ce", early_stop: bool = False, **options: Any) -> None:
        super().__init__(victim, budget_mm=budget_mm, norm=norm, steps=steps, step_mm=step_mm,
                         loss=loss, early_stop=early_stop, **options)


IFGSM = BIM


@register_attack("pgd")
class PGD(IterativeGradient):
    """Projected gradient descent with a random start and restarts (Madry et al., 2018).

    Default step ``α = 2.5·ε / steps`` (Madry et al.'s rule).
    """

    name = "pgd"

    def __init__(self, victim: nn.Module | GradientOracle, budget_mm: float = 20.0,
                 norm: str = DEFAULT_NORM, steps: int = 20, step_mm: float | None = None,
                 restarts: int = 1, random_start: bool = True, loss: str = "ce",
                 early_stop: bool = False, **options: Any) -> None:
        super().__init__(victim, budget_mm=budget_mm, norm=norm, steps=steps, step_mm=step_mm,
                         random_start=random_start, restarts=restarts, loss=loss,
                         early_stop=early_stop, **options)

    def default_step(self) -> float:
        return 2.5 * self.budget_mm / self.steps


@register_attack("mifgsm")
class MIFGSM(IterativeGradient):
    """Momentum iterative FGSM (Dong et al., 2018): decay ``μ = 1.0``, ``α = ε / steps``."""

    name = "mifgsm"

    def __init__(self, victim: nn.Module | GradientOracle, budget_mm: float = 20.0,
                 norm: str = DEFAULT_NORM, steps: int = 10, step_mm: float | None = None,
                 decay: float = 1.0, loss: str = "ce", early_stop: bool = False,
                 **options: Any) -> None:
        super().__init__(victim, budget_mm=budget_mm, norm=norm, steps=steps, step_mm=step_mm,
                         decay=decay, loss=loss, early_stop=early_stop, **options)
