"""Files written whole or not at all, and JSON that any reader accepts.

Every result the library writes (a sweep's cells, a command's summary, a checkpoint) goes
through :func:`atomic_write`, so a reader, or a run resumed after a kill, never sees half a
file; :func:`json_safe` turns NaN/inf into ``null`` and numpy scalars into JSON values.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "json_safe", "write_json"]


def json_safe(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become null, numpy scalars and tuples become JSON values."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def atomic_write(path: str | os.PathLike[str], data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` whole or not at all: a temporary file in the same folder,
    renamed over ``path``; ``durable``: flushed to disk first and the rename made durable."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if durable:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json(path: str | os.PathLike[str], obj: Any, indent: int = 2,
               durable: bool = True) -> None:
    """``obj`` as JSON (through :func:`json_safe`), written atomically."""
    atomic_write(path, json.dumps(json_safe(obj), indent=indent, allow_nan=False).encode(),
                 durable=durable)
