"""The attack base class, its result, goals and budgets (torchattacks-shaped).

``atk = SomeAttack(classifier, goal="ab", ...)``; ``x_adv = atk(x, y)`` or
``res = atk.attack(x, y)`` for an :class:`AttackResult`. Every attack:

- works on motion ``(N, 3, T, V, M)`` in metres and never mutates its input;
- runs the classifier in eval mode (restored afterwards) so that a sample's
  result does not depend on the rest of the batch;
- is deterministic under ``seed``: random draws use one generator per sample,
  seeded from ``seed`` and the sample's own bytes, so a sample attacked alone
  or inside any batch sees the same randomness;
- touches only real motion: frames past each clip's length and bodies absent
  from a frame are never perturbed (:func:`motion_mask`);
- accepts tensors or numpy arrays and refuses, with a :class:`ConfigError` or
  :class:`ShapeError` naming the argument, labels outside the classifier's
  classes and clip lengths outside ``[1, T]``;
- shows a progress bar over its steps on stderr when ``atk.progress = True``.

Budgets (:data:`NORMS`, :func:`project_budget`) are in millimetres; the default,
``"joint"``, bounds how far any joint moves.

Goals (see :mod:`skelrobust.metrics`): ``"ab"`` anything-but (untargeted),
``"abn"`` anything-but-N (true class out of the top ``n``), ``"sa"`` specified
target (``target_mode``: ``"given"`` labels, ``"random"`` or ``"least_likely"``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from skelrobust.attacks.oracle import GradientOracle, QueryOracle, as_oracle
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.metrics import GOALS, PerceptualReport, goal_reached, perceptual_report
from skelrobust.progress import progress_bar
from skelrobust.skeleton import Skeleton

__all__ = ["NORMS", "Attack", "AttackResult", "budget_size", "check_norm", "goal_margin",
           "motion_mask", "project_budget"]

TARGET_MODES = ("given", "random", "least_likely")
NORMS = ("joint", "linf", "l2")  # the first is the default of every budget in mm


def motion_mask(x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """``(N, 1, T, 1, M)`` float mask: 1 where frame ``t`` is inside the clip and body present."""
    t = x.shape[2]
    present = (x.abs().sum(dim=(1, 3)) > 0)  # (N, T, M)
    if lengths is not None:
        present = present & (torch.arange(t, device=x.device)[None, :, None]
                             < lengths.to(x.device)[:, None, None])
    return present[:, None, :, None, :].to(x.dtype)


def goal_margin(logits: torch.Tensor, y: torch.Tensor, goal: str, target: torch.Tensor | None,
                n: int = 1) -> torch.Tensor:
    """Per-sample margin that is negative exactly when ``goal`` is reached (minimise it).

    Carlini-Wagner margins on the logits ``z``: AB ``z_y − max_{j≠y} z_j``;
    ABN ``z_y − (n-th largest z_j, j≠y)``; SA ``max_{j≠c} z_j − z_c``.
    """
    big = torch.finfo(logits.dtype).max
    if goal == "sa":
        zt = logits.gather(1, target[:, None])[:, 0]
        others = logits.scatter(1, target[:, None], -big)
        return others.max(1).values - zt
    zy = logits.gather(1, y[:, None])[:, 0]
    others = logits.scatter(1, y[:, None], -big)
    k = 1 if goal == "ab" else n
    return zy - others.topk(k, dim=1).values[:, -1]


def check_norm(norm: str, who: str, allowed: tuple[str, ...] = NORMS) -> str:
    """``norm`` if it is one of ``allowed``, else a :class:`ConfigError` naming them."""
    if norm not in allowed:
        raise ConfigError(f"{who}: norm must be one of {', '.join(map(repr, allowed))}, got "
                          f"{norm!r}")
    return norm


def budget_size(delta: torch.Tensor, norm: str, dim: int = 1) -> torch.Tensor:
    """The sizes a budget of ``norm`` bounds, broadcastable to ``delta``.

    ``|δ|`` per coordinate (``"linf"``); ``‖δ‖₂`` over the xyz axis ``dim`` per joint
    (``"joint"``, that axis kept with size 1); ``‖δ_n‖₂`` per sample (``"l2"``, ``(N, 1, …)``).
    """
    check_norm(norm, "budget_size")
    if norm == "linf":
        return delta.abs()
    if norm == "joint":
        return torch.linalg.vector_norm(delta, dim=dim, keepdim=True)
    size = torch.linalg.vector_norm(delta.flatten(1), dim=1)
    return size.view(-1, *([1] * (delta.dim() - 1)))


def project_budget(delta: torch.Tensor, budget_m: float, norm: str) -> torch.Tensor:
    """Euclidean projection of perturbations ``δ`` ``(N, 3, T, V, M)`` onto the ball of ``norm``.

    - ``"joint"`` (the default of the attacks): no joint moves more than ``ε``,
      ``‖δ_{n,:,t,v,m}‖₂ ≤ ε`` for every sample, frame, joint and body;
      ``δ_{n,:,t,v,m} ← δ_{n,:,t,v,m} · min(1, ε / ‖δ_{n,:,t,v,m}‖₂)``;
    - ``"linf"``: every coordinate, ``|δ_{n,c,t,v,m}| ≤ ε`` (a joint may move ``ε·√3``);
      ``δ ← clip(δ, −ε, ε)``;
    - ``"l2"``: the whole clip, ``‖δ_n‖₂ ≤ ε``; ``δ_n ← δ_n · min(1, ε / ‖δ_n‖₂)``.

    Exact in float32 after adding to ``x``: :func:`~skelrobust.attacks.white_box.project_exact`.
    """
    if norm == "linf":
        return delta.clamp(-budget_m, budget_m)
    size = budget_size(delta, norm).clamp_min(1e-12)
    return delta * (budget_m / size).clamp(max=1.0)


def _labels(answer: torch.Tensor) -> torch.Tensor:
    """Top-1 labels from logits ``(N, K)``; labels ``(N,)`` as they are."""
    return answer if answer.dim() == 1 else answer.argmax(1)


@dataclass
class AttackResult:
    """What an attack did, per sample (tensors ``(N,)`` unless noted)."""

    x_adv: torch.Tensor  # (N, 3, T, V, M) metres
    y: torch.Tensor
    success: torch.Tensor  # bool
    clean_pred: torch.Tensor
    adv_pred: torch.Tensor
    iterations: torch.Tensor  # steps used (until success or the budget of steps)
    queries: torch.Tensor  # forward passes of the classifier spent on the sample
    seconds: float
    goal: str
    n: int = 1
    target: torch.Tensor | None = None
    report: PerceptualReport | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        """Goal reached, % of all samples (a clip misclassified when clean may count)."""
        return 100.0 * float(self.success.float().mean()) if len(self.success) else float("nan")

    @property
    def success_rate_clean_correct(self) -> float:
        """Goal reached, % of the samples the classifier got right when clean (NaN if none)."""
        ok = self.clean_pred.to(self.y.device) == self.y
        return (100.0 * float(self.success[ok].float().mean()) if bool(ok.any())
                else float("nan"))

    def summary(self) -> dict[str, Any]:
        """Success rate, cost and the aggregated perceptual report over *successful* samples."""
        out: dict[str, Any] = {
            "goal": self.goal if self.goal != "abn" else f"abn-{self.n}",
            "samples": len(self.y), "success_rate": self.success_rate,
            "success_rate_clean_correct": self.success_rate_clean_correct,
            "clean_accuracy": 100.0 * float((self.clean_pred == self.y).float().mean()),
            "iterations_mean": float(self.iterations.float().mean()),
            "queries_mean": float(self.queries.float().mean()), "seconds": self.seconds,
        }
        if self.report is not None:
            ok = self.success.cpu().numpy()
            sub = PerceptualReport({k: v[ok] for k, v in self.report.per_sample.items()})
            out["perceptual"] = sub.summary()
        return {**out, **self.info}

    def save_npz(self, path: str, **extra: Any) -> None:
        """Adversarial motion, per-sample outcome and ``extra`` arrays, one ``.npz``, no pickle."""
        arrays = {k: getattr(self, k).detach().cpu().numpy() for k in (
            "x_adv", "y", "success", "clean_pred", "adv_pred", "iterations", "queries")}
        if self.target is not None:
            arrays["target"] = self.target.cpu().numpy()
        if self.report is not None:
            arrays.update({f"report__{k}": v for k, v in self.report.per_sample.items()})
        arrays.update({k: np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v)
                       for k, v in extra.items()})
        np.savez_compressed(path, **arrays)


class Attack:
    """Base class: subclasses implement :meth:`perturb`; the base does the bookkeeping.

    ``victim``: a classifier module or a :class:`~skelrobust.attacks.oracle.QueryOracle`;
    the attack reaches it only through ``self.victim``, an oracle with the access
    the attack declares (``access``: ``"gradient"`` for white-box attacks, ``"label"``
    for label-only ones). The oracle counts the attack's queries per sample; the
    clean and final evaluations are counted apart (``info["bookkeeping_queries"]``).

    The options every attack shares are declared here, once, and every attack
    passes them through (``**options``):

    - ``goal``: ``"ab"`` (anything-but), ``"abn"`` (true class out of the top ``n``) or
      ``"sa"`` (a specified target, chosen by ``target_mode``: ``"given"``, ``"random"`` or
      ``"least_likely"``); ``n``: N of anything-but-N;
    - ``seed``: per-sample random streams (module doc);
    - ``report``: compute the perceptual report of the result;
    - ``confidence``: the margin (in logits; for label-only attacks unused) a sample's
      goal must be reached by before it stops (see :meth:`reached`).

    Budgeted attacks set ``norm`` and ``budget_mm`` (``None``: unbudgeted); every
    result's ``info`` states them. ``progress = True`` shows a bar over the steps.
    """

    name = "attack"
    access = "gradient"  # what the attack needs from its victim (see oracle.ACCESS)
    declares_options = True  # its keywords reach every subclass through **options
    norm: str | None = None
    budget_mm: float | None = None
    progress: bool = False

    def __init__(self, victim: nn.Module | QueryOracle, goal: str = "ab", n: int = 3,
                 target_mode: str = "given", seed: int = 0, report: bool = True,
                 confidence: float = 1e-3, **unexpected: Any) -> None:
        if unexpected:
            raise ConfigError(f"{self.name} takes no argument(s) {sorted(unexpected)}")
        if goal not in GOALS:
            raise ConfigError(f"{self.name}: goal must be one of {GOALS}, got {goal!r}")
        if target_mode not in TARGET_MODES:
            raise ConfigError(f"{self.name}: target_mode must be one of {TARGET_MODES}, got "
                              f"{target_mode!r}")
        self.victim = as_oracle(victim, self.access)
        num_classes = self.victim.num_classes
        if goal == "abn" and not 1 <= n < num_classes:
            raise ConfigError(f"{self.name}: n must be in [1, {num_classes - 1}] for "
                              f"anything-but-N, got {n}")
        self.goal, self.n, self.target_mode = goal, (n if goal == "abn" else 1), target_mode
        self.seed = seed
        self.with_report = report
        if not confidence >= 0:
            raise ConfigError(f"{self.name}: confidence must be >= 0, got {confidence}")
        self.confidence = float(confidence)

    @property
    def classifier(self) -> nn.Module:
        """The victim module (white-box attacks only; a black box has none to give)."""
        module = getattr(self.victim, "module", None)
        if module is None:
            raise AttributeError(f"{self.name}: a {self.victim.access!r}-access victim exposes "
                                 "no classifier")
        return module

    @property
    def skeleton(self) -> Skeleton | None:
        """The victim's skeleton layout (``None`` when it does not say)."""
        return self.victim.skeleton

    @property
    def queries(self) -> torch.Tensor:
        """The attack's queries per sample in the last (or current) run."""
        return self.victim.queries

    # ------------------------------------------------------------------ public API
    def __call__(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None,
                 lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.attack(x, y, target, lengths).x_adv

    def attack(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None,
               lengths: torch.Tensor | None = None) -> AttackResult:
        """Attack a batch; ``target`` for ``goal="sa"`` with ``target_mode="given"``.

        ``x``, ``y``, ``target`` and ``lengths`` may be tensors or numpy arrays.
        """
        if not self.victim.stochastic:
            return self._attack(x, y, target, lengths)
        with torch.random.fork_rng():  # a random victim: repeatable draws under the seed
            torch.manual_seed(self.seed)
            return self._attack(x, y, target, lengths)

    def _attack(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                lengths: torch.Tensor | None) -> AttackResult:
        x, y, lengths = self._check(x, y, lengths)
        t0 = time.perf_counter()
        self.victim.reset(len(y), self.query_budget())
        clean = self.evaluate(x)
        self.clean_labels = _labels(clean).cpu()  # the victim's clean answers, for subclasses
        target = self._resolve_target(clean, y, target, x)
        mask = motion_mask(x, lengths)
        x_adv, iterations = self.perturb(x.clone(), y, target, mask)
        adv, info = self.final_evaluation(x_adv, y, target)
        seconds = time.perf_counter() - t0
        report = None
        if self.with_report and self.skeleton is not None:
            report = perceptual_report(x, x_adv, self.skeleton, lengths)
        bookkeeping = self.victim.bookkeeping_queries.float().mean()
        return AttackResult(
            x_adv=x_adv.detach(), y=y, success=self.goal_reached(adv, y, target),
            clean_pred=_labels(clean), adv_pred=_labels(adv), iterations=iterations,
            queries=self.victim.queries, seconds=seconds, goal=self.goal, n=self.n,
            target=target, report=report,
            info={**self.threat_model(), "bookkeeping_queries": float(bookkeeping), **info})

    def threat_model(self) -> dict[str, Any]:
        """Budget (``norm``, ``budget_mm``) and victim access, merged into results' ``info``."""
        budget = {} if self.norm is None else {"norm": self.norm, "budget_mm": self.budget_mm}
        return {**budget, **self.victim.describe()}

    def query_budget(self) -> int | None:
        """Queries per sample this attack may spend (``None``: as many as its steps take)."""
        return None

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """Bookkeeping evaluation (not counted against the budget): logits, or labels only."""
        with self.victim.bookkeeping(), torch.no_grad():
            if isinstance(self.victim, GradientOracle):
                return self.victim.logits(x)
            if self.victim.access == "scores":
                return self.victim.scores(x)
            return self.victim.label(x)

    def final_evaluation(self, x_adv: torch.Tensor, y: torch.Tensor,
                         target: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, Any]]:
        """The victim's answer for the returned motions and anything to add to ``info``."""
        return self.evaluate(x_adv), {}

    def goal_reached(self, answer: torch.Tensor, y: torch.Tensor,
                     target: torch.Tensor | None) -> torch.Tensor:
        """Goal reached per sample from logits/scores ``(N, K)`` or labels ``(N,)``."""
        if answer.dim() == 2:
            return goal_reached(answer, y, self.goal, target, self.n)
        answer = answer.to(y.device)
        return answer == target if self.goal == "sa" else answer != y

    # ------------------------------------------------------------------ for subclasses
    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(x_adv, iterations per sample)``; ``x`` is a private copy."""
        raise NotImplementedError

    def logits(self, x: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        """The victim's logits (white-box), one query for each sample (or each ``active`` one).

        ``active``: the ``(N_batch,)`` bool mask (or indices) of the samples ``x`` holds.
        """
        return self.victim.logits(x, active)

    def margin(self, logits: torch.Tensor, y: torch.Tensor,
               target: torch.Tensor | None) -> torch.Tensor:
        """:func:`goal_margin` for this attack's goal (negative = reached)."""
        return goal_margin(logits, y, self.goal, target, self.n)

    def reached(self, logits: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:
        """Goal reached with a safety margin of ``confidence`` logits (for early stopping).

        A sample frozen right at the decision boundary could flip back when its
        logits are recomputed in another batch (float rounding differs with the
        batch's shape); the margin keeps "success" stable wherever it is evaluated.
        """
        return self.margin(logits, y, target) < -self.confidence

    def step_bar(self, steps: int, what: str = "steps") -> tqdm:
        """``range(steps)`` in a progress bar on stderr, shown when ``progress`` is on.

        Shown at once (the user asked for it), unless bars are off globally
        (:func:`skelrobust.progress.set_progress`). Use as a context manager
        (``with self.step_bar(n) as bar: for step in bar``) so an early ``break``
        closes it; :meth:`show_goals` adds the goal counts.
        """
        return progress_bar(range(steps), desc=f"{self.name} {what}", unit="step",
                            enabled=self.progress, delay=0)

    @staticmethod
    def show_goals(bar: tqdm, reached: torch.Tensor, frozen: bool = True) -> None:
        """Show on ``bar`` how many samples reached their goal (and, ``frozen``, are active).

        ``reached`` is bool ``(N,)``; costs nothing when the bar is hidden.
        """
        if not bar.disable:
            k, n = int(reached.sum()), len(reached)
            counts = {"reached": f"{k}/{n}", **({"active": n - k} if frozen else {})}
            bar.set_postfix(counts, refresh=False)

    def generators(self, x: torch.Tensor, salt: int = 0) -> list[torch.Generator]:
        """One CPU generator per sample, seeded by ``seed``, ``salt`` and the sample's bytes."""
        data = x.detach().cpu().contiguous().numpy()
        gens = []
        for sample in data:  # once per attack call, not per step
            digest = hashlib.blake2b(sample.tobytes(), digest_size=8,
                                     key=f"{self.seed}:{salt}".encode()).digest()
            gens.append(torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1))
        return gens

    def per_sample_rand(self, x: torch.Tensor, kind: str = "uniform",
                        salt: int = 0) -> torch.Tensor:
        """Noise shaped like ``x`` (uniform in [-1, 1] or standard normal), per-sample seeded."""
        draw = torch.rand if kind == "uniform" else torch.randn
        noise = torch.stack([draw(x.shape[1:], generator=g) for g in self.generators(x, salt)])
        noise = noise * 2 - 1 if kind == "uniform" else noise
        return noise.to(x.device, x.dtype)

    # ------------------------------------------------------------------ internals
    def _check(self, x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray,
               lengths: torch.Tensor | np.ndarray | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Motion as float32, labels and lengths as long tensors, each checked (module doc)."""
        if isinstance(x, np.ndarray):
            x = torch.as_tensor(x, dtype=torch.float32)
        if not isinstance(x, torch.Tensor) or x.dim() != 5 or x.shape[1] != 3:
            raise ShapeError(f"{self.name}: expected motion x of shape (N, 3, T, V, M), got "
                             f"{tuple(x.shape) if hasattr(x, 'shape') else type(x).__name__}")
        if not torch.isfinite(x).all():
            raise ShapeError(f"{self.name}: x holds NaN or infinite coordinates")
        n, t = x.shape[0], x.shape[2]
        y = self._indices(y, "labels y", (n,), x.device, 0, self.victim.num_classes)
        if lengths is not None:
            lengths = self._indices(lengths, "lengths", (n,), x.device, 1, t + 1)
        return x.detach().float(), y, lengths

    def _indices(self, values: torch.Tensor | np.ndarray, what: str, shape: tuple[int, ...],
                 device: torch.device, low: int, high: int | None) -> torch.Tensor:
        """Integer ``values`` of ``shape`` in ``[low, high)`` as a long tensor, or a clear error."""
        v = torch.as_tensor(values, device=device)
        if v.shape != shape:
            raise ShapeError(f"{self.name}: expected {what} of shape {shape}, got "
                             f"{tuple(v.shape)}")
        if v.is_floating_point() and not bool((v == v.round()).all()):
            raise ConfigError(f"{self.name}: {what} must be integers, got "
                              f"{v[v != v.round()][0].item()}")
        v = v.long()
        bad = (v < low) if high is None else (v < low) | (v >= high)
        if bool(bad.any()):
            valid = f">= {low}" if high is None else f"in [{low}, {high - 1}]"
            raise ConfigError(f"{self.name}: {what} must be {valid}, got {int(v[bad][0])} "
                              f"(sample {int(bad.nonzero()[0, 0])})")
        return v

    def _resolve_target(self, clean: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                        x: torch.Tensor) -> torch.Tensor | None:
        if self.goal != "sa":
            return None
        k = self.victim.num_classes
        if self.target_mode == "given":
            if target is None:
                raise ConfigError(f"{self.name}: goal 'sa' with target_mode 'given' needs target")
            return self._indices(target, "target", tuple(y.shape), y.device, 0, k)
        if self.target_mode == "least_likely":
            return clean.argmin(1)
        offsets = torch.stack([torch.randint(1, k, (), generator=g)
                               for g in self.generators(x, salt=7)]).to(y.device)
        return (y + offsets) % k  # uniform over the classes other than y
