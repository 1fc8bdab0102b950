"""Projections of perturbed motion onto skeleton constraints (shared by CIASA and BASAR).

Spatial skeleton realignment (Liu, Akhtar and Mian, "Adversarial Attack on
Skeleton-based Human Action Recognition", TNNLS 2020, Sec. III-B): every frame
of a perturbed motion is re-projected onto the *clean* bone lengths by walking
the kinematic tree from the root,

    q̂_root = q_root + s·(q̃_root − q_root),
    q̂_j    = q̂_p(j) + ℓ_j · u_j,        ℓ_j = ‖q_j − q_p(j)‖ (clean),

where ``u_j`` is the perturbed bone direction ``q̃_j − q̃_p(j)`` (normalised),
optionally rotated back towards the clean direction so that it makes an angle
of at most ``max_angle_deg`` with it (joint-angle constraint), and, to enforce
a budget without breaking the bone lengths, turned back along the great
circle by the smallest amount that keeps the joint inside the budget: the
joint ball ``‖q̂_j − q_j‖₂ ≤ ε`` (``norm="joint"``, the default) or the cube
``|q̂_j − q_j| ≤ ε`` per coordinate (``norm="linf"``). The
tree is walked level by level (all joints of one depth at once), vectorised
over samples, frames and bodies.

Localisation. ``mask`` (broadcastable to ``(N, 1, T, V, M)``) names the joints
whose own bone direction may change ("chosen"). A chosen joint's descendants
ride along: they keep their *clean* bone vectors, so the subtree translates
rigidly with it and every bone keeps its length. Every joint that is neither
chosen nor below a chosen joint (in that frame and body) is copied from the
clean motion bit for bit.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from skelrobust.attacks.base import budget_size, check_norm, project_budget
from skelrobust.attacks.white_box import project_exact
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.skeleton import Skeleton

__all__ = ["REALIGN_NORMS", "descendant_mask", "realign_bone_lengths", "realign_within_budget"]

_EPS = 1e-12
REALIGN_NORMS = ("joint", "linf")  # per-joint balls: the kinematic walk bounds joint by joint


@lru_cache(maxsize=64)
def tree_levels(skeleton: Skeleton) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """``((joints, parents), ...)`` per depth 1, 2, … (each a tuple of joint indices)."""
    depth = skeleton.depths
    out = []
    for d in range(1, int(depth.max()) + 1):
        joints = tuple(int(j) for j in skeleton.topological_order if depth[j] == d)
        out.append((joints, tuple(skeleton.parents[j] for j in joints)))
    return tuple(out)


def _mask5(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    shape = (x.shape[0], 1, *x.shape[2:])
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=x.device)
    try:
        return torch.broadcast_to(torch.as_tensor(mask, device=x.device).bool(), shape)
    except RuntimeError:
        raise ShapeError(f"mask: expected a shape broadcastable to {shape}, got "
                         f"{tuple(torch.as_tensor(mask).shape)}") from None


def descendant_mask(mask: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """Propagate a joint mask ``(..., V, M)`` down the tree (a joint or any of its ancestors)."""
    out = mask.clone()
    for joints, parents in tree_levels(skeleton):
        out[..., list(joints), :] |= out[..., list(parents), :]
    return out


def safe_unit(v: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``v/‖v‖`` and ``‖v‖`` with a finite gradient at ``v = 0`` (padding frames)."""
    norm = ((v * v).sum(dim, keepdim=True) + _EPS ** 2).sqrt()
    return v / norm, norm


def _joints_first(a: torch.Tensor) -> torch.Tensor:
    """``(N, C, T, V, M)`` → contiguous ``(V, N, C, T, M)`` (cheap joint indexing)."""
    return a.permute(3, 0, 1, 2, 4).contiguous()


class _Chain:
    """Clean geometry and perturbed directions of one realignment problem.

    Tensors are held joints-first, ``(V, N, C, T, M)``, so that a level of the
    tree is a contiguous gather along the first axis. Differentiable in
    ``x_adv``: where a bone is neither turned back by the angle bound nor by the
    budget, its direction is the normalised perturbed bone itself.
    """

    def __init__(self, x_adv: torch.Tensor, x_clean: torch.Tensor, skeleton: Skeleton,
                 mask: torch.Tensor | None, max_angle_deg: float | None) -> None:
        if x_adv.shape != x_clean.shape or x_adv.dim() != 5 or x_adv.shape[1] != 3:
            raise ShapeError(f"realign: expected two motions (N, 3, T, V, M) of one shape, got "
                             f"{tuple(x_adv.shape)} and {tuple(x_clean.shape)}")
        skeleton.check_motion(x_clean, "x_clean")
        self.skeleton, self.root = skeleton, skeleton.center
        q, qa = _joints_first(x_clean.detach()), _joints_first(x_adv)
        chosen = _joints_first(_mask5(mask, x_clean))
        self.q = q
        self.moving = descendant_mask(chosen.permute(1, 2, 3, 0, 4), skeleton).permute(
            3, 0, 1, 2, 4)
        child, parent = list(skeleton.bones[:, 0]), list(skeleton.bones[:, 1])
        u_c, length = safe_unit(q[child] - q[parent], dim=2)
        u_a, norm_a = safe_unit(qa[child] - qa[parent], dim=2)
        # directions of un-chosen joints (and of degenerate perturbed bones) stay clean
        u_a = torch.where(~chosen[child] | (norm_a <= _EPS), u_c, u_a)
        # great-circle rotation u(φ) = cos φ·u_c + sin φ·w, w ⟂ u_c, from u_c towards u_a
        cos = (u_a * u_c).sum(2, keepdim=True).clamp(-1.0, 1.0)
        w, w_norm = safe_unit(u_a - cos * u_c, dim=2)
        theta = torch.where(w_norm > 1e-9, torch.atan2(w_norm, cos), torch.zeros_like(cos))
        clipped = torch.zeros_like(theta, dtype=torch.bool)
        if max_angle_deg is not None:
            limit = math.radians(max_angle_deg)
            clipped = theta.detach() > limit
            theta = theta.clamp(max=limit)
        # indexed by joint (the root's row is unused)
        v = skeleton.num_joints
        self._row = [-1] * v
        for k, c in enumerate(child):
            self._row[int(c)] = k
        self.u_c, self.length, self.u_a, self.w, self.theta = u_c, length, u_a, w, theta
        self.clipped = clipped
        r = self.root
        self.root_delta = torch.where(chosen[r], qa[r] - q[r], torch.zeros_like(q[r]))

    def _joint(self, j: list[int], base: torch.Tensor,
               s: torch.Tensor | float) -> torch.Tensor:
        """Joints ``j`` at ``base`` plus their bone turned by ``s·θ`` from clean (1: ``u_a``)."""
        b = [self._row[k] for k in j]
        th = self.theta[b] * s
        turned = torch.cos(th) * self.u_c[b] + torch.sin(th) * self.w[b]
        exact = ~self.clipped[b] & (s >= 1) if isinstance(s, torch.Tensor) else (
            ~self.clipped[b] if s >= 1 else torch.zeros_like(self.clipped[b]))
        return base + self.length[b] * torch.where(exact, self.u_a[b], turned)

    def _walk(self, budget: float | None, norm: str, iterations: int,
              scales: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        q, moving, r = self.q, self.moving, self.root
        out = q.clone()
        shift = (self.root_delta if budget is None
                 else project_budget(self.root_delta, budget, norm))  # (N, C, T, M): xyz dim 1
        out[r] = torch.where(moving[r], q[r] + shift, q[r])
        found = []
        for k, (joints, parents) in enumerate(tree_levels(self.skeleton)):
            j = list(joints)
            base = out[list(parents)]
            if budget is None:
                cand = self._joint(j, base, 1.0)
            else:
                s = scales[k] if scales is not None else self._scale(j, base, q[j], budget,
                                                                     norm, iterations)
                found.append(s)
                cand = self._joint(j, base, s)
            out[j] = torch.where(moving[j], cand, q[j])
        return out, found

    def _scale(self, j: list[int], base: torch.Tensor, clean: torch.Tensor, budget: float,
               norm: str, iterations: int) -> torch.Tensor:
        """Largest ``s`` ∈ [0, 1] (bisection, feasible lower bound) keeping joints ``j`` inside."""
        def inside(s: torch.Tensor | float) -> torch.Tensor:  # (J, N, 1, T, M); xyz is dim 2
            size = budget_size(self._joint(j, base, s) - clean, norm, dim=2)
            return size.amax(dim=2, keepdim=True) <= budget

        ok = inside(1.0)
        lo = ok.to(base.dtype)
        if bool(ok.all()):
            return lo
        hi = torch.ones_like(lo)
        for _ in range(iterations):
            mid = torch.where(ok, hi, (lo + hi) / 2)
            good = inside(mid) | ok
            lo, hi = torch.where(good, mid, lo), torch.where(good, hi, mid)
        return lo

    def pose(self, budget: float | None = None, norm: str = "joint",
             iterations: int = 12) -> torch.Tensor:
        """Forward kinematics, level by level; returns ``(N, 3, T, V, M)``.

        With ``budget`` (metres; per joint, in the ball of ``norm``) each joint's rotation is
        scaled by the largest ``s`` ∈ [0, 1] (bisection, ``iterations`` halvings,
        keeping a feasible lower bound) that keeps the joint inside the ball,
        given its already placed parent. ``s = 0`` moves the joint exactly as
        its parent moved, so a feasible ``s`` always exists. The scales are
        found without gradient, then held fixed in a differentiable pass.
        """
        if budget is not None and torch.is_grad_enabled() and self.u_a.requires_grad:
            with torch.no_grad():
                _, scales = self._walk(budget, norm, iterations, None)
            out, _ = self._walk(budget, norm, iterations, scales)
        else:
            out, _ = self._walk(budget, norm, iterations, None)
        out = out.permute(1, 2, 3, 0, 4).contiguous()
        if budget is not None:  # absorb rounding (≤ 1e-7 m): the budget holds in float
            out = project_exact(out, self.q.permute(1, 2, 3, 0, 4), budget, norm)
        return out


def realign_bone_lengths(x_adv: torch.Tensor, x_clean: torch.Tensor, skeleton: Skeleton,
                         mask: torch.Tensor | None = None,
                         max_angle_deg: float | None = None) -> torch.Tensor:
    """Re-project every frame of ``x_adv`` onto the clean bone lengths (module doc, CIASA III-B).

    ``mask``: joints allowed to change direction (see the module doc for
    descendants); ``max_angle_deg``: bound on the angle between every perturbed
    bone and its clean direction, so every joint angle between two adjacent
    bones changes by at most ``2·max_angle_deg``. Differentiable in ``x_adv``;
    neither input is modified.
    """
    return _Chain(x_adv, x_clean, skeleton, mask, max_angle_deg).pose()


def realign_within_budget(x_adv: torch.Tensor, x_clean: torch.Tensor, skeleton: Skeleton,
                          budget_m: float, mask: torch.Tensor | None = None,
                          max_angle_deg: float | None = None,
                          iterations: int = 12, norm: str = "joint") -> torch.Tensor:
    """:func:`realign_bone_lengths` that also keeps every joint within ``budget_m`` (metres).

    ``norm="joint"``: ``‖q̂_{n,:,t,v,m} − q_{n,:,t,v,m}‖₂ ≤ budget_m`` (no joint moves
    farther); ``norm="linf"``: ``|q̂ − q| ≤ budget_m`` per coordinate. Exact in float.

    Walking the tree, each joint's bone rotation is shrunk just enough (per
    sample, frame, body and joint, by bisection to ``2^-iterations``) for the
    joint to stay inside the budget, so the bone lengths (to float rounding),
    the angle bound and the budget all hold together. Differentiable in
    ``x_adv`` with those shrink factors held fixed.
    """
    check_norm(norm, "realign_within_budget", REALIGN_NORMS)
    if budget_m < 0:
        raise ConfigError(f"realign_within_budget: budget_m must be >= 0, got {budget_m}")
    if budget_m == 0:
        return x_clean.detach().clone()
    return _Chain(x_adv, x_clean, skeleton, mask, max_angle_deg).pose(budget_m, norm,
                                                                      iterations)
