"""Which clips to attack: the ones the classifier(s) get right, chosen reproducibly.

Success rates are only meaningful on clips a classifier classifies correctly
when clean (a wrong clip is "fooled" for free). Attack sweeps over several
models (tables like SMART's, transfer matrices) attack the *same* clips on
every model: those every model gets right.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from skelrobust.errors import ConfigError

__all__ = ["batched_logits", "choose_clips", "correct_mask"]


@torch.no_grad()
def batched_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, ``batch_size`` clips at a time (mode restored)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(chunk) for chunk in x.split(batch_size)])
    finally:
        model.train(was_training)


def correct_mask(models: nn.Module | Iterable[nn.Module], x: torch.Tensor, y: torch.Tensor,
                 batch_size: int = 256) -> torch.Tensor:
    """``(N,)`` bool on ``y``'s device: clip ``i`` is right for every one of ``models``."""
    models = [models] if isinstance(models, nn.Module) else list(models)
    if not models:
        raise ConfigError("correct_mask: needs at least one model")
    ok = torch.ones(len(y), dtype=torch.bool, device=y.device)
    for model in models:
        ok &= batched_logits(model, x, batch_size).argmax(1).to(y.device) == y
    return ok


def choose_clips(mask: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of at most ``n`` clips drawn without replacement where ``mask`` is true.

    The draw depends only on ``mask`` and ``seed``.
    """
    if n < 1:
        raise ConfigError(f"choose_clips: n must be >= 1, got {n}")
    candidates = torch.nonzero(mask.cpu()).flatten()
    if len(candidates) == 0:
        raise ConfigError("choose_clips: no clip is classified correctly")
    order = torch.randperm(len(candidates), generator=torch.Generator().manual_seed(seed))
    return candidates[order[:n]].sort().values
