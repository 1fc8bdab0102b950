"""Shared machinery of the depth-sensor dataset loaders (Kinect v1 and v2 recordings).

Used by :mod:`~skelrobust.data.ntu`, :mod:`~skelrobust.data.nwucla`,
:mod:`~skelrobust.data.utdmhad`, :mod:`~skelrobust.data.msr`,
:mod:`~skelrobust.data.gtu`, :mod:`~skelrobust.data.sbu` and
:mod:`~skelrobust.data.kinetics`:

- **Axes.** Kinect skeletons are in the sensor's camera frame: x to the
  sensor's left, y up, z away from the sensor (right-handed, metres).
  :func:`camera_to_zup` turns that into the library's z-up frame by the proper
  rotation ``(x, y, z) -> (-x, z, y)``: x to the sensor's right, y away from
  the sensor, z up. A subject facing the camera then faces -y with the left
  shoulder at +x, which is also the frame :func:`~skelrobust.data.transforms.view_normalize`
  produces, so normalisation of a frontal clip is close to the identity.
  Checked on every folder of the shared data (right-handedness: the facing
  direction from the shoulders and the spine agrees with the direction of the
  feet, and with the partner's position for SBU).
- **Joint orders.** Each 20-joint Kinect v1 dataset stores the joints in its
  own order; :func:`file_layout` describes that order as an (unregistered)
  :class:`~skelrobust.skeleton.Skeleton` and :func:`to_layout` remaps it by
  joint name to the canonical ``kinect20`` order with
  :func:`~skelrobust.data.transforms.remap_joints`.
- **Policies** (one for every loader). A corrupt or truncated file raises
  :class:`~skelrobust.errors.DatasetFormatError` naming the file and line;
  a folder loader skips such files with one counted warning and lists them in
  ``info["skipped"]`` (``strict=True`` raises instead). Untracked frames (all
  joints zero) at the start and end of a clip are trimmed; gaps inside stay
  zero (an absent body, as in the ``(N, C, T, V, M)`` convention). Clips left
  with fewer than ``min_frames`` frames (default 2: one frame has no motion)
  are dropped with one counted warning and listed in ``info["dropped"]``.
- **Cache.** Parsed folders are cached with :func:`~skelrobust.data.cache.cached_load`
  (all splits at once; a split is a cheap selection afterwards); the parse
  log (``info``) is kept next to the cache entry as JSON.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skelrobust.data.cache import cache_dir, cache_key, cached_load
from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.transforms import crop_or_pad, remap_joints, resample
from skelrobust.errors import ConfigError, DatasetFormatError, DatasetNotFoundError, LayoutError
from skelrobust.progress import progress_bar
from skelrobust.skeleton import BodyFrame, Skeleton, get_skeleton

__all__ = [
    "ParseLog",
    "camera_to_zup",
    "file_layout",
    "find_folder",
    "finish_split",
    "load_cached",
    "load_folder",
    "parse_table",
    "read_text",
    "stack_clips",
    "to_layout",
    "trim_untracked",
]

#: Bumped whenever parsing changes what a cache entry holds.
PARSER_VERSION = 1


# ---------------------------------------------------------------------- geometry
def camera_to_zup(xyz: np.ndarray) -> np.ndarray:
    """Kinect camera frame ``(..., 3)`` (x left, y up, z depth) -> z-up ``(-x, z, y)``."""
    xyz = np.asarray(xyz)
    return np.stack([-xyz[..., 0], xyz[..., 2], xyz[..., 1]], axis=-1)


def file_layout(name: str, base: str | Skeleton, order: Sequence[str]) -> Skeleton:
    """The joints of layout ``base`` in a dataset's file ``order`` (not registered)."""
    base = get_skeleton(base)
    if sorted(order) != sorted(base.joint_names):
        raise LayoutError(f"file_layout {name!r}: order must name each joint of {base.name!r} once")
    index = {n: i for i, n in enumerate(order)}

    def ids(group: Sequence[int]) -> tuple[int, ...]:
        return tuple(index[base.joint_names[j]] for j in group)

    parents = []
    for joint in order:
        p = base.parents[base.joint_index(joint)]
        parents.append(-1 if p < 0 else index[base.joint_names[p]])
    f = base.frame
    return Skeleton(name=name, joint_names=tuple(order), parents=tuple(parents),
                    frame=BodyFrame(ids(f.hip), ids(f.spine), ids(f.left_shoulder),
                                    ids(f.right_shoulder)),
                    description=f"file order of {name}, joints of {base.name}")


def to_layout(x: np.ndarray, source: Skeleton, target: str = "kinect20") -> np.ndarray:
    """Reorder ``(N, 3, T, V, M)`` joints from ``source`` to ``target`` by joint name."""
    names = get_skeleton(target).joint_names
    return remap_joints(x, source, target, {n: n for n in names})


def trim_untracked(clip: np.ndarray) -> np.ndarray:
    """Drop the leading and trailing frames of ``(T, ...)`` in which every value is zero."""
    tracked = np.flatnonzero(np.abs(clip.reshape(len(clip), -1)).sum(axis=1) > 0)
    return clip[tracked[0]:tracked[-1] + 1] if len(tracked) else clip[:0]


def stack_clips(clips: Sequence[np.ndarray], num_joints: int,
                num_bodies: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad clips ``(T_i, M, V, 3)`` into ``(N, 3, max T_i, V, M)`` float32 and lengths."""
    lengths = np.asarray([len(c) for c in clips], dtype=np.int64)
    t = int(lengths.max()) if len(clips) else 1
    x = np.zeros((len(clips), max(t, 1), num_bodies, num_joints, 3), dtype=np.float32)
    for i, clip in enumerate(clips):
        x[i, :len(clip), :clip.shape[1]] = clip
    return np.ascontiguousarray(x.transpose(0, 4, 1, 3, 2)), lengths


# ---------------------------------------------------------------------- text
def read_text(path: Path) -> str:
    """The file as text; undecodable bytes raise :class:`DatasetFormatError` with the line."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise DatasetFormatError(f"{path}: cannot read ({err})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise DatasetFormatError(f"{path}, line {line}: not UTF-8 text "
                                 f"(byte 0x{raw[err.start]:02x})") from None


def _bad_row(lines: Sequence[str], first_line: int, ncols: int, sep: str | None,
             path: Path, line_numbers: Sequence[int] | None = None) -> DatasetFormatError:
    """Locate the first malformed row (slow path, only after the fast parse failed)."""
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        tokens = line.split(sep) if sep else line.split()
        number = line_numbers[offset] if line_numbers is not None else first_line + offset
        where = f"{path}, line {number}"
        if len(tokens) != ncols:
            return DatasetFormatError(f"{where}: expected {ncols} numbers, got {len(tokens)}")
        for tok in tokens:
            try:
                value = float(tok)
            except ValueError:
                return DatasetFormatError(f"{where}: {tok.strip()[:30]!r} is not a number")
            if not np.isfinite(value):
                return DatasetFormatError(f"{where}: non-finite value {tok.strip()!r}")
    return DatasetFormatError(f"{path}: malformed numeric table")


def parse_table(lines: Sequence[str], path: Path, ncols: int, sep: str | None = None,
                first_line: int = 1, line_numbers: Sequence[int] | None = None) -> np.ndarray:
    """Parse rows of ``ncols`` finite numbers (blank lines skipped) into ``(R, ncols)`` float64.

    ``lines`` are consecutive lines of ``path`` starting at line ``first_line``
    (or at the 1-based ``line_numbers``, when they are not consecutive).
    Parsing is one vectorised ``numpy.loadtxt`` call; on failure the first
    malformed line is located and named in the :class:`DatasetFormatError`.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "empty input" warning: handled below
            out = np.loadtxt(lines, delimiter=sep, comments=None, dtype=np.float64, ndmin=2)
    except (ValueError, IndexError, TypeError):
        raise _bad_row(lines, first_line, ncols, sep, path, line_numbers) from None
    if out.size == 0:
        return np.zeros((0, ncols))
    if out.shape[1] != ncols or not np.isfinite(out).all():
        raise _bad_row(lines, first_line, ncols, sep, path, line_numbers)
    return out


def parse_text_table(path: Path, ncols: int, sep: str | None = None) -> np.ndarray:
    """:func:`parse_table` over a whole text file."""
    return parse_table(read_text(path).splitlines(), path, ncols, sep)


# ---------------------------------------------------------------------- folders
def find_folder(root: Path, pattern: str, subfolders: Sequence[str] = ()) -> Path:
    """``root`` or the first of its ``subfolders`` holding files matching ``pattern``."""
    root = Path(root)
    for folder in (root, *(root / s for s in subfolders)):
        if folder.is_dir() and next(folder.glob(pattern), None) is not None:
            return folder
    raise DatasetNotFoundError(f"no {pattern!r} files in {str(root)!r}"
                               + (f" or its subfolders {list(subfolders)}" if subfolders else ""))


def natural_key(path: Path) -> tuple[Any, ...]:
    """Sort key ordering ``movement2`` before ``movement10``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path)))


@dataclass
class ParseLog:
    """What a folder parse skipped (corrupt files) and dropped (too-short clips)."""

    dataset: str
    strict: bool = False
    min_frames: int = 2
    files: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.min_frames < 1:
            raise ConfigError(f"{self.dataset}: min_frames must be >= 1, got {self.min_frames}")

    def read(self, path: Path, reader: Callable[[Path], Any]) -> Any | None:
        """``reader(path)``, or ``None`` after recording a :class:`DatasetFormatError`."""
        self.files += 1
        try:
            return reader(path)
        except DatasetFormatError as err:
            if self.strict:
                raise
            self.skipped.append({"file": Path(path).name, "error": str(err)})
            return None

    def keep(self, path: Path, frames: int) -> bool:
        """False (and the clip recorded as dropped) when it has fewer than ``min_frames``."""
        if frames >= self.min_frames:
            return True
        self.dropped.append({"file": Path(path).name, "frames": int(frames)})
        return False

    def info(self) -> dict[str, Any]:
        return {"files": self.files, "skipped": list(self.skipped), "dropped": list(self.dropped),
                "min_frames": self.min_frames}


def warn_parse_log(name: str, info: dict[str, Any]) -> None:
    """One counted warning each for skipped files and dropped clips."""
    skipped, dropped = info.get("skipped", []), info.get("dropped", [])
    if skipped:
        first = skipped[0]["error"]
        warnings.warn(f"{name}: skipped {len(skipped)} of {info.get('files', '?')} files that "
                      f"could not be parsed (first: {first}); see dataset.info['skipped'] or pass "
                      "strict=True to raise", UserWarning, stacklevel=3)
    if dropped:
        warnings.warn(f"{name}: dropped {len(dropped)} clips with fewer than "
                      f"{info.get('min_frames', 2)} tracked frames "
                      f"({', '.join(d['file'] for d in dropped[:3])}"
                      f"{', ...' if len(dropped) > 3 else ''}); see dataset.info['dropped']",
                      UserWarning, stacklevel=3)


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json.tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_cached(name: str, files: Iterable[Path], root: Path, params: dict[str, Any],
                parse: Callable[[], SkeletonDataset], use_cache: bool = True,
                strict: bool = False) -> SkeletonDataset:
    """:func:`~skelrobust.data.cache.cached_load` that also keeps ``dataset.info``.

    ``SkeletonDataset.save_npz`` stores no ``info``, so the parse log lives in
    ``<cache>/<name>-<key>.info.json``. With ``strict`` a cached parse that
    skipped files raises the recorded error, as a fresh parse would.
    """
    files = list(files)
    params = {**params, "parser_version": PARSER_VERSION}
    if not use_cache:
        data = parse()
    else:
        fresh: dict[str, Any] = {}

        def parse_and_keep() -> SkeletonDataset:
            out = parse()
            fresh["info"] = out.info
            return out

        data = cached_load(name, files, root, params, parse_and_keep)
        side = cache_dir() / f"{name}-{cache_key(name, files, root, params)}.info.json"
        if "info" not in fresh:
            try:
                data.info = json.loads(side.read_text())
                data.info["cache"] = "hit"
            except (OSError, ValueError):
                data = parse_and_keep()
        if "info" in fresh:
            _write_json(side, fresh["info"])
    skipped = data.info.get("skipped", [])
    if strict and skipped:
        raise DatasetFormatError(skipped[0]["error"])
    warn_parse_log(name, data.info)
    return data


Reader = Callable[[Path], tuple[np.ndarray, int, dict[str, Any]]]


def load_folder(name: str, files: Sequence[Path], root: Path, reader: Reader, *,
                class_names: Sequence[str], skeleton: str, source: Skeleton | None = None,
                num_bodies: int = 1, params: dict[str, Any] | None = None, strict: bool = False,
                min_frames: int = 2, use_cache: bool = True,
                info: dict[str, Any] | None = None) -> SkeletonDataset:
    """Parse every file with ``reader`` into one cached dataset (the policies above).

    ``reader(path)`` returns ``(clip (T, M, V, 3) in metres, z-up, in the
    file's joint order, label, meta)`` or raises :class:`DatasetFormatError`
    (``meta["source"]`` defaults to the file stem);
    ``source`` (the file order) is remapped to ``skeleton`` by joint name.
    """
    log = ParseLog(name, strict=strict, min_frames=min_frames)

    def parse() -> SkeletonDataset:
        clips, labels, metas = [], [], []
        for f in progress_bar(files, desc=f"parsing {name}", unit="file"):
            got = log.read(f, reader)
            if got is None:
                continue
            clip = trim_untracked(got[0])
            if log.keep(f, len(clip)):
                clips.append(clip.astype(np.float32))
                labels.append(got[1])
                metas.append({"source": Path(f).stem, **got[2]})
        joints = (source or get_skeleton(skeleton)).num_joints
        x, lengths = stack_clips(clips, joints, num_bodies)
        if source is not None:
            x = to_layout(x, source, skeleton)
        meta = {k: np.asarray([m[k] for m in metas]) for k in (metas[0] if metas else {})}
        return SkeletonDataset(x=x, y=np.asarray(labels, np.int64), class_names=class_names,
                               skeleton=skeleton, lengths=np.maximum(lengths, 1), meta=meta,
                               name=name, info={**log.info(), **(info or {})})

    return load_cached(name, files, root, {**(params or {}), "min_frames": min_frames}, parse,
                       use_cache, strict)


def finish_split(data: SkeletonDataset, mask: np.ndarray, split: str,
                 num_frames: int | None = None, temporal: str = "zero") -> SkeletonDataset:
    """Select ``mask``'s clips, cut padding to the longest, fit to ``num_frames`` if given.

    ``temporal`` is ``"zero"`` (crop / zero-pad), ``"repeat"``, ``"edge"``
    (see :func:`~skelrobust.data.transforms.crop_or_pad`) or ``"resample"``.
    """
    out = data.subset(np.flatnonzero(mask))
    x, lengths = out.x, out.lengths
    longest = int(lengths.max()) if len(lengths) else 1
    x = x[:, :, :longest]
    if num_frames is not None:
        if num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
        if temporal == "resample":
            x, lengths = resample(x, num_frames, lengths) if len(x) else (
                np.zeros((*x.shape[:2], num_frames, *x.shape[3:]), np.float32), lengths)
        else:
            x, lengths = crop_or_pad(x, num_frames, lengths, temporal)
    info = {**out.info, "split": split}
    return SkeletonDataset(x=x, y=out.y, class_names=out.class_names, skeleton=out.skeleton,
                           lengths=lengths, meta=out.meta, name=out.name, info=info)


def json_loads(text: str, path: Path) -> Any:
    """``json.loads`` whose errors are :class:`DatasetFormatError` naming file and line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(f"{path}, line {err.lineno}: invalid JSON ({err.msg})") from None
    except RecursionError:
        raise DatasetFormatError(f"{path}: JSON nested too deeply") from None


def number_array(value: Any, path: Path, what: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """A finite float64 array of ``shape`` (``None`` = any size) from JSON lists."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise DatasetFormatError(f"{path}: {what} is not a regular array of numbers") from None
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "(" + ", ".join("T" if s is None else str(s) for s in shape) + ")"
        raise DatasetFormatError(f"{path}: {what} has shape {arr.shape}, expected {want}")
    if not np.isfinite(arr).all():
        raise DatasetFormatError(f"{path}: {what} holds non-finite values")
    return arr

