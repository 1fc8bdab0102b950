"""Joint-angle trajectories of the procedural actions of :mod:`skelrobust.data.synthetic`.

Each action is a function of :class:`ActionParams` (the action's progress
``u ∈ [0, 1]`` per clip and frame, plus per-clip amplitude, repetitions, phase
and a few uniform numbers) that returns *channels*: a mapping from
``"<joint>.<dof>"`` to angles in degrees, each broadcastable to ``(n, T)``.
Channels that an action leaves out keep the clip's rest pose.

Degrees of freedom, in anatomical terms (left and right mirror each other):

* limbs: ``flex`` (forward flexion; the knee's ``flex`` bends it backwards),
  ``abd`` (abduction, away from the midline), ``hab`` (horizontal abduction,
  backwards about the vertical axis; negative brings an arm across the body),
  ``ext`` (external rotation about the bone);
* trunk and neck: ``flex`` (bend forward), ``abd`` (lateral bend to the right),
  ``hab`` (axial twist to the left).

Two leg channels are *global*: ``<side>_hip.flex`` is the pitch of the thigh
from the vertical and ``<side>_ankle.flex`` the pitch of the foot from the
floor (0 = flat, negative = toes down), so bending the trunk does not move
the legs and feet stay flat unless an action says otherwise. Two channels are
not angles: ``heading`` (degrees of turning about the vertical, to the left)
and ``lift`` (metres of flight above the floor).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ACTIONS", "ActionParams", "Channels", "ease", "keyframes", "plateau", "window"]

Channels = dict[str, np.ndarray]


@dataclass(frozen=True)
class ActionParams:
    """Per-clip parameters of ``n`` clips of one action over ``T`` frames."""

    u: np.ndarray  # (n, T) progress of the action in [0, 1] (0 before onset, 1 after the end)
    amp: np.ndarray  # (n, 1) amplitude factor around 1
    reps: np.ndarray  # (n, 1) repetitions of a periodic action (1 otherwise)
    phase: np.ndarray  # (n, 1) cycle offset in radians
    extra: np.ndarray  # (n, 4) uniform numbers in [0, 1) for action-specific variation


def ease(x: np.ndarray) -> np.ndarray:
    """Smoothstep ``3x² − 2x³`` of ``x`` clipped to ``[0, 1]`` (zero slope at both ends)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def window(u: np.ndarray, a: float, b: float) -> np.ndarray:
    """Progress ``u`` rescaled so that ``[a, b]`` maps onto ``[0, 1]`` (clipped)."""
    return np.clip((u - a) / (b - a), 0.0, 1.0)


def plateau(u: np.ndarray, ramp: float) -> np.ndarray:
    """0 → 1 over the first ``ramp`` of ``u``, 1, then back to 0 over the last ``ramp``."""
    return ease(u / ramp) * ease((1.0 - u) / ramp)


def keyframes(u: np.ndarray, times: Sequence[float], values: Sequence[float]) -> np.ndarray:
    """Eased piecewise interpolation of ``values`` at increasing ``times`` (from 0 to 1)."""
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    i = np.clip(np.searchsorted(t, u, side="right") - 1, 0, len(t) - 2)
    f = ease((u - t[i]) / (t[i + 1] - t[i]))
    return v[i] + (v[i + 1] - v[i]) * f


def pulses(v: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``k`` smooth bumps ``sin²(π·frac(k·v))`` over ``v ∈ [0, 1]``, zero at both ends."""
    return np.sin(np.pi * ((v * k) % 1.0)) ** 2


def _other(side: str) -> str:
    return "left" if side == "right" else "right"


def _both(dof: str, value: np.ndarray | float) -> Channels:
    """The same channel on the left and the right joint (mirrored by the body model)."""
    return {f"left_{dof}": np.asarray(value), f"right_{dof}": np.asarray(value)}


# ---------------------------------------------------------------------- actions
def _arm_up(p: ActionParams, side: str, e: np.ndarray, swing: np.ndarray) -> Channels:
    """One arm raised (``e`` 0 → 1) to the side, forearm up, tilted by ``swing ∈ [−1, 1]``."""
    return {
        f"{side}_shoulder.abd": (85 + 20 * p.extra[:, :1]) * p.amp * e,
        f"{side}_shoulder.hab": -15 * e, f"{side}_shoulder.ext": 65 * e,
        f"{side}_elbow.flex": 80 * e + 28 * p.amp * swing, f"{side}_wrist.flex": 15 * swing,
        "spine_shoulder.abd": (4 if side == "left" else -4) * e,
        f"{_other(side)}_elbow.flex": 5 * e,
    }


def _wave(side: str) -> Callable[[ActionParams], Channels]:
    def wave(p: ActionParams) -> Channels:
        """Raise one arm, swing the forearm ``reps`` times, lower the arm."""
        swing = plateau(p.u, 0.3) * np.sin(2 * np.pi * p.reps * p.u + p.phase)
        return _arm_up(p, side, plateau(p.u, 0.2), swing)

    return wave


def _hand(side: str, up: bool) -> Callable[[ActionParams], Channels]:
    def hand(p: ActionParams) -> Channels:
        """Raise one hand into the waving pose and keep it up (``up``), or the time reverse.

        The forearm's tilt ``sin(φ)`` with a random phase has the distribution of a
        wave's ``sin(ωt + φ)`` over time, so single frames do not tell them apart.
        """
        e = ease(p.u if up else 1.0 - p.u)
        return _arm_up(p, side, e, e * np.sin(p.phase))

    return hand


def _punch(p: ActionParams) -> Channels:
    """Guard with both fists, then ``reps`` fast straight punches with the right arm."""
    e = plateau(p.u, 0.2)
    q = pulses(window(p.u, 0.2, 0.8), p.reps) ** 1.5 * p.amp
    ch = {**_both("shoulder.flex", 35 * e), **_both("shoulder.abd", 12 * e),
          **_both("shoulder.hab", -5 * e), **_both("elbow.flex", 115 * e)}
    ch["right_shoulder.flex"] = ch["right_shoulder.flex"] + 50 * q
    ch["right_shoulder.hab"] = ch["right_shoulder.hab"] - 5 * q
    ch["right_elbow.flex"] = 115 * e - 110 * np.minimum(q, 1.0)
    ch["spine_shoulder.hab"] = 18 * q
    ch["spine_base.hab"] = 6 * q
    return ch


def _kick(p: ActionParams) -> Channels:
    """Front kick with the right leg: chamber the knee, extend, retract; arms out for balance."""
    v = window(p.u, 0.15, 0.85)
    c, q = np.sin(np.pi * v), np.sin(np.pi * v) ** 2
    e = plateau(p.u, 0.15)
    thigh = (65 + 20 * p.extra[:, :1]) * p.amp * q
    knee = 100 * c * (1 - q) + 10 * c
    return {
        "right_hip.flex": thigh, "right_knee.flex": knee,
        "right_ankle.flex": thigh - knee - 20 * c,  # foot follows the shank, toes pointed
        "left_knee.flex": 10 * e, "left_hip.flex": 5 * e,
        "spine_base.flex": -12 * q,
        **_both("shoulder.abd", 25 * e), **_both("elbow.flex", 40 * e),
    }


def _seat(p: ActionParams, s: np.ndarray, lean: np.ndarray, depth: float = 1.0) -> Channels:
    """Lowered pose shared by sit_down, stand_up and squat: ``s`` 0 (standing) → 1 (low)."""
    chair = (0.92 + 0.16 * p.extra[:, :1]) * p.amp ** 0.5
    return {
        **_both("hip.flex", 88 * chair * s), **_both("knee.flex", 92 * chair * depth * s),
        "spine_base.flex": 32 * lean, "spine_mid.flex": 10 * lean, "neck.flex": 8 * lean,
        **_both("shoulder.flex", 15 * s + 25 * lean), **_both("elbow.flex", 35 * s + 10 * lean),
    }


def _sit_down(p: ActionParams) -> Channels:
    """Lower onto a (virtual) chair and stay seated."""
    return _seat(p, ease(p.u), np.sin(np.pi * p.u) ** 2)


def _stand_up(p: ActionParams) -> Channels:
    """Rise from seated to standing: the exact time reverse of :func:`_sit_down`."""
    u = 1.0 - p.u
    return _seat(p, ease(u), np.sin(np.pi * u) ** 2)


def _squat(p: ActionParams) -> Channels:
    """Squat down, hold briefly, come back up, heels on the floor (the poses of sit_down)."""
    hold = 0.1 + 0.2 * p.extra[:, 3:4]
    down = np.clip(p.u / (0.5 - hold / 2), 0, 1)
    up = np.clip((1.0 - p.u) / (0.5 - hold / 2), 0, 1)
    lean = np.sin(np.pi * down) ** 2 + np.sin(np.pi * up) ** 2
    return _seat(p, ease(down) * ease(up), lean)


def _jump(p: ActionParams) -> Channels:
    """``reps`` vertical jumps: crouch with arms back, fly with arms up, land in a crouch."""
    v = (p.u * p.reps) % 1.0
    c = keyframes(v, [0, 0.25, 0.4, 0.6, 0.75, 1], [0, 1, 0, 0, 0.8, 0])
    x = window(v, 0.4, 0.6)
    flight = 4 * x * (1 - x)
    arms = keyframes(v, [0, 0.25, 0.4, 0.5, 0.6, 0.75, 1], [0, -35, 60, 140, 90, 10, 0])
    return {
        **_both("hip.flex", 60 * p.amp * c), **_both("knee.flex", 85 * p.amp * c),
        **_both("ankle.flex", -35 * flight), "spine_base.flex": 25 * c,
        **_both("shoulder.flex", arms * p.amp), **_both("elbow.flex", 15 * c),
        "lift": (0.12 + 0.16 * p.extra[:, :1]) * p.amp * flight,
    }


def _walk_in_place(p: ActionParams) -> Channels:
    """March on the spot: alternate knee lifts, arms swinging in opposition."""
    e = plateau(p.u, 0.15)
    th = 2 * np.pi * p.reps * p.u + p.phase
    sin = np.sin(th) * e
    lift_l, lift_r = np.maximum(sin, 0) ** 2, np.maximum(-sin, 0) ** 2
    a = p.amp * (0.9 + 0.3 * p.extra[:, :1])
    return {
        "left_hip.flex": 45 * a * lift_l, "left_knee.flex": 80 * a * lift_l,
        "right_hip.flex": 45 * a * lift_r, "right_knee.flex": 80 * a * lift_r,
        "left_shoulder.flex": -25 * a * sin, "right_shoulder.flex": 25 * a * sin,
        **_both("elbow.flex", 25 * e), "spine_shoulder.hab": 5 * sin,
    }


def _arms_forward(p: ActionParams, closing: np.ndarray) -> Channels:
    """Both arms forward at chest height; ``closing`` 0 (hands apart) → 1 (palms together)."""
    e = plateau(p.u, 0.2)
    height = (60 + 25 * p.extra[:, :1]) * p.amp
    return {
        **_both("shoulder.flex", height * e), **_both("elbow.flex", 45 * e),
        **_both("shoulder.hab", 22 * e - 37 * closing), **_both("shoulder.ext", -20 * e),
    }


def _clap(p: ActionParams) -> Channels:
    """Hold the arms forward and clap ``reps`` times."""
    cycle = 0.5 - 0.5 * np.cos(2 * np.pi * p.reps * window(p.u, 0.2, 0.8))
    return _arms_forward(p, plateau(p.u, 0.3) * cycle)


def _arms_up(p: ActionParams, e: np.ndarray) -> Channels:
    """Both arms overhead (``e`` 0 → 1) in a random plane between the side and the front."""
    plane = 70 * p.extra[:, :1]
    return {
        **_both("shoulder.abd", 150 * p.amp * e), **_both("shoulder.hab", -plane * e),
        **_both("shoulder.ext", 40 * e), "neck.flex": -10 * e,
    }


def _raise_both_arms(p: ActionParams) -> Channels:
    """Raise both arms overhead and keep them up."""
    return _arms_up(p, ease(p.u))


def _lower_both_arms(p: ActionParams) -> Channels:
    """Lower both arms from overhead: the exact time reverse of :func:`_raise_both_arms`."""
    return _arms_up(p, ease(1.0 - p.u))


def _bow(p: ActionParams) -> Channels:
    """Bow from the hips with the arms hanging, hold, straighten up."""
    b = keyframes(p.u, [0, 0.35, 0.6, 1], [0, 1, 1, 0])
    bend = (35 + 20 * p.extra[:, :1]) * p.amp * b
    return {
        "spine_base.flex": 0.6 * bend, "spine_mid.flex": 0.25 * bend,
        "spine_shoulder.flex": 0.15 * bend, "neck.flex": 15 * b,
        **_both("hip.flex", -6 * b), **_both("shoulder.flex", 0.85 * bend),
    }


def _turn_around(p: ActionParams) -> Channels:
    """Turn on the spot by about 180° (left or right) in two small steps."""
    direction = np.where(p.extra[:, 1:2] < 0.5, -1.0, 1.0)
    s, env = ease(p.u), np.sin(np.pi * p.u)
    step = np.sin(4 * np.pi * p.u)
    lift_l, lift_r = env * np.maximum(step, 0) ** 2, env * np.maximum(-step, 0) ** 2
    return {
        "heading": direction * (150 + 60 * p.extra[:, :1]) * s,
        "spine_shoulder.hab": direction * 12 * env, "neck.hab": direction * 15 * env,
        "left_hip.flex": 25 * lift_l, "left_knee.flex": 45 * lift_l,
        "right_hip.flex": 25 * lift_r, "right_knee.flex": 45 * lift_r,
    }


_THROW_T = (0, 0.3, 0.5, 0.6, 0.72, 1)


def _throw(p: ActionParams) -> Channels:
    """Right overhand throw: cock the arm back, step, whip forward, follow through."""
    def k(*values: float) -> np.ndarray:
        return keyframes(p.u, _THROW_T, values) * p.amp

    return {
        "right_shoulder.abd": k(0, 85, 95, 95, 50, 0),
        "right_shoulder.hab": k(0, 25, 20, -30, -60, 0),
        "right_shoulder.ext": k(0, 90, 100, 10, -10, 0),
        "right_elbow.flex": k(0, 95, 100, 20, 40, 0),
        "left_shoulder.flex": k(0, 70, 70, 30, 10, 0),
        "left_shoulder.abd": k(0, 10, 10, 20, 20, 0),
        "spine_shoulder.hab": k(0, -25, -25, 25, 30, 0),
        "spine_base.flex": k(0, -5, -5, 15, 20, 0),
        "left_hip.flex": k(0, 30, 20, 15, 10, 0),
        "left_knee.flex": k(0, 40, 10, 10, 5, 0),
    }


# name -> (trajectory, (min, max) repetitions)
ACTIONS: dict[str, tuple[Callable[[ActionParams], Channels], tuple[int, int]]] = {
    "wave_left": (_wave("left"), (2, 4)),
    "wave_right": (_wave("right"), (2, 4)),
    "raise_left_hand": (_hand("left", True), (1, 1)),
    "raise_right_hand": (_hand("right", True), (1, 1)),
    "lower_left_hand": (_hand("left", False), (1, 1)),
    "lower_right_hand": (_hand("right", False), (1, 1)),
    "punch": (_punch, (1, 2)),
    "kick": (_kick, (1, 1)),
    "squat": (_squat, (1, 1)),
    "jump": (_jump, (1, 2)),
    "walk_in_place": (_walk_in_place, (2, 4)),
    "clap": (_clap, (3, 5)),
    "raise_both_arms": (_raise_both_arms, (1, 1)),
    "lower_both_arms": (_lower_both_arms, (1, 1)),
    "bow": (_bow, (1, 1)),
    "turn_around": (_turn_around, (1, 1)),
    "throw": (_throw, (1, 1)),
    "sit_down": (_sit_down, (1, 1)),
    "stand_up": (_stand_up, (1, 1)),
}
