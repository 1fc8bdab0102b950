"""Cells as Ray tasks: the same :func:`~skelrobust.bench.runner.run_cell` on a Ray cluster.

``address`` ``"local"`` starts a local cluster (``num_cpus`` CPUs, no dashboard) and shuts it
down afterwards; any other address (``"auto"``, ``"ray://host:10001"``) joins that cluster,
whose workers must see the output folder at the same path (a shared file system) and, for
real datasets, ``$SKELROBUST_DATA``. Each task asks for ``threads`` CPUs and, where the
cluster has GPUs, ``gpus_per_cell`` of one (default a quarter), and is retried by Ray if its
worker dies; the store's locks make a retried or duplicated task harmless. Ray runs its
workers at niceness 15: on a machine busy with other work at normal priority they wait
for it (measured here: the tiny sweep took 3 minutes beside two busy processes, 14 s
once those were reniced to 19). Ray is the
optional extra ``distributed`` (``pip install "skelrobust[distributed]"``), imported only here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from skelrobust.bench.schema import CellResult, CellSpec
from skelrobust.errors import ConfigError

__all__ = ["DEFAULT_GPUS_PER_CELL", "run_on_ray"]

DEFAULT_GPUS_PER_CELL = 0.25


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install \"skelrobust[distributed]\" (or run "
                          "the sweep with --workers N on this machine)") from None
    return ray


def _task(spec: CellSpec, out: str, sweep: str, retries: int,
          threads: int) -> CellResult | None:
    """One cell inside a Ray worker (its torch threads set first)."""
    from skelrobust.bench.runner import _init_worker, run_cell

    _init_worker(threads)
    return run_cell(spec, out, sweep, retries)


def run_on_ray(specs: list[CellSpec], out: str, sweep: str, retries: int, threads: int,
               address: str = "local", num_cpus: int | None = None,
               gpus_per_cell: float | None = None) -> Iterator[CellResult | None]:
    """Run ``specs`` as Ray tasks; yields each result as it finishes (module doc)."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        local = address in (None, "", "local")
        ray.init(address=None if local else address, num_cpus=num_cpus if local else None,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        resources = ray.cluster_resources()
        if threads > resources.get("CPU", 0.0):
            raise ConfigError(f"each cell asks for {threads} CPUs (its threads); the Ray "
                              f"cluster has {resources.get('CPU', 0.0):g}")
        gpus = float(resources.get("GPU", 0.0))
        share = (DEFAULT_GPUS_PER_CELL if gpus_per_cell is None else gpus_per_cell) if gpus else 0
        task = ray.remote(_task).options(num_cpus=threads, num_gpus=share,
                                         max_retries=max(1, retries))
        pending = [task.remote(spec, out, sweep, retries, threads) for spec in specs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started:
            ray.shutdown()
