"""BEAT's training objective: the joint clean–adversarial energy model (Wang et al., AAAI 2023).

For the defended logits ``z(x) = f_θ′(φ(x)) + g_θ(x)`` the clean data, the adversaries
and the labels share one energy-based model

    p(x, x̃, y) ∝ exp{ z(x)[y] + z(x̃)[y] − λ d(x, x̃) },

whose negative log-likelihood splits (as in JEM, Grathwohl et al., ICLR 2020) into

- ``−log p(y | x)``: the cross-entropy on clean clips;
- ``−log p(x)`` with ``log p(x) = LSE_y z(x)[y] − log Z``, whose gradient is
  ``E_data[∇ LSE z(x)] − E_model[∇ LSE z(x)]``: the energy term
  ``−(mean LSE z(x_data) − mean LSE z(x_model))`` with ``x_model`` drawn by SGLD
  (Welling & Teh, 2011) from a persistent replay buffer;
- ``−log p(y | x̃)`` on adversaries ``x̃`` drawn by SGLD started from ``x`` on
  ``log p(x̃ | x, y) = CE(z(x̃), y) − λ d(x, x̃) + const``: they climb the classification
  loss while the skeletal distance ``d`` keeps them near the clean motion:

      d(x, x̃) = Σ_{n=0,1,2} ‖∂ⁿx − ∂ⁿx̃‖² (positions, velocities, accelerations, per valid
      frame) + Σ_b (ℓ_b(x̃) − ℓ_b(x))² (bone lengths).

The loss is ``clean_weight · CE(x) + energy_weight · energy + adversary_weight · CE(x̃)``
(1, 0.1, 0.1 in the released code). SGLD runs in the classifier's normalised
coordinates ``u = (x − mean) / std`` (the scale its step sizes were set for):
``u ← u + step · ∇_u log p + noise · ξ``; samples keep the zero padding of the batch.
The weights ``θ′`` are sampled by SGHMC (:meth:`BEATObjective.optimizer`) and a
posterior draw is kept every ``sample_every`` epochs after ``burn_in`` epochs
(:meth:`BEATObjective.end_epoch`). Randomness comes from torch's global generator,
which :func:`~skelrobust.training.fit` seeds and restores on resume.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from skelrobust.attacks.base import motion_mask
from skelrobust.attacks.losses import bone_length_loss, bone_lengths, dynamics_loss
from skelrobust.defenses.query_gradient import query_logits
from skelrobust.defenses.sghmc import SGHMC, AdaptiveSGHMC
from skelrobust.errors import ConfigError
from skelrobust.validation import (
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    UNIT,
    Rule,
    check_option,
    choice,
)

if TYPE_CHECKING:
    from skelrobust.defenses.beat import BEAT
    from skelrobust.training import TrainConfig

__all__ = ["BEATObjective", "skeletal_distance"]

POSITION_VELOCITY_ACCELERATION = (1.0, 1.0, 1.0)
SAMPLERS: dict[str, Any] = {"sghmc": SGHMC, "adaptive-sghmc": AdaptiveSGHMC}


def skeletal_distance(x_tilde: torch.Tensor, x: torch.Tensor, ref_lengths: torch.Tensor,
                      skeleton: Any, mask: torch.Tensor | None = None) -> torch.Tensor:
    """BEAT's ``d(x, x̃)`` per sample (module doc): dynamics plus bone-length terms, ``(N,)``."""
    return (dynamics_loss(x_tilde, x, mask, POSITION_VELOCITY_ACCELERATION)
            + bone_length_loss(x_tilde, ref_lengths, skeleton, mask))


class BEATObjective:
    """``loss(net, x, y) -> (loss, clean logits)``, the objective :func:`fit` minimises.

    Options (all in ``BEAT.args["training"]``): loss weights ``clean_weight``,
    ``energy_weight``, ``adversary_weight``; SGLD on ``x``: ``sgld_steps``,
    ``sgld_step``, ``sgld_noise``, ``buffer_size``, ``reinit``; SGLD on ``x̃``:
    ``adversary_steps``, ``adversary_step``, ``adversary_noise``, ``distance_weight``
    (λ); SGHMC: ``friction``, ``temperature``, ``prior_std``; a black-box base:
    ``base_gradients="queries"``, ``query_samples``, ``query_sigma_mm``; the posterior draws:
    ``burn_in`` epochs, then one every ``sample_every`` epochs.
    """

    def __init__(self, defended: BEAT, num_data: int, clean_weight: float = 1.0,
                 energy_weight: float = 0.1, adversary_weight: float = 0.1,
                 sgld_steps: int = 10, sgld_step: float = 2.0, sgld_noise: float = 5e-3,
                 buffer_size: int = 100, reinit: float = 0.05, adversary_steps: int = 10,
                 adversary_step: float = 0.03, adversary_noise: float = 5e-3,
                 distance_weight: float = 1e-5, friction: float = 0.05,
                 temperature: float = 1.0, prior_std: float = 0.1, burn_in: int = 5,
                 sample_every: int = 3, sampler: str = "adaptive-sghmc",
                 base_gradients: str = "autograd", query_samples: int = 16,
                 query_sigma_mm: float = 1.0,
                 sgld_gradient: str = "raw",
                 adversary_gradient: str = "normalized") -> None:
        def check(option: str, value: Any, rule: Rule) -> Any:
            return check_option("beat", option, value, rule)

        weights = tuple(check(k, v, NON_NEGATIVE) for k, v in (
            ("clean_weight", clean_weight), ("energy_weight", energy_weight),
            ("adversary_weight", adversary_weight)))
        gradient = choice("normalized", "raw")
        self.gradients = {"x": check("sgld_gradient", sgld_gradient, gradient),
                          "adversary": check("adversary_gradient", adversary_gradient, gradient)}
        check("base_gradients", base_gradients, choice("autograd", "queries"))
        if base_gradients == "queries" and defended.args["features"] != "logits":
            raise ConfigError("beat: base_gradients='queries' (a black-box base) needs "
                              "features='logits': a black box exposes no inner features")
        self.query = (check("query_samples", query_samples, POSITIVE_INT),
                      check("query_sigma_mm", query_sigma_mm, POSITIVE) / 1000.0)
        self.base_gradients = base_gradients
        self.defended = defended
        self.num_data = int(num_data)
        self.weights = weights
        self.sgld = (check("sgld_steps", sgld_steps, COUNT),
                     check("sgld_step", sgld_step, NON_NEGATIVE),
                     check("sgld_noise", sgld_noise, NON_NEGATIVE))
        self.adversary = (check("adversary_steps", adversary_steps, COUNT),
                          check("adversary_step", adversary_step, NON_NEGATIVE),
                          check("adversary_noise", adversary_noise, NON_NEGATIVE))
        self.distance_weight = check("distance_weight", distance_weight, NON_NEGATIVE)
        self.buffer_size = check("buffer_size", buffer_size, POSITIVE_INT)
        self.reinit = check("reinit", reinit, UNIT)
        self.sampler = check("sampler", sampler, choice(*sorted(SAMPLERS)))
        self.sampler_options = {"friction": friction, "temperature": temperature,
                                "prior_std": prior_std}
        self.burn_in = check("burn_in", burn_in, COUNT)
        self.sample_every = check("sample_every", sample_every, POSITIVE_INT)
        self.buffer: torch.Tensor | None = None
        self.last_terms: dict[str, float] = {}  # the last batch's loss terms, for logs

    # ------------------------------------------------------------- the loss
    def __call__(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        mask = motion_mask(x)
        clean_w, energy_w, adversary_w = self.weights
        logits = self.logits(x)
        terms = {"clean": F.cross_entropy(logits, y)}
        if energy_w:
            x_model = self.sample_x(mask)
            terms["energy"] = -(torch.logsumexp(logits, 1).mean()
                                - torch.logsumexp(self.logits(x_model), 1).mean())
        if adversary_w:
            x_tilde = self.sample_adversary(x, y, mask)
            terms["adversary"] = F.cross_entropy(self.logits(x_tilde), y)
        self.last_terms = {k: float(v.detach()) for k, v in terms.items()}
        weight = {"clean": clean_w, "energy": energy_w, "adversary": adversary_w}
        loss = sum(weight[k] * v for k, v in terms.items())
        return loss, logits

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The chain's unnormalised logits ``z(x)`` (the defended forward returns log-probabilities,
        whose log-sum-exp is 0: no energy).

        With ``base_gradients="queries"`` the base is used as a black box: only its
        answers are read, and input gradients through it are estimated from queries
        (:func:`~skelrobust.defenses.query_gradient.query_logits`).
        """
        if self.base_gradients == "autograd":
            return self.defended.sample_logits(x, chain=True)[0]
        g = query_logits(self.defended.base, x, motion_mask(x), *self.query)
        return self.defended.combine(g, g, chain=True)[0]

    # --------------------------------------------------------------- SGLD
    def _to_motion(self, u: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        d = self.defended
        return (d.mean + d.std * u) * mask

    def _langevin(self, u: torch.Tensor, log_density: Any, steps: int, step: float,
                  noise: float, mask: torch.Tensor, gradient: str) -> torch.Tensor:
        """``steps`` SGLD moves ``u ← u + step · G(∇_u log_density(u)) + noise ξ`` (no graph kept).

        ``G`` is the identity (``gradient="raw"``, plain SGLD) or the per-sample
        normalisation ``g / rms(g)`` over the valid coordinates (``"normalized"``): a
        frozen, confident classifier has near-zero input gradients (measured on the
        synthetic victim: mean |∇ LSE| ≈ 1.6e-9), so plain SGLD moves nothing but noise.
        """
        u = u.detach()
        count = (mask.flatten(1).sum(1) * 3 * u.shape[3]).clamp_min(1.0)
        for _ in range(steps):
            u.requires_grad_(True)
            (grad,) = torch.autograd.grad(log_density(u).sum(), u)
            if gradient == "normalized":
                rms = ((grad * grad * mask).flatten(1).sum(1) / count).sqrt()
                grad = grad / rms.clamp_min(1e-30).view(-1, 1, 1, 1, 1)
            u = (u + step * grad + noise * torch.randn_like(u)).detach()
        return u

    def sample_x(self, mask: torch.Tensor) -> torch.Tensor:
        """Model samples ``x ~ p(x)`` by SGLD on ``LSE z(x)`` from the replay buffer."""
        steps, step, noise = self.sgld
        shape = (mask.shape[0], 3, mask.shape[2], self.defended.skeleton.num_joints,
                 mask.shape[4])
        if self.buffer is None or self.buffer.shape[1:] != shape[1:]:
            self.buffer = torch.rand(self.buffer_size, *shape[1:]) * 2 - 1
        idx = torch.randint(0, self.buffer_size, (shape[0],))
        u0 = self.buffer[idx]
        fresh = torch.rand(shape[0]) < self.reinit
        u0 = torch.where(fresh.view(-1, 1, 1, 1, 1), torch.rand_like(u0) * 2 - 1, u0)
        u = self._langevin(u0, lambda v: torch.logsumexp(self.logits(self._to_motion(v, mask)), 1),
                           steps, step, noise, mask, self.gradients["x"])
        self.buffer[idx] = u
        return self._to_motion(u, mask).detach()

    def sample_adversary(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor
                         ) -> torch.Tensor:
        """Adversaries ``x̃ ~ p(x̃ | x, y)``: SGLD from ``x`` on ``CE(z(x̃), y) − λ d(x, x̃)``."""
        steps, step, noise = self.adversary
        d = self.defended
        ref = bone_lengths(x, d.skeleton).detach()
        u_clean = ((x - d.mean) / d.std).detach()

        def shifted(u: torch.Tensor) -> torch.Tensor:  # x moved by u − u_clean, padding kept
            return x + d.std * (u - u_clean) * mask

        def log_density(u: torch.Tensor) -> torch.Tensor:
            x_tilde = shifted(u)
            ce = F.cross_entropy(self.logits(x_tilde), y, reduction="none")
            if not self.distance_weight:
                return ce
            return ce - self.distance_weight * skeletal_distance(x_tilde, x, ref, d.skeleton,
                                                                 mask)

        u = self._langevin(u_clean, log_density, steps, step, noise, mask,
                           self.gradients["adversary"])
        return shifted(u).detach()

    # --------------------------------------------------- sampler and epochs
    def optimizer(self, params: Iterable[nn.Parameter], config: TrainConfig,
                  ) -> torch.optim.Optimizer:
        """The SG-MCMC sampler over the appended network, at the config's learning rate
        (the adaptive one adapts its preconditioner during the burn-in epochs)."""
        extra = {}
        if self.sampler == "adaptive-sghmc":
            steps = max(self.num_data // config.batch_size, 1)
            extra = {"adapt_steps": self.burn_in * steps}
        return SAMPLERS[self.sampler](params, lr=config.lr, num_data=self.num_data,
                                      **self.sampler_options, **extra)

    def end_epoch(self, classifier: nn.Module, epoch: int) -> None:
        """Keep a posterior draw after burn-in, every ``sample_every`` epochs."""
        if epoch > self.burn_in and (epoch - self.burn_in) % self.sample_every == 0:
            self.defended.keep_sample()

    def epochs(self) -> int:
        """Epochs that fill every posterior slot once: ``burn_in + samples · sample_every``."""
        return self.burn_in + self.defended.args["samples"] * self.sample_every

    def state_dict(self) -> dict[str, Any]:
        return {} if self.buffer is None else {"buffer": self.buffer}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "buffer" in state:
            self.buffer = state["buffer"].clone()
