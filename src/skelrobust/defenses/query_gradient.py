"""Input gradients of a black box that answers logits, estimated from queries alone.

BEAT's SGLD needs ``∇_x`` of expressions of the base's logits ``g(x)``. When the base is
a black box (only its outputs are available: a deployed model, an ONNX file behind an
API), the vector–Jacobian product ``vᵀ ∂g/∂x`` is estimated by antithetic Gaussian
smoothing (the NES estimator of Wierstra et al. 2014, as used by Ilyas et al., ICML 2018,
"Black-box Adversarial Attacks with Limited Queries and Information"):

    vᵀ ∂g/∂x ≈ 1 / (2 q σ) · Σ_{i=1..q} vᵀ (g(x + σ u_i) − g(x − σ u_i)) u_i,   u_i ~ N(0, I),

``2 q`` queries per call, on the coordinates of present joints only (``mask``). It is
the gradient of the Gaussian-smoothed ``E_u[g(x + σ u)]``, close to ``∇g`` when ``g`` is
smooth at the scale ``σ``. :func:`query_logits` returns ``g(x)`` (computed without
autograd, i.e. only through forward passes) with that estimate as its backward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["query_logits"]


class _QueryLogits(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, mask: torch.Tensor,
                predict: Callable[[torch.Tensor], torch.Tensor], samples: int,
                sigma: float) -> torch.Tensor:
        with torch.no_grad():
            out = predict(x)
        ctx.save_for_backward(x, mask)
        ctx.predict, ctx.samples, ctx.sigma = predict, samples, sigma
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        x, mask = ctx.saved_tensors
        q, sigma = ctx.samples, ctx.sigma
        u = torch.randn(q, *x.shape, dtype=x.dtype, device=x.device) * mask
        probes = torch.cat([x + sigma * u, x - sigma * u]).flatten(0, 1)
        with torch.no_grad():
            answers = ctx.predict(probes).view(2, q, *grad_out.shape)
        # vᵀ (g(x + σu) − g(x − σu)) per probe: (q, N)
        weights = ((answers[0] - answers[1]) * grad_out).sum(-1)
        grad = (weights.view(q, -1, *([1] * (x.dim() - 1))) * u).sum(0) / (2 * q * sigma)
        return grad, None, None, None, None


def query_logits(predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                 mask: torch.Tensor, samples: int = 16, sigma: float = 1e-3) -> torch.Tensor:
    """``predict(x)`` whose backward is the query estimate of the module doc.

    ``predict`` maps motion ``(B, 3, T, V, M)`` to logits ``(B, K)`` (called with
    ``2 · samples · N`` rows in the backward pass); ``mask`` ``(N, 1, T, 1, M)`` the
    valid frames and bodies; ``sigma`` in the units of ``x`` (metres).
    """
    return _QueryLogits.apply(x, mask, predict, int(samples), float(sigma))
