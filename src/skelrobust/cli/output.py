"""What the CLI writes: JSON-safe payloads, guarded output folders, provenance of results."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from skelrobust.errors import ConfigError
from skelrobust.fileio import json_safe as clean
from skelrobust.fileio import write_json

__all__ = ["clean", "emit", "file_fingerprint", "prepare_out", "provenance", "write_json"]


def emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    """One JSON document (``--json``) or the text for people, on stdout."""
    if args.json:
        sys.stdout.write(json.dumps(clean(payload), indent=2) + "\n")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def prepare_out(path: str | os.PathLike[str], overwrite: bool, produces: tuple[str, ...],
                folder: bool = True) -> Path:
    """Check ``--out`` before any work: earlier results are refused unless ``overwrite``.

    ``folder``: ``--out`` names a folder (refused when it holds anything) or,
    if False, one file (refused when it exists). With ``overwrite`` the
    command's own earlier outputs (``produces``) are removed first, so no stale
    file is left beside the new ones; other files are never touched.
    """
    out = Path(path)
    if not folder:
        if out.is_dir():
            raise ConfigError(f"--out {str(out)!r} is a folder; expected a file name")
        if out.exists() and not overwrite:
            raise ConfigError(f"--out {str(out)!r} exists; pass --overwrite to replace it")
        out.parent.mkdir(parents=True, exist_ok=True)
        return out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; expected a folder")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not overwrite:
        shown = ", ".join(held[:4]) + (f", ... ({len(held)} entries)" if len(held) > 4 else "")
        raise ConfigError(f"--out {str(out)!r} already holds earlier results ({shown}); pass "
                          "--overwrite to replace them, or choose another folder")
    for name in held:
        if name in produces or name.endswith(".tmp"):
            target = out / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (first 16 hex digits), read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    """Package and library versions, command line, threads, machine and time of a result."""
    import numpy
    import torch

    from skelrobust import __version__

    return {"skelrobust": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads(),
            "command": ["skelrobust", *(sys.argv[1:] if argv is None else argv)],
            "machine": platform.machine(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
