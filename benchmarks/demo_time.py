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
    rows = [{**r, "wall s": wall if i == 0 else None} for i, r in enumerate(res["rows"])]
    info = machine()
    write_json("demo_time", {"machine": info, "command": command(), "wall_seconds": wall,
                             "demo": res})
    table = format_table(rows, fmt="markdown")
    update_section("demo_time", (
        "### `skelrobust demo`: train, attack, defend, attack again, report, on `synthetic`\n\n"
        "A small ST-GCN trained 6 epochs on 600 synthetic training clips; SMART, CIASA and "
        "BASAR (500 queries) on 12 test clips, undefended and with BEAT (the demo's cut: 2 "
        "posterior samples, 3 epochs, 5 SGLD steps); the HTML report. One fresh process from "
        "an empty output folder (`wall s`: everything, report included). `%`: success over "
        "the clips the classifier gets right; `mm`: mean joint displacement of the successful "
        "clips; clean top-1 on the 600 test clips.\n\n"
        f"{table}\nMachine: {info['cpu']}, {info['cores']} cores, torch {info['torch']} with "
        f"{args.threads} threads, {info['date']}.\n\nCommand: `{command()}`\n"))
    print(table)


if __name__ == "__main__":
    main()
