"""2s-AGCN: two-stream adaptive graph convolutional network (Shi, Zhang, Cheng & Lu, CVPR 2019).

The adaptive graph convolution (Shi et al., eq. 3) sums three graphs per subset ``k``::

    f_out = Σ_k W_k f_in (A_k + B_k + C_k)
    C_k   = softmax(f_inᵀ W_θkᵀ W_φk f_in)                        (eq. 4, embedded Gaussian)

``A_k`` is the fixed self / inward / outward partition
(:func:`~skelrobust.models.graph.inward_outward_partition`), ``B_k`` a freely learned
``V×V`` matrix initialised to ``1e-6`` as in the official code, and ``C_k`` a
per-sample graph from two ``1×1`` embeddings ``θ_k, φ_k`` of ``C_out/4``
channels; their dot product over channels and frames is divided by its length
(``C_e·T``, as in the official code) before the softmax over the sending joint,
so every column of ``C_k`` sums to 1. A unit is
``ReLU(BN(Σ_k ...) + down(f_in))`` → temporal ``9×1`` conv + BN, plus a residual, ReLU.

``size="base"`` is the published stream: 10 units 64-64-64-64-128-128-128-256-256-256
with temporal strides 2 at units 5 and 8, the input BatchNorm over ``M·V·C``
coordinates (so ``num_bodies`` is fixed at construction) and ``N(0, 2/classes)``
classifier weights, and no dropout (none in the official code); 3.47 M parameters
for NTU-60. ``stream`` picks the input:
``"joint"`` (coordinates), ``"bone"`` (:func:`~skelrobust.models.blocks.bone_stream`,
``x_v − x_parent(v)``), or ``"two"``: a joint and a bone network whose logits are
**summed**, the published score fusion (the official ``ensemble.py`` adds the two
streams' scores with weight 1).

Parameters keep the official names (``gcn1.conv_a.k``, ``conv_b.k``, ``conv_d.k``,
``PA``, ``down``, ``bn``, ``tcn1.conv``, ``residual``, ``data_bn``, ``fc``), so an
official state dict maps onto a stream by renaming ``l{i}.`` to ``units.{i-1}.``; the
forward pass concatenates the per-subset weights and runs all subsets at once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from skelrobust.errors import ConfigError
from skelrobust.models.blocks import (
    TemporalConv,
    bone_stream,
    check_motion,
    fold_bodies,
    init_bn,
    init_classifier,
    init_conv,
    plan_for,
    pool_bodies,
)
from skelrobust.models.graph import inward_outward_partition
from skelrobust.models.registry import register_model
from skelrobust.skeleton import Skeleton

__all__ = ["AGCN", "AGCNUnit", "AdaptiveGraphConv"]

STREAMS = ("joint", "bone", "two")

# (out_channels, temporal stride) of each unit; the first unit has no residual.
PLANS: dict[str, tuple[tuple[int, int], ...]] = {
    "base": ((64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1),
             (256, 2), (256, 1), (256, 1)),
    # 6 units 16-32-32-64-64-128 with strides at units 2 and 4: 0.36 M parameters per
    # stream (NTU-60) against 3.47 M for "base".
    "small": ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 1)),
}


class AdaptiveGraphConv(nn.Module):
    """Adaptive graph convolution ``Σ_k W_k X (A_k + B_k + C_k)`` (Shi et al., eq. 3), + BN, + down.

    ``forward(x, a)`` takes ``x`` of shape ``(N, C_in, T, V)`` and the fixed
    partitions ``a`` ``(K, V, V)`` (columns index the receiving joint, as in
    :mod:`~skelrobust.models.graph`) and returns ``ReLU(BN(y) + down(x))``.
    :meth:`graphs` gives the per-sample ``A_k + B_k + C_k``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int, num_joints: int,
                 embed_factor: int = 4) -> None:
        super().__init__()
        self.num_subsets = k = num_subsets
        self.inter_channels = max(out_channels // embed_factor, 1)
        self.conv_a = nn.ModuleList(nn.Conv2d(in_channels, self.inter_channels, 1)
                                    for _ in range(k))  # θ_k
        self.conv_b = nn.ModuleList(nn.Conv2d(in_channels, self.inter_channels, 1)
                                    for _ in range(k))  # φ_k
        self.conv_d = nn.ModuleList(nn.Conv2d(in_channels, out_channels, 1)
                                    for _ in range(k))  # W_k
        # B_k: learned from a small constant (official code: 1e-6).
        self.PA = nn.Parameter(torch.full((k, num_joints, num_joints), 1e-6))
        self.down: nn.Module = (nn.Identity() if in_channels == out_channels else
                                nn.Sequential(nn.Conv2d(in_channels, out_channels, 1),
                                              nn.BatchNorm2d(out_channels)))
        self.bn = nn.BatchNorm2d(out_channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init_conv(m)
            elif isinstance(m, nn.BatchNorm2d):
                init_bn(m)
        init_bn(self.bn, 1e-6)  # the graph branch starts silent
        std = math.sqrt(2.0 / (out_channels * in_channels * k))  # official conv_branch_init
        for conv in self.conv_d:
            nn.init.normal_(conv.weight, 0.0, std)

    def graphs(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``A_k + B_k + C_k`` for every sample: ``(N, K, V, V)``, ``[n, k, sender, receiver]``."""
        n, _, t, v = x.shape
        k, ce = self.num_subsets, self.inter_channels
        weight = torch.cat([c.weight for c in (*self.conv_a, *self.conv_b)])
        bias = torch.cat([c.bias for c in (*self.conv_a, *self.conv_b)])
        emb = F.conv2d(x, weight, bias).view(n, 2, k, ce * t, v)
        theta, phi = emb[:, 0], emb[:, 1]  # (N, K, C_e·T, V)
        # C_k[u, w] = softmax_u(θ(u)·φ(w) / (C_e·T)): each receiver's column sums to 1.
        c = torch.softmax(theta.transpose(-1, -2) @ phi / (ce * t), dim=-2)
        return c + (a + self.PA).unsqueeze(0)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        k = self.num_subsets
        g = self.graphs(x, a)
        # X · G_k for all k: (N, 1, C·T, V) @ (N, K, V, V) -> (N, K·C, T, V).
        z = (x.reshape(n, 1, c * t, v) @ g).view(n, k * c, t, v)
        weight = torch.cat([conv.weight for conv in self.conv_d], dim=1)  # [o, k·C_in + c]
        bias = torch.stack([conv.bias for conv in self.conv_d]).sum(0)
        y = self.bn(F.conv2d(z, weight, bias))
        return torch.relu(y + self.down(x))


class AGCNUnit(nn.Module):
    """One 2s-AGCN unit: ``ReLU(TConv_9×1(AGC(x)) + residual(x))``."""

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int, num_joints: int,
                 stride: int = 1, temporal_kernel: int = 9, residual: bool = True,
                 embed_factor: int = 4) -> None:
        super().__init__()
        self.gcn1 = AdaptiveGraphConv(in_channels, out_channels, num_subsets, num_joints,
                                      embed_factor)
        self.tcn1 = TemporalConv(out_channels, out_channels, temporal_kernel, stride)
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = TemporalConv(in_channels, out_channels, 1, stride)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        y = self.tcn1(self.gcn1(x, a))
        if self.residual is not None:
            y = y + self.residual(x)
        return torch.relu(y)


@register_model("agcn", description="2s-AGCN, adaptive graph convolution; joint, bone or "
                                    "two-stream (summed scores)",
                paper="Shi, Zhang, Cheng & Lu, Two-Stream Adaptive Graph Convolutional Networks "
                      "for Skeleton-Based Action Recognition, CVPR 2019")
class AGCN(nn.Module):
    """2s-AGCN classifier: motion ``(N, C, T, V, M)`` with ``M = num_bodies`` → logits.

    ``stream``: ``"joint"``, ``"bone"`` or ``"two"`` (attributes :attr:`joint` and
    :attr:`bone` hold the two single-stream networks; the output is the sum of
    their logits). ``temporal_kernel`` (9) and ``embed_factor`` (``C_e = C_out /
    embed_factor``, 4) as published.

    Features (:meth:`forward_features`): a single stream's last-unit maps pooled
    over time, joints and bodies. Two-stream: the joint stream's features then the
    bone stream's, concatenated, and :meth:`forward_head` applies each stream's
    ``fc`` to its block and sums the logits, so ``forward`` is exactly
    ``forward_head(forward_features(x))``.
    """

    def __init__(self, skeleton: Skeleton, num_classes: int, size: str = "small",
                 in_channels: int = 3, num_bodies: int = 1, stream: str = "joint",
                 temporal_kernel: int = 9, embed_factor: int = 4) -> None:
        super().__init__()
        plan = plan_for("agcn", size, PLANS)
        if stream not in STREAMS:
            raise ConfigError(f"agcn: stream must be one of {STREAMS}, got {stream!r}")
        if temporal_kernel < 1 or temporal_kernel % 2 == 0:
            raise ConfigError(f"agcn: temporal_kernel must be odd and >= 1, got {temporal_kernel}")
        if embed_factor < 1:
            raise ConfigError(f"agcn: embed_factor must be >= 1, got {embed_factor}")
        self.skeleton = skeleton
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.num_bodies = num_bodies
        self.stream = stream
        if stream == "two":
            kw = dict(skeleton=skeleton, num_classes=num_classes, size=size,
                      in_channels=in_channels, num_bodies=num_bodies,
                      temporal_kernel=temporal_kernel, embed_factor=embed_factor)
            self.joint = AGCN(stream="joint", **kw)
            self.bone = AGCN(stream="bone", **kw)
            self.num_features = self.joint.num_features + self.bone.num_features
            return
        v = skeleton.num_joints
        a = torch.from_numpy(inward_outward_partition(skeleton))
        self.register_buffer("A", a, persistent=False)  # derived from the layout
        self.data_bn = nn.BatchNorm1d(num_bodies * v * in_channels)
        init_bn(self.data_bn)
        units, c_in = [], in_channels
        for i, (c_out, stride) in enumerate(plan):
            units.append(AGCNUnit(c_in, c_out, a.shape[0], v, stride=stride,
                                  temporal_kernel=temporal_kernel, residual=i > 0,
                                  embed_factor=embed_factor))
            c_in = c_out
        self.units = nn.ModuleList(units)
        self.num_features = c_in
        self.fc = nn.Linear(c_in, num_classes)
        init_classifier(self.fc)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled last-unit maps ``(N, num_features)`` (two-stream: joint ‖ bone)."""
        check_motion(x, "agcn", self.skeleton, self.in_channels, self.num_bodies)
        if self.stream == "two":
            return torch.cat([self.joint.forward_features(x), self.bone.forward_features(x)],
                             dim=1)
        if self.stream == "bone":
            x = bone_stream(x, self.skeleton)
        n = x.shape[0]
        x = fold_bodies(x, self.data_bn, per_body=False)  # (N·M, C, T, V)
        for unit in self.units:
            x = unit(x, self.A)
        return pool_bodies(x, n)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``fc(features)``; two-stream: ``joint.fc(f_joint) + bone.fc(f_bone)``."""
        if self.stream == "two":
            f_joint, f_bone = features.split([self.joint.num_features,
                                              self.bone.num_features], dim=1)
            # contiguous blocks: the same memory layout, so the same bits, as each stream alone
            return (self.joint.forward_head(f_joint.contiguous())
                    + self.bone.forward_head(f_bone.contiguous()))
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
