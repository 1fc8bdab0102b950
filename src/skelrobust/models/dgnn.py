"""DGNN: directed graph neural network on joints and bones (Shi, Zhang, Cheng & Lu, CVPR 2019).

The skeleton is a directed acyclic graph: joints are vertices, bones are edges pointing
away from the root (the layout's centre joint), so the bone of every non-root joint
``v`` is the edge ``parent(v) → v`` carrying the vector ``x_v − x_parent(v)``
(``B = V − 1`` edges). With the source and target incidence matrices
``S, T ∈ {0,1}^{V×B}`` (``S_ij = 1`` iff vertex ``i`` is the source of edge ``j``), a
directed graph network (DGN) block updates

    ē⁻_i = mean of the edges entering v_i,  ē⁺_i = mean of the edges leaving v_i
    v'_i = h_v([v_i, ē⁻_i, ē⁺_i])                  V' = H_v([V, E·(T Λ_t⁻¹)ᵀ, E·(S Λ_s⁻¹)ᵀ])
    e'_j = h_e([e_j, v'_source(j), v'_target(j)])  E' = H_e([E, V'·S, V'·T])

with ``Λ`` the vertex degrees and ``h`` a fully connected layer (a ``1×1`` conv) + BN +
ReLU. Vertices are updated first and edges from the *updated* vertices, the paper's
order (the unofficial DGNN-PyTorch port updates both from the block's inputs).
``S`` and ``T`` are **adaptive**: parameters of every block, initialised to the
skeleton's incidence (the degree normalisation stays fixed); the paper keeps them
frozen for the first epochs, which :meth:`DGNN.set_graph_trainable` allows. Each block
is followed by a ``9×1`` temporal convolution + BN on the vertices and on the edges
(separate weights), a residual connection, then ReLU.

``size="base"`` is the published 10-block plan (64-64-64-64-128-128-128-256-256-256,
temporal strides 2 at blocks 5 and 8, no residual in the first block), input
BatchNorms over the ``M·V·C`` joint and ``M·B·C`` bone coordinates, global average
pooling of vertices and edges, concatenated, and a linear classifier. The paper gives
no parameter count; this network has 6.26 M parameters for NTU-60 (the joint/bone
"spatial" stream; 12.5 M with the motion stream). ``motion=True`` adds the paper's
motion stream — the same network on the frame differences of joints and bones — whose
logits are summed with the spatial stream's (score fusion). ``size="small"``: 6 blocks
16-32-32-64-64-64, 0.36 M parameters.

Unspecified in the paper and chosen as in 2s-AGCN by the same authors: ``1×1``
residual projections, Kaiming-initialised update functions, ``N(0, 2/classes)``
classifier weights. Bone data padded to ``V`` with a zero bone at the root (2s-AGCN's
NTU bone files) are not used: the graph has exactly one edge per bone.
"""

from __future__ import annotations

import numpy as np
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
    motion_stream,
    plan_for,
    pool_bodies,
)
from skelrobust.models.registry import register_model
from skelrobust.skeleton import Skeleton

__all__ = ["DGNN", "DGNBlock", "DGNNStream", "DGNUnit", "incidence_matrices"]

# (out_channels, temporal stride) of each block; the first block has no residual.
PLANS: dict[str, tuple[tuple[int, int], ...]] = {
    "base": ((64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1),
             (256, 2), (256, 1), (256, 1)),
    # 6 blocks 16-32-32-64-64-64 with strides at blocks 2 and 4.
    "small": ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (64, 1)),
}


def incidence_matrices(skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Source and target incidence matrices ``(V, B)`` of the skeleton's directed bone graph.

    Edge ``j`` is bone ``skeleton.bones[j] = (child, parent)``, directed
    ``parent → child``: ``S[parent, j] = T[child, j] = 1``. Every column of each has a
    single 1; the row sums of ``S`` count children, those of ``T`` are 1 except at the root.
    """
    v, bones = skeleton.num_joints, skeleton.bones
    cols = np.arange(len(bones))
    source = np.zeros((v, len(bones)), dtype=np.float32)
    target = np.zeros((v, len(bones)), dtype=np.float32)
    source[bones[:, 1], cols] = 1.0
    target[bones[:, 0], cols] = 1.0
    return source, target


class DGNBlock(nn.Module):
    """One DGN block: vertex update from in/out edges, then edge update from its two vertices.

    ``forward(v, e)`` takes vertex features ``(N, C_in, T, V)`` and edge features
    ``(N, C_in, T, B)`` and returns ``(N, C_out, T, V)``, ``(N, C_out, T, B)``.
    :attr:`source` and :attr:`target` hold the (adaptive) incidence matrices.
    """

    def __init__(self, in_channels: int, out_channels: int, source: np.ndarray,
                 target: np.ndarray, adaptive: bool = True) -> None:
        super().__init__()
        s, t = torch.from_numpy(source), torch.from_numpy(target)
        if adaptive:
            self.source, self.target = nn.Parameter(s), nn.Parameter(t)
        else:
            self.register_buffer("source", s, persistent=False)
            self.register_buffer("target", t, persistent=False)
        # Fixed averaging over a vertex's out-/in-edges (empty rows stay learnable: 1/max(d, 1)).
        self.register_buffer("inv_out", 1.0 / s.sum(1).clamp(min=1.0), persistent=False)
        self.register_buffer("inv_in", 1.0 / t.sum(1).clamp(min=1.0), persistent=False)
        self.h_v = nn.Conv2d(3 * in_channels, out_channels, 1)
        self.h_e = nn.Conv2d(in_channels + 2 * out_channels, out_channels, 1)
        self.bn_v = nn.BatchNorm2d(out_channels)
        self.bn_e = nn.BatchNorm2d(out_channels)
        for conv in (self.h_v, self.h_e):
            init_conv(conv)
        for bn in (self.bn_v, self.bn_e):
            init_bn(bn)

    def forward(self, v: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, t, nv = v.shape
        nb = e.shape[3]
        # E·[(T Λ_t⁻¹)ᵀ, (S Λ_s⁻¹)ᵀ]: mean incoming and outgoing edge of every vertex;
        # channels of h_v's input are [v (C), ē⁻ (C), ē⁺ (C)], of h_e's [e, v'_src, v'_tgt].
        to_v = torch.cat([(self.target * self.inv_in[:, None]).t(),
                          (self.source * self.inv_out[:, None]).t()], dim=1)  # (B, 2V)
        agg = (e.reshape(-1, nb) @ to_v).view(n, c, t, 2, nv).permute(0, 3, 1, 2, 4)
        v = F.relu(self.bn_v(self.h_v(torch.cat([v, agg.reshape(n, 2 * c, t, nv)], dim=1))))
        # V'·[S, T]: the updated source and target vertex of every edge.
        co = v.shape[1]
        ends = (v.reshape(-1, nv) @ torch.cat([self.source, self.target], dim=1))
        ends = ends.view(n, co, t, 2, nb).permute(0, 3, 1, 2, 4).reshape(n, 2 * co, t, nb)
        e = F.relu(self.bn_e(self.h_e(torch.cat([e, ends], dim=1))))
        return v, e


class DGNUnit(nn.Module):
    """DGN block → temporal conv (per vertex and per edge), + residual, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, source: np.ndarray,
                 target: np.ndarray, stride: int = 1, temporal_kernel: int = 9,
                 residual: bool = True, adaptive: bool = True) -> None:
        super().__init__()
        self.dgn = DGNBlock(in_channels, out_channels, source, target, adaptive)
        self.tcn_v = TemporalConv(out_channels, out_channels, temporal_kernel, stride)
        self.tcn_e = TemporalConv(out_channels, out_channels, temporal_kernel, stride)
        self.res_v: nn.Module | None
        self.res_e: nn.Module | None
        if not residual:
            self.res_v = self.res_e = None
        elif in_channels == out_channels and stride == 1:
            self.res_v, self.res_e = nn.Identity(), nn.Identity()
        else:
            self.res_v = TemporalConv(in_channels, out_channels, 1, stride)
            self.res_e = TemporalConv(in_channels, out_channels, 1, stride)

    def forward(self, v: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v2, e2 = self.dgn(v, e)
        v2, e2 = self.tcn_v(v2), self.tcn_e(e2)
        if self.res_v is not None and self.res_e is not None:
            v2, e2 = v2 + self.res_v(v), e2 + self.res_e(e)
        return torch.relu(v2), torch.relu(e2)


class DGNNStream(nn.Module):
    """One DGNN on joint and bone inputs ``(N, C, T, V, M)``, ``(N, C, T, B, M)`` → logits."""

    def __init__(self, skeleton: Skeleton, num_classes: int, plan: tuple[tuple[int, int], ...],
                 in_channels: int, num_bodies: int, temporal_kernel: int,
                 adaptive: bool) -> None:
        super().__init__()
        source, target = incidence_matrices(skeleton)
        v, b = source.shape
        self.data_bn_v = nn.BatchNorm1d(num_bodies * v * in_channels)
        self.data_bn_e = nn.BatchNorm1d(num_bodies * b * in_channels)
        init_bn(self.data_bn_v)
        init_bn(self.data_bn_e)
        units, c_in = [], in_channels
        for i, (c_out, stride) in enumerate(plan):
            units.append(DGNUnit(c_in, c_out, source, target, stride, temporal_kernel,
                                 residual=i > 0, adaptive=adaptive))
            c_in = c_out
        self.units = nn.ModuleList(units)
        self.num_features = 2 * c_in
        self.fc = nn.Linear(2 * c_in, num_classes)
        init_classifier(self.fc)

    def forward_features(self, joints: torch.Tensor, bones: torch.Tensor) -> torch.Tensor:
        """Pooled vertex maps then pooled edge maps, ``(N, num_features)``."""
        n = joints.shape[0]
        v = fold_bodies(joints, self.data_bn_v, per_body=False)  # (N·M, C, T, V)
        e = fold_bodies(bones, self.data_bn_e, per_body=False)  # (N·M, C, T, B)
        for unit in self.units:
            v, e = unit(v, e)
        return torch.cat([pool_bodies(v, n), pool_bodies(e, n)], dim=1)

    def forward(self, joints: torch.Tensor, bones: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(joints, bones))


@register_model("dgnn", description="DGNN, directed graph network on joints (vertices) and "
                                    "bones (edges) with adaptive incidence; optional motion "
                                    "stream",
                paper="Shi, Zhang, Cheng & Lu, Skeleton-Based Action Recognition with "
                      "Directed Graph Neural Networks, CVPR 2019")
class DGNN(nn.Module):
    """DGNN classifier: motion ``(N, C, T, V, M)`` with ``M = num_bodies`` → logits.

    Bones are computed inside (``x_child − x_parent``, one per edge), so the input is the
    joint motion as for every model. ``motion=True`` adds the motion stream (attribute
    :attr:`motion`; logits summed with :attr:`spatial`). ``adaptive=False`` fixes the
    incidence matrices; ``temporal_kernel`` (9) as published.

    Features (:meth:`forward_features`): the pooled vertex and edge maps of the
    spatial stream, then (``motion=True``) those of the motion stream; :meth:`forward_head`
    applies each stream's ``fc`` to its block and sums, so ``forward`` is exactly
    ``forward_head(forward_features(x))``.
    """

    def __init__(self, skeleton: Skeleton, num_classes: int, size: str = "small",
                 in_channels: int = 3, num_bodies: int = 1, motion: bool = False,
                 adaptive: bool = True, temporal_kernel: int = 9) -> None:
        super().__init__()
        plan = plan_for("dgnn", size, PLANS)
        if temporal_kernel < 1 or temporal_kernel % 2 == 0:
            raise ConfigError(f"dgnn: temporal_kernel must be odd and >= 1, got {temporal_kernel}")
        if skeleton.num_bones < 1:
            raise ConfigError(f"dgnn: layout {skeleton.name!r} has no bones")
        self.skeleton = skeleton
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.num_bodies = num_bodies
        self.register_buffer("bone_child", torch.from_numpy(skeleton.bones[:, 0].copy()),
                             persistent=False)
        kw = dict(skeleton=skeleton, num_classes=num_classes, plan=plan,
                  in_channels=in_channels, num_bodies=num_bodies,
                  temporal_kernel=temporal_kernel, adaptive=adaptive)
        self.spatial = DGNNStream(**kw)
        self.motion = DGNNStream(**kw) if motion else None
        self.num_features = self.spatial.num_features * (2 if motion else 1)

    def bones(self, x: torch.Tensor) -> torch.Tensor:
        """Bone vectors ``(N, C, T, B, M)``: edge ``j`` is ``x_child(j) − x_parent(j)``."""
        return bone_stream(x, self.skeleton).index_select(3, self.bone_child)

    def set_graph_trainable(self, trainable: bool) -> None:
        """Freeze or release the adaptive incidence matrices (the paper freezes them early)."""
        for name, p in self.named_parameters():
            if name.endswith((".source", ".target")):
                p.requires_grad_(trainable)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled stream features ``(N, num_features)`` (spatial, then motion if any)."""
        check_motion(x, "dgnn", self.skeleton, self.in_channels, self.num_bodies)
        bones = self.bones(x)
        feats = self.spatial.forward_features(x, bones)
        if self.motion is None:
            return feats
        return torch.cat([feats, self.motion.forward_features(motion_stream(x),
                                                              motion_stream(bones))], dim=1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``spatial.fc`` on its block, plus ``motion.fc`` on the motion block if any."""
        if self.motion is None:
            return self.spatial.fc(features)
        f_spatial, f_motion = features.split([self.spatial.num_features,
                                              self.motion.num_features], dim=1)
        # contiguous blocks: the same memory layout, so the same bits, as each stream alone
        return self.spatial.fc(f_spatial.contiguous()) + self.motion.fc(f_motion.contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
