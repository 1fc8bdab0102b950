"""CIASA: Constrained Iterative Attack for Skeleton Actions.

Liu, Akhtar and Mian, "Adversarial Attack on Skeleton-based Human Action
Recognition", IEEE TNNLS 2020 (arXiv 1909.06500). An iterative, clipped
gradient attack whose every iterate is projected onto physical constraints:

1. step and clip (the paper's BIM-style update): ``p ← Π_{q,ε}(p − α·sign(∇_p L))``
   on the chosen joints and frames, ``α`` = ``step_mm`` per coordinate and ``Π`` the
   projection onto the ball of ``norm`` with ``ε`` = ``budget_mm``: ``"joint"``
   (default) bounds every joint's displacement ``‖q̂_j − q_j‖₂ ≤ ε``, ``"linf"`` (the
   paper's) each coordinate. Both keep the sign step: it ignores the float rounding
   of the gradient, which varies with the batch (a per-joint unit step would carry
   it into the realignment, whose bisection amplifies it to up to 0.46 mm), so a sample's
   result does not depend on its batch;
2. spatial skeleton realignment (the paper's Sec. III-B): the motion is
   ``q̂ = R(p)``, every frame re-projected onto the clean bone lengths along
   the kinematic chain, keeping the perturbed bone directions
   (:func:`~skelrobust.attacks.projection.realign_within_budget`);
3. joint-angle constraint: each bone turns at most ``max_angle_deg`` away
   from its clean direction, so every angle between two adjacent bones
   changes by at most ``2·max_angle_deg``. (The paper bounds joint angles by
   anthropometric limits; a bound on the *change* needs no per-layout limit
   tables and keeps the pose recognisably the same.)
4. the realignment turns a bone back only as far as needed for each joint to
   stay inside ``ε``, so bone lengths, angle bound and budget hold together.

The gradient is taken *through* ``R`` (``∇_p L = J_R(p)ᵀ ∇_q̂ L``): the step is
made in the latent positions ``p`` and only its component along the
constraint surface survives, rather than computing the gradient at ``q̂`` and
letting the realignment discard most of it (about twice the success rate on
the synthetic victims at equal budget). The loss minimised per sample is

    L = J(q̂) + λ_t · ℓ_temp(q̂ − q) / ε² + λ_g · (−log D(q̂)),

with ``J`` the goal's objective (cross-entropy or CW margin, AB / ABN-N / SA,
:class:`~skelrobust.attacks.white_box.GradientAttack`), ``ℓ_temp`` the temporal
smoothness ``‖δ_{t+1} − δ_t‖²`` of the perturbation per valid frame
(:func:`~skelrobust.attacks.losses.temporal_smoothness_loss`: consecutive frames
are perturbed alike) and ``D`` a discriminator on bone directions trained on
clean motion, the GAN regulariser (:mod:`skelrobust.attacks.discriminator`).
A sample stops at the first iterate whose goal margin is below ``−confidence``.

Localised attacks (the paper's Sec. IV-D): ``joints`` (joint names, body-part
names of ``Skeleton.parts`` or indices) and ``frames`` choose what the step may
move. Realignment keeps a chosen joint's bone length by moving it on a sphere
around its parent; its un-chosen descendants ride along rigidly (they keep
their clean bone vectors). Promise: every joint that is neither chosen nor
below a chosen joint, every un-chosen frame, padding frame and absent body is
bit for bit the clean input. A body part (``"left_arm"``) is closed under
descendants, so exactly its joints move.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from skelrobust.attacks.base import check_norm, project_budget
from skelrobust.attacks.discriminator import (
    BoneDirectionDiscriminator,
    bone_direction_features,
    train_discriminator,
)
from skelrobust.attacks.losses import temporal_smoothness_loss
from skelrobust.attacks.oracle import GradientOracle
from skelrobust.attacks.projection import REALIGN_NORMS, descendant_mask, realign_within_budget
from skelrobust.attacks.registry import register_attack
from skelrobust.attacks.white_box import GradientAttack
from skelrobust.errors import ConfigError
from skelrobust.skeleton import Skeleton

__all__ = ["CIASA", "BoneDirectionDiscriminator", "bone_direction_features",
           "resolve_frames", "resolve_joints", "train_discriminator"]

JointSpec = str | int | Sequence[str | int] | None
FrameSpec = Sequence[int] | slice | np.ndarray | torch.Tensor | None
STEP_RULES = ("sign", "scaled")


def resolve_joints(skeleton: Skeleton, joints: JointSpec) -> np.ndarray:
    """Boolean ``(V,)`` mask from joint names, body-part names or indices (``None``: all)."""
    v = skeleton.num_joints
    if joints is None:
        return np.ones(v, dtype=bool)
    items = [joints] if isinstance(joints, (str, int, np.integer)) else list(joints)
    if not items:
        raise ConfigError("joints: expected at least one joint, part name or index")
    mask = np.zeros(v, dtype=bool)
    for item in items:
        if isinstance(item, str):
            if item in skeleton.parts:
                mask |= skeleton.part_mask(item)
            else:
                mask[skeleton.joint_index(item)] = True
        elif isinstance(item, (int, np.integer)) and 0 <= int(item) < v:
            mask[int(item)] = True
        else:
            raise ConfigError(f"joints: {item!r} is neither a joint name, a body part of "
                              f"{skeleton.name!r} ({', '.join(skeleton.parts)}) nor an index "
                              f"in [0, {v})")
    return mask


def resolve_frames(frames: FrameSpec, num_frames: int) -> torch.Tensor:
    """Boolean ``(T,)`` mask from frame indices, a slice or a boolean mask (``None``: all)."""
    if frames is None:
        return torch.ones(num_frames, dtype=torch.bool)
    if isinstance(frames, slice):
        out = torch.zeros(num_frames, dtype=torch.bool)
        out[frames] = True
        return out
    f = torch.as_tensor(np.asarray(frames))
    if f.dtype == torch.bool:
        if f.shape != (num_frames,):
            raise ConfigError(f"frames: a boolean mask must have shape ({num_frames},), got "
                              f"{tuple(f.shape)}")
        return f.clone()
    f = f.long().reshape(-1)
    if len(f) == 0 or (f < 0).any() or (f >= num_frames).any():
        raise ConfigError(f"frames: expected indices in [0, {num_frames}), got {f.tolist()}")
    out = torch.zeros(num_frames, dtype=torch.bool)
    out[f] = True
    return out


def smooth_frames(u: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian filter of ``u`` ``(N, C, T, V, M)`` along time (std ``sigma`` frames, zero padding).

    Applied to the step, the filter acts on the sum of the steps too (it is
    linear), so the perturbation built from them is smooth in time without the
    filter compounding over the iterations.
    """
    if sigma <= 0 or u.shape[2] < 2:
        return u
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=u.dtype, device=u.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    n, c, frames, v, m = u.shape
    flat = u.permute(0, 1, 3, 4, 2).reshape(-1, 1, frames)
    out = F.conv1d(flat, kernel, padding=radius)
    return out.reshape(n, c, v, m, frames).permute(0, 1, 4, 2, 3)


@register_attack("ciasa")
class CIASA(GradientAttack):
    """CIASA (Liu et al., TNNLS 2020): bone lengths kept, joint angles bounded, in a budget.

    See the module doc for the constraints and the loss.

    - ``budget_mm`` ε (mm) in the ball of ``norm``: ``"joint"`` (default: no joint
      moves more than ε) or ``"linf"`` (per coordinate, the paper's); ``step_mm`` α
      (mm, per coordinate); ``steps``.
    - ``step_rule``: ``"sign"`` (BIM, the default) or ``"scaled"`` (the masked
      gradient divided by its largest entry, so penalties act in proportion).
    - ``max_angle_deg``: bound on each bone's turn from its clean direction
      (``None``: no bound); ``realign_iterations``: bisection halvings of the
      budget projection.
    - ``temporal_weight`` λ_t and ``gan_weight`` λ_g of the regularisers.
    - ``discriminator``: a trained :class:`BoneDirectionDiscriminator` (see
      :meth:`fit_discriminator`, e.g. on the classifier's training clips).
      Without one and with ``gan_weight > 0``, one is trained per sample on
      that sample's clean motion (``disc_steps`` steps), so a sample's result
      does not depend on its batch.
    - ``joints`` / ``frames``: localisation (module doc); ``class_loss``: ``"ce"`` or
      ``"margin"``; the shared ``confidence`` (``**options``, :class:`~skelrobust.attacks.base.
      Attack`) is the margin a sample must reach before it stops.
    """

    name = "ciasa"

    def __init__(self, victim: nn.Module | GradientOracle, budget_mm: float = 20.0,
                 steps: int = 200, step_mm: float = 1.0, max_angle_deg: float | None = 30.0,
                 temporal_weight: float = 0.01, gan_weight: float = 0.1,
                 discriminator: BoneDirectionDiscriminator | None = None,
                 disc_steps: int = 100, joints: JointSpec = None, frames: FrameSpec = None,
                 realign_iterations: int = 10, class_loss: str = "ce", step_rule: str = "sign",
                 smooth_sigma: float = 1.0, norm: str = REALIGN_NORMS[0],
                 **options: Any) -> None:
        super().__init__(victim, loss=class_loss, **options)
        self.norm = check_norm(norm, self.name, REALIGN_NORMS)
        checks = [
            (step_rule in STEP_RULES, f"step_rule must be one of {STEP_RULES}, got {step_rule!r}"),
            (self.skeleton is not None, "the victim has no skeleton layout"),
            (budget_mm > 0, f"budget_mm must be > 0, got {budget_mm}"),
            (steps >= 0, f"steps must be >= 0, got {steps}"),
            (step_mm > 0, f"step_mm must be > 0, got {step_mm}"),
            (max_angle_deg is None or 0 < max_angle_deg <= 180,
             f"max_angle_deg must be in (0, 180] or None, got {max_angle_deg}"),
            (temporal_weight >= 0 and gan_weight >= 0,
             f"temporal_weight and gan_weight must be >= 0, got {temporal_weight}, "
             f"{gan_weight}"),
            (disc_steps >= 0, f"disc_steps must be >= 0, got {disc_steps}"),
            (smooth_sigma >= 0, f"smooth_sigma must be >= 0 (frames), got {smooth_sigma}"),
            (realign_iterations >= 1, f"realign_iterations must be >= 1, got "
                                      f"{realign_iterations}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{self.name}: {message}")
        self.step_rule, self.smooth_sigma = step_rule, float(smooth_sigma)
        self.budget_mm, self.steps, self.step_mm = float(budget_mm), int(steps), float(step_mm)
        self.max_angle_deg = max_angle_deg
        self.temporal_weight, self.gan_weight = float(temporal_weight), float(gan_weight)
        self.disc_steps = int(disc_steps)
        self.realign_iterations = int(realign_iterations)
        self.joint_mask = resolve_joints(self.skeleton, joints)
        self.frames = frames
        self.discriminator = self._check_discriminator(discriminator)

    # ------------------------------------------------------------------ discriminator
    def fit_discriminator(self, motions: torch.Tensor, steps: int = 300,
                          seed: int | None = None,
                          **kwargs: object) -> BoneDirectionDiscriminator:
        """Train a shared discriminator on clean ``motions`` (e.g. the classifier's train set)."""
        kwargs.setdefault("progress", self.progress)
        disc = train_discriminator(motions, steps=steps, seed=self.seed if seed is None else seed,
                                   skeleton=self.skeleton, **kwargs)  # type: ignore[arg-type]
        self.discriminator = self._check_discriminator(disc)
        return disc

    def _check_discriminator(
            self, disc: BoneDirectionDiscriminator | None) -> BoneDirectionDiscriminator | None:
        if disc is not None and disc.skeleton.num_joints != self.skeleton.num_joints:
            raise ConfigError(f"{self.name}: the discriminator's layout {disc.skeleton.name!r} "
                              f"does not match the classifier's {self.skeleton.name!r}")
        return disc

    def _discriminator_for(self, x: torch.Tensor) -> tuple[BoneDirectionDiscriminator | None,
                                                           torch.Tensor | None]:
        """The discriminator of this call and, for per-sample ensembles, member indices."""
        if self.gan_weight == 0:
            return None, None
        disc = self.discriminator
        if disc is None:
            disc = train_discriminator(x, steps=self.disc_steps, seed=self.seed,
                                       skeleton=self.skeleton, per_sample=True,
                                       progress=self.progress)
        elif disc.members not in (1, len(x)):
            raise ConfigError(f"{self.name}: a discriminator ensemble of {disc.members} members "
                              f"cannot score a batch of {len(x)}")
        disc = disc.to(x.device).eval()
        members = torch.arange(len(x), device=x.device) if disc.members > 1 else None
        return disc, members

    # ------------------------------------------------------------------ attack
    def step_mask(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(N, 1, T, V, M)`` 0/1: where the gradient may move the motion."""
        joints = torch.as_tensor(self.joint_mask, device=x.device)
        frames = resolve_frames(self.frames, x.shape[2]).to(x.device)
        return mask * frames.view(1, 1, -1, 1, 1).to(x.dtype) * joints.view(1, 1, 1, -1, 1).to(
            x.dtype)

    def moved_mask(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(N, 1, T, V, M)`` bool: joints the attack may change (chosen and descendants)."""
        return descendant_mask(self.step_mask(x, mask) > 0, self.skeleton)

    def regulariser_gradient(self, xa: torch.Tensor, x: torch.Tensor, mask: torch.Tensor,
                             disc: BoneDirectionDiscriminator | None,
                             members: torch.Tensor | None) -> torch.Tensor | None:
        """Gradient of ``λ_t·L_temp/ε² + λ_g·(−log D(q̂))`` at ``xa`` (no classifier query)."""
        if self.temporal_weight == 0 and disc is None:
            return None
        eps = self.budget_mm * 1e-3
        with torch.enable_grad():
            xg = xa.detach().requires_grad_(True)
            loss = xg.new_zeros(len(xg))
            if self.temporal_weight > 0:
                loss = loss + self.temporal_weight / eps ** 2 * temporal_smoothness_loss(
                    xg - x, mask, order=1)
            if disc is not None:
                z = disc(xg, members, frame_mask=mask[:, 0, :, 0, :].permute(0, 2, 1))
                loss = loss + self.gan_weight * F.softplus(-z)
            (grad,) = torch.autograd.grad(loss.sum(), xg)
        return grad

    def realign(self, p: torch.Tensor, x: torch.Tensor, movable: torch.Tensor) -> torch.Tensor:
        """The constrained motion of latent positions ``p``: realigned, angle-bounded, in budget."""
        return realign_within_budget(p, x, self.skeleton, self.budget_mm * 1e-3,
                                     mask=movable > 0, max_angle_deg=self.max_angle_deg,
                                     iterations=self.realign_iterations, norm=self.norm)

    def direction(self, grad_p: torch.Tensor, movable: torch.Tensor) -> torch.Tensor:
        """The step of ``step_rule`` for a latent gradient, masked and smoothed in time."""
        if self.step_rule == "sign":
            direction = grad_p.sign()
        else:  # largest coordinate of the (masked) gradient moves by α
            g = grad_p * movable
            top = g.abs().flatten(1).amax(1).clamp_min(1e-30)
            direction = g / top.view(-1, 1, 1, 1, 1)
        return smooth_frames(direction * movable, self.smooth_sigma) * movable

    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(x)
        eps, alpha = self.budget_mm * 1e-3, self.step_mm * 1e-3
        movable = self.step_mask(x, mask)
        disc, members = self._discriminator_for(x)
        latent, x_adv = x.clone(), x.clone()
        iterations = torch.full((n,), self.steps, dtype=torch.long)
        active = torch.ones(n, dtype=torch.bool, device=x.device)
        with self.step_bar(self.steps + 1) as bar:
            for it in bar:
                idx = active.nonzero()[:, 0]
                if len(idx) == 0:
                    break
                p, x0, ya, ta, ma, mv = self.rows(idx, latent, x, y, target, mask, movable)
                last = it == self.steps
                with torch.enable_grad():
                    pg = p.detach().requires_grad_(not last)
                    q = self.realign(pg, x0, mv)
                qc = x0 if it == 0 else q.detach()  # the clean input itself, not R(q) ≈ q
                if last:  # the final iterate is only checked
                    with torch.no_grad():
                        logits = self.logits(qc, active)
                else:
                    logits, _, grad = self.gradient(qc, ya, ta, active)
                done = self.reached(logits, ya, ta)
                x_adv[idx] = qc
                if done.any():
                    iterations[idx[done].cpu()] = it
                    active[idx[done]] = False
                self.show_goals(bar, ~active)
                if last or bool(done.all()):
                    break
                grad_r = self.regulariser_gradient(qc, x0, ma, disc,
                                                   None if members is None else members[idx])
                if grad_r is not None:
                    grad = grad + grad_r
                # the gradient in latent space: through the realignment (its tangent space)
                (grad_p,) = torch.autograd.grad(q, pg, grad_outputs=grad)
                with torch.no_grad():
                    step = x0 + project_budget(p - alpha * self.direction(grad_p, mv) - x0,
                                               eps, self.norm)
                    keep = ~done
                    latent[idx[keep]] = step[keep]
        return x_adv.detach(), iterations
