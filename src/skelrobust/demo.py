"""The end-to-end demo: train, attack, defend, attack again, report.

One small sweep (:mod:`skelrobust.bench`) on ``synthetic`` by default: a small ST-GCN is
trained, attacked with SMART, CIASA (white-box) and BASAR (labels only), defended with BEAT
(a post-trained Bayesian head on the frozen classifier, Wang et al. AAAI 2023), and attacked
again; the HTML report (:mod:`skelrobust.report`) shows the tables and the clips. The sweep
is written beside the results (``DIR/demo-sweep.yaml``), so ``skelrobust bench`` reruns or
extends it, and a rerun of the demo skips what is done.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from skelrobust.training import TrainConfig

__all__ = ["DEMO_TRAIN", "DemoResult", "demo_rows", "demo_sweep", "run_demo"]

log = logging.getLogger(__name__)

# Tuned so the small ST-GCN passes 90 % held-out accuracy on 2 CPU cores in about two
# minutes (2000 clips x 6 epochs at ~20 s an epoch; validation reaches 98-99 % at epoch 2).
DEMO_TRAIN = TrainConfig(epochs=6, batch_size=32, optimizer="sgd", lr=0.05, momentum=0.9,
                         nesterov=True, weight_decay=5e-4, schedule="cosine", warmup_epochs=1,
                         grad_clip=5.0, seed=0)
DEMO_ATTACKS = ("smart", "ciasa", "basar")
# BEAT cut to fit the demo in 10 minutes on 2 CPU cores: 2 posterior samples after 1 burn-in
# epoch (3 epochs; its defaults: 5 samples, 20 epochs) and 5 SGLD steps for x and x~ (10).
# Measured with its defaults: ~300 s per epoch on the 2,000 synthetic training clips.
DEMO_BEAT = {"samples": 2, "training": {"burn_in": 1, "sample_every": 1, "sgld_steps": 5,
                                         "adversary_steps": 5}}
# Synthetic clips per split (train, val and test alike; the dataset's defaults are
# 2000/400/600): the small ST-GCN still reaches ~100 % on it, and BEAT's epochs cost 0.3x.
DEMO_CLIPS = 600


def demo_sweep(dataset: str = "synthetic", epochs: int | None = None, clips: int = 12,
               queries: int = 500, seed: int = 0, train_clips: int | None = None
               ) -> dict[str, Any]:
    """The demo's sweep (a mapping in the format of ``skelrobust bench`` files);
    ``train_clips``: clips per split of ``synthetic`` (default :data:`DEMO_CLIPS`)."""
    if dataset == "synthetic" and train_clips is None:
        train_clips = DEMO_CLIPS
    train = {k: v for k, v in asdict(DEMO_TRAIN).items()
             if k in ("epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov",
                      "weight_decay", "schedule", "warmup_epochs", "grad_clip")}
    if epochs is not None:
        train["epochs"] = int(epochs)
    return {
        "name": f"demo-{dataset}",
        "description": "skelrobust demo: a small ST-GCN attacked with SMART, CIASA and BASAR, "
                       "defended with BEAT, attacked again",
        "datasets": [dataset], "models": ["stgcn"], "defenses": ["none", "beat"],
        "attacks": ["clean", *DEMO_ATTACKS], "goals": ["ab"], "seeds": [seed],
        "clips": clips, "size": "small", "train": train,
        "attack_options": {"ciasa": {"discriminator": True},
                           "basar": {"max_queries": queries}},
        "defense_options": {"beat": DEMO_BEAT},
        **({"data": {dataset: {"options": {"num_clips": int(train_clips)}}}}
           if train_clips is not None else {})}


@dataclass
class DemoResult:
    """What :func:`run_demo` did: the sweep's results, the report, the table and timings."""

    out: Path
    rows: list[dict[str, Any]]
    html: Path | None
    seconds: float
    failed: list[dict[str, Any]] = field(default_factory=list)
    next: list[str] = field(default_factory=list)


def demo_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per defense: clean top-1 on the test split, then success % and mean joint
    displacement (mm, successful clips) per attack."""
    rows: dict[str, dict[str, Any]] = {}
    for res in results.values():
        cell = res["cell"]
        row = rows.setdefault(cell["defense"], {"defense": cell["defense"]})
        if res.get("status") != "ok":
            row[f"{cell['attack']} %"] = "failed"
            continue
        m = res["metrics"]
        if cell["attack"] == "clean":
            row["clean top-1 %"] = res.get("checkpoint", {}).get("test_top1")
            row["clips correct"] = f"{m['clean_correct']}/{m['clips']}"
            continue
        row[f"{cell['attack']} %"] = m.get("success_pct")
        row[f"{cell['attack']} mm"] = (m.get("perceptual") or {}).get("joint_mm_mean")
    order = ["clean top-1 %", "clips correct",
             *(f"{a} {u}" for a in DEMO_ATTACKS for u in ("%", "mm"))]
    return [{"defense": r["defense"], **{k: r.get(k) for k in order}}
            for _, r in sorted(rows.items(), key=lambda kv: kv[0] != "none")]


def _data_root(dataset: str, root: str | os.PathLike[str] | None) -> None:
    """Point ``$SKELROBUST_DATA`` (where the runner finds datasets) at ``root``: the folder of
    ``dataset`` itself, linked from a temporary folder under its default name when named
    otherwise (the link lives as long as the demo needs it; worker processes inherit it)."""
    if root is None:
        return
    import tempfile

    from skelrobust.data.registry import dataset_spec

    folder = dataset_spec(dataset).default_folder or dataset
    root = Path(root).resolve()
    if not root.is_dir():
        from skelrobust.errors import DatasetNotFoundError

        raise DatasetNotFoundError(f"demo: --root {root} is not a folder")
    if root.name == folder:
        os.environ["SKELROBUST_DATA"] = str(root.parent)
        return
    parent = Path(tempfile.mkdtemp(prefix="skelrobust-data-"))
    (parent / folder).symlink_to(root, target_is_directory=True)
    os.environ["SKELROBUST_DATA"] = str(parent)


def run_demo(out: str | os.PathLike[str] = "runs/demo", dataset: str = "synthetic",
             root: str | os.PathLike[str] | None = None, epochs: int | None = None,
             clips: int = 12, queries: int = 500, train_clips: int | None = None,
             workers: int = 0, progress: bool = True, html: bool = True) -> DemoResult:
    """Run the demo sweep into ``out`` and build its report (module doc)."""
    from skelrobust.bench.runner import run_sweep
    from skelrobust.bench.sweep import parse_sweep

    t0 = time.perf_counter()
    out = Path(out)
    _data_root(dataset, root)
    text = yaml.safe_dump(demo_sweep(dataset, epochs, clips, queries, train_clips=train_clips),
                          sort_keys=False)
    sweep = parse_sweep(text, path="<demo sweep>")
    run = run_sweep(sweep, out, workers=workers, progress=progress)
    sweep_file = out / "demo-sweep.yaml"  # beside the results: `skelrobust bench` reruns it
    sweep_file.write_text(text)
    page = None
    if html:
        from skelrobust.report.build import build_report

        page = build_report(out, html=True, plots=True).html
    victim = next((r["checkpoint"]["path"] for r in run.results.values()
                   if r.get("status") == "ok" and r["cell"]["defense"] == "none"), None)
    steps = [f"skelrobust report {out}    # the tables, plots and page again",
             f"skelrobust bench {sweep_file} --out {out}    # rerun or extend the sweep"]
    if victim:
        steps.append(f"skelrobust attack {out / victim} --attack basar --queries 5000 "
                     f"--out {out}-basar    # one attack, more queries")
    if dataset == "synthetic":
        steps.append("skelrobust demo --data nw-ucla --root ../shared/data/nw-ucla "
                     "--out runs/demo-nw-ucla    # the same on real data")
    return DemoResult(out=out, rows=demo_rows(run.results), html=page,
                      seconds=time.perf_counter() - t0, failed=run.failed, next=steps)
