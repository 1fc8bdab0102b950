"""HDM05 in the array format of the SMART research code (Wang et al. CVPR 2021).

The SMART (and BASAR, Diao et al. CVPR 2021; BEAT) code stores HDM05 clips as

* ``adClassTrain.npz`` / ``adClassTest.npz``: ``clips`` float32 ``(N, 60, 75)``
  (60 frames × 25 joints × xyz, normalised) and ``classes`` int ``(N,)``;
* ``preprocess_core.npz``: ``Xmean``, ``Xstd`` of shape ``(1, 75, 1)``; the
  motion is ``clips · Xstd + Xmean``;
* ``hdm05_classes.txt``: the 65 class names of that label space.

Facts checked on the shared files: de-normalised, the joints are the 25 of the
``hdm05_25`` layout (root joint 10 and the zero-length hip joints 0 and 5 at
the origin in every frame, i.e. root-centred), y-up, and every clip has exactly
the bone lengths of BASAR's ``hdm05_rest.bvh`` (the CMU rest skeleton the data
were retargeted onto). Those are Acclaim/CMU ASF length units: the femur is
7.16 units, 0.404 m at ``0.0254 / 0.45`` m per unit, in line with the 0.40-0.41 m
femurs that :mod:`skelrobust.data.hdm05` computes from HDM05's own ASF files (the
tests compare every bone). So metres are ``units × 0.0254 / 0.45``
(:data:`SMART_METRES_PER_UNIT`), and the axes go to z-up by ``(x, y, z) → (x,
−z, y)``. :func:`to_smart_format` inverts all of it so adversarial clips can be
fed back to the research code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.hdm05 import Y_UP_TO_Z_UP
from skelrobust.data.registry import DatasetSpec, register_dataset
from skelrobust.errors import ConfigError, DatasetFormatError, DatasetNotFoundError, LayoutError

__all__ = [
    "SMART_FILES",
    "SMART_METRES_PER_UNIT",
    "from_smart_format",
    "load_smart",
    "load_smart_core",
    "save_smart_npz",
    "to_smart_format",
]

#: Metres per unit of the SMART arrays (Acclaim/CMU ASF units: 1/0.45 inch).
SMART_METRES_PER_UNIT = 0.0254 / 0.45
#: The research code's file of each split.
SMART_FILES = {"train": "adClassTrain.npz", "test": "adClassTest.npz"}
_CORE = "preprocess_core.npz"
_CLASSES = "hdm05_classes.txt"
_V = 25


def _npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in keys if k not in f.files]
            if missing:
                raise DatasetFormatError(f"{path}: missing arrays {missing} (has {f.files})")
            return {k: np.asarray(f[k]) for k in keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetFormatError(f"{path}: not a readable .npz file ({err})") from err


def _vector75(arr: np.ndarray, name: str) -> np.ndarray:
    flat = np.asarray(arr, dtype=np.float64).reshape(-1)
    if flat.size != _V * 3:
        raise DatasetFormatError(f"{name}: expected {_V * 3} values, got shape {np.shape(arr)}")
    if not np.isfinite(flat).all():
        raise DatasetFormatError(f"{name}: contains NaN or infinite values")
    return flat


def load_smart_core(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)``, each ``(75,)`` float64, from a ``preprocess_core.npz``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"smart-hdm05: normalisation file {str(path)!r} is missing")
    core = _npz(path, ("Xmean", "Xstd"))
    mean = _vector75(core["Xmean"], f"{path}: Xmean")
    std = _vector75(core["Xstd"], f"{path}: Xstd")
    if (std <= 0).any():
        raise DatasetFormatError(f"{path}: Xstd must be positive")
    return mean, std


def from_smart_format(clips: np.ndarray, classes: np.ndarray, mean: np.ndarray,
                      std: np.ndarray, class_names: list[str],
                      name: str = "smart-hdm05", source: str = "") -> SkeletonDataset:
    """SMART arrays → ``hdm05_25`` dataset ``(N, 3, T, 25, 1)`` in metres, z-up."""
    clips = np.asarray(clips)
    if clips.ndim != 3 or clips.shape[2] != _V * 3 or clips.shape[1] < 1:
        raise DatasetFormatError(f"{source or 'clips'}: expected clips of shape (N, T, 75), "
                                 f"got {clips.shape}")
    if not np.isfinite(clips).all():
        raise DatasetFormatError(f"{source or 'clips'}: clips contain NaN or infinite values")
    labels = np.asarray(classes).reshape(-1)
    if len(labels) != len(clips) or (len(labels) and (labels.min() < 0 or labels.max() >= len(
            class_names))):
        raise DatasetFormatError(f"{source or 'classes'}: expected {len(clips)} class ids in "
                                 f"[0, {len(class_names)})")
    motion = clips.astype(np.float64) * _vector75(std, "std") + _vector75(mean, "mean")
    pos = motion.reshape(len(clips), -1, _V, 3) @ Y_UP_TO_Z_UP.T * SMART_METRES_PER_UNIT
    x = np.moveaxis(pos, -1, 1)[..., None].astype(np.float32)  # (N, 3, T, V, 1)
    n = len(clips)
    meta = {"source": np.array([f"{source}#{i}" for i in range(n)]), "index": np.arange(n)}
    return SkeletonDataset(x=x, y=labels.astype(np.int64), class_names=list(class_names),
                           skeleton="hdm05_25", meta=meta, name=name,
                           info={"units": "m", "up": "z", "format": "smart"})


def to_smart_format(data: SkeletonDataset, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The inverse of :func:`from_smart_format`: ``float32 (N, T, 75)`` normalised clips.

    Body 0 of an ``hdm05_25`` dataset is taken back to y-up ASF units and
    normalised with ``(v − mean) / std`` (``mean``/``std`` as from
    :func:`load_smart_core`, any shape holding 75 values).
    """
    if data.skeleton.name != "hdm05_25":
        raise LayoutError(f"to_smart_format: needs the hdm05_25 layout, got "
                          f"{data.skeleton.name!r} (convert with hdm05.to_hdm05_25)")
    pos = np.moveaxis(data.x[..., 0].astype(np.float64), 1, -1)  # (N, T, V, 3)
    units = pos @ Y_UP_TO_Z_UP / SMART_METRES_PER_UNIT  # inverse rotation: R⁻¹ = Rᵀ
    flat = units.reshape(len(data), data.num_frames, _V * 3)
    return ((flat - _vector75(mean, "mean")) / _vector75(std, "std")).astype(np.float32)


def save_smart_npz(path: str | Path, data: SkeletonDataset, mean: np.ndarray,
                   std: np.ndarray, classes: np.ndarray | None = None) -> None:
    """Write ``clips``/``classes`` as the research code reads them (``classes`` default ``y``)."""
    clips = to_smart_format(data, mean, std)
    labels = data.y if classes is None else np.asarray(classes)
    np.savez(Path(path), clips=clips, classes=labels.astype(np.int32))


def _class_names(root: Path) -> list[str]:
    path = root / _CLASSES
    if not path.is_file():
        raise DatasetNotFoundError(f"smart-hdm05: class list {str(path)!r} is missing")
    names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace")
             .splitlines() if line.strip()]
    if not names:
        raise DatasetFormatError(f"{path}: no class names")
    return names


def load_smart(root: str | Path, split: str = "train") -> SkeletonDataset:
    """Load ``adClassTrain.npz`` (``train``) or ``adClassTest.npz`` (``test``) from ``root``."""
    if split not in SMART_FILES:
        raise ConfigError(f"smart-hdm05: split must be one of {list(SMART_FILES)}, got {split!r}")
    root = Path(root)
    path = root / SMART_FILES[split]
    if not path.is_file():
        have = sorted(p.name for p in root.glob("*.npz")) if root.is_dir() else []
        raise DatasetNotFoundError(
            f"smart-hdm05: split {split!r} needs {SMART_FILES[split]} in {str(root)!r} (the "
            f"research code's {split} file); found only {have or 'no .npz files'}")
    arrays = _npz(path, ("clips", "classes"))
    mean, std = load_smart_core(root / _CORE)
    return from_smart_format(arrays["clips"], arrays["classes"], mean, std, _class_names(root),
                             source=path.name)



register_dataset(DatasetSpec(
    name="smart-hdm05",
    layout="hdm05_25",
    num_classes=65,
    splits=tuple(SMART_FILES),
    description="HDM05 clips in the SMART/BEAT research array format (Wang et al. CVPR 2021): "
                "60 frames, 25 joints, 65-class label space",
    loader=load_smart,
    default_folder="smart-format",
    protocol="the research code's files: adClassTrain.npz (train), adClassTest.npz (test)",
))
