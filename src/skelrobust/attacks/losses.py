"""Perceptual losses on batched motion, shared by the white-box attacks (SMART, CIASA).

Every loss takes motion ``(N, 3, T, V, M)`` in metres and returns one value per
sample ``(N,)``, differentiable in the adversarial motion. ``mask`` is the
``(N, 1, T, 1, M)`` motion mask of :func:`skelrobust.attacks.base.motion_mask`
(1 on real frames of present bodies): only terms whose frames are all real
count, and every loss is a *mean over the valid frames* (summed over joints,
bones or angles and coordinates), so it does not grow with the clip length.

- :func:`temporal_smoothness_loss` ``Σ_t ‖∂ⁿδ_t‖²``: the n-th finite difference in
  time of a motion or a perturbation ``δ`` (CIASA's temporal constraint, n = 1);
- :func:`dynamics_loss` ``l_dyn = Σ_n β_n ‖∂ⁿq − ∂ⁿq̂‖²`` for n = 0, 1, 2 (Wang et al.,
  CVPR 2021, Eq. 4): position, velocity and acceleration deviation; since the
  difference operator is linear it is :func:`temporal_smoothness_loss` of ``δ = q̂ − q``;
- :func:`bone_length_loss` ``l_bl = Σ_b (ℓ̂_b − ℓ_b)²`` (SMART, Eq. 3), squared change of
  every bone length from the clean one;
- :func:`joint_angle_loss` ``Σ_a (θ̂_a − θ_a)²`` over the angles between adjacent
  bones (radians), CIASA's joint-angle term as a soft penalty;
- :func:`smart_perceptual_loss` ``L_p = α l_dyn + (1 − α) l_bl`` (SMART, Eq. 2), and
  :class:`SmartPerceptualGradient`, its gradient in closed form for the step loop.

Finite differences are per frame (``Δt = 1``) unless ``fps`` is given, in which case
``∂ⁿ`` is scaled by ``fps ** n`` (m/s, m/s²). Zero-length bones (e.g. the hip
offsets of ``hdm05_25``) are handled: lengths carry a small ``eps`` under the root
so their gradient is finite.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = [
    "SmartPerceptualGradient",
    "bone_length_loss",
    "bone_lengths",
    "difference_matrix",
    "dynamics_loss",
    "finite_difference",
    "joint_angle_loss",
    "joint_angles",
    "smart_perceptual_loss",
    "temporal_smoothness_loss",
]

LENGTH_EPS = 1e-12  # m², under the square root of bone lengths


def _frame_weights(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """``(N, 1, T, 1, M)`` 0/1 weights (all ones without a mask)."""
    if mask is None:
        return x.new_ones(x.shape[0], 1, x.shape[2], 1, x.shape[4])
    return mask.to(x.dtype)


def _per_valid_frame(total: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``total`` (N,) divided by the number of valid (frame, body) pairs in ``weights``."""
    return total / weights.flatten(1).sum(1).clamp_min(1.0)


def finite_difference(x: torch.Tensor, order: int, mask: torch.Tensor | None = None,
                      fps: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n-th forward difference in time and the mask of its valid stencils.

    ``∂ⁿx_t = Σ_k (−1)^(n−k) C(n, k) x_{t+k}`` for ``t < T − n``, shape
    ``(N, C, T − n, V, M)``, times ``fps ** n`` when ``fps`` is given; the mask is 1
    where all ``n + 1`` frames of the stencil are valid. Order 0 returns ``x``.
    """
    if order < 0:
        raise ValueError(f"finite_difference: order must be >= 0, got {order}")
    w = _frame_weights(mask, x)
    d = x
    for _ in range(order):
        d = d[:, :, 1:] - d[:, :, :-1]
        w = w[:, :, 1:] * w[:, :, :-1]
    if fps is not None and order:
        d = d * float(fps) ** order
    return d, w


def temporal_smoothness_loss(delta: torch.Tensor, mask: torch.Tensor | None = None,
                             order: int = 1, fps: float | None = None) -> torch.Tensor:
    """``Σ_{t,v} ‖∂ⁿδ_{t,v}‖²`` per sample, averaged over valid stencils: ``(N,)``.

    On a perturbation ``δ = q̂ − q`` with ``order=1`` this is CIASA's temporal
    smoothness (consecutive frames perturbed alike); with ``order=2`` it penalises
    added acceleration. A clip with fewer than ``order + 1`` frames gives 0.
    """
    if delta.shape[2] <= order:
        return delta.new_zeros(delta.shape[0])
    d, w = finite_difference(delta, order, mask, fps)
    return _per_valid_frame((d * d * w).flatten(1).sum(1), w)


def dynamics_loss(x_adv: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None,
                  betas: Sequence[float] = (0.6, 0.0, 0.4),
                  fps: float | None = None) -> torch.Tensor:
    """SMART's dynamics loss ``l_dyn = Σ_n β_n ‖∂ⁿq − ∂ⁿq̂‖²``, n = 0, 1, 2 …: ``(N,)``.

    ``betas[n]`` weights the n-th derivative (position, velocity, acceleration);
    terms with ``β_n = 0`` are skipped.
    """
    delta = x_adv - x
    out = delta.new_zeros(delta.shape[0])
    for order, beta in enumerate(betas):
        if beta:
            out = out + float(beta) * temporal_smoothness_loss(delta, mask, order, fps)
    return out


def _skeleton_index(skeleton: Skeleton, device: torch.device) -> tuple[torch.Tensor, ...]:
    bones = torch.as_tensor(skeleton.bones, device=device)
    return bones[:, 0], bones[:, 1]


def bone_lengths(x: torch.Tensor, skeleton: Skeleton | str,
                 eps: float = LENGTH_EPS) -> torch.Tensor:
    """Differentiable bone lengths ``sqrt(‖x_child − x_parent‖² + eps)``: ``(N, T, B, M)``."""
    child, parent = _skeleton_index(get_skeleton(skeleton), x.device)
    vec = x.index_select(3, child) - x.index_select(3, parent)
    return ((vec * vec).sum(1) + eps).sqrt()


def bone_length_loss(x_adv: torch.Tensor, ref_lengths: torch.Tensor, skeleton: Skeleton | str,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """SMART's bone-length loss ``l_bl = Σ_b (ℓ̂_b − ℓ_b)²`` per frame, averaged: ``(N,)``.

    ``ref_lengths`` are the clean lengths ``(N, T, B, M)`` (:func:`bone_lengths` of
    the clean motion, computed once per attack).
    """
    diff = bone_lengths(x_adv, skeleton) - ref_lengths
    w = _frame_weights(mask, x_adv)[:, 0]  # (N, T, 1, M)
    return _per_valid_frame((diff * diff * w).flatten(1).sum(1), w)


def joint_angles(x: torch.Tensor, skeleton: Skeleton | str, eps: float = 1e-9) -> torch.Tensor:
    """Differentiable angles (radians) between adjacent bones: ``(N, T, A, M)``."""
    return get_skeleton(skeleton).joint_angles(x, eps=eps)


def joint_angle_loss(x_adv: torch.Tensor, ref_angles: torch.Tensor, skeleton: Skeleton | str,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """``Σ_a (θ̂_a − θ_a)²`` (rad²) per frame, averaged over valid frames: ``(N,)``.

    ``ref_angles`` are the clean angles ``(N, T, A, M)`` (:func:`joint_angles`).
    """
    diff = joint_angles(x_adv, skeleton) - ref_angles
    w = _frame_weights(mask, x_adv)[:, 0]
    return _per_valid_frame((diff * diff * w).flatten(1).sum(1), w)


def smart_perceptual_loss(x_adv: torch.Tensor, x: torch.Tensor, ref_lengths: torch.Tensor,
                          skeleton: Skeleton | str, mask: torch.Tensor | None = None,
                          alpha: float = 0.3, betas: Sequence[float] = (0.6, 0.0, 0.4),
                          fps: float | None = None) -> torch.Tensor:
    """SMART's perceptual loss ``L_p = α l_dyn + (1 − α) l_bl`` (Eq. 2): ``(N,)``."""
    out = x_adv.new_zeros(x_adv.shape[0])
    if alpha:
        out = out + alpha * dynamics_loss(x_adv, x, mask, betas, fps)
    if alpha != 1:
        out = out + (1 - alpha) * bone_length_loss(x_adv, ref_lengths, skeleton, mask)
    return out


def difference_matrix(num_frames: int, order: int, dtype: torch.dtype = torch.float64,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """The ``(T − n, T)`` matrix ``Dⁿ`` with ``Dⁿ x = ∂ⁿx`` (forward differences)."""
    d = torch.eye(num_frames, dtype=dtype, device=device)
    for _ in range(order):
        d = d[1:] - d[:-1]
    return d


class SmartPerceptualGradient:
    """``∂L_p/∂q̂`` of :func:`smart_perceptual_loss` in closed form, set up once per attack.

    ``l_dyn`` is quadratic in ``δ = q̂ − q``, so its gradient is linear,
    ``∇ l_dyn = A δ`` with ``A = Σ_n (2 β_n / c_n) Dⁿᵀ W_n Dⁿ`` per sample and body
    (``W_n`` the valid stencils, ``c_n`` their count): one ``(T, T)`` matrix product
    per step. For ``l_bl``, ``∂/∂q̂_child = −∂/∂q̂_parent = 2 (ℓ̂ − ℓ) u_b / c_0`` with
    ``u_b`` the unit bone vector, gathered and scattered with the bone incidence
    matrix. Equal to autograd through :func:`smart_perceptual_loss` (tested), at a
    fraction of the cost.
    """

    def __init__(self, x: torch.Tensor, skeleton: Skeleton | str, mask: torch.Tensor | None,
                 alpha: float = 0.3, betas: Sequence[float] = (0.6, 0.0, 0.4),
                 fps: float | None = None) -> None:
        skel = get_skeleton(skeleton)
        n, _, t, v, m = x.shape
        w = _frame_weights(mask, x)  # (N, 1, T, 1, M)
        wt = w[:, 0, :, 0, :].double()  # (N, T, M)
        a = torch.zeros(n, m, t, t, dtype=torch.float64, device=x.device)
        for order, beta in enumerate(betas):
            if not beta or not alpha or t <= order:
                continue
            d = difference_matrix(t, order, device=x.device)
            if fps is not None:
                d = d * float(fps) ** order
            wn = wt
            for _ in range(order):
                wn = wn[:, 1:] * wn[:, :-1]
            count = wn.sum((1, 2)).clamp_min(1.0)  # (N,)
            coef = (2.0 * alpha * beta) / count
            a += coef[:, None, None, None] * torch.einsum("ts,ntm,tu->nmsu", d, wn, d)
        self.dyn = a.to(x.dtype)
        self.x = x
        # full-length single-body clips share one operator: a stride-0 batched product
        same = m == 1 and bool((self.dyn == self.dyn[:1, :1]).all())
        self.shared = self.dyn[0, 0].contiguous() if same else None
        bones = torch.as_tensor(skel.bones, device=x.device)
        inc = torch.zeros(len(bones), v, dtype=x.dtype, device=x.device)
        inc[torch.arange(len(bones)), bones[:, 0]] = 1.0
        inc[torch.arange(len(bones)), bones[:, 1]] = -1.0
        self.incidence = inc  # (B, V)
        self.incidence_t = inc.T.contiguous()
        # Bone vectors of q̂ are those of q plus those of δ, and ℓ̂ is computed exactly as ℓ:
        # at δ = 0 the gradient is exactly zero, and no rounding of ``q`` leaks into it.
        self.vec_ref = self._bone_vectors(x)  # (N, C, T, M, B)
        self.len_ref = self._lengths(self.vec_ref)  # (N, 1, T, M, B)
        count = w.flatten(1).sum(1).clamp_min(1.0)
        self.bone_weight = (2.0 * (1.0 - alpha) * w / count.view(-1, 1, 1, 1, 1)
                            ).permute(0, 1, 2, 4, 3).contiguous()  # (N, 1, T, M, 1)
        self.use_bones = alpha != 1

    def _bone_vectors(self, q: torch.Tensor, plus: torch.Tensor | None = None) -> torch.Tensor:
        """``plus + (bone vectors of q)`` by one GEMM ``(N·C·T·M, V) @ (V, B)``."""
        n, c, t, v, m = q.shape
        rows = q.transpose(3, 4).reshape(-1, v)
        if plus is None:
            return (rows @ self.incidence_t).view(n, c, t, m, -1)
        return torch.addmm(plus.view(rows.shape[0], -1), rows, self.incidence_t
                           ).view(n, c, t, m, -1)

    @staticmethod
    def _lengths(vec: torch.Tensor) -> torch.Tensor:
        return ((vec * vec).sum(1, keepdim=True) + LENGTH_EPS).sqrt()

    def rows(self, idx: torch.Tensor) -> SmartPerceptualGradient:
        """The same gradient for the samples ``idx`` only."""
        out = object.__new__(SmartPerceptualGradient)
        out.__dict__.update(self.__dict__)
        for name in ("dyn", "x", "vec_ref", "len_ref", "bone_weight"):
            setattr(out, name, getattr(self, name).index_select(0, idx))
        return out

    def __call__(self, x_adv: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x_adv.shape
        delta = x_adv - self.x
        if self.shared is not None:
            grad = torch.bmm(self.shared.expand(n * c, t, t), delta.view(n * c, t, v))
        elif m == 1:
            grad = self.dyn[:, 0, None] @ delta.view(n, c, t, v)
        else:
            grad = torch.einsum("nmst,nctvm->ncsvm", self.dyn, delta)
        grad = grad.reshape(n, c, t, v, m)
        if not self.use_bones:
            return grad
        vec = self._bone_vectors(delta, self.vec_ref)
        length = self._lengths(vec)
        factor = (length - self.len_ref) / length * self.bone_weight
        scaled = (vec * factor).view(-1, vec.shape[-1])
        if m == 1:  # scatter back to the joints, fused with the sum
            return torch.addmm(grad.view(-1, v), scaled, self.incidence).view(n, c, t, v, m)
        return grad + (scaled @ self.incidence).view(n, c, t, m, v).transpose(3, 4)
