"""Train every ``small`` model on NW-UCLA, UTD-MHAD and HDM05 and record held-out accuracy.

Each (model, dataset) cell runs the recipe ``configs/<model>_<dataset>.yaml``
through the CLI (``skelrobust train --config ... --root ... --out
<models>/<model>_<dataset>``), in its own process, and keeps the trained
checkpoint in the models directory (default ``models/zoo``, not committed;
``$SKELROBUST_MODELS`` overrides it) for the attack and defense benchmarks.
Resumable: a cell whose ``result.json`` exists is not trained again
(``--force`` retrains). Writes ``benchmarks/results/zoo_accuracy.json`` and the
``zoo_accuracy`` section of ``docs/BENCHMARKS.md``.

Usage: python benchmarks/zoo_accuracy.py [--models stgcn agcn] [--datasets nw-ucla hdm05]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import RESULTS, ROOT, command, machine, update_section, write_json
from skelrobust.report.tables import format_table

MODELS = ["hrnn", "stgcn", "asgcn", "dgnn", "agcn", "ctrgcn", "sgn", "msg3d", "shiftgcn", "mlp"]
# dataset -> (folder under $SKELROBUST_DATA, protocol shown in the table, goal top-1 %)
DATASETS = {"nw-ucla": ("nw-ucla", "cross-view", 80.0),
            "utd-mhad": ("utd-mhad", "cross-subject", None),
            "hdm05": ("hdm05", "cross-subject", 85.0)}


def models_dir() -> Path:
    return Path(os.environ.get("SKELROBUST_MODELS", ROOT / "models" / "zoo"))


def train_cell(model: str, dataset: str, data_root: Path, force: bool,
               threads: int) -> dict | None:
    config = ROOT / "configs" / f"{model}_{dataset}.yaml"
    if not config.exists():
        print(f"skip {model} on {dataset}: no recipe {config.name}")
        return None
    out = models_dir() / f"{model}_{dataset}"
    result = out / "result.json"
    if result.exists() and not force:
        return json.loads(result.read_text())
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "skelrobust", "train", "--config", str(config), "--root",
         str(data_root / DATASETS[dataset][0]), "--out", str(out), "--overwrite", "--json",
         "--quiet", "--threads", str(threads)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"FAILED {model} on {dataset}: {proc.stderr.strip()[-500:]}")
        return {"model": model, "dataset": dataset, "error": proc.stderr.strip()[-500:]}
    trained = json.loads(proc.stdout)
    row = {"model": model, "dataset": dataset, "protocol": DATASETS[dataset][1],
           "top1": trained["test"]["top1"], "top5": trained["test"]["top5"],
           "epochs": len(trained["history"]), "train_s": wall, "threads": threads,
           "checkpoint": str(out)}
    result.write_text(json.dumps(row, indent=2))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--data", default=os.environ.get("SKELROBUST_DATA",
                                                     str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--threads", type=int, default=2, help="torch threads per cell")
    ap.add_argument("--jobs", type=int, default=1,
                    help="cells trained at once (e.g. --jobs 2 --threads 1 on 2 cores)")
    ap.add_argument("--force", action="store_true", help="retrain cells that have a result")
    args = ap.parse_args()
    cells = [(m, d) for d in args.datasets for m in args.models]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # each cell is a subprocess
        futures = [pool.submit(train_cell, m, d, Path(args.data), args.force, args.threads)
                   for m, d in cells]
        rows = []
        for future in futures:
            row = future.result()
            if row is not None:
                print(json.dumps(row), flush=True)
                rows.append(row)
    # Keep the cells of earlier runs (e.g. other datasets) that this run did not redo.
    previous = RESULTS / "zoo_accuracy.json"
    if previous.exists():
        redone = {(r["model"], r["dataset"]) for r in rows}
        rows = [r for r in json.loads(previous.read_text()).get("rows", [])
                if (r["model"], r["dataset"]) not in redone] + rows
    info = machine()
    write_json("zoo_accuracy", {"machine": info, "command": command(), "rows": rows})
    done = [r for r in rows if "error" not in r]
    table_rows = []
    for r in done:
        goal = DATASETS[r["dataset"]][2]
        table_rows.append({**r, "goal": "-" if goal is None else (
            "met" if r["top1"] >= goal else f"below {goal:.0f} %")})
    table = format_table(table_rows, ["model", "dataset", "protocol", "top1", "top5", "epochs",
                                      "train_s", "threads", "goal"], fmt="markdown",
                         headers={"top1": "top-1 %", "top5": "top-5 %",
                                  "train_s": "train wall s"})
    failed = [f"{r['model']} on {r['dataset']}" for r in rows if "error" in r]
    update_section("zoo_accuracy", (
        "### Model zoo: held-out accuracy of the `small` models on real data\n\n"
        "Each cell trains `configs/<model>_<dataset>.yaml` from scratch in its own process "
        "(`threads`: torch threads of that process; with `--jobs 2 --threads 1` two cells "
        "share the 2 cores, so their wall times are not comparable with 2-thread cells; "
        "cells of earlier runs are kept) and evaluates the final "
        "weights (`keep: last`: no epoch is chosen on the test split) on the held-out "
        "split of the protocol. Goals: "
        ">= 80 % on NW-UCLA, >= 85 % on HDM05.\n\n"
        f"{table}\n" + (f"Failed cells: {', '.join(failed)}.\n\n" if failed else "") +
        f"Machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, "
        f"{info['date']}.\n\nCommand: `{command()}`\n"))


if __name__ == "__main__":
    main()
