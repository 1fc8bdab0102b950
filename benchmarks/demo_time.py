"""Wall time and held-out accuracy of ``skelrobust demo`` (the README's main job) on this CPU.

Runs the demo command as a user would, in a fresh process, and records its
``--json`` figures and the wall time. The set-up time of ``make demo`` on a
fresh machine (creating the virtual environment) is measured separately by
timing ``make setup``.

Usage: python benchmarks/demo_time.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import command, machine, update_section, write_json
from skelrobust.report.tables import format_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "skelrobust", "demo", "--out", str(Path(out) / "demo"),
             "--json", "--quiet", "--threads", str(args.threads)],
            capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
    res = json.loads(proc.stdout)
    row = {"model": f"{res['model']['name']}-{res['model']['size']}",
           "params": res["model"]["parameters"], "train clips": res["dataset"]["train"],
           "test clips": res["dataset"]["test"], "epochs": res["training"]["epochs"],
           "train s": res["training"]["seconds"], "wall s": wall,
           "val top-1 %": res["training"]["val_top1"], "test top-1 %": res["test"]["top1"],
           "test top-5 %": res["test"]["top5"]}
    info = machine()
    write_json("demo_time", {"machine": info, "command": command(), "wall_seconds": wall,
                             "demo": res})
    table = format_table([row], fmt="markdown")
    update_section("demo_time", (
        "### `skelrobust demo`: small ST-GCN on `synthetic`, end to end\n\n"
        "Data generation, training, validation, held-out test evaluation and checkpoint "
        "writing, in one fresh process (`wall s`).\n\n"
        f"{table}\nMachine: {info['cpu']}, {info['cores']} cores, torch {info['torch']} with "
        f"{args.threads} threads, {info['date']}.\n\nCommand: `{command()}`\n"))
    print(table)


if __name__ == "__main__":
    main()
