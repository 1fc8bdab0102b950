"""CTR-GCN: channel-wise topology refinement graph convolution (Chen et al., ICCV 2021).

Each of the ``K = 3`` subsets refines a shared, learnable topology ``A_k`` (initialised
to the self / inward / outward partition) per output channel with a
data-dependent correlation ``Q`` (Chen et al., eqs. 3-6)::

    x̄_i  = mean_t x_ti                       (temporal pooling)
    M(x)_ij = tanh(ψ(x̄_i) − φ(x̄_j))          (channel-specific correlations, C_in/8 channels)
    R_k  = A_k + α · ξ(M(x))                  (ξ: 1×1 conv to C_out; α learned, starts at 0)
    z_i^c = Σ_k Σ_j R_k^c[i, j] · (W_k x_j)^c

then ``ReLU(BN(z) + down(x))``; a unit adds the multi-scale temporal convolution
(:class:`~skelrobust.models.blocks.MultiScaleTemporalConv`: kernel 5, dilations 1 and 2,
no inner residual or activation) and a residual, then ReLU. ``size="base"`` is the
published network: 10 units with base channels 64 (64, 64, 64, 64, 128/s2, 128, 128,
256/s2, 256, 256), the input BatchNorm over ``M·V·C`` coordinates (``num_bodies``
fixed at construction), and ``N(0, 2/classes)`` classifier weights: 1.46 M
parameters for NTU-60.

As in the official code, ``R_k[i, j]`` indexes the *receiving* joint by its row
(``einsum('ncuv,nctv->nctu')``), i.e. ``A_k`` enters as the transpose of the
:mod:`~skelrobust.models.graph` convention; the matrices themselves equal the
official ``graph.A``, so official weights keep their meaning. Parameters keep the
official names (``gcn1.convs.k.conv1..conv4``, ``PA``, ``alpha``, ``down``, ``bn``,
``tcn1``, ``residual``, ``data_bn``, ``fc``); an official state dict maps onto this
module by renaming ``l{i}.`` to ``units.{i-1}.``. The embedding width is 8 for the
input unit (the official rule for 3- or 9-channel input) and ``C_in // 8``
elsewhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from skelrobust.errors import ConfigError
from skelrobust.models.blocks import (
    MultiScaleTemporalConv,
    TemporalConv,
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

__all__ = ["CTRGC", "CTRGCN", "CTRGCNUnit", "ChannelTopologyGraphConv"]

# (out_channels, temporal stride) of each unit; the first unit has no residual.
PLANS: dict[str, tuple[tuple[int, int], ...]] = {
    "base": ((64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1),
             (256, 2), (256, 1), (256, 1)),
    # 6 units 16-32-32-64-64-128 with strides at units 2 and 4: 0.15 M parameters (NTU-60).
    "small": ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 1)),
}


class CTRGC(nn.Module):
    """Parameters of one CTR-GC subset: ``conv1`` (ψ), ``conv2`` (φ), ``conv3`` (W), ``conv4`` (ξ).

    :class:`ChannelTopologyGraphConv` applies all subsets at once.
    """

    def __init__(self, in_channels: int, out_channels: int, rel_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, rel_channels, 1)
        self.conv2 = nn.Conv2d(in_channels, rel_channels, 1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1)
        self.conv4 = nn.Conv2d(rel_channels, out_channels, 1)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            init_conv(conv)


def _cat(convs: list[nn.Conv2d]) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights ``(ΣO, I)`` and biases of ``1×1`` convolutions stacked along their outputs."""
    return (torch.cat([c.weight.flatten(1) for c in convs]),
            torch.cat([c.bias for c in convs]))


class ChannelTopologyGraphConv(nn.Module):
    """CTR-GCN's ``unit_gcn``: ``ReLU(BN(Σ_k CTR-GC_k(x; A_k, α)) + down(x))`` (Chen et al., eq. 6).

    ``forward(x)`` maps ``(N, C_in, T, V)`` to ``(N, C_out, T, V)``;
    :meth:`topologies` gives the refined per-channel topologies ``R_k``.
    """

    def __init__(self, in_channels: int, out_channels: int, a: torch.Tensor,
                 rel_channels: int, residual: bool = True) -> None:
        super().__init__()
        self.num_subsets = a.shape[0]
        self.rel_channels = rel_channels
        self.out_channels = out_channels
        self.convs = nn.ModuleList(CTRGC(in_channels, out_channels, rel_channels)
                                   for _ in range(self.num_subsets))
        self.PA = nn.Parameter(a.clone())  # shared topology, learned from the partition
        self.alpha = nn.Parameter(torch.zeros(1))
        self.down: nn.Module | None
        if not residual:
            self.down = None
        elif in_channels == out_channels:
            self.down = nn.Identity()
        else:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1),
                                      nn.BatchNorm2d(out_channels))
            init_conv(self.down[0])
            init_bn(self.down[1])
        self.bn = nn.BatchNorm2d(out_channels)
        init_bn(self.bn, 1e-6)

    def _correlations(self, x: torch.Tensor) -> torch.Tensor:
        """``M(x) = tanh(ψ(x̄)_i − φ(x̄)_j)`` of every subset: ``(N, K, R, V·V)``."""
        n, _, _, v = x.shape
        k, r = self.num_subsets, self.rel_channels
        # The 1×1 convs commute with the temporal mean: pool first, then embed.
        w12, b12 = _cat([c.conv1 for c in self.convs] + [c.conv2 for c in self.convs])
        emb = (torch.einsum("oc,ncv->nov", w12, x.mean(2)) + b12[:, None]).view(n, 2, k, r, v)
        return torch.tanh(emb[:, 0, ..., :, None] - emb[:, 1, ..., None, :]).view(n, k, r, v * v)

    def topologies(self, x: torch.Tensor) -> torch.Tensor:
        """``R_k = A_k + α·ξ_k(M(x))``: ``(N, K, C_out, V, V)``, ``[.., receiver, sender]``."""
        n, _, _, v = x.shape
        w4 = torch.stack([c.conv4.weight.flatten(1) for c in self.convs])  # (K, C_out, R)
        b4 = torch.stack([c.conv4.bias for c in self.convs])
        q = torch.einsum("kor,nkrx->nkox", w4, self._correlations(x)) + b4[..., None]
        return (q * self.alpha).view(n, self.num_subsets, -1, v, v) + self.PA[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        c, k, r = self.out_channels, self.num_subsets, self.rel_channels
        m = self._correlations(x)
        # W_k x of all subsets in one conv; outputs ordered (c, k) so each subset's slice
        # folds (N, C) into one batch dimension without a copy.
        w3 = torch.stack([s.conv3.weight.flatten(1) for s in self.convs], 1).flatten(0, 1)
        b3 = torch.stack([s.conv3.bias for s in self.convs], 1).flatten()
        feats = F.conv2d(x, w3[..., None, None], b3).view(n, c, k, t, v).unbind(2)
        z = None
        for i, sub in enumerate(self.convs):  # 3 subsets; R_k is (N·C, V, V), built in place
            w4, b4 = sub.conv4.weight.flatten(1) * self.alpha, sub.conv4.bias * self.alpha
            base = (self.PA[i] + b4[:, None, None]).view(c, v * v)
            rk = torch.baddbmm(base.expand(n, c, v * v), w4.expand(n, c, r), m[:, i])
            rk_t = rk.view(n * c, v, v).transpose(1, 2)  # [.., sender, receiver]
            fk = feats[i].reshape(n * c, t, v)
            z = fk @ rk_t if z is None else torch.baddbmm(z, fk, rk_t)
        y = self.bn(z.view(n, c, t, v))
        if self.down is not None:
            y = y + self.down(x)
        return torch.relu(y)


class CTRGCNUnit(nn.Module):
    """One CTR-GCN unit: ``ReLU(MS-TCN(CTR-GC(x)) + residual(x))``."""

    def __init__(self, in_channels: int, out_channels: int, a: torch.Tensor, rel_channels: int,
                 stride: int = 1, residual: bool = True, kernel_size: int = 5,
                 dilations: tuple[int, ...] = (1, 2)) -> None:
        super().__init__()
        self.gcn1 = ChannelTopologyGraphConv(in_channels, out_channels, a, rel_channels)
        self.tcn1 = MultiScaleTemporalConv(out_channels, out_channels, kernel_size, stride,
                                           dilations, residual="none", activation=False)
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = TemporalConv(in_channels, out_channels, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn1(self.gcn1(x))
        if self.residual is not None:
            y = y + self.residual(x)
        return torch.relu(y)


@register_model("ctrgcn", description="CTR-GCN, channel-wise topology refinement",
                paper="Chen, Zhang, Yuan, Li, Deng & Hu, Channel-wise Topology Refinement Graph "
                      "Convolution for Skeleton-Based Action Recognition, ICCV 2021")
class CTRGCN(nn.Module):
    """CTR-GCN classifier: motion ``(N, C, T, V, M)`` with ``M = num_bodies`` → logits.

    ``rel_reduction`` (8) sets the embedding width ``C_in // rel_reduction`` of
    ``M(x)``; ``dropout`` before the classifier is 0 by default, as published.
    """

    def __init__(self, skeleton: Skeleton, num_classes: int, size: str = "small",
                 in_channels: int = 3, num_bodies: int = 1, rel_reduction: int = 8,
                 dropout: float = 0.0) -> None:
        super().__init__()
        plan = plan_for("ctrgcn", size, PLANS)
        if rel_reduction < 1:
            raise ConfigError(f"ctrgcn: rel_reduction must be >= 1, got {rel_reduction}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"ctrgcn: dropout must be in [0, 1), got {dropout}")
        bad = [c for c, _ in plan if c % 4]
        if bad:  # the multi-scale TCN splits channels into 4 branches
            raise ConfigError(f"ctrgcn: unit widths must be multiples of 4, got {bad}")
        self.skeleton = skeleton
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.num_bodies = num_bodies
        v = skeleton.num_joints
        a = torch.from_numpy(inward_outward_partition(skeleton))
        self.data_bn = nn.BatchNorm1d(num_bodies * v * in_channels)
        init_bn(self.data_bn)
        units, c_in = [], in_channels
        for i, (c_out, stride) in enumerate(plan):
            rel = 8 if i == 0 else max(c_in // rel_reduction, 1)
            units.append(CTRGCNUnit(c_in, c_out, a, rel, stride=stride, residual=i > 0))
            c_in = c_out
        self.units = nn.ModuleList(units)
        self.num_features = c_in
        self.drop_out = nn.Dropout(dropout)
        self.fc = nn.Linear(c_in, num_classes)
        init_classifier(self.fc)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last unit's maps pooled over time, joints and bodies: ``(N, num_features)``."""
        check_motion(x, "ctrgcn", self.skeleton, self.in_channels, self.num_bodies)
        n = x.shape[0]
        x = fold_bodies(x, self.data_bn, per_body=False)  # (N·M, C, T, V)
        for unit in self.units:
            x = unit(x)
        return pool_bodies(x, n)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``fc(Dropout(features))``: features ``(N, num_features)`` → logits."""
        return self.fc(self.drop_out(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
