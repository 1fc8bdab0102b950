"""HopSkipJumpAttack (Chen, Jordan & Wainwright, "HopSkipJumpAttack: A Query-Efficient
Decision-Based Attack", IEEE S&P 2020), the L2 version: the generic hard-label baseline.

It sees a label-access :class:`~skelrobust.attacks.oracle.QueryOracle` only and knows
nothing of skeletons (no bones, joints or frames): motion is a vector of
``d = 3·V·(real frames × present bodies)`` coordinates, so benchmark tables show
what skeleton-aware label-only attacks (BASAR) gain over it. Let ``x*`` be the
clean motion and ``φ(x) = 1`` when the victim's label reaches the goal (AB: not the
true class; SA: the target class). Per sample:

1. **Start** from an adversarial motion ``x̃₀``: a pool clip of the target class
   (SA) or of another class (AB, when a ``pool`` is given), else (AB) the real
   coordinates replaced by uniform noise ``U[lo_c, hi_c]`` in the bounding box of the
   sample's own real motion on each xyz axis ``c`` — at most ``init_tries`` tries.
   A sample whose clean motion already reaches the goal (at the clean evaluation)
   is returned as it is, with no query.
2. **Binary search** on the blend ``x(α) = (1 − α)·x* + α·x̃``, ``α ∈ [0, 1]``,
   keeping ``φ(x(α_high)) = 1``, until ``α_high − α_low ≤ θ`` with
   ``θ = γ·d^(−3/2)``; ``x_t = x(α_high)``, ``d_t = ‖x_t − x*‖₂``.
3. **Gradient direction at the boundary** from ``B_t = min(⌊B₀·√t⌋, B_max)`` sign
   queries: ``u_b`` uniform on the unit sphere of the real motion,
   ``∇S ≈ (1/B)·Σ_b (φ(x_t + δ_t·u_b) − φ̄)·u_b`` with the baseline
   ``φ̄ = (1/B)·Σ_b φ_b`` (``φ`` in ``{−1, +1}``; when every ``φ_b`` agrees,
   ``±(1/B)·Σ_b u_b``), normalised to ``v_t = ∇S / ‖∇S‖₂``. Probe radius
   ``δ_t = √d·θ·d_{t−1}`` (``t > 1``), ``δ_1 = 0.1·R`` with ``R`` the spread of the
   sample's real coordinates (the authors' code: 0.1 of the input range).
4. **Geometric step size**: ``ξ_t = d_t / √t``, halved until
   ``φ(x_t + ξ_t·v_t) = 1``.
5. **Binary search** (2.) between ``x*`` and ``x_t + ξ_t·v_t`` gives ``x_{t+1}``.

Deviations from the paper, all forced by budgets or the data: every sample stops
at its query budget (a sample that cannot pay for ``B_t`` probes plus one
step and one full binary search estimates from fewer probes; one that cannot pay
for a probe, a step and a binary search stops); the step-size search gives up
(no step, ``x_t`` kept) once ``ξ_t < θ·d_t``, the binary search's resolution,
where the paper halves forever; the two binary searches of the authors'
initialisation (a coarse one to 0.001, then to ``θ``) are one search to ``θ``.
Motion has no box constraint, so nothing is clipped (the paper clips to the
image range). Only real motion moves: every random direction is multiplied by
the motion mask, so padding frames and absent bodies stay as they are.
Probes are float32 like the motion: on very long clips ``δ_t`` per coordinate
nears float32 resolution, as on ImageNet in the paper.

The best adversarial motion so far (smallest ``‖x − x*‖₂``) is what the attack
returns (:meth:`~skelrobust.attacks.label_only.LabelOnlyAttack.accept`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from skelrobust.attacks.label_only import LabelOnlyAttack
from skelrobust.attacks.oracle import QueryOracle
from skelrobust.attacks.registry import register_attack
from skelrobust.attacks.white_box import sample_view, unit
from skelrobust.errors import ConfigError

__all__ = ["HopSkipJump"]

_INIT_SALT, _PROBE_SALT = 31, 37  # per-sample random streams: start noise, probe directions
PROBE_ELEMENTS = 1 << 21  # coordinates of random directions one sample draws at a time
CALL_ELEMENTS = 1 << 24  # coordinates of probes sent to the victim in one call


def _blend(x: torch.Tensor, far: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``(1 − α)·x + α·far`` per sample, in float64, rounded once (``α = 1`` gives ``far``)."""
    x64 = x.double()
    return (x64 + sample_view(alpha.to(x.device), x) * (far.double() - x64)).to(x.dtype)


@register_attack("hsja", "hopskipjump")
class HopSkipJump(LabelOnlyAttack):
    """HopSkipJumpAttack (L2; Chen et al., S&P 2020): the generic hard-label baseline.

    The algorithm, its equations and deviations are in the module doc.
    Parameters (P: the paper's value; O: ours):

    - ``init_evals`` B₀ = 100 (P): gradient-estimation queries at iteration 1,
      ``⌊B₀·√t⌋`` at iteration ``t``;
    - ``max_evals`` = 10000 (P): the cap on them;
    - ``gamma`` γ = 1.0 (P): ``θ = γ·d^(−3/2)``, the binary-search threshold and the
      scale of the probe radius ``δ_t = √d·θ·d_{t−1}``;
    - ``boundary_tol`` = ``None`` (O): the binary search's stopping width on the
      blend factor; ``None`` is ``θ`` (P), a larger value saves queries per step;
    - ``init_delta`` = 0.1 (P, the authors' code): ``δ_1`` as a fraction of the
      spread of the sample's real coordinates;
    - ``max_iterations`` = ``None`` (O): stop after this many iterations (``None``:
      only the query budget stops a sample);
    - ``max_queries``, ``pool``, ``init_tries`` and the shared options (``goal``
      ``"ab"`` or ``"sa"``, ``target_mode``, ``seed``, ...) as
      :class:`~skelrobust.attacks.label_only.LabelOnlyAttack`. Targeted attacks
      (``goal="sa"``) need a ``pool`` holding clips of the target classes.
    """

    name = "hsja"

    def __init__(self, victim: nn.Module | QueryOracle, init_evals: int = 100,
                 max_evals: int = 10000, gamma: float = 1.0, boundary_tol: float | None = None,
                 init_delta: float = 0.1, max_iterations: int | None = None,
                 **options: Any) -> None:
        super().__init__(victim, **options)
        for key, value in (("init_evals", init_evals), ("max_evals", max_evals)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{self.name}: {key} must be a positive integer, got {value!r}")
        if max_evals < init_evals:
            raise ConfigError(f"{self.name}: max_evals ({max_evals}) must be >= init_evals "
                              f"({init_evals})")
        if not gamma > 0:
            raise ConfigError(f"{self.name}: gamma must be > 0, got {gamma}")
        if boundary_tol is not None and not 0 < boundary_tol < 1:
            raise ConfigError(f"{self.name}: boundary_tol must be in (0, 1), got {boundary_tol}")
        if not init_delta > 0:
            raise ConfigError(f"{self.name}: init_delta must be > 0, got {init_delta}")
        if max_iterations is not None and (isinstance(max_iterations, bool)
                                           or not isinstance(max_iterations, int)
                                           or max_iterations < 1):
            raise ConfigError(f"{self.name}: max_iterations must be a positive integer or None, "
                              f"got {max_iterations!r}")
        if self.goal == "sa" and self.pool is None:
            raise ConfigError(f"{self.name}: a targeted attack (goal 'sa') starts from a clip of "
                              "the target class: give a pool=(x, y) of clips")
        self.init_evals, self.max_evals = int(init_evals), int(max_evals)
        self.gamma, self.boundary_tol = float(gamma), boundary_tol
        self.init_delta, self.max_iterations = float(init_delta), max_iterations

    # ------------------------------------------------------------------ the attack
    def search(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
               mask: torch.Tensor) -> None:
        n = len(x)
        real = mask.expand_as(x) > 0
        d = real.flatten(1).sum(1).double().cpu()  # dimension of each sample's real motion
        movable = d > 0
        theta = self.gamma * d.clamp_min(1).pow(-1.5)
        tol = theta if self.boundary_tol is None else torch.full_like(theta, self.boundary_tol)
        reserve = torch.ceil(torch.log2(1 / tol)).long() + 1  # one step + one binary search
        still = ~movable[:, None].to(x.device)
        lo = x.masked_fill(~real, math.inf).amin(dim=(2, 3, 4)).masked_fill(still, 0)
        hi = x.masked_fill(~real, -math.inf).amax(dim=(2, 3, 4)).masked_fill(still, 0)
        spread = (hi - lo).amax(1).double().cpu().clamp_min(1e-3)

        with self.query_bar() as bar:
            done = self.keep_already_adversarial(x, y, target)
            start, ok = self._start(x, y, target, mask, movable & ~done, lo, hi)
            cur, dist = x.clone(), torch.full((n,), math.inf, dtype=torch.float64)
            rows = ok.nonzero()[:, 0]
            if len(rows):
                self._to_boundary(x, start[rows.to(x.device)], rows, y, target, tol, cur, dist)
            self.update_bar(bar)
            t = torch.ones(n, dtype=torch.long)
            gens = self.generators(x, salt=_PROBE_SALT)
            live = ok.clone()
            while True:
                left = self.victim.answers_left()
                live &= left >= reserve + 1
                if self.max_iterations is not None:
                    live &= t <= self.max_iterations
                rows = live.nonzero()[:, 0]
                if len(rows) == 0:
                    break
                tr = t[rows].double()
                evals = torch.minimum((self.init_evals * tr.sqrt()).long().clamp_max(
                    self.max_evals), left[rows] - reserve[rows])
                delta = torch.where(tr == 1, self.init_delta * spread[rows],
                                    d[rows].sqrt() * theta[rows] * dist[rows])
                v = self._direction(cur, rows, evals, delta, gens, y, target, mask)
                stepped, far = self._step(cur, dist, rows, v, tr, tol, y, target)
                if bool(stepped.any()):
                    self._to_boundary(x, far, rows[stepped], y, target, tol, cur, dist)
                t[rows] += 1
                self.steps_taken[rows] += 1
                self.update_bar(bar)

    # ------------------------------------------------------------------ pieces
    def _start(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
               mask: torch.Tensor, live: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """A first adversarial motion per live sample (module doc, 1.): ``(start, ok)``."""
        start, ok = x.clone(), torch.zeros(len(x), dtype=torch.bool)
        if self.pool is not None and bool(live.any()):
            start, ok = self.start_from_pool(x, y, target, mask, active=live)
        if self.goal == "sa":
            return start, ok
        gens = self.generators(x, salt=_INIT_SALT)
        lo5, width = lo[:, :, None, None, None], (hi - lo)[:, :, None, None, None]
        for _ in range(self.init_tries):
            rows = (live & ~ok & self.affordable()).nonzero()[:, 0]
            if len(rows) == 0:
                break
            r = rows.to(x.device)
            u = torch.stack([torch.rand(x.shape[1:], generator=gens[i])
                             for i in rows.tolist()]).to(x.device, x.dtype)
            cand = x[r] + mask[r] * (lo5[r] + width[r] * u - x[r])
            hit = self.adversarial(cand, rows, y, target).cpu()
            start[r[hit.to(x.device)]] = cand[hit.to(x.device)]
            ok[rows[hit]] = True
        return start, ok

    def _to_boundary(self, x: torch.Tensor, far: torch.Tensor, rows: torch.Tensor,
                     y: torch.Tensor, target: torch.Tensor | None, tol: torch.Tensor,
                     cur: torch.Tensor, dist: torch.Tensor) -> None:
        """Binary search (module doc, 2.) from adversarial ``far`` (samples ``rows``) towards
        ``x``; the boundary points go to ``cur`` and ``dist`` and are offered to :meth:`accept`.
        """
        k = len(rows)
        r = rows.to(x.device)
        xr = x[r]
        low = torch.zeros(k, dtype=torch.float64)
        high = torch.ones(k, dtype=torch.float64)
        label = self._last_label[rows].clone()  # far's answer: its rows' last query
        while True:
            go = (high - low > tol[rows]) & self.affordable()[rows]
            idx = go.nonzero()[:, 0]
            if len(idx) == 0:
                break
            i = idx.to(x.device)
            mid = (low[idx] + high[idx]) / 2
            hit = self.adversarial(_blend(xr[i], far[i], mid), rows[idx], y, target).cpu()
            high[idx[hit]] = mid[hit]
            low[idx[~hit]] = mid[~hit]
            label[idx[hit]] = self._last_label[rows[idx[hit]]]
        point = _blend(xr, far, high)
        cur[r] = point
        dist[rows] = self.distance(point, xr).cpu()
        self.accept(rows, point, xr, labels=label)

    def _direction(self, cur: torch.Tensor, rows: torch.Tensor, evals: torch.Tensor,
                   delta: torch.Tensor, gens: list[torch.Generator], y: torch.Tensor,
                   target: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
        """Unit gradient-direction estimate ``v_t`` at ``cur[rows]`` (module doc, 3.), float64.

        Sample ``rows[j]`` spends ``evals[j]`` queries. Its directions come from its own
        generator in pieces of a fixed size, so a sample alone and inside a batch draws the
        same ones; pieces of several samples share one call to the victim.
        """
        k, dev, shape = len(rows), cur.device, cur.shape[1:]
        dim = cur[0].numel()
        piece = max(1, PROBE_ELEMENTS // dim)
        group = max(1, CALL_ELEMENTS // (piece * dim))
        s_fu = torch.zeros((k, *shape), dtype=torch.float64, device=dev)
        s_u = torch.zeros_like(s_fu)
        s_f = torch.zeros(k, dtype=torch.float64)
        drawn = torch.zeros(k, dtype=torch.long)
        while True:
            todo = (evals - drawn).clamp(0, piece)
            pending = todo.nonzero()[:, 0]
            if len(pending) == 0:
                break
            for g0 in range(0, len(pending), group):
                part = pending[g0:g0 + group]
                counts = todo[part]
                u = torch.cat([torch.randn((c, *shape), generator=gens[int(rows[j])])
                               for j, c in zip(part.tolist(), counts.tolist(), strict=True)])
                local = torch.repeat_interleave(part, counts)
                ld, src = local.to(dev), rows[local]
                u = u.to(dev, cur.dtype) * mask[src.to(dev)]
                u = unit(u, eps=1e-30)
                probes = cur[src.to(dev)] + sample_view(delta[local].to(dev, cur.dtype), u) * u
                f = self.adversarial(probes, src, y, target).cpu().double() * 2 - 1
                u64 = u.double()
                s_fu.index_add_(0, ld, sample_view(f.to(dev), u64) * u64)
                s_u.index_add_(0, ld, u64)
                s_f.index_add_(0, local, f)
            drawn += todo
        count = evals.double()
        mean_f = s_f / count
        grad = s_fu - sample_view(mean_f.to(dev), s_u) * s_u  # Σ (φ_b − φ̄)·u_b
        same = mean_f.abs() == 1  # every probe agreed: ±mean direction (the paper's rule)
        grad = torch.where(sample_view(same.to(dev), s_u),
                           sample_view(mean_f.to(dev), s_u) * s_u, grad)
        return unit(grad, eps=1e-300)

    def _step(self, cur: torch.Tensor, dist: torch.Tensor, rows: torch.Tensor, v: torch.Tensor,
              t: torch.Tensor, tol: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Geometric step-size search (module doc, 4.): ``(stepped, x_t + ξ·v of those)``."""
        k, dev = len(rows), cur.device
        base = cur[rows.to(dev)].double()
        xi = dist[rows] / t.sqrt()
        floor = tol[rows] * dist[rows]
        pending = torch.ones(k, dtype=torch.bool)
        out = cur[rows.to(dev)].clone()
        while True:
            idx = (pending & self.affordable()[rows] & (xi >= floor)).nonzero()[:, 0]
            if len(idx) == 0:
                break
            i = idx.to(dev)
            cand = (base[i] + sample_view(xi[idx].to(dev), v) * v[i]).to(cur.dtype)
            hit = self.adversarial(cand, rows[idx], y, target).cpu()
            out[i[hit.to(dev)]] = cand[hit.to(dev)]
            pending[idx[hit]] = False
            xi[idx[~hit]] /= 2
        stepped = ~pending
        return stepped, out[stepped.to(dev)]
