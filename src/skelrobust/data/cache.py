"""Cache of parsed datasets as ``.npz``, keyed by the source files and parameters.

The key is a BLAKE2 hash of every source file's relative path and bytes plus
the JSON of the preprocessing parameters, so an edited file or a changed
parameter never hits a stale entry. Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from skelrobust.data.dataset import SkeletonDataset

__all__ = ["cache_dir", "cache_key", "cached_load"]

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """``$SKELROBUST_CACHE``, else ``$XDG_CACHE_HOME/skelrobust``, else ``~/.cache/skelrobust``."""
    env = os.environ.get("SKELROBUST_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "skelrobust"


def cache_key(name: str, files: Iterable[Path], root: Path, params: dict[str, Any]) -> str:
    """Hash of the dataset name, each file's path relative to ``root`` and bytes, and params."""
    h = hashlib.blake2b(digest_size=16)
    h.update(name.encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    for f in sorted(Path(p) for p in files):
        h.update(str(f.relative_to(root) if f.is_relative_to(root) else f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def cached_load(name: str, files: Iterable[Path], root: Path, params: dict[str, Any],
                parse: Callable[[], SkeletonDataset], use_cache: bool = True,
                directory: Path | None = None) -> SkeletonDataset:
    """Return ``parse()``'s dataset, from the cache when the key matches."""
    if not use_cache:
        return parse()
    key = cache_key(name, files, Path(root), params)
    folder = Path(directory) if directory is not None else cache_dir()
    path = folder / f"{name}-{key}.npz"
    if path.exists():
        try:
            return SkeletonDataset.load_npz(str(path))
        except (OSError, ValueError, KeyError) as err:  # corrupt entry: rebuild it
            log.warning("ignoring unreadable cache entry %s: %s", path, err)
    data = parse()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            data.save_npz(fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return data
