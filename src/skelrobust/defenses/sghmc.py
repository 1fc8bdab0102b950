"""Stochastic-gradient Hamiltonian Monte Carlo (Chen, Fox, Guestrin, "Stochastic Gradient
Hamiltonian Monte Carlo", ICML 2014, Eq. 15) as a torch optimiser.

The posterior ``p(θ | D) ∝ exp(−U(θ))`` with ``U(θ) = −Σ_i log p(y_i | x_i, θ) − log p(θ)``
and a Gaussian prior ``θ ~ N(0, σ_p² I)`` is sampled by the discretised dynamics

    v ← (1 − α) v − η ∇Ũ(θ) + N(0, 2 α η T),     θ ← θ + v,

where ``Ũ`` is the minibatch estimate ``|D| · mean_batch loss + ||θ||² / (2 σ_p²)``, ``α``
the friction (``friction``), ``T`` the temperature (1: the Bayesian posterior; < 1 a
"cold" one). Written with a per-datum step ``lr = η |D|`` (the learning rate the
training loop schedules, the scale of plain SGD) the update is

    v ← (1 − α) v − lr (∇ mean_batch loss + θ / (|D| σ_p²)) + sqrt(2 α lr T / |D|) ξ,

``ξ ~ N(0, I)``; the noise term ``β̂`` of Eq. 15 (the minibatch gradient noise estimate) is
taken as 0, as Chen et al. do in their experiments. ``friction = 1`` resets the momentum at
every step (noisy SGD / SGLD-like), the sampler of BEAT's released code.

:class:`AdaptiveSGHMC` is the scale-adapted variant of Springenberg, Klein, Falkner and
Hutter ("Bayesian Optimization with Robust Bayesian Neural Networks", NeurIPS 2016,
Sec. 3.2): a per-parameter preconditioner ``M⁻¹ = 1 / sqrt(v̂)`` from a running mean
``v̂`` of squared gradients of ``Ũ`` (adapted during the first ``adapt_steps`` steps,
then fixed, so the chain samples the posterior afterwards), and the dynamics

    v ← v − ε² M⁻¹ ∇Ũ(θ) − α v + N(0, 2 ε² α M⁻¹ − ε⁴),     θ ← θ + v,

which makes the step ``ε`` independent of the gradients' scale (as Adam's is). BEAT's
released code trains its heads with this sampler.
Noise comes from torch's global generator (seeded and restored by ``fit``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from skelrobust.validation import COUNT, NON_NEGATIVE, POSITIVE, POSITIVE_INT, check_option, real

__all__ = ["SGHMC", "AdaptiveSGHMC"]


def _checked_defaults(who: str, lr: float, num_data: int, friction: float,
                      temperature: float, prior_std: float, **extra: int) -> dict[str, Any]:
    """A sampler's param-group defaults, each checked (a ConfigError naming the option)."""
    return {"lr": check_option(who, "lr", lr, POSITIVE),
            "num_data": check_option(who, "num_data", num_data, POSITIVE_INT),
            "friction": check_option(who, "friction", friction, real(0.0, 1.0, lo_open=True)),
            "temperature": check_option(who, "temperature", temperature, NON_NEGATIVE),
            "prior_std": check_option(who, "prior_std", prior_std, POSITIVE),
            **{k: check_option(who, k, v, COUNT) for k, v in extra.items()}}


class SGHMC(torch.optim.Optimizer):
    """SGHMC sampler over the parameters it is given (module doc for the update)."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, num_data: int,
                 friction: float = 0.05, temperature: float = 1.0,
                 prior_std: float = 1.0) -> None:
        super().__init__(params, _checked_defaults("sghmc", lr, num_data, friction,
                                                   temperature, prior_std))

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        """One step of the dynamics for every parameter with a gradient."""
        for group in self.param_groups:
            lr, n, alpha = group["lr"], group["num_data"], group["friction"]
            prior = 1.0 / (n * group["prior_std"] ** 2)
            scale = math.sqrt(2.0 * alpha * lr * group["temperature"] / n)
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(p)
                v = state["momentum"]
                v.mul_(1.0 - alpha).add_(p.grad + prior * p, alpha=-lr)
                if scale > 0:
                    v.add_(torch.randn_like(p), alpha=scale)
                p.add_(v)


class AdaptiveSGHMC(torch.optim.Optimizer):
    """Scale-adapted SGHMC (Springenberg et al., NeurIPS 2016; module doc).

    ``lr`` is the step ``ε``; ``friction`` ``α``; ``Ũ = |D| · mean batch loss + ||θ||² /
    (2 σ_p²)``; the preconditioner adapts over the first ``adapt_steps`` steps.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, num_data: int,
                 friction: float = 0.05, temperature: float = 1.0, prior_std: float = 1.0,
                 adapt_steps: int = 1000) -> None:
        super().__init__(params, _checked_defaults("adaptive sghmc", lr, num_data, friction,
                                                   temperature, prior_std,
                                                   adapt_steps=adapt_steps))

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        """One step of the scale-adapted dynamics for every parameter with a gradient."""
        for group in self.param_groups:
            eps, n, alpha = group["lr"], group["num_data"], group["friction"]
            prior = 1.0 / group["prior_std"] ** 2
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(step=torch.zeros(()), tau=torch.ones_like(p),
                                 g=torch.ones_like(p), v_hat=torch.ones_like(p),
                                 momentum=torch.zeros_like(p))
                grad = n * p.grad + prior * p  # ∇Ũ
                if int(state["step"]) < group["adapt_steps"]:
                    tau, g, v_hat = state["tau"], state["g"], state["v_hat"]
                    r = 1.0 / (tau + 1.0)
                    g.mul_(1 - r).add_(r * grad)
                    v_hat.mul_(1 - r).add_(r * grad * grad)
                    tau.sub_(tau * g * g / v_hat.clamp_min(1e-30)).add_(1.0)
                state["step"] += 1
                minv = state["v_hat"].clamp_min(1e-30).rsqrt()
                var = (2 * eps**2 * alpha * minv - eps**4) * group["temperature"]
                v = state["momentum"]
                v.sub_(eps**2 * minv * grad).sub_(alpha * v)
                v.add_(torch.randn_like(p) * var.clamp_min(1e-16).sqrt())
                p.add_(v)
