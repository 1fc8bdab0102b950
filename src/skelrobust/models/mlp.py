"""Multilayer-perceptron baselines: a temporal MLP and a single-frame pose classifier.

``temporal=True``: the clip of each body is average-pooled to ``bins`` time
bins, ``x̄_b = mean_{t ∈ bin b} x_t`` (adaptive average pooling, so any ``T``),
flattened to ``C·bins·V`` features and classified by an MLP; logits are
averaged over bodies.

``temporal=False``: the same MLP on each frame's pose (``C·V``) alone, with
logits averaged over the non-padded frames and over bodies,
``z = 1/|T'| Σ_{t ∈ T'} 1/M Σ_m f(x_{t,m})`` with ``T'`` the frames that are
not all zero. It cannot see temporal order: a reference point for how much a
victim relies on dynamics.

Features (:meth:`MLP.forward_features`): the last hidden layer (after its ReLU,
before the final dropout) of each body, the ``M`` bodies' vectors concatenated,
``num_features = num_bodies·hidden``; :meth:`MLP.forward_head` applies dropout and
the last linear layer to each body's block and averages the logits over bodies.
``temporal=True``: ``forward`` is exactly ``forward_head(forward_features(x))``.
``temporal=False``: the features are the per-frame hidden vectors averaged with the
frame weights above; as the last layer is affine and the weights sum to one,
``forward_head(forward_features(x))`` equals ``forward(x)`` (which applies the last
layer per frame) up to float rounding (~1e-7; in eval mode, where dropout is off).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from skelrobust.errors import ConfigError, ShapeError
from skelrobust.models.registry import register_model
from skelrobust.skeleton import Skeleton

__all__ = ["MLP"]

WIDTHS = {"small": 256, "base": 1024}


def _mlp(in_features: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Two hidden layers ``Linear → LayerNorm → ReLU → Dropout``, then a linear classifier."""
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(2):
        layers += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.ReLU(inplace=True),
                   nn.Dropout(dropout)]
        width = hidden
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


@register_model("mlp", description="MLP baseline (temporal bins, or single-frame with "
                                   "temporal=False)")
class MLP(nn.Module):
    """MLP baseline: motion ``(N, C, T, V, M)`` → logits ``(N, num_classes)``."""

    def __init__(self, skeleton: Skeleton, num_classes: int, size: str = "small",
                 in_channels: int = 3, num_bodies: int = 1, dropout: float = 0.2,
                 edge_importance: bool = True, temporal_kernel: int = 9,
                 temporal: bool = True, hidden: int | None = None, bins: int = 16) -> None:
        super().__init__()
        # edge_importance and temporal_kernel are accepted for a uniform signature; unused.
        if size not in WIDTHS:
            raise ConfigError(f"mlp: size must be one of {tuple(WIDTHS)}, got {size!r}")
        if bins < 1:
            raise ConfigError(f"mlp: bins must be >= 1, got {bins}")
        if hidden is not None and hidden < 1:
            raise ConfigError(f"mlp: hidden must be >= 1, got {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"mlp: dropout must be in [0, 1), got {dropout}")
        self.skeleton = skeleton
        self.num_joints = skeleton.num_joints
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.num_bodies = num_bodies
        self.temporal = temporal
        self.bins = bins
        per_frame = in_channels * self.num_joints
        features = per_frame * bins if temporal else per_frame
        self.body_features = hidden or WIDTHS[size]
        self.num_features = num_bodies * self.body_features
        self.net = _mlp(features, self.body_features, num_classes, dropout)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[3] != self.num_joints:
            raise ShapeError(
                f"mlp: expected motion (N, {self.in_channels}, T, {self.num_joints}, M) "
                f"for layout {self.skeleton.name!r}, got shape {tuple(x.shape)}")

    def _bins(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T, V, M)`` → ``(N·M, C·V, T)`` → pool T to bins → ``(N·M, C·V·bins)``."""
        n, c, t, v, m = x.shape
        h = x.permute(0, 4, 1, 3, 2).reshape(n * m, c * v, t)
        return F.adaptive_avg_pool1d(h, self.bins).flatten(1)

    def _frames(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Poses ``(N, T, M, C·V)`` and frame weights ``(N, T)`` (1/|T'| on valid frames)."""
        n, c, t, v, m = x.shape
        poses = x.permute(0, 2, 4, 1, 3).reshape(n, t, m, c * v)
        valid = (x != 0).flatten(start_dim=3).any(dim=-1).any(dim=1).to(x.dtype)  # (N, T)
        valid = torch.where(valid.sum(dim=1, keepdim=True) > 0, valid, torch.ones_like(valid))
        return poses, valid / valid.sum(dim=1, keepdim=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Each body's last hidden vector, concatenated: ``(N, M·hidden)``."""
        self._check(x)
        n = x.shape[0]
        body = self.net[:-2]  # up to the last ReLU: the head is Dropout → Linear
        if self.temporal:
            return body(self._bins(x)).view(n, -1)
        poses, weights = self._frames(x)
        return (body(poses) * weights[..., None, None]).sum(dim=1).view(n, -1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Dropout and the last linear layer on each body's block, logits averaged."""
        n = features.shape[0]
        logits = self.net[-1](self.net[-2](features.reshape(-1, self.body_features)))
        return logits.view(n, -1, self.num_classes).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.temporal:
            return self.forward_head(self.forward_features(x))
        self._check(x)
        # Single frame: per-frame logits (N, T, M, K), averaged over bodies, then frames.
        poses, weights = self._frames(x)
        logits = self.net(poses).mean(dim=2)  # (N, T, K)
        return (logits * weights.unsqueeze(-1)).sum(dim=1)
