"""Adversarial training baselines as *losses* for the one :func:`~skelrobust.training.fit` loop.

DESIGN: "adversarial training is a loss handed to the one fit loop, never a second
loop". Every loss here is a callable

    loss(net, x, y) -> (scalar loss to minimise, logits of net on the clean x)

``net`` is in train mode when called (a classifier, or the DDP wrapper around one).
The inner maximisation runs the network in **eval mode** (BatchNorm statistics are
not updated by the adversarial search and dropout is off, as TRADES' and MART's
reference code do with ``model.eval()`` … ``model.train()``), on the module inside a
DDP wrapper (no gradient synchronisation for a search that differentiates the input
only), and takes input gradients only (``torch.autograd.grad`` w.r.t. the motion):
no parameter receives a gradient from it. Every module's mode is restored
afterwards, and the caller's ``x`` is never modified.

The losses (motion in metres, budgets in mm, ``CE`` the cross-entropy, ``p(x)`` the
softmax of the logits, ``KL(p‖q) = Σ_k p_k (log p_k − log q_k)``):

- :class:`SmartAT` — adversarial training with SMART (Wang et al., "Understanding
  the Robustness of Skeleton-based Action Recognition under Adversarial Attack",
  CVPR 2021), Madry-style: ``L = c·CE(f(x), y) + (1 − c)·CE(f(x′), y)``, ``x′`` the
  package's SMART attack (untargeted, on the clean labels), ``c = clean_weight``
  (0: pure Madry et al., ICLR 2018, Eq. 2.1; 0.5: Goodfellow et al., ICLR 2015).
- :class:`TRADES` — Zhang et al., ICML 2019, Eq. 5:
  ``L = CE(f(x), y) + β·(1/N)·Σ_i KL(p(x_i) ‖ p(x′_i))``, ``x′`` maximising the KL.
- :class:`MART` — Wang et al., ICLR 2020, Eq. 13:
  ``L = (1/N)·Σ_i [BCE(p(x′_i), y_i) + β·KL(p(x_i) ‖ p(x′_i))·(1 − p_{y_i}(x_i))]``,
  ``BCE(p, y) = −log p_y − log(1 − max_{k≠y} p_k)``, ``x′`` from PGD on the CE.
- :class:`~skelrobust.defenses.mmat.MMAT` — mixed manifold-based adversarial
  training (Diao et al., Pattern Recognition 2024), in :mod:`skelrobust.defenses.mmat`.

TRADES, MART and MMAT share one inner maximisation, :class:`SignAscent`: start at
``x + σ·N(0, 1)`` (TRADES' and MART's code start at ``x + 0.001·N(0, 1)`` for an L∞
budget ε = 0.031; here ``σ = ε·0.001/0.031``, the same start relative to the
budget), then ``steps`` steepest-ascent steps of ``step_mm`` (``sign`` of the
gradient under L∞), each projected onto the ball of ``budget_mm``; the defaults,
10 steps of ε/4 in an L∞ ball of 10 mm, are the papers' 10 steps of 0.007 ≈ ε/4.4
and the 10 mm per coordinate of Diao et al.'s skeleton benchmark. Padding frames
and absent bodies are never perturbed (:func:`~skelrobust.attacks.base.motion_mask`).

The defended classifiers (:class:`AdversariallyTrained` and one registered subclass
per loss) are the fine-tuned copies of their bases: ``freezes_base = False``,
``defended_logits(x) = base(x)``, their ``args`` the loss options; train one with
``fit(d, train, val, cfg, loss=d.training_loss())``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel

from skelrobust.attacks.base import NORMS, motion_mask, project_budget
from skelrobust.attacks.white_box import project_exact, steepest
from skelrobust.classifier import Classifier
from skelrobust.defenses.base import DefendedClassifier, register_defense, trainable_copy
from skelrobust.errors import ConfigError
from skelrobust.validation import (
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    UNIT,
    check_option,
    choice,
    optional,
)

__all__ = ["MART", "TRADES", "AdversarialLoss", "AdversariallyTrained", "MARTDefense",
           "SignAscent", "SmartAT", "SmartATDefense", "TRADESDefense", "eval_mode",
           "kl_per_sample", "mart_loss", "trades_loss", "unwrap", "weighted_ce"]

#: TRADES'/MART's start noise (0.001) relative to their L∞ budget (0.031)
INIT_FRACTION = 0.001 / 0.031

Objective = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------- checks
# ---------------------------------------------------------------------- the network
def unwrap(net: nn.Module) -> nn.Module:
    """The module inside a :class:`~torch.nn.parallel.DistributedDataParallel` wrapper."""
    return net.module if isinstance(net, DistributedDataParallel) else net


@contextlib.contextmanager
def eval_mode(net: nn.Module) -> Iterator[nn.Module]:
    """Run the block with ``net`` in eval mode; yields the unwrapped module.

    Every submodule's own mode is restored afterwards (not just the top one's), so a
    module kept in eval mode on purpose inside a training network stays so.
    """
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        yield unwrap(net)
    finally:
        for m, training in modes:
            m.training = training


def clean_logits(net: nn.Module, x: torch.Tensor, in_loss: bool) -> torch.Tensor:
    """``net(x)`` in train mode when the loss uses it; else, for the accuracy only, in eval
    mode without gradient (no BatchNorm update or dropout draw for a term with weight 0)."""
    if in_loss:
        return net(x)
    with eval_mode(net) as module, torch.no_grad():
        return module(x)


# ---------------------------------------------------------------------- the formulas
def kl_per_sample(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``KL(p_i ‖ q_i) = Σ_k p_ik (log p_ik − log q_ik)`` per row, from log-probabilities."""
    return F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(1)


def weighted_ce(y: torch.Tensor, *terms: tuple[float, torch.Tensor | None]) -> torch.Tensor:
    """``Σ_j w_j·CE(z_j, y) / Σ_j w_j`` over ``terms`` ``(w_j, logits z_j)`` (batch means).

    Terms of weight 0 are skipped (their logits may be ``None``).
    """
    total = sum(w for w, _ in terms)
    out = [w * F.cross_entropy(z, y) for w, z in terms if w > 0 and z is not None]
    return torch.stack(out).sum() / total


def trades_loss(clean: torch.Tensor, adv: torch.Tensor, y: torch.Tensor,
                beta: float) -> torch.Tensor:
    """TRADES (Zhang et al., ICML 2019, Eq. 5) from the logits of ``x`` and ``x′``:

    ``CE(f(x), y) + β·(1/N)·Σ_i KL(p(x_i) ‖ p(x′_i))`` — the reference code's
    ``KLDivLoss(size_average=False)/N``, i.e. ``batchmean``; the gradient flows
    through both ``f(x)`` and ``f(x′)``.
    """
    kl = kl_per_sample(F.log_softmax(clean, 1), F.log_softmax(adv, 1))
    return F.cross_entropy(clean, y) + beta * kl.mean()


def mart_loss(clean: torch.Tensor, adv: torch.Tensor, y: torch.Tensor,
              beta: float) -> torch.Tensor:
    """MART (Wang et al., ICLR 2020, Eqs. 11-13) from the logits of ``x`` and ``x′``:

    ``(1/N)·Σ_i [BCE(p(x′_i), y_i) + β·KL(p(x_i) ‖ p(x′_i))·(1 − p_{y_i}(x_i))]`` with the
    boosted cross-entropy ``BCE(p, y) = −log p_y − log(1 − max_{k≠y} p_k)``. The logs are
    exact (``log(1 − p_k) = logsumexp_{j≠k} z_j − logsumexp_j z_j``), where the reference
    code adds 1e-12 and 1.0001; the weight ``1 − p_y(x)`` is not detached (as there).
    """
    log_adv = F.log_softmax(adv, 1)
    rows = y[:, None]
    top_other = adv.scatter(1, rows, -math.inf).argmax(1, keepdim=True)  # argmax_{k≠y} p_k
    log_not_top = adv.scatter(1, top_other, -math.inf).logsumexp(1) - adv.logsumexp(1)
    bce = -log_adv.gather(1, rows)[:, 0] - log_not_top
    log_clean = F.log_softmax(clean, 1)
    weight = 1 - log_clean.gather(1, rows)[:, 0].exp()
    return (bce + beta * kl_per_sample(log_clean, log_adv) * weight).mean()


# ---------------------------------------------------------------------- inner maximisation
@dataclass(frozen=True)
class SignAscent:
    """The inner maximisation of TRADES, MART and MMAT (module doc).

    ``budget_mm`` ε (the ball of ``norm``, :func:`~skelrobust.attacks.base.project_budget`),
    ``steps``, ``step_mm`` (default ε/4), ``init_std_mm`` σ of the Gaussian start
    (default ε·0.001/0.031; 0: start at ``x``). :meth:`run` maximises a per-sample
    objective of the logits; with ``steps = 0`` it returns the (projected) start.
    """

    budget_mm: float = 10.0
    steps: int = 10
    step_mm: float | None = None
    norm: str = "linf"
    init_std_mm: float | None = None
    who: str = "adversarial training"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "budget_mm", check_option(self.who, "budget_mm", self.budget_mm, POSITIVE))
        set_(self, "steps", check_option(self.who, "steps", self.steps, COUNT))
        step = self.budget_mm / 4 if self.step_mm is None else self.step_mm
        set_(self, "step_mm", check_option(self.who, "step_mm", step, POSITIVE))
        check_option(self.who, "norm", self.norm, choice(*NORMS))
        init = self.budget_mm * INIT_FRACTION if self.init_std_mm is None else self.init_std_mm
        set_(self, "init_std_mm", check_option(self.who, "init_std_mm", init, NON_NEGATIVE))

    @property
    def args(self) -> dict[str, Any]:
        """The resolved options, JSON-able."""
        return {"budget_mm": self.budget_mm, "steps": self.steps, "step_mm": self.step_mm,
                "norm": self.norm, "init_std_mm": self.init_std_mm}

    def run(self, net: nn.Module, x: torch.Tensor, objective: Objective) -> torch.Tensor:
        """``x′ ≈ argmax_{‖x′ − x‖ ≤ ε} Σ_i objective(net(x′))_i``, detached.

        ``objective`` maps logits ``(N, K)`` to per-sample values ``(N,)``. The network
        runs in eval mode (:func:`eval_mode`); the start noise comes from torch's
        global generator (seeded by :func:`~skelrobust.training.fit`).
        """
        x = x.detach()
        eps, alpha = self.budget_mm / 1000.0, float(self.step_mm) / 1000.0
        mask = motion_mask(x)
        sigma = float(self.init_std_mm) / 1000.0
        x_adv = x + project_budget(torch.randn_like(x) * sigma, eps, self.norm) * mask if (
            sigma > 0) else x.clone()
        with eval_mode(net) as module:
            for _ in range(self.steps):
                with torch.enable_grad():
                    xg = x_adv.detach().requires_grad_(True)
                    (grad,) = torch.autograd.grad(objective(module(xg)).sum(), xg)
                moved = x_adv + alpha * steepest(grad * mask, self.norm)
                x_adv = x + project_budget(moved - x, eps, self.norm) * mask
        return project_exact(x_adv.detach(), x, eps, self.norm)


# ---------------------------------------------------------------------- the losses
class AdversarialLoss:
    """Base of the losses: ``loss(net, x, y) -> (loss, clean logits)`` (module doc).

    ``name`` is the defense's registry name; :attr:`args` the resolved options
    (JSON-able), which rebuild the same loss: ``type(loss)(**loss.args)``.
    """

    name: ClassVar[str] = ""

    @property
    def args(self) -> dict[str, Any]:
        raise NotImplementedError

    def __call__(self, net: nn.Module, x: torch.Tensor,
                 y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.args.items())})"

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """The keyword options the constructor takes."""
        params = inspect.signature(cls.__init__).parameters
        return tuple(k for k in params if k != "self")


class SmartAT(AdversarialLoss):
    """SMART adversarial training (Wang et al., CVPR 2021):
    ``L = c·CE(f(x), y) + (1 − c)·CE(f(x′), y)``.

    ``x′`` is the package's SMART attack (:class:`~skelrobust.attacks.smart.SMART`,
    built per batch by ``create_attack("smart", …)``) on the clean labels, goal
    anything-but: the perceptual loss of the ``preset`` (default ``"paper"``), ``steps``
    steps of ``step_mm`` (RMS per coordinate of the clip's step), each sample frozen
    at the first motion the network misclassifies (SMART's early stop: the training
    adversaries are the nearest ones SMART finds), inside an optional hard
    ``budget_mm`` ball of ``norm`` (``None``: the preset's, none for ``"paper"``).
    Defaults for training: 20 steps of the paper's 0.5 mm, inside 10 mm L∞ (the
    budget of TRADES/MART here and of Diao et al.'s skeleton benchmark), instead of
    the attack's 1000 steps. ``clean_weight`` ``c`` in [0, 1] (default 0: Madry-style,
    the network is trained on adversaries only; then the returned clean logits, used
    for the accuracy only, are computed in eval mode without gradient).
    """

    name = "smart-at"

    def __init__(self, steps: int = 20, step_mm: float = 0.5, budget_mm: float | None = 10.0,
                 norm: str = "linf", preset: str = "paper", clean_weight: float = 0.0) -> None:
        from skelrobust.attacks.smart import PRESETS

        who = self.name
        self.steps = check_option(who, "steps", steps, COUNT)
        self.step_mm = check_option(who, "step_mm", step_mm, POSITIVE)
        self.budget_mm = check_option(who, "budget_mm", budget_mm, optional(POSITIVE))
        check_option(who, "norm", norm, choice(*NORMS))
        check_option(who, "preset", preset, choice(*PRESETS))
        self.norm, self.preset = norm, preset
        self.clean_weight = check_option(who, "clean_weight", clean_weight, UNIT)

    @property
    def args(self) -> dict[str, Any]:
        return {"steps": self.steps, "step_mm": self.step_mm, "budget_mm": self.budget_mm,
                "norm": self.norm, "preset": self.preset, "clean_weight": self.clean_weight}

    def adversary(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """SMART's adversarial motions of ``x`` (labels ``y``), detached; ``net`` in eval mode."""
        from skelrobust.attacks.registry import create_attack

        with eval_mode(net) as module:
            attack = create_attack("smart", module, steps=self.steps, step_mm=self.step_mm,
                                   budget_mm=self.budget_mm, norm=self.norm,
                                   preset=self.preset, goal="ab", report=False)
            return attack(x.detach(), y).detach()

    def __call__(self, net: nn.Module, x: torch.Tensor,
                 y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        adv = net(self.adversary(net, x, y)) if self.clean_weight < 1 else None
        clean = clean_logits(net, x, self.clean_weight > 0)
        loss = weighted_ce(y, (self.clean_weight, clean), (1 - self.clean_weight, adv))
        return loss, clean.detach()


class _KLBallLoss(AdversarialLoss):
    """TRADES and MART: ``β`` and a :class:`SignAscent` (shared options and checks)."""

    def __init__(self, beta: float = 6.0, steps: int = 10, step_mm: float | None = None,
                 budget_mm: float = 10.0, norm: str = "linf",
                 init_std_mm: float | None = None) -> None:
        self.beta = check_option(self.name, "beta", beta, NON_NEGATIVE)
        self.ascent = SignAscent(budget_mm, steps, step_mm, norm, init_std_mm, who=self.name)

    @property
    def args(self) -> dict[str, Any]:
        return {"beta": self.beta, **self.ascent.args}

    def objective(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Objective:
        """The per-sample objective the inner maximisation raises."""
        raise NotImplementedError

    def formula(self, clean: torch.Tensor, adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The outer loss from the logits of ``x`` and ``x′``."""
        raise NotImplementedError

    def adversary(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x′``: the inner maximisation of :meth:`objective` from ``x`` (detached)."""
        return self.ascent.run(net, x, self.objective(net, x, y))

    def __call__(self, net: nn.Module, x: torch.Tensor,
                 y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv = self.adversary(net, x, y)
        clean = net(x)
        return self.formula(clean, net(x_adv), y), clean.detach()


class TRADES(_KLBallLoss):
    """TRADES (Zhang et al., ICML 2019): ``L = CE(f(x), y) + β·(1/N)·Σ_i KL(p(x_i) ‖ p(x′_i))``.

    ``x′`` maximises ``KL(p(x) ‖ p(x′))`` (``p(x)`` in eval mode, fixed) by
    :class:`SignAscent` (module doc: Gaussian start, ``steps`` sign steps, projection);
    ``β`` = ``beta`` (default 6, the paper's CIFAR-10 value), :func:`trades_loss`.
    The KL's gradient vanishes at ``x′ = x``: with ``init_std_mm=0`` the search stays at
    ``x`` (the random start is what moves it, as in the reference code).
    """

    name = "trades"

    def objective(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Objective:
        with eval_mode(net) as module, torch.no_grad():
            target = F.log_softmax(module(x.detach()), 1)
        return lambda logits: kl_per_sample(target, F.log_softmax(logits, 1))

    def formula(self, clean: torch.Tensor, adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return trades_loss(clean, adv, y, self.beta)


class MART(_KLBallLoss):
    """MART (Wang et al., ICLR 2020):
    ``L = (1/N)·Σ_i [BCE(p(x′_i), y_i) + β·KL(p(x_i) ‖ p(x′_i))·(1 − p_{y_i}(x_i))]``.

    ``x′`` maximises ``CE(f(x′), y)`` (PGD, by :class:`SignAscent`, with the reference
    code's Gaussian start); ``β`` = ``beta`` (default 6, the reference code's),
    :func:`mart_loss`.
    """

    name = "mart"

    def objective(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Objective:
        return lambda logits: F.cross_entropy(logits, y, reduction="none")

    def formula(self, clean: torch.Tensor, adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mart_loss(clean, adv, y, self.beta)


# ---------------------------------------------------------------------- defended classifiers
class AdversariallyTrained(DefendedClassifier):
    """A classifier fine-tuned by an adversarial-training loss (module doc).

    ``AdversariallyTrained(base, **loss_options)`` holds a deep copy of ``base`` (the
    caller's classifier is never trained); the copy *is* the defended model:
    ``defended_logits(x) = base(x)``. ``args`` holds the loss options (resolved) and
    may hold more (training config, ``trained_from``): :meth:`from_args` passes only
    the loss options to the constructor and keeps the rest.
    """

    freezes_base: ClassVar[bool] = False
    loss_class: ClassVar[type[AdversarialLoss]] = AdversarialLoss

    def __init__(self, base: Classifier, **loss_options: Any) -> None:
        unknown = sorted(set(loss_options) - set(self.loss_class.options()))
        if unknown:
            raise ConfigError(f"{self.defense}: unknown option(s) {unknown}; it takes "
                              f"{list(self.loss_class.options())}")
        loss = self.loss_class(**loss_options)
        copy = trainable_copy(base) if isinstance(base, Classifier) else base
        super().__init__(copy, loss.args)

    def defended_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x)

    def training_loss(self) -> AdversarialLoss:
        """The loss to hand to :func:`~skelrobust.training.fit`, built from :attr:`args`."""
        keys = self.loss_class.options()
        return self.loss_class(**{k: v for k, v in self.args.items() if k in keys})

    def training_objective(self, num_data: int | None = None) -> AdversarialLoss:
        """:meth:`training_loss` under the name :func:`~skelrobust.defenses.training.
        train_defense` asks for (``num_data`` is not needed)."""
        return self.training_loss()

    @classmethod
    def from_args(cls, base: Classifier, args: dict[str, Any]) -> DefendedClassifier:
        keys = cls.loss_class.options()
        defended = cls(base, **{k: v for k, v in args.items() if k in keys})
        defended.args.update({k: v for k, v in args.items() if k not in keys})
        return defended


@register_defense("smart-at")
class SmartATDefense(AdversariallyTrained):
    """SMART adversarial training (Wang et al., CVPR 2021): a base fine-tuned on SMART's
    adversaries (:class:`SmartAT`)."""

    loss_class = SmartAT


@register_defense("trades")
class TRADESDefense(AdversariallyTrained):
    """TRADES (Zhang et al., ICML 2019): a base fine-tuned with the loss :class:`TRADES`."""

    loss_class = TRADES


@register_defense("mart")
class MARTDefense(AdversariallyTrained):
    """MART (Wang et al., ICLR 2020): a base fine-tuned with the MART loss (:class:`MART`)."""

    loss_class = MART


from skelrobust.defenses import mmat as _mmat  # noqa: E402,F401  (registers "mmat")
