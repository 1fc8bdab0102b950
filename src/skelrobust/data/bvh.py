"""BVH motion files: parser, forward kinematics, layout matching and the ``bvh`` dataset.

The BASAR research code (Diao et al. CVPR 2021) ships its HDM05 clips and rest
poses as BVH; this module reads those and any other BVH.

BVH (Biovision hierarchy): a ``HIERARCHY`` of ``ROOT``/``JOINT`` nodes with an
``OFFSET`` from the parent, ``CHANNELS`` in any order (position channels are
allowed on any joint) and leaf ``End Site`` nodes, then ``MOTION`` with
``Frames:``, ``Frame Time:`` and one line of channel values per frame.

Forward kinematics (vectorised over frames): a joint's local rotation is the
product of its rotation channels **in the listed order**, intrinsic as BVH
defines (``Zrotation Yrotation Xrotation`` → ``Rz·Ry·Rx``), angles in degrees;
its translation is its ``OFFSET``, where a position channel *replaces* the
matching ``OFFSET`` component (the convention of the CMU/BASAR files, whose root
``OFFSET`` is zero). ``G_j = G_parent · R_j`` and ``p_j = p_parent + G_parent · t_j``.

The ``bvh`` dataset reads a folder of clips (labels from a ``file,label[,split]``
CSV or from sub-folder names) and gives them a layout:

* Acclaim/CMU hierarchies (HDM05 bone names such as BASAR's HDM05 clips, or the
  CMU names of ``rest.bvh``) become ``hdm05_31``: a BVH joint sits at the *start*
  of the ASF bone it is named after, so joint ``b`` of the layout (end of bone
  ``b``) is the start of ``b``'s children or its ``End Site``;
* BASAR's 26-joint ``hdm05_rest.bvh`` hierarchy becomes ``hdm05_25``
  (:data:`BVH_START_TO_25`);
* joint names and parents equal to a registered layout's become that layout;
* anything else is registered on the fly as a new layout named
  ``bvh_<root>_<J>j_<hash>`` (the hash covers the names and parents), joints in
  file order, with the root as centre (and body-frame joints guessed from
  names containing spine/neck and left/right shoulder/arm, else the root).

Units: ``unit_scale`` metres per BVH unit, or a preset: ``"acclaim"`` (0.0254 /
0.45, the default: BASAR's files are Acclaim/CMU ASF units, a femur is 7.16
units = 0.40 m), ``"inch"``, ``"cm"``, ``"mm"``, ``"m"``. ``up="y"`` (BVH's
usual convention) rotates to z-up.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skelrobust.data.cache import cached_load
from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.hdm05 import change_rate, pack_clips, y_up_to_z_up
from skelrobust.data.mocap import axis_rotation, read_text
from skelrobust.data.registry import DatasetSpec, register_dataset
from skelrobust.errors import (
    ConfigError,
    DatasetFormatError,
    DatasetNotFoundError,
    UnknownNameError,
)
from skelrobust.skeleton import BodyFrame, Skeleton, get_skeleton, list_skeletons, register_skeleton

__all__ = [
    "BVH_START_TO_25",
    "CMU_TO_ACCLAIM",
    "UNIT_SCALES",
    "BVHMotion",
    "bvh_to_layout",
    "load_bvh",
    "load_bvh_dataset",
    "parse_bvh",
]

#: Metres per BVH unit of the ``unit_scale`` presets.
UNIT_SCALES = {"acclaim": 0.0254 / 0.45, "inch": 0.0254, "cm": 0.01, "mm": 0.001, "m": 1.0}

_SIDES = {"Left": "l", "Right": "r"}
#: CMU BVH joint names (Holden's ``rest.bvh``) → the Acclaim bone each starts.
CMU_TO_ACCLAIM: dict[str, str] = {
    "Hips": "root", "LowerBack": "lowerback", "Spine": "upperback", "Spine1": "thorax",
    "Neck": "lowerneck", "Neck1": "upperneck", "Head": "head",
    **{f"{s[0]}HipJoint": f"{c}hipjoint" for s, c in _SIDES.items()},
    **{f"{s}{n}": f"{c}{a}" for s, c in _SIDES.items() for n, a in [
        ("UpLeg", "femur"), ("Leg", "tibia"), ("Foot", "foot"), ("ToeBase", "toes"),
        ("Shoulder", "clavicle"), ("Arm", "humerus"), ("ForeArm", "radius"), ("Hand", "wrist"),
        ("FingerBase", "hand"), ("HandIndex1", "fingers")]},
    **{f"{s[0]}Thumb": f"{c}thumb" for s, c in _SIDES.items()},
}
#: ``hdm05_25`` joint → the Acclaim bone whose *start* it is (BASAR's BVH joints).
BVH_START_TO_25: dict[str, str] = {
    "root": "lowerback", "belly": "upperback", "chest": "thorax", "neck": "lowerneck",
    "upper_neck": "upperneck",
    **{f"{side}_{j}": f"{side[0]}{b}" for side in ("left", "right") for j, b in [
        ("pelvis", "hipjoint"), ("hip", "femur"), ("knee", "tibia"), ("ankle", "foot"),
        ("toe", "toes"), ("shoulder", "humerus"), ("elbow", "radius"), ("wrist", "wrist"),
        ("hand", "fingers"), ("thumb", "thumb")]},
}
#: Parents in BASAR's ``hdm05_rest.bvh`` (Acclaim names of the CMU joints): the
#: 25-joint hierarchy, whose arms hang off ``Neck`` (lowerneck) and thumbs off
#: the wrist, as the research code's parent array (``Hips`` = ``root``).
_BASAR_PARENTS: dict[str, str] = {
    "lowerback": "root", "upperback": "lowerback", "thorax": "upperback",
    "lowerneck": "thorax", "upperneck": "lowerneck",
    **{f"{s}{b}": (p if p in ("root", "lowerneck") else f"{s}{p}") for s in "lr" for b, p in [
        ("hipjoint", "root"), ("femur", "hipjoint"), ("tibia", "femur"), ("foot", "tibia"),
        ("toes", "foot"), ("humerus", "lowerneck"), ("radius", "humerus"), ("wrist", "radius"),
        ("fingers", "wrist"), ("thumb", "wrist")]},
}
_ROT = {"xrotation": "x", "yrotation": "y", "zrotation": "z"}
_POS = {"xposition": 0, "yposition": 1, "zposition": 2}


@dataclass(frozen=True, eq=False)
class BVHMotion:
    """A parsed BVH file. Nodes are joints and ``End Site`` leaves, parents first."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray  # (J, 3)
    channels: tuple[tuple[str, ...], ...]
    end_site: tuple[bool, ...]
    motion: np.ndarray  # (T, C)
    frame_time: float
    source: str = ""

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(n for n, e in zip(self.names, self.end_site) if not e)

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    def forward_kinematics(self) -> np.ndarray:
        """Positions ``(T, nodes, 3)`` of every node (end sites included), file units."""
        t = self.num_frames
        glob = np.empty((len(self.names), t, 3, 3))
        pos = np.empty((len(self.names), t, 3))
        col = 0
        with np.errstate(all="ignore"):
            for j, (chans, parent) in enumerate(zip(self.channels, self.parents)):
                trans = np.tile(self.offsets[j], (t, 1))
                rot = np.broadcast_to(np.eye(3), (t, 3, 3))
                for c in chans:
                    values = self.motion[:, col]
                    col += 1
                    if c in _POS:
                        trans[:, _POS[c]] = values
                    else:
                        rot = rot @ axis_rotation(_ROT[c], np.deg2rad(values))
                if parent < 0:
                    glob[j], pos[j] = rot, trans
                else:
                    glob[j] = glob[parent] @ rot
                    pos[j] = pos[parent] + (glob[parent] @ trans[..., None])[..., 0]
        out = np.moveaxis(pos, 0, 1)
        if not np.isfinite(out).all():
            raise DatasetFormatError(f"{self.source}: forward kinematics gives non-finite "
                                     f"positions (values out of range)")
        return out

    def positions(self, end_sites: bool = False) -> np.ndarray:
        """``(T, J, 3)`` positions of the joints (and end sites when asked)."""
        out = self.forward_kinematics()
        return out if end_sites else out[:, [i for i, e in enumerate(self.end_site) if not e]]


def _tokens(lines: list[str]) -> list[tuple[str, int]]:
    return [(tok, no) for no, line in enumerate(lines, start=1)
            for tok in line.replace("{", " { ").replace("}", " } ").split()]


def _parse_hierarchy(toks: list[tuple[str, int]], source: str) -> tuple[dict, int]:
    """Iterative parse of ``HIERARCHY``; returns the nodes and the index of ``MOTION``."""
    node: dict = {"names": [], "parents": [], "offsets": [], "channels": [], "end": []}
    i, n = 0, len(toks)

    def take(what: str) -> tuple[str, int]:
        nonlocal i
        if i >= n:
            raise DatasetFormatError(f"{source}: unexpected end of file, expected {what}")
        i += 1
        return toks[i - 1]

    def expect(word: str) -> int:
        tok, no = take(repr(word))
        if tok.upper() != word.upper():
            raise DatasetFormatError(f"{source}:{no}: expected {word!r}, got {tok!r}")
        return no

    def number(what: str) -> float:
        tok, no = take(what)
        try:
            value = float(tok)
        except ValueError:
            raise DatasetFormatError(f"{source}:{no}: {what}: expected a number, "
                                     f"got {tok!r}") from None
        if not np.isfinite(value):
            raise DatasetFormatError(f"{source}:{no}: {what}: expected a finite number")
        return value

    def open_node(name: str, parent: int, end: bool) -> None:
        expect("{")
        node["names"].append(name)
        node["parents"].append(parent)
        node["offsets"].append(None)
        node["channels"].append(())
        node["end"].append(end)
        stack.append(len(node["names"]) - 1)

    expect("HIERARCHY")
    expect("ROOT")
    stack: list[int] = []
    open_node(take("a root name")[0], -1, False)
    while stack:
        tok, no = take("'}'")
        cur = stack[-1]
        word = tok.upper()
        if word == "OFFSET":
            if node["offsets"][cur] is not None:
                raise DatasetFormatError(f"{source}:{no}: second OFFSET in one node")
            node["offsets"][cur] = [number(f"OFFSET field {k + 1}") for k in range(3)]
        elif word == "CHANNELS" and not node["end"][cur]:
            if node["channels"][cur]:
                raise DatasetFormatError(f"{source}:{no}: second CHANNELS in one joint")
            count = number("CHANNELS count")
            if count != int(count) or not 0 <= count <= 64:
                raise DatasetFormatError(f"{source}:{no}: bad CHANNELS count {count}")
            chans = tuple(take("a channel name")[0].lower() for _ in range(int(count)))
            bad = [c for c in chans if c not in _ROT and c not in _POS]
            if bad or len(set(chans)) != len(chans):
                raise DatasetFormatError(f"{source}:{no}: unknown or repeated channels {bad}")
            node["channels"][cur] = chans
        elif word == "JOINT" and not node["end"][cur]:
            open_node(take("a joint name")[0], cur, False)
        elif word == "END" and not node["end"][cur]:
            expect("Site")
            open_node(f"{node['names'][cur]}_end", cur, True)
        elif word == "}":
            if node["offsets"][cur] is None:
                raise DatasetFormatError(f"{source}:{no}: node {node['names'][cur]!r} has no "
                                         f"OFFSET")
            stack.pop()
        else:
            raise DatasetFormatError(f"{source}:{no}: unexpected {tok!r} in node "
                                     f"{node['names'][cur]!r}")
    if i >= n or toks[i][0].upper() != "MOTION":
        where = f"{source}:{toks[i][1]}" if i < n else source
        raise DatasetFormatError(f"{where}: expected MOTION after the hierarchy (one ROOT only)")
    joints = [nm for nm, e in zip(node["names"], node["end"]) if not e]
    if len(set(node["names"])) != len(node["names"]) or len(set(joints)) != len(joints):
        raise DatasetFormatError(f"{source}: joint names are not unique")
    return node, i


def _motion_block(lines: list[str], start: int, width: int, source: str) -> tuple[np.ndarray,
                                                                                    float]:
    """``Frames:``/``Frame Time:`` and the data lines after line index ``start``."""
    head: dict[str, float] = {}
    k = start
    for key in ("frames:", "frame time:"):
        while k < len(lines) and not lines[k].strip():
            k += 1
        line = lines[k].strip() if k < len(lines) else ""
        if not line.lower().startswith(key):
            raise DatasetFormatError(f"{source}:{k + 1}: expected {key!r}, got {line[:40]!r}")
        try:
            head[key] = float(line[len(key):].strip())
        except ValueError:
            raise DatasetFormatError(f"{source}:{k + 1}: {key} expects a number") from None
        k += 1
    frames, frame_time = head["frames:"], head["frame time:"]
    if not (np.isfinite(frames) and frames == int(frames) and frames >= 1
            and 0 < frame_time < 1e6):
        raise DatasetFormatError(f"{source}: need Frames >= 1 and a positive Frame Time, got "
                                 f"{frames} and {frame_time}")
    rows = [(no, line) for no, line in enumerate(lines[k:], start=k + 1) if line.strip()]
    frames = int(frames)
    if len(rows) != frames:
        raise DatasetFormatError(f"{source}: Frames says {frames} but there are {len(rows)} "
                                 f"lines of data (truncated or corrupt file)")
    tokens = " ".join(line for _, line in rows).split()
    try:
        if len(tokens) != frames * width:
            raise ValueError
        data = np.array(tokens, dtype=np.float64).reshape(frames, width)
    except ValueError:
        for no, line in rows:  # locate the bad line and field
            vals = line.split()
            if len(vals) != width:
                raise DatasetFormatError(f"{source}:{no}: expected {width} channel values, got "
                                         f"{len(vals)}") from None
            for f, v in enumerate(vals):
                try:
                    float(v)
                except ValueError:
                    raise DatasetFormatError(f"{source}:{no}: field {f + 1}: expected a number, "
                                             f"got {v!r}") from None
        raise DatasetFormatError(f"{source}: unreadable motion data") from None
    if not np.isfinite(data).all():
        row = int(np.argwhere(~np.isfinite(data))[0][0])
        raise DatasetFormatError(f"{source}:{rows[row][0]}: non-finite channel value")
    return data, frame_time


def parse_bvh(text: str | bytes, source: str = "<bvh>", hierarchy_only: bool = False) -> BVHMotion:
    """Parse BVH text (``hierarchy_only`` skips ``MOTION`` and gives zero frames)."""
    lines = (text.decode("latin-1") if isinstance(text, bytes | bytearray) else text).splitlines()
    motion_line = next((k for k, line in enumerate(lines)
                        if line.strip().upper().startswith("MOTION")), len(lines))
    node, _ = _parse_hierarchy(_tokens(lines[: motion_line + 1]), source)
    width = sum(len(c) for c in node["channels"])
    if hierarchy_only:
        data, frame_time = np.zeros((0, width)), 1.0
    else:
        data, frame_time = _motion_block(lines, motion_line + 1, width, source)
    return BVHMotion(names=tuple(node["names"]), parents=tuple(node["parents"]),
                     offsets=np.array(node["offsets"], dtype=np.float64).reshape(-1, 3),
                     channels=tuple(node["channels"]), end_site=tuple(node["end"]),
                     motion=data, frame_time=frame_time, source=source)


def load_bvh(path: str | Path, hierarchy_only: bool = False) -> BVHMotion:
    """Read and parse a ``.bvh`` file."""
    return parse_bvh(read_text(path), str(path), hierarchy_only)


# ---------------------------------------------------------------------- layouts
def _acclaim_view(bvh: BVHMotion) -> dict[str, int] | None:
    """Acclaim bone name (``root`` for the BVH root) → node index, for HDM05/CMU names."""
    joints = [i for i, e in enumerate(bvh.end_site) if not e]
    names = [bvh.names[i] for i in joints]
    rename = CMU_TO_ACCLAIM if all(n in CMU_TO_ACCLAIM for n in names) else {}
    bones = {("root" if bvh.parents[i] < 0 else rename.get(bvh.names[i], bvh.names[i])): i
             for i in joints}
    if len(bones) != len(joints) or not set(bones) <= set(get_skeleton("hdm05_31").joint_names):
        return None
    return bones


def _same_tree(bvh: BVHMotion, bones: dict[str, int], parents: dict[str, str]) -> bool:
    """Whether the BVH's parent of every bone is the one ``parents`` names."""
    return set(parents) | {"root"} == set(bones) and all(
        bvh.parents[bones[b]] == bones[p] for b, p in parents.items())


def _bone_ends(bvh: BVHMotion, bones: dict[str, int], pos: np.ndarray) -> np.ndarray | None:
    """``hdm05_31`` positions: joint ``b`` is where the children of node ``b`` start."""
    out = []
    for name in get_skeleton("hdm05_31").joint_names:
        i = bones[name]
        if name == "root":
            out.append(pos[:, i])
            continue
        kids = [k for k, p in enumerate(bvh.parents) if p == i]
        if not kids or np.ptp(bvh.offsets[kids], axis=0).max() > 1e-9:
            return None  # no end point, or children that do not share a start
        out.append(pos[:, kids[0]])
    return np.stack(out, axis=1)


def _generic_layout(bvh: BVHMotion) -> Skeleton:
    joints = [i for i, e in enumerate(bvh.end_site) if not e]
    names = tuple(bvh.names[i] for i in joints)
    index = {j: k for k, j in enumerate(joints)}
    parents = tuple(index[bvh.parents[j]] if bvh.parents[j] >= 0 else -1 for j in joints)
    digest = hashlib.sha1(repr((names, parents)).encode()).hexdigest()[:8]
    name = f"bvh_{names[0]}_{len(names)}j_{digest}"
    if name in list_skeletons():
        return get_skeleton(name)

    def find(*keys: str) -> tuple[int, ...]:
        low = [n.lower() for n in names]
        for key in keys:
            hits = [k for k, n in enumerate(low) if key in n]
            if hits:
                return (hits[0],)
        return (0,)

    frame = BodyFrame(hip=(0,), spine=find("spine", "chest", "neck"),
                      left_shoulder=find("leftshoulder", "left_shoulder", "leftarm", "lclav"),
                      right_shoulder=find("rightshoulder", "right_shoulder", "rightarm", "rclav"))
    return register_skeleton(Skeleton(name=name, joint_names=names, parents=parents, frame=frame,
                                      description=f"from the BVH hierarchy of {bvh.source}"))


def bvh_to_layout(bvh: BVHMotion) -> tuple[Skeleton, np.ndarray]:
    """The layout of a BVH hierarchy and its positions ``(T, V, 3)`` in file units/axes."""
    pos = bvh.forward_kinematics()
    bones = _acclaim_view(bvh)
    acclaim = get_skeleton("hdm05_31")
    asf_parents = {n: acclaim.joint_names[p] for n, p in zip(acclaim.joint_names,
                                                             acclaim.parents) if p >= 0}
    if bones is not None and _same_tree(bvh, bones, asf_parents):
        ends = _bone_ends(bvh, bones, pos)
        if ends is not None:
            return acclaim, ends
    if bones is not None and _same_tree(bvh, bones, _BASAR_PARENTS):
        layout = get_skeleton("hdm05_25")
        return layout, pos[:, [bones[BVH_START_TO_25[n]] for n in layout.joint_names]]
    joints = [i for i, e in enumerate(bvh.end_site) if not e]
    names = [bvh.names[i] for i in joints]
    for cand in list_skeletons():
        layout = get_skeleton(cand)
        if sorted(layout.joint_names) != sorted(names):
            continue
        idx = [joints[names.index(n)] for n in layout.joint_names]
        par = [bvh.parents[i] for i in idx]
        if all(p == (idx[q] if q >= 0 else -1) for p, q in zip(par, layout.parents)):
            return layout, pos[:, idx]
    return _generic_layout(bvh), pos[:, joints]


# ---------------------------------------------------------------------- dataset
def _scale(unit_scale: float | str) -> float:
    if isinstance(unit_scale, str):
        if unit_scale not in UNIT_SCALES:
            raise ConfigError(f"bvh: unit_scale must be a number or one of {list(UNIT_SCALES)}, "
                              f"got {unit_scale!r}")
        return UNIT_SCALES[unit_scale]
    if not unit_scale > 0:
        raise ConfigError(f"bvh: unit_scale must be positive, got {unit_scale}")
    return float(unit_scale)


def _labelled_files(root: Path, split: str, labels: str | Path | None,
                    pattern: str) -> list[tuple[Path, str]]:
    csv_path = Path(labels) if labels is not None else root / "labels.csv"
    if labels is not None and not csv_path.is_file():
        raise DatasetNotFoundError(f"bvh: label file {str(csv_path)!r} is missing")
    if csv_path.is_file():
        with open(csv_path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if not rows or not {"file", "label"} <= set(rows[0]):
            raise DatasetFormatError(f"{csv_path}: expected a header 'file,label[,split]'")
        if split != "all":
            if "split" not in rows[0]:
                raise ConfigError(f"bvh: {csv_path} has no 'split' column; use split='all'")
            rows = [r for r in rows if r["split"] == split]
        bad = [k + 2 for k, r in enumerate(rows) if not r.get("file") or r.get("label") is None]
        if bad:
            raise DatasetFormatError(f"{csv_path}:{bad[0]}: expected 'file,label' values")
        out = [(root / r["file"], r["label"]) for r in rows]
        missing = [str(p) for p, _ in out if not p.is_file()]
        if missing:
            raise DatasetNotFoundError(f"bvh: files listed in {csv_path} are missing: "
                                       f"{missing[:5]}")
        return out
    if split != "all":
        raise ConfigError(f"bvh: split {split!r} needs a labels.csv with a 'split' column; "
                          f"use split='all'")
    files = sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() == ".bvh")
    return [(p, p.relative_to(root).parts[0] if len(p.relative_to(root).parts) > 1
             else "unlabelled") for p in files]


def load_bvh_dataset(root: str | Path, split: str = "all", labels: str | Path | None = None,
                     pattern: str = "**/*.bvh", fps: float | None = None,
                     unit_scale: float | str = "acclaim", up: str = "y",
                     num_frames: int | None = None, temporal: str = "zero",
                     use_cache: bool = True) -> SkeletonDataset:
    """A folder of BVH clips as a dataset (see the module docstring).

    Labels come from ``labels`` (default ``root/labels.csv``: ``file,label`` and
    an optional ``split`` column) or else from the first sub-folder of each file
    (``unlabelled`` for files directly in ``root``). All clips must share a
    hierarchy. ``fps=None`` keeps the file's rate.
    """
    if up not in ("y", "z"):
        raise ConfigError(f"bvh: up must be 'y' or 'z', got {up!r}")
    scale, root = _scale(unit_scale), Path(root)
    items = _labelled_files(root, split, labels, pattern)
    if not items:
        raise DatasetNotFoundError(f"bvh: no .bvh files under {str(root)!r} matching "
                                   f"{pattern!r}")
    class_names = sorted({label for _, label in items})
    first = load_bvh(items[0][0], hierarchy_only=True)
    layout, _ = bvh_to_layout(first)  # registers an on-the-fly layout before any cache read
    params = {"split": split, "fps": fps, "scale": scale, "up": up, "num_frames": num_frames,
              "temporal": temporal, "layout": layout.name, "pattern": pattern, "version": 1}

    def parse() -> SkeletonDataset:
        clips, ys, sources = [], [], []
        for path, label in items:
            bvh = load_bvh(path)
            skel, pos = bvh_to_layout(bvh)
            if skel.name != layout.name:
                raise DatasetFormatError(f"{path}: hierarchy gives layout {skel.name!r}, but "
                                         f"{items[0][0].name} gives {layout.name!r} (pass a "
                                         f"pattern that selects one kind)")
            pos = change_rate(pos, 1.0 / bvh.frame_time, fps) * scale
            clips.append((y_up_to_z_up(pos) if up == "y" else pos).astype(np.float32))
            ys.append(class_names.index(label))
            sources.append(path.relative_to(root).as_posix() if path.is_relative_to(root)
                           else str(path))
        x, lengths = pack_clips(clips, num_frames, temporal)
        return SkeletonDataset(x=x, y=np.array(ys), class_names=class_names, skeleton=layout,
                               lengths=lengths, meta={"source": np.array(sources)}, name="bvh")

    extra = [Path(labels)] if labels is not None else [p for p in [root / "labels.csv"]
                                                       if p.is_file()]
    try:
        data = cached_load("bvh", [p for p, _ in items] + extra, root, params, parse,
                           use_cache=use_cache)
    except UnknownNameError:  # a stale entry naming an unregistered layout
        data = parse()
    data.info.update({"units": "m", "up": "z", "fps": fps})
    return data


register_dataset(DatasetSpec(
    name="bvh",
    layout="(from the files)",
    num_classes=None,
    splits=("all", "train", "test"),
    description="a folder of BVH clips (labels from labels.csv or sub-folders); layout matched "
                "to hdm05_31/hdm05_25/a registered layout, else built from the hierarchy",
    loader=load_bvh_dataset,
    default_folder="bvh",
    protocol="splits from the 'split' column of labels.csv; 'all' otherwise",
))
