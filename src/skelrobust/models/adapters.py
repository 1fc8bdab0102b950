"""Layout adapters between the library's motion layout and those of other code bases.

The library's motion is ``(N, C, T, V, M)`` (batch, xyz, frames, joints, bodies).
Two other layouts are common in published code:

- **pyskl** (Duan et al., ACM MM 2022) and its GCN backbones take keypoints as
  ``(N, M, T, V, C)``: ``x_pyskl[n, m, t, v, c] = x[n, c, t, v, m]``, i.e. axes 1
  and 4 swapped (the permutation is its own inverse);
- **SGN** (Zhang et al., CVPR 2020) takes one body as a sequence of flattened
  poses ``(N, T, V·C)`` with the coordinates of a joint adjacent,
  ``x_sgn[n, t, v·C + c] = x[n, c, t, v, 0]``.

:func:`to_pyskl`/:func:`from_pyskl` and :func:`to_sgn`/:func:`from_sgn` convert
numpy arrays or torch tensors (the type is kept, gradients flow) and are exact
inverses. :class:`FromPyskl` and :class:`FromSGN` wrap a user ``nn.Module``
written for the other layout so it can be called with library motion;
:func:`adapt_module` picks the wrapper from a layout name, and
:meth:`skelrobust.classifier.Classifier.from_module` builds a classifier from
any such module.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from torch import nn

from skelrobust.errors import ConfigError, ShapeError

__all__ = [
    "INPUT_LAYOUTS",
    "FromPyskl",
    "FromSGN",
    "adapt_module",
    "from_pyskl",
    "from_sgn",
    "to_pyskl",
    "to_sgn",
]

INPUT_LAYOUTS: tuple[str, ...] = ("nctvm", "pyskl", "sgn")

A = TypeVar("A", np.ndarray, torch.Tensor)


def _swap_1_4(x: A, name: str, expected: str) -> A:
    if x.ndim != 5:
        raise ShapeError(f"{name}: expected a 5-d array {expected}, got shape {tuple(x.shape)}")
    if isinstance(x, torch.Tensor):
        return x.permute(0, 4, 2, 3, 1).contiguous()
    return np.ascontiguousarray(np.transpose(x, (0, 4, 2, 3, 1)))


def to_pyskl(x: A) -> A:
    """Library motion ``(N, C, T, V, M)`` → pyskl keypoints ``(N, M, T, V, C)`` (contiguous)."""
    return _swap_1_4(x, "to_pyskl", "(N, C, T, V, M)")


def from_pyskl(x: A) -> A:
    """pyskl keypoints ``(N, M, T, V, C)`` → library motion ``(N, C, T, V, M)`` (contiguous)."""
    return _swap_1_4(x, "from_pyskl", "(N, M, T, V, C)")


def to_sgn(x: A) -> A:
    """One-body motion ``(N, C, T, V, 1)`` → SGN sequences ``(N, T, V·C)`` (contiguous).

    ``x_sgn[n, t, v·C + c] = x[n, c, t, v, 0]``. Several bodies raise
    :class:`ShapeError` (fold them into the batch first, as :class:`FromSGN` does).
    """
    if x.ndim != 5 or x.shape[4] != 1:
        raise ShapeError(f"to_sgn: expected one-body motion (N, C, T, V, 1), got shape "
                         f"{tuple(x.shape)}")
    n, c, t, v, _ = x.shape
    if isinstance(x, torch.Tensor):
        return x[..., 0].permute(0, 2, 3, 1).reshape(n, t, v * c)
    return np.ascontiguousarray(np.transpose(x[..., 0], (0, 2, 3, 1))).reshape(n, t, v * c)


def from_sgn(x: A, channels: int = 3) -> A:
    """SGN sequences ``(N, T, V·C)`` → one-body motion ``(N, C, T, V, 1)`` (contiguous)."""
    if x.ndim != 3 or channels < 1 or x.shape[2] % channels:
        raise ShapeError(f"from_sgn: expected SGN sequences (N, T, V*{channels}), got shape "
                         f"{tuple(x.shape)}")
    n, t, vc = x.shape
    v = vc // channels
    if isinstance(x, torch.Tensor):
        return x.reshape(n, t, v, channels).permute(0, 3, 1, 2).unsqueeze(-1).contiguous()
    return np.ascontiguousarray(
        np.transpose(x.reshape(n, t, v, channels), (0, 3, 1, 2))[..., None])


class FromPyskl(nn.Module):
    """Call a module written for pyskl's ``(N, M, T, V, C)`` with library motion.

    ``FromPyskl(net)(x) = net(to_pyskl(x))`` for ``x`` of shape ``(N, C, T, V, M)``;
    ``net`` must return logits ``(N, num_classes)``. Its parameters are kept under
    ``module.`` in the state dict.
    """

    input_layout = "pyskl"

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(to_pyskl(x))


class FromSGN(nn.Module):
    """Call a module written for SGN's one-body ``(N, T, V·C)`` with library motion.

    With ``M`` bodies the bodies are folded into the batch and the logits are
    averaged over them: ``z_n = 1/M Σ_m net(to_sgn(x[n, ..., m]))`` (for ``M = 1``
    exactly ``net(to_sgn(x))``). All-zero (absent) bodies count like any other,
    as when a two-body model is fed a zero second body.
    """

    input_layout = "sgn"

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ShapeError(f"FromSGN: expected motion (N, C, T, V, M), got shape "
                             f"{tuple(x.shape)}")
        n, c, t, v, m = x.shape
        folded = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v, 1)
        logits = self.module(to_sgn(folded))
        return logits.reshape(n, m, -1).mean(dim=1)


def adapt_module(module: nn.Module, input_layout: str = "nctvm") -> nn.Module:
    """``module`` wrapped so it takes library motion: ``nctvm`` as is, else FromPyskl/FromSGN."""
    if not isinstance(module, nn.Module):
        raise ConfigError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    if input_layout == "nctvm":
        return module
    if input_layout == "pyskl":
        return FromPyskl(module)
    if input_layout == "sgn":
        return FromSGN(module)
    raise ConfigError(f"input_layout must be one of {INPUT_LAYOUTS}, got {input_layout!r}")
