"""The benchmark runner: a sweep file (a grid of cells) run into a resumable result store.

    from skelrobust.bench import load_sweep, run_sweep
    run = run_sweep(load_sweep("configs/sweeps/tiny-synthetic.yaml"), "runs/tiny")

Modules: :mod:`~skelrobust.bench.schema` (the store's contract, what reports read),
:mod:`~skelrobust.bench.sweep` (sweep files), :mod:`~skelrobust.bench.store` (manifest,
atomic results, locks), :mod:`~skelrobust.bench.checkpoints` (classifiers trained once per
configuration), :mod:`~skelrobust.bench.cell` and :mod:`~skelrobust.bench.cascade` (what a
cell computes), :mod:`~skelrobust.bench.runner` (local backends) and
:mod:`~skelrobust.bench.ray_backend` (Ray tasks). The command line: ``skelrobust bench``.
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy: the result-store contract (schema) is read by the reports without loading the runner
# (and torch); the names below import their module on first use.
_WHERE = {"SweepRun": "runner", "run_cell": "runner", "run_sweep": "runner",
          "SCHEMA": "schema", "CellResult": "schema", "CellSpec": "schema", "cell_id": "schema",
          "Store": "store", "Sweep": "sweep", "load_sweep": "sweep", "parse_sweep": "sweep"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'skelrobust.bench' has no attribute {name!r}")
    return getattr(importlib.import_module(f"skelrobust.bench.{_WHERE[name]}"), name)
