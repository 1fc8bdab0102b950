"""Shared helpers for benchmark scripts: machine description, JSON, BENCHMARKS.md sections."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "BENCHMARKS.md"


def machine() -> dict[str, Any]:
    """What the numbers were measured on (the runner's description of the host, plus the
    torch threads and the date)."""
    from skelrobust.bench.runner import machine as host

    info = host()
    return {"cpu": info["cpu"], "cores": info["cores"],
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}


def command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [
        os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)
    return path


def store_cell(name: str, key: str, cell: dict[str, Any], group: str = "cells",
               top: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add ``cell`` under ``store[group][key]`` of ``results/<name>.json``; return the store.

    Re-reads the file under an exclusive lock first, so several processes (one per
    dataset, say) can fill one store without losing each other's cells; ``top``:
    top-level entries to set as well (a benchmark's grid settings).
    """
    import fcntl

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    with open(RESULTS / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        store = json.loads(path.read_text()) if path.exists() else {}
        store.setdefault(group, {})[key] = cell
        store.update(top or {})
        store["machine"] = machine()
        commands = store.setdefault("commands", [])
        if command() not in commands:
            commands.append(command())
        write_json(name, store)
    return store


def update_section(section: str, markdown: str) -> None:
    """Replace the ``<!-- BEGIN section -->...<!-- END section -->`` block (append if absent)."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else (
        text.rstrip() + "\n\n" + block + "\n")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
