"""Transfer attacks: craft on a surrogate (or an ensemble), evaluate on black-box victims.

The adversary has white-box access only to the surrogate(s). For surrogate
``s`` and victim ``v`` the transfer success rate is measured, as in SMART
(Wang et al., CVPR 2021, Sec. 5.3) and TASAR (Diao et al., 2024), on the
clips that ``v`` classifies correctly when clean::

    T[s, v] = |{i : v(x_i) = y_i  and  goal reached by v(x_adv^s_i)}| / |{i : v(x_i) = y_i}|

An :class:`Ensemble` of surrogates averages their logits (Liu et al., ICLR
2017, "Delving into transferable adversarial examples"), so any white-box
attack can craft on several models at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from skelrobust.attacks.base import Attack
from skelrobust.attacks.sampling import batched_logits, correct_mask
from skelrobust.errors import ConfigError
from skelrobust.metrics import goal_reached

__all__ = ["Ensemble", "TransferResult", "replay_success", "transfer_matrix"]


class Ensemble(nn.Module):
    """Average of the logits of classifiers that share a layout and class list.

    ``weights`` (default uniform) are normalised to sum to one. The ensemble
    exposes ``skeleton``, ``class_names`` and ``num_classes`` like a
    :class:`~skelrobust.classifier.Classifier`, so attacks accept it.
    """

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float] | None = None):
        super().__init__()
        if not members:
            raise ConfigError("Ensemble: needs at least one member")
        names = [list(getattr(m, "class_names", [])) for m in members]
        if any(n != names[0] for n in names):
            raise ConfigError("Ensemble: members must share the same class names")
        layouts = {getattr(getattr(m, "skeleton", None), "name", None) for m in members}
        if len(layouts) > 1:
            raise ConfigError(f"Ensemble: members must share one skeleton layout, got {layouts}")
        w = torch.ones(len(members)) if weights is None else torch.as_tensor(weights, dtype=float)
        if w.shape != (len(members),) or (w < 0).any() or w.sum() <= 0:
            raise ConfigError("Ensemble: weights must be non-negative, one per member, sum > 0")
        self.members = nn.ModuleList(members)
        self.register_buffer("weights", (w / w.sum()).float())
        self.skeleton = getattr(members[0], "skeleton", None)
        self.class_names = names[0]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(w * m(x) for w, m in zip(self.weights, self.members))


@dataclass
class TransferResult:
    """Success rates (%) of adversarial motions crafted on each surrogate, on each victim."""

    matrix: dict[str, dict[str, float]]  # surrogate -> victim -> success %
    counts: dict[str, dict[str, int]]  # surrogate -> victim -> clean-correct clips evaluated
    white_box: dict[str, float]  # surrogate -> success % on itself
    goal: str
    info: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """One table row per surrogate, one column per victim."""
        return [{"surrogate": s, **{v: r for v, r in row.items()}}
                for s, row in self.matrix.items()]


def transfer_matrix(make_attack: Callable[[nn.Module], Attack],
                    surrogates: Mapping[str, nn.Module], victims: Mapping[str, nn.Module],
                    x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None,
                    batch_size: int = 256) -> TransferResult:
    """Craft with ``make_attack(surrogate)`` on every surrogate; measure every victim.

    ``make_attack`` builds the white-box attack (its goal decides what success
    means, e.g. ``lambda c: SMART(c, goal="ab")``). A surrogate that also
    appears among the victims gives the white-box entry of its row.
    """
    if not surrogates or not victims:
        raise ConfigError("transfer_matrix: needs at least one surrogate and one victim")
    clean_ok = {name: correct_mask(v, x, y, batch_size) for name, v in victims.items()}
    matrix: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    white: dict[str, float] = {}
    goal = ""
    for s_name, surrogate in surrogates.items():
        atk = make_attack(surrogate)
        goal, n = atk.goal, atk.n
        res = atk.attack(x, y, target)
        white[s_name] = res.success_rate
        matrix[s_name], counts[s_name] = {}, {}
        for v_name, victim in victims.items():
            counts[s_name][v_name] = int(clean_ok[v_name].sum())
            matrix[s_name][v_name] = replay_success(victim, res.x_adv, y, clean_ok[v_name],
                                                    goal, res.target, n, batch_size)
    return TransferResult(matrix=matrix, counts=counts, white_box=white, goal=goal)


def replay_success(victim: nn.Module, x_adv: torch.Tensor, y: torch.Tensor,
                   clean_ok: torch.Tensor, goal: str = "ab", target: torch.Tensor | None = None,
                   n: int = 1, batch_size: int = 256) -> float:
    """``T[s, v]`` of the module doc: % of the clips ``clean_ok`` (the victim's clean-correct
    ones) on which ``victim`` reaches ``goal`` for the adversarial motions ``x_adv``; NaN if none.
    """
    if not bool(clean_ok.any()):
        return float("nan")
    hit = goal_reached(batched_logits(victim, x_adv, batch_size), y, goal, target, n)
    return 100.0 * float(hit[clean_ok].float().mean())

