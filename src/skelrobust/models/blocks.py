"""Building blocks shared by the victim models (one copy each, used by every GCN).

- :func:`check_motion` — the ``(N, C, T, V, M)`` input check with a clear error;
- :func:`fold_bodies` / :func:`pool_bodies` — the input BatchNorm and folding
  bodies into the batch, then averaging them back after pooling;
- :class:`TemporalConv` — 2s-AGCN's ``unit_tcn``: a ``(k, 1)`` convolution and BN;
- :class:`MultiScaleTemporalConv` — the multi-scale temporal block of MS-G3D
  (Liu et al., CVPR 2020) and CTR-GCN (Chen et al., ICCV 2021);
- :func:`bone_stream`, :func:`motion_stream` — the second streams of 2s-AGCN
  (Shi et al., CVPR 2019): ``bone_v = x_v − x_parent(v)``, ``motion_t = x_{t+1} − x_t``;
- initialisers in the published style (:func:`init_conv`, :func:`init_bn`,
  :func:`init_classifier`) and :func:`plan_for` for ``size`` arguments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

import torch
from torch import nn

from skelrobust.errors import ConfigError, ShapeError
from skelrobust.skeleton import Skeleton

__all__ = [
    "MultiScaleTemporalConv",
    "TemporalConv",
    "bone_stream",
    "check_motion",
    "fold_bodies",
    "init_bn",
    "init_classifier",
    "init_conv",
    "motion_stream",
    "plan_for",
    "pool_bodies",
]

P = TypeVar("P")


def plan_for(model: str, size: str, plans: Mapping[str, P]) -> P:
    """``plans[size]``, else a :class:`ConfigError` naming the model and the sizes."""
    if size not in plans:
        raise ConfigError(f"{model}: size must be one of {tuple(plans)}, got {size!r}")
    return plans[size]


def check_motion(x: torch.Tensor, model: str, skeleton: Skeleton, in_channels: int,
                 num_bodies: int | None = None) -> None:
    """Raise :class:`ShapeError` unless ``x`` is ``(N, in_channels, T, V, M)`` for ``skeleton``.

    ``num_bodies`` fixes ``M`` for models whose weights depend on it (e.g. a
    BatchNorm over ``M·V·C`` inputs); ``None`` accepts any ``M``.
    """
    v = skeleton.num_joints
    m = "M" if num_bodies is None else str(num_bodies)
    if (x.dim() != 5 or x.shape[1] != in_channels or x.shape[3] != v
            or (num_bodies is not None and x.shape[4] != num_bodies)):
        raise ShapeError(f"{model}: expected motion (N, {in_channels}, T, {v}, {m}) for layout "
                         f"{skeleton.name!r}, got shape {tuple(x.shape)}")


def fold_bodies(x: torch.Tensor, data_bn: nn.BatchNorm1d, per_body: bool) -> torch.Tensor:
    """Input BatchNorm, then ``(N, C, T, V, M)`` → ``(N·M, C, T, V)``.

    ``per_body=True`` normalises each of the ``V·C`` coordinates over batch,
    bodies and time (ST-GCN as in pyskl; any ``M``); ``per_body=False``
    normalises the ``M·V·C`` coordinates separately per body slot (2s-AGCN,
    Shift-GCN, CTR-GCN, MS-G3D; ``data_bn`` has ``M·V·C`` features).
    """
    n, c, t, v, m = x.shape
    x = x.permute(0, 4, 3, 1, 2)  # (N, M, V, C, T)
    x = data_bn(x.reshape(n * m, v * c, t) if per_body else x.reshape(n, m * v * c, t))
    return x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)


def pool_bodies(x: torch.Tensor, n: int) -> torch.Tensor:
    """Global average pool ``(N·M, C, T, V)`` over time and joints, then over bodies: ``(N, C)``."""
    return x.mean(dim=(2, 3)).view(n, -1, x.shape[1]).mean(dim=1)


def bone_stream(x: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """Bone vectors at each joint, ``x_v − x_parent(v)`` (zero at the root), same shape as ``x``.

    The second stream of 2s-AGCN (Shi et al., CVPR 2019, Sec. 3.4), whose NTU
    bone list is exactly the ``ntu25`` tree rooted at the spine-shoulder joint.
    Works on ``(N, C, T, V, M)`` or ``(N, C, T, V)``.
    """
    parents = torch.as_tensor([p if p >= 0 else v for v, p in enumerate(skeleton.parents)],
                              device=x.device)
    return x - x.index_select(3, parents)


def motion_stream(x: torch.Tensor) -> torch.Tensor:
    """Frame differences ``x_{t+1} − x_t`` along dim 2, zero at the last frame."""
    out = torch.zeros_like(x)
    out[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return out


# ---------------------------------------------------------------------- initialisation
def init_conv(conv: nn.Conv2d | nn.Conv1d) -> None:
    """Kaiming-normal (fan-out) weights and zero bias, as 2s-AGCN and its successors."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def init_bn(bn: nn.modules.batchnorm._BatchNorm, scale: float = 1.0) -> None:
    """BatchNorm weight ``scale`` and zero bias (``scale=1e-6`` makes a block start silent)."""
    nn.init.constant_(bn.weight, scale)
    nn.init.zeros_(bn.bias)


def init_classifier(fc: nn.Linear) -> None:
    """``N(0, 2/num_classes)`` weights, the 2s-AGCN family's classifier initialisation."""
    nn.init.normal_(fc.weight, 0.0, math.sqrt(2.0 / fc.out_features))
    if fc.bias is not None:
        nn.init.zeros_(fc.bias)


# ---------------------------------------------------------------------- temporal blocks
class TemporalConv(nn.Module):
    """A temporal convolution over ``(N, C, T, V)``: ``BN(Conv_{k×1}(x))`` (2s-AGCN ``unit_tcn``).

    Padding keeps ``T`` for stride 1 (``(k−1)·d/2`` each side; ``T // stride``-ish
    frames otherwise). Submodule names ``conv`` and ``bn`` as published, so
    official checkpoints map onto it.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9,
                 stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), (stride, 1),
                              (pad, 0), (dilation, 1))
        self.bn = nn.BatchNorm2d(out_channels)
        init_conv(self.conv)
        init_bn(self.bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class MultiScaleTemporalConv(nn.Module):
    """Multi-scale temporal convolution (MS-G3D's MS-TCN; CTR-GCN's ``MultiScale_TemporalConv``).

    ``len(dilations) + 2`` parallel branches of ``out/branches`` channels each:
    for every dilation ``d``, ``1×1 conv → BN → ReLU → TemporalConv(k, d)``; a
    ``1×1 conv → BN → ReLU → MaxPool(3×1) → BN`` branch; a strided ``1×1 conv → BN``
    branch. Outputs are concatenated, the residual (``"none"``, ``"identity"``
    or a strided 1×1 :class:`TemporalConv`; ``"auto"`` picks by shape) added,
    and ReLU applied when ``activation`` (MS-G3D) — CTR-GCN leaves it to its unit.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, dilations: Sequence[int] = (1, 2, 3, 4),
                 residual: str = "auto", activation: bool = True) -> None:
        super().__init__()
        branches = len(dilations) + 2
        if out_channels % branches:
            raise ConfigError(f"MultiScaleTemporalConv: out_channels ({out_channels}) must be "
                              f"a multiple of the number of branches ({branches})")
        bc = out_channels // branches

        def entry() -> list[nn.Module]:
            return [nn.Conv2d(in_channels, bc, 1), nn.BatchNorm2d(bc), nn.ReLU(inplace=True)]

        mods: list[nn.Module] = [
            nn.Sequential(*entry(), TemporalConv(bc, bc, kernel_size, stride, d))
            for d in dilations]
        mods.append(nn.Sequential(*entry(), nn.MaxPool2d((3, 1), (stride, 1), (1, 0)),
                                  nn.BatchNorm2d(bc)))
        mods.append(nn.Sequential(nn.Conv2d(in_channels, bc, 1, stride=(stride, 1)),
                                  nn.BatchNorm2d(bc)))
        self.branches = nn.ModuleList(mods)
        if residual == "auto":
            residual = "identity" if in_channels == out_channels and stride == 1 else "conv"
        if residual not in ("none", "identity", "conv"):
            raise ConfigError(f"MultiScaleTemporalConv: residual must be auto, none, identity "
                              f"or conv, got {residual!r}")
        self.residual: nn.Module | None = {
            "none": None, "identity": nn.Identity(),
            "conv": TemporalConv(in_channels, out_channels, 1, stride) if residual == "conv"
            else None}[residual]
        self.activation = activation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init_conv(m)
            elif isinstance(m, nn.BatchNorm2d):
                init_bn(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([b(x) for b in self.branches], dim=1)
        if self.residual is not None:
            out = out + self.residual(x)
        return torch.relu(out) if self.activation else out
