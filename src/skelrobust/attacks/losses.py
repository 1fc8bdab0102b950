"""Perceptual losses on batched motion, shared by the white-box attacks (SMART, CIASA).

Every loss takes motion ``(N, 3, T, V, M)`` in metres and returns one value per
sample ``(N,)``, differentiable in the adversarial motion. ``mask`` is the
``(N, 1, T, 1, M)`` motion mask of :func:`skelrobust.attacks.base.motion_mask`
(1 on real frames of present bodies): only terms whose frames are all real
count, and every loss is a *mean over the valid frames* (summed over joints,
bones or angles and coordinates), so it does not grow with the clip length;
``reduction="sum"`` sums over the valid frames instead (as both SMART research
codes do; under a normalised gradient step only the relative weight of the
terms changes, by the ratio ``(T − n) / T`` of their stencil counts).

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
``∂ⁿ`` is scaled by ``fps ** n`` (m/s, m/s²): at 30 fps the acceleration term is
``30⁴ = 810 000`` times its per-frame value. ``position_weights`` (one per joint)
weight the position term (n = 0) of ``l_dyn`` joint by joint, as the SMART code
does (0.02, and 0.04 on the spine). Zero-length bones (e.g. the hip
offsets of ``hdm05_25``) are handled: lengths carry a small ``eps`` under the root
so their gradient is finite.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = [
    "REDUCTIONS",
    "SmartPerceptualGradient",
    "apply_banded",
    "bone_length_loss",
    "bone_lengths",
    "check_reduction",
    "difference_matrix",
    "dynamics_bands",
    "dynamics_loss",
    "finite_difference",
    "joint_angle_loss",
    "joint_angles",
    "smart_perceptual_loss",
    "temporal_smoothness_loss",
]

LENGTH_EPS = 1e-12  # m², under the square root of bone lengths
REDUCTIONS = ("mean", "sum")  # over the valid frames (or stencils) of a clip


def _frame_weights(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """``(N, 1, T, 1, M)`` 0/1 weights (all ones without a mask)."""
    if mask is None:
        return x.new_ones(x.shape[0], 1, x.shape[2], 1, x.shape[4])
    return mask.to(x.dtype)


def _stencil_weights(w: torch.Tensor, order: int) -> torch.Tensor:
    """``(N, 1, T − n, 1, M)``: 1 where all ``n + 1`` frames of a difference stencil are valid."""
    for _ in range(order):
        w = w[:, :, 1:] * w[:, :, :-1]
    return w


def _per_valid_frame(total: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``total`` (N,) divided by the number of valid (frame, body) pairs in ``weights``."""
    return total / weights.flatten(1).sum(1).clamp_min(1.0)


def check_reduction(reduction: str) -> str:
    """``reduction`` if it is one of :data:`REDUCTIONS`, else a ``ValueError`` naming them."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _reduce(total: torch.Tensor, weights: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-sample ``total`` as a mean over the valid frames of ``weights``, or as it is."""
    return total if check_reduction(reduction) == "sum" else _per_valid_frame(total, weights)


def _joint_weights(weights: Sequence[float] | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-joint weights as a ``(1, 1, 1, V, 1)`` tensor of ``like``'s dtype and device."""
    w = torch.as_tensor(weights, dtype=like.dtype, device=like.device).flatten()
    if w.numel() != like.shape[3]:
        raise ValueError(f"position_weights: expected one weight per joint ({like.shape[3]}), "
                         f"got {w.numel()}")
    return w.view(1, 1, 1, -1, 1)


def finite_difference(x: torch.Tensor, order: int, mask: torch.Tensor | None = None,
                      fps: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n-th forward difference in time and the mask of its valid stencils.

    ``∂ⁿx_t = Σ_k (−1)^(n−k) C(n, k) x_{t+k}`` for ``t < T − n``, shape
    ``(N, C, T − n, V, M)``, times ``fps ** n`` when ``fps`` is given; the mask is 1
    where all ``n + 1`` frames of the stencil are valid. Order 0 returns ``x``.
    """
    if order < 0:
        raise ValueError(f"finite_difference: order must be >= 0, got {order}")
    d = x
    for _ in range(order):
        d = d[:, :, 1:] - d[:, :, :-1]
    w = _stencil_weights(_frame_weights(mask, x), order)
    if fps is not None and order:
        d = d * float(fps) ** order
    return d, w


def temporal_smoothness_loss(delta: torch.Tensor, mask: torch.Tensor | None = None,
                             order: int = 1, fps: float | None = None, reduction: str = "mean",
                             joint_weights: Sequence[float] | torch.Tensor | None = None
                             ) -> torch.Tensor:
    """``Σ_{t,v} c_v ‖∂ⁿδ_{t,v}‖²`` per sample, averaged (or summed) over valid stencils: ``(N,)``.

    On a perturbation ``δ = q̂ − q`` with ``order=1`` this is CIASA's temporal
    smoothness (consecutive frames perturbed alike); with ``order=2`` it penalises
    added acceleration. ``joint_weights``: ``c_v`` (one per joint; all 1 without).
    A clip with fewer than ``order + 1`` frames gives 0.
    """
    check_reduction(reduction)
    if delta.shape[2] <= order:
        return delta.new_zeros(delta.shape[0])
    d, w = finite_difference(delta, order, mask, fps)
    sq = d * d * w
    if joint_weights is not None:
        sq = sq * _joint_weights(joint_weights, sq)
    return _reduce(sq.flatten(1).sum(1), w, reduction)


def dynamics_loss(x_adv: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None,
                  betas: Sequence[float] = (0.6, 0.0, 0.4), fps: float | None = None,
                  reduction: str = "mean",
                  position_weights: Sequence[float] | torch.Tensor | None = None
                  ) -> torch.Tensor:
    """SMART's dynamics loss ``l_dyn = Σ_n β_n ‖∂ⁿq − ∂ⁿq̂‖²``, n = 0, 1, 2 …: ``(N,)``.

    ``betas[n]`` weights the n-th derivative (position, velocity, acceleration);
    terms with ``β_n = 0`` are skipped. ``position_weights`` weight the position
    term (n = 0) per joint.
    """
    delta = x_adv - x
    out = delta.new_zeros(delta.shape[0])
    for order, beta in enumerate(betas):
        if beta:
            out = out + float(beta) * temporal_smoothness_loss(
                delta, mask, order, fps, reduction, position_weights if order == 0 else None)
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
                     mask: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """SMART's bone-length loss ``l_bl = Σ_b (ℓ̂_b − ℓ_b)²`` per valid frame, averaged: ``(N,)``.

    ``ref_lengths`` are the clean lengths ``(N, T, B, M)`` (:func:`bone_lengths` of
    the clean motion, computed once per attack); ``reduction="sum"`` sums over the
    valid frames instead.
    """
    diff = bone_lengths(x_adv, skeleton) - ref_lengths
    w = _frame_weights(mask, x_adv)[:, 0]  # (N, T, 1, M)
    return _reduce((diff * diff * w).flatten(1).sum(1), w, reduction)


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
                          fps: float | None = None, reduction: str = "mean",
                          position_weights: Sequence[float] | torch.Tensor | None = None
                          ) -> torch.Tensor:
    """SMART's perceptual loss ``L_p = α l_dyn + (1 − α) l_bl`` (Eq. 2): ``(N,)``."""
    out = x_adv.new_zeros(x_adv.shape[0])
    if alpha:
        out = out + alpha * dynamics_loss(x_adv, x, mask, betas, fps, reduction,
                                          position_weights)
    if alpha != 1:
        out = out + (1 - alpha) * bone_length_loss(x_adv, ref_lengths, skeleton, mask,
                                                   reduction)
    return out


def difference_matrix(num_frames: int, order: int, dtype: torch.dtype = torch.float64,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """The ``(T − n, T)`` matrix ``Dⁿ`` with ``Dⁿ x = ∂ⁿx`` (forward differences)."""
    d = torch.eye(num_frames, dtype=dtype, device=device)
    for _ in range(order):
        d = d[1:] - d[:-1]
    return d


def dynamics_bands(w: torch.Tensor, alpha: float, betas: Sequence[float],
                   fps: float | None, reduction: str = "mean",
                   position_weights: Sequence[float] | torch.Tensor | None = None,
                   num_joints: int | None = None) -> list[torch.Tensor]:
    """Diagonals ``A[s, s + k]``, k = 0 … n_max, of ``l_dyn``'s gradient operator.

    ``A = Σ_n (2 α β_n / c_n) Dⁿᵀ W_n Dⁿ``: row ``r`` of ``Dⁿ`` carries the stencil
    ``d_j = (−1)^(n−j) C(n, j)`` on frames ``r … r + n``, so
    ``A[s, s + k] = Σ_n coef_n Σ_j d_j d_(j+k) w_n[s − j]`` with ``w_n`` the ``(T − n)``
    valid-stencil weights (zero outside) and ``c_n`` their count (1 with
    ``reduction="sum"``). ``w``: the ``(N, 1, T, 1, M)`` frame weights; returns
    ``(N, 1, T − k, 1, M)`` tensors (an empty list when ``α = 0``). With
    ``position_weights`` (``num_joints`` of them) the position term is weighted per
    joint and the main diagonal is ``(N, 1, T, V, M)``.
    """
    check_reduction(reduction)
    t = w.shape[2]
    orders = [(n, b) for n, b in enumerate(betas) if b and alpha and t > n]
    pw = None
    if position_weights is not None and any(n == 0 for n, _ in orders):
        like = w.new_zeros(1, 1, 1, num_joints or len(position_weights), 1)
        pw = _joint_weights(position_weights, like)
    bands = [w.new_zeros(*w.shape[:2], t - k, pw.shape[3] if pw is not None and k == 0 else 1,
                         w.shape[4])
             for k in range(max((n for n, _ in orders), default=-1) + 1)]
    for order, beta in orders:
        stencil = difference_matrix(order + 1, order)[0].tolist()
        wn = _stencil_weights(w, order)
        coef = 2.0 * alpha * beta * (float(fps) ** (2 * order) if fps else 1.0)
        if reduction == "mean":
            coef = coef / wn.flatten(1).sum(1).clamp_min(1.0).view(-1, 1, 1, 1, 1)
        for j in range(order + 1):  # w_n shifted to frame s = r + j, zero-padded to T
            shifted = torch.nn.functional.pad(wn, (0, 0, 0, 0, j, order - j)) * coef
            if order == 0 and pw is not None:
                shifted = shifted * pw
            for k in range(order + 1 - j):
                bands[k] += stencil[j] * stencil[j + k] * shifted[:, :, :t - k]
    return bands


def apply_banded(bands: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``A x`` along time for a symmetric banded ``A`` given by its diagonals.

    ``bands[k]`` holds ``A[s, s + k]``, shape ``(N, 1, T − k, 1 or V, M)``;
    ``x`` is ``(N, C, T, V, M)``. ``(A x)_s = Σ_k A[s, s + k] x_(s+k) + A[s − k, s] x_(s−k)``.
    """
    if not bands:
        return torch.zeros_like(x)
    out = bands[0] * x
    for k, band in enumerate(bands[1:], start=1):
        out[:, :, :-k].addcmul_(band, x[:, :, k:])
        out[:, :, k:].addcmul_(band, x[:, :, :-k])
    return out


class SmartPerceptualGradient:
    """``∂L_p/∂q̂`` of :func:`smart_perceptual_loss` in closed form, set up once per attack.

    ``l_dyn`` is quadratic in ``δ = q̂ − q``, so the gradient of ``α l_dyn`` is linear,
    ``A δ`` with ``A = Σ_n (2 α β_n / c_n) Dⁿᵀ W_n Dⁿ`` per sample and body
    (``W_n`` the valid stencils, ``c_n`` their count, or 1 with ``reduction="sum"``;
    ``position_weights`` scale the position term per joint). ``A`` is symmetric and banded
    (``A[s, s + k] = 0`` for ``|k| > n_max``, the highest derivative order), so it
    is kept as its ``n_max + 1`` diagonals and applied as shifted products: ``O(T)``
    per step and memory, and a sample's gradient does not depend on its batch. For
    ``l_bl``, ``∂/∂q̂_child = −∂/∂q̂_parent = 2 (ℓ̂ − ℓ) u_b / c_0`` with ``u_b`` the unit
    bone vector, gathered and scattered with the bone incidence matrix. Equal to
    autograd through :func:`smart_perceptual_loss` (tested), at a fraction of the cost.
    """

    def __init__(self, x: torch.Tensor, skeleton: Skeleton | str, mask: torch.Tensor | None,
                 alpha: float = 0.3, betas: Sequence[float] = (0.6, 0.0, 0.4),
                 fps: float | None = None, reduction: str = "mean",
                 position_weights: Sequence[float] | torch.Tensor | None = None) -> None:
        skel = get_skeleton(skeleton)
        v = x.shape[3]
        w = _frame_weights(mask, x)  # (N, 1, T, 1, M)
        # expanded over joints once: a broadcast over V with M innermost is ~4x slower per step
        self.bands = [band.to(x.dtype).expand(-1, -1, -1, v, -1).contiguous()
                      for band in dynamics_bands(w.double(), alpha, betas, fps, reduction,
                                                 position_weights, v)]
        self.x = x
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
        count = (w.flatten(1).sum(1).clamp_min(1.0) if reduction == "mean"
                 else w.new_ones(w.shape[0]))
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
        for name in ("x", "vec_ref", "len_ref", "bone_weight"):
            setattr(out, name, getattr(self, name).index_select(0, idx))
        out.bands = [band.index_select(0, idx) for band in self.bands]
        return out

    def __call__(self, x_adv: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x_adv.shape
        delta = x_adv - self.x
        grad = apply_banded(self.bands, delta)
        if not self.use_bones:
            return grad
        vec = self._bone_vectors(delta, self.vec_ref)
        length = self._lengths(vec)
        factor = (length - self.len_ref) / length * self.bone_weight
        scaled = (vec * factor).view(-1, vec.shape[-1])
        if m == 1:  # scatter back to the joints, fused with the sum
            return torch.addmm(grad.view(-1, v), scaled, self.incidence).view(n, c, t, v, m)
        return grad + (scaled @ self.incidence).view(n, c, t, m, v).transpose(3, 4)
