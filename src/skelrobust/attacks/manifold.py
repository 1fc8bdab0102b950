"""Batched projection of perturbed motion onto the natural-motion manifold (BASAR).

BASAR (Diao et al., CVPR 2021, Sec. 3.3) projects an adversarial motion ``x̃`` of a
clean motion ``x`` onto the motions that keep ``x``'s skeleton and move like it:

    X* = argmin_X  Σ_{t,v,m} ‖X_tvm − x̃_tvm‖² + w · Σ_{t,v,m} ‖Ẍ_tvm − ẍ_tvm‖²
         subject to  ‖X_tj − X_tp(j)‖ = ‖x_tj − x_tp(j)‖   (every bone, every frame)
                     lower_a ≤ θ_a(X_t) ≤ upper_a           (every joint angle, every frame)

with the second differences ``Ẍ_t = X_{t+1} − 2·X_t + X_{t−1}`` (per frame², over
frames whose neighbours are real) and ``ẍ`` those of the **clean** motion (the
paper's ``ẍ``: the projection keeps the clean motion's dynamics), ``θ_a`` the
joint angles of :meth:`~skelrobust.skeleton.Skeleton.joint_angles` and
``[lower_a, upper_a]`` limits estimated from data
(:class:`~skelrobust.attacks.joint_limits.JointLimits`). Sums run over real frames
and present bodies only; padding frames and absent bodies are never moved.

The authors solve it per sample with IPOPT (GEKKO) over Euler angles. Here every
sample is solved at once, in PyTorch:

1. **Dynamics, exactly**: without the skeleton, ``E`` is quadratic and its minimiser
   is ``Y₀ = x + S·M·(x̃ − x)``, ``S = (I + w·D₂ᵀM₃D₂)⁻¹`` (``D₂`` the second
   difference over frames, ``M``/``M₃`` real frames / real stencils): a ``T × T``
   matrix per sample and body, inverted once (:meth:`ManifoldProjection.smooth`).
2. **Bone lengths by construction**: forward kinematics ``X = FK(Y)`` along the
   tree, level by level, from free positions ``Y``: the root where ``Y``'s root is,
   bone ``b`` of the clean length (frame by frame) in the direction of ``Y``'s bone —
   CIASA's realignment (:func:`~skelrobust.attacks.projection.realign_bone_lengths`).
3. **Minimise** ``E(FK(Y)) + μ·Σ_a [max(0, lower_a − θ_a)² + max(0, θ_a − upper_a)²]``
   over ``Y`` from ``Y₀`` by ``steps`` Adam steps (``lr`` in metres); ``μ``
   (``angle_weight``, per rad²) is a penalty steering towards the limits.
4. **Limits exactly** (:meth:`ManifoldProjection.repair`), against a reference motion
   inside the limits (the clean one, or e.g. the attack's current motion): bone
   ``b``'s direction becomes ``normalise((1 − s_b)·R_p·r_b + s_b·u_b)``, ``u_b`` its
   own, ``r_b`` the reference's, ``R_p`` the smallest rotation taking the
   reference's parent bone to the parent's new direction (identity at the root).
   For every angle outside its range, the bone of it farther from the root (both,
   for siblings) has ``s_b`` halved ``repair_iterations`` times, then set to 0. At
   ``s_b = 0`` bone ``b`` makes the reference's angles with its parent and its
   siblings, which are inside, whatever its parent does; so the loop ends within
   the tree's depth of further rounds, and only subtrees below an offending joint
   move. Bones then have the clean lengths, to float rounding, and every defined
   angle (:func:`~skelrobust.attacks.joint_limits.angle_validity`) is inside.

Adam is elementwise and the energy a sum over samples, so a sample's projection
does not depend on the rest of the batch.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

import torch

from skelrobust.attacks.joint_limits import angle_validity
from skelrobust.attacks.losses import difference_matrix
from skelrobust.attacks.projection import safe_unit, tree_levels
from skelrobust.skeleton import Skeleton

__all__ = ["ManifoldProjection", "acceleration"]

_EPS = 1e-12
_ADAM = (0.9, 0.999)  # Adam's moment decays (Kingma & Ba's defaults)


def acceleration(x: torch.Tensor) -> torch.Tensor:
    """Second differences over frames, ``x_{t+1} − 2·x_t + x_{t−1}``: ``(N, 3, T−2, V, M)``."""
    return x[:, :, 2:] - 2 * x[:, :, 1:-1] + x[:, :, :-2]


@lru_cache(maxsize=32)
def _tree(skeleton: Skeleton) -> tuple[tuple[tuple[int, ...], tuple[int, ...],
                                             tuple[int, ...]], ...]:
    """Per depth 1, 2, …: ``(joints, their parents, their bones)`` (bone = index in ``bones``)."""
    bone_of = {int(c): k for k, (c, _) in enumerate(skeleton.bones)}
    return tuple((joints, parents, tuple(bone_of[j] for j in joints))
                 for joints, parents in tree_levels(skeleton))


def _blame(skeleton: Skeleton) -> torch.Tensor:
    """``(A, B)`` 0/1: the bone of every joint angle that :meth:`ManifoldProjection.repair`
    turns — the one farther from the root (both, for two sibling bones)."""
    (b0, _), (b1, _) = _arms(skeleton)
    depth = skeleton.depths[skeleton.bones[:, 0]]  # a bone's depth: its child joint's
    out = torch.zeros(len(b0), skeleton.num_bones)
    for a, (i, j) in enumerate(zip(b0, b1, strict=True)):
        out[a, [b for b in (i, j) if depth[b] == max(depth[i], depth[j])]] = 1
    return out


@lru_cache(maxsize=32)
def _bone_levels(skeleton: Skeleton) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """Per depth 1, 2, …: ``(bones, their parent bones)`` (``-1``: the parent is the root)."""
    bone_of = {int(c): k for k, (c, _) in enumerate(skeleton.bones)}
    return tuple((bones, tuple(bone_of.get(skeleton.parents[j], -1) for j in joints))
                 for joints, _, bones in _tree(skeleton))


def _rotate(a: torch.Tensor, b: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``R·v`` with ``R`` the smallest rotation taking unit ``a`` to unit ``b`` (xyz: dim 1).

    ``R·v = c·v + w × v + (w·v)/(1 + c)·w`` with ``c = a·b``, ``w = a × b`` (Rodrigues);
    the identity where ``a`` or ``b`` is zero (a zero-length bone has no direction).
    """
    real = ((a * a).sum(1, keepdim=True) > 0.5) & ((b * b).sum(1, keepdim=True) > 0.5)
    c = torch.where(real, (a * b).sum(1, keepdim=True), torch.ones_like(a[:, :1]))
    w = torch.where(real, torch.linalg.cross(a, b, dim=1), torch.zeros_like(a))
    return c * v + torch.linalg.cross(w, v, dim=1) + (w * v).sum(1, keepdim=True) / (
        1 + c).clamp_min(1e-6) * w


@lru_cache(maxsize=32)
def _arms(skeleton: Skeleton) -> tuple[tuple[tuple[int, ...], tuple[float, ...]], ...]:
    """For both arms ``j→a`` and ``j→b`` of every angle ``(a, j, b)``: (bone, ±1), where the
    arm is ``+`` its bone's vector (child − parent) when ``a`` is ``j``'s child."""
    index = {frozenset((int(c), int(p))): k for k, (c, p) in enumerate(skeleton.bones)}
    out = []
    for end in (0, 2):
        bones, signs = [], []
        for tri in skeleton.angle_triplets:
            j, a = int(tri[1]), int(tri[end])
            bones.append(index[frozenset((a, j))])
            signs.append(1.0 if skeleton.parents[a] == j else -1.0)
        out.append((tuple(bones), tuple(signs)))
    return tuple(out)


F = TypeVar("F", bound=Callable[..., Any])


def _timed(method: F) -> F:
    """Add the wall time of ``method`` to its instance's ``seconds`` (the projection's cost)."""
    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
    return run  # type: ignore[return-value]


class ManifoldProjection:
    """The projection problem of clean motions ``x`` ``(N, 3, T, V, M)`` (module doc).

    ``lower``/``upper``: per-clip angle ranges ``(N, 1, A, 1)`` in radians (e.g.
    :meth:`~skelrobust.attacks.joint_limits.JointLimits.for_clips`); ``mask``: the
    ``(N, 1, T, 1, M)`` motion mask. Methods take ``rows`` (indices into the batch),
    so any subset of the samples is projected at once.
    """

    def __init__(self, x: torch.Tensor, skeleton: Skeleton, lower: torch.Tensor,
                 upper: torch.Tensor, mask: torch.Tensor, accel_weight: float = 1.0,
                 steps: int = 20, lr: float = 1e-3, angle_weight: float = 1.0,
                 repair_iterations: int = 1) -> None:
        skeleton.check_motion(x, "x")
        self.seconds = 0.0  # wall time spent in repair() and project()
        self.x, self.skeleton, self.mask = x.detach(), skeleton, mask.to(x.dtype)
        self.lower, self.upper = lower.to(x.dtype), upper.to(x.dtype)
        self.accel_weight, self.steps, self.lr = float(accel_weight), int(steps), float(lr)
        self.angle_weight, self.repair_iterations = float(angle_weight), int(repair_iterations)
        b = skeleton.bones
        bones = self.x[:, :, :, b[:, 0]] - self.x[:, :, :, b[:, 1]]  # (N, 3, T, B, M)
        self.length = torch.linalg.vector_norm(bones, dim=1, keepdim=True)
        self.u_clean = safe_unit(bones, 1)[0]
        self.valid = angle_validity(self.x, skeleton, self.mask)  # (N, T, A, M)
        self.blame = _blame(skeleton).to(x.device, x.dtype)
        self.bone_levels = [(torch.tensor(b, device=x.device), torch.tensor(p, device=x.device))
                            for b, p in _bone_levels(skeleton)]
        (b0, s0), (b1, s1) = _arms(skeleton)
        self.arm_bones = (torch.tensor(b0, device=x.device), torch.tensor(b1, device=x.device))
        self.arm_sign = torch.tensor(s0, dtype=torch.float64, device=x.device) * torch.tensor(
            s1, dtype=torch.float64, device=x.device)
        # θ < lower ⟺ cos θ > cos(lower), θ > upper ⟺ cos θ < cos(upper) (θ ∈ [0, π])
        lo, hi = lower.double(), upper.double()
        self.cos_lower = torch.where(lo > 0, torch.cos(lo), torch.full_like(lo, 2.0))
        self.cos_upper = torch.where(hi < math.pi, torch.cos(hi), torch.full_like(hi, -2.0))
        self.levels = [tuple(torch.tensor(ix, device=x.device) for ix in level)
                       for level in _tree(skeleton)]
        self.accel = acceleration(self.x) if x.shape[2] > 2 else None
        m = self.mask
        self.accel_mask = m[:, :, 2:] * m[:, :, 1:-1] * m[:, :, :-2] if x.shape[2] > 2 else None
        self.smoother = None  # S = (I + w·D₂ᵀM₃D₂)⁻¹ per sample and body: (N, M, T, T)
        if self.accel is not None and self.accel_weight > 0:
            t = x.shape[2]
            d2 = difference_matrix(t, 2, device=x.device)
            m3 = self.accel_mask[:, 0, :, 0, :].transpose(1, 2).double()  # (N, M, T-2)
            a = torch.eye(t, dtype=torch.float64, device=x.device) + self.accel_weight * (
                d2.T * m3[..., None, :]) @ d2
            self.smoother = torch.cholesky_inverse(torch.linalg.cholesky(a)).to(x.dtype)

    # ------------------------------------------------------------------ kinematics
    def directions(self, y: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``ũ``: unit bone directions of free positions ``y`` (clean where ``y``'s bone is 0)."""
        b = self.skeleton.bones
        v = y[:, :, :, b[:, 0]] - y[:, :, :, b[:, 1]]
        flat = (v * v).sum(1, keepdim=True) <= _EPS
        return torch.where(flat, self.u_clean[rows], safe_unit(v, 1)[0])

    def fk(self, y: torch.Tensor, rows: torch.Tensor, u: torch.Tensor | None = None
           ) -> torch.Tensor:
        """Forward kinematics (module doc, 2.): ``y``'s root, clean bone lengths, directions ``u``
        ``(k, 3, T, B, M)`` (default: :meth:`directions` of ``y``).

        Padding frames and absent bodies stay clean.
        """
        u = self.directions(y, rows) if u is None else u
        step = (self.length[rows] * u).permute(3, 0, 1, 2, 4)  # joints first: (B, k, 3, T, M)
        root = self.skeleton.center
        out = y.new_empty((self.skeleton.num_joints, *step.shape[1:]))
        out[root] = y[:, :, :, root]
        for joints, parents, bones in self.levels:
            out[joints] = out[parents] + step[bones]
        x, m = self.x[rows], self.mask[rows]
        return x + m * (out.permute(1, 2, 3, 0, 4) - x)

    def outside(self, u: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``(k, T, A, M)`` bool: defined joint angles outside their range, from the unit bone
        directions ``u`` ``(k, 3, T, B, M)`` (cosines in float64: no ``atan2``)."""
        u = u.double()
        cos = (u[:, :, :, self.arm_bones[0]] * u[:, :, :, self.arm_bones[1]]).sum(1)
        cos = cos * self.arm_sign.view(1, 1, -1, 1)
        out = (cos > self.cos_lower[rows]) | (cos < self.cos_upper[rows])
        return out & self.valid[rows]

    def energy(self, motion: torch.Tensor, x_tilde: torch.Tensor,
               rows: torch.Tensor) -> torch.Tensor:
        """Per-sample ``Σ‖X − x̃‖² + w·Σ‖Ẍ − ẍ‖² + μ·(angle-limit hinge²)``: ``(k,)``."""
        m = self.mask[rows]
        out = ((motion - x_tilde) ** 2 * m).flatten(1).sum(1)
        if self.accel is not None and self.accel_weight > 0:
            dev = (acceleration(motion) - self.accel[rows]) ** 2 * self.accel_mask[rows]
            out = out + self.accel_weight * dev.flatten(1).sum(1)
        if self.angle_weight > 0 and len(self.skeleton.angle_triplets):
            ang = self.skeleton.joint_angles(motion)
            hinge = torch.relu(self.lower[rows] - ang) + torch.relu(ang - self.upper[rows])
            out = out + self.angle_weight * (hinge ** 2 * self.valid[rows]).flatten(1).sum(1)
        return out

    def smooth(self, x_tilde: torch.Tensor, rows: torch.Tensor,
               base: torch.Tensor | None = None) -> torch.Tensor:
        """The minimiser of ``E`` without the skeleton: ``x + S·M·(x̃ − x)`` (module doc, 1.).

        With ``base`` (e.g. the current motion), the displacement ``x̃ − base`` is
        smoothed instead: ``base + S·M·(x̃ − base)``. ``x_tilde`` may hold extra axes
        after the first, ``(k, …, 3, T, V, M)`` (e.g. several trials per sample).
        """
        x = self.x[rows] if base is None else base
        mask = self.mask[rows].view(len(rows), *[1] * (x_tilde.dim() - 5), *self.mask.shape[1:])
        delta = (x_tilde - x) * mask
        if self.smoother is None:
            return x + delta
        d = delta.movedim(-1, 1).movedim(-2, 2)  # (k, M, T, …, 3, V)
        out = self.smoother[rows].to(d.dtype) @ d.flatten(3)
        return x + out.view(d.shape).movedim(2, -2).movedim(1, -1)

    # ------------------------------------------------------------------ the projection
    @_timed
    def repair(self, y: torch.Tensor, rows: torch.Tensor,
               ref: torch.Tensor | None = None) -> torch.Tensor:
        """The motion of ``y`` with every joint angle inside its limits (module doc, 4.).

        Bones are turned back towards those of ``ref`` (a motion inside the limits, e.g.
        an earlier projection; default: the clean motion), then, should float rounding
        leave an angle a hair outside, towards the clean ones.
        """
        u = self.directions(y, rows)
        if ref is not None:
            u = self._limit(u, rows, self.directions(ref, rows))
        return self.fk(y, rows, self._limit(u, rows, self.u_clean[rows]))

    def _limit(self, u_y: torch.Tensor, rows: torch.Tensor, u_ref: torch.Tensor
               ) -> torch.Tensor:
        """Directions with every angle inside its limits (module doc, 4.), from ``u_y``."""
        u, s = u_y, torch.ones_like(u_y[:, :1])  # s: (k, 1, T, B, M)
        for k in range(self.repair_iterations + len(self.bone_levels) + 1):
            if not len(self.skeleton.angle_triplets):
                break
            out = self.outside(u, rows)  # (k, T, A, M)
            if not bool(out.any()):
                break
            hit = torch.einsum("ktam,ab->ktbm", out.to(s.dtype), self.blame)[:, None] > 0
            s = torch.where(hit, s / 2 if k < self.repair_iterations else 0 * s, s)
            u = self._compose(u_y, u_ref, s)
        return u

    def _compose(self, u_y: torch.Tensor, u_ref: torch.Tensor, s: torch.Tensor
                 ) -> torch.Tensor:
        """``u_b = normalise((1 − s_b)·R_p(b)·u_ref_b + s_b·u_y_b)``, root to leaves.

        ``R_p(b)``: the smallest rotation taking the reference direction of ``b``'s parent
        bone to its composed one (the identity at the root), so ``s_b = 0`` gives bone
        ``b`` the reference's angle to its parent and its siblings.
        """
        u = torch.empty_like(u_y)
        for bones, parents in self.bone_levels:
            ref = u_ref[:, :, :, bones]
            up = parents >= 0
            if bool(up.any()):
                pb = parents.clamp_min(0)
                turned = _rotate(u_ref[:, :, :, pb], u[:, :, :, pb], ref)
                ref = torch.where(up.view(1, 1, 1, -1, 1), turned, ref)
            sb = s[:, :, :, bones]
            u[:, :, :, bones] = safe_unit((1 - sb) * ref + sb * u_y[:, :, :, bones], 1)[0]
        return u

    @_timed
    def project(self, x_tilde: torch.Tensor, rows: torch.Tensor, steps: int | None = None,
                ref: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Project motions ``x_tilde`` of samples ``rows``: ``(X*, Y*)`` (module doc, 1.–4.).

        ``X*`` is on the manifold; ``Y*`` are its free positions (for :meth:`path`).
        ``steps``: Adam steps (default: the problem's ``steps``; 0: the exact solve of
        the dynamics term, then the skeleton). ``ref``: the motions inside the limits
        that :meth:`repair` turns bones back towards.
        """
        x_tilde = x_tilde.detach()
        y = self.smooth(x_tilde, rows)
        m1, m2 = torch.zeros_like(y), torch.zeros_like(y)
        for k in range(1, (self.steps if steps is None else steps) + 1):  # Adam: elementwise
            with torch.enable_grad():
                y.requires_grad_(True)
                grad, = torch.autograd.grad(self.energy(self.fk(y, rows), x_tilde, rows).sum(), y)
            y = y.detach()
            m1.mul_(_ADAM[0]).add_(grad, alpha=1 - _ADAM[0])
            m2.mul_(_ADAM[1]).addcmul_(grad, grad, value=1 - _ADAM[1])
            step = self.lr / (1 - _ADAM[0] ** k)
            y = y - step * m1 / ((m2 / (1 - _ADAM[1] ** k)).sqrt() + 1e-8)
        with torch.no_grad():
            return self.repair(y, rows, ref), y

    def path(self, y_from: torch.Tensor, y_to: torch.Tensor, gamma: torch.Tensor,
             rows: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        """The on-manifold motion a fraction ``gamma`` ``(k,)`` of the way from free positions
        ``y_from`` to ``y_to``: ``repair(Y_from + γ·(Y_to − Y_from), ref)``."""
        g = gamma.to(y_from.device, y_from.dtype).view(-1, 1, 1, 1, 1)
        with torch.no_grad():
            return self.repair(y_from + g * (y_to - y_from), rows, ref)
