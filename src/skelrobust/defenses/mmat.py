"""MMAT: mixed manifold-based adversarial training, as a loss for :func:`~skelrobust.training.fit`.

The defense proposed in the journal version of BASAR (Diao, Wang et al.,
"Understanding the Vulnerability of Skeleton-based Human Activity Recognition via
Black-box Attack", Pattern Recognition 2024; arXiv:2211.11312). What its public
text says (abstract and summaries; the method section could not be read): MMAT is
"a new adversarial training approach by leveraging the sophisticated distributions
of on/off-manifold adversarial samples", it "jointly leverages on- and off-manifold
adversarial samples" and "can successfully help defend against adversarial attacks
without compromising classification accuracy". Its exact loss and weights were not
found, and neither BASAR's code release (realcrane/BASAR-Black-box-Attack-on-
Skeletal-Action-Recognition, attack only) nor Diao et al.'s skeleton benchmark holds
an MMAT trainer.

This module implements the closest faithful reading, stated as an assumption:
train on the mixture of the clean motions, off-manifold adversaries and on-manifold
adversaries,

    L = (w_c·CE(f(x), y) + w_off·CE(f(x_off), y) + w_on·CE(f(x_on), y)) / (w_c + w_off + w_on)

- ``x_off``: PGD on the cross-entropy in the ball of ``budget_mm`` (the inner
  maximisation MART uses, :class:`~skelrobust.defenses.adversarial_training.SignAscent`);
- ``x_on = Π_M(x_off)``: the same adversaries projected onto the natural-motion
  manifold of the clean clip by BASAR's projection
  (:class:`~skelrobust.attacks.manifold.ManifoldProjection`: the clean bone lengths,
  joint angles within limits, accelerations close to the clean ones). The limits are
  the batch's own joint-angle ranges (the loss sees no dataset), widened by
  ``limit_margin_deg``; projection settings default to BASAR's in this package
  (20 Adam steps of 1e-3, acceleration weight 10, 2° margin). ``x_on`` keeps the
  skeleton, not the budget: it may lie outside the L∞ ball of ``x_off``;
- weights ``clean_weight``, ``off_weight``, ``on_weight`` (default 1 each: the three
  sets mixed in equal parts, i.e. data augmentation with both kinds of adversary).
  A term of weight 0 is not computed (with ``clean_weight = 0`` the returned clean
  logits come from eval mode, for the accuracy only).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from skelrobust.attacks.base import motion_mask
from skelrobust.attacks.joint_limits import JointLimits
from skelrobust.attacks.manifold import ManifoldProjection
from skelrobust.defenses.adversarial_training import (
    AdversarialLoss,
    AdversariallyTrained,
    SignAscent,
    clean_logits,
    unwrap,
    weighted_ce,
)
from skelrobust.defenses.base import register_defense
from skelrobust.errors import ConfigError
from skelrobust.validation import COUNT, NON_NEGATIVE, POSITIVE, check_option

__all__ = ["MMAT", "MMATDefense"]


class MMAT(AdversarialLoss):
    """Mixed manifold-based adversarial training (Diao et al., PR 2024; module doc):
    ``L = (w_c·CE(f(x)) + w_off·CE(f(x_off)) + w_on·CE(f(x_on))) / (w_c + w_off + w_on)``.

    ``budget_mm``, ``steps``, ``step_mm``, ``norm``, ``init_std_mm``: the off-manifold PGD
    (:class:`~skelrobust.defenses.adversarial_training.SignAscent`, 10 mm L∞ by
    default); ``projection_steps``, ``projection_lr``, ``accel_weight``,
    ``limit_margin_deg``: the manifold projection; the three weights: the mixture.
    """

    name = "mmat"

    def __init__(self, steps: int = 10, step_mm: float | None = None, budget_mm: float = 10.0,
                 norm: str = "linf", init_std_mm: float | None = None,
                 clean_weight: float = 1.0, off_weight: float = 1.0, on_weight: float = 1.0,
                 projection_steps: int = 20, projection_lr: float = 1e-3,
                 accel_weight: float = 10.0, limit_margin_deg: float = 2.0) -> None:
        who = self.name
        self.ascent = SignAscent(budget_mm, steps, step_mm, norm, init_std_mm, who=who)
        self.weights = tuple(check_option(who, k, v, NON_NEGATIVE) for k, v in (
            ("clean_weight", clean_weight), ("off_weight", off_weight), ("on_weight", on_weight)))
        if sum(self.weights) == 0:
            raise ConfigError(f"{who}: clean_weight, off_weight and on_weight must not all "
                              "be 0")
        self.projection_steps = check_option(who, "projection_steps", projection_steps, COUNT)
        self.projection_lr = check_option(who, "projection_lr", projection_lr, POSITIVE)
        self.accel_weight = check_option(who, "accel_weight", accel_weight, NON_NEGATIVE)
        self.limit_margin_deg = check_option(who, "limit_margin_deg", limit_margin_deg,
                                             NON_NEGATIVE)

    @property
    def args(self) -> dict[str, Any]:
        w_c, w_off, w_on = self.weights
        return {**self.ascent.args, "clean_weight": w_c, "off_weight": w_off,
                "on_weight": w_on, "projection_steps": self.projection_steps,
                "projection_lr": self.projection_lr, "accel_weight": self.accel_weight,
                "limit_margin_deg": self.limit_margin_deg}

    def project(self, net: nn.Module, x: torch.Tensor, x_tilde: torch.Tensor) -> torch.Tensor:
        """``Π_M(x̃)``: motions ``x_tilde`` on the natural-motion manifold of the clean ``x``."""
        skeleton = getattr(unwrap(net), "skeleton", None)
        if skeleton is None:
            raise ConfigError(f"{self.name}: the network has no skeleton layout (the manifold "
                              "projection needs its bones and joint angles)")
        x = x.detach()
        mask = motion_mask(x)
        limits = JointLimits.from_clips(x.cpu(), skeleton)  # the limits live on the CPU
        lower, upper = limits.for_clips(x, skeleton, mask, math.radians(self.limit_margin_deg))
        problem = ManifoldProjection(x, skeleton, lower, upper, mask, self.accel_weight,
                                     self.projection_steps, self.projection_lr)
        rows = torch.arange(len(x), device=x.device)
        return problem.project(x_tilde.detach(), rows)[0].detach()

    def adversaries(self, net: nn.Module, x: torch.Tensor,
                    y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(x_off, x_on)`` (detached; ``x_on`` is ``None`` when ``on_weight`` is 0)."""
        x_off = self.ascent.run(net, x, lambda z: F.cross_entropy(z, y, reduction="none"))
        x_on = self.project(net, x, x_off) if self.weights[2] > 0 else None
        return x_off, x_on

    def __call__(self, net: nn.Module, x: torch.Tensor,
                 y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w_c, w_off, w_on = self.weights
        adv_off: torch.Tensor | None = None
        adv_on: torch.Tensor | None = None
        if w_off > 0 or w_on > 0:
            x_off, x_on = self.adversaries(net, x, y)
            adv_off = net(x_off) if w_off > 0 else None
            adv_on = net(x_on) if x_on is not None else None
        clean = clean_logits(net, x, w_c > 0)
        loss = weighted_ce(y, (w_c, clean), (w_off, adv_off), (w_on, adv_on))
        return loss, clean.detach()


@register_defense("mmat")
class MMATDefense(AdversariallyTrained):
    """MMAT (Diao et al., Pattern Recognition 2024): a base fine-tuned on clean, off-manifold
    and on-manifold adversarial motions (:class:`MMAT`)."""

    loss_class = MMAT
