"""White-box attacks on the model zoo's ``small`` checkpoints (NW-UCLA, HDM05).

    python benchmarks/attack_zoo.py                         # every run, model and dataset
    python benchmarks/attack_zoo.py --datasets hdm05 --models stgcn agcn --runs smart-ab
    python benchmarks/attack_zoo.py --tables-only           # rebuild the docs from the JSON

Per dataset, the attacked clips are ``--samples`` test clips (seeded) that
*every* model of the dataset classifies correctly, so each table compares the
models on the same motions and the adversarial motions of one model can be
replayed on the others (the transfer matrix, no extra crafting). Each run
(attack × goal, ``RUNS``) on each model is one cell; cells are resumable: their
summary goes into ``benchmarks/results/attack_zoo.json`` as soon as it is done
and the adversarial motions into ``<models>/attacks/`` (not committed). The
checkpoints come from ``benchmarks/zoo_accuracy.py`` (``<models>/<model>_<dataset>``;
``--train-missing`` trains absent ones with it).

Writes the sections ``attack_smart``, ``attack_ciasa``, ``attack_pgd``,
``attack_transfer`` of ``docs/BENCHMARKS.md``; ``attack_cost.py`` the cost.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attack_tables import write_attack_sections
from common import RESULTS, ROOT, command, machine, update_section, write_json
from skelrobust.attacks import (
    CIASA,
    AttackResult,
    choose_clips,
    correct_mask,
    replay_success,
    train_discriminator,
)
from skelrobust.attacks.registry import create_attack
from skelrobust.attacks.running import save_clips
from skelrobust.classifier import Classifier
from skelrobust.cli import main as cli_main
from skelrobust.config import load_prepared
from zoo_accuracy import MODELS, models_dir, train_cell

DATASETS = ("nw-ucla", "hdm05")
# run name -> (attack, arguments). SMART: the paper's setting (1000 steps at most,
# per-sample early stop). CIASA: its defaults (20 mm, 200 steps, 30 deg, GAN
# regulariser with a discriminator trained on the training clips). PGD: 10 mm,
# 50 steps, random start, no early stop (the standard fixed-budget attack).
# Budgets: "ciasa-*" and "pgd-*" were measured under L-inf (per coordinate, a joint
# may move eps*sqrt(3)) and keep it; the "-joint" runs use the per-joint ball that
# is now the default (no joint moves more than the budget).
# SMART presets (attacks/smart.py): the stored "smart-*" cells ran with the defaults that are
# now preset "legacy" (derivatives per frame), so those runs name it; "smart-ab-<preset>" are
# AB per preset, "-bones" with keep_bone_lengths (exact bone lengths after every step).
RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "smart-ab": ("smart", {"goal": "ab", "preset": "legacy"}),
    "smart-abn3": ("smart", {"goal": "abn", "n": 3, "preset": "legacy"}),
    "smart-abn5": ("smart", {"goal": "abn", "n": 5, "preset": "legacy"}),
    "smart-sa": ("smart", {"goal": "sa", "target_mode": "random", "preset": "legacy"}),
    "smart-ab-legacy": ("smart", {"goal": "ab", "preset": "legacy"}),
    "smart-ab-paper": ("smart", {"goal": "ab", "preset": "paper"}),
    "smart-ab-cvpr2021-code": ("smart", {"goal": "ab", "preset": "cvpr2021-code"}),
    "smart-ab-benchmark": ("smart", {"goal": "ab", "preset": "benchmark"}),
    "smart-ab-paper-bones": ("smart", {"goal": "ab", "preset": "paper",
                                       "keep_bone_lengths": True}),
    "smart-ab-legacy-bones": ("smart", {"goal": "ab", "preset": "legacy",
                                        "keep_bone_lengths": True}),
    "ciasa-ab": ("ciasa", {"goal": "ab", "norm": "linf"}),
    "ciasa-sa": ("ciasa", {"goal": "sa", "target_mode": "random", "norm": "linf"}),
    "pgd-ab": ("pgd", {"goal": "ab", "budget_mm": 10.0, "steps": 50, "norm": "linf"}),
    "pgd-sa": ("pgd", {"goal": "sa", "target_mode": "random", "budget_mm": 10.0,
                       "steps": 50, "norm": "linf"}),
    "ciasa-ab-joint": ("ciasa", {"goal": "ab", "norm": "joint", "budget_mm": 20.0}),
    "ciasa-sa-joint": ("ciasa", {"goal": "sa", "target_mode": "random", "norm": "joint",
                                 "budget_mm": 20.0}),
    "pgd-ab-joint": ("pgd", {"goal": "ab", "budget_mm": 10.0, "steps": 50, "norm": "joint"}),
    "pgd-sa-joint": ("pgd", {"goal": "sa", "target_mode": "random", "budget_mm": 10.0,
                             "steps": 50, "norm": "joint"}),
}
STORE = RESULTS / "attack_zoo.json"


def load_store() -> dict[str, Any]:
    return json.loads(STORE.read_text()) if STORE.exists() else {"cells": {}, "sets": {}}


def save_store(store: dict[str, Any]) -> dict[str, Any]:
    """Merge ``store`` into the file (under a lock: runs on other datasets may be writing too)."""
    STORE.parent.mkdir(parents=True, exist_ok=True)
    with open(STORE.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = load_store()
        for key in ("cells", "sets", "transfer"):
            merged.setdefault(key, {}).update(store.get(key, {}))
        merged["machine"] = store.get("machine", merged.get("machine"))
        write_json("attack_zoo", merged)
    return merged


def adv_path(dataset: str, model: str, run: str) -> Path:
    return models_dir() / "attacks" / f"{dataset}_{model}_{run}.npz"


def load_victims(dataset: str, models: list[str], data_root: Path,
                 train_missing: bool) -> dict[str, Classifier]:
    victims = {}
    for model in models:
        path = models_dir() / f"{model}_{dataset}" / "classifier.safetensors"
        if not path.exists() and train_missing:
            train_cell(model, dataset, data_root, force=False, threads=torch.get_num_threads())
        if not path.exists():
            print(f"skip {model} on {dataset}: no checkpoint {path} (run "
                  "benchmarks/zoo_accuracy.py or pass --train-missing)")
            continue
        victims[model] = Classifier.load(path).eval()
    return victims


def attack_set(dataset: str, victims: dict[str, Classifier], data_root: Path, samples: int,
               seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, y, lengths, index)`` of ``samples`` seeded test clips every victim gets right."""
    prep = [json.dumps(v.preprocess, sort_keys=True) for v in victims.values()]
    if len(set(prep)) != 1:
        raise SystemExit(f"{dataset}: the checkpoints preprocess differently; attack them "
                         "in separate runs")
    first = next(iter(victims.values()))
    data = load_prepared(dataset, "test", str(data_root / dataset), first.preprocess)
    x, y = data.tensors()
    ok = correct_mask(victims.values(), x, y)
    index = choose_clips(ok, samples, seed)
    lengths = torch.from_numpy(data.lengths[index.numpy()])
    return x[index], y[index], lengths, index


def make_attack(run: str, clf: Classifier, discriminator: Any, seed: int) -> Any:
    name, kwargs = RUNS[run]
    if name == "ciasa":
        return CIASA(clf, discriminator=discriminator, seed=seed, **kwargs)
    return create_attack(name, clf, seed=seed, **kwargs)


def run_cell(run: str, model: str, clf: Classifier, x: torch.Tensor, y: torch.Tensor,
             lengths: torch.Tensor, discriminator: Any,
             seed: int) -> tuple[AttackResult, dict[str, Any]]:
    res = make_attack(run, clf, discriminator, seed).attack(x, y, lengths=lengths)
    summary = res.summary()
    summary.update(run=run, model=model, attack=RUNS[run][0], arguments=RUNS[run][1],
                   threads=torch.get_num_threads())
    return res, summary


def transfer_rows(dataset: str, victims: dict[str, Classifier], x: torch.Tensor,
                  y: torch.Tensor, run: str) -> list[dict[str, Any]]:
    """Replay each surrogate's adversarial motions on every victim (AB success %)."""
    clean_ok = {name: correct_mask(v, x, y) for name, v in victims.items()}  # all, by choice
    rows = []
    for s_name in victims:
        path = adv_path(dataset, s_name, run)
        if not path.exists():
            continue
        with np.load(path) as z:
            x_adv = torch.from_numpy(z["x_adv"])
            same = np.array_equal(z["x_clean"], x.numpy())
        if not same:
            continue  # crafted on another clip set (other --samples or --seed)
        row: dict[str, Any] = {"surrogate": s_name}
        for v_name, victim in victims.items():
            row[v_name] = replay_success(victim, x_adv, y, clean_ok[v_name], "ab")
        rows.append(row)
    return rows


def fit_discriminator(dataset: str, clf: Classifier, data_root: Path, seed: int) -> Any:
    train = load_prepared(dataset, "train", str(data_root / dataset), clf.preprocess)
    x, _ = train.tensors()
    t0 = time.perf_counter()
    disc = train_discriminator(x, steps=300, seed=seed, skeleton=clf.skeleton)
    print(f"{dataset}: discriminator trained on {len(x)} clips in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    return disc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=os.environ.get("SKELROBUST_DATA", str(
        Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--force", action="store_true", help="redo cells that have a result")
    ap.add_argument("--train-missing", action="store_true")
    ap.add_argument("--tables-only", action="store_true")
    ap.add_argument("--render", metavar="DATASET/MODEL",
                    help="animate the first successful smart-ab clip of that cell into docs/img")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store = load_store()
    data_root = Path(args.data)
    for dataset in [] if args.tables_only else args.datasets:
        victims = load_victims(dataset, args.models, data_root, args.train_missing)
        if not victims:
            continue
        x, y, lengths, index = attack_set(dataset, victims, data_root, args.samples,
                                          args.seed)
        store["sets"][dataset] = {"models": list(victims), "index": index.tolist(),
                                  "samples": len(index), "seed": args.seed}
        print(f"{dataset}: {len(index)} clips correct for all of {list(victims)}", flush=True)
        disc = None
        for run in args.runs:
            for model, clf in victims.items():
                key = f"{dataset}/{model}/{run}"
                cell = store["cells"].get(key)
                if (cell and not args.force and cell.get("index") == index.tolist()
                        and adv_path(dataset, model, run).exists()):
                    continue
                if RUNS[run][0] == "ciasa" and disc is None:
                    disc = fit_discriminator(dataset, clf, data_root, args.seed)
                res, summary = run_cell(run, model, clf, x, y, lengths, disc, args.seed)
                adv_path(dataset, model, run).parent.mkdir(parents=True, exist_ok=True)
                save_clips(adv_path(dataset, model, run), res, x, lengths, index,
                           clf.class_names, clf.skeleton.name)
                store["cells"][key] = {**summary, "dataset": dataset, "index": index.tolist(),
                                       "command": command()}
                store["machine"] = machine()
                save_store(store)
                per = summary.get("perceptual", {})
                print(f"{key}: success {summary['success_rate']:.1f} %, "
                      f"{summary['iterations_mean']:.0f} it, "
                      f"joint {per.get('joint_mm_mean', float('nan')):.1f} mm, "
                      f"bone {per.get('bone_pct_mean', float('nan')):.2f} %, "
                      f"{summary['seconds']:.1f} s", flush=True)
        for run in ("smart-ab", "pgd-ab", "ciasa-ab"):
            rows = transfer_rows(dataset, victims, x, y, run)
            if rows:
                store.setdefault("transfer", {})[f"{dataset}/{run}"] = rows
        save_store(store)
    write_attack_sections(save_store(store))
    if args.render:
        render_sample(store, *args.render.split("/"))


def render_sample(store: dict[str, Any], dataset: str, model: str, run: str = "smart-ab") -> None:
    """GIF of the first successful clip of a cell, through ``skelrobust render``."""
    src = adv_path(dataset, model, run)
    with np.load(src) as z:
        hits = np.flatnonzero(z["success"])
        if not len(hits):
            raise SystemExit(f"render: no successful clip in {src}")
        index = int(hits[0])
        truth, pred = (str(z["class_names"][int(z[k][index])]) for k in ("y", "adv_pred"))
        joint_mm = float(z["report__joint_mm_mean"][index])
        bone_pct = float(z["report__bone_pct_mean"][index])
    out = ROOT / "docs" / "img" / f"{run}_{dataset}_{model}.gif"
    out.parent.mkdir(parents=True, exist_ok=True)
    cli_main(["render", str(src), "--index", str(index), "--out", str(out), "--fps", "15",
              "--overwrite"])
    rel = out.relative_to(ROOT / "docs")
    update_section("attack_render", (
        f"### A rendered sample: {run} on {model} ({dataset})\n\n"
        f"![clean vs adversarial]({rel})\n\n"
        f"Left the clean clip, right SMART's adversarial motion (overlaid on the clean one in "
        f"grey): true class `{truth}`, predicted `{pred}` after the attack; mean joint "
        f"displacement {joint_mm:.1f} mm, mean bone-length change {bone_pct:.2f} %. The first "
        f"successful clip of the cell (not hand-picked), shown at 15 frames/s.\n\n"
        f"Command: `{command()}` (the GIF comes from `skelrobust render {src.name} --index "
        f"{index} --out {rel} --fps 15` on the cell's `.npz`)\n"))


if __name__ == "__main__":
    main()
