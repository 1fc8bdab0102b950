"""The victim interface: every attack reaches what it attacks through one object.

- :class:`QueryOracle` — the only path from a black-box attack to a victim.
  ``access="label"`` answers the top-1 class of each motion; ``access="scores"``
  also answers class probabilities (where the threat model allows). It runs the
  victim without gradient, holds no module, parameter or gradient an attack
  could reach, counts every query per sample and refuses (never silently
  answers) a query past a sample's budget (:class:`~skelrobust.errors.QueryBudgetError`).
  Build one from a :class:`~skelrobust.classifier.Classifier`
  (:meth:`QueryOracle.from_classifier`), any Python function from motion arrays
  to labels or scores (:meth:`QueryOracle.from_callable`) or an ONNX file
  (:meth:`QueryOracle.from_onnx`).
- :class:`GradientOracle` — the white-box victim: the same counting path, plus
  differentiable logits (:meth:`GradientOracle.logits`) for gradient attacks.
- :class:`ExpectationOracle` — EOT (Athalye et al., ICML 2018): a white-box
  victim whose logits are the mean over ``samples`` draws of a stochastic
  classifier, ``E_r[f(x; r)] ≈ (1/S) Σ_s f(x; r_s)``; each call costs ``S`` queries.

Queries are counted per sample of the attacked batch: an attack passes the
``rows`` (indices into its batch) each queried motion belongs to, and may query
a sample several times in one call (repeated rows). Queries made inside
:meth:`QueryOracle.bookkeeping` (the attack base's clean and final evaluations)
are counted apart and do not use the budget.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from skelrobust.errors import ConfigError, QueryBudgetError, ShapeError, VictimError
from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = ["ACCESS", "ANSWERS", "ExpectationOracle", "GradientOracle", "QueryOracle",
           "as_oracle"]

ACCESS = ("label", "scores")  # what a QueryOracle answers; "gradient" is a GradientOracle's
ANSWERS = ("logits", "probabilities", "labels")  # what the wrapped predict function returns
UNBOUNDED = torch.iinfo(torch.long).max


def _rows(rows: torch.Tensor | None, count: int, n: int) -> torch.Tensor:
    """``rows`` as long indices into the attacked batch (bool masks and ``None`` accepted)."""
    if rows is None:
        if count != n:
            raise ShapeError(f"oracle: {count} motions queried without rows for a batch of {n}")
        return torch.arange(n)
    rows = torch.as_tensor(rows).cpu()
    if rows.dtype == torch.bool:
        rows = rows.nonzero()[:, 0]
    rows = rows.long().reshape(-1)
    if len(rows) != count:
        raise ShapeError(f"oracle: {count} motions queried with {len(rows)} rows")
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= n):
        raise ShapeError(f"oracle: rows must be in [0, {n}), got {rows.tolist()[:8]}")
    return rows


def check_budget(budget: Any, what: str = "oracle: budget") -> None:
    """A budget is ``None`` or a positive integer number of queries (not a bool).

    ``what`` names the argument in the error (``"basar: max_queries"``).
    """
    if budget is not None and (isinstance(budget, bool) or not isinstance(
            budget, int | np.integer) or budget < 1):
        raise ConfigError(f"{what} must be a positive number of queries, got {budget!r}")


def _module_fields(classifier: nn.Module) -> dict[str, Any]:
    """What an oracle over a classifier module takes from it (layout, classes, name)."""
    num_classes = getattr(classifier, "num_classes", None)
    if num_classes is None:
        raise ConfigError("oracle: the classifier has no num_classes")
    return {"num_classes": num_classes, "skeleton": getattr(classifier, "skeleton", None),
            "class_names": getattr(classifier, "class_names", None),
            "stochastic": bool(getattr(classifier, "stochastic", False)),
            "name": type(classifier).__name__}


class QueryOracle:
    """Hard labels (or scores) of a victim, counted and budgeted per sample (module doc).

    ``predict`` maps motion ``(N, 3, T, V, M)`` (a float32 tensor, metres) to
    ``answers``: logits or probabilities ``(N, K)``, or labels ``(N,)``. It is kept
    in a closure, never as an attribute. ``budget`` (queries per sample, ``None``:
    unbounded) is the most an attack may spend; an attack may lower it for one
    run (:meth:`reset`). ``stochastic``: the victim may answer a repeated query
    differently (every query still counts).
    """

    def __init__(self, predict: Callable[[torch.Tensor], Any], *, num_classes: int,
                 skeleton: Skeleton | str | None = None, class_names: Sequence[str] | None = None,
                 access: str = "label", budget: int | None = None, answers: str = "logits",
                 stochastic: bool = False, batch_size: int | None = None,
                 name: str = "victim") -> None:
        if access not in ACCESS:
            raise ConfigError(f"oracle: access must be one of {', '.join(map(repr, ACCESS))}, "
                              f"got {access!r}")
        if answers not in ANSWERS:
            raise ConfigError(f"oracle: answers must be one of {ANSWERS}, got {answers!r}")
        if answers == "labels" and access != "label":
            raise ConfigError(f"oracle: a victim that answers labels cannot give access "
                              f"{access!r}")
        if not isinstance(num_classes, int | np.integer) or num_classes < 2:
            raise ConfigError(f"oracle: num_classes must be an integer >= 2, got {num_classes!r}")
        check_budget(budget)
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"oracle: batch_size must be >= 1, got {batch_size}")
        self.access, self.answers, self.name = access, answers, name
        self.num_classes = int(num_classes)
        self.skeleton = None if skeleton is None else get_skeleton(skeleton)
        names = [str(c) for c in class_names] if class_names is not None else [
            str(k) for k in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ConfigError(f"oracle: {len(names)} class names for {self.num_classes} classes")
        self.class_names = names
        self.budget = None if budget is None else int(budget)
        self.stochastic = bool(stochastic)
        self.batch_size = batch_size
        self.cost = 1  # queries one answer costs (EOT: one per draw)
        self._call = self._guard(predict)
        self.victim_seconds = 0.0
        self._counts = torch.zeros(0, dtype=torch.long)
        self._bookkeeping_counts = torch.zeros(0, dtype=torch.long)
        self._limit = UNBOUNDED
        self._in_bookkeeping = False

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_classifier(cls, classifier: nn.Module, access: str = "label",
                        budget: int | None = None, batch_size: int | None = None) -> QueryOracle:
        """Oracle over a classifier (any module mapping motion to logits), run in eval mode."""
        fields = _module_fields(classifier)
        run = _eval_forward(classifier)

        def predict(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return run(x)

        return cls(predict, access=access, budget=budget, answers="logits",
                   batch_size=batch_size, **fields)

    @classmethod
    def from_callable(cls, fn: Callable[[np.ndarray], Any], *, num_classes: int,
                      skeleton: Skeleton | str | None = None,
                      class_names: Sequence[str] | None = None, answers: str = "labels",
                      access: str = "label", budget: int | None = None,
                      stochastic: bool = False, batch_size: int | None = None,
                      name: str | None = None) -> QueryOracle:
        """Oracle over any function from motion ``(N, 3, T, V, M)`` float32 arrays to ``answers``.

        ``fn`` gets numpy arrays and may return numpy arrays, lists or tensors: labels
        ``(N,)`` (``answers="labels"``, the default) or logits/probabilities ``(N, K)``.
        """
        def predict(x: torch.Tensor) -> torch.Tensor:
            out = fn(x.detach().cpu().numpy())
            if isinstance(out, torch.Tensor):
                return out.detach().cpu()
            return torch.as_tensor(np.asarray(out))

        return cls(predict, num_classes=num_classes, skeleton=skeleton, class_names=class_names,
                   access=access, budget=budget, answers=answers, stochastic=stochastic,
                   batch_size=batch_size, name=name or getattr(fn, "__name__", "callable"))

    @classmethod
    def from_onnx(cls, path: str | os.PathLike[str], *, skeleton: Skeleton | str | None = None,
                  class_names: Sequence[str] | None = None, access: str = "label",
                  budget: int | None = None, batch_size: int | None = None,
                  providers: Sequence[str] | None = None) -> QueryOracle:
        """Oracle over an ONNX model run by onnxruntime (the ``onnx`` extra).

        Layout and class names default to those :func:`skelrobust.deploy.export_onnx`
        stores in the file; the model's input shape is checked on every query.
        """
        from skelrobust.deploy import OnnxModel

        model = OnnxModel(path, providers=providers)
        skeleton = skeleton if skeleton is not None else model.layout
        class_names = class_names if class_names is not None else model.class_names
        return cls(model, num_classes=model.num_classes(class_names), skeleton=skeleton,
                   class_names=class_names, access=access, budget=budget, answers="logits",
                   batch_size=batch_size, name=os.fspath(path))

    # ------------------------------------------------------------------ counting
    def reset(self, n: int, budget: int | None = None) -> None:
        """Start counting for a batch of ``n`` samples; ``budget`` lowers the oracle's own."""
        check_budget(budget)
        limits = [b for b in (self.budget, budget) if b is not None]
        self._limit = min(limits) if limits else UNBOUNDED
        self.victim_seconds = 0.0  # wall time inside the victim for the attack's own queries
        self._counts = torch.zeros(n, dtype=torch.long)
        self._bookkeeping_counts = torch.zeros(n, dtype=torch.long)

    @property
    def queries(self) -> torch.Tensor:
        """Queries spent so far on each sample of the batch (bookkeeping apart): ``(N,)`` long."""
        return self._counts.clone()

    @property
    def bookkeeping_queries(self) -> torch.Tensor:
        """Queries of the clean and final evaluations, per sample: ``(N,)`` long."""
        return self._bookkeeping_counts.clone()

    @property
    def limit(self) -> int | None:
        """The per-sample budget of the current run (``None``: unbounded)."""
        return None if self._limit == UNBOUNDED else self._limit

    def remaining(self) -> torch.Tensor:
        """Queries each sample may still spend: ``(N,)`` long (huge when unbounded)."""
        return (self._limit - self._counts).clamp_min(0) if self._limit != UNBOUNDED else \
            torch.full_like(self._counts, UNBOUNDED)

    def answers_left(self) -> torch.Tensor:
        """Answers each sample can still pay for (EOT: a query per draw): ``(N,)`` long."""
        return self.remaining() // self.cost

    def affords(self, answers: int = 1) -> torch.Tensor:
        """``(N,)`` bool: samples that can still pay for ``answers`` more answers."""
        return self.answers_left() >= answers

    def exhausted(self) -> torch.Tensor:
        """``(N,)`` bool: samples that cannot afford another query."""
        return ~self.affords(1)

    @contextlib.contextmanager
    def bookkeeping(self) -> Iterator[None]:
        """Queries made inside are the attack base's evaluations: counted apart, no budget."""
        previous, self._in_bookkeeping = self._in_bookkeeping, True
        try:
            yield
        finally:
            self._in_bookkeeping = previous

    def describe(self) -> dict[str, Any]:
        """The threat model in a result's ``info``: access, budget, victim."""
        return {"access": self.access, "query_budget": self.limit, "victim": self.name,
                "stochastic_victim": self.stochastic}

    # ------------------------------------------------------------------ queries
    def label(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Top-1 class of each motion ``x`` ``(k, 3, T, V, M)``: ``(k,)`` long; one query each."""
        out = self._answer(x, rows)
        return out if out.dim() == 1 else out.argmax(1)

    def scores(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Class probabilities ``(k, K)`` (``access="scores"`` only); one query each."""
        if self.access != "scores":
            raise ConfigError(f"oracle: {self.name} answers labels only (access 'label'); "
                              "scores need access 'scores'")
        out = self._answer(x, rows)
        return out if self.answers == "probabilities" else F.softmax(out.float(), dim=1)

    def _answer(self, x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        x = self._check_motion(x)
        if len(self._counts) == 0 and rows is None:  # a fresh oracle counts from its first query
            self.reset(len(x))
        rows = _rows(rows, len(x), len(self._counts))
        per_row = torch.zeros_like(self._counts).index_add_(
            0, rows, torch.full_like(rows, self.cost))
        if not self._in_bookkeeping:
            over = (self._counts + per_row > self._limit) & (per_row > 0)
            if bool(over.any()):
                i = int(over.nonzero()[0, 0])
                raise QueryBudgetError(
                    f"oracle: sample {i} has spent {int(self._counts[i])} of its {self._limit} "
                    f"queries; {int(per_row[i])} more refused")
            self._counts += per_row
        else:
            self._bookkeeping_counts += per_row
        if len(x) == 0:
            return torch.zeros((0, self.num_classes), dtype=torch.float32)
        step = self.batch_size or len(x)
        t0 = time.perf_counter()
        try:
            outs = [self._check_answer(self._call(x[i:i + step]), len(x[i:i + step]))
                    for i in range(0, len(x), step)]
        finally:
            if not self._in_bookkeeping:
                self.victim_seconds += time.perf_counter() - t0
        return torch.cat(outs) if len(outs) > 1 else outs[0]

    def _guard(self, predict: Callable[[torch.Tensor], Any]) -> Callable[[torch.Tensor], Any]:
        """``predict`` with its failures turned into :class:`VictimError` naming the victim."""
        def call(x: torch.Tensor) -> Any:
            try:
                return predict(x)
            except (QueryBudgetError, VictimError, ShapeError):
                raise
            except Exception as err:  # the victim's own failure, whatever it is
                raise VictimError(f"victim {self.name} failed on a query: "
                                  f"{type(err).__name__}: {err}") from err
        return call

    def _check_motion(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 5 or x.shape[1] != 3:
            raise ShapeError(f"oracle: expected motion (N, 3, T, V, M), got "
                             f"{tuple(getattr(x, 'shape', ()))}")
        if self.skeleton is not None and x.shape[3] != self.skeleton.num_joints:
            raise ShapeError(f"oracle: {self.name} expects {self.skeleton.num_joints} joints "
                             f"({self.skeleton.name}), got {x.shape[3]}")
        return x

    def _check_answer(self, out: Any, count: int) -> torch.Tensor:
        out = torch.as_tensor(out)
        if self.answers == "labels":
            if out.shape != (count,):
                raise VictimError(f"victim {self.name} answered shape {tuple(out.shape)} for "
                                  f"{count} motions; expected labels ({count},)")
            if out.is_floating_point() and not bool((out == out.round()).all()):
                raise VictimError(f"victim {self.name} answered non-integer labels")
            out = out.long()
            bad = (out < 0) | (out >= self.num_classes)
            if bool(bad.any()):
                raise VictimError(f"victim {self.name} answered label {int(out[bad][0])}, "
                                  f"outside the {self.num_classes} classes [0, "
                                  f"{self.num_classes - 1}]")
            return out
        if out.shape != (count, self.num_classes):
            raise VictimError(f"victim {self.name} answered shape {tuple(out.shape)} for "
                              f"{count} motions; expected ({count}, {self.num_classes})")
        if not out.requires_grad and not bool(torch.isfinite(out).all()):
            raise VictimError(f"victim {self.name} answered NaN or infinite scores")
        return out


class GradientOracle(QueryOracle):
    """White-box victim: a classifier's logits with their input gradient, counted like queries.

    ``module`` is the classifier itself (white-box attacks may read it); it runs in
    eval mode for every call and its mode is restored afterwards.
    """

    def __init__(self, classifier: nn.Module, budget: int | None = None,
                 batch_size: int | None = None) -> None:
        fields = _module_fields(classifier)
        self.module = classifier
        self._run = _eval_forward(classifier)
        super().__init__(self._run, access="scores", budget=budget, answers="logits",
                         batch_size=batch_size, **fields)
        self.access = "gradient"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "access": "gradient"}

    def logits(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(k, K)`` of ``x``, differentiable in ``x``; one query per row."""
        return self._answer(x, rows)

    def label(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.logits(x, rows).argmax(1)

    def scores(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            return F.softmax(self.logits(x, rows).float(), dim=1)


class ExpectationOracle(GradientOracle):
    """EOT victim: logits averaged over ``samples`` draws of a stochastic classifier (module doc).

    The expectation is the victim an attack on a randomised classifier should
    follow; its gradient is the mean of the per-draw gradients of the logits.
    Every call costs ``samples`` queries per row.
    """

    def __init__(self, victim: GradientOracle | nn.Module, samples: int = 8) -> None:
        if samples < 1:
            raise ConfigError(f"eot: samples must be >= 1, got {samples}")
        module = victim.module if isinstance(victim, GradientOracle) else victim
        base_budget = victim.budget if isinstance(victim, GradientOracle) else None
        super().__init__(module, budget=base_budget)
        self.samples = int(samples)
        self.cost = self.samples
        run = self._run

        def expected(x: torch.Tensor) -> torch.Tensor:
            total = run(x)
            for _ in range(self.samples - 1):
                total = total + run(x)
            return total / self.samples

        self._call = self._guard(expected)
        self.name = f"E[{self.name}]"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "eot_samples": self.samples}


def as_oracle(victim: Any, access: str) -> QueryOracle:
    """The oracle an attack that needs ``access`` (``"gradient"``, ``"scores"``, ``"label"``) uses.

    A :class:`QueryOracle` is used as given (a gradient attack needs a
    :class:`GradientOracle`, a score attack access ``"scores"``); a classifier module
    is wrapped with exactly the access the attack needs. A classifier that declares
    itself ``stochastic`` gets, for a gradient attack, an :class:`ExpectationOracle`
    over its ``eot_samples`` draws (8 when it does not say): attacks on randomised
    defenses use EOT by default, as AutoAttack's ``rand`` version does.
    """
    if isinstance(victim, QueryOracle):
        if access == "gradient" and not isinstance(victim, GradientOracle):
            raise ConfigError(f"this attack needs the victim's gradients; {victim.name} is a "
                              f"black box (access {victim.access!r}): use a label-only attack "
                              "such as basar or hsja")
        if access == "scores" and victim.access == "label":
            raise ConfigError(f"this attack needs scores; {victim.name} answers labels only")
        return victim
    if not isinstance(victim, nn.Module):
        raise ConfigError(f"expected a classifier module or a QueryOracle as the victim, got "
                          f"{type(victim).__name__}")
    if access == "gradient":
        if getattr(victim, "stochastic", False):  # a random classifier: EOT by default
            return ExpectationOracle(victim, int(getattr(victim, "eot_samples", 8)))
        return GradientOracle(victim)
    return QueryOracle.from_classifier(victim, access=access)


def _eval_forward(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module(x)`` in eval mode, its previous mode restored afterwards."""
    def run(x: torch.Tensor) -> torch.Tensor:
        was_training = module.training
        module.eval()
        try:
            return module(x)
        finally:
            module.train(was_training)
    return run
