"""Expectation over transformation (EOT; Athalye et al., "Obfuscated Gradients Give a
False Sense of Security", ICML 2018, Sec. 4.1).

Against a randomized classifier ``f(x; r)`` (input noise, sampled weights,
dropout left on at evaluation, random transforms), the gradient of one forward
pass is a noisy estimate. EOT attacks the expected classifier instead,

``E_r[f(x; r)] ≈ (1/S) Σ_{s=1..S} f(x; r_s)``,  so  ``∇_x J(E_r[f(x; r)])`` is followed,

with the expectation estimated by ``samples`` independent passes.

:class:`EOT` wraps the *victim*, not the attack: a copy of any white-box attack
(SMART, CIASA, FGSM, PGD, ...) gets an :class:`~skelrobust.attacks.oracle.ExpectationOracle`
as its victim, so logits, objective, gradient, early stopping and the final
evaluation all judge the expected prediction. Each pass is a query: a sample
costs ``samples`` queries per step. The classifier's randomness comes from
torch's global generator; ``attack`` seeds it from the attack's ``seed`` inside a
forked RNG state, so runs are repeatable and the caller's RNG is left untouched.
"""

from __future__ import annotations

import copy

import torch

from skelrobust.attacks.base import Attack, AttackResult
from skelrobust.attacks.oracle import ExpectationOracle
from skelrobust.attacks.white_box import GradientAttack
from skelrobust.errors import ConfigError

__all__ = ["EOT"]


class EOT(Attack):
    """``EOT(attack, samples=8)``: ``attack`` run against the expectation of its victim.

    The caller's attack object is left as it was (a copy is attacked with).
    """

    def __init__(self, attack: GradientAttack, samples: int = 8) -> None:
        if not isinstance(attack, GradientAttack):
            raise ConfigError(f"eot: expected a gradient attack (SMART, CIASA, FGSM, PGD, ...), "
                              f"got {type(attack).__name__}")
        if samples < 1:
            raise ConfigError(f"eot: samples must be >= 1, got {samples}")
        self.name = f"eot-{attack.name}"
        super().__init__(ExpectationOracle(attack.victim, int(samples)), goal=attack.goal,
                         n=attack.n, target_mode=attack.target_mode, seed=attack.seed,
                         report=attack.with_report, confidence=attack.confidence)
        self.samples = int(samples)
        self.inner = copy.copy(attack)
        self.inner.victim = self.victim

    def attack(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None,
               lengths: torch.Tensor | None = None) -> AttackResult:
        self.inner.progress = self.progress
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            result = self.inner.attack(x, y, target, lengths)
        result.info["attack"] = self.name
        return result

    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inner.perturb(x, y, target, mask)
