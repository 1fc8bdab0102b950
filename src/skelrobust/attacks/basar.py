"""BASAR: the label-only attack on skeletal action recognition (Diao, Shao, Yang, Zhou and
Wang, "BASAR: Black-box Attack on Skeletal Action Recognition", CVPR 2021; extended in
Pattern Recognition 2024).

It sees a label-access :class:`~skelrobust.attacks.oracle.QueryOracle` only, and the
victim's skeleton layout. ``x`` is the clean motion, ``x′`` the current adversarial
motion, ``φ(·)`` the victim's yes/no answer to the goal (AB: not the true class; SA:
the target class). ``K(z; ref)`` puts a motion ``z`` on the skeleton of ``x``:
forward kinematics with ``x``'s bone lengths (frame by frame) and ``z``'s bone
directions, bones turned back towards those of ``ref`` where a joint angle leaves
its limits (:meth:`~skelrobust.attacks.manifold.ManifoldProjection.repair`; the
limits are estimated from data, :class:`~skelrobust.attacks.joint_limits.JointLimits`).
Every motion the victim is asked about is such a motion, so every adversarial
answer is a candidate result. Per sample:

1. **Start**: a pool clip ``x₀`` the victim answers adversarial
   (:meth:`~skelrobust.attacks.label_only.LabelOnlyAttack.start_from_pool`), put on
   ``x``'s skeleton, ``x̂₀ = K(x₀; x)``, and pulled towards ``x`` along the line:
   ``x′ = K(x̂₀ + β·(x − x̂₀); x̂₀)`` for the first of ``β = β₀, β₀ρ, β₀ρ², …``
   (``β₀ = source_step``, ``ρ = init_shrink``) the victim answers adversarial; below
   ``β = 0.01``, ``x̂₀`` itself (a sample for which it is not adversarial stops).
2. **Random exploration** (the paper's Eq. 2, per xyz coordinate ``c`` as its
   supplement writes it): ``x̃ = x′ + W·Δ``, ``Δ_c = R_c − (R_cᵀd_c)·d_c``,
   ``d_c = (x_c − x′_c)/‖x_c − x′_c‖``, ``R_c = λ·r_c/‖r_c‖·‖x_c − x′_c‖``, ``W``
   per-joint weights; ``r`` is normal noise over the real frames and bodies,
   smoothed in time by the dynamics term's operator, ``r = S·n``,
   ``S = (I + w·D₂ᵀD₂)⁻¹``, ``n ~ N(0, I)``; ``x̃`` is moved back onto the sphere
   ``‖x_c − x̃_c‖ = ‖x_c − x′_c‖`` (``spherical``) and queried as ``K(x̃; x′)``.
   ``explore_trials`` trials a round; ``λ ← 0.9·λ`` when at most 20 % are
   adversarial, ``λ ← min(λ/0.9, λ_max)`` when at least 80 % are. With none
   adversarial the round is repeated (``patience`` failed rounds in a row stop the
   sample); else the adversarial trial closest to ``x`` is the candidate ``c``.
3. **Aimed probing** (Eq. 3): ``K(c + β·(x − c); c)``; ``β ← β/2`` and probe again
   until adversarial, then ``x′`` is the probe and ``β ← 2β`` (0.9 once that reaches
   1); below ``β = 10⁻³``, ``x′ = c``. An exploration and its probing are one step.
4. **Manifold projection** (Eq. 4) every ``projection_interval`` steps:
   ``X* = argmin ‖X − x′‖² + w·‖Ẍ − ẍ‖²`` over motions with ``x``'s bone lengths
   and angles inside the limits, ``Ẍ``/``ẍ`` second differences over frames of
   ``X`` and of the **clean** motion
   (:class:`~skelrobust.attacks.manifold.ManifoldProjection`, batched). If
   ``φ(X*)`` fails, it backs off towards ``x′``
   along the manifold, ``K(Y* + γ·(x′ − Y*); x′)`` (``Y*`` the projection's free
   positions), ``γ = 1/2, 3/4, …, 1 − 2^−B`` (``B = backoff_tries``); the first
   adversarial one becomes ``x′``; with none, ``x′`` (adversarial, on the manifold)
   stays.

:meth:`~skelrobust.attacks.label_only.LabelOnlyAttack.accept` keeps each sample's
adversarial answer closest to ``x`` (``‖·‖₂``): the returned motion. A sample stops
when it cannot pay for its next exploration round, or after ``patience`` failed
rounds. :attr:`history` holds the best distances after each round that improved
one (non-increasing per sample).

All samples move together: every round, each live sample takes one action (a start
probe, its exploration trials, one probe or one projection query) and all queries
go to the victim in one call. A sample's draws come from a counter-based generator
keyed by the sample itself (:func:`normal_draws`), its step sizes and decisions
only from its own answers, and the projections are per sample, so a sample alone
and inside any batch follows the same path. Stochastic victims: every query
counts, an answer is never repeated to confirm it, and the final (bookkeeping)
evaluation decides success.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from skelrobust.attacks.joint_limits import JointLimits
from skelrobust.attacks.label_only import LabelOnlyAttack
from skelrobust.attacks.manifold import ManifoldProjection
from skelrobust.attacks.oracle import QueryOracle
from skelrobust.attacks.registry import register_attack
from skelrobust.errors import ConfigError

__all__ = ["BASAR", "normal_draws"]

DONE, INIT, EXPLORE, PROBE, PROJECT = range(5)
_INIT_FLOOR, _PROBE_FLOOR = 1e-2, 1e-3  # β below which the start / a probe gives up
_KEY_SALT = 41
_M32 = 0xFFFFFFFF


def _mul32(a: torch.Tensor, c: int) -> torch.Tensor:
    """``a·c mod 2³²`` for ``0 ≤ a < 2³²`` in int64, without overflow."""
    low = (a & 0xFFFF) * c
    high = (((a >> 16) * c) & 0xFFFF) << 16
    return (low + high) & _M32


def _hash32(a: torch.Tensor) -> torch.Tensor:
    """A bijective 32-bit integer mix (xor-shift-multiply, Wellons' "lowbias32" constants)."""
    a = a ^ (a >> 16)
    a = _mul32(a, 0x7FEB352D)
    a = a ^ (a >> 15)
    a = _mul32(a, 0x846CA68B)
    return a ^ (a >> 16)


def normal_draws(keys: torch.Tensor, counters: torch.Tensor, count: int) -> torch.Tensor:
    """``(k, count)`` standard normals, float64: row ``i`` a function of ``(keys[i], counters[i])``.

    A counter-based generator (as Philox in JAX): draw ``e`` of a row hashes its key,
    its counter and ``e``, and Box–Muller turns two such 32-bit uniforms into two
    normals; no state is shared between rows, so a row's draws never depend on the
    others.
    """
    dev = keys.device
    base = _hash32((keys & _M32) ^ _hash32(counters.to(dev) & _M32))[:, None]
    e = torch.arange((count + 1) // 2, device=dev) * 2
    u1 = (_hash32(base ^ _hash32(e)).double() + 0.5) / 2.0 ** 32
    u2 = _hash32(base ^ _hash32(e + 1)).double() * (2 * math.pi / 2.0 ** 32)
    radius = (-2 * u1.log()).sqrt()
    return torch.cat([radius * torch.cos(u2), radius * torch.sin(u2)], dim=1)[:, :count]


@register_attack("basar")
class BASAR(LabelOnlyAttack):
    """BASAR, the skeleton-aware label-only attack (module doc).

    Parameters (P: the paper or the authors' code; O: ours):

    - ``max_queries`` = 5000 (O): queries per sample, about the authors' 500 steps;
    - ``pool`` (required): clips to start from, and by default to estimate the limits;
    - ``explore_trials`` = 5 (P): random-exploration trials per round;
    - ``spherical_step`` λ = 0.1 (P) and its cap ``spherical_step_max`` = 0.4 (P);
      ``step_adapt`` = 0.9 (P): λ's factor (×0.9 at ≤ 20 % adversarial trials,
      ÷0.9 at ≥ 80 %); ``spherical`` = ``True`` (O): trials back onto the sphere
      around ``x`` (``False``: the released code's tangent step);
    - ``source_step`` β₀ = 0.95 (P) and ``init_shrink`` ρ = 0.9 (P): the start's line
      search (module doc, 1.); probing starts from the β it found (P);
    - ``projection_interval`` = 10 steps (O; the authors: 250, with IPOPT per sample):
      every queried motion is on the skeleton already, the projection adds the
      dynamics term; batched, it costs about 3 exploration rounds of computation;
    - ``projection_steps`` = 20 (O) Adam steps of ``projection_lr`` = 1 mm (O), after
      the exact solve of the dynamics term
      (:meth:`~skelrobust.attacks.manifold.ManifoldProjection.smooth`);
    - ``accel_weight`` w = 10 (O; the paper's w, for second differences per frame in
      metres): the weight of the acceleration term. It and ``projection_interval`` were
      chosen on training clips (NW-UCLA, ST-GCN, 4 clips, 2,000 queries; w ∈ {1, 10, 100,
      1000}): w = 1 left the acceleration deviation at 12,000 mm/s² (twice w = 10's) for
      a larger displacement, w ≥ 100 moved joints further (see docs/DESIGN-NOTES.md);
    - ``backoff_tries`` B = 4 (O): on-manifold back-offs of a projection that is not
      adversarial (the authors back off off the manifold, by 0.95 at a time);
    - ``limits``: precomputed :class:`~skelrobust.attacks.joint_limits.JointLimits`;
      else estimated from ``limit_clips`` (``(P, 3, T, V, M)`` clips, ``(clips,
      lengths)`` or a dataset; default: the pool's) at quantile ``limit_quantile`` = 0
      (min/max, O), widened by ``limit_margin_deg`` = 2° (P: the authors widen the
      clean clip's own range by 2°); a clip's own angles are always inside;
    - ``joint_weights`` W (O: all 1; the paper's W is a diagonal of joint weights whose
      values it does not give): ``(V,)`` non-negative;
    - ``patience`` = 300 (P): failed exploration rounds in a row that stop a sample;
    - ``init_tries``, ``snapshot_queries`` and the shared options (``goal`` ``"ab"``
      or ``"sa"``, ``target_mode``, ``seed``, ...) as
      :class:`~skelrobust.attacks.label_only.LabelOnlyAttack`.
    """

    name = "basar"

    def __init__(self, victim: nn.Module | QueryOracle, max_queries: int = 5000,
                 pool: Any = None, explore_trials: int = 5, spherical_step: float = 0.1,
                 spherical_step_max: float = 0.4, step_adapt: float = 0.9,
                 source_step: float = 0.95, init_shrink: float = 0.9,
                 projection_interval: int = 10, projection_steps: int = 20,
                 projection_lr: float = 1e-3, accel_weight: float = 10.0,
                 backoff_tries: int = 4, limits: JointLimits | None = None,
                 limit_clips: Any = None, limit_quantile: float = 0.0,
                 limit_margin_deg: float = 2.0,
                 joint_weights: Any = None, patience: int = 300, spherical: bool = True,
                 **options: Any) -> None:
        super().__init__(victim, max_queries=max_queries, pool=pool, **options)
        if self.skeleton is None:
            raise ConfigError(f"{self.name} needs the victim's skeleton layout (bones and "
                              "joint angles); give the oracle one: QueryOracle.from_callable("
                              "..., skeleton='ntu25')")
        if self.pool is None:
            raise ConfigError(f"{self.name} starts from clips the attacker holds: give a "
                              "pool=(x, y) of clips")
        for key, value, low in (("explore_trials", explore_trials, 1),
                                ("projection_interval", projection_interval, 1),
                                ("projection_steps", projection_steps, 0),
                                ("backoff_tries", backoff_tries, 0), ("patience", patience, 1)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ConfigError(f"{self.name}: {key} must be an integer >= {low}, got "
                                  f"{value!r}")
        for key, value in (("spherical_step", spherical_step), ("source_step", source_step),
                           ("step_adapt", step_adapt), ("init_shrink", init_shrink)):
            if not 0 < value < 1:
                raise ConfigError(f"{self.name}: {key} must be in (0, 1), got {value}")
        if not spherical_step_max >= spherical_step:
            raise ConfigError(f"{self.name}: spherical_step_max ({spherical_step_max}) must be "
                              f">= spherical_step ({spherical_step})")
        if not (projection_lr > 0 and accel_weight >= 0):
            raise ConfigError(f"{self.name}: projection_lr must be > 0 and accel_weight >= 0, "
                              f"got {projection_lr} and {accel_weight}")
        if limits is not None and not isinstance(limits, JointLimits):
            raise ConfigError(f"{self.name}: limits must be JointLimits (JointLimits.from_clips"
                              f" or .from_degrees), got {type(limits).__name__}")
        v = self.skeleton.num_joints
        w = torch.ones(v) if joint_weights is None else torch.as_tensor(
            np.asarray(joint_weights), dtype=torch.float32).reshape(-1)
        if w.shape != (v,) or not bool(torch.isfinite(w).all() and (w >= 0).all()):
            raise ConfigError(f"{self.name}: joint_weights must be {v} finite non-negative "
                              f"values (one per joint of {self.skeleton.name})")
        self.explore_trials, self.spherical_step = int(explore_trials), float(spherical_step)
        self.spherical_step_max, self.step_adapt = float(spherical_step_max), float(step_adapt)
        self.source_step, self.init_shrink = float(source_step), float(init_shrink)
        self.projection_interval, self.projection_steps = (int(projection_interval),
                                                           int(projection_steps))
        self.projection_lr, self.accel_weight = float(projection_lr), float(accel_weight)
        self.backoff_tries, self.patience = int(backoff_tries), int(patience)
        self.joint_weights, self.spherical = w, bool(spherical)
        self.limit_quantile, self.limit_margin_deg = float(limit_quantile), float(
            limit_margin_deg)
        self._limits, self._limit_clips = limits, limit_clips
        self.history: list[torch.Tensor] = []

    @property
    def limits(self) -> JointLimits:
        """The joint-angle limits (estimated from the clips on first use, then kept)."""
        if self._limits is None:
            clips, lengths = self._limit_clips, None
            if clips is None:
                clips, _, lengths = self.pool
            elif isinstance(clips, tuple | list):
                clips, lengths = clips
            elif hasattr(clips, "x"):
                clips, lengths = clips.x, getattr(clips, "lengths", None)
            self._limits = JointLimits.from_clips(clips, self.skeleton, lengths,
                                                  quantile=self.limit_quantile)
        return self._limits

    # ------------------------------------------------------------------ the attack
    def search(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
               mask: torch.Tensor) -> None:
        skel, dev = self.skeleton, x.device
        skel.check_motion(x, "x")
        self.history = []
        self.projection_seconds = 0.0  # time on the manifold (repair and projection)
        lower, upper = self.limits.for_clips(x, skel, mask, math.radians(self.limit_margin_deg))
        proj = ManifoldProjection(x, skel, lower, upper, mask, self.accel_weight,
                                  self.projection_steps, self.projection_lr)
        s = _State(x, mask, self.spherical_step, self.source_step)
        s.keys = torch.stack([torch.randint(0, 1 << 32, (), generator=g)
                              for g in self.generators(x, salt=_KEY_SALT)]).to(dev)
        with self.query_bar() as bar:
            live = ~self.keep_already_adversarial(x, y, target)
            start, ok = self.start_from_pool(x, y, target, mask, active=live)
            rows = (live & ok).nonzero()[:, 0].to(dev)
            s.start[rows] = proj.repair(start[rows], rows)  # the pool clip on x's skeleton
            s.phase[live & ok] = INIT
            self.update_bar(bar)
            try:
                while self._round(s, proj, x, y, target):
                    self.update_bar(bar)
            finally:
                self.projection_seconds = proj.seconds

    def _round(self, s: _State, proj: ManifoldProjection, x: torch.Tensor, y: torch.Tensor,
               target: torch.Tensor | None) -> bool:
        """One round: each live sample takes its next action; ``False`` once all are done."""
        left = self.victim.answers_left()
        s.phase[(left < 1) | ((s.phase == EXPLORE) & ((left < self.explore_trials)
                                                       | (s.fails >= self.patience)))] = DONE
        parts = []
        for phase, make in ((INIT, self._init_motion), (EXPLORE, self._trials),
                            (PROBE, self._probe_motion), (PROJECT, self._projection_motion)):
            rows = (s.phase == phase).nonzero()[:, 0]
            if len(rows):
                parts.append((phase, rows, *make(s, proj, rows)))
        if not parts:
            return False
        motions = torch.cat([p[2] for p in parts])
        query_rows = torch.cat([p[3] for p in parts])
        hits = self.adversarial(motions, query_rows, y, target).cpu()  # one victim call
        labels = self.last_labels
        start, accepted = 0, False
        for phase, rows, part, part_rows in parts:
            k = len(part_rows)
            accepted |= self._consume(s, phase, rows, part, hits[start:start + k],
                                      labels[start:start + k], x)
            start += k
        if accepted:
            self.history.append(self.best_distance.clone())
        return True

    # ------------------------------------------------------------------ actions
    @staticmethod
    def _towards_clean(s: _State, proj: ManifoldProjection, rows: torch.Tensor,
                       base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``K(b + β(x − b); b)``: from ``base`` (all samples' motions) a step β towards ``x``."""
        r = rows.to(s.cur.device)
        beta = s.beta[rows].to(s.cur).view(-1, 1, 1, 1, 1)
        return proj.repair(base[r] + beta * (s.x[r] - base[r]), r, base[r]), rows

    def _init_motion(self, s: _State, proj: ManifoldProjection, rows: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._towards_clean(s, proj, rows, s.start)

    def _trials(self, s: _State, proj: ManifoldProjection, rows: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``explore_trials`` motions ``x′ + W·Δ`` per sample (module doc, 2.), on the manifold."""
        r, k, m = rows.to(s.cur.device), self.explore_trials, len(rows)
        x, cur, mask = s.x[r].double(), s.cur[r].double(), s.mask[r].double()
        dims = (2, 3, 4)
        diff = (x - cur) * mask
        size = torch.linalg.vector_norm(diff, dim=dims, keepdim=True)  # (m, 3, 1, 1, 1)
        d = diff / size.clamp_min(1e-30)
        draws = normal_draws(s.keys[r], s.draws[rows], k * cur[0].numel())
        s.draws[rows] += 1
        query_rows = rows.repeat_interleave(k)
        qr = query_rows.to(r.device)
        noise = draws.view(m, k, *cur.shape[1:])  # smooth in time, like the clean motion
        noise = proj.smooth(noise, r, torch.zeros_like(noise))
        unit = noise / torch.linalg.vector_norm(noise, dim=(3, 4, 5), keepdim=True).clamp_min(
            1e-30)
        lam = s.lam[rows].to(x).view(-1, 1, 1, 1, 1, 1)
        big_r = lam * unit * size[:, None]
        delta = big_r - (big_r * d[:, None]).sum(dim=(3, 4, 5), keepdim=True) * d[:, None]
        w = self.joint_weights.to(x).view(1, 1, 1, 1, -1, 1)
        trials = cur[:, None] + w * delta
        if self.spherical:  # back onto the sphere ‖x_c − x̃_c‖ = ‖x_c − x′_c‖ around x
            off = trials - x[:, None]
            scale = size[:, None] / torch.linalg.vector_norm(off, dim=(3, 4, 5),
                                                             keepdim=True).clamp_min(1e-30)
            trials = x[:, None] + off * scale
        trials = trials.to(s.cur.dtype).flatten(0, 1)
        return proj.repair(trials, qr, s.cur[qr]), query_rows

    def _probe_motion(self, s: _State, proj: ManifoldProjection, rows: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._towards_clean(s, proj, rows, s.cand)

    def _projection_motion(self, s: _State, proj: ManifoldProjection, rows: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """The full projection of ``x′`` (first try) or its ``b``-th back-off (module doc, 4.)."""
        r = rows.to(s.cur.device)
        out = torch.empty_like(s.cur[r])
        new = s.back[rows] == 0
        if bool(new.any()):
            i, ri = new.nonzero()[:, 0].to(r.device), r[new.to(r.device)]
            out[i], s.proj_y[ri] = proj.project(s.cur[ri], ri, ref=s.cur[ri])
            s.proj_src[ri] = s.cur[ri]
        if bool((~new).any()):
            i, ri = (~new).nonzero()[:, 0].to(r.device), r[(~new).to(r.device)]
            gamma = 1 - 0.5 ** s.back[rows[~new]].double()
            out[i] = proj.path(s.proj_y[ri], s.proj_src[ri], gamma, ri, s.proj_src[ri])
        return out, rows

    def _consume(self, s: _State, phase: int, rows: torch.Tensor, motions: torch.Tensor,
                 hit: torch.Tensor, labels: torch.Tensor, x: torch.Tensor) -> bool:
        """Update samples ``rows`` from their answers (``hit``, ``labels``); ``True`` if a
        best motion improved."""
        dev = s.cur.device
        if phase == EXPLORE:
            k = self.explore_trials
            hit = hit.view(-1, k)
            frac = hit.double().mean(1)
            lam = s.lam[rows]
            lam = torch.where(frac <= 0.2, lam * self.step_adapt, lam)
            s.lam[rows] = torch.where(frac >= 0.8, (lam / self.step_adapt).clamp_max(
                self.spherical_step_max), lam)
            trials = motions.view(len(rows), k, *motions.shape[1:])
            dist = self.distance(trials.flatten(0, 1), x[rows.to(dev)].repeat_interleave(
                k, 0)).cpu().view(-1, k).masked_fill(~hit, math.inf)
            found = hit.any(1)
            s.fails[rows] = torch.where(found, 0, s.fails[rows] + 1)
            good = rows[found]
            best = dist[found].argmin(1)
            pick = trials[found.to(dev), best.to(dev)]
            s.cand[good.to(dev)] = pick
            s.phase[good] = PROBE
            picked = labels.view(-1, k)[found, best]
            return bool(self.accept(good, pick, x[good.to(dev)], labels=picked).any())
        good = rows[hit]
        kept = self.accept(good, motions[hit.to(dev)], x[good.to(dev)], labels=labels[hit])
        s.cur[good.to(dev)] = motions[hit.to(dev)]
        bad = rows[~hit]
        if phase == INIT:
            s.phase[bad[s.beta[bad] == 0]] = DONE  # not even the start is adversarial
            s.beta[bad] *= self.init_shrink
            s.beta[bad[s.beta[bad] < _INIT_FLOOR]] = 0.0  # last, try the start itself
            s.beta[good] = s.beta[good].clamp_min(_INIT_FLOOR)  # probing's first β
            s.phase[good] = EXPLORE
        elif phase == PROBE:
            beta = s.beta[good] * 2
            s.beta[good] = torch.where(beta >= 1, torch.full_like(beta, 0.9), beta)
            s.beta[bad] /= 2
            quit_ = bad[s.beta[bad] < _PROBE_FLOOR]
            s.cur[quit_.to(dev)] = s.cand[quit_.to(dev)]
            self._stepped(s, torch.cat([good, quit_]))
        else:  # PROJECT: success, or every back-off tried (x′, adversarial, is kept)
            s.back[bad] += 1
            ended = torch.cat([good, bad[s.back[bad] > self.backoff_tries]])
            s.phase[ended] = EXPLORE
        return bool(kept.any())

    def _stepped(self, s: _State, rows: torch.Tensor) -> None:
        """Samples ``rows`` completed a step: project every ``projection_interval`` steps."""
        self.steps_taken[rows] += 1
        due = self.steps_taken[rows] % self.projection_interval == 0
        s.phase[rows] = torch.where(due, PROJECT, EXPLORE)
        s.back[rows[due]] = 0


class _State:
    """Per-sample search state of one BASAR run (control tensors on the CPU)."""

    def __init__(self, x: torch.Tensor, mask: torch.Tensor, lam: float, beta: float) -> None:
        n = len(x)
        self.x, self.mask = x, mask
        self.cur, self.cand, self.start = x.clone(), x.clone(), x.clone()
        self.proj_y, self.proj_src = x.clone(), x.clone()
        self.phase = torch.full((n,), DONE, dtype=torch.long)
        self.lam = torch.full((n,), lam, dtype=torch.float64)
        self.beta = torch.full((n,), beta, dtype=torch.float64)
        self.fails = torch.zeros(n, dtype=torch.long)
        self.draws = torch.zeros(n, dtype=torch.long)
        self.back = torch.zeros(n, dtype=torch.long)
        self.keys = torch.zeros(n, dtype=torch.long)

