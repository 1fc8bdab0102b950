"""Skeleton layouts: joints, kinematic tree, bones, adjacency and body parts.

A :class:`Skeleton` is pure data (joint names and a parent array rooted at the
centre joint); every model derives its graph from it and every dataset carries
one, so layouts are never special-cased in code. Motion tensors follow the
``(N, C=3, T, V, M)`` convention (see DESIGN.md); the geometric helpers here
also accept a single clip ``(C, T, V, M)`` and work on numpy arrays and torch
tensors alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from skelrobust.errors import LayoutError, ShapeError, unknown_name

__all__ = [
    "BodyFrame",
    "Skeleton",
    "get_skeleton",
    "list_skeletons",
    "register_skeleton",
]


@dataclass(frozen=True)
class BodyFrame:
    """Joints that define a body-centred frame (2s-AGCN view normalisation).

    Each entry is a tuple of joint indices whose mean is used, so layouts
    without a mid-hip joint (OpenPose, COCO) can average the two hips.
    """

    hip: tuple[int, ...]
    spine: tuple[int, ...]
    left_shoulder: tuple[int, ...]
    right_shoulder: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A joint layout: a tree of ``V`` joints rooted at the centre joint.

    ``parents[v]`` is the parent joint of ``v`` (``-1`` for the centre). Bones
    are the ``(child, parent)`` pairs of every non-root joint, in joint order.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    frame: BodyFrame
    left_right: tuple[tuple[int, int], ...] = ()
    parts: dict[str, tuple[int, ...]] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        v = len(self.joint_names)
        if len(self.parents) != v:
            raise LayoutError(
                f"layout {self.name!r}: {len(self.parents)} parents for {v} joints"
            )
        if len(set(self.joint_names)) != v:
            raise LayoutError(f"layout {self.name!r}: joint names are not unique")
        roots = [j for j, p in enumerate(self.parents) if p == -1]
        if len(roots) != 1:
            raise LayoutError(f"layout {self.name!r}: expected one root (parent -1), got {roots}")
        if any(not -1 <= p < v or p == j for j, p in enumerate(self.parents)):
            raise LayoutError(f"layout {self.name!r}: parent index out of range or self-loop")
        self._check_tree(roots[0])
        for group in (self.frame.hip, self.frame.spine, self.frame.left_shoulder,
                      self.frame.right_shoulder, *self.left_right, *self.parts.values()):
            if any(not 0 <= j < v for j in group):
                raise LayoutError(f"layout {self.name!r}: joint index out of range in {group}")

    def _check_tree(self, root: int) -> None:
        depth = self.depths  # raises on cycles
        if depth[root] != 0:
            raise LayoutError(f"layout {self.name!r}: root has non-zero depth")

    # ------------------------------------------------------------------ structure
    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def center(self) -> int:
        """Index of the centre (root) joint."""
        return self.parents.index(-1)

    @cached_property
    def depths(self) -> np.ndarray:
        """Number of bones between each joint and the centre, shape ``(V,)``."""
        v = self.num_joints
        depth = np.full(v, -1, dtype=np.int64)
        for j in range(v):
            chain, k = [], j
            while k != -1 and depth[k] < 0:
                chain.append(k)
                if len(chain) > v:
                    raise LayoutError(f"layout {self.name!r}: parent array has a cycle at {j}")
                k = self.parents[k]
            base = -1 if k == -1 else depth[k]
            for offset, node in enumerate(reversed(chain), start=1):
                depth[node] = base + offset
        return depth

    @cached_property
    def bones(self) -> np.ndarray:
        """``(B, 2)`` array of ``(child, parent)`` joint pairs, ``B = V - 1``."""
        pairs = [(j, p) for j, p in enumerate(self.parents) if p >= 0]
        return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)

    @property
    def num_bones(self) -> int:
        return len(self.bones)

    @cached_property
    def adjacency(self) -> np.ndarray:
        """Symmetric ``(V, V)`` 0/1 adjacency of the bone graph (no self-loops)."""
        a = np.zeros((self.num_joints, self.num_joints), dtype=np.float32)
        b = self.bones
        a[b[:, 0], b[:, 1]] = 1.0
        a[b[:, 1], b[:, 0]] = 1.0
        return a

    @cached_property
    def hop_distance(self) -> np.ndarray:
        """Shortest path length in bones between every pair of joints, ``(V, V)``."""
        v = self.num_joints
        reach = np.eye(v, dtype=bool)
        dist = np.where(reach, 0, np.iinfo(np.int64).max).astype(np.int64)
        step = self.adjacency.astype(bool)
        for hop in range(1, v):
            new = (reach.astype(np.int64) @ step.astype(np.int64)) > 0
            fresh = new & ~reach
            if not fresh.any():
                break
            dist[fresh] = hop
            reach |= new
        return dist

    @cached_property
    def angle_triplets(self) -> np.ndarray:
        """``(A, 3)`` joint triplets ``(a, shared, b)``, one per pair of adjacent bones.

        Two bones are adjacent when they share a joint; the joint angle is the
        angle at ``shared`` between the segments to ``a`` and to ``b``.
        """
        nbrs = [np.flatnonzero(row) for row in self.adjacency]
        out = [
            (a, j, b)
            for j, ns in enumerate(nbrs)
            for i, a in enumerate(ns)
            for b in ns[i + 1:]
        ]
        return np.asarray(out, dtype=np.int64).reshape(-1, 3)

    @cached_property
    def topological_order(self) -> np.ndarray:
        """Joint indices sorted so that every parent precedes its children."""
        return np.argsort(self.depths, kind="stable")

    @cached_property
    def mirror_permutation(self) -> np.ndarray:
        """Joint permutation swapping left and right (for mirror augmentation)."""
        perm = np.arange(self.num_joints)
        for left, right in self.left_right:
            perm[left], perm[right] = right, left
        return perm

    def joint_index(self, name: str) -> int:
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise unknown_name(f"joint of layout {self.name!r}", name, self.joint_names) from None

    def part_mask(self, *parts: str) -> np.ndarray:
        """Boolean ``(V,)`` mask of the joints in the named body parts."""
        mask = np.zeros(self.num_joints, dtype=bool)
        for part in parts:
            if part not in self.parts:
                raise unknown_name(f"body part of layout {self.name!r}", part, list(self.parts))
            mask[list(self.parts[part])] = True
        return mask

    # ------------------------------------------------------------------ geometry
    def check_motion(self, x: Any, name: str = "x") -> None:
        """Raise :class:`ShapeError` unless ``x`` is ``(N, 3, T, V, M)`` or ``(3, T, V, M)``."""
        shape = tuple(x.shape)
        if len(shape) not in (4, 5):
            raise ShapeError(
                f"{name}: expected (N, 3, T, V, M) or (3, T, V, M) motion, got shape {shape}"
            )
        c, v = shape[-4], shape[-2]
        if c != 3:
            raise ShapeError(f"{name}: expected 3 coordinates on axis -4, got {c} (shape {shape})")
        if v != self.num_joints:
            raise LayoutError(
                f"{name}: layout {self.name!r} has {self.num_joints} joints but the motion has "
                f"{v} (shape {shape})"
            )

    def bone_vectors(self, x: Any) -> Any:
        """Bone vectors ``x[child] - x[parent]``: ``(N, 3, T, B, M)`` (or without N)."""
        self.check_motion(x)
        b = self.bones
        return x[..., b[:, 0], :] - x[..., b[:, 1], :]

    def bone_lengths(self, x: Any) -> Any:
        """Bone lengths ``||x[child] - x[parent]||``: ``(N, T, B, M)`` (or without N)."""
        vec = self.bone_vectors(x)
        return (vec * vec).sum(-4) ** 0.5

    def joint_angles(self, x: Any, degrees: bool = False, eps: float = 1e-9) -> Any:
        """Angle between every pair of adjacent bones: ``(N, T, A, M)`` (or without N).

        ``θ = atan2(|u × v|, u · v)`` with ``u = x[a] - x[j]``, ``v = x[b] - x[j]``
        for each triplet of :attr:`angle_triplets`; stable near 0 and π.
        """
        self.check_motion(x)
        t = self.angle_triplets
        u = x[..., t[:, 0], :] - x[..., t[:, 1], :]
        v = x[..., t[:, 2], :] - x[..., t[:, 1], :]
        if isinstance(x, np.ndarray):
            cross = np.cross(u, v, axis=-4)
            sin = np.sqrt((cross * cross).sum(-4) + eps)
            ang = np.arctan2(sin, (u * v).sum(-4))
            return np.degrees(ang) if degrees else ang
        import torch

        cross = torch.linalg.cross(u, v, dim=-4)
        sin = ((cross * cross).sum(-4) + eps).sqrt()
        ang = torch.atan2(sin, (u * v).sum(-4))
        return torch.rad2deg(ang) if degrees else ang

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary of the layout."""
        return {
            "name": self.name,
            "num_joints": self.num_joints,
            "center": self.joint_names[self.center],
            "joints": list(self.joint_names),
            "parents": list(self.parents),
            "parts": {k: list(v) for k, v in self.parts.items()},
            "description": self.description,
        }


# ---------------------------------------------------------------------- registry
_LAYOUTS: dict[str, Skeleton] = {}


def register_skeleton(skeleton: Skeleton, overwrite: bool = False) -> Skeleton:
    """Add a layout to the registry (``overwrite`` to replace one)."""
    if skeleton.name in _LAYOUTS and not overwrite:
        raise LayoutError(f"layout {skeleton.name!r} is already registered")
    _LAYOUTS[skeleton.name] = skeleton
    return skeleton


def get_skeleton(name: str | Skeleton) -> Skeleton:
    """Return a registered layout by name (a :class:`Skeleton` is passed through)."""
    if isinstance(name, Skeleton):
        return name
    try:
        return _LAYOUTS[name]
    except KeyError:
        raise unknown_name("skeleton layout", str(name), list(_LAYOUTS)) from None


def list_skeletons() -> list[str]:
    return sorted(_LAYOUTS)


def _layout(
    name: str,
    joints: Sequence[tuple[str, str | None]],
    frame: dict[str, Sequence[str]],
    parts: dict[str, Sequence[str]],
    description: str,
) -> Skeleton:
    """Build a layout from ``(joint, parent)`` names; left/right pairs from ``left_``/``right_``."""
    names = [j for j, _ in joints]
    index = {n: i for i, n in enumerate(names)}
    parents = tuple(-1 if p is None else index[p] for _, p in joints)
    pairs = tuple(
        (index[n], index["right_" + n[5:]])
        for n in names
        if n.startswith("left_") and "right_" + n[5:] in index
    )

    def ids(group: Sequence[str]) -> tuple[int, ...]:
        return tuple(index[n] for n in group)

    return register_skeleton(
        Skeleton(
            name=name,
            joint_names=tuple(names),
            parents=parents,
            frame=BodyFrame(**{k: ids(v) for k, v in frame.items()}),
            left_right=pairs,
            parts={k: ids(v) for k, v in parts.items()},
            description=description,
        )
    )


def _limb(side: str, names: Sequence[str]) -> list[str]:
    return [f"{side}_{n}" for n in names]


# NTU RGB+D (Kinect v2) 25 joints, official order; the tree follows the
# ST-GCN / 2s-AGCN graph rooted at joint 21 (spine_shoulder), whose hand
# chain is hand -> thumb -> hand_tip.
_layout(
    "ntu25",
    [
        ("spine_base", "spine_mid"), ("spine_mid", "spine_shoulder"), ("neck", "spine_shoulder"),
        ("head", "neck"),
        ("left_shoulder", "spine_shoulder"), ("left_elbow", "left_shoulder"),
        ("left_wrist", "left_elbow"), ("left_hand", "left_wrist"),
        ("right_shoulder", "spine_shoulder"), ("right_elbow", "right_shoulder"),
        ("right_wrist", "right_elbow"), ("right_hand", "right_wrist"),
        ("left_hip", "spine_base"), ("left_knee", "left_hip"), ("left_ankle", "left_knee"),
        ("left_foot", "left_ankle"),
        ("right_hip", "spine_base"), ("right_knee", "right_hip"), ("right_ankle", "right_knee"),
        ("right_foot", "right_ankle"),
        ("spine_shoulder", None),
        ("left_hand_tip", "left_thumb"), ("left_thumb", "left_hand"),
        ("right_hand_tip", "right_thumb"), ("right_thumb", "right_hand"),
    ],
    frame={"hip": ["spine_base"], "spine": ["spine_mid"],
           "left_shoulder": ["left_shoulder"], "right_shoulder": ["right_shoulder"]},
    parts={
        "torso": ["spine_base", "spine_mid", "spine_shoulder", "neck", "head"],
        "left_arm": _limb("left", ["shoulder", "elbow", "wrist", "hand", "hand_tip", "thumb"]),
        "right_arm": _limb("right", ["shoulder", "elbow", "wrist", "hand", "hand_tip", "thumb"]),
        "left_leg": _limb("left", ["hip", "knee", "ankle", "foot"]),
        "right_leg": _limb("right", ["hip", "knee", "ankle", "foot"]),
    },
    description="NTU RGB+D / Kinect v2, 25 joints (also GTU)",
)

# Kinect v1 (NUI_SKELETON_POSITION order), 20 joints: the one canonical order
# every 20-joint dataset (NW-UCLA, UTD-MHAD, MSR Action3D) is remapped to.
_layout(
    "kinect20",
    [
        ("hip_center", "spine"), ("spine", "shoulder_center"), ("shoulder_center", None),
        ("head", "shoulder_center"),
        ("left_shoulder", "shoulder_center"), ("left_elbow", "left_shoulder"),
        ("left_wrist", "left_elbow"), ("left_hand", "left_wrist"),
        ("right_shoulder", "shoulder_center"), ("right_elbow", "right_shoulder"),
        ("right_wrist", "right_elbow"), ("right_hand", "right_wrist"),
        ("left_hip", "hip_center"), ("left_knee", "left_hip"), ("left_ankle", "left_knee"),
        ("left_foot", "left_ankle"),
        ("right_hip", "hip_center"), ("right_knee", "right_hip"), ("right_ankle", "right_knee"),
        ("right_foot", "right_ankle"),
    ],
    frame={"hip": ["hip_center"], "spine": ["spine"],
           "left_shoulder": ["left_shoulder"], "right_shoulder": ["right_shoulder"]},
    parts={
        "torso": ["hip_center", "spine", "shoulder_center", "head"],
        "left_arm": _limb("left", ["shoulder", "elbow", "wrist", "hand"]),
        "right_arm": _limb("right", ["shoulder", "elbow", "wrist", "hand"]),
        "left_leg": _limb("left", ["hip", "knee", "ankle", "foot"]),
        "right_leg": _limb("right", ["hip", "knee", "ankle", "foot"]),
    },
    description="Kinect v1, 20 joints (NW-UCLA, UTD-MHAD, MSR Action3D after remapping)",
)

# HDM05 / CMU Acclaim skeleton: the root plus the end point of each of the 30
# ASF bones, in ASF bone order; a joint's parent is the end of the parent bone.
_HDM05_LEG = ["hipjoint", "femur", "tibia", "foot", "toes"]
_HDM05_ARM = ["clavicle", "humerus", "radius", "wrist", "hand", "fingers", "thumb"]


def _hdm05_chain(side: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    s = side[0]
    leg = [(f"{s}{n}", p) for n, p in zip(
        _HDM05_LEG, ["root"] + [f"{s}{m}" for m in _HDM05_LEG[:-1]])]
    arm_parents = ["thorax", f"{s}clavicle", f"{s}humerus", f"{s}radius", f"{s}wrist",
                   f"{s}hand", f"{s}wrist"]
    arm = [(f"{s}{n}", p) for n, p in zip(_HDM05_ARM, arm_parents)]
    return leg, arm


_l_leg, _l_arm = _hdm05_chain("left")
_r_leg, _r_arm = _hdm05_chain("right")
_hdm05 = _layout(
    "hdm05_31",
    [
        ("root", None), *_l_leg, *_r_leg,
        ("lowerback", "root"), ("upperback", "lowerback"), ("thorax", "upperback"),
        ("lowerneck", "thorax"), ("upperneck", "lowerneck"), ("head", "upperneck"),
        *_l_arm, *_r_arm,
    ],
    frame={"hip": ["root"], "spine": ["upperback"],
           "left_shoulder": ["lclavicle"], "right_shoulder": ["rclavicle"]},
    parts={
        "torso": ["root", "lowerback", "upperback", "thorax", "lowerneck", "upperneck", "head"],
        "left_arm": [f"l{n}" for n in _HDM05_ARM],
        "right_arm": [f"r{n}" for n in _HDM05_ARM],
        "left_leg": [f"l{n}" for n in _HDM05_LEG],
        "right_leg": [f"r{n}" for n in _HDM05_LEG],
    },
    description="HDM05 ASF/AMC, 31 joints (root + end point of each ASF bone)",
)
# Acclaim names use an l/r prefix rather than left_/right_: pair them explicitly.
object.__setattr__(
    _hdm05,
    "left_right",
    tuple(
        (_hdm05.joint_index(n), _hdm05.joint_index("r" + n[1:]))
        for n in _hdm05.joint_names
        if n[0] == "l" and n not in ("lowerback", "lowerneck")
    ),
)

# SBU Kinect Interaction: 15 joints per person.
_layout(
    "sbu15",
    [
        ("head", "neck"), ("neck", "torso"), ("torso", None),
        ("left_shoulder", "neck"), ("left_elbow", "left_shoulder"), ("left_hand", "left_elbow"),
        ("right_shoulder", "neck"), ("right_elbow", "right_shoulder"),
        ("right_hand", "right_elbow"),
        ("left_hip", "torso"), ("left_knee", "left_hip"), ("left_foot", "left_knee"),
        ("right_hip", "torso"), ("right_knee", "right_hip"), ("right_foot", "right_knee"),
    ],
    frame={"hip": ["torso"], "spine": ["neck"],
           "left_shoulder": ["left_shoulder"], "right_shoulder": ["right_shoulder"]},
    parts={
        "torso": ["head", "neck", "torso"],
        "left_arm": _limb("left", ["shoulder", "elbow", "hand"]),
        "right_arm": _limb("right", ["shoulder", "elbow", "hand"]),
        "left_leg": _limb("left", ["hip", "knee", "foot"]),
        "right_leg": _limb("right", ["hip", "knee", "foot"]),
    },
    description="SBU Kinect Interaction, 15 joints per person",
)

# OpenPose COCO-18 (Kinetics-skeleton); tree as the ST-GCN graph, rooted at the neck.
_layout(
    "openpose18",
    [
        ("nose", "neck"), ("neck", None),
        ("right_shoulder", "neck"), ("right_elbow", "right_shoulder"),
        ("right_wrist", "right_elbow"),
        ("left_shoulder", "neck"), ("left_elbow", "left_shoulder"), ("left_wrist", "left_elbow"),
        ("right_hip", "right_shoulder"), ("right_knee", "right_hip"),
        ("right_ankle", "right_knee"),
        ("left_hip", "left_shoulder"), ("left_knee", "left_hip"), ("left_ankle", "left_knee"),
        ("right_eye", "nose"), ("left_eye", "nose"), ("right_ear", "right_eye"),
        ("left_ear", "left_eye"),
    ],
    frame={"hip": ["right_hip", "left_hip"], "spine": ["neck"],
           "left_shoulder": ["left_shoulder"], "right_shoulder": ["right_shoulder"]},
    parts={
        "torso": ["nose", "neck", "right_eye", "left_eye", "right_ear", "left_ear"],
        "left_arm": _limb("left", ["shoulder", "elbow", "wrist"]),
        "right_arm": _limb("right", ["shoulder", "elbow", "wrist"]),
        "left_leg": _limb("left", ["hip", "knee", "ankle"]),
        "right_leg": _limb("right", ["hip", "knee", "ankle"]),
    },
    description="OpenPose COCO-18 (Kinetics-skeleton), 2D + confidence",
)

# COCO-17 keypoints; tree as pyskl's coco graph, rooted at the nose.
_layout(
    "coco17",
    [
        ("nose", None), ("left_eye", "nose"), ("right_eye", "nose"),
        ("left_ear", "left_eye"), ("right_ear", "right_eye"),
        ("left_shoulder", "nose"), ("right_shoulder", "nose"),
        ("left_elbow", "left_shoulder"), ("right_elbow", "right_shoulder"),
        ("left_wrist", "left_elbow"), ("right_wrist", "right_elbow"),
        ("left_hip", "left_shoulder"), ("right_hip", "right_shoulder"),
        ("left_knee", "left_hip"), ("right_knee", "right_hip"),
        ("left_ankle", "left_knee"), ("right_ankle", "right_knee"),
    ],
    frame={"hip": ["left_hip", "right_hip"], "spine": ["left_shoulder", "right_shoulder"],
           "left_shoulder": ["left_shoulder"], "right_shoulder": ["right_shoulder"]},
    parts={
        "torso": ["nose", "left_eye", "right_eye", "left_ear", "right_ear"],
        "left_arm": _limb("left", ["shoulder", "elbow", "wrist"]),
        "right_arm": _limb("right", ["shoulder", "elbow", "wrist"]),
        "left_leg": _limb("left", ["hip", "knee", "ankle"]),
        "right_leg": _limb("right", ["hip", "knee", "ankle"]),
    },
    description="COCO-17 keypoints (pyskl 2D pose)",
)

# HDM05 as the SMART (Wang et al. CVPR 2021) and BASAR (Diao et al. CVPR 2021)
# research code stores it: 25 joints, root at joint 10, the joints of the BASAR
# ``hdm05_rest.bvh`` (CMU BVH names; its ``Hips`` dropped, it coincides with
# ``LowerBack``). Parents as the research code's array
# [10,0,1,2,3,10,5,6,7,8,10,10,11,12,13,13,15,16,17,18,13,20,21,22,23] with the
# root's 10 written -1; note that it hangs the thumb off the hand (19 -> 18).
# Each joint is a point of the hdm05_31 layout (end point of an ASF bone):
#   0 left_pelvis   LHipJoint       root (zero-length bone in the research data)
#   1 left_hip      LeftUpLeg       lhipjoint       15 left_shoulder  LeftArm         lclavicle
#   2 left_knee     LeftLeg         lfemur          16 left_elbow     LeftForeArm     lhumerus
#   3 left_ankle    LeftFoot        ltibia          17 left_wrist     LeftHand        lradius
#   4 left_toe      LeftToeBase     lfoot           18 left_hand      LeftHandIndex1  lhand
#   5-9 right_*     R...            root, r...      19 left_thumb     LThumb          lwrist
#  10 root          LowerBack       root            20-24 right_*     Right.../RThumb r...
#  11 belly         Spine           lowerback
#  12 chest         Spine1          upperback
#  13 neck          Neck            thorax
#  14 upper_neck    Neck1           lowerneck
# (skelrobust.data.hdm05.HDM05_31_TO_25 holds this mapping; see its tests.)
_hdm05_25_leg = ["pelvis", "hip", "knee", "ankle", "toe"]
_hdm05_25_arm = ["shoulder", "elbow", "wrist", "hand", "thumb"]


def _hdm05_25_chain(side: str, names: Sequence[str], first_parent: str) -> list[tuple[str, str]]:
    """A chain ``first_parent -> side_names[0] -> side_names[1] -> ...``."""
    return [(f"{side}_{names[0]}", first_parent)] + [
        (f"{side}_{n}", f"{side}_{p}") for n, p in zip(names[1:], names[:-1])]


_layout(
    "hdm05_25",
    [
        *_hdm05_25_chain("left", _hdm05_25_leg, "root"),
        *_hdm05_25_chain("right", _hdm05_25_leg, "root"),
        ("root", None), ("belly", "root"), ("chest", "belly"), ("neck", "chest"),
        ("upper_neck", "neck"),
        *_hdm05_25_chain("left", _hdm05_25_arm, "neck"),
        *_hdm05_25_chain("right", _hdm05_25_arm, "neck"),
    ],
    frame={"hip": ["root"], "spine": ["chest"],
           "left_shoulder": ["left_shoulder"], "right_shoulder": ["right_shoulder"]},
    parts={
        "torso": ["root", "belly", "chest", "neck", "upper_neck"],
        "left_arm": _limb("left", _hdm05_25_arm),
        "right_arm": _limb("right", _hdm05_25_arm),
        "left_leg": _limb("left", _hdm05_25_leg),
        "right_leg": _limb("right", _hdm05_25_leg),
    },
    description="HDM05 in the SMART/BASAR research format, 25 joints (root = joint 10)",
)
