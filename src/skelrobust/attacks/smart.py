"""SMART (Wang et al., "Understanding the Robustness of Skeleton-based Action
Recognition under Adversarial Attack", CVPR 2021).

SMART minimises ``L = w·L_c + (1 − w)·L_p`` (Eq. 1) over the adversarial motion
``q̂``, with the perceptual loss ``L_p = α·l_dyn + (1 − α)·l_bl`` (Eq. 2):
``l_dyn = Σ_n β_n ‖∂ⁿq − ∂ⁿq̂‖²`` keeps position, velocity and acceleration close
to the clean motion ``q`` (Eq. 4) and ``l_bl`` the bone lengths (Eq. 3); see
:mod:`skelrobust.attacks.losses`.

The update follows the authors' released code: the gradients of ``L_c`` and of
``L_p`` are each normalised to unit L2 norm per sample, combined with weights
``w`` and ``1 − w`` and followed by plain gradient descent; a sample is frozen as
soon as it reaches its goal (per-sample early stop), so every successful sample
keeps the first adversarial motion found.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from skelrobust.attacks.base import NORMS, check_norm, project_budget
from skelrobust.attacks.losses import SmartPerceptualGradient
from skelrobust.attacks.white_box import GradientAttack, per_sample_norm, project_exact
from skelrobust.errors import ConfigError

__all__ = ["SMART"]


class SMART(GradientAttack):
    """SMART: perceptually constrained white-box attack on skeletal motion.

    Parameters (P: the authors' default, from their released code — the CVPR 2021
    code, ``realcrane/Understanding-the-Robustness-of-Skeleton-based-Action-
    Recognition-under-Adversarial-Attack``, and its later version in Diao et al.'s
    ``Skeleton-Robustness-Benchmark``; O: ours):

    - ``goal`` ``"ab"``, ``"abn"`` (with ``n``, P: 3) or ``"sa"``.
    - ``steps`` (P: 1000 iterations in the authors' attack command; the paper
      reports 20 to 1000): the most optimisation steps; samples stop early.
    - ``lr`` (O: 0.5): step length in mm, as the RMS per coordinate of one step (the
      authors take fixed-length steps of the normalised gradient, 0.01 in their
      normalised data units; we state it in mm so it does not depend on the
      data normalisation or the clip size). Smaller steps overshoot the decision
      boundary less but need more of them.
    - ``w`` (P: 0.6, ``classWeight``): weight of the classification term.
    - ``alpha`` (P: 0.3): weight of ``l_dyn``; ``1 − α`` (P: 0.7) that of ``l_bl``.
    - ``betas`` (P: 0.6, 0, 0.4): ``β_n`` for position, velocity, acceleration (the
      authors keep position and acceleration only).
    - ``class_loss`` (P: ``"ce"``): ``−CE(z, y)`` for AB, ``CE(z, c)`` for SA; for ABN
      we also use ``−CE(z, y)`` (the authors' code regresses the logits to a
      uniform vector instead) — or ``"margin"`` for the CW margins of the base.
    - ``budget_mm``/``norm`` (O): optional hard budget in mm, projected after every step;
      ``norm`` ``"joint"`` (default: no joint moves more than ``budget_mm``), ``"linf"``
      (per coordinate) or ``"l2"`` (per clip), see
      :func:`~skelrobust.attacks.base.project_budget`.
    - ``fps`` (O): ``None`` takes derivatives per frame; a number gives them per second.

    Differences from the authors' code: joints are weighted equally in ``l_dyn``
    (they weight the spine joints of their 25-joint layout twice); ``l_dyn`` and
    ``l_bl`` are means over valid frames; the perceptual gradient is computed in
    closed form (:class:`~skelrobust.attacks.losses.SmartPerceptualGradient`), so a
    step costs one forward and one backward pass of the classifier.
    """

    name = "smart"

    def __init__(self, classifier: nn.Module, goal: str = "ab", n: int = 3, steps: int = 1000,
                 lr: float = 0.5, w: float = 0.6, alpha: float = 0.3,
                 betas: Sequence[float] = (0.6, 0.0, 0.4), budget_mm: float | None = None,
                 norm: str = NORMS[0], class_loss: str = "ce", fps: float | None = None,
                 target_mode: str = "given", seed: int = 0, report: bool = True) -> None:
        super().__init__(classifier, goal=goal, n=n, target_mode=target_mode, loss=class_loss,
                         seed=seed, report=report)
        if steps < 0:
            raise ConfigError(f"smart: steps must be >= 0, got {steps}")
        if lr <= 0:
            raise ConfigError(f"smart: lr must be > 0 (mm), got {lr}")
        if not 0 <= w <= 1 or not 0 <= alpha <= 1:
            raise ConfigError(f"smart: w and alpha must be in [0, 1], got {w} and {alpha}")
        if len(betas) < 1 or any(b < 0 for b in betas):
            raise ConfigError(f"smart: betas must be non-negative weights, got {tuple(betas)}")
        if budget_mm is not None and budget_mm <= 0:
            raise ConfigError(f"smart: budget_mm must be > 0, got {budget_mm}")
        check_norm(norm, "smart")
        self.steps, self.lr, self.w, self.alpha = int(steps), float(lr), float(w), float(alpha)
        self.betas = tuple(float(b) for b in betas)
        self.budget_mm = None if budget_mm is None else float(budget_mm)
        self.norm, self.fps = norm, fps

    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        full_mask = bool(mask.all())
        percep_all = SmartPerceptualGradient(x, self.classifier.skeleton, mask, self.alpha,
                                             self.betas, self.fps)
        # RMS-per-coordinate step: the unit-norm direction times sqrt(#coordinates moved)
        scale = (mask.flatten(1).sum(1) * 3 * x.shape[3]).sqrt() * (self.lr / 1000.0)
        budget = None if self.budget_mm is None else self.budget_mm / 1000.0
        x_adv = x.clone()
        done = torch.zeros(n, dtype=torch.bool, device=x.device)
        iterations = torch.full((n,), self.steps, dtype=torch.long)
        idx, percep = None, percep_all
        with self.step_bar(self.steps) as bar:
            for step in bar:
                xa, xc, ya, ta, ma, sa = self.rows(idx, x_adv, x, y, target, mask, scale)
                logits, _, g_class = self.gradient(xa, ya, ta, ~done)
                hit = self.reached(logits, ya, ta)
                g_percep = percep(xa)
                if not full_mask:
                    g_class = g_class * ma
                # x ← x − s·(w·ĝ_c + (1 − w)·ĝ_p), only for the samples still short of their goal
                sa = sa * (~hit).to(x.dtype)
                a = sa * self.w / per_sample_norm(g_class).clamp_min(1e-20)
                b = sa * (1 - self.w) / per_sample_norm(g_percep).clamp_min(1e-20)
                xa = torch.addcmul(xa, g_class, a.view(-1, 1, 1, 1, 1), value=-1.0)
                xa = torch.addcmul(xa, g_percep, b.view(-1, 1, 1, 1, 1), value=-1.0)
                if budget is not None:
                    xa = xc + project_budget(xa - xc, budget, self.norm) * ma
                x_adv = xa if idx is None else x_adv.index_copy(0, idx, xa)
                if bool(hit.any()):  # freeze the samples that reached their goal
                    rows = torch.arange(n, device=x.device) if idx is None else idx
                    iterations[rows[hit].cpu()] = step
                    done[rows[hit]] = True
                    idx = (~done).nonzero()[:, 0]
                    self.show_goals(bar, done)
                    if len(idx) == 0:
                        break
                    percep = percep_all.rows(idx)
        if budget is not None:
            x_adv = project_exact(x_adv, x, budget, self.norm)
        return x_adv, iterations
