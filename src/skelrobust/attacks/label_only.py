"""Hard-label (decision-based) attacks: their base, which sees a :class:`QueryOracle` only.

A :class:`LabelOnlyAttack` asks its victim only "which class is this motion?",
through :attr:`~skelrobust.attacks.base.Attack.victim` (a label-access
:class:`~skelrobust.attacks.oracle.QueryOracle`; a classifier module given as the
victim is wrapped so). The base gives such attacks:

- the per-sample query budget ``max_queries`` (the oracle refuses a query past it);
- the goal as a yes/no question (:meth:`LabelOnlyAttack.adversarial`): AB "not the
  true class", SA "the target class"; goals that need scores (anything-but-N,
  least-likely targets) are refused when the attack is built;
- starting points from a ``pool`` of clips the attacker holds (e.g. training clips
  with their labels; :meth:`LabelOnlyAttack.start_from_pool`);
- the best adversarial motion found so far of every sample
  (:meth:`LabelOnlyAttack.accept`), which is what the attack returns — also when the
  victim fails mid-attack (:class:`~skelrobust.errors.VictimError`): the result then
  says so in ``info["victim_error"]`` and keeps everything found;
- a progress bar over the mean queries spent (:meth:`LabelOnlyAttack.query_bar`).

Stochastic victims: an accepted step is one the victim answered adversarial at
the time; the final (bookkeeping) evaluation, not the attack, decides success, so a
motion that was adversarial once but not at the end counts as a failure
(``info["found_adversarial"]`` gives how many the attack believed adversarial).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from skelrobust.attacks.base import Attack
from skelrobust.attacks.oracle import QueryOracle, check_budget
from skelrobust.errors import ConfigError, ShapeError, VictimError
from skelrobust.progress import progress_bar

__all__ = ["LabelOnlyAttack", "Pool"]

Pool = tuple[Any, Any] | tuple[Any, Any, Any]  # (x, y) or (x, y, lengths); or a SkeletonDataset


class LabelOnlyAttack(Attack):
    """Base of label-only attacks (module doc).

    - ``max_queries``: queries per sample (the attack's own; the clean and final
      evaluations are bookkeeping), ``> 0``.
    - ``pool``: clips the attacker holds, ``(x, y)``, ``(x, y, lengths)`` or a
      :class:`~skelrobust.data.dataset.SkeletonDataset`, shaped like the attacked motion.
    - ``init_tries``: pool clips tried per sample before it is given up.
    - ``snapshot_queries``: query counts at which to keep each sample's best motion so far
      (:attr:`snapshots`: ``{q: (x_best, found)}``, the result of the same run stopped
      after ``q`` queries; for anytime curves over budgets from one run).
    - ``**options``: the shared options of :class:`~skelrobust.attacks.base.Attack`.
    """

    name = "label-only"
    access = "label"
    declares_options = True  # its keywords reach every subclass through **options

    def __init__(self, victim: nn.Module | QueryOracle, max_queries: int = 1000,
                 pool: Any = None, init_tries: int = 100,
                 snapshot_queries: Sequence[int] = (), **options: Any) -> None:
        super().__init__(victim, **options)
        if self.goal == "abn":
            raise ConfigError(f"{self.name} sees labels only: anything-but-N needs the victim's "
                              "scores; use goal 'ab' or 'sa'")
        if self.goal == "sa" and self.target_mode == "least_likely":
            raise ConfigError(f"{self.name} sees labels only: target_mode 'least_likely' needs "
                              "the victim's scores; use 'given' or 'random'")
        check_budget(max_queries, f"{self.name}: max_queries")
        if init_tries < 1:
            raise ConfigError(f"{self.name}: init_tries must be >= 1, got {init_tries}")
        self.max_queries, self.init_tries = int(max_queries), int(init_tries)
        if any(int(q) < 1 for q in snapshot_queries):
            raise ConfigError(f"{self.name}: snapshot_queries must be positive, got "
                              f"{list(snapshot_queries)}")
        self.snapshot_queries = tuple(sorted({int(q) for q in snapshot_queries}))
        self.pool = None if pool is None else self._check_pool(pool)
        self._reset_state(torch.zeros(0, 3, 1, 1, 1))

    # ------------------------------------------------------------------ budget and goal
    def query_budget(self) -> int:
        return self.max_queries

    def adversarial(self, x: torch.Tensor, rows: torch.Tensor, y: torch.Tensor,
                    target: torch.Tensor | None) -> torch.Tensor:
        """Ask the victim whether each motion ``x[k]`` reaches sample ``rows[k]``'s goal.

        ``y`` and ``target`` are the whole batch's; one query per motion. The labels the
        victim answered are kept in :attr:`last_labels` (one per motion).
        """
        self._snapshot_before(torch.as_tensor(rows).cpu().long())
        label = self.victim.label(x, rows).to(y.device)
        rows = torch.as_tensor(rows, device=y.device)
        self._last_label[rows.cpu()] = label.cpu()
        self.last_labels = label.cpu()  # this call's answers, one per motion
        return self.goal_reached(label, y[rows], None if target is None else target[rows])

    def affordable(self, cost: int = 1) -> torch.Tensor:
        """``(N,)`` bool: samples that can still pay ``cost`` queries."""
        return self.victim.affords(cost)

    # ------------------------------------------------------------------ best so far
    def _reset_state(self, x: torch.Tensor) -> None:
        n = len(x)
        self.best = x.clone()
        self.best_distance = torch.full((n,), float("inf"), dtype=torch.float64)
        self.found = torch.zeros(n, dtype=torch.bool)
        self.best_label = torch.full((n,), -1, dtype=torch.long)
        self._last_label = torch.full((n,), -1, dtype=torch.long)
        self.steps_taken = torch.zeros(n, dtype=torch.long)
        self._failure: VictimError | None = None
        self.snapshots: dict[int, tuple[torch.Tensor, torch.Tensor]] = {
            q: (x.clone(), torch.zeros(n, dtype=torch.bool)) for q in self.snapshot_queries}
        self._snapped = {q: torch.zeros(n, dtype=torch.bool) for q in self.snapshot_queries}

    def _snapshot_before(self, rows: torch.Tensor) -> None:
        """Keep the best motion of samples whose next queries take them past a snapshot count."""
        if not self.snapshot_queries:
            return
        before = self.victim.queries
        after = before + torch.bincount(rows, minlength=len(before)) * self.victim.cost
        for q in self.snapshot_queries:
            cross = (after > q) & ~self._snapped[q]
            if bool(cross.any()):
                self._snap(q, cross)

    def _snap(self, q: int, which: torch.Tensor) -> None:
        best, found = self.snapshots[q]
        best[which.to(best.device)] = self.best[which.to(self.best.device)]
        found[which] = self.found[which]
        self._snapped[q] |= which

    def distance(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``‖x_adv − x‖₂`` per sample in metres (float64) — what the best motion minimises."""
        return torch.linalg.vector_norm((x_adv.double() - x.double()).flatten(1), dim=1)

    def accept(self, rows: torch.Tensor, x_adv: torch.Tensor, x: torch.Tensor,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """Record adversarial motions ``x_adv`` of samples ``rows`` (clean ``x`` of those rows).

        A motion replaces a sample's best when it is closer to the clean motion;
        returns the ``(k,)`` bool of those kept. ``labels``: the victim's answers for
        ``x_adv`` (default: each row's last answer, right when ``x_adv`` was queried last).
        """
        rows = torch.as_tensor(rows).cpu().long()
        d = self.distance(x_adv, x).cpu()
        better = d < self.best_distance[rows]
        if bool(better.any()):
            r = rows[better]
            self.best[r.to(self.best.device)] = x_adv[better.to(x_adv.device)].detach().to(
                self.best.dtype)
            self.best_distance[r] = d[better]
            self.found[r] = True
            self.best_label[r] = (self._last_label[r] if labels is None
                                  else torch.as_tensor(labels).cpu().long()[better])
        return better

    # ------------------------------------------------------------------ the attack
    def search(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
               mask: torch.Tensor) -> None:
        """Subclasses: find adversarial motions, recording them with :meth:`accept`.

        Count steps in :attr:`steps_taken`; stop each sample at its budget
        (:meth:`affordable`).
        """
        raise NotImplementedError

    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._reset_state(x)
        try:
            self.search(x, y, target, mask)
        except VictimError as err:  # keep everything found so far
            self._failure = err
        for q in self.snapshot_queries:  # samples that stopped before q queries: their final best
            self._snap(q, ~self._snapped[q])
        return self.best.clone(), self.steps_taken.clone()

    def final_evaluation(self, x_adv: torch.Tensor, y: torch.Tensor,
                         target: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, Any]]:
        info: dict[str, Any] = {"found_adversarial": int(self.found.sum())}
        if self._failure is None:
            try:
                return self.evaluate(x_adv), info
            except VictimError as err:
                self._failure = err
        # the victim cannot be asked again: report what its last answers said
        labels = torch.where(self.found, self.best_label, self.clean_labels).to(y.device)
        return labels, {**info, "victim_error": str(self._failure)}

    def keep_already_adversarial(self, x: torch.Tensor, y: torch.Tensor,
                                 target: torch.Tensor | None) -> torch.Tensor:
        """``(N,)`` bool: samples whose clean motion already reaches the goal (by the clean
        evaluation), recorded as their own best with no query; attacks leave them alone."""
        hit = self.goal_reached(self.clean_labels.to(y.device), y, target)
        rows = hit.cpu().nonzero()[:, 0]
        if len(rows):
            r = rows.to(x.device)
            self.accept(rows, x[r], x[r], labels=self.clean_labels[rows])
        return hit.cpu()

    @contextmanager
    def query_bar(self) -> Iterator[tqdm]:
        """A progress bar over the mean queries spent per sample (shown when ``progress``)."""
        bar = progress_bar(None, desc=f"{self.name} queries", total=self.max_queries,
                           unit="query", enabled=self.progress, delay=0)
        try:
            yield bar
        finally:
            bar.close()

    def update_bar(self, bar: tqdm) -> None:
        """Move ``bar`` to the mean queries spent and show how many samples are adversarial."""
        if bar.disable:
            return
        spent = int(self.victim.queries.float().mean())
        bar.update(max(0, spent - bar.n))
        self.show_goals(bar, self.found, frozen=False)

    # ------------------------------------------------------------------ starting points
    def _check_pool(self, pool: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if hasattr(pool, "x") and hasattr(pool, "y"):  # a SkeletonDataset
            pool = (pool.x, pool.y, getattr(pool, "lengths", None))
        if not isinstance(pool, tuple | list) or len(pool) not in (2, 3):
            raise ConfigError(f"{self.name}: pool must be (x, y), (x, y, lengths) or a dataset, "
                              f"got {type(pool).__name__}")
        px = torch.as_tensor(np.asarray(pool[0]) if not isinstance(pool[0], torch.Tensor)
                             else pool[0]).float()
        py = torch.as_tensor(np.asarray(pool[1]) if not isinstance(pool[1], torch.Tensor)
                             else pool[1]).long()
        if px.dim() != 5 or px.shape[1] != 3 or py.shape != px.shape[:1] or len(px) == 0:
            raise ShapeError(f"{self.name}: pool motion must be (P, 3, T, V, M) with P labels, "
                             f"got {tuple(px.shape)} and {tuple(py.shape)}")
        if not bool(torch.isfinite(px).all()):
            raise ShapeError(f"{self.name}: the pool holds NaN or infinite coordinates")
        k = self.victim.num_classes
        if bool(((py < 0) | (py >= k)).any()):
            raise ConfigError(f"{self.name}: pool labels must be in [0, {k - 1}]")
        lengths = None if len(pool) < 3 or pool[2] is None else torch.as_tensor(
            np.asarray(pool[2])).long()
        return px, py, lengths

    def start_from_pool(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                        mask: torch.Tensor, active: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """A starting adversarial motion per sample: a pool clip the victim answers adversarial.

        Candidates per sample, in a seeded order: pool clips labelled the target (SA)
        or another class than the true one (AB) first, then the rest of the pool;
        one is queried per sample per round, at most ``init_tries`` per sample. The
        clip is laid over the sample's own frames (``x + mask·(x_pool − x)``: padding
        frames and absent bodies stay as they are). ``active``: ``(N,)`` bool of the samples
        to start (default all; the others are neither checked nor queried). Returns
        ``(x_start, ok)``.
        """
        if self.pool is None:
            raise ConfigError(f"{self.name}: needs a pool of clips to start from (pool=(x, y))")
        px, py, _ = self.pool
        if px.shape[1:] != x.shape[1:]:
            raise ShapeError(f"{self.name}: pool clips have shape {tuple(px.shape[1:])}, the "
                             f"attacked motion {tuple(x.shape[1:])}; load both alike")
        want = target if self.goal == "sa" else y
        active = torch.ones(len(x), dtype=torch.bool) if active is None else \
            torch.as_tensor(active).cpu().bool()
        for i in active.nonzero()[:, 0].tolist():  # checked before any query
            good = (py == want[i]) if self.goal == "sa" else (py != want[i])
            if not bool(good.any()):
                kind = (f"of class {int(want[i])} (the target of sample {i})" if self.goal == "sa"
                        else f"of a class other than {int(want[i])} (sample {i}'s)")
                raise ConfigError(f"{self.name}: the pool holds no clip {kind}; pool classes: "
                                  f"{sorted(set(py.tolist()))}")
        order = self._candidate_order(x, py, want)  # (N, P)
        start = x.clone()
        ok = torch.zeros(len(x), dtype=torch.bool)
        tries = min(self.init_tries, order.shape[1])
        for k in range(tries):
            rows = (~ok & active & self.affordable()).nonzero()[:, 0]
            if len(rows) == 0:
                break
            cand = x[rows] + mask[rows] * (px[order[rows, k]].to(x.device) - x[rows])
            hit = self.adversarial(cand, rows, y, target).cpu()
            start[rows[hit]] = cand[hit]
            ok[rows[hit]] = True
        return start, ok

    def _candidate_order(self, x: torch.Tensor, py: torch.Tensor,
                         want: torch.Tensor) -> torch.Tensor:
        """``(N, P)`` pool indices per sample: preferred clips first, each part shuffled."""
        out = []
        for g, w in zip(self.generators(x, salt=11), want.cpu()):
            perm = torch.randperm(len(py), generator=g)
            pref = (py[perm] == w) if self.goal == "sa" else (py[perm] != w)
            out.append(torch.cat([perm[pref], perm[~pref]]))
        return torch.stack(out)
