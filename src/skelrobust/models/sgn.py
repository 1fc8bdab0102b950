"""SGN: semantics-guided neural network (Zhang, Lan, Zeng, Xing, Xue & Zheng, CVPR 2020).

Each joint ``k`` of frame ``t`` is represented by its dynamics and its joint-type
semantics (Zhang et al., Sec. 3.1-3.2)::

    z_{t,k} = [ P(p_{t,k}) + V(p_{t,k} − p_{t−1,k}) ;  J(one-hot(k)) ]      (eq. 1-2)
    G_t     = softmax( θ(Z_t) φ(Z_t)ᵀ )   row-wise, a data-dependent V×V graph   (eq. 3)
    Y_t     = G_t Z_t W + Z_t W_y          (residual GCN layer, three of them)    (eq. 4)
    frame-level: Y + T(one-hot(t)), spatial max-pool, Conv(1×3) and Conv(1×1),
                 temporal max-pool, fully connected layer

``P``, ``V``, ``J``, ``T`` are two-layer 1×1 embeddings with ReLU (``P`` and ``V``
after a BatchNorm of the ``C·V`` coordinates), ``θ``/``φ`` 1×1 convolutions.
``size="base"`` is the published network (embedding width 64, GCN widths
128-128-256, frame-level 256→512): 0.69 M parameters for NTU-60.

Unlike the published code, nothing depends on the batch size: the one-hot
joint and frame semantics are embedded once (``(1, C, V, 1)`` and
``(1, C, 1, S)`` tensors) and broadcast. The clip is brought to ``num_frames``
segments inside the model (see :class:`SGN`), so any ``T`` is accepted.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from skelrobust.errors import ConfigError, ShapeError
from skelrobust.models.blocks import check_motion, plan_for
from skelrobust.models.hrnn import valid_lengths
from skelrobust.models.registry import register_model
from skelrobust.skeleton import Skeleton

__all__ = ["SGN", "segment_weights"]

# Embedding width c: joint-level GCN 2c→2c→4c→4c, frame-level 4c→8c.
# base (published): 0.691 M parameters for NTU-60; small: 0.18 M, ~110 samples/s
# forward+backward per CPU-thread-second (batch 32, T=64 → 20 segments, V=25).
PLANS: dict[str, int] = {"base": 64, "small": 32}
SAMPLINGS = ("mean", "middle", "random", "exact")


def segment_weights(lengths: torch.Tensor, num_frames: int, total: int,
                    mode: str) -> torch.Tensor:
    """``(N, S, T)`` weights mapping each clip's ``L`` valid frames to ``S`` segments.

    Segment ``k`` spans frames ``[⌊kL/S⌋, max(⌊(k+1)L/S⌋, ⌊kL/S⌋+1))``.
    ``"mean"`` averages its frames; ``"middle"`` takes its middle frame
    ``⌊(2k+1)L/(2S)⌋``; ``"random"`` one uniformly drawn frame of it (the
    published training-time sampling; torch's global generator). ``L = T = S``
    gives the identity.
    """
    dev = lengths.device
    k = torch.arange(num_frames, device=dev)
    length = lengths[:, None]
    start = k * length // num_frames
    end = torch.maximum((k + 1) * length // num_frames, start + 1)
    frames = torch.arange(total, device=dev).view(1, 1, total)
    if mode == "mean":
        inside = (frames >= start[..., None]) & (frames < end[..., None])
        return inside / (end - start)[..., None]
    if mode == "middle":
        pick = (2 * k + 1) * length // (2 * num_frames)
    else:
        u = torch.rand(start.shape, device=dev)
        pick = torch.minimum(start + (u * (end - start)).long(), end - 1)
    return (frames == pick[..., None]).float()


def _conv(c_in: int, c_out: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=1, bias=bias)


class Embed(nn.Module):
    """Two 1×1 convolutions with ReLU, ``(N, c_in, V, T) → (N, c_out, V, T)``.

    With ``num_joints``, a BatchNorm of the ``c_in·V`` coordinates over batch
    and time comes first (SGN's ``norm_data``).
    """

    def __init__(self, c_in: int, hidden: int, c_out: int, num_joints: int | None = None
                 ) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(c_in * num_joints) if num_joints else None
        self.cnn = nn.Sequential(_conv(c_in, hidden), nn.ReLU(), _conv(hidden, c_out), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bn is not None:
            n, c, v, t = x.shape
            x = self.bn(x.reshape(n, c * v, t)).view(n, c, v, t)
        return self.cnn(x)


class AdaptiveGraph(nn.Module):
    """``G_t = softmax_row(θ(Z_t) φ(Z_t)ᵀ)``: one ``V×V`` graph per clip and frame.

    ``θ``, ``φ``: 1×1 convolutions with bias, as in the published code.
    """

    def __init__(self, c_in: int, c_inner: int) -> None:
        super().__init__()
        self.theta = _conv(c_in, c_inner)
        self.phi = _conv(c_in, c_inner)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        a = self.theta(z).permute(0, 3, 2, 1)  # (N, T, V, C)
        b = self.phi(z).permute(0, 3, 1, 2)  # (N, T, C, V)
        return torch.softmax(a @ b, dim=-1)


class ResidualGCN(nn.Module):
    """``Y = ReLU(BN(G Z W + Z W_y))`` (SGN eq. 4); ``W`` starts at zero as published."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.w = _conv(c_in, c_out, bias=False)
        self.w_y = _conv(c_in, c_out)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        # (G_t Z_t) for every frame: (N, T, V, V) @ (N, T, V, C) -> (N, C, V, T)
        gz = (g @ z.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)
        return torch.relu(self.bn(self.w(gz) + self.w_y(z)))


class FrameLevel(nn.Module):
    """Spatial max-pool, ``Conv(1×3) → BN → ReLU → Dropout2d → Conv(1×1) → BN → ReLU``."""

    def __init__(self, c_in: int, c_out: int, dropout: float) -> None:
        super().__init__()
        self.cnn1 = nn.Conv2d(c_in, c_in, kernel_size=(1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(c_in)
        self.dropout = nn.Dropout2d(dropout)
        self.cnn2 = _conv(c_in, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.amax(dim=2, keepdim=True)  # (N, C, 1, T)
        x = self.dropout(torch.relu(self.bn1(self.cnn1(x))))
        return torch.relu(self.bn2(self.cnn2(x)))


@register_model("sgn", description="SGN, semantics-guided network with data-dependent graphs",
                paper="Zhang, Lan, Zeng, Xing, Xue & Zheng, Semantics-Guided Neural Networks "
                      "for Efficient Skeleton-Based Human Action Recognition, CVPR 2020")
class SGN(nn.Module):
    """SGN classifier: motion ``(N, C, T, V, M)`` → logits ``(N, num_classes)``.

    **Frames.** The frame semantics table has ``num_frames`` entries (20 as
    published) and the network runs on ``num_frames`` segments of each clip.
    ``sampling`` chooses how the ``L`` valid frames (those up to the last
    non-zero frame; later zero frames are padding) become segments:
    ``"mean"`` (default) averages each segment, so every frame contributes
    and the map is smooth; ``"middle"`` takes each segment's middle frame
    (the deterministic form of the published sparse sampling);
    ``"random"`` a random frame per segment in training (as published) and
    the middle one in eval; ``"exact"`` requires ``T == num_frames`` and
    raises :class:`ShapeError` otherwise. With ``T == L == num_frames`` all
    four are the identity.

    **Bodies.** The published model takes one body: ``multi_body="first"``
    (default) classifies body 0 and ignores the rest; ``"mean"`` folds the
    bodies into the batch and averages their logits.

    **Features.** :meth:`forward_features` is the temporally max-pooled frame-level
    vector of each body, ``8c`` values, the bodies' vectors concatenated
    (``"first"``: one body; ``"mean"``: ``M`` bodies, ``num_features = num_bodies·8c``).
    :meth:`forward_head` applies ``fc`` to each body's block and averages the logits,
    as ``forward`` does, so ``forward`` is exactly ``forward_head(forward_features(x))``
    (pooling the bodies' features before ``fc`` would change the logits' last bits).
    """

    def __init__(self, skeleton: Skeleton, num_classes: int, size: str = "small",
                 in_channels: int = 3, num_bodies: int = 1, num_frames: int = 20,
                 sampling: str = "mean", multi_body: str = "first",
                 dropout: float = 0.2) -> None:
        super().__init__()
        c = plan_for("sgn", size, PLANS)
        if num_frames < 1:
            raise ConfigError(f"sgn: num_frames must be >= 1, got {num_frames}")
        if sampling not in SAMPLINGS:
            raise ConfigError(f"sgn: sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if multi_body not in ("first", "mean"):
            raise ConfigError(f"sgn: multi_body must be 'first' or 'mean', got {multi_body!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"sgn: dropout must be in [0, 1), got {dropout}")
        self.skeleton = skeleton
        self.num_joints = v = skeleton.num_joints
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.num_bodies = num_bodies
        self.num_frames = num_frames
        self.sampling = sampling
        self.multi_body = multi_body
        # One-hot semantics, built from the layout and num_frames only (no batch size).
        self.register_buffer("joint_onehot", torch.eye(v).view(1, v, v, 1), persistent=False)
        self.register_buffer("frame_onehot", torch.eye(num_frames).view(1, num_frames, 1,
                                                                         num_frames),
                             persistent=False)
        self.joint_embed = Embed(in_channels, c, c, num_joints=v)  # P: positions
        self.dif_embed = Embed(in_channels, c, c, num_joints=v)  # V: velocities
        self.spa_embed = Embed(v, c, c)  # J: joint type
        self.tem_embed = Embed(num_frames, c, 4 * c)  # T: frame index
        self.graph = AdaptiveGraph(2 * c, 4 * c)
        self.gcn1 = ResidualGCN(2 * c, 2 * c)
        self.gcn2 = ResidualGCN(2 * c, 4 * c)
        self.gcn3 = ResidualGCN(4 * c, 4 * c)
        self.frame = FrameLevel(4 * c, 8 * c, dropout)
        self.body_features = 8 * c
        self.num_features = 8 * c * (num_bodies if multi_body == "mean" else 1)
        self.fc = nn.Linear(8 * c, num_classes)
        for m in self.modules():  # published: N(0, 2/(k_h·k_w·C_out)) convolutions
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        for gcn in (self.gcn1, self.gcn2, self.gcn3):
            nn.init.zeros_(gcn.w.weight)

    def _segments(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T, V)`` → ``(N, C, V, S)`` with ``S = num_frames`` (see ``sampling``)."""
        t = x.shape[2]
        s = self.num_frames
        if self.sampling == "exact":
            if t != s:
                raise ShapeError(f"sgn: sampling='exact' expects T = num_frames = {s} frames, "
                                 f"got motion of shape {tuple(x.shape)} (T = {t})")
            return x.transpose(2, 3)
        mode = self.sampling
        if mode == "random" and not self.training:
            mode = "middle"
        w = segment_weights(valid_lengths(x), s, t, mode).to(x.dtype)  # (N, S, T)
        return torch.einsum("nst,nctv->ncvs", w, x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Each body's pooled frame-level vector, concatenated: ``(N, M'·8c)``, ``M'`` the
        bodies classified (1 for ``multi_body="first"``)."""
        check_motion(x, "sgn", self.skeleton, self.in_channels)
        n, c, t, v, m = x.shape
        if self.multi_body == "first":
            x, m = x[..., 0], 1
        else:
            x = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)
        x = self._segments(x)  # (N·M, C, V, S)
        dif = torch.cat([torch.zeros_like(x[..., :1]), x[..., 1:] - x[..., :-1]], dim=-1)
        dyn = self.joint_embed(x) + self.dif_embed(dif)  # (B, c, V, S)
        spa = self.spa_embed(self.joint_onehot)  # (1, c, V, 1)
        z = torch.cat([dyn, spa.expand(dyn.shape[0], -1, -1, dyn.shape[-1])], dim=1)
        g = self.graph(z)
        z = self.gcn3(self.gcn2(self.gcn1(z, g), g), g)
        z = z + self.tem_embed(self.frame_onehot)  # (1, 4c, 1, S) broadcast over N and V
        z = self.frame(z).amax(dim=(2, 3))  # temporal max-pool: (B, 8c)
        return z.view(n, m * self.body_features)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``fc`` on each body's block of ``features``, logits averaged over the bodies."""
        n = features.shape[0]
        return self.fc(features.reshape(-1, self.body_features)).view(n, -1,
                                                                      self.num_classes).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
