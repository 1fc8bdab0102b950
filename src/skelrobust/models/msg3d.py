"""MS-G3D: disentangled multi-scale and unified spatial-temporal graph convolutions.

Liu, Zhang, Chen, Wang & Ouyang, "Disentangling and Unifying Graph Convolutions for
Skeleton-Based Action Recognition", CVPR 2020.

**Disentangled multi-scale aggregation** (MS-GCN, eq. 3-4): with ``Ã_(k)`` the joints
exactly ``k`` hops apart (plus self-loops) and ``D̃_(k)`` its degree matrix,

    X' = σ( Σ_{k=0}^{K-1} (D̃_(k)^{-½} Ã_(k) D̃_(k)^{-½} + A_res,k) X W_k )

where ``A_res,k`` is a learnable residual mask (initialised in ``±1e-6``), and the
``K`` aggregations are concatenated along channels and mixed by one ``1×1`` conv + BN.

**G3D**: a sliding window of ``τ`` frames (dilation ``d``) is unfolded into
one graph of ``τ·V`` nodes whose adjacency is the ``τ×τ`` tiling of ``A + I`` (every
joint linked to its neighbours and itself in every frame of the window); the same
disentangled multi-scale aggregation runs on it and a ``(1, τ, 1)`` convolution
collapses the window. A *multi-window* G3D sums several such pathways.

**Architecture**: input BatchNorm over the ``M·V·C`` coordinates, then
``r = 3`` STGC blocks of 96/192/384 channels (temporal strides 1/2/2). Each block is
``MS-TCN(ReLU(G3D(x) + MS-TCN(MS-TCN(MS-GCN(x)))))`` (the second factorised MS-TCN
without activation), with MS-TCN the multi-scale temporal module
(:class:`~skelrobust.models.blocks.MultiScaleTemporalConv`: kernel 3, dilations 1-4).
Global average pooling over time, joints and bodies, then a linear classifier.
``size="base"`` is the published NTU joint stream: 13 MS-GCN scales, 6 G3D scales and two
G3D pathways with windows ``τ = 3`` and ``τ = 5`` (both undilated, as in the released code
and model) — 3.19 M parameters for NTU-60, the published 3.2 M. Two ``τ = 3`` pathways with
dilations 1 and 2 (the same temporal reach, 2.81 M parameters) are
``windows=((3, 1), (3, 2))``.
``size="small"`` (0.14 M parameters) has 24/48/96 channels, 4 MS-GCN and 2 G3D scales, one
undilated ``τ = 3`` window and MS-TCNs with dilations (1, 2) only (four branches, not six).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from skelrobust.errors import ConfigError
from skelrobust.models.blocks import (
    MultiScaleTemporalConv,
    check_motion,
    fold_bodies,
    init_bn,
    plan_for,
    pool_bodies,
)
from skelrobust.models.graph import multiscale_adjacency, normalize_undigraph
from skelrobust.models.registry import register_model
from skelrobust.skeleton import Skeleton

__all__ = [
    "MSG3D",
    "G3DPathway",
    "MultiScaleGraphConv",
    "STGCBlock",
    "unfold_windows",
    "window_hop_distance",
    "window_multiscale_adjacency",
]


@dataclass(frozen=True)
class Plan:
    channels: tuple[int, int, int]
    gcn_scales: int
    g3d_scales: int
    windows: tuple[tuple[int, int], ...]  # (τ, dilation) of each G3D pathway
    tcn_dilations: tuple[int, ...] = (1, 2, 3, 4)


PLANS: dict[str, Plan] = {
    "base": Plan((96, 192, 384), gcn_scales=13, g3d_scales=6, windows=((3, 1), (5, 1))),
    # 0.14 M parameters (NTU-60): all three STGC blocks, narrower, fewer scales and branches.
    "small": Plan((24, 48, 96), gcn_scales=4, g3d_scales=2, windows=((3, 1),),
                  tcn_dilations=(1, 2)),
}


# ---------------------------------------------------------------------- graphs
def window_hop_distance(skeleton: Skeleton, window: int) -> np.ndarray:
    """Hop distances on G3D's spatial-temporal window graph, ``(τ·V, τ·V)``.

    Node ``i·V + v`` is joint ``v`` in frame ``i`` of the window. The graph is the
    ``τ×τ`` tiling of ``A + I``, so two nodes of different joints are ``d(v, u)``
    hops apart whatever their frames, and the same joint in two frames is 1 hop apart.
    """
    hop = np.tile(skeleton.hop_distance, (window, window))
    v = skeleton.num_joints
    same_joint = np.tile(np.eye(v, dtype=bool), (window, window)) & ~np.eye(window * v, dtype=bool)
    hop[same_joint] = 1
    return hop


def window_multiscale_adjacency(skeleton: Skeleton, num_scales: int, window: int) -> np.ndarray:
    """The disentangled ``(K, τ·V, τ·V)`` stack of G3D (Liu et al., eq. 4 on the window graph).

    Scale ``k ≥ 1``: ``D^{-½}([hop = k] + I)D^{-½}``; scale 0: ``I``.
    """
    if num_scales < 1 or window < 1:
        raise ConfigError(f"num_scales and window must be >= 1, got {num_scales}, {window}")
    hop = window_hop_distance(skeleton, window)
    eye = np.eye(len(hop), dtype=np.float32)
    return np.stack([eye] + [normalize_undigraph((hop == k).astype(np.float32) + eye)
                             for k in range(1, num_scales)])


def unfold_windows(x: torch.Tensor, window: int, stride: int = 1,
                   dilation: int = 1) -> torch.Tensor:
    """Sliding temporal windows ``(N, C, T, V)`` → ``(N, C, T', τ·V)`` without a frame loop.

    Zero padding ``d(τ−1)/2`` each side keeps ``T' = ⌈T / stride⌉``; window ``w``
    holds frames ``w·s − pad + i·d`` for ``i < τ``, laid out frame-major (node ``i·V + v``).
    """
    n, c, _, v = x.shape
    pad = dilation * (window - 1) // 2
    span = dilation * (window - 1) + 1
    x = nn.functional.pad(x, (0, 0, pad, pad))
    w = x.unfold(2, span, stride)[..., ::dilation]  # (N, C, T', V, τ)
    return w.transpose(3, 4).reshape(n, c, w.shape[2], window * v)


# ---------------------------------------------------------------------- modules
class MultiScaleGraphConv(nn.Module):
    """Disentangled multi-scale graph conv ``ReLU(BN(W [X(Â_0+R_0), …, X(Â_{K−1}+R_{K−1})]))``.

    ``a`` is the ``(K, V, V)`` stack of normalised scales (columns index the receiving
    node, ``X' = X · A``); ``R_k`` (:attr:`A_res`) the learnable residual masks drawn
    from ``U(−1e-6, 1e-6)``. The ``K`` aggregations are one GEMM with the stacked
    scales; channel ``c·K + k`` of the concatenation is scale ``k`` of input channel ``c``.
    Used on the joint graph (MS-GCN) and on G3D's window graph alike.
    """

    def __init__(self, in_channels: int, out_channels: int, a: np.ndarray,
                 activation: bool = True) -> None:
        super().__init__()
        self.num_scales = a.shape[0]
        self.register_buffer("A", torch.from_numpy(np.ascontiguousarray(a, np.float32)),
                             persistent=False)
        self.A_res = nn.Parameter(torch.empty(a.shape).uniform_(-1e-6, 1e-6))
        self.conv = nn.Conv2d(in_channels * self.num_scales, out_channels, 1)
        self.bn = nn.BatchNorm2d(out_channels)
        init_bn(self.bn)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        k = self.num_scales
        a = (self.A + self.A_res).permute(1, 0, 2).reshape(v, k * v)
        z = (x.reshape(-1, v) @ a).view(n, c, t, k, v).transpose(2, 3).reshape(n, c * k, t, v)
        y = self.bn(self.conv(z))
        return torch.relu(y) if self.activation else y


class G3DPathway(nn.Module):
    """One G3D pathway: unfold windows → multi-scale GCN on ``τ·V`` nodes → collapse → BN.

    As published (embedding factor 1), the aggregation keeps ``C_in`` channels except in
    the first block (``first=True``), where it maps straight to ``C_out``; the collapse
    is a ``(1, τ, 1)`` convolution, here a ``1×1`` conv over ``C·τ`` stacked channels.
    No activation: the block applies ReLU after adding the factorised pathway.
    """

    def __init__(self, in_channels: int, out_channels: int, skeleton: Skeleton,
                 num_scales: int, window: int, dilation: int = 1, stride: int = 1,
                 first: bool = False) -> None:
        super().__init__()
        if window < 1 or window % 2 == 0 or dilation < 1:
            raise ConfigError(f"msg3d: a G3D window must be odd and its dilation >= 1, got "
                              f"{window}, {dilation}")
        self.window, self.dilation, self.stride = window, dilation, stride
        self.num_joints = skeleton.num_joints
        embed = out_channels if first else in_channels
        self.gcn = MultiScaleGraphConv(
            in_channels, embed, window_multiscale_adjacency(skeleton, num_scales, window))
        self.out_conv = nn.Conv2d(embed * window, out_channels, 1)
        self.out_bn = nn.BatchNorm2d(out_channels)
        init_bn(self.out_bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, v = x.shape[0], self.num_joints
        y = self.gcn(unfold_windows(x, self.window, self.stride, self.dilation))
        c, w = y.shape[1], y.shape[2]
        y = y.view(n, c, w, self.window, v).transpose(2, 3).reshape(n, c * self.window, w, v)
        return self.out_bn(self.out_conv(y))


class STGCBlock(nn.Module):
    """STGC block: ``MS-TCN(ReLU(Σ G3D(x) + MS-TCN'(MS-TCN(MS-GCN(x)))))`` (MS-TCN' linear)."""

    def __init__(self, in_channels: int, out_channels: int, skeleton: Skeleton, stride: int,
                 gcn_scales: int, g3d_scales: int, windows: Sequence[tuple[int, int]],
                 first: bool = False, tcn_dilations: Sequence[int] = (1, 2, 3, 4)) -> None:
        super().__init__()
        mid = out_channels if first else in_channels
        self.gcn3d = nn.ModuleList(
            G3DPathway(in_channels, out_channels, skeleton, g3d_scales, tau, d, stride, first)
            for tau, d in windows)
        self.sgcn = nn.Sequential(
            MultiScaleGraphConv(in_channels, mid,
                                multiscale_adjacency(skeleton, gcn_scales)),
            MultiScaleTemporalConv(mid, out_channels, stride=stride, dilations=tcn_dilations),
            MultiScaleTemporalConv(out_channels, out_channels, dilations=tcn_dilations,
                                   activation=False))
        self.tcn = MultiScaleTemporalConv(out_channels, out_channels, dilations=tcn_dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.sgcn(x)
        for pathway in self.gcn3d:
            y = y + pathway(x)
        return self.tcn(torch.relu(y))


@register_model("msg3d", description="MS-G3D, disentangled multi-scale GCN + unified "
                                     "spatial-temporal G3D pathways, multi-scale TCN",
                paper="Liu, Zhang, Chen, Wang & Ouyang, Disentangling and Unifying Graph "
                      "Convolutions for Skeleton-Based Action Recognition, CVPR 2020")
class MSG3D(nn.Module):
    """MS-G3D classifier: motion ``(N, C, T, V, M)`` with ``M = num_bodies`` → logits.

    ``num_bodies`` is fixed at construction (the input BatchNorm covers ``M·V·C``
    coordinates). Keyword overrides of the plan: ``gcn_scales`` (``K`` of MS-GCN),
    ``g3d_scales``, ``windows`` (``(τ, dilation)`` per G3D pathway). Any ``T ≥ 1``.
    """

    def __init__(self, skeleton: Skeleton, num_classes: int, size: str = "small",
                 in_channels: int = 3, num_bodies: int = 1, gcn_scales: int | None = None,
                 g3d_scales: int | None = None,
                 windows: Sequence[Sequence[int]] | None = None) -> None:
        super().__init__()
        plan = plan_for("msg3d", size, PLANS)
        gcn_scales = plan.gcn_scales if gcn_scales is None else gcn_scales
        g3d_scales = plan.g3d_scales if g3d_scales is None else g3d_scales
        wins = plan.windows if windows is None else tuple(tuple(w) for w in windows)
        if gcn_scales < 1 or g3d_scales < 1:
            raise ConfigError(f"msg3d: gcn_scales and g3d_scales must be >= 1, got "
                              f"{gcn_scales}, {g3d_scales}")
        if not wins or any(len(w) != 2 for w in wins):
            raise ConfigError(f"msg3d: windows must be (size, dilation) pairs, got {wins}")
        self.skeleton = skeleton
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.num_bodies = num_bodies
        v = skeleton.num_joints
        self.data_bn = nn.BatchNorm1d(num_bodies * v * in_channels)
        init_bn(self.data_bn)
        blocks, c_in = [], in_channels
        for i, c_out in enumerate(plan.channels):
            blocks.append(STGCBlock(c_in, c_out, skeleton, 1 if i == 0 else 2, gcn_scales,
                                    g3d_scales, wins, first=i == 0,
                                    tcn_dilations=plan.tcn_dilations))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.num_features = c_in
        self.fc = nn.Linear(c_in, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last block's maps pooled over time, joints and bodies: ``(N, num_features)``."""
        check_motion(x, "msg3d", self.skeleton, self.in_channels, self.num_bodies)
        n = x.shape[0]
        x = fold_bodies(x, self.data_bn, per_body=False)  # (N·M, C, T, V)
        for block in self.blocks:
            x = block(x)
        return pool_bodies(x, n)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """The linear classifier ``fc``: features ``(N, num_features)`` → logits."""
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
