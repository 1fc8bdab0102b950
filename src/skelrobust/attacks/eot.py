"""Expectation over transformation (EOT; Athalye et al., "Obfuscated Gradients Give a
False Sense of Security", ICML 2018, Sec. 4.1).

Against a randomized classifier ``f(x; r)`` (input noise, sampled weights,
dropout left on at evaluation, random transforms), the gradient of one forward
pass is a noisy estimate. EOT follows instead the gradient of the expectation,
estimated by the average over ``samples`` independent passes,

``∇_x E_r[J(f(x; r))] ≈ (1/S) Σ_{s=1..S} ∇_x J(f(x; r_s))``.

:class:`EOT` wraps any :class:`~skelrobust.attacks.white_box.GradientAttack`
(SMART, CIASA, FGSM, PGD, ...): it works on a shallow copy of the attack whose
:meth:`~skelrobust.attacks.white_box.GradientAttack.gradient` — the single place
where those attacks query the classifier while optimising — is replaced by the
average over ``samples`` passes; logits and objective are averaged too, so
early stopping and restarts judge the expected prediction. Each pass is a query:
a sample costs ``samples`` queries per step. The classifier's randomness comes
from torch's global generator; ``attack`` seeds it from the attack's ``seed``
inside a forked RNG state, so runs are repeatable and the caller's RNG is left
untouched.
"""

from __future__ import annotations

import copy

import torch

from skelrobust.attacks.base import Attack, AttackResult
from skelrobust.attacks.white_box import GradientAttack
from skelrobust.errors import ConfigError

__all__ = ["EOT"]


class EOT(Attack):
    """``EOT(attack, samples=8)``: ``attack`` with gradients averaged over the randomness."""

    name = "eot"

    def __init__(self, attack: GradientAttack, samples: int = 8) -> None:
        if not isinstance(attack, GradientAttack):
            raise ConfigError(f"eot: expected a gradient attack (SMART, CIASA, FGSM, PGD, ...), "
                              f"got {type(attack).__name__}")
        if samples < 1:
            raise ConfigError(f"eot: samples must be >= 1, got {samples}")
        super().__init__(attack.classifier, goal=attack.goal, n=attack.n,
                         target_mode=attack.target_mode, seed=attack.seed,
                         report=attack.with_report)
        self.samples = int(samples)
        self.inner = copy.copy(attack)  # the caller's attack object is left as it was
        self.inner.gradient = self.expected_gradient  # type: ignore[method-assign]
        self.name = f"eot-{attack.name}"

    def expected_gradient(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                          active: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean ``(logits, objective, gradient)`` over ``samples`` passes (S queries each)."""
        single = type(self.inner).gradient
        logits, obj, grad = single(self.inner, x, y, target, active)
        for _ in range(self.samples - 1):
            lg, ob, gr = single(self.inner, x, y, target, active)
            logits, obj, grad = logits + lg, obj + ob, grad + gr
        k = float(self.samples)
        return logits / k, obj / k, grad / k

    def attack(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None,
               lengths: torch.Tensor | None = None) -> AttackResult:
        self.inner.progress = self.progress
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            result = self.inner.attack(x, y, target, lengths)
        self.queries = self.inner.queries
        result.info["eot_samples"] = self.samples
        result.info["attack"] = self.name
        return result

    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.inner.queries = self.queries
        return self.inner.perturb(x, y, target, mask)
