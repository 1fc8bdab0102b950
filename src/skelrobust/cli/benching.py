"""The CLI's ``bench`` verb: run a sweep file into a resumable result store. Thin: it reads the
sweep, calls :func:`skelrobust.bench.run_sweep` and reports what the store holds."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from skelrobust.cli.commands import _table
from skelrobust.cli.output import emit, provenance
from skelrobust.errors import ConfigError, SkelRobustError
from skelrobust.validation import integer, real

__all__ = ["CellsFailedError", "add_parsers", "cmd_bench", "sweep_and_ray"]

log = logging.getLogger("skelrobust")


class CellsFailedError(SkelRobustError):
    """Some cells of a sweep failed (their results hold the tracebacks)."""


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``bench`` on the ``skelrobust`` subparsers ``sub``."""
    from skelrobust.cli.defending import _flag_type

    p = sub.add_parser("bench", parents=[common], help="run a benchmark sweep (a YAML grid of "
                       "datasets x models x defenses x attacks x goals x budgets x seeds); "
                       "resumable, local processes or Ray")
    p.add_argument("sweep", metavar="SWEEP.yaml", nargs="?", help="the sweep file "
                   "(configs/sweeps/ has examples)")
    p.add_argument("--out", required=True, help="the result store: a new folder, or one of an "
                   "earlier run of the same sweep (finished cells are skipped)")
    p.add_argument("--workers", type=_flag_type(integer(1, 4096), "workers"), default=0,
                   help="run the cells in N local processes (each with --threads torch "
                   "threads; default the cores shared out)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run the cells as Ray tasks: on a local Ray cluster without ADDRESS, "
                   "else on the cluster at ADDRESS (e.g. auto); needs skelrobust[distributed]")
    p.add_argument("--ray-cpus", type=_flag_type(integer(1, 1_000_000), "cpus"), default=None,
                   help="CPUs of the local Ray cluster (default: every core)")
    p.add_argument("--gpus-per-cell", type=_flag_type(real(0.0, 1.0), "gpus"), default=None,
                   help="share of a GPU each Ray task asks for where the cluster has GPUs "
                   "(default 0.25)")
    p.add_argument("--retries", type=_flag_type(integer(0, 1000), "retries"), default=None,
                   help="runs of a failed cell after its first, over all runs (default: the "
                   "sweep's retries)")
    p.set_defaults(func=cmd_bench)


def _row(result: dict[str, Any]) -> dict[str, Any]:
    from skelrobust.bench.runner import describe

    cell, m = result["cell"], result.get("metrics") or {}
    per = m.get("perceptual") or {}
    return {"cell": describe(cell), "seed": cell["seed"], "status": result["status"],
            "clean %": m.get("clean_accuracy_pct"), "success %": m.get("success_pct"),
            "robust %": m.get("robust_accuracy_pct"), "joint mm": per.get("joint_mm_mean"),
            "clips": m.get("clips"), "s": result.get("seconds")}


def sweep_and_ray(args: argparse.Namespace) -> tuple[str, str | None]:
    """The sweep file and the Ray address; ``--ray SWEEP.yaml`` (the file taken for the
    optional address) means a local cluster."""
    from pathlib import Path

    if args.sweep is not None:
        return args.sweep, args.ray
    if args.ray is not None and Path(args.ray).suffix.lower() in (".yaml", ".yml"):
        return args.ray, "local"
    raise ConfigError("bench: name the sweep file (skelrobust bench SWEEP.yaml --out DIR)")


def cmd_bench(args: argparse.Namespace) -> None:
    from skelrobust.bench import load_sweep, run_sweep

    path, ray = sweep_and_ray(args)
    sweep = load_sweep(path)
    run = run_sweep(sweep, args.out, workers=args.workers, ray=ray, retries=args.retries,
                    threads=args.threads, progress=not args.quiet, ray_cpus=args.ray_cpus,
                    gpus_per_cell=args.gpus_per_cell)
    ordered = [run.results[i] for i in sweep.ids if i in run.results]
    failed = run.failed
    payload = {"sweep": sweep.name, "source": sweep.path, "out": str(run.out),
               "cells": len(sweep.cells), "ran": run.ran, "skipped": run.skipped,
               "busy": run.busy, "ok": len(ordered) - len(failed), "failed": len(failed),
               "seconds": run.seconds, "results": [_row(r) for r in ordered],
               "errors": {r["id"]: f"{r['error']['type']}: {r['error']['message']}"
                          for r in failed}, "provenance": provenance()}
    lines = [f"{sweep.name}: {len(sweep.cells)} cells; {run.ran} run now, {run.skipped} "
             f"finished before, {len(failed)} failed, {run.seconds:.1f} s", "",
             _table(payload["results"], digits=1)]
    lines += [f"failed: {r['id']} ({_row(r)['cell']}): {payload['errors'][r['id']]}"
              for r in failed]
    if run.busy:
        lines.append(f"{run.busy} cells were being run by another process")
    lines.append(f"results in {run.out}/cells/ (one JSON per cell); clips in "
                 f"{run.out}/artifacts/")
    emit(args, payload, "\n".join(lines))
    if failed:
        raise CellsFailedError(
            f"{len(failed)} of {len(sweep.cells)} cells failed (their tracebacks are in "
            f"{run.out}/cells/<id>.json); run again to retry those with attempts left, or "
            "raise --retries")
