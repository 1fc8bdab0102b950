"""Defenses on the zoo's ``small`` checkpoints: the table of issue 13, in the shape of BEAT's.

    python benchmarks/defense_zoo.py                                   # everything
    python benchmarks/defense_zoo.py --datasets nw-ucla --models stgcn --defenses none beat
    python benchmarks/defense_zoo.py --smoke --models stgcn --datasets nw-ucla --store pilot
    python benchmarks/defense_zoo.py --tables-only                      # rebuild the docs

Per (dataset, model) of ST-GCN, CTR-GCN, SGN, MS-G3D on NW-UCLA and HDM05, for the
undefended classifier (``none``) and each defense, resumable cells of four kinds:
**train** (``train_defense`` into ``<models>/defended/<defense>_<model>_<dataset>`` with
``resume=True``; training time = the sum of the epochs' wall times, which survives a resume;
clean top-1 on the full test split, the base's beside it; BEAT with its own defaults, the
adversarial-training baselines fine-tuning the same pretrained classifier, ``FINE_TUNE``),
**attack** (SMART-AB, CIASA-AB, BASAR-AB, EOT, transfer on the 16 clips of the white-box
tables, ``blackbox_zoo.clip_set``; what each row means: the section's text in ``tables``),
**sanity** (PGD-AB L∞ vs budget and vs steps, against gradient masking, on the first
``--sanity-clips``) and **certify** (smoothing: CERTIFY, certified accuracy at ``RADII_MM``).
Success is % of the clean-correct clips, re-checked on the defended classifier (smoothing:
its smoothed answer, the majority of ``--votes`` seeded draws); perceptual figures
(``blackbox_zoo.motion_stats``) average the successful clips.

Results: ``benchmarks/results/<store>.json`` (resumable cells); the default store also
rewrites section ``defense_zoo`` of docs/BENCHMARKS.md (another store prints the tables).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from blackbox_zoo import DATASETS, QUERY_BATCH, clip_set, fmt, motion_stats
from common import RESULTS, store_cell, update_section
from skelrobust.attacks import EOT, QueryOracle, train_discriminator
from skelrobust.attacks.registry import create_attack
from skelrobust.classifier import Classifier
from skelrobust.config import load_prepared
from skelrobust.defenses.base import create_defense
from skelrobust.defenses.smoothing import certified_accuracy
from skelrobust.defenses.training import train_defense
from skelrobust.report.tables import format_table
from skelrobust.training import TrainConfig, evaluate
from zoo_accuracy import models_dir

MODELS = ["stgcn", "ctrgcn", "sgn", "msg3d"]
DEFENSES = ["none", "beat", "smoothing", "smart-at", "trades", "mart", "mmat"]
ATTACKS = ["smart-ab", "ciasa-ab", "basar-ab", "eot", "transfer"]
STORE_NAME = "defense_zoo"
# Fine-tuning of the adversarial-training baselines. Each starts from the pretrained
# classifier BEAT post-trains (a copy), with the base's own recipe (info["experiment"]
# ["train"]: batch size, SGD/Nesterov, weight decay, gradient clipping, yaw/scale
# augmentation) changed only here: a few epochs at a tenth of the base's learning rate
# (cosine to 0, no warm-up, last epoch kept: no choice on test data). 5 epochs: the inner
# maximisations cost 10-20 forward/backward passes per step, so 5 epochs already cost about
# as much as the base's whole training (50-80 epochs); a lower rate keeps clean accuracy.
# "loss": the loss options (empty: the library's defaults, i.e. 10 mm L∞, 10 sign steps,
# β = 6 for TRADES/MART; SMART-AT 20 SMART steps of 0.5 mm in 10 mm L∞, Madry-style).
# BEAT is not here: it trains with its own defaults (a black box while they are tuned).
FINE_TUNE: dict[str, dict[str, Any]] = {
    "smart-at": {"epochs": 5, "lr_scale": 0.1, "loss": {}},
    "trades": {"epochs": 5, "lr_scale": 0.1, "loss": {}},
    "mart": {"epochs": 5, "lr_scale": 0.1, "loss": {}},
    "mmat": {"epochs": 5, "lr_scale": 0.1, "loss": {}},
}
# Smoothing: σ 10 mm per coordinate (the order of a Kinect's joint jitter, 1-2 cm: a base
# trained without noise keeps its accuracy). CERTIFY with Cohen et al.'s N0 = 100 and
# α = 0.001, N = 10,000 (their 100,000 is out of reach on CPU). The largest radius it can
# certify is σ·Φ⁻¹(α^(1/N)) ≈ 3.2 σ = 32 mm, so the 50 mm column needs --sigma-mm >= 16.
CERTIFY = {"n0": 100, "n": 10000, "alpha": 0.001}
RADII_MM = (0.0, 10.0, 20.0, 50.0)
SANITY = {"budgets_mm": (5, 10, 20, 50, 100, 1000), "fixed_steps": 50,
          "steps": (10, 50, 200), "fixed_budget_mm": 10}
# --smoke: tiny everything, to run the script end to end in minutes (not for the tables).
SMOKE = {"clips": 3, "sanity_clips": 3, "train_clips": 32, "epochs": 1, "loss": {"steps": 1},
         "beat": {"samples": 1, "training": {"burn_in": 0, "sample_every": 1, "sgld_steps": 1,
                                              "adversary_steps": 1}},
         "smart": {"steps": 60}, "ciasa": {"steps": 20}, "disc_steps": 5, "queries": 200,
         "eot_samples": 2, "votes": 8, "certify": {"n0": 4, "n": 16, "alpha": 0.001},
         "sanity": {"budgets_mm": (10, 1000), "fixed_steps": 3, "steps": (1, 3),
                    "fixed_budget_mm": 10}}


def predict(clf: Classifier, x: torch.Tensor, votes: int, seed: int) -> torch.Tensor:
    """Labels of ``clf``; a smoothed classifier answers the majority of ``votes`` seeded draws."""
    with torch.no_grad():
        if hasattr(clf, "majority_vote"):
            gen = torch.Generator().manual_seed(seed)
            return clf.majority_vote(x, votes, generator=gen)
        return clf.predict_logits(x).argmax(1)


def outcome(clf: Classifier, x: torch.Tensor, x_adv: torch.Tensor, clips: dict[str, Any],
            opt: argparse.Namespace) -> dict[str, Any]:
    """Success (% of the clean-correct clips) and the perceptual figures of the successful ones."""
    y = clips["y"][: len(x)]
    correct = (predict(clf, x, opt.votes, opt.seed) == y).numpy()
    ok = (predict(clf, x_adv, opt.votes, opt.seed) != y).numpy() & correct
    sub = {**clips, "lengths": clips["lengths"][: len(x)]}
    stats = motion_stats(x, x_adv, ok, sub, clf.skeleton)
    if ok.any():  # the whole clip's ℓ2 norm, the radius smoothing certifies
        stats["l2_mm"] = float(1e3 * (x_adv - x).flatten(1).norm(dim=1).numpy()[ok].mean())
    return {"samples": len(y), "clean_correct": int(correct.sum()), "successes": int(ok.sum()),
            "success_pct": 100.0 * ok.sum() / max(int(correct.sum()), 1), **stats}


def adv_file(opt: argparse.Namespace, dataset: str, model: str) -> Path:
    return models_dir() / "attacks" / "defense_zoo" / opt.store / f"{dataset}_{model}_smart-ab.npz"


def attack_cell(name: str, defense: str, clf: Classifier, ctx: dict[str, Any],
                opt: argparse.Namespace) -> dict[str, Any]:
    """One attack on one defended classifier (module doc)."""
    clips, x, y, lengths = ctx["clips"], ctx["x"], ctx["y"], ctx["lengths"]
    if name == "eot" and not getattr(clf, "stochastic", False):
        return {"same_as": "smart-ab", "note": "deterministic: E[f] = f"}
    if name == "transfer":
        if ctx["none_adv"] is None:
            ctx["need_undefended"]()
        x_adv = ctx["none_adv"]
        return {"attack": "transfer", "crafted_on": "none (smart-ab)", "seconds": 0.0,
                **outcome(clf, x, x_adv, clips, opt)}
    smart = {"goal": "ab", "seed": opt.seed, **(SMOKE["smart"] if opt.smoke else {})}
    if name == "smart-ab":
        atk, args = create_attack("smart", clf, **smart), smart
    elif name == "eot":
        atk, args = EOT(create_attack("smart", clf, **smart), samples=opt.eot_samples), {
            **smart, "eot_samples": opt.eot_samples}
    elif name == "ciasa-ab":
        args = {"goal": "ab", "norm": "linf", "seed": opt.seed,
                **(SMOKE["ciasa"] if opt.smoke else {})}
        atk = create_attack("ciasa", clf, discriminator=ctx["discriminator"](), **args)
    else:  # basar-ab
        args = {"goal": "ab", "max_queries": opt.queries, "seed": opt.seed}
        victim = (clf.vote_oracle(opt.basar_votes) if hasattr(clf, "vote_oracle") else
                  QueryOracle.from_classifier(clf, access="label", batch_size=QUERY_BATCH))
        atk = create_attack("basar", victim, pool=clips["pool"], **args)
    res = atk.attack(x, y, lengths=lengths)
    if defense == "none" and name == "smart-ab":
        path = adv_file(opt, ctx["dataset"], ctx["model"])
        path.parent.mkdir(parents=True, exist_ok=True)
        res.save_npz(str(path), x_clean=x, index=clips["index"][: len(x)])
        ctx["none_adv"] = res.x_adv
    return {"attack": name, "arguments": args, "seconds": res.seconds,
            "queries_mean": float(res.queries.float().mean()),
            "iterations_mean": float(res.iterations.float().mean()),
            **outcome(clf, x, res.x_adv, clips, opt)}


def train_config(defense: str, base: Classifier, smoke: bool) -> TrainConfig | None:
    """``FINE_TUNE[defense]`` on the base's recipe; ``None`` (the defense's defaults) for BEAT."""
    spec = FINE_TUNE.get(defense)
    if spec is None:
        return None
    recipe = dict(base.info.get("experiment", {}).get("train", {}))
    recipe.update(epochs=SMOKE["epochs"] if smoke else spec["epochs"],
                  lr=float(recipe.get("lr", 0.05)) * spec["lr_scale"], warmup_epochs=0,
                  schedule="cosine", keep="last", num_threads=None, progress=False)
    return TrainConfig.from_dict(recipe)


def defense_args(defense: str, opt: argparse.Namespace) -> dict[str, Any]:
    if defense == "smoothing":
        return {"sigma_mm": opt.sigma_mm, **(SMOKE["certify"] if opt.smoke else CERTIFY)}
    if defense == "beat":
        return dict(SMOKE["beat"]) if opt.smoke else {}
    return {**FINE_TUNE[defense]["loss"], **(SMOKE["loss"] if opt.smoke else {})}


def defended_for(defense: str, ckpt: Path, ctx: dict[str, Any], store: dict[str, Any],
                 opt: argparse.Namespace) -> Classifier:
    """The defended classifier of ``defense`` (trained or loaded), its train cell stored."""
    key = f"{ctx['dataset']}/{ctx['model']}/{defense}"
    done = key in store["train"] and not opt.force
    base = Classifier.load(ckpt).eval()  # a fresh base each time: BEAT freezes its base in place
    cell: dict[str, Any] = {"epochs": 0, "seconds": 0.0}
    if defense in ("none", "smoothing"):
        clf = base if defense == "none" else create_defense(defense, base,
                                                            **defense_args(defense, opt))
        if done:
            return clf
    else:
        out = models_dir() / "defended" / (f"{defense}_{ctx['model']}_{ctx['dataset']}"
                                           + ("_smoke" if opt.smoke else ""))
        if done and (out / "classifier.safetensors").exists():
            return Classifier.load(out / "classifier.safetensors").eval()
        clf = create_defense(defense, base, **defense_args(defense, opt))
        train = ctx["train"]
        if opt.smoke:
            train = train.subset(np.arange(min(SMOKE["train_clips"], len(train))))
        t0 = time.perf_counter()
        result = train_defense(clf, train, None, train_config(defense, base, opt.smoke),
                               out_dir=out, resume=not opt.force)
        info = clf.info["training"]
        cell = {"epochs": info["epochs"], "seconds": result.train_seconds,
                "wall_seconds_this_run": time.perf_counter() - t0,
                "resumed_from_epoch": result.resumed_from, "config": info["config"],
                "defense_args": clf.args, "out_dir": str(out)}
        clf.eval()
    torch.manual_seed(opt.seed)  # smoothing's single-draw accuracy
    cell.update(defense=defense, top1=evaluate(clf, ctx["test"]).top1,
                base_top1=ctx["base_top1"]())
    if defense == "smoothing":  # the smoothed classifier's answers: majority of the votes
        x, y = ctx["test"].tensors()
        cell.update(single_draw_top1=cell["top1"], votes=opt.votes,
                    top1=100.0 * float((predict(clf, x, opt.votes, opt.seed) == y).float().mean()))
    save(store, "train", key, cell, opt)
    print(f"train {key}: top-1 {cell['top1']:.1f} % (base {cell['base_top1']:.1f} %), "
          f"{cell['epochs']} epochs, {cell['seconds']:.0f} s", flush=True)
    return clf


def save(store: dict[str, Any], kind: str, key: str, cell: dict[str, Any],
         opt: argparse.Namespace) -> None:
    cell = {**cell, "threads": torch.get_num_threads()}  # beside every time
    if kind in ("attack", "sanity"):
        print(f"{kind} {key}: " + (f"= {cell['same_as']}" if "same_as" in cell else (
            f"success {cell['successes']}/{cell['clean_correct']}, joint "
            f"{fmt(cell.get('joint_mm_mean'))} mm, {cell['seconds']:.1f} s")), flush=True)
    fresh = store_cell(opt.store, key, cell, kind, {"sanity_grid": store["sanity_grid"]})
    for group in ("train", "attack", "sanity", "certify"):  # other processes' cells too
        store[group].update(fresh.get(group, {}))
    store.update(machine=fresh["machine"], commands=fresh["commands"])


def run_pair(dataset: str, model: str, store: dict[str, Any], opt: argparse.Namespace) -> None:
    ckpt = models_dir() / f"{model}_{dataset}" / "classifier.safetensors"
    if not ckpt.exists():
        print(f"skip {model} on {dataset}: no checkpoint {ckpt}")
        return
    base = Classifier.load(ckpt).eval()
    root = str(Path(opt.data) / dataset)
    clips = clip_set(dataset, Path(opt.data), base)
    n = opt.clips
    ctx: dict[str, Any] = {
        "dataset": dataset, "model": model, "clips": clips, "x": clips["x"][:n],
        "y": clips["y"][:n], "lengths": clips["lengths"][:n], "none_adv": None,
        "train": load_prepared(dataset, "train", root, base.preprocess),
        "test": load_prepared(dataset, "test", root, base.preprocess)}
    cache: dict[str, Any] = {}
    ctx["base_top1"] = lambda: cache.setdefault("top1", evaluate(base, ctx["test"]).top1)

    def discriminator() -> Any:
        if "disc" not in cache:
            steps = SMOKE["disc_steps"] if opt.smoke else 300  # as attack_zoo's CIASA rows
            cache["disc"] = train_discriminator(clips["pool"][0], steps=steps, seed=opt.seed,
                                                skeleton=base.skeleton)
        return cache["disc"]

    def need_undefended() -> None:
        path = adv_file(opt, dataset, model)
        if path.exists():
            with np.load(path) as z:
                if np.array_equal(z["x_clean"], ctx["x"].numpy()):
                    ctx["none_adv"] = torch.from_numpy(z["x_adv"])
                    return
        cell = attack_cell("smart-ab", "none", base, ctx, opt)
        save(store, "attack", f"{dataset}/{model}/none/smart-ab", cell, opt)

    ctx["discriminator"], ctx["need_undefended"] = discriminator, need_undefended
    for defense in opt.defenses:
        clf = defended_for(defense, ckpt, ctx, store, opt)
        for name in opt.attacks:
            key = f"{dataset}/{model}/{defense}/{name}"
            if key in store["attack"] and not opt.force:
                continue
            if name == "transfer" and defense == "none":
                continue  # the undefended model's own motions: its smart-ab row
            cell = attack_cell(name, defense, clf, ctx, opt)
            save(store, "attack", key, cell, opt)
        if "sanity" in opt.parts:
            sanity(defense, clf, ctx, store, opt)
        if "certify" in opt.parts and defense == "smoothing":
            key = f"{dataset}/{model}"
            if key not in store["certify"] or opt.force:
                res = clf.certify(ctx["x"], generator=torch.Generator().manual_seed(opt.seed))
                acc = certified_accuracy(res, ctx["y"], RADII_MM)
                save(store, "certify", key, {
                    "sigma_mm": res.sigma_mm, "n0": res.n0, "n": res.n, "alpha": res.alpha,
                    "clips": len(res), "accuracy": {f"{r:g}": a for r, a in acc.items()},
                    "abstain_pct": res.abstain_rate, "mean_radius_mm": res.mean_radius_mm,
                    "seconds": res.seconds}, opt)
                print(f"certify {key}: {acc}", flush=True)


def sanity(defense: str, clf: Classifier, ctx: dict[str, Any], store: dict[str, Any],
           opt: argparse.Namespace) -> None:
    """PGD-AB L∞ vs budget (fixed steps) and vs steps (fixed budget), first clips."""
    grid = store["sanity_grid"]
    runs = {(b, grid["fixed_steps"]) for b in grid["budgets_mm"]}
    runs |= {(grid["fixed_budget_mm"], s) for s in grid["steps"]}
    k = opt.sanity_clips
    x, y, lengths = ctx["x"][:k], ctx["y"][:k], ctx["lengths"][:k]
    for budget, steps in sorted(runs):
        key = f"{ctx['dataset']}/{ctx['model']}/{defense}/pgd-{budget:g}mm-{steps}"
        if key in store["sanity"] and not opt.force:
            continue
        args = {"goal": "ab", "budget_mm": float(budget), "steps": steps, "norm": "linf",
                "seed": opt.seed}
        res = create_attack("pgd", clf, **args).attack(x, y, lengths=lengths)
        out = outcome(clf, x, res.x_adv, ctx["clips"], opt)
        save(store, "sanity", key, {"arguments": args, "seconds": res.seconds,
                                    **{k2: out[k2] for k2 in (
                                        "samples", "clean_correct", "successes",
                                        "success_pct")}}, opt)


# ---------------------------------------------------------------------------- tables
def num(v: Any, digits: int = 1) -> str:
    """``fmt`` with the tables' dash for a missing number."""
    s = fmt(v, digits)
    return "–" if s == "-" else s


def _pct(cell: dict[str, Any] | None, smart: dict[str, Any] | None = None) -> str:
    if not cell:
        return "–"
    if cell.get("same_as"):
        return f"= SMART ({num((smart or {}).get('success_pct'), 0)})"
    return (f"{num(cell.get('success_pct'), 0)} ({cell.get('successes', '?')}/"
            f"{cell.get('clean_correct', '?')})")


def checks(store: dict[str, Any], row: str) -> dict[str, str]:
    """Gradient-masking checks of one (dataset, model, defense): pass/fail/–."""
    grid, cells, att = store["sanity_grid"], store["sanity"], store["attack"]

    def curve(pairs: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
        return [c for b, s in pairs if (c := cells.get(f"{row}/pgd-{b:g}mm-{s}"))]

    def verdict(ok: bool | None) -> str:
        return "–" if ok is None else ("pass" if ok else "fail")

    def monotone(cs: list[dict[str, Any]]) -> bool | None:
        if len(cs) < 2:
            return None
        return all(b["successes"] >= a["successes"] - 1 for a, b in itertools.pairwise(cs))

    by_budget = curve([(b, grid["fixed_steps"]) for b in sorted(grid["budgets_mm"])])
    by_steps = curve([(grid["fixed_budget_mm"], s) for s in sorted(grid["steps"])])
    top = by_budget[-1] if by_budget else None
    wb = [c["successes"] for n in ("smart-ab", "ciasa-ab", "eot")
          if (c := att.get(f"{row}/{n}")) and "successes" in c]

    def below(name: str) -> bool | None:
        c = att.get(f"{row}/{name}")
        return None if not c or not wb else c["successes"] <= max(wb) + 1

    return {"budget ↑": verdict(monotone(by_budget)), "steps ↑": verdict(monotone(by_steps)),
            "unbounded ≈ 100 %": verdict(None if top is None else
                                         top["successes"] >= top["clean_correct"] - 1),
            "BASAR ≤ WB": verdict(below("basar-ab")), "transfer ≤ WB": verdict(below("transfer"))}


def goal_row(store: dict[str, Any], d: str, m: str) -> dict[str, Any] | None:
    """The issue's goals for BEAT on (d, m): met / missed / –."""
    tr, att = store["train"], store["attack"]
    beat, none = att.get(f"{d}/{m}/beat/smart-ab"), att.get(f"{d}/{m}/none/smart-ab")
    t_beat, t_trades = tr.get(f"{d}/{m}/beat"), tr.get(f"{d}/{m}/trades")
    if not (beat or t_beat):
        return None

    def says(ok: bool | None) -> str:
        return "–" if ok is None else ("met" if ok else "missed")

    loss = t_beat["base_top1"] - t_beat["top1"] if t_beat else None
    ratio = t_beat["seconds"] / t_trades["seconds"] if t_beat and t_trades else None
    mm = (beat.get("joint_mm_mean", np.inf) / none["joint_mm_mean"]
          if beat and none and none.get("joint_mm_mean") else None)
    return {"dataset": d, "model": m,
            "SMART-AB ≥ 95 → ≤ 20 %": f"{num((none or {}).get('success_pct'), 0)} → "
                                      f"{num((beat or {}).get('success_pct'), 0)}: " + says(
                None if not (beat and none) else
                none["success_pct"] >= 95 and beat["success_pct"] <= 20),
            "clean loss ≤ 1 pt": f"{num(loss)}: {says(None if loss is None else loss <= 1)}",
            "time ≤ 10 % TRADES": f"{num(None if ratio is None else 100 * ratio)} %: "
                                  + says(None if ratio is None else ratio <= 0.1),
            "displacement ≥ 3×": f"{num(mm, 2)}×: " + says(None if mm is None else mm >= 3)}


def tables(store: dict[str, Any]) -> str:
    tr, att, parts = store["train"], store["attack"], []
    pairs = sorted({tuple(k.split("/")[:2]) for kind in ("train", "attack", "sanity")
                    for k in store[kind]})
    for dataset in DATASETS:
        rows = []
        for d, m in pairs:
            for defense in DEFENSES if d == dataset else []:
                row_key = f"{d}/{m}/{defense}"
                t, a = tr.get(row_key), {n: att.get(f"{row_key}/{n}") for n in ATTACKS}
                if not t and not any(a.values()):
                    continue
                none = att.get(f"{d}/{m}/none/smart-ab") or {}
                rows.append({
                    "model": m, "defense": defense,
                    "clean % (base)": f"{num((t or {}).get('top1'))} "
                                      f"({num((t or {}).get('base_top1'))})",
                    "SMART-AB": _pct(a["smart-ab"]), "CIASA-AB": _pct(a["ciasa-ab"]),
                    "BASAR-AB": _pct(a["basar-ab"]), "EOT": _pct(a["eot"], a["smart-ab"]),
                    "transfer": _pct(a["transfer"]),
                    "SMART mm (undef.)": f"{num((a['smart-ab'] or {}).get('joint_mm_mean'))} "
                                         f"({num(none.get('joint_mm_mean'))})",
                    "train s (threads)": "–" if not t else "no training" if not t["epochs"]
                    else f"{num(t['seconds'], 0)} ({t['threads']}), {t['epochs']} ep"})
        if rows:
            parts.append(f"**{dataset}** (success % of the clean-correct clips, "
                         "(successes/clean-correct))\n\n" + format_table(rows, fmt="markdown"))
    grid = store["sanity_grid"]
    rows = []
    order = {d: i for i, d in enumerate(DEFENSES)}
    for row in sorted({k.rsplit("/", 1)[0] for k in store["sanity"]},
                      key=lambda r: (*r.split("/")[:2], order.get(r.split("/")[2], 99))):
        cells = {k.rsplit("/", 1)[1]: c for k, c in store["sanity"].items()
                 if k.rsplit("/", 1)[0] == row}
        r = dict(zip(("dataset", "model", "defense"), row.split("/")))
        for b in sorted(grid["budgets_mm"]):
            c = cells.get(f"pgd-{b:g}mm-{grid['fixed_steps']}")
            r[f"{b:g} mm"] = num(c["success_pct"], 0) if c else "–"
        for s in sorted(grid["steps"]):
            c = cells.get(f"pgd-{grid['fixed_budget_mm']:g}mm-{s}")
            r[f"{s} it"] = num(c["success_pct"], 0) if c else "–"
        rows.append({**r, **checks(store, row)})
    if rows:
        parts.append(f"**Sanity checks against gradient masking** (PGD-AB L∞, random start, "
                     f"success % of the clean-correct clips among the first clips: vs budget "
                     f"at {grid['fixed_steps']} steps, vs steps at {grid['fixed_budget_mm']} "
                     "mm. Checks, 1 clip of noise allowed: success non-decreasing in budget "
                     "and steps; all clips but one at the largest budget; BASAR and transfer "
                     "not above the best white-box attack (SMART-AB, CIASA-AB, EOT) of the "
                     "row)\n\n" + format_table(rows, fmt="markdown"))
    rows = [{"dataset": k.split("/")[0], "model": k.split("/")[1], "σ mm": num(c["sigma_mm"], 0),
             "N0 / N / α": f"{c['n0']} / {c['n']} / {c['alpha']:g}", "clips": c["clips"],
             **{f"r = {r:g} mm": num(c["accuracy"].get(f"{r:g}")) for r in RADII_MM},
             "abstain %": num(c["abstain_pct"]), "mean R mm": num(c["mean_radius_mm"]),
             "s (threads)": f"{num(c['seconds'], 0)} ({c['threads']})"}
            for k, c in sorted(store["certify"].items())]
    if rows:
        parts.append("**Randomized smoothing: certified accuracy** (%, CERTIFY of Cohen et al. "
                     "2019 on the clips; radius: ℓ2 norm over the whole clip in mm, not the "
                     "per-joint displacement of the attack table; abstentions count as "
                     "wrong)\n\n" + format_table(rows, fmt="markdown"))
    goals = [g for d, m in pairs if (g := goal_row(store, d, m))]
    if goals:
        parts.append("**Goals of issue 13 (BEAT)**\n\n" + format_table(goals, fmt="markdown"))
    m = store.get("machine", {})
    used = {c["threads"] for kind in ("train", "attack", "sanity", "certify")
            for c in store[kind].values() if "threads" in c}
    queries, eot = ({str(c["arguments"][arg]) for k, c in att.items()
                     if k.endswith(name) and "arguments" in c}
                    for name, arg in (("basar-ab", "max_queries"), ("eot", "eot_samples")))
    tuning = ", ".join(f"{k}: {v['epochs']} epochs at {v['lr_scale']:g}× the base lr"
                       for k, v in FINE_TUNE.items())
    head = (
        "### Defenses: BEAT, randomized smoothing, SMART-AT, TRADES, MART, MMAT\n\n"
        "The BEAT paper's table (Wang et al., AAAI 2023) on the zoo's `small` checkpoints, on "
        "the 16 test clips of the white-box tables. `clean %`: top-1 on the whole test split "
        "(smoothing: the majority of `votes` noisy draws), the base's in brackets. Attacks: "
        "`SMART-AB` as `create_attack` runs it (default preset; on smoothing its gradients "
        "already average the defense's 8 noise draws: `as_oracle` applies EOT to stochastic "
        f"classifiers); `EOT`: SMART-AB against the expectation over {'/'.join(sorted(eot))} "
        "draws (the adaptive attack; `= SMART` on deterministic classifiers, where it is the "
        f"same attack); `CIASA-AB`: 20 mm L∞; `BASAR-AB`: labels only, "
        f"{'/'.join(sorted(queries))} queries, pool = training split (on smoothing the "
        "smoothed majority vote of `--basar-votes` draws per query, 16 unless the command "
        "says otherwise: 100 would cost 500,000 forward passes per clip; success is then "
        "re-checked with 100); `transfer`: the undefended "
        "model's SMART-AB motions replayed. Success is re-checked on the defended classifier "
        "(smoothing: majority vote). `SMART mm`: mean joint displacement of the successful "
        "clips, defended (undefended). Training: BEAT with its own defaults; the "
        "adversarial-training rows fine-tune the same pretrained classifier "
        f"({tuning}; defaults of the losses); `train s`: sum of the epochs' wall times.\n\n"
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, torch {m.get('torch', '?')}"
        f"; torch threads per cell: {sorted(used)} (each cell's in the JSON). Commands: "
        f"`{'`, `'.join(store.get('commands', []))}`")
    return head + "\n\n" + "\n\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--defenses", nargs="+", default=DEFENSES, choices=DEFENSES)
    ap.add_argument("--attacks", nargs="+", default=ATTACKS, choices=ATTACKS)
    ap.add_argument("--parts", nargs="+", default=["sanity", "certify"],
                    choices=["sanity", "certify"], help="beside training and attacks")
    for flag, default in (("--clips", 16), ("--sanity-clips", 8), ("--queries", 5000),
                          ("--eot-samples", 16), ("--sigma-mm", 10.0), ("--votes", 100),
                          ("--basar-votes", 16),
                          ("--seed", 0), ("--threads", 2)):
        ap.add_argument(flag, type=type(default), default=default)
    ap.add_argument("--force", action="store_true", help="redo cells (and training) anew")
    ap.add_argument("--tables-only", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="tiny everything (SMOKE)")
    ap.add_argument("--store", default=STORE_NAME,
                    help="result file under benchmarks/results (a pilot keeps its own)")
    ap.add_argument("--data", default=os.environ.get("SKELROBUST_DATA", str(
        Path(__file__).resolve().parents[2] / "shared" / "data")))
    opt = ap.parse_args()
    if opt.smoke:
        opt.clips, opt.sanity_clips = SMOKE["clips"], SMOKE["sanity_clips"]
        opt.queries, opt.eot_samples, opt.votes = (SMOKE["queries"], SMOKE["eot_samples"],
                                                   SMOKE["votes"])
    torch.set_num_threads(opt.threads)
    path = RESULTS / f"{opt.store}.json"
    store = json.loads(path.read_text()) if path.exists() else {}
    for kind in ("train", "attack", "sanity", "certify"):
        store.setdefault(kind, {})
    store.setdefault("commands", [])
    store["sanity_grid"] = store.get("sanity_grid", SANITY) if opt.tables_only else (
        SMOKE["sanity"] if opt.smoke else SANITY)
    for dataset in [] if opt.tables_only else opt.datasets:
        for model in opt.models:
            run_pair(dataset, model, store, opt)
    if opt.store == STORE_NAME:
        update_section("defense_zoo", tables(store))
    else:
        print(tables(store))


if __name__ == "__main__":
    main()
