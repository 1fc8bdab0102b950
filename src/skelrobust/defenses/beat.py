"""BEAT: Bayesian Energy-based Adversarial Training (Wang, Diao, Tan, Guo, "Defending
Black-box Skeleton-based Human Activity Classifiers", AAAI 2023), post-train.

The pretrained classifier ``g_θ`` is frozen (its weights never change and it is only
run forward, its input gradients included); a small network ``f_θ′`` is appended on
``φ(x)`` (the base's logits by default, or its penultimate features) and the defended
logits are

    logits_θ′(x) = f_θ′(φ(x)) + g_θ(x).

Training (:class:`~skelrobust.defenses.energy.BEATObjective`) treats the clean data,
the adversaries and ``θ′`` in a Bayesian way: the joint clean–adversarial energy model
``p(x, x̃, y) ∝ exp{logits(x)[y] + logits(x̃)[y] − λ d(x, x̃)}`` with ``x`` drawn by
SGLD from a replay buffer and ``x̃`` by SGLD started from ``x``, and a posterior over
``θ′`` sampled by SGHMC (:mod:`~skelrobust.defenses.sghmc`) from which ``samples``
weight draws are kept. The prediction is the Bayesian model average (BMA)

    p(y | x) = (1/S) Σ_s softmax(f_θ′_s(φ(x)) + g_θ(x))[y],

and :meth:`BEAT.forward` returns its logarithm, so the argmax is the BMA's class and a
white-box attack differentiates through the whole average. The appended network is
``Linear → ReLU → Linear`` with the last layer zero-initialised: before training the
defended classifier answers exactly as the base.

``prediction="logit-sum"`` reproduces the released code's test-time rule (the heads'
logits summed); see docs/DESIGN-NOTES.md for that and the other differences.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from skelrobust.classifier import Classifier
from skelrobust.defenses.base import DefendedClassifier, register_defense
from skelrobust.validation import POSITIVE_INT, check_option, choice

__all__ = ["BEAT", "PREDICTIONS"]

PREDICTIONS = ("bma", "logit-sum")
FEATURES = ("logits", "penultimate")


def _heads(phi: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
           b2: torch.Tensor) -> torch.Tensor:
    """``S`` appended networks at once: ``(N, D) → (S, N, K)``, ``W2 ReLU(W1 φ + b1) + b2``."""
    h = torch.relu(torch.einsum("nd,shd->snh", phi, w1) + b1[:, None])
    return torch.einsum("snh,skh->snk", h, w2) + b2[:, None]


@register_defense("beat")
class BEAT(DefendedClassifier):
    """BEAT (AAAI 2023): a Bayesian appended network on a frozen classifier (module doc).

    ``samples``: posterior draws kept (the paper's N); ``hidden``: the appended
    network's width (default: the width of ``φ``); ``features``: ``"logits"`` (only
    the base's outputs: works for any base that answers logits) or ``"penultimate"``
    (``base.forward_features``); ``prediction``: ``"bma"`` (the paper) or
    ``"logit-sum"`` (the released code). Training options (SGLD, SGHMC, loss weights)
    live in ``args["training"]`` (see :meth:`training_objective`).
    """

    freezes_base = True
    #: TrainConfig fields for BEAT (``lr`` is the sampler's step ``ε``; the prior replaces
    #: weight decay; a constant step: an SG-MCMC chain has no learning-rate schedule)
    training_defaults: ClassVar[dict[str, Any]] = {
        "lr": 0.01, "batch_size": 32, "schedule": "none", "weight_decay": 0.0,
        "warmup_epochs": 0}

    def __init__(self, base: Classifier, samples: int = 5, hidden: int | None = None,
                 features: str = "logits", prediction: str = "bma",
                 training: dict[str, Any] | None = None) -> None:
        features = check_option("beat", "features", features, choice(*FEATURES))
        prediction = check_option("beat", "prediction", prediction, choice(*PREDICTIONS))
        samples = check_option("beat", "samples", samples, POSITIVE_INT)
        dim = base.num_classes if features == "logits" else int(base.num_features)
        width = check_option("beat", "hidden", dim if hidden is None else hidden, POSITIVE_INT)
        super().__init__(base, {"samples": samples, "hidden": width, "features": features,
                                "prediction": prediction, "training": dict(training or {})})
        k = base.num_classes
        # the SG-MCMC chain: one appended network, trained; posterior draws are copied out
        self.w1 = nn.Parameter(torch.empty(1, width, dim))
        self.b1 = nn.Parameter(torch.zeros(1, width))
        self.w2 = nn.Parameter(torch.zeros(1, k, width))
        self.b2 = nn.Parameter(torch.zeros(1, k))
        nn.init.kaiming_uniform_(self.w1[0], a=math.sqrt(5))
        for name, p in (("w1", self.w1), ("b1", self.b1), ("w2", self.w2), ("b2", self.b2)):
            self.register_buffer(f"posterior_{name}", torch.zeros(samples, *p.shape[1:]))
        self.register_buffer("kept", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------- posterior
    @property
    def num_samples(self) -> int:
        """Posterior draws kept so far (at most ``args["samples"]``)."""
        return int(self.kept)

    def keep_sample(self) -> int:
        """Copy the chain's current weights into the next posterior slot; returns its index.

        Once every slot is full the oldest draw is replaced (a sliding window).
        """
        slot = int(self.kept) % self.args["samples"]
        with torch.no_grad():
            for name in ("w1", "b1", "w2", "b2"):
                getattr(self, f"posterior_{name}")[slot].copy_(getattr(self, name)[0])
            self.kept += 1
        return slot

    def posterior(self) -> tuple[torch.Tensor, ...]:
        """The kept draws ``(w1, b1, w2, b2)``, each with a leading sample axis."""
        s = min(int(self.kept), self.args["samples"])
        return tuple(getattr(self, f"posterior_{n}")[:s] for n in ("w1", "b1", "w2", "b2"))

    # ------------------------------------------------------------ prediction
    def features_of(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(φ(x), g(x))``: the appended network's input and the base's logits."""
        if self.args["features"] == "logits":
            g = self.base(x)
            return g, g
        feats = self.base.forward_features(x)
        return feats, self.base.forward_head(feats)

    def sample_logits(self, x: torch.Tensor, chain: bool | None = None) -> torch.Tensor:
        """Per-draw logits ``f_θ′_s(φ(x)) + g(x)``: ``(S, N, K)``.

        ``chain=True`` uses the live chain only (what training moves); the default
        uses the chain in training mode or before any draw is kept, the posterior else.
        """
        return self.combine(*self.features_of(x), chain=chain)

    def combine(self, phi: torch.Tensor, g: torch.Tensor,
                chain: bool | None = None) -> torch.Tensor:
        """``f_θ′_s(φ) + g`` for the chain or the posterior draws (see :meth:`sample_logits`)."""
        use_chain = chain if chain is not None else (self.training or int(self.kept) == 0)
        weights = (self.w1, self.b1, self.w2, self.b2) if use_chain else self.posterior()
        return _heads(phi, *weights) + g[None]

    def defended_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``log (1/S) Σ_s softmax(logits_s)`` (BMA), or ``Σ_s logits_s`` (``logit-sum``)."""
        z = self.sample_logits(x)
        if self.args["prediction"] == "logit-sum":
            return z.sum(0)
        return torch.logsumexp(F.log_softmax(z, dim=-1), dim=0) - math.log(z.shape[0])

    # --------------------------------------------------------------- training
    def training_objective(self, num_data: int) -> Any:
        """The loss :func:`~skelrobust.training.fit` minimises (``args["training"]`` options)."""
        from skelrobust.defenses.energy import BEATObjective

        return BEATObjective(self, num_data=num_data, **self.args["training"])
