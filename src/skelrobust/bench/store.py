"""The result store of one sweep (layout: :mod:`skelrobust.bench.schema`): its manifest, one
result file per cell written atomically, and the locks that let several processes (local
workers, Ray tasks, a second ``skelrobust bench`` on the same folder) share it.

Locks are ``fcntl.flock`` on files under ``DIR/locks/``: the operating system releases them
when their process dies, so a cell claimed by a worker killed with SIGKILL is free again at
once, and nothing finished is lost (a result is on disk whole, or not at all).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skelrobust.bench.schema import SCHEMA, CellResult
from skelrobust.errors import ConfigError
from skelrobust.fileio import write_json

__all__ = ["MANIFEST", "SWEEP_SCHEMA", "Store", "locked"]

log = logging.getLogger(__name__)

MANIFEST = "sweep.json"
#: The version tag of ``sweep.json``.
SWEEP_SCHEMA = "skelrobust.sweep/1"
#: What the runner may find in an output folder besides the manifest.
_OWN = {MANIFEST, "cells", "artifacts", "checkpoints", "locks"}


@contextmanager
def locked(path: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created if absent) for the ``with`` block.

    Yields ``True``; with ``blocking=False`` yields ``False`` at once when another process
    (or another open of the file) holds it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


class Store:
    """The output folder ``root`` of a sweep (module doc)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.cells = self.root / "cells"
        self.artifacts = self.root / "artifacts"
        self.checkpoints = self.root / "checkpoints"
        self.locks = self.root / "locks"

    # ------------------------------------------------------------------ paths
    def result_path(self, cell: str) -> Path:
        return self.cells / f"{cell}.json"

    def artifact_path(self, cell: str) -> Path:
        return self.artifacts / f"{cell}.npz"

    def lock_path(self, name: str) -> Path:
        return self.locks / f"{name}.lock"

    # ------------------------------------------------------------------ manifest
    def open(self, sweep: Any) -> dict[str, Any]:
        """Make the folder ready for ``sweep`` (a :class:`~skelrobust.bench.sweep.Sweep`).

        A new or empty folder gets the manifest; a folder of the same sweep is resumed; one
        holding another sweep's results, or anything else, is refused (a ``ConfigError``).
        """
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"--out {str(self.root)!r} is a file; expected a folder")
        self.root.mkdir(parents=True, exist_ok=True)
        with locked(self.lock_path("sweep")):
            manifest = self.manifest()
            if manifest is None:
                stray = sorted(p.name for p in self.root.iterdir() if p.name not in _OWN)
                held = sorted(p.name for p in self.cells.glob("*.json")) if (
                    self.cells.is_dir()) else []
                if stray or held:
                    shown = ", ".join((stray + held)[:4])
                    raise ConfigError(f"--out {str(self.root)!r} holds other files ({shown}) "
                                      "and no sweep manifest: choose an empty or new folder")
                manifest = {"schema": SWEEP_SCHEMA, "name": sweep.name, "hash": sweep.hash,
                            "source": sweep.path, "description": sweep.description,
                            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "cells": sweep.ids, "specs": dict(zip(sweep.ids, sweep.cells))}
                write_json(self.root / MANIFEST, manifest, indent=1)
            elif manifest.get("hash") != sweep.hash:
                raise ConfigError(
                    f"--out {str(self.root)!r} holds the results of another sweep "
                    f"({manifest.get('name')!r} from {manifest.get('source')}, "
                    f"{len(manifest.get('cells', []))} cells); {sweep.path} "
                    f"({sweep.name!r}, {len(sweep.cells)} cells) is not the same grid: "
                    "choose another --out rather than mixing their results")
        for folder in (self.cells, self.artifacts, self.checkpoints):
            folder.mkdir(exist_ok=True)
        return manifest

    def manifest(self) -> dict[str, Any] | None:
        path = self.root / MANIFEST
        if not path.is_file():
            return None
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"{path}: unreadable sweep manifest ({err})") from None
        if not isinstance(value, dict) or value.get("schema") != SWEEP_SCHEMA:
            raise ConfigError(f"{path}: not a skelrobust sweep manifest ({SWEEP_SCHEMA})")
        return value

    # ------------------------------------------------------------------ results
    def read(self, cell: str) -> CellResult | None:
        """The stored result of ``cell`` (``None``: none yet)."""
        path = self.result_path(cell)
        try:
            value = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:  # never written by this runner: atomic writes
            log.warning("%s: unreadable result (%s); the cell runs again", path, err)
            return None
        return value if isinstance(value, dict) and value.get("schema") == SCHEMA else None

    def write(self, result: CellResult) -> Path:
        """Store ``result`` atomically as ``cells/<id>.json``."""
        path = self.result_path(result["id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, result, indent=1)
        return path

    def results(self, ids: list[str]) -> dict[str, CellResult]:
        """The stored results among ``ids``, by id."""
        found = {cell: self.read(cell) for cell in ids}
        return {k: v for k, v in found.items() if v is not None}

    @contextmanager
    def claim(self, cell: str) -> Iterator[bool]:
        """Hold ``cell`` for this process (yields ``False`` if a live process holds it); stale
        temporary files of the cell (from a killed run) are removed once it is held."""
        with locked(self.lock_path(f"cell-{cell}"), blocking=False) as mine:
            if mine:
                for folder in (self.cells, self.artifacts):
                    for tmp in folder.glob(f"{cell}.*.tmp"):
                        tmp.unlink(missing_ok=True)
            yield mine

