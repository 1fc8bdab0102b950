"""Untargeted BASAR on a third-party victim: the official Shift-GCN NTU-60 checkpoint.

The published joint-stream cross-subject checkpoint (``../shared/models``), loaded with
``Classifier.from_shiftgcn_checkpoint``, answers labels only through a ``QueryOracle``;
the clips are the intact raw NTU files of ``../shared/data/ntu`` through the pipeline the
checkpoint was trained with (``load_dataset("ntu60", split="all", pad="loop")``: 2 bodies,
300 frames). Every correctly classified clip is attacked; the attacker's pool is the
other clips (the attack only takes pool clips the victim labels as another class).
Joint-angle limits are estimated from all the clips. One run of ``--queries`` per clip
gives the figures at each budget of ``--budgets``.

Usage: python benchmarks/blackbox_ntu.py [--queries 2000] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from blackbox_zoo import motion_stats, violation_pct
from common import ROOT, command, machine, update_section, write_json
from skelrobust.attacks import BASAR, QueryOracle
from skelrobust.attacks.joint_limits import JointLimits
from skelrobust.classifier import Classifier
from skelrobust.data.registry import load_dataset
from skelrobust.metrics import goal_reached
from skelrobust.report.tables import format_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_default = os.environ.get("SKELROBUST_DATA", str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--data", default=data_default)
    ap.add_argument("--models", default=None, help="checkpoint folder (default: <data>/../models)")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--budgets", type=int, nargs="+", default=[250, 500, 1000, 2000])
    ap.add_argument("--clips", type=int, default=None, help="attack only the first N correct")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = Path(args.models) if args.models else Path(args.data).parent / "models"
    clf = Classifier.from_shiftgcn_checkpoint(models / "shiftgcn_ntu60_xsub_joint.pt").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the truncated sample files, reported elsewhere
        data = load_dataset("ntu60", root=Path(args.data) / "ntu", split="all", pad="loop")
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y).long()
    lengths = torch.from_numpy(data.lengths)
    with torch.no_grad():
        correct = clf(x).argmax(1) == y
    index = correct.nonzero()[:, 0][:args.clips]
    victim = QueryOracle.from_classifier(clf, access="label")
    budgets = sorted(q for q in args.budgets if q <= args.queries)
    atk = BASAR(victim, max_queries=args.queries, pool=(x, y, lengths), seed=args.seed,
                snapshot_queries=budgets)
    xa, ya, la = x[index], y[index], lengths[index]
    res = atk.attack(xa, ya, lengths=la)
    clips = {"lengths": la, "limits": JointLimits.from_clips(x, clf.skeleton, lengths)}
    rows = []
    for q in budgets:
        x_q, _ = atk.snapshots[q]
        with torch.no_grad():
            ok = goal_reached(clf(x_q), ya, "ab").numpy()
        stats = motion_stats(xa, x_q, ok, clips, clf.skeleton)
        rows.append({"queries": q, "success %": 100.0 * ok.mean(), **stats})
    clean_viol = float(violation_pct(xa, la, clf.skeleton, clips["limits"]).mean())
    out = {"checkpoint": "shiftgcn_ntu60_xsub_joint.pt", "clips": len(index),
           "files": [Path(str(data.meta["source"][i])).stem for i in index.tolist()],
           "rows": rows, "seconds": res.seconds, "seconds_per_clip": res.seconds / len(index),
           "victim_seconds": victim.victim_seconds,
           "projection_seconds": atk.projection_seconds, "queries_mean": float(
               res.queries.float().mean()), "clean_angle_violation_pct": clean_viol,
           "command": command(), "machine": machine()}
    write_json("blackbox_ntu", out)
    m = out["machine"]
    update_section("attack_blackbox_ntu", (
        "### Untargeted BASAR on a third-party victim: official Shift-GCN (NTU-60 xsub)\n\n"
        f"The published checkpoint as a label-only victim on the {len(index)} intact NTU files "
        "it classifies correctly (looped to 300 frames, 2 bodies); the pool is the other "
        "files. Success and the perceptual report over the successful clips at each query "
        "budget (one run); joint-angle limits from the files themselves, clean violations "
        f"{clean_viol:.2f} %. Wall {out['seconds_per_clip']:.0f} s per clip, of which "
        f"{100 * out['victim_seconds'] / out['seconds']:.0f} % inside the victim and "
        f"{100 * out['projection_seconds'] / out['seconds']:.0f} % on the manifold.\n\n"
        + format_table(rows, fmt="markdown")
        + f"\nMachine: {m['cpu']}, torch {m['torch']}, {m['torch_threads']} threads.\n\n"
        f"Command: `{out['command']}`\n"))
    print(format_table(rows))


if __name__ == "__main__":
    main()
