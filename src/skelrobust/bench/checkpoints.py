"""The classifiers a sweep's cells attack, trained once and reused: ``DIR/checkpoints/<hash>/``.

A base classifier's folder is keyed by the hash of its training configuration (dataset,
model, size, model options, data and training options, seed); a defended classifier's by
the hash of its base's key, the defense, its options, its training options and the seed.
Cells that need the same classifier share it: the first trains it while holding the
folder's lock, the others wait for the lock and load what it saved. Training writes its
resumable state into ``<hash>/train/``, so a run killed half-way continues after its last
finished epoch; ``<hash>/classifier.safetensors`` appears only when it is complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from skelrobust.bench.schema import CellSpec, canonical_json
from skelrobust.bench.store import Store, locked
from skelrobust.classifier import Classifier
from skelrobust.fileio import write_json

__all__ = ["base_config", "classifier_for", "config_hash", "defense_config_of", "training_split"]

log = logging.getLogger(__name__)

FINAL, RECORD, WORK = "classifier.safetensors", "checkpoint.json", "train"


def base_config(spec: CellSpec) -> dict[str, Any]:
    """What the base classifier of ``spec`` is trained from (and nothing else)."""
    return {"dataset": spec["dataset"], "model": spec["model"], "size": spec["size"],
            "model_options": spec.get("model_options", {}), "data": spec.get("data", {}),
            "train": spec.get("train", {}), "seed": spec["seed"]}


def defense_config_of(spec: CellSpec) -> dict[str, Any]:
    """What the defended classifier of ``spec`` is made from."""
    return {"base": config_hash(base_config(spec)), "defense": spec["defense"],
            "options": spec.get("defense_options", {}),
            "train": spec.get("defense_train", {}), "seed": spec["seed"]}


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def classifier_for(spec: CellSpec, store: Store) -> tuple[Classifier, Classifier, dict[str, Any]]:
    """``(victim, base, record)``: the classifier ``spec`` attacks (its defense around its
    base, or the base), the base, and the record the cell's result keeps."""
    base, record = _cached(store, base_config(spec), lambda work: _train_base(spec, work))
    if spec["defense"] == "none":
        return base, base, record
    defended, own = _cached(store, defense_config_of(spec),
                            lambda work: _train_defense(spec, base, work))
    return defended, base, {**own, "base": record}


def _cached(store: Store, config: dict[str, Any],
            build: Any) -> tuple[Classifier, dict[str, Any]]:
    """Load the classifier of ``config`` from the store, building it first when absent."""
    key = config_hash(config)
    folder = store.checkpoints / key
    with locked(store.lock_path(f"checkpoint-{key}")):
        if not (folder / FINAL).is_file():
            (folder / WORK).mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            clf, test_top1 = build(folder / WORK)
            record = {"hash": key, "config": config, "test_top1": test_top1,
                      "train_seconds": time.perf_counter() - t0}
            write_json(folder / RECORD, record, indent=1)
            clf.save(folder / FINAL)  # last: its presence says the checkpoint is complete
            for name in ("resume.pt", "last.safetensors", FINAL):
                (folder / WORK / name).unlink(missing_ok=True)
        record = json.loads((folder / RECORD).read_text())
        clf = Classifier.load(folder / FINAL)
    rel = folder.relative_to(store.root)
    return clf, {"path": str(rel), "hash": key, "test_top1": record.get("test_top1"),
                 "train_seconds": record.get("train_seconds")}


def _train_base(spec: CellSpec, work: Path) -> tuple[Classifier, float]:
    from skelrobust.config import DataConfig, ExperimentConfig, ModelConfig
    from skelrobust.experiment import train_experiment
    from skelrobust.training import TrainConfig

    data = {k: v for k, v in spec.get("data", {}).items()
            if k in {f.name for f in fields(DataConfig)}}
    exp = ExperimentConfig(
        data=DataConfig(**{**data, "name": spec["dataset"]}),
        model=ModelConfig(spec["model"], spec["size"], dict(spec.get("model_options", {}))),
        train=TrainConfig.from_dict({**spec.get("train", {}), "seed": spec["seed"],
                                     "progress": False}))
    log.info("training %s (%s) on %s, seed %d", spec["model"], spec["size"], spec["dataset"],
             spec["seed"])
    trained = train_experiment(exp, out_dir=work, resume=(work / "resume.pt").is_file())
    return trained.classifier, float(trained.test["top1"]) if trained.test else float("nan")


def training_split(base: Classifier) -> str:
    """The split ``base`` was trained on (its recorded protocol's training split)."""
    from skelrobust.data.registry import dataset_spec

    record = base.info.get("data") or {}
    return str(record.get("train_split") or dataset_spec(record["name"]).get_protocol(
        record.get("protocol")).train)


def _train_defense(spec: CellSpec, base: Classifier, work: Path) -> tuple[Classifier, float]:
    from skelrobust.config import load_for_classifier
    from skelrobust.defenses.base import create_defense, weights_fingerprint
    from skelrobust.defenses.training import defense_config, train_defense
    from skelrobust.training import evaluate

    defended = create_defense(spec["defense"], base, **spec.get("defense_options", {}))
    if not defended.freezes_base:
        defended.args["trained_from"] = weights_fingerprint(base)
    seed = spec["seed"]
    if hasattr(defended, "training_objective"):
        train = load_for_classifier(base, split=training_split(base))
        objective = defended.training_objective(num_data=len(train))
        overrides = {"seed": seed, **spec.get("defense_train", {}), "progress": False}
        cfg = defense_config(defended, objective, None, **overrides)
        log.info("training defense %s around %s for %d epochs", spec["defense"],
                 spec["model"], cfg.epochs)
        train_defense(defended, train, None, cfg, out_dir=work,
                      resume=(work / "resume.pt").is_file())
    torch.manual_seed(seed)  # a stochastic defense: a repeatable accuracy
    ev = evaluate(defended.eval(), load_for_classifier(base))
    defended.info["test"] = {"top1": ev.top1, "top5": ev.top5}
    return defended, float(ev.top1)
