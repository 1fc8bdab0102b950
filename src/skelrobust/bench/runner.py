"""Run a sweep's cells: one function per cell (:func:`run_cell`) that every backend calls —
in this process, in ``workers`` local processes, or as Ray tasks
(:mod:`skelrobust.bench.ray_backend`) — and :func:`run_sweep` that drives them.

A cell is claimed (a lock its process holds until it ends), skipped when its stored result is
``ok``, else computed; an exception becomes a ``failed`` result with its traceback, and the
cell runs again, in this run, until it succeeds or has had ``1 + retries`` attempts counted
over all runs (a later run with a larger ``retries`` tries it again). Nothing else stops the
sweep: one failed cell never stops the others.
"""

from __future__ import annotations

import logging
import os
import platform
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skelrobust.bench.schema import SCHEMA, CellResult, CellSpec, cell_id
from skelrobust.bench.store import Store
from skelrobust.bench.sweep import Sweep
from skelrobust.errors import ConfigError

__all__ = ["SweepRun", "describe", "finished", "machine", "run_cell", "run_sweep"]

log = logging.getLogger(__name__)


def machine() -> dict[str, Any]:
    """The machine a cell ran on: host, CPU, cores, GPU, library versions."""
    import numpy
    import torch

    from skelrobust import __version__

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "gpu": gpu,
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__, "skelrobust": __version__}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def finished(result: CellResult | None, retries: int) -> bool:
    """Whether a stored result needs no more runs: ``ok``, or failed ``1 + retries`` times."""
    if result is None:
        return False
    return result.get("status") == "ok" or int(result.get("attempts", 0)) >= 1 + retries


def run_cell(spec: CellSpec, out_dir: str | os.PathLike[str], sweep: str = "",
             retries: int = 0) -> CellResult | None:
    """Run the cell ``spec`` into the store ``out_dir`` (module doc); returns its result, or
    ``None`` when another live process holds the cell."""
    import torch

    from skelrobust.bench.cell import compute_cell

    store = Store(out_dir)
    key = cell_id(spec)
    with store.claim(key) as mine:
        if not mine:
            return None
        result = store.read(key)
        while not finished(result, retries):
            attempts = int(result.get("attempts", 0)) + 1 if result else 1
            started, t0 = _now(), time.perf_counter()
            record: CellResult = {"schema": SCHEMA, "id": key, "sweep": sweep, "cell": spec,
                                  "attempts": attempts, "started": started}
            try:
                record.update(compute_cell(spec, store))
                record.update(status="ok", error=None)
            except Exception as err:
                record.update(status="failed", error={
                    "type": type(err).__name__, "message": str(err),
                    "traceback": traceback.format_exc()})
                log.warning("cell %s (%s) failed, attempt %d of %d: %s: %s", key, describe(spec),
                            attempts, 1 + retries, type(err).__name__, err)
            record.update(finished=_now(), seconds=time.perf_counter() - t0,
                          threads=torch.get_num_threads(), machine=machine())
            store.write(record)
            result = record
        return result


def describe(spec: CellSpec) -> str:
    """``dataset/model[/defense] attack goal budget seed`` of a cell, for people."""
    attack = spec["attack"] if isinstance(spec["attack"], str) else "+".join(spec["attack"])
    defense = "" if spec.get("defense", "none") == "none" else f"/{spec['defense']}"
    budget = ",".join(f"{k}={v}" for k, v in (spec.get("budget") or {}).items())
    goal = spec["goal"] + (f"-{spec['options']['n']}" if spec["goal"] == "abn"
                           and "n" in (spec.get("options") or {}) else "")
    head = f"{spec['dataset']}/{spec['model']}{defense} {attack}"
    return head if attack == "clean" else f"{head} {goal}{' ' + budget if budget else ''}"


@dataclass
class SweepRun:
    """What :func:`run_sweep` did: the results of every cell (sweep order), and counts."""

    sweep: Sweep
    out: Path
    results: dict[str, CellResult] = field(default_factory=dict)
    ran: int = 0  # cells this run computed (or tried)
    skipped: int = 0  # cells already finished before this run
    busy: int = 0  # cells another live process held
    seconds: float = 0.0

    @property
    def failed(self) -> list[CellResult]:
        return [r for r in self.results.values() if r.get("status") == "failed"]

    @property
    def missing(self) -> list[str]:
        return [i for i in self.sweep.ids if i not in self.results]


def _init_worker(threads: int | None) -> None:
    """A worker process: its torch threads, no progress bars of its own."""
    import torch

    from skelrobust.progress import set_progress

    if threads:
        torch.set_num_threads(threads)
    set_progress(False)


def _serial(specs: list[CellSpec], out: str, sweep: str, retries: int,
            threads: int | None) -> Iterator[CellResult | None]:
    import torch

    from skelrobust.progress import progress_enabled, set_progress

    before, shown = torch.get_num_threads(), progress_enabled()
    if threads:
        torch.set_num_threads(threads)
    set_progress(False)  # the runner's bar over cells, not one per training epoch
    try:
        for spec in specs:
            yield run_cell(spec, out, sweep, retries)
    finally:
        torch.set_num_threads(before)
        set_progress(shown)


def _processes(specs: list[CellSpec], out: str, sweep: str, retries: int,
               threads: int | None, workers: int) -> Iterator[CellResult | None]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(run_cell, spec, out, sweep, retries) for spec in specs]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BrokenProcessPool:
            raise ConfigError("a worker process died (killed, or out of memory); the cells "
                              "it finished are stored: run the sweep again to go on") from None
        finally:
            for future in futures:
                future.cancel()


def run_sweep(sweep: Sweep, out: str | os.PathLike[str], workers: int = 0,
              ray: str | None = None, retries: int | None = None, threads: int | None = None,
              progress: bool = True, ray_cpus: int | None = None,
              gpus_per_cell: float | None = None) -> SweepRun:
    """Run every unfinished cell of ``sweep`` into the store ``out`` and return the results.

    ``workers`` > 0: that many local processes (spawned; each sets ``threads`` torch
    threads, by default the cores shared out); ``ray``: Ray tasks on the cluster at that
    address (``"local"``: a local cluster of ``ray_cpus`` CPUs); else this process.
    ``retries``/``threads``: the sweep's unless given.
    """
    from skelrobust.progress import progress_bar

    if workers and ray is not None:
        raise ConfigError("--workers and --ray exclude each other: Ray places the cells itself")
    t0 = time.perf_counter()
    store = Store(out)
    store.open(sweep)
    retries = sweep.retries if retries is None else int(retries)
    threads = threads or sweep.threads
    if workers and not threads:
        threads = max(1, (os.cpu_count() or 1) // workers)
    stored = store.results(sweep.ids)
    todo = [s for s, i in zip(sweep.cells, sweep.ids) if not finished(stored.get(i), retries)]
    run = SweepRun(sweep, store.root, skipped=len(sweep.cells) - len(todo))
    log.info("%s: %d cells, %d finished before, %d to run%s", sweep.name, len(sweep.cells),
             run.skipped, len(todo), f" on {workers} workers" if workers else (
                 f" on Ray ({ray})" if ray is not None else ""))
    results: Iterable[CellResult | None]
    if ray is not None:
        from skelrobust.bench.ray_backend import run_on_ray

        results = run_on_ray(todo, str(store.root), sweep.name, retries, threads or 1,
                             address=ray, num_cpus=ray_cpus, gpus_per_cell=gpus_per_cell)
    elif workers:
        results = _processes(todo, str(store.root), sweep.name, retries, threads, workers)
    else:
        results = _serial(todo, str(store.root), sweep.name, retries, threads)
    bar = progress_bar(results, desc=f"{sweep.name} cells", total=len(todo), unit="cell",
                       enabled=progress, delay=0.0)
    failed = 0
    for result in bar:
        if result is None:
            run.busy += 1
            continue
        run.ran += 1
        failed += result.get("status") != "ok"
        bar.set_postfix(failed=failed)
        log.info("%s: %s (%.1f s)", describe(result["cell"]), result.get("status"),
                 result.get("seconds", 0.0))
    run.results = store.results(sweep.ids)
    run.seconds = time.perf_counter() - t0
    return run
