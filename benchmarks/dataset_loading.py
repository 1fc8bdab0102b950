"""Time to parse every dataset from its source files and to load it again from the cache.

For each dataset folder under ``$SKELROBUST_DATA`` (default ``../shared/data``),
every split is loaded twice into a fresh, empty cache directory: the first pass
parses the source files (cold), the second reads the ``.npz`` cache (warm).
Writes ``benchmarks/results/dataset_loading.json`` and the ``dataset_loading``
section of ``docs/BENCHMARKS.md``.

Usage: python benchmarks/dataset_loading.py [--data ../shared/data] [--only hdm05 ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from common import ROOT, command, machine, update_section, write_json
from skelrobust.data.registry import load_dataset
from skelrobust.report.tables import format_table

# (dataset, folder under the data root or None, splits, loader options)
CASES: list[tuple[str, str | None, tuple[str, ...], dict[str, Any]]] = [
    ("synthetic", None, ("train", "val", "test"), {}),
    ("hdm05", "hdm05", ("train", "test"), {}),
    ("hdm05", "hdm05", ("train", "test"), {"window": 60, "stride": 20}),
    ("ntu60", "ntu", ("xsub-train", "xsub-test", "xview-train", "xview-test"), {}),
    ("ntu120", "ntu", ("xsub-train", "xsub-test", "xset-train", "xset-test"), {}),
    ("nw-ucla", "nw-ucla", ("train", "test"), {}),
    ("utd-mhad", "utd-mhad", ("train", "test"), {}),
    ("msr-action3d", "msr-action3d", ("train", "test"), {}),
    ("msr-action3d", "msr-action3d", ("train", "test"), {"standard_list": True}),
    ("gtu", "gtu", ("train", "test"), {}),
    ("sbu", "sbu", ("fold1-train", "fold1-test"), {}),
    ("bvh", "bvh", ("all",), {"pattern": "HDM_*.bvh"}),
    ("smart-hdm05", "smart-format", ("train",), {}),
]


def _load_all(name: str, root: Path | None, splits: tuple[str, ...],
              options: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    sets = {s: load_dataset(name, root=root, split=s, **options) for s in splits}
    return time.perf_counter() - t0, sets


def measure(name: str, root: Path | None, splits: tuple[str, ...],
            options: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as cache, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.environ["SKELROBUST_CACHE"] = cache
        cold, sets = _load_all(name, root, splits, options)
        warm, again = _load_all(name, root, splits, options)
    for s in splits:  # the cache must give back exactly what parsing gave
        assert sets[s].fingerprint() == again[s].fingerprint(), (name, s)
    first = next(iter(sets.values()))
    skipped = len(first.info.get("skipped", [])) + len(first.info.get("dropped", []))
    return {
        "dataset": name,
        "options": ", ".join(f"{k}={v}" for k, v in options.items()) or "-",
        "layout": first.skeleton.name,
        "classes": first.num_classes,
        "clips": " / ".join(f"{s} {len(d)}" for s, d in sets.items()),
        "frames": first.num_frames,
        "skipped": skipped,
        "parse_s": cold,
        "cache_s": warm,
        "speedup": cold / max(warm, 1e-9),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=os.environ.get("SKELROBUST_DATA",
                                                     str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--only", nargs="*", help="dataset names to measure (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = Path(args.data)
    rows = []
    for name, folder, splits, options in CASES:
        if args.only and name not in args.only:
            continue
        root = data / folder if folder else None
        if root is not None and not root.is_dir():
            print(f"skip {name}: no folder {root}")
            continue
        row = measure(name, root, splits, options)
        print(format_table([row], digits=3))
        rows.append(row)
    info = machine()
    write_json("dataset_loading", {"machine": info, "command": command(), "rows": rows})
    table = format_table(rows, ["dataset", "options", "layout", "classes", "clips", "skipped",
                                "parse_s", "cache_s", "speedup"], fmt="markdown",
                         headers={"parse_s": "parse s (cold)", "cache_s": "cache s (warm)",
                                  "skipped": "skipped/dropped"}, digits=3)
    update_section("dataset_loading", (
        "### Dataset loading: parse from source vs load from cache\n\n"
        "Every listed split is loaded into an empty cache directory (parse, cold) and then "
        "again (cache, warm); the two results are checked identical by fingerprint. "
        "`skipped/dropped` counts files that failed to parse (NTU: the two truncated files) "
        "and clips dropped for having fewer than 2 tracked frames. `synthetic` is generated, "
        "not cached (both passes generate). Kinetics-skeleton is "
        "not in the shared data (its reader is tested on generated files).\n\n"
        f"{table}\nMachine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, "
        f"{info['date']}.\n\nCommand: `{command()}`\n"))


if __name__ == "__main__":
    main()
