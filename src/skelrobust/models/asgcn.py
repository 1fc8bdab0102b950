"""AS-GCN: actional-structural graph convolutional networks (Li et al., CVPR 2019).

Two kinds of links feed each graph convolution (Li, Chen, Chen, Zhang, Wang &
Tian, Sec. 4-5):

- **A-links** (actional), inferred from the motion by the A-link inference
  module (AIM), an NRI-style encoder: joint features ``p_i = f(X_i)``, then
  joint→link ``Q_ij = f_e([p_i, p_j])``, link→joint ``p_i = f_v(mean_j Q_ij)``,
  joint→link again with a skip, and ``A_ij = softmax(Q_ij)`` over ``C`` link types,
  type 0 meaning "no link" and left out of the graph;
- **S-links** (structural): the ``K``-th order neighbourhoods of the body graph
  (``K = 4``), split by the spatial configuration of ST-GCN (``1 + 2K`` subsets
  from :func:`~skelrobust.models.graph.spatial_partition`), each with its own
  weights and a learnable edge importance, as in the published code.

The actional-structural graph convolution is (eq. 6)::

    AGC(X) = Σ_k W_k X (A_k ⊙ M_k)  +  λ · Σ_{c=1}^{C-1} W_c X Â_c(X),   λ = 0.5

with ``Â_c`` the column-normalised ``A_c + I``. An AS-GCN block is AGC → BN →
ReLU → temporal conv (9×1) → BN (+ residual, ReLU); the backbone has 9 blocks,
64-64-64-128-128-128-256-256-256, temporal stride 2 at blocks 4 and 7.

**Training of the AIM.** In ``forward`` the links are computed from the input
and the AIM is trained end-to-end with the classifier by default (a hard
Gumbel-softmax sample, τ = 0.5, with straight-through gradients in training;
the softmax probabilities, the sample's expectation, in eval mode, so the model
is deterministic and smooth for attacks). The published two-stage recipe is
available: :meth:`ASGCN.pretrain_aim` trains the encoder with its decoder on
the NRI objective (Gaussian likelihood of the next pose + KL to a prior), and
``freeze=True`` then keeps the AIM fixed while the classifier trains.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from skelrobust.errors import ConfigError, ShapeError
from skelrobust.models.blocks import TemporalConv, check_motion, fold_bodies, plan_for, pool_bodies
from skelrobust.models.graph import spatial_partition
from skelrobust.models.registry import register_model
from skelrobust.models.stgcn import SpatialGraphConv
from skelrobust.skeleton import Skeleton

__all__ = [
    "AGC",
    "ASGCN",
    "AIMPretraining",
    "ASGCNBlock",
    "ActionalGraphConv",
    "LinkDecoder",
    "LinkInference",
]

#: Weight of the future-pose loss in the published joint objective (CE + 0.01·MSE).
PREDICTION_WEIGHT = 0.01


@dataclass(frozen=True)
class _Plan:
    blocks: tuple[tuple[int, int], ...]  # (out_channels, temporal stride) per block
    head: tuple[tuple[int, int], ...]  # the same for the prediction head
    max_hop: int  # K, order of the S-links
    aim_hidden: int
    aim_frames: int  # frames the AIM resamples every clip to


PLANS: dict[str, _Plan] = {
    # Published: 9 blocks, AIM with 128 hidden units on 50 downsampled frames.
    "base": _Plan(((64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1),
                   (256, 2), (256, 1), (256, 1)),
                  ((128, 1), (128, 2), (128, 2), (128, 2), (128, 2)), 4, 128, 50),
    # CPU plan: 6 narrow blocks, S-links up to K = 2, a 32-unit AIM on 16 frames.
    "small": _Plan(((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 1)),
                   ((64, 1), (64, 2)), 2, 32, 16),
}


# ----------------------------------------------------------------------------- AIM
class _MLP(nn.Module):
    """NRI's two-layer ELU MLP with a BatchNorm over all rows: ``(B, R, n_in) → (B, R, n_out)``."""

    def __init__(self, n_in: int, n_hid: int, n_out: int, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(n_in, n_hid), nn.Linear(n_hid, n_out)
        self.bn = nn.BatchNorm1d(n_out)
        self.dropout = nn.Dropout(dropout)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_normal_(fc.weight)
            nn.init.constant_(fc.bias, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.elu(self.fc2(self.dropout(F.elu(self.fc1(x)))))
        return self.bn(x.reshape(-1, x.shape[-1])).view_as(x)


class LinkInference(nn.Module):
    """The AIM encoder: link-type logits for every ordered joint pair (Li et al., eq. 2-3).

    ``p_i = f₁(X_i)``; ``Q_ij = f₂([p_j, p_i])``; ``p_i = f₃(mean_{j≠i} Q_ji)``;
    ``Q_ij = f₄([p_j, p_i, Q_ij])``; logits ``= W Q_ij``. Clips are first
    resampled to ``frames`` frames (the published AIM sees 50 downsampled frames),
    so ``X_i`` is the ``frames·C`` trajectory of joint ``i``. Pairs are the
    ``V(V−1)`` off-diagonal ``(sender, receiver)`` pairs in row-major order.
    """

    def __init__(self, num_joints: int, in_channels: int, frames: int, hidden: int,
                 num_types: int, dropout: float = 0.5) -> None:
        super().__init__()
        v = num_joints
        self.num_joints, self.frames, self.hidden, self.num_types = v, frames, hidden, num_types
        send, recv = torch.nonzero(~torch.eye(v, dtype=torch.bool), as_tuple=True)
        self.register_buffer("send", send, persistent=False)
        self.register_buffer("recv", recv, persistent=False)
        self.register_buffer("pair_index", send * v + recv, persistent=False)
        diag = torch.zeros(v * v, num_types)
        diag[torch.arange(v) * (v + 1), 0] = 1.0  # a joint has "no link" to itself
        self.register_buffer("diag_fill", diag, persistent=False)
        self.mlp1 = _MLP(frames * in_channels, hidden, hidden, dropout)
        self.mlp2 = _MLP(2 * hidden, hidden, hidden, dropout)
        self.mlp3 = _MLP(hidden, hidden, hidden, dropout)
        self.mlp4 = _MLP(3 * hidden, hidden, hidden, dropout)
        self.fc_out = nn.Linear(hidden, num_types)
        nn.init.xavier_normal_(self.fc_out.weight)
        nn.init.constant_(self.fc_out.bias, 0.1)

    def resample(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, V) → (B, C, frames, V)`` by linear interpolation in time."""
        b, c, t, v = x.shape
        y = x.permute(0, 1, 3, 2).reshape(b, c * v, t)
        y = F.interpolate(y, size=self.frames, mode="linear", align_corners=True)
        return y.view(b, c, v, self.frames).permute(0, 1, 3, 2)

    def _pairs(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([h.index_select(1, self.recv), h.index_select(1, self.send)], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Resampled clips ``(B, C, frames, V)`` → logits ``(B, V(V−1), num_types)``."""
        b, v = x.shape[0], self.num_joints
        h = self.mlp1(x.permute(0, 3, 2, 1).reshape(b, v, -1))
        e = self.mlp2(self._pairs(h))
        h = e.new_zeros(b, v, e.shape[-1]).index_add(1, self.recv, e) / (v - 1)
        e = self.mlp4(torch.cat([self._pairs(self.mlp3(h)), e], dim=-1))
        return self.fc_out(e)

    def to_dense(self, w: torch.Tensor) -> torch.Tensor:
        """Per-pair values ``(B, V(V−1), C)`` → ``(B, C, V, V)``, ``[b, c, sender, receiver]``.

        The diagonal is "no link" (type 0), so a softmax stays stochastic over ``C``.
        """
        b, v = w.shape[0], self.num_joints
        dense = self.diag_fill.to(w.dtype).expand(b, -1, -1).index_copy(1, self.pair_index, w)
        return dense.view(b, v, v, -1).permute(0, 3, 1, 2)


class LinkDecoder(nn.Module):
    """The AIM decoder: the next pose from the current one and the A-links (Li et al., eq. 4).

    ``Q_ij^{t+1} = Σ_{c≥1} A_ijc f_c([x_j^t, x_i^t])``, ``p_i^{t+1} = F(mean_j Q_ji^{t+1})``,
    ``S_i^{t+1} = GRU(S_i^t, p_i^{t+1})``, ``μ_i^{t+1} = x_i^t + f_out(S_i^{t+1})``.
    Messages depend on the observed poses only, so all steps are computed at
    once and the recurrence is one ``nn.GRU`` call. Used only by
    :meth:`ASGCN.pretrain_aim`; not part of the classifier's weights.
    """

    def __init__(self, in_channels: int, hidden: int, num_types: int) -> None:
        super().__init__()
        k = num_types - 1
        self.num_actional, self.hidden = k, hidden
        bound1, bound2 = 1 / math.sqrt(2 * in_channels), 1 / math.sqrt(hidden)
        # f_c for every type c at once: columns [c·H, (c+1)·H) belong to type c.
        self.w1 = nn.Parameter(torch.empty(2 * in_channels, k * hidden).uniform_(-bound1, bound1))
        self.b1 = nn.Parameter(torch.empty(k * hidden).uniform_(-bound1, bound1))
        self.w2 = nn.Parameter(torch.empty(k, hidden, hidden).uniform_(-bound2, bound2))
        self.b2 = nn.Parameter(torch.empty(k * hidden).uniform_(-bound2, bound2))
        self.register_buffer("eye_k", torch.eye(k), persistent=False)
        self.node = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, in_channels))

    def forward(self, x: torch.Tensor, links: torch.Tensor, send: torch.Tensor,
                recv: torch.Tensor) -> torch.Tensor:
        """``x (B, C, T, V)``, ``links (B, V(V−1), C_types)`` → predictions of ``x[:, :, 1:]``."""
        b, c, t, v = x.shape
        k, hid = self.num_actional, self.hidden
        xt = x[:, :, :-1].permute(0, 2, 3, 1)  # (B, T−1, V, C)
        # Layer 1 is linear in [x_receiver, x_sender]: project the joints, then gather pairs.
        h_recv = (xt @ self.w1[:c]).index_select(2, recv)
        h_send = (xt @ self.w1[c:]).index_select(2, send)
        m = torch.tanh(h_recv + h_send + self.b1)  # (B, T−1, E, K·H)
        # Layer 2: the K per-type maps as one block-diagonal GEMM.
        w2 = torch.einsum("kl,khg->khlg", self.eye_k, self.w2).reshape(k * hid, k * hid)
        m = torch.tanh(m @ w2 + self.b2).view(b, t - 1, -1, k, hid)
        m = (m * links[:, None, :, 1:, None]).sum(dim=3) / k
        agg = m.new_zeros(b, t - 1, v, m.shape[-1]).index_add(2, recv, m) / (v - 1)
        p = self.node(agg).permute(0, 2, 1, 3).reshape(b * v, t - 1, -1)
        s, _ = self.gru(p)
        delta = self.out(s).view(b, v, t - 1, c).permute(0, 3, 2, 1)
        return x[:, :, :-1] + delta


# ----------------------------------------------------------------------------- AGC
class ActionalGraphConv(nn.Module):
    """A-GC with per-sample graphs: ``Y = Σ_c W_c X Â_c + b_c 1ᵀÂ_c``, ``Â (B, C', V, V)``.

    Aggregate-first like :class:`~skelrobust.models.stgcn.SpatialGraphConv`:
    one batched GEMM, then a 1×1 convolution from ``C'·C_in`` to ``C_out``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_types: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels * num_types, out_channels, kernel_size=1, bias=False)
        self.bias = nn.Parameter(torch.zeros(num_types, out_channels))

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        b, c, t, v = x.shape
        k = a.shape[1]
        z = torch.bmm(x.reshape(b, c * t, v), a.permute(0, 2, 1, 3).reshape(b, v, k * v))
        z = z.view(b, c, t, k, v).transpose(2, 3).reshape(b, c * k, t, v)
        bias = torch.einsum("ko,bkw->bow", self.bias, a.sum(dim=2))
        return self.conv(z) + bias.unsqueeze(2)


class AGC(nn.Module):
    """``AGC(X) = S-GC(X; A ⊙ M) + λ·A-GC(X; Â_act)`` (Li et al., eq. 6).

    ``num_actional=0`` leaves out the A-GC (an S-link-only model).
    """

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int, num_joints: int,
                 num_actional: int, lambda_act: float = 0.5) -> None:
        super().__init__()
        self.structural = SpatialGraphConv(in_channels, out_channels, num_subsets)
        self.edge_importance = nn.Parameter(torch.ones(num_subsets, num_joints, num_joints))
        self.actional = (ActionalGraphConv(in_channels, out_channels, num_actional)
                         if num_actional else None)
        self.lambda_act = lambda_act

    def forward(self, x: torch.Tensor, a_struct: torch.Tensor,
                a_act: torch.Tensor | None) -> torch.Tensor:
        y = self.structural(x, a_struct * self.edge_importance)
        if self.actional is not None and a_act is not None:
            y = y + self.lambda_act * self.actional(x, a_act)
        return y


class ASGCNBlock(nn.Module):
    """AGC → BN → ReLU → temporal conv (k×1, stride) → BN → Dropout, + residual, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int, num_joints: int,
                 num_actional: int, stride: int = 1, temporal_kernel: int = 9,
                 dropout: float = 0.0, residual: bool = True, lambda_act: float = 0.5) -> None:
        super().__init__()
        self.agc = AGC(in_channels, out_channels, num_subsets, num_joints, num_actional,
                       lambda_act)
        self.tcn = nn.Sequential(nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
                                 TemporalConv(out_channels, out_channels, temporal_kernel, stride),
                                 nn.Dropout(dropout))
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = TemporalConv(in_channels, out_channels, 1, stride)

    def forward(self, x: torch.Tensor, a_struct: torch.Tensor,
                a_act: torch.Tensor | None) -> torch.Tensor:
        y = self.tcn(self.agc(x, a_struct, a_act))
        if self.residual is not None:
            y = y + self.residual(x)
        return torch.relu(y)


# ----------------------------------------------------------------------------- model
@dataclass
class AIMPretraining:
    """What :meth:`ASGCN.pretrain_aim` returns: the decoder and per-step losses."""

    decoder: LinkDecoder
    loss: list[float] = field(default_factory=list)
    nll: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)


def _clips(data: Any, batch_size: int, generator: torch.Generator | None) -> Iterator[Any]:
    """Endless minibatches from a tensor / ``.x`` array (random) or an iterable of batches."""
    x = getattr(data, "x", data)
    if isinstance(x, torch.Tensor) or hasattr(x, "__array__"):
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.dim() != 5 or len(x) == 0:
            raise ShapeError(f"asgcn.pretrain_aim: expected motion (N, C, T, V, M), got "
                             f"shape {tuple(x.shape)}")
        while True:
            yield x[torch.randperm(len(x), generator=generator)[:batch_size]]
    if not isinstance(data, Iterable):
        raise ConfigError("asgcn.pretrain_aim: data must be a motion tensor, a dataset with "
                          f".x or an iterable of batches, got {type(data).__name__}")
    while True:
        empty = True
        for item in data:
            empty = False
            yield item[0] if isinstance(item, (tuple, list)) else item
        if empty:
            raise ConfigError("asgcn.pretrain_aim: the data iterable yielded no batches")


@register_model("asgcn", description="AS-GCN, actional (inferred) and structural links",
                paper="Li, Chen, Chen, Zhang, Wang & Tian, Actional-Structural Graph "
                      "Convolutional Networks for Skeleton-Based Action Recognition, CVPR 2019")
class ASGCN(nn.Module):
    """AS-GCN classifier: motion ``(N, C, T, V, M)`` → logits ``(N, num_classes)``.

    Bodies are folded into the batch; the AIM infers A-links per body from the
    raw input; features are pooled over time, joints and bodies. Options:
    ``actional_links="none"`` (S-links only), ``num_link_types`` (``C = 3``),
    ``lambda_act`` (``λ``), ``max_hop`` (``K``, default from ``size``),
    ``link_sampling`` (``"gumbel"``: hard samples in training, probabilities in
    eval; ``"soft"``: probabilities always), ``prediction_head`` with
    ``future_frames`` (see :meth:`predict_future`). ``dropout`` defaults to 0
    (published: 0.5, like ST-GCN here). :meth:`forward_features` are the pooled
    backbone maps and :meth:`forward_head` is ``fc`` (the prediction head is apart).
    """

    def __init__(self, skeleton: Skeleton, num_classes: int, size: str = "small",
                 in_channels: int = 3, num_bodies: int = 1, actional_links: str = "infer",
                 num_link_types: int = 3, lambda_act: float = 0.5, max_hop: int | None = None,
                 link_sampling: str = "gumbel", gumbel_tau: float = 0.5,
                 aim_frames: int | None = None, aim_hidden: int | None = None,
                 aim_dropout: float = 0.5, prediction_head: bool = False,
                 future_frames: int = 10, dropout: float = 0.0, temporal_kernel: int = 9) -> None:
        super().__init__()
        plan = plan_for("asgcn", size, PLANS)
        max_hop = plan.max_hop if max_hop is None else max_hop
        aim_frames = plan.aim_frames if aim_frames is None else aim_frames
        aim_hidden = plan.aim_hidden if aim_hidden is None else aim_hidden
        for ok, message in (
            (actional_links in ("infer", "none"),
             f"actional_links must be 'infer' or 'none', got {actional_links!r}"),
            (link_sampling in ("gumbel", "soft"),
             f"link_sampling must be 'gumbel' or 'soft', got {link_sampling!r}"),
            (num_link_types >= 2, f"num_link_types must be >= 2, got {num_link_types}"),
            (lambda_act >= 0 and gumbel_tau > 0,
             f"need lambda_act >= 0 and gumbel_tau > 0, got {lambda_act}, {gumbel_tau}"),
            (max_hop >= 1 and aim_hidden >= 1,
             f"max_hop and aim_hidden must be >= 1, got {max_hop}, {aim_hidden}"),
            (aim_frames >= 2 and future_frames >= 1,
             f"need aim_frames >= 2 and future_frames >= 1, got {aim_frames}, {future_frames}"),
            (0 <= dropout < 1 and 0 <= aim_dropout < 1,
             f"dropout and aim_dropout must be in [0, 1), got {dropout}, {aim_dropout}"),
            (temporal_kernel >= 1 and temporal_kernel % 2 == 1,
             f"temporal_kernel must be odd and >= 1, got {temporal_kernel}"),
        ):
            if not ok:
                raise ConfigError(f"asgcn: {message}")
        self.skeleton, self.num_classes, self.num_bodies = skeleton, num_classes, num_bodies
        self.num_joints = v = skeleton.num_joints
        self.in_channels, self.num_link_types = in_channels, num_link_types
        self.link_sampling, self.gumbel_tau = link_sampling, gumbel_tau
        self.future_frames = future_frames
        a = torch.from_numpy(spatial_partition(skeleton, max_hop=max_hop))
        self.register_buffer("A", a)  # S-links: (1 + 2K, V, V)
        self.register_buffer("eye", torch.eye(v), persistent=False)
        k = a.shape[0]
        n_act = num_link_types - 1 if actional_links == "infer" else 0
        self.aim = (LinkInference(v, in_channels, aim_frames, aim_hidden, num_link_types,
                                  aim_dropout) if n_act else None)
        self.data_bn = nn.BatchNorm1d(in_channels * v)

        def blocks(spec: tuple[tuple[int, int], ...], c_in: int,
                   first_plain: bool) -> nn.ModuleList:
            out = []
            for i, (c_out, stride) in enumerate(spec):
                plain = first_plain and i == 0  # published: no residual/dropout in block 1
                out.append(ASGCNBlock(c_in, c_out, k, v, n_act, stride, temporal_kernel,
                                      0.0 if plain else dropout, not plain, lambda_act))
                c_in = c_out
            return nn.ModuleList(out)

        self.blocks = blocks(plan.blocks, in_channels, True)
        self.num_features = c_feat = plan.blocks[-1][0]
        self.fc = nn.Linear(c_feat, num_classes)
        self.head: nn.ModuleList | None = None
        self.head_out: AGC | None = None
        if prediction_head:
            self.head = blocks(plan.head, c_feat, False)
            self.head_out = AGC(plan.head[-1][0] + in_channels, in_channels * future_frames, k, v,
                                n_act, lambda_act)

    # ------------------------------------------------------------------ links
    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        check_motion(x, "asgcn", self.skeleton, self.in_channels)
        n, c, t, v, m = x.shape
        return x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)

    def _aim(self) -> LinkInference:
        if self.aim is None:
            raise ConfigError("asgcn: this model was built with actional_links='none'")
        return self.aim

    def link_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax over the ``C`` link types, ``(N·M, C, V, V)``; ``[:, c, j, i]``: ``j → i``.

        Sums to 1 over dim 1; the diagonal is type 0 ("no link").
        """
        aim = self._aim()
        return aim.to_dense(aim(aim.resample(self._raw(x))).softmax(-1))

    def _links(self, raw: torch.Tensor) -> torch.Tensor:
        aim = self._aim()
        logits = aim(aim.resample(raw))
        if self.training and self.link_sampling == "gumbel":
            w = F.gumbel_softmax(logits, tau=self.gumbel_tau, hard=True)
        else:
            w = logits.softmax(-1)
        return aim.to_dense(w)[:, 1:]

    def infer_links(self, x: torch.Tensor) -> torch.Tensor:
        """The A-links ``(N·M, C−1, V, V)`` that ``forward`` uses: types 1..C−1, sampled in
        training (``link_sampling="gumbel"``), probabilities otherwise."""
        return self._links(self._raw(x))

    def _normalised(self, links: torch.Tensor) -> torch.Tensor:
        a = links + self.eye
        return a / a.sum(dim=-2, keepdim=True)  # column-normalised A_c + I

    # ------------------------------------------------------------------ forward
    def _backbone(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        raw = self._raw(x)
        a_act = self._normalised(self._links(raw)) if self.aim is not None else None
        h = fold_bodies(x, self.data_bn, per_body=True)
        for block in self.blocks:
            h = block(h, self.A, a_act)
        return h, raw, a_act

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone maps pooled over time, joints and bodies: ``(N, num_features)``."""
        return pool_bodies(self._backbone(x)[0], x.shape[0])

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """The linear classifier ``fc``: features ``(N, num_features)`` → logits."""
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def classify_and_predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the next ``future_frames`` poses ``(N, C, future_frames, V, M)`` at once.

        The head (published: 5 AS-GCN blocks) runs on the last backbone features,
        pools them over time, appends the last observed pose and predicts each
        future pose as an offset from it. Train with ``CE + PREDICTION_WEIGHT·MSE``.
        """
        if self.head is None or self.head_out is None:
            raise ConfigError("asgcn: built without prediction_head=True")
        h, raw, a_act = self._backbone(x)
        n, c, _, v, m = x.shape
        logits = self.forward_head(pool_bodies(h, n))
        for block in self.head:
            h = block(h, self.A, a_act)
        last = raw[:, :, -1:]
        z = torch.cat([h.mean(dim=2, keepdim=True), last], dim=1)
        out = self.head_out(z, self.A, a_act).view(n * m, c, self.future_frames, v) + last
        return logits, out.view(n, m, c, self.future_frames, v).permute(0, 2, 3, 4, 1)

    def predict_future(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted next poses ``(N, C, future_frames, V, M)`` (needs ``prediction_head``)."""
        return self.classify_and_predict(x)[1]

    # ------------------------------------------------------------------ AIM pretraining
    def pretrain_aim(self, data: Any, steps: int, lr: float = 5e-4, batch_size: int = 32,
                     prior: tuple[float, ...] | None = None, variance: float = 5e-4,
                     freeze: bool = False, decoder: LinkDecoder | None = None,
                     generator: torch.Generator | None = None) -> AIMPretraining:
        """Train the AIM encoder with :class:`LinkDecoder` (the published first stage).

        Loss per step (NRI ELBO, as published): ``Σ ‖μ^{t+1} − x^{t+1}‖² / (2σ²)`` over
        the resampled clip plus ``KL(q(A|X) ‖ prior)``, both divided by ``B·V``;
        links are hard Gumbel samples (τ = ``gumbel_tau``), Adam with ``lr``.
        ``prior`` defaults to 0.95 for "no link" and the rest split evenly;
        ``variance`` σ² is in the model's input units. ``data``: motion
        ``(N, C, T, V, M)`` as the model sees it (after any normalisation), a
        dataset with ``.x``, or an iterable of batches (tensors or ``(x, y)``).
        ``freeze=True`` then stops the AIM's gradients, as in the published
        second stage; otherwise it keeps training with the classifier.
        """
        aim = self._aim()
        k = self.num_link_types
        prior = prior if prior is not None else (0.95, *[0.05 / (k - 1)] * (k - 1))
        if len(prior) != k or min(prior) <= 0:
            raise ConfigError(f"asgcn.pretrain_aim: prior must have {k} positive values")
        if steps < 0 or lr <= 0 or batch_size < 1 or variance <= 0:
            raise ConfigError("asgcn.pretrain_aim: steps >= 0, lr > 0, batch_size >= 1 and "
                              "variance > 0 are required")
        device = self.A.device
        log_prior = torch.log(torch.tensor(prior, device=device) / sum(prior))
        dec = decoder if decoder is not None else LinkDecoder(self.in_channels, aim.hidden, k)
        dec.to(device).train()
        aim.requires_grad_(True)
        opt = torch.optim.Adam([*aim.parameters(), *dec.parameters()], lr=lr)
        result = AIMPretraining(dec)
        was_training = aim.training
        aim.train()
        batches = _clips(data, batch_size, generator)
        for _ in range(steps):
            xs = aim.resample(self._raw(torch.as_tensor(next(batches), dtype=torch.float32,
                                                    device=device)))
            b = xs.shape[0]
            logits = aim(xs)
            links = F.gumbel_softmax(logits, tau=self.gumbel_tau, hard=True)
            pred = dec(xs, links, aim.send, aim.recv)
            nll = ((pred - xs[:, :, 1:]) ** 2).sum() / (2 * variance * b * self.num_joints)
            prob = logits.softmax(-1)
            kl = (prob * (torch.log(prob + 1e-16) - log_prior)).sum() / (b * self.num_joints)
            loss = nll + kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            result.loss.append(loss.item())
            result.nll.append(nll.item())
            result.kl.append(kl.item())
        aim.train(was_training)
        if freeze:
            aim.requires_grad_(False)
        return result
