"""SMART (Wang et al., "Understanding the Robustness of Skeleton-based Action
Recognition under Adversarial Attack", CVPR 2021).

SMART minimises ``L = w·L_c + (1 − w)·L_p`` (Eq. 1) over the adversarial motion
``q̂``, with the perceptual loss ``L_p = α·l_dyn + (1 − α)·l_bl`` (Eq. 2):
``l_dyn = Σ_n β_n ‖∂ⁿq − ∂ⁿq̂‖²`` keeps position, velocity and acceleration close
to the clean motion ``q`` (Eq. 4) and ``l_bl`` the bone lengths (Eq. 3); see
:mod:`skelrobust.attacks.losses`.

The update: the gradients of ``L_c`` and of ``L_p`` are each normalised to unit L2
norm, combined with weights ``w`` and ``1 − w`` and followed by plain gradient
descent with a fixed step; a sample is frozen as soon as it reaches its goal
(per-sample early stop), so every successful sample keeps the first adversarial
motion found. The normalisation is per clip (``step_norm="clip"``: the whole
sample's step has one length) or per frame (``"frame"``: every frame of every
body takes a step of the same length, as the authors' CVPR 2021 code does).

Three codes of this attack disagree in their details; each is a named
:data:`PRESETS` entry (see :class:`SMART` and ``docs/DESIGN-NOTES.md``):

- ``"paper"`` (the default): the equations of the paper, derivatives per second
  at 30 fps, joints weighted equally, sums over frames, per-clip normalisation;
- ``"cvpr2021-code"``: the authors' release (``realcrane/Understanding-the-
  Robustness-of-Skeleton-based-Action-Recognition-under-Adversarial-Attack``,
  ``code/Attackers/SMARTAttacker.py``): per-frame normalisation, weights 0.4
  (position) / 0.18 (acceleration) / 0.42 (bone length), spine joints weighted
  twice in the position term;
- ``"benchmark"``: the re-implementation in Diao et al.'s
  ``Skeleton-Robustness-Benchmark`` (``code/Attackers/SMART.py``): per-clip
  normalisation, 200 steps, a ±10 mm clamp per coordinate;
- ``"legacy"``: this library's defaults before the presets (derivatives per frame),
  which made every SMART figure stored before them.

``keep_bone_lengths=True`` re-projects every iterate onto the clean bone lengths
(the skeleton realignment CIASA uses,
:func:`~skelrobust.attacks.projection.realign_bone_lengths`), so the returned
motion keeps every bone length exactly, whatever the preset.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from skelrobust.attacks.base import check_norm, project_budget
from skelrobust.attacks.losses import REDUCTIONS, SmartPerceptualGradient
from skelrobust.attacks.oracle import GradientOracle
from skelrobust.attacks.projection import (
    REALIGN_NORMS,
    realign_bone_lengths,
    realign_within_budget,
)
from skelrobust.attacks.registry import register_attack
from skelrobust.attacks.white_box import GradientAttack, per_sample_norm, project_exact
from skelrobust.errors import ConfigError
from skelrobust.skeleton import Skeleton

__all__ = ["DEFAULT_PRESET", "POSITION_WEIGHTS", "PRESETS", "SMART", "STEP_NORMS",
           "joint_position_weights", "spine_joints"]

STEP_NORMS = ("clip", "frame")
POSITION_WEIGHTS = ("uniform", "spine")  # named per-joint weights of the position term

# The authors' step is 0.01 per frame (L2 over its 75 coordinates) in their normalised
# HDM05 arrays, whose std is 4.7353 ASF units (0.0254 / 0.45 m each) on every coordinate:
# 2.673 mm per frame, i.e. 0.309 mm RMS per coordinate.
_CVPR_FRAME_STEP_MM = 0.01 * 4.7353377 * 25.4 / 0.45
# The benchmark's step is 0.01 m per clip (L2) on its NTU clips (300 frames, 25 joints,
# 2 bodies): 0.047 mm RMS per coordinate.
_BENCHMARK_CLIP_STEP_MM = 10.0

#: Named settings of every argument a preset fills (explicit arguments override them).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "steps": 1000, "step_mm": 0.5, "w": 0.6, "alpha": 0.3, "betas": (0.6, 0.0, 0.4),
        "fps": 30.0, "step_norm": "clip", "position_weights": "uniform", "reduction": "sum",
        "budget_mm": None, "norm": "joint", "class_loss": "ce",
    },
    "cvpr2021-code": {
        # position 0.4, acceleration (1 − 0.4)·(1 − 0.7) = 0.18, bone (1 − 0.4)·0.7 = 0.42
        "steps": 1000, "step_mm": _CVPR_FRAME_STEP_MM / math.sqrt(75), "w": 0.6,
        "alpha": 0.58, "betas": (0.4 / 0.58, 0.0, 0.18 / 0.58), "fps": 30.0,
        "step_norm": "frame", "position_weights": "spine", "reduction": "sum",
        "budget_mm": None, "norm": "joint", "class_loss": "ce",
    },
    "benchmark": {
        "steps": 200, "step_mm": _BENCHMARK_CLIP_STEP_MM / math.sqrt(300 * 25 * 3 * 2),
        "w": 0.6, "alpha": 0.3, "betas": (0.6, 0.0, 0.4), "fps": 30.0, "step_norm": "clip",
        "position_weights": "spine", "reduction": "sum", "budget_mm": 10.0, "norm": "linf",
        "class_loss": "ce",
    },
    "legacy": {
        "steps": 1000, "step_mm": 0.5, "w": 0.6, "alpha": 0.3, "betas": (0.6, 0.0, 0.4),
        "fps": None, "step_norm": "clip", "position_weights": "uniform", "reduction": "mean",
        "budget_mm": None, "norm": "joint", "class_loss": "ce",
    },
}
DEFAULT_PRESET = "paper"

_FACE = {"head", "nose", "eye", "ear"}


def spine_joints(skeleton: Skeleton) -> tuple[int, ...]:
    """The joints the SMART code weights twice: the trunk from the pelvis to the neck.

    The authors' 25-joint HDM05 layout weights joints 10-14 (``hdm05_25``'s root,
    belly, chest, neck and upper neck), its ``torso`` part. On any layout: the
    joints of its ``torso`` part except head and face joints (names with a word
    ``head``, ``nose``, ``eye`` or ``ear``), so ``ntu25`` gives spine_base, spine_mid,
    spine_shoulder and neck; ``kinect20`` hip_center, spine and shoulder_center;
    ``hdm05_31`` root, lowerback, upperback, thorax, lowerneck and upperneck;
    ``sbu15`` neck and torso; ``openpose18`` the neck; ``coco17`` none.
    """
    torso = skeleton.parts.get("torso", ())
    return tuple(j for j in torso if not _FACE & set(skeleton.joint_names[j].split("_")))


def joint_position_weights(spec: str | Sequence[float],
                           skeleton: Skeleton) -> tuple[float, ...] | None:
    """Per-joint weights of the position term: ``None`` for ``"uniform"`` (all 1).

    ``"spine"``: the SMART code's 0.02 on every joint and 0.04 on :func:`spine_joints`;
    a sequence: one non-negative weight per joint of ``skeleton``.
    """
    if isinstance(spec, str):
        if spec not in POSITION_WEIGHTS:
            raise ConfigError(f"smart: position_weights must be one of {POSITION_WEIGHTS} or "
                              f"one weight per joint, got {spec!r}")
        if spec == "uniform":
            return None
        spine = set(spine_joints(skeleton))
        return tuple(0.04 if j in spine else 0.02 for j in range(skeleton.num_joints))
    weights = tuple(float(v) for v in spec)
    if len(weights) != skeleton.num_joints or any(not v >= 0 for v in weights):
        raise ConfigError(f"smart: position_weights must hold {skeleton.num_joints} "
                          f"non-negative weights (one per joint of {skeleton.name!r}), got "
                          f"{len(weights)}")
    return weights


@register_attack("smart")
class SMART(GradientAttack):
    """SMART: perceptually constrained white-box attack on skeletal motion.

    ``preset`` (:data:`PRESETS`; default ``"paper"``) fills every argument left at
    ``None``; an explicit argument overrides it. The resolved values are the
    attributes of the same names. Per argument, the value of each preset (paper /
    cvpr2021-code / benchmark / legacy):

    - ``steps`` (1000 / 1000 / 200 / 1000): the most optimisation steps; samples stop
      early. The code releases' attack commands use 1000 and 200.
    - ``step_mm`` (0.5 / 0.309 / 0.047 / 0.5): step length in mm, as the RMS per
      coordinate of one step of the normalised direction: of the clip
      (``step_norm="clip"``) or of each frame (``"frame"``). The codes step 0.01 in
      their data units: per frame in the CVPR code (2.67 mm per 25-joint frame of
      its normalised HDM05 arrays), per clip in the benchmark (10 mm per NTU clip
      of 300 frames and 2 bodies); the paper's step is ours.
    - ``step_norm`` (clip / frame / clip / clip): where the two gradients are
      normalised to unit length; ``"frame"``: per frame and body.
    - ``w`` (0.6 everywhere, ``classWeight``): weight of the classification term.
    - ``alpha`` (0.3 / 0.58 / 0.3 / 0.3) and ``betas`` (β for position, velocity,
      acceleration: (0.6, 0, 0.4) / (0.69, 0, 0.31) / (0.6, 0, 0.4) / (0.6, 0, 0.4)):
      ``L_p = α (β₀ pos + β₁ vel + β₂ acc) + (1 − α) bone``. The CVPR code's
      position 0.4, acceleration 0.18 and bone length 0.42 are α = 0.58,
      β = (0.4, 0, 0.18) / 0.58.
    - ``fps`` (30 / 30 / 30 / ``None``): derivatives per second at this frame rate
      (both codes divide by Δt = 1/30 s); ``None``: per frame, which makes the
      acceleration term 30⁴ times smaller than at 30 fps (``fps=1`` is the same).
    - ``position_weights`` (uniform / spine / spine / uniform): per-joint weights of
      the position term, ``"uniform"``, ``"spine"`` (the codes' 0.02, 0.04 on the
      trunk, :func:`spine_joints`) or one weight per joint.
    - ``reduction`` (sum / sum / sum / mean): the losses summed over frames, or
      averaged over the valid frames.
    - ``budget_mm``/``norm`` (none / none / 10 mm ``"linf"`` / none): optional hard
      budget in mm, projected after every step; ``norm`` ``"joint"`` (no joint moves
      more than ``budget_mm``), ``"linf"`` (per coordinate) or ``"l2"`` (per clip), see
      :func:`~skelrobust.attacks.base.project_budget`. ``budget_mm=math.inf`` removes a
      preset's budget.
    - ``class_loss`` (``"ce"`` everywhere): ``−CE(z, y)`` for AB, ``CE(z, c)`` for SA;
      for ABN also ``−CE(z, y)`` (the CVPR code regresses the logits to a uniform
      vector instead) — or ``"margin"`` for the CW margins of the base.
    - ``keep_bone_lengths`` (``False``; not part of the presets): re-project every
      iterate onto the clean bone lengths (CIASA's realignment; with a budget,
      :func:`~skelrobust.attacks.projection.realign_within_budget`, which needs norm
      ``"joint"`` or ``"linf"``); ``max_angle_deg`` (with it only) also bounds how far
      each bone turns from its clean direction.
    - ``goal`` ``"ab"``, ``"abn"`` (with ``n``) or ``"sa"``, and the other options every
      attack shares (:class:`~skelrobust.attacks.base.Attack`).

    Differences from both codes: the losses count valid frames only; padding
    frames and absent bodies never move; the perceptual gradient is computed in
    closed form (:class:`~skelrobust.attacks.losses.SmartPerceptualGradient`), so a
    step costs one forward and one backward pass of the classifier.
    """

    name = "smart"

    def __init__(self, victim: nn.Module | GradientOracle, steps: int | None = None,
                 step_mm: float | None = None, w: float | None = None,
                 alpha: float | None = None, betas: Sequence[float] | None = None,
                 budget_mm: float | None = None, norm: str | None = None,
                 class_loss: str | None = None, fps: float | None = None,
                 step_norm: str | None = None,
                 position_weights: str | Sequence[float] | None = None,
                 reduction: str | None = None, keep_bone_lengths: bool = False,
                 max_angle_deg: float | None = None, preset: str = DEFAULT_PRESET,
                 **options: Any) -> None:
        if preset not in PRESETS:
            raise ConfigError(f"smart: unknown preset {preset!r}; available: "
                              f"{', '.join(PRESETS)}")
        given = {"steps": steps, "step_mm": step_mm, "w": w, "alpha": alpha, "betas": betas,
                 "budget_mm": budget_mm, "norm": norm, "class_loss": class_loss, "fps": fps,
                 "step_norm": step_norm, "position_weights": position_weights,
                 "reduction": reduction}
        cfg = {k: PRESETS[preset][k] if v is None else v for k, v in given.items()}
        super().__init__(victim, loss=cfg["class_loss"], **options)
        if self.skeleton is None:
            raise ConfigError("smart: the victim has no skeleton layout")
        self.preset = preset
        self._resolve(cfg)
        self.keep_bone_lengths = bool(keep_bone_lengths)
        self.max_angle_deg = None if max_angle_deg is None else float(max_angle_deg)
        if self.max_angle_deg is not None and not (
                self.keep_bone_lengths and 0 < self.max_angle_deg <= 180):
            raise ConfigError("smart: max_angle_deg needs keep_bone_lengths=True and must be "
                              f"in (0, 180], got {max_angle_deg}")
        if self.keep_bone_lengths and self.budget_mm is not None:
            check_norm(self.norm, "smart (keep_bone_lengths with a budget)", REALIGN_NORMS)

    def _resolve(self, cfg: dict[str, Any]) -> None:
        """Check the resolved settings and set them as attributes."""
        steps, step_mm, fps, budget = cfg["steps"], cfg["step_mm"], cfg["fps"], cfg["budget_mm"]
        if steps < 0:
            raise ConfigError(f"smart: steps must be >= 0, got {steps}")
        if not step_mm > 0:
            raise ConfigError(f"smart: step_mm must be > 0 (mm), got {step_mm}")
        if not 0 <= cfg["w"] <= 1 or not 0 <= cfg["alpha"] <= 1:
            raise ConfigError(f"smart: w and alpha must be in [0, 1], got {cfg['w']} and "
                              f"{cfg['alpha']}")
        betas = tuple(float(b) for b in cfg["betas"])
        if len(betas) < 1 or any(not b >= 0 for b in betas):
            raise ConfigError(f"smart: betas must be non-negative weights, got {betas}")
        if budget is not None and not budget > 0:
            raise ConfigError(f"smart: budget_mm must be > 0, got {budget}")
        if fps is not None and not 0 < fps < math.inf:
            raise ConfigError(f"smart: fps must be a positive frame rate or None, got {fps}")
        if cfg["step_norm"] not in STEP_NORMS:
            raise ConfigError(f"smart: step_norm must be one of {STEP_NORMS}, got "
                              f"{cfg['step_norm']!r}")
        if cfg["reduction"] not in REDUCTIONS:
            raise ConfigError(f"smart: reduction must be one of {REDUCTIONS}, got "
                              f"{cfg['reduction']!r}")
        check_norm(cfg["norm"], "smart")
        self._position_weights = joint_position_weights(cfg["position_weights"], self.skeleton)
        self.steps, self.step_mm = int(steps), float(step_mm)
        self.w, self.alpha, self.betas = float(cfg["w"]), float(cfg["alpha"]), betas
        self.budget_mm = None if budget is None or budget == math.inf else float(budget)
        self.norm, self.class_loss = cfg["norm"], cfg["class_loss"]
        self.fps = None if fps is None else float(fps)
        self.step_norm, self.reduction = cfg["step_norm"], cfg["reduction"]
        spec = cfg["position_weights"]
        self.position_weights = spec if isinstance(spec, str) else self._position_weights

    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        full_mask = bool(mask.all())
        percep_all = SmartPerceptualGradient(x, self.skeleton, mask, self.alpha, self.betas,
                                             self.fps, self.reduction, self._position_weights)
        per_frame = self.step_norm == "frame"
        # RMS-per-coordinate step: the unit-norm direction times sqrt(#coordinates it spans)
        coords = (3 * x.shape[3]) if per_frame else mask.flatten(1).sum(1) * 3 * x.shape[3]
        scale = (x.new_full((n,), coords) if per_frame else coords).sqrt() * (
            self.step_mm / 1000.0)
        budget = None if self.budget_mm is None else self.budget_mm / 1000.0
        x_adv = x.clone()
        done = torch.zeros(n, dtype=torch.bool, device=x.device)
        iterations = torch.full((n,), self.steps, dtype=torch.long)
        idx, percep = None, percep_all
        with self.step_bar(self.steps) as bar:
            for step in bar:
                xa, xc, ya, ta, ma, sa = self.rows(idx, x_adv, x, y, target, mask, scale)
                logits, _, g_class = self.gradient(xa, ya, ta, ~done)
                hit = self.reached(logits, ya, ta)
                g_percep = percep(xa)
                if not full_mask:
                    g_class = g_class * ma
                # x ← x − s·(w·ĝ_c + (1 − w)·ĝ_p), only for the samples still short of their goal
                sa = sa * (~hit).to(x.dtype)
                if per_frame:
                    xa = self._frame_step(xa, g_class, g_percep, sa, ma)
                else:
                    a = sa * self.w / per_sample_norm(g_class).clamp_min(1e-20)
                    b = sa * (1 - self.w) / per_sample_norm(g_percep).clamp_min(1e-20)
                    xa = torch.addcmul(xa, g_class, a.view(-1, 1, 1, 1, 1), value=-1.0)
                    xa = torch.addcmul(xa, g_percep, b.view(-1, 1, 1, 1, 1), value=-1.0)
                if budget is not None:
                    xa = xc + project_budget(xa - xc, budget, self.norm) * ma
                if self.keep_bone_lengths:
                    xa = self._realign(xa, xc, ma, budget)
                x_adv = xa if idx is None else x_adv.index_copy(0, idx, xa)
                if bool(hit.any()):  # freeze the samples that reached their goal
                    rows = torch.arange(n, device=x.device) if idx is None else idx
                    iterations[rows[hit].cpu()] = step
                    done[rows[hit]] = True
                    idx = (~done).nonzero()[:, 0]
                    self.show_goals(bar, done)
                    if len(idx) == 0:
                        break
                    percep = percep_all.rows(idx)
        if budget is not None:
            x_adv = project_exact(x_adv, x, budget, self.norm)
        return x_adv, iterations

    def _frame_step(self, xa: torch.Tensor, g_class: torch.Tensor, g_percep: torch.Tensor,
                    scale: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One step with both gradients normalised per frame and body (the CVPR 2021 code)."""
        def frame_norm(g: torch.Tensor) -> torch.Tensor:  # (N, 1, T, 1, M)
            return torch.linalg.vector_norm(g, dim=(1, 3), keepdim=True).clamp_min(1e-20)

        s = scale.view(-1, 1, 1, 1, 1) * mask
        a = s * self.w / frame_norm(g_class)
        b = s * (1 - self.w) / frame_norm(g_percep)
        return xa - (g_class * a + g_percep * b)

    def _realign(self, xa: torch.Tensor, xc: torch.Tensor, mask: torch.Tensor,
                 budget: float | None) -> torch.Tensor:
        """``xa`` on the clean bone lengths (frames outside ``mask`` stay clean, bit for bit)."""
        frames = mask > 0
        if budget is None:
            return realign_bone_lengths(xa, xc, self.skeleton, mask=frames,
                                        max_angle_deg=self.max_angle_deg)
        return realign_within_budget(xa, xc, self.skeleton, budget, mask=frames,
                                     max_angle_deg=self.max_angle_deg, norm=self.norm)
