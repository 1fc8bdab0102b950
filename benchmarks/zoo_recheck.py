"""Re-measure stored L∞ attack cells on the current zoo checkpoints, without storing them.

The zoo checkpoints live outside the repository (``models/zoo``). When they are
retrained (another machine, another thread count: float reductions differ, so
weights and accuracies move by a point or so), new attack cells are measured on
other weights than the stored ones. This script replays the stored runs named
on the command line on the current checkpoints and prints stored vs now, so a
table that mixes old and new cells says how far apart the two sets of weights
are, and gives the perceptual tails (median, 95th percentile and max over clips of
each clip's peak joint displacement and bone change, % of joint-frames beyond 20
and 50 mm) that cells stored before those figures existed lack. It writes
``benchmarks/results/zoo_recheck.json`` and the ``attack_recheck`` section of
``docs/BENCHMARKS.md``; ``attack_zoo.json`` is not touched.

    python benchmarks/zoo_recheck.py --dataset nw-ucla --runs smart-ab pgd-ab ciasa-ab
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attack_zoo import (
    RUNS,
    attack_set,
    fit_discriminator,
    load_store,
    load_victims,
    run_cell,
)
from common import command, machine, update_section, write_json
from skelrobust.report.tables import format_table
from zoo_accuracy import MODELS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="nw-ucla")
    ap.add_argument("--runs", nargs="+", default=["pgd-ab", "ciasa-ab"], choices=list(RUNS))
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=os.environ.get("SKELROBUST_DATA", str(
        Path(__file__).resolve().parents[2] / "shared" / "data")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store = load_store()
    data_root = Path(args.data)
    victims = load_victims(args.dataset, args.models, data_root, False)
    x, y, lengths, index = attack_set(args.dataset, victims, data_root, args.samples, args.seed)
    stored_index = store["sets"].get(args.dataset, {}).get("index")
    print(f"{args.dataset}: clip set {'unchanged' if stored_index == index.tolist() else 'CHANGED'}"
          f" ({len(index)} clips)", flush=True)
    rows, disc = [], None
    for run in args.runs:
        for model, clf in victims.items():
            if RUNS[run][0] == "ciasa" and disc is None:
                disc = fit_discriminator(args.dataset, clf, data_root, args.seed)
            _, now = run_cell(run, model, clf, x, y, lengths, disc, args.seed)
            before = store["cells"].get(f"{args.dataset}/{model}/{run}", {})
            per = now.get("perceptual", {})
            row = {"run": run, "model": model, "stored %": before.get("success_rate"),
                   "now %": now["success_rate"],
                   "stored mm": before.get("perceptual", {}).get("joint_mm_mean"),
                   "now mm": per.get("joint_mm_mean"),
                   "peak mm p50": per.get("joint_mm_max_median"),
                   "peak mm p95": per.get("joint_mm_max_p95"),
                   "peak mm max": per.get("joint_mm_max"),
                   "> 20 mm %": per.get("joint_frames_over_20mm_pct"),
                   "> 50 mm %": per.get("joint_frames_over_50mm_pct"),
                   "peak bone % p50": per.get("bone_pct_max_median"),
                   "peak bone % max": per.get("bone_pct_max"),
                   "s": now["seconds"]}
            rows.append(row)
            print(row, flush=True)
    same = stored_index == index.tolist()
    write_json("zoo_recheck", {"dataset": args.dataset, "rows": rows, "same_clip_set": same,
                               "machine": machine(), "command": command(),
                               "threads": torch.get_num_threads()})
    update_section("attack_recheck", (
        f"### Stored cells re-measured on the current {args.dataset} checkpoints, with tails\n\n"
        f"The zoo checkpoints are not committed; these were retrained "
        f"(`benchmarks/zoo_accuracy.py`) and the stored runs replayed on them, on "
        f"{'the same' if same else 'another'} clip set ({len(index)} clips, seed "
        f"{args.seed}), with `{torch.get_num_threads()}` threads. `stored`: the figure in the "
        "tables above (older weights); `now`: on the current weights. Tails over the "
        "successful clips: `peak mm` is each clip's largest joint displacement (median, 95th "
        "percentile, max over clips), `> 20 mm %` / `> 50 mm %` the share of all their "
        "joint-frames moved further, `peak bone %` each clip's largest bone-length change."
        f"\n\n{format_table(rows, fmt='markdown')}\n\nCommand: `{command()}`"))


if __name__ == "__main__":
    main()
