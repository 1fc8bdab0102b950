"""Helpers shared by the motion-capture text parsers (Acclaim ASF/AMC, BVH).

Reading a file's text without decoding failures, unsigned integers and finite
numbers with errors that name the place, and rotation matrices from Euler angles about fixed axes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from skelrobust.errors import DatasetFormatError

__all__ = ["as_text", "ascii_digits", "axis_rotation", "euler_fixed", "finite_number",
           "read_text"]


def read_text(path: str | Path) -> str:
    """A motion file's text (Latin-1, which never fails: HDM05 headers hold ``für``)."""
    try:
        return Path(path).read_bytes().decode("latin-1")
    except OSError as err:
        raise DatasetFormatError(f"{path}: cannot read the file ({err})") from err


def as_text(data: str | bytes) -> str:
    return data.decode("latin-1") if isinstance(data, bytes | bytearray) else data


def ascii_digits(tok: str) -> bool:
    """An ASCII unsigned integer that fits in int64 (``str.isdigit`` also accepts ``²``,
    which ``int`` then refuses)."""
    return tok.isascii() and tok.isdigit() and len(tok) < 19


def finite_number(tok: str, where: str) -> float:
    """A finite float, else a :class:`DatasetFormatError` naming ``where``."""
    try:
        value = float(tok)
    except ValueError:
        raise DatasetFormatError(f"{where}: expected a number, got {tok!r}") from None
    if not math.isfinite(value):
        raise DatasetFormatError(f"{where}: expected a finite number, got {tok!r}")
    return value


# ---------------------------------------------------------------------- rotations
def axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    """Rotations ``(..., 3, 3)`` by ``angle`` (radians) about ``axis`` in ``xyz``."""
    c, s = np.cos(angle), np.sin(angle)
    o, i = np.zeros_like(angle), np.ones_like(angle)
    rows = {
        "x": (i, o, o, o, c, -s, o, s, c),
        "y": (c, o, s, o, i, o, -s, o, c),
        "z": (c, -s, o, s, c, o, o, o, i),
    }[axis]
    return np.stack(rows, axis=-1).reshape(*np.shape(angle), 3, 3)


def euler_fixed(angles: np.ndarray, axes: str) -> np.ndarray:
    """Rotations about fixed axes applied in order: ``axes="xyz"`` gives ``Rz·Ry·Rx``.

    ``angles`` is ``(..., len(axes))`` in radians. Rotating about fixed axes in
    the order ``a, b, c`` equals intrinsic rotations in the order ``c, b, a``.
    """
    angles = np.asarray(angles, dtype=np.float64)
    out = np.broadcast_to(np.eye(3), (*angles.shape[:-1], 3, 3))
    for k, axis in enumerate(axes.lower()):
        out = axis_rotation(axis, angles[..., k]) @ out
    return np.array(out)
