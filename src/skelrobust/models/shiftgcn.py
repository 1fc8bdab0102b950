"""Shift-GCN (Cheng, Zhang, He, Chen, Cheng & Lu, "Skeleton-Based Action Recognition with
Shift Graph Convolutional Network", CVPR 2020), in plain PyTorch.

Each unit is a *non-local spatial shift graph convolution* followed by an
*adaptive temporal shift* block, plus a residual (Cheng et al., Sec. 3-4)::

    spatial:  Y = ReLU(BN(S_out(S_in(X) ⊙ (tanh(M) + 1) · W + b)) + down(X))
    temporal: Z = BN2(T_out(ReLU(W_t · T_in(BN(Y)))))
    unit:     ReLU(Z + residual(X))

``S_in`` moves channel ``j`` of joint ``i`` to joint ``(i − j) mod V`` (the unit
reads joint ``(i + j) mod V``), ``S_out`` the other way; ``M`` is the learnable
``Feature_Mask`` and ``W, b`` a point-wise linear map. ``T_in``/``T_out`` sample
channel ``c`` at frame ``t·s + y_c`` (``+ 0.5`` when the stride ``s`` is 2) by
linear interpolation with zeros outside the clip, with learnable positions
``y_c`` (``ypos``), and give ``T // s`` frames.

``size="base"`` is the published 10-unit network (64×4, 128/s2, 128×2, 256/s2,
256×2; 0.69 M parameters for NTU-60 with 2 bodies). Module, parameter and buffer
names follow the official code (``l1..l10``, ``gcn1.Linear_weight``,
``Feature_Mask``, ``shift_in``/``shift_out`` index buffers, ``tcn1.shift_in.ypos``,
``temporal_linear``, ``bn2``, ``residual``, ``data_bn``, ``fc``), so the official
checkpoints load with ``strict=True`` (:mod:`skelrobust.models.pretrained`).

Deviations, all invisible on the checkpoints: ``xpos`` (the joint-axis shift of
the official CUDA kernel, initialised in ±1e-8 and frozen there by a zero
gradient scale; |xpos| ≤ 2e-10 in both checkpoints) is kept as a frozen parameter
and not applied; the residual of a strided unit is cropped to ``T // s`` frames
(the official code fails for odd ``T``); clips shorter than the product of the
strides are zero-padded to it (the official code would produce no frames).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skelrobust.errors import ConfigError
from skelrobust.models.blocks import (
    TemporalConv,
    check_motion,
    fold_bodies,
    init_bn,
    init_classifier,
    init_conv,
    plan_for,
    pool_bodies,
)
from skelrobust.models.registry import register_model
from skelrobust.skeleton import Skeleton

__all__ = ["ShiftGCN", "ShiftGCNUnit", "ShiftGraphConv", "ShiftTemporalConv", "TemporalShift",
           "spatial_shift_index"]

# (out_channels, temporal stride) of each unit.
PLANS: dict[str, tuple[tuple[int, int], ...]] = {
    "base": ((64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1),
             (256, 2), (256, 1), (256, 1)),
    # 6 units, 16-32/s2-64-64/s2-128-128 (strides early, as the shifts are memory-bound on
    # CPU): 0.14 M parameters for NTU-60, one body.
    "small": ((16, 1), (32, 2), (64, 1), (64, 2), (128, 1), (128, 1)),
}
SHIFT_GRADS = ("sign", "exact")


def spatial_shift_index(num_joints: int, channels: int, direction: int) -> torch.Tensor:
    """The published spatial shift as a gather index over flattened ``(V, C)`` features.

    Output feature ``(i, j)`` (joint ``i``, channel ``j``) reads input feature
    ``(i + direction·j) mod V, j``: ``direction=+1`` is the official ``shift_in``
    (index ``(i·C + j + j·C) mod (V·C)``), ``-1`` its ``shift_out``.
    """
    i = np.arange(num_joints)[:, None]
    j = np.arange(channels)[None, :]
    flat = (i * channels + j + direction * j * channels) % (num_joints * channels)
    return torch.from_numpy(flat.reshape(-1).astype(np.int64))


def _sign_grad(grad: torch.Tensor) -> torch.Tensor:
    """The official position update: ``0.01·sign(g)``, and ``1e-4`` where ``g = 0``."""
    return torch.where(grad != 0, 0.01 * torch.sign(grad), torch.full_like(grad, 1e-4))


class TemporalShift(nn.Module):
    """Adaptive temporal shift (Cheng et al., Sec. 4): ``out[c, t] = x[c, t·s + y_c]``.

    The fractional position is read by linear interpolation between frames
    ``⌊p⌋`` and ``⌊p⌋ + 1`` (zero outside ``[0, T)``); ``y_c`` gets ``+ 0.5`` when
    ``stride > 1`` and the output has ``T // stride`` frames. ``shift_grad="sign"``
    reproduces the official update rule of the positions (``0.01·sign`` of the
    gradient), ``"exact"`` keeps the true gradient.
    """

    def __init__(self, channels: int, stride: int = 1, init_scale: float = 1.0,
                 shift_grad: str = "sign") -> None:
        super().__init__()
        self.stride = stride
        self.shift_grad = shift_grad
        # Joint-axis shift of the official kernel: ~0 and never trained there; kept for names.
        self.xpos = nn.Parameter(torch.empty(channels).uniform_(-1e-8, 1e-8), requires_grad=False)
        self.ypos = nn.Parameter(torch.empty(channels).uniform_(-init_scale, init_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        t_out = t // self.stride
        y = self.ypos
        if self.shift_grad == "sign" and y.requires_grad and torch.is_grad_enabled():
            y = y.clone()
            y.register_hook(_sign_grad)
        if self.stride > 1:
            y = y + 0.5
        fy = torch.floor(y.detach())
        frac = (y - fy).to(x.dtype)[:, None]  # (C, 1): weight of the later frame
        lo = fy.long()[:, None] + torch.arange(t_out, device=x.device) * self.stride  # (C, T')
        hi = lo + 1
        w_lo = (1.0 - frac) * ((lo >= 0) & (lo < t))
        w_hi = frac * ((hi >= 0) & (hi < t))
        base = torch.arange(c, device=x.device)[:, None] * t
        flat = x.reshape(n, c * t, v)
        x_lo = flat.index_select(1, (base + lo.clamp(0, t - 1)).reshape(-1))
        x_hi = flat.index_select(1, (base + hi.clamp(0, t - 1)).reshape(-1))
        out = (x_lo.view(n, c, t_out, v) * w_lo[..., None]
               + x_hi.view(n, c, t_out, v) * w_hi[..., None])
        return out

    def extra_repr(self) -> str:
        return f"channels={self.ypos.numel()}, stride={self.stride}, shift_grad={self.shift_grad}"


class ShiftTemporalConv(nn.Module):
    """Official ``Shift_tcn``: ``BN2(shift_out(ReLU(temporal_linear(shift_in(BN(x))))))``."""

    def __init__(self, channels: int, stride: int = 1, shift_grad: str = "sign") -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.shift_in = TemporalShift(channels, 1, shift_grad=shift_grad)
        self.temporal_linear = nn.Conv2d(channels, channels, 1)
        self.shift_out = TemporalShift(channels, stride, shift_grad=shift_grad)
        self.bn2 = nn.BatchNorm2d(channels)
        nn.init.kaiming_normal_(self.temporal_linear.weight, mode="fan_out")
        init_bn(self.bn2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.temporal_linear(self.shift_in(self.bn(x))))
        return self.bn2(self.shift_out(x))


class ShiftGraphConv(nn.Module):
    """Official ``Shift_gcn``: non-local spatial shift graph convolution (Cheng et al., Sec. 3.2).

    ``Y = ReLU(BN(S_out((S_in(X) ⊙ (tanh(M) + 1)) W + b)) + down(X))`` on
    ``(N, C, T, V)``; ``S_in``/``S_out`` are the ``shift_in``/``shift_out`` gather
    indices (buffers, from :func:`spatial_shift_index` or a checkpoint) and the BN
    normalises each of the ``V·C_out`` joint-channels.
    """

    def __init__(self, in_channels: int, out_channels: int, num_joints: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.num_joints = in_channels, out_channels, num_joints
        self.Linear_weight = nn.Parameter(torch.empty(in_channels, out_channels))
        nn.init.normal_(self.Linear_weight, 0.0, (1.0 / out_channels) ** 0.5)
        self.Linear_bias = nn.Parameter(torch.zeros(1, 1, out_channels))
        self.Feature_Mask = nn.Parameter(torch.zeros(1, num_joints, in_channels))
        self.bn = nn.BatchNorm1d(num_joints * out_channels)
        self.down: nn.Sequential | None = None
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1),
                                      nn.BatchNorm2d(out_channels))
            init_conv(self.down[0])
            init_bn(self.down[1])
        self.register_buffer("shift_in", spatial_shift_index(num_joints, in_channels, 1))
        self.register_buffer("shift_out", spatial_shift_index(num_joints, out_channels, -1))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x0.shape
        x = x0.permute(0, 2, 3, 1).reshape(n * t, v * c).index_select(1, self.shift_in)
        x = x.view(n * t, v, c) * (torch.tanh(self.Feature_Mask) + 1.0)
        x = torch.addmm(self.Linear_bias.view(-1), x.view(-1, c), self.Linear_weight)
        x = self.bn(x.view(n * t, -1).index_select(1, self.shift_out))  # (N·T, V·C_out)
        x = x.view(n, t, v, self.out_channels).permute(0, 3, 1, 2)
        return (x + (x0 if self.down is None else self.down(x0))).relu_()


class ShiftGCNUnit(nn.Module):
    """Official ``TCN_GCN_unit``: ``ReLU(tcn1(gcn1(x)) + residual(x))``.

    ``residual`` is none (first unit), the identity, or a strided 1×1
    :class:`~skelrobust.models.blocks.TemporalConv` cropped to ``T // stride`` frames.
    """

    def __init__(self, in_channels: int, out_channels: int, num_joints: int, stride: int = 1,
                 residual: bool = True, shift_grad: str = "sign") -> None:
        super().__init__()
        self.gcn1 = ShiftGraphConv(in_channels, out_channels, num_joints)
        self.tcn1 = ShiftTemporalConv(out_channels, stride, shift_grad=shift_grad)
        self.residual_mode = ("none" if not residual else
                              "identity" if in_channels == out_channels and stride == 1 else "conv")
        self.residual = (TemporalConv(in_channels, out_channels, kernel_size=1, stride=stride)
                         if self.residual_mode == "conv" else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn1(self.gcn1(x))
        if self.residual is not None:
            y = y + self.residual(x)[:, :, :y.shape[2]]
        elif self.residual_mode == "identity":
            y = y + x
        return y.relu_()


@register_model("shiftgcn", description="Shift-GCN: spatial shift graph conv + adaptive "
                "temporal shift (official checkpoints load strictly)",
                paper="Cheng, Zhang, He, Chen, Cheng & Lu, Skeleton-Based Action Recognition "
                      "with Shift Graph Convolutional Network, CVPR 2020")
class ShiftGCN(nn.Module):
    """Shift-GCN classifier: motion ``(N, C, T, V, M)`` with ``M = num_bodies`` → logits.

    The input BatchNorm normalises the ``M·V·C`` coordinates (so ``num_bodies`` is
    fixed at construction), bodies are folded into the batch, features are
    average-pooled over time, joints and bodies, and classified by ``fc``.
    ``shift_grad`` picks the update rule of the temporal positions (``"sign"``:
    official; ``"exact"``: the true gradient).
    """

    def __init__(self, skeleton: Skeleton, num_classes: int, size: str = "small",
                 in_channels: int = 3, num_bodies: int = 1, shift_grad: str = "sign") -> None:
        super().__init__()
        plan = plan_for("shiftgcn", size, PLANS)
        if shift_grad not in SHIFT_GRADS:
            raise ConfigError(f"shiftgcn: shift_grad must be one of {SHIFT_GRADS}, "
                              f"got {shift_grad!r}")
        self.skeleton = skeleton
        self.num_joints = v = skeleton.num_joints
        self.in_channels, self.num_classes, self.num_bodies = in_channels, num_classes, num_bodies
        self.data_bn = nn.BatchNorm1d(num_bodies * v * in_channels)
        init_bn(self.data_bn)
        self.unit_names: list[str] = []
        c_in = in_channels
        for i, (c_out, stride) in enumerate(plan):
            name = f"l{i + 1}"
            self.add_module(name, ShiftGCNUnit(c_in, c_out, v, stride, residual=i > 0,
                                               shift_grad=shift_grad))
            self.unit_names.append(name)
            c_in = c_out
        self.min_frames = int(np.prod([s for _, s in plan]))
        self.num_features = c_in
        self.fc = nn.Linear(c_in, num_classes)
        init_classifier(self.fc)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last unit's maps pooled over time, joints and bodies: ``(N, num_features)``."""
        check_motion(x, "shiftgcn", self.skeleton, self.in_channels, self.num_bodies)
        n, t = x.shape[0], x.shape[2]
        if t < self.min_frames:  # zero-pad, as clips are padded in the data
            x = F.pad(x, (0, 0, 0, 0, 0, self.min_frames - t))
        x = fold_bodies(x, self.data_bn, per_body=False)  # (N·M, C, T, V)
        for name in self.unit_names:
            x = getattr(self, name)(x)
        return pool_bodies(x, n)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """The linear classifier ``fc``: features ``(N, num_features)`` → logits."""
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
