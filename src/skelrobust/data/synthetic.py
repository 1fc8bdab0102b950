r"""``synthetic``: procedural human actions on the ``ntu25`` skeleton (no files needed).

The embedded default dataset. Every clip is made by forward kinematics (FK)
from joint-angle trajectories, so it is a physically consistent skeleton: bone
lengths are exactly constant within a clip and only joint angles, the global
heading and the root position change over time.

**Body.** The kinematic tree is the ``ntu25`` joint set rooted, for FK, at
``spine_base`` (the pelvis); the layout's own graph root (``spine_shoulder``)
is irrelevant here. Each joint ``c`` has a rest offset ``o_c`` from its FK
parent, in metres in the body frame (x right, y forward, z up) of an average
1.75 m adult (thigh 0.43 m, shank 0.42 m, upper arm 0.28 m, ...). A clip's
body scales all offsets by a global factor (height ±15 %) times a per-segment
factor of a few percent, the same on the left and the right.

**Angles → positions.** Every joint ``j`` with children has a local rotation
``R_j(t) = R_z(γ) R_y(β) R_x(α) R_z(δ)`` from four angles (flexion, abduction,
horizontal abduction, axial rotation; see :mod:`~skelrobust.data.synthetic_actions`,
where left and right mirror each other). Down the tree, in topological order,

.. math::

    G_{root} = R_z(\psi(t))\, R_{root}, \qquad G_j = G_{parent(j)} R_j, \qquad
    p_c = p_j + G_j\, o_c \quad \text{for every child } c \text{ of } j,

where ``ψ`` is the heading (view yaw plus turning). The hand, its tip and the
thumb move rigidly with the wrist, the foot with the ankle, the head with the
neck.

**Actions.** An action maps the per-frame progress ``u ∈ [0, 1]`` (set by the
clip's onset and duration, i.e. its tempo) and per-clip amplitude,
repetitions, cycle phase and a few uniform numbers to joint-angle channels, on
top of a per-clip rest pose (arm hang, elbow and knee bend, posture). Several
classes come in groups that share their poses and differ only in time order:
``raise_both_arms``/``lower_both_arms`` and ``raise_*_hand``/``lower_*_hand``
are exact time reverses (and pass through the poses of ``wave_*``),
``sit_down``/``stand_up`` too, and ``squat`` goes through the same lowered
poses. Single frames do not tell them apart; a classifier has to look at
motion. (With ``center_mode="first"`` a frame still shows its height relative
to frame 0, which reveals sit_down from stand_up; the arm groups stay ambiguous
because the centre joint does not move.)

**Noise and placement.** Sensor noise is added in angle space (smoothed
per-joint jitter plus a slow postural sway) and as a rigid jitter of the whole
body, never per joint, so bones stay rigid. The root is then placed so that
the lowest foot joint touches the floor ``z = 0`` (plus a flight height for
``jump``) and the supporting foot does not slide, at a random floor position,
facing a random yaw of ±45°. World frame: z up, metres.

Everything is vectorised over clips and frames (loops run over the actions and
the joints only); the same seed gives bit-identical data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from skelrobust.data import transforms
from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.registry import DatasetSpec, register_dataset
from skelrobust.data.synthetic_actions import ACTIONS, ActionParams
from skelrobust.errors import ConfigError, unknown_name
from skelrobust.skeleton import get_skeleton

__all__ = [
    "DRIVEN_JOINTS",
    "REST_OFFSETS",
    "SPLIT_SIZES",
    "SYNTHETIC_CLASSES",
    "forward_kinematics",
    "generate_synthetic",
    "load_synthetic",
]

SYNTHETIC_CLASSES: tuple[str, ...] = tuple(ACTIONS)
SPLIT_SIZES: dict[str, int] = {"train": 2000, "val": 400, "test": 600}
_SPLIT_SEED: dict[str, int] = {"train": 0, "val": 1, "test": 2}
NOMINAL_HEIGHT_M = 1.75

_SKELETON = get_skeleton("ntu25")
_DOFS = ("flex", "abd", "hab", "ext")

# (joint, FK parent, rest offset for the right side or the midline [m], segment group)
_BODY: list[tuple[str, str | None, tuple[float, float, float], str]] = [
    ("spine_base", None, (0.0, 0.0, 0.0), "trunk"),
    ("spine_mid", "spine_base", (0.0, -0.01, 0.25), "trunk"),
    ("spine_shoulder", "spine_mid", (0.0, -0.01, 0.25), "trunk"),
    ("neck", "spine_shoulder", (0.0, 0.01, 0.08), "neck"),
    ("head", "neck", (0.0, 0.02, 0.11), "neck"),
    ("{s}_shoulder", "spine_shoulder", (0.175, -0.01, -0.04), "clavicle"),
    ("{s}_elbow", "{s}_shoulder", (0.0, 0.0, -0.28), "upper_arm"),
    ("{s}_wrist", "{s}_elbow", (0.0, 0.0, -0.25), "forearm"),
    ("{s}_hand", "{s}_wrist", (0.0, 0.0, -0.07), "hand"),
    ("{s}_hand_tip", "{s}_hand", (0.0, 0.0, -0.085), "hand"),
    ("{s}_thumb", "{s}_hand", (-0.015, 0.035, -0.03), "hand"),
    ("{s}_hip", "spine_base", (0.085, 0.0, -0.07), "pelvis"),
    ("{s}_knee", "{s}_hip", (0.0, 0.0, -0.43), "thigh"),
    ("{s}_ankle", "{s}_knee", (0.0, 0.0, -0.42), "shank"),
    ("{s}_foot", "{s}_ankle", (0.0, 0.13, -0.06), "foot"),
]


def _build_body() -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """FK parents ``(V,)``, rest offsets ``(V, 3)`` and segment groups in ``ntu25`` order."""
    v = _SKELETON.num_joints
    parents, offsets, group = np.full(v, -1), np.zeros((v, 3)), np.zeros(v, dtype=np.int64)
    groups = tuple(dict.fromkeys(g for *_, g in _BODY))
    for name, parent, off, g in _BODY:
        for side, mirror in (("left", -1.0), ("right", 1.0)) if "{s}" in name else (("", 1.0),):
            j = _SKELETON.joint_index(name.format(s=side))
            parents[j] = -1 if parent is None else _SKELETON.joint_index(parent.format(s=side))
            offsets[j] = (mirror * off[0], off[1], off[2])
            group[j] = groups.index(g)
    return parents, offsets, group, groups


_FK_PARENT, REST_OFFSETS, _GROUP, _GROUPS = _build_body()
_ROOT = _SKELETON.joint_index("spine_base")
_FK_ORDER: list[int] = [_ROOT]
for _j in _FK_ORDER:  # breadth-first: parents before children
    _FK_ORDER += [int(c) for c in np.flatnonzero(_j == _FK_PARENT)]
_HAS_CHILD = np.isin(np.arange(len(_FK_PARENT)), _FK_PARENT)
# Joints with a rotation of their own; the hands move rigidly with the wrists.
DRIVEN_JOINTS: tuple[str, ...] = tuple(
    n for n in _SKELETON.joint_names if _HAS_CHILD[_SKELETON.joint_index(n)] and "hand" not in n)
_SLOT = {n: i for i, n in enumerate(DRIVEN_JOINTS)}


def _signs(name: str) -> tuple[float, float, float, float]:
    """Anatomical angles → (pitch, roll, yaw, twist) signs; left mirrors right."""
    if not name.startswith(("left_", "right_")):
        return (-1.0, 1.0, 1.0, 1.0)  # trunk/neck: forward bend is a negative pitch
    m = 1.0 if name.startswith("left_") else -1.0
    return (-1.0 if name.endswith("knee") else 1.0, m, m, m)


_SIGN = np.array([_signs(n) for n in DRIVEN_JOINTS])  # (D, 4)
_CONTACT = [_SKELETON.joint_index(n) for n in
            ("left_foot", "right_foot", "left_ankle", "right_ankle")]


def _channel(key: str) -> tuple[int, int]:
    joint, _, dof = key.partition(".")
    return _SLOT[joint], _DOFS.index(dof)


def _rotations(a: np.ndarray, twist: bool = True) -> np.ndarray:
    """``R_z(a₂) R_y(a₁) R_x(a₀) R_z(a₃)`` for angles ``(..., 4)`` in radians → ``(..., 3, 3)``.

    ``twist=False`` skips the last factor (for joints whose ``a₃`` is always zero).
    """
    ca, cb, cc = np.cos(np.moveaxis(a[..., :3], -1, 0))
    sa, sb, sc = np.sin(np.moveaxis(a[..., :3], -1, 0))
    r = np.empty((*a.shape[:-1], 3, 3))
    c0 = (cc * cb, sc * cb, -sb)  # columns of R_z R_y R_x
    c1 = (cc * sb * sa - sc * ca, sc * sb * sa + cc * ca, cb * sa)
    c2 = (cc * sb * ca + sc * sa, sc * sb * ca - cc * sa, cb * ca)
    cd, sd = (np.cos(a[..., 3]), np.sin(a[..., 3])) if twist else (1.0, 0.0)
    for i in range(3):  # right-multiplying by R_z(a₃) mixes the first two columns
        r[..., i, 0] = c0[i] * cd + c1[i] * sd if twist else c0[i]
        r[..., i, 1] = c1[i] * cd - c0[i] * sd if twist else c1[i]
        r[..., i, 2] = c2[i]
    return r


def forward_kinematics(angles_deg: np.ndarray, heading_deg: np.ndarray,
                       offsets: np.ndarray) -> np.ndarray:
    """Joint positions ``(N, T, V, 3)`` relative to the root, from FK.

    ``angles_deg`` is ``(N, T, D, 4)`` anatomical angles of the driven joints
    (:data:`DRIVEN_JOINTS`, channels flex/abd/hab/ext), ``heading_deg`` ``(N, T)``
    the turn about the vertical, ``offsets`` ``(N, V, 3)`` the body's bone offsets
    (:data:`REST_OFFSETS` scaled).
    """
    a = np.deg2rad(angles_deg * _SIGN)
    a[:, :, _SLOT["spine_base"], 2] += np.deg2rad(heading_deg)
    n, t = a.shape[:2]
    pos = np.zeros((n, t, len(_FK_PARENT), 3))
    frames: dict[int, np.ndarray] = {}
    for j in _FK_ORDER:
        p = _FK_PARENT[j]
        if p >= 0:  # p_j = p_parent + G_parent · o_j, column by column
            pos[:, :, j] = pos[:, :, p]
            for k in np.flatnonzero(REST_OFFSETS[j]):
                pos[:, :, j] += frames[p][..., k] * offsets[:, None, j, k, None]
        name = _SKELETON.joint_names[j]
        if name in _SLOT:
            slot = _SLOT[name]
            rot = _rotations(a[:, :, slot], twist=bool(np.any(a[:, :, slot, 3])))
            frames[j] = rot if p < 0 else frames[p] @ rot
        elif _HAS_CHILD[j]:
            frames[j] = frames[p]
    return pos


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Smooth unit-variance Gaussian noise of ``shape`` whose last axis is time.

    A random combination of Gaussian bumps of width ``sigma`` frames spaced ``sigma/2``
    apart (and beyond both ends), normalised so every frame has unit variance: a
    Gaussian process like filtered white noise, with one BLAS product and no edge effects.
    """
    t = shape[-1]
    step = max(1.0, sigma / 2)
    knots = np.arange(-4 * sigma, t - 1 + 4 * sigma + step, step)
    basis = np.exp(-0.5 * ((np.arange(t)[:, None] - knots[None]) / sigma) ** 2)
    basis /= np.sqrt((basis ** 2).sum(1, keepdims=True))
    z = rng.standard_normal((int(np.prod(shape[:-1])), len(knots)))
    return (z @ basis.T).reshape(shape)  # 2-D product: one BLAS call, not a batched loop


def _rest_pose(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-clip rest pose ``(n, D, 4)`` in degrees: arm hang, elbow/knee bend, posture."""
    rest = np.zeros((n, len(DRIVEN_JOINTS), 4))
    u = rng.random((n, 8))
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        rest[:, _SLOT[f"{side}_shoulder"], 1] = 3 + 9 * u[:, 0] + sgn * 2 * (u[:, 1] - 0.5)
        rest[:, _SLOT[f"{side}_elbow"], 0] = 5 + 15 * u[:, 2] + sgn * 3 * (u[:, 1] - 0.5)
        rest[:, _SLOT[f"{side}_hip"], 1] = 5 * u[:, 3]
        rest[:, _SLOT[f"{side}_knee"], 0] = 6 * u[:, 4]
        rest[:, _SLOT[f"{side}_hip"], 0] = 3 * u[:, 4]
    rest[:, _SLOT["spine_base"], 0] = -3 + 8 * u[:, 5]
    rest[:, _SLOT["spine_mid"], 0] = -3 + 8 * u[:, 6]
    rest[:, _SLOT["neck"], 0] = -5 + 15 * u[:, 7]
    return rest


def _legs_to_local(ang: np.ndarray) -> None:
    """Convert the global thigh and foot pitches of the action channels to local joint angles."""
    bend = ang[:, :, _SLOT["spine_base"], 0]
    for side in ("left", "right"):
        hip, knee, ankle = (_SLOT[f"{side}_{j}"] for j in ("hip", "knee", "ankle"))
        thigh = ang[:, :, hip, 0].copy()
        ang[:, :, ankle, 0] += ang[:, :, knee, 0] - thigh  # cancel the shank pitch
        ang[:, :, hip, 0] = thigh + bend


def _chain(j: int) -> list[int]:
    """Joint ``j`` and its FK ancestors below the root (their offsets sum to its rest position)."""
    out = []
    while _FK_PARENT[j] >= 0:
        out.append(j)
        j = int(_FK_PARENT[j])
    return out


def _place(pos: np.ndarray, heading_deg: np.ndarray, offsets: np.ndarray,
           lift: np.ndarray) -> np.ndarray:
    """Root translation ``(N, T, 3)``: lowest foot on the floor, supporting foot not sliding."""
    z = pos[:, :, _CONTACT, 2]
    zmin = z.min(-1)
    feet = _CONTACT[:2]
    rest = np.stack([offsets[:, _chain(j)].sum(1) for j in feet], 1)  # (N, 2, 3) unrotated
    h = np.deg2rad(heading_deg)[..., None]  # (N, T, 1)
    rx = np.cos(h) * rest[:, None, :, 0] - np.sin(h) * rest[:, None, :, 1]
    ry = np.sin(h) * rest[:, None, :, 0] + np.cos(h) * rest[:, None, :, 1]
    slide = pos[:, :, feet, :2] - np.stack([rx, ry], -1)  # (N, T, 2, 2)
    w = np.exp(-(z[:, :, :2] - zmin[..., None]) / 0.015)
    w /= w.sum(-1, keepdims=True)
    shift = -(w[..., None] * slide).sum(2)
    return np.concatenate([shift, (lift - zmin)[..., None]], -1)


def generate_synthetic(num_clips: int, num_frames: int = 64, seed: int = 0,
                       classes: Sequence[str] | None = None, noise_deg: float = 0.5,
                       noise_mm: float = 3.0, sway_deg: float = 1.0, max_yaw_deg: float = 45.0,
                       scale_range: float = 0.15, bone_range: float = 0.04) -> SkeletonDataset:
    """Generate ``num_clips`` raw world-frame clips ``(N, 3, T, 25, 1)`` of procedural actions.

    Classes (``classes``, default :data:`SYNTHETIC_CLASSES`) are balanced and
    shuffled. ``noise_deg`` is the std of the per-joint, per-frame angle jitter
    (smoothed over about a frame), ``sway_deg`` that of a slow postural sway of
    every joint, ``noise_mm`` that of the rigid whole-body jitter; ``max_yaw_deg`` bounds
    the initial facing direction, ``scale_range`` the body-size variation and
    ``bone_range`` the extra per-segment length variation. Meta columns:
    ``yaw_deg``, ``scale``, ``height_m``, ``tempo`` (1 / fraction of the clip
    the action takes), ``onset``, ``amplitude``, ``reps``, ``floor_x``, ``floor_y``.
    """
    names = tuple(SYNTHETIC_CLASSES if classes is None else classes)
    for c in names:
        if c not in ACTIONS:
            raise unknown_name("synthetic class", c, SYNTHETIC_CLASSES)
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"classes: expected distinct class names, got {list(names)}")
    if int(num_clips) < 1 or int(num_frames) < 2:
        raise ConfigError(f"generate_synthetic: need num_clips >= 1 and num_frames >= 2, got "
                          f"{num_clips} and {num_frames}")
    if int(seed) < 0:
        raise ConfigError(f"generate_synthetic: seed must be >= 0, got {seed}")
    for arg, val, hi in (("noise_deg", noise_deg, 30), ("noise_mm", noise_mm, 100),
                         ("sway_deg", sway_deg, 30),
                         ("max_yaw_deg", max_yaw_deg, 180), ("scale_range", scale_range, 0.5),
                         ("bone_range", bone_range, 0.5)):
        if not 0 <= val <= hi:
            raise ConfigError(f"generate_synthetic: {arg} must be in [0, {hi}], got {val}")
    n, t = int(num_clips), int(num_frames)
    rng = np.random.default_rng(int(seed))
    y = (np.arange(n) % len(names))[rng.permutation(n)]

    scale = 1.0 + rng.uniform(-scale_range, scale_range, n)
    segment = 1.0 + rng.uniform(-bone_range, bone_range, (n, len(_GROUPS)))
    offsets = REST_OFFSETS[None] * (scale[:, None] * segment[:, _GROUP])[..., None]  # (n, V, 3)
    duration = rng.uniform(0.6, 0.9, n)
    onset = rng.random(n) * (1.0 - duration)
    u = np.clip((np.linspace(0.0, 1.0, t)[None] - onset[:, None]) / duration[:, None], 0, 1)
    amp, rep_u = rng.uniform(0.8, 1.15, n), rng.random(n)
    phase, extra = rng.uniform(0, 2 * np.pi, n), rng.random((n, 4))
    yaw = rng.uniform(-max_yaw_deg, max_yaw_deg, n)
    floor = rng.uniform(-1.0, 1.0, (n, 2))

    ang = np.repeat(_rest_pose(rng, n)[:, None], t, axis=1)  # (n, T, D, 4)
    heading, lift, reps = np.zeros((n, t)), np.zeros((n, t)), np.ones(n, dtype=np.int64)
    for c, name in enumerate(names):
        idx = np.flatnonzero(y == c)
        fn, (lo, hi) = ACTIONS[name]
        reps[idx] = lo + np.minimum((rep_u[idx] * (hi - lo + 1)).astype(np.int64), hi - lo)
        params = ActionParams(u=u[idx], amp=amp[idx, None], reps=reps[idx, None],
                              phase=phase[idx, None], extra=extra[idx])
        for key, val in fn(params).items():
            val = np.broadcast_to(val, (len(idx), t))
            if key == "heading":
                heading[idx] = val
            elif key == "lift":
                lift[idx] = val
            else:
                j, d = _channel(key)
                ang[idx, :, j, d] += val
    _legs_to_local(ang)
    shape = (n, len(DRIVEN_JOINTS), 3, t)
    jitter = (noise_deg * _smooth_noise(rng, shape, 1.0)
              + sway_deg * _smooth_noise(rng, shape, max(2.0, t / 8)))
    ang[..., :3] += jitter.transpose(0, 3, 1, 2)
    heading += yaw[:, None]

    pos = forward_kinematics(ang, heading, offsets)
    root = _place(pos, heading, offsets, lift)
    root[..., :2] += floor[:, None]
    root += noise_mm / 1000.0 * _smooth_noise(rng, (n, 3, t), 1.0).transpose(0, 2, 1)
    pos += root[:, :, None]
    x = np.ascontiguousarray(pos.transpose(0, 3, 1, 2)[..., None], dtype=np.float32)
    meta = {"yaw_deg": yaw, "scale": scale, "height_m": NOMINAL_HEIGHT_M * scale,
            "tempo": 1.0 / duration, "onset": onset, "amplitude": amp, "reps": reps,
            "floor_x": floor[:, 0], "floor_y": floor[:, 1]}
    info: dict[str, Any] = {"generator": "synthetic", "seed": int(seed), "noise_deg": noise_deg,
                            "noise_mm": noise_mm, "sway_deg": sway_deg,
                            "frame": "world, z up, metres"}
    return SkeletonDataset(x=x, y=y, class_names=list(names), skeleton=_SKELETON,
                           lengths=np.full(n, t), meta=meta, name="synthetic", info=info)


def load_synthetic(root: Any, split: str, num_clips: int | None = None, num_frames: int = 64,
                   seed: int = 0, preprocess: bool = True, **kw: Any) -> SkeletonDataset:
    """Registry loader: split sizes 2000/400/600 and disjoint seeds ``seed·1000 + k``.

    With ``preprocess`` the clips are centred on the first frame's centre
    joint (global motion kept) and rotated into the body frame of frame 0.
    Other keyword arguments go to :func:`generate_synthetic`.
    """
    if split not in _SPLIT_SEED:
        raise unknown_name("split of dataset 'synthetic'", split, tuple(_SPLIT_SEED))
    size = SPLIT_SIZES[split] if num_clips is None else num_clips
    data = generate_synthetic(size, num_frames, seed=int(seed) * 1000 + _SPLIT_SEED[split], **kw)
    if preprocess:
        data = transforms.preprocess(data, center_mode="first", normalize_view=True)
    data.info.update(split=split, base_seed=int(seed), preprocessed=bool(preprocess))
    return data


register_dataset(DatasetSpec(
    name="synthetic", layout="ntu25", num_classes=len(SYNTHETIC_CLASSES),
    splits=("train", "val", "test"), needs_root=False, loader=load_synthetic,
    description="procedural actions by forward kinematics on the ntu25 skeleton "
                f"({len(SYNTHETIC_CLASSES)} classes, no files needed)",
    protocol="train/val/test of 2000/400/600 clips from disjoint seeds seed*1000+{0,1,2}; "
             "centred on the first frame, view-normalised at frame 0",
))
