"""Acclaim ASF/AMC motion capture: parsers and vectorised forward kinematics.

The Acclaim format (used by HDM05, Müller et al. 2007, and CMU mocap) stores a
skeleton (``.asf``: bone directions, lengths, local axes, degrees of freedom,
hierarchy) and a motion (``.amc``: per frame, per bone, Euler angles; the root
also carries a translation).

Forward kinematics is the standard Acclaim one: for bone ``b`` with parent
``p``, ``L_b = C_b · M_b · C_b⁻¹`` where ``C_b`` is the rotation of the ASF
``axis`` line and ``M_b`` the rotation of the AMC angles, both as rotations
about fixed axes applied in the listed order (``axis ... XYZ``, ``dof rx ry
rz``: x first, then y, then z, i.e. ``Rz · Ry · Rx``). The global rotation is
``G_b = G_p · L_b`` and the bone's end point is ``start_b + G_b · (length_b ·
direction_b)``, where ``start_b`` is the end point of ``p`` (or the root
position). The root has ``G_root = C_root · M_root · C_root⁻¹`` with ``C_root``
from the ASF root ``orientation``/``axis`` and its translation added to the ASF
root ``position``. Verified against the HDM05 MATLAB toolbox's own joint
trajectories to 0.001 mm (see ``tests/test_data_hdm05.py``).

Positions come out in ASF length units; ``:units length 0.45`` means one ASF
unit is ``1/0.45`` inch, so metres are ``units × 0.0254 / 0.45``
(:attr:`AcclaimSkeleton.metres_per_unit`). Acclaim is y-up (see
:func:`skelrobust.data.hdm05.y_up_to_z_up`).

Every malformed input raises :class:`~skelrobust.errors.DatasetFormatError`
naming the file and line (and field where it applies).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from skelrobust.data.mocap import as_text, ascii_digits, euler_fixed, finite_number, read_text
from skelrobust.errors import DatasetFormatError

__all__ = [
    "AcclaimBone",
    "AcclaimMotion",
    "AcclaimSkeleton",
    "euler_fixed",
    "forward_kinematics",
    "load_amc",
    "load_asf",
    "parse_amc",
    "parse_asf",
    "read_text",
]

_ROOT_CHANNELS = ("TX", "TY", "TZ", "RX", "RY", "RZ")
_DOFS = ("rx", "ry", "rz")


# ---------------------------------------------------------------------- ASF
@dataclass(frozen=True, eq=False)
class AcclaimBone:
    """One ASF bone; ``direction`` is a unit vector in the global rest frame."""

    name: str
    parent: str
    direction: np.ndarray
    length: float
    axis: np.ndarray  # degrees or radians (see AcclaimSkeleton.angle_unit)
    axis_order: str
    dofs: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class AcclaimSkeleton:
    """A parsed ASF skeleton. Bones are kept in ASF order; the root is implicit."""

    name: str
    bones: tuple[AcclaimBone, ...]
    root_order: tuple[str, ...] = _ROOT_CHANNELS
    root_axis: str = "XYZ"
    root_position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    root_orientation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    length_unit: float = 1.0
    angle_unit: str = "deg"
    source: str = ""

    @property
    def joint_names(self) -> tuple[str, ...]:
        """``root`` then the bones in ASF order: the joint order of :func:`forward_kinematics`."""
        return ("root", *(b.name for b in self.bones))

    @property
    def metres_per_unit(self) -> float:
        """Metres per ASF length unit (``:units length L`` means ``1/L`` inch per unit)."""
        return 0.0254 / self.length_unit

    @cached_property
    def axis_rotations(self) -> dict[str, np.ndarray]:
        """``C`` ``(3, 3)`` of every bone (from its ``axis`` line) and of the root."""
        scale = math.pi / 180.0 if self.angle_unit == "deg" else 1.0
        out = {b.name: euler_fixed(b.axis * scale, b.axis_order) for b in self.bones}
        out["root"] = euler_fixed(self.root_orientation * scale, self.root_axis)
        return out


def _asf_sections(lines: list[str], source: str) -> dict[str, list[tuple[int, str]]]:
    sections: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    for no, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(":"):
            key, *more = line[1:].split(None, 1) or [""]
            rest = more[0] if more else ""
            current = key.lower()
            if current in sections and current != "documentation":
                raise DatasetFormatError(f"{source}:{no}: section ':{current}' appears twice")
            sections.setdefault(current, [])
            if rest.strip():
                sections[current].append((no, rest.strip()))
        elif current is None:
            raise DatasetFormatError(f"{source}:{no}: expected a ':keyword' section, got {line!r}")
        else:
            sections[current].append((no, line))
    return sections


def _vector(toks: list[str], n: int, where: str) -> np.ndarray:
    if len(toks) < n:
        raise DatasetFormatError(f"{where}: expected {n} numbers, got {len(toks)}")
    return np.array([finite_number(t, f"{where}, field {i + 1}") for i, t in enumerate(toks[:n])])


def _order(tok: str, where: str) -> str:
    if sorted(tok.upper()) != ["X", "Y", "Z"]:
        raise DatasetFormatError(f"{where}: expected an axis order such as XYZ, got {tok!r}")
    return tok.upper()


def _parse_bone(block: list[tuple[int, str]], source: str) -> dict:
    bone: dict = {"dofs": (), "axis": np.zeros(3), "axis_order": "XYZ"}
    for no, line in block:
        key, *toks = line.split()
        where = f"{source}:{no}: bone field {key!r}"
        key = key.lower()
        if key == "name":
            if len(toks) != 1:
                raise DatasetFormatError(f"{where}: expected one name")
            bone["name"] = toks[0]
        elif key == "direction":
            bone["direction"] = _vector(toks, 3, where)
        elif key == "length":
            bone["length"] = float(_vector(toks, 1, where)[0])
        elif key == "axis":
            bone["axis"] = _vector(toks, 3, where)
            bone["axis_order"] = _order(toks[3] if len(toks) > 3 else "XYZ", where)
        elif key == "dof":
            dofs = tuple(t.lower() for t in toks)
            bad = [d for d in dofs if d not in _DOFS]
            if bad or len(set(dofs)) != len(dofs):
                raise DatasetFormatError(
                    f"{where}: dofs must be distinct rotations rx, ry, rz, got {toks}")
            bone["dofs"] = dofs
        elif key in ("id", "limits", "bodymass", "cofmass") or key.startswith("("):
            continue  # not needed for kinematics
        else:
            raise DatasetFormatError(f"{where}: unknown bone field")
    for need in ("name", "direction", "length"):
        if need not in bone:
            raise DatasetFormatError(f"{source}:{block[0][0]}: bone without '{need}'")
    with np.errstate(all="ignore"):
        norm = float(np.linalg.norm(bone["direction"]))
    if not norm > 1e-12 or not math.isfinite(norm) or bone["length"] < 0:
        raise DatasetFormatError(f"{source}:{block[0][0]}: bone {bone['name']!r} has a zero "
                                 f"direction or a negative length")
    bone["direction"] = bone["direction"] / norm
    return bone


def _parse_bonedata(rows: list[tuple[int, str]], source: str) -> list[dict]:
    bones, block = [], None
    for no, line in rows:
        word = line.split()[0].lower()
        if word == "begin":
            if block is not None:
                raise DatasetFormatError(f"{source}:{no}: 'begin' inside a bone block")
            block = []
        elif word == "end":
            if not block:
                raise DatasetFormatError(f"{source}:{no}: 'end' without a bone block")
            bones.append(_parse_bone(block, source))
            block = None
        elif block is None:
            raise DatasetFormatError(f"{source}:{no}: bone data outside begin/end: {line!r}")
        else:
            block.append((no, line))
    if block is not None:
        raise DatasetFormatError(f"{source}: truncated bone block (no 'end')")
    return bones


def _parse_hierarchy(rows: list[tuple[int, str]], names: set[str], source: str) -> dict[str, str]:
    parent: dict[str, str] = {}
    for no, line in rows:
        toks = line.split()
        if toks[0].lower() in ("begin", "end"):
            continue
        if toks[0] != "root" and toks[0] not in names:
            raise DatasetFormatError(f"{source}:{no}: hierarchy names unknown bone {toks[0]!r}")
        for child in toks[1:]:
            if child not in names:
                raise DatasetFormatError(f"{source}:{no}: hierarchy names unknown bone {child!r}")
            if child in parent:
                raise DatasetFormatError(f"{source}:{no}: bone {child!r} has two parents")
            parent[child] = toks[0]
    missing = sorted(names - set(parent))
    if missing:
        raise DatasetFormatError(f"{source}: bones missing from :hierarchy: {missing}")
    for name in names:  # every bone must reach the root
        seen, k = set(), name
        while k != "root":
            if k in seen:
                raise DatasetFormatError(f"{source}: :hierarchy has a cycle through {k!r}")
            seen.add(k)
            k = parent[k]
    return parent


def _parse_root(rows: list[tuple[int, str]], source: str) -> dict:
    root: dict = {}
    for no, line in rows:
        key, *toks = line.split()
        where, key = f"{source}:{no}: root field {key!r}", key.lower()
        if key == "order":
            order = tuple(t.upper() for t in toks)
            if not order or not set(order) <= set(_ROOT_CHANNELS) or len(set(order)) < len(order):
                raise DatasetFormatError(f"{where}: expected channels among {_ROOT_CHANNELS}")
            root["root_order"] = order
        elif key == "axis":
            root["root_axis"] = _order(toks[0] if toks else "", where)
        elif key in ("position", "orientation"):
            root[f"root_{key}"] = _vector(toks, 3, where)
        else:
            raise DatasetFormatError(f"{where}: unknown root field")
    return root


def _parse_units(rows: list[tuple[int, str]], source: str) -> dict:
    units: dict = {}
    for no, line in rows:
        key, *toks = line.split()
        if key == "length":
            units["length_unit"] = float(_vector(toks, 1, f"{source}:{no}: units length")[0])
            if units["length_unit"] <= 0:
                raise DatasetFormatError(f"{source}:{no}: units length must be positive")
        elif key == "angle":
            if not toks or toks[0].lower() not in ("deg", "rad"):
                raise DatasetFormatError(f"{source}:{no}: units angle must be deg or rad")
            units["angle_unit"] = toks[0].lower()
    return units


def parse_asf(text: str | bytes, source: str = "<asf>") -> AcclaimSkeleton:
    """Parse ASF text (``:units``, ``:root``, ``:bonedata``, ``:hierarchy``)."""
    sections = _asf_sections(as_text(text).splitlines(), source)
    for need in ("bonedata", "hierarchy"):
        if need not in sections:
            raise DatasetFormatError(f"{source}: no ':{need}' section (truncated ASF?)")
    raw = _parse_bonedata(sections["bonedata"], source)
    names = [b["name"] for b in raw]
    if not names or len(set(names)) != len(names) or "root" in names:
        raise DatasetFormatError(f"{source}: bone names must be unique, non-empty and not 'root'")
    parent = _parse_hierarchy(sections["hierarchy"], set(names), source)
    bones = tuple(AcclaimBone(parent=parent[b["name"]], **b) for b in raw)
    name = sections.get("name") or [(0, "")]
    return AcclaimSkeleton(name=name[0][1], bones=bones, source=source,
                           **_parse_root(sections.get("root", []), source),
                           **_parse_units(sections.get("units", []), source))


def load_asf(path: str | Path) -> AcclaimSkeleton:
    """Read and parse an ``.asf`` file."""
    return parse_asf(read_text(path), str(path))


# ---------------------------------------------------------------------- AMC
@dataclass(frozen=True, eq=False)
class AcclaimMotion:
    """A parsed AMC motion: per bone, the values of each frame ``(T, n)`` in file order."""

    values: dict[str, np.ndarray]
    frame_numbers: np.ndarray
    angle_unit: str | None  # "deg", "rad", or None when the file does not say
    source: str = ""

    @property
    def num_frames(self) -> int:
        return len(self.frame_numbers)


def _is_frame(line: str) -> bool:
    toks = line.split()
    return len(toks) == 1 and ascii_digits(toks[0][1:] if toks[0][:1] in "+-" else toks[0])


def _amc_fast(body: list[str], first_line: int,
              source: str) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """Vectorised parse of regular files (same bones in the same order each frame).

    Returns ``None`` on any irregularity; :func:`_amc_slow` then finds and names it.
    """
    stride = next((k for k in range(1, len(body)) if ascii_digits(body[k])), len(body))
    if len(body) % stride or not all(map(ascii_digits, body[::stride])):
        return None
    frames = len(body) // stride
    values: dict[str, np.ndarray] = {}
    for k in range(1, stride):
        name, *first = body[k].split()
        width = 1 + len(first)
        if name in values or name[:1].isdigit() or name[:1] in "+-.:#":
            return None
        tokens = " ".join(body[k::stride]).split()
        if len(tokens) != frames * width or tokens[::width] != [name] * frames:
            return None
        del tokens[::width]
        try:
            arr = np.array(tokens, dtype=np.float64).reshape(frames, width - 1)
        except ValueError:
            return None
        bad = ~np.isfinite(arr)
        if bad.any():
            f = int(np.argwhere(bad)[0][0])
            raise DatasetFormatError(f"{source}:{first_line + f * stride + k}: bone {name!r}: "
                                     f"non-finite value")
        values[name] = arr
    return values, np.array(body[::stride], dtype=np.int64)


def _amc_slow(body: list[str], numbers: list[int],
              source: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Line-by-line parse with exact error locations (the authority on bad files)."""
    frames: list[dict[str, list[float]]] = []
    frame_numbers: list[int] = []
    for line, no in zip(body, numbers):
        toks = line.split()
        if line.startswith(":"):
            raise DatasetFormatError(f"{source}:{no}: header keyword {line!r} after frames")
        if _is_frame(line):
            frames.append({})
            frame_numbers.append(int(toks[0]))
            continue
        if not frames:
            raise DatasetFormatError(f"{source}:{no}: expected a frame number, got {line!r}")
        name = toks[0]
        if name in frames[-1]:
            raise DatasetFormatError(f"{source}:{no}: bone {name!r} twice in one frame")
        frames[-1][name] = [finite_number(t, f"{source}:{no}: bone {name!r}, field {i + 1}")
                            for i, t in enumerate(toks[1:])]
    first = frames[0]
    for idx, frame in enumerate(frames):
        if frame.keys() != first.keys():
            diff = sorted(set(frame) ^ set(first))
            raise DatasetFormatError(f"{source}: frame {idx + 1} does not list the same bones as "
                                     f"frame 1 (differs in {diff}; truncated or corrupt AMC?)")
        for name, vals in frame.items():
            if len(vals) != len(first[name]):
                raise DatasetFormatError(f"{source}: frame {idx + 1}: bone {name!r} has "
                                         f"{len(vals)} values, frame 1 has {len(first[name])}")
    values = {name: np.array([f[name] for f in frames], dtype=np.float64).reshape(len(frames), -1)
              for name in first}
    return values, np.array(frame_numbers, dtype=np.int64)


def parse_amc(text: str | bytes, source: str = "<amc>") -> AcclaimMotion:
    """Parse AMC text: header (``#`` comments, ``:FULLY-SPECIFIED``, ``:DEGREES``/``:RADIANS``),
    then frames (a frame-number line, then ``bone v1 v2 ...`` lines)."""
    lines = as_text(text).splitlines()
    unit: str | None = None
    start = len(lines)
    for no, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            key = line[1:].split()[0].upper() if line[1:].split() else ""
            if key in ("DEGREES", "RADIANS"):
                unit = "deg" if key == "DEGREES" else "rad"
            continue
        if not _is_frame(line):
            raise DatasetFormatError(f"{source}:{no + 1}: expected a frame number, got {line!r}")
        start = no
        break
    body = [raw.strip() for raw in lines[start:]]
    while body and not body[-1]:
        body.pop()
    if not body:
        raise DatasetFormatError(f"{source}: no frames (empty or truncated AMC)")
    parsed = _amc_fast(body, start + 1, source)
    if parsed is None:
        keep = [(line, start + 1 + i) for i, line in enumerate(body)
                if line and not line.startswith("#")]
        parsed = _amc_slow([k[0] for k in keep], [k[1] for k in keep], source)
    values, frame_numbers = parsed
    return AcclaimMotion(values=values, frame_numbers=frame_numbers, angle_unit=unit,
                         source=source)


def load_amc(path: str | Path) -> AcclaimMotion:
    """Read and parse an ``.amc`` file (any case of the extension)."""
    return parse_amc(read_text(path), str(path))


# ---------------------------------------------------------------------- kinematics
def _channel_values(motion: AcclaimMotion, name: str, count: int, skel: str) -> np.ndarray:
    vals = motion.values.get(name)
    if vals is None:
        return np.zeros((motion.num_frames, count))
    if vals.shape[1] != count:
        raise DatasetFormatError(f"{motion.source}: bone {name!r} has {vals.shape[1]} values per "
                                 f"frame but the skeleton {skel} gives it {count} dofs")
    return vals


def _local_rotations(skeleton: AcclaimSkeleton, motion: AcclaimMotion,
                     to_rad: float) -> dict[str, np.ndarray]:
    """``C·M·C⁻¹`` ``(T, 3, 3)`` of every bone with dofs, batched over bones sharing an order."""
    groups: dict[str, list[AcclaimBone]] = {}
    for b in skeleton.bones:
        if b.dofs:
            order = "".join(d[1] for d in b.dofs)
            groups.setdefault(order + "".join(a for a in "xyz" if a not in order), []).append(b)
    out: dict[str, np.ndarray] = {}
    for order, bones in groups.items():
        angles = np.zeros((motion.num_frames, len(bones), 3))
        for j, b in enumerate(bones):  # absent axes get zero angles: identity rotations
            angles[:, j, :len(b.dofs)] = _channel_values(
                motion, b.name, len(b.dofs), skeleton.source) * to_rad
        c = np.stack([skeleton.axis_rotations[b.name] for b in bones])
        rot = c @ euler_fixed(angles, order) @ c.transpose(0, 2, 1)
        out.update({b.name: rot[:, j] for j, b in enumerate(bones)})
    return out


def forward_kinematics(skeleton: AcclaimSkeleton, motion: AcclaimMotion,
                       joints: Sequence[str] | None = None) -> np.ndarray:
    """Joint positions ``(T, J, 3)`` in ASF units, y-up (vectorised over frames).

    Joint ``root`` is the root position, joint ``b`` the end point of bone ``b``;
    ``joints`` picks and orders them (default :attr:`AcclaimSkeleton.joint_names`).
    AMC bones absent from the file keep their rest rotation; AMC bones unknown to
    the skeleton or with the wrong number of values raise ``DatasetFormatError``.
    """
    known = {b.name for b in skeleton.bones}
    unknown = sorted(set(motion.values) - known - {"root"})
    if unknown:
        raise DatasetFormatError(f"{motion.source}: bones {unknown} are not in the skeleton "
                                 f"{skeleton.source}")
    unit = motion.angle_unit or skeleton.angle_unit
    to_rad = math.pi / 180.0 if unit == "deg" else 1.0
    t = motion.num_frames
    with np.errstate(all="ignore"):
        root_vals = _channel_values(motion, "root", len(skeleton.root_order), skeleton.source)
        trans = np.tile(skeleton.root_position, (t, 1))
        rot_axes = ""
        rot_cols = []
        for k, ch in enumerate(skeleton.root_order):
            if ch[0] == "T":
                trans[:, "XYZ".index(ch[1])] += root_vals[:, k]
            else:
                rot_axes += ch[1]
                rot_cols.append(k)
        c_root = skeleton.axis_rotations["root"]
        m_root = euler_fixed(root_vals[:, rot_cols] * to_rad, rot_axes)
        glob = {"root": c_root @ m_root @ c_root.T}
        ends = {"root": trans}
        local = _local_rotations(skeleton, motion, to_rad)
        pending = list(skeleton.bones)
        while pending:  # parents first (the ASF parser guarantees a tree)
            ready = [b for b in pending if b.parent in glob]
            if not ready:
                raise DatasetFormatError(f"{skeleton.source}: bones {[b.name for b in pending]} "
                                         f"do not hang off the root")
            for b in ready:
                rot = local.get(b.name)
                glob[b.name] = glob[b.parent] if rot is None else glob[b.parent] @ rot
                ends[b.name] = ends[b.parent] + glob[b.name] @ (b.direction * b.length)
            pending = [b for b in pending if b.name not in glob]
        names = skeleton.joint_names if joints is None else joints
        missing = [n for n in names if n not in ends]
        if missing:
            raise DatasetFormatError(f"{skeleton.source}: skeleton has no joints {missing}")
        out = np.stack([ends[n] for n in names], axis=1)
    if not np.isfinite(out).all():
        raise DatasetFormatError(f"{motion.source} on {skeleton.source}: forward kinematics "
                                 f"gives non-finite positions (values out of range)")
    return out
