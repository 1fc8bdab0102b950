"""Training a defense: its objective handed to the one loop, :func:`~skelrobust.training.fit`.

A defense that trains says how through two methods: ``training_objective(num_data)``
returns the loss ``fit`` minimises (BEAT's energy model, TRADES, ...), which may also
bring an ``optimizer(params, config)`` (BEAT's SGHMC sampler), ``end_epoch`` and
``epochs()`` (the epochs its schedule needs); ``default_config()`` may adjust the
training config. :func:`train_defense` runs it, records the wall time and data in
``info["training"]`` and, with ``out_dir``, writes the defended classifier there
(resumable: ``resume=True`` continues after the last finished epoch).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from skelrobust.config import check_compatible
from skelrobust.data.dataset import SkeletonDataset
from skelrobust.defenses.base import DefendedClassifier
from skelrobust.errors import ConfigError
from skelrobust.training import TrainConfig, TrainResult, fit

__all__ = ["defense_config", "train_defense"]


def defense_config(defended: DefendedClassifier, objective: Any,
                   config: TrainConfig | None = None, **overrides: Any) -> TrainConfig:
    """The training config of ``defended``: ``config`` (or the defaults), the epochs its
    objective needs when it says, the last epoch kept (no model selection), ``overrides``."""
    cfg = config or TrainConfig(keep="last", **getattr(defended, "training_defaults", {}))
    if config is None and hasattr(objective, "epochs"):
        cfg = replace(cfg, epochs=int(objective.epochs()))
    return replace(cfg, **overrides) if overrides else cfg


def train_defense(defended: DefendedClassifier, train: SkeletonDataset,
                  val: SkeletonDataset | None = None, config: TrainConfig | None = None,
                  out_dir: str | os.PathLike[str] | None = None,
                  resume: bool = False) -> TrainResult:
    """Train ``defended`` on ``train`` (module doc); returns the loop's history and time."""
    if not hasattr(defended, "training_objective"):
        raise ConfigError(f"defense {defended.defense!r} has nothing to train")
    check_compatible(defended, train)
    if val is not None:
        check_compatible(defended, val)
    objective = defended.training_objective(num_data=len(train))
    cfg = defense_config(defended, objective, config)
    t0 = time.perf_counter()
    result = fit(defended, train, val, cfg, out_dir=out_dir, loss=objective,
                 optimizer=getattr(objective, "optimizer", None), resume=resume)
    defended.info["training"] = {
        "seconds": time.perf_counter() - t0, "loop_seconds": result.seconds,
        "train_seconds": result.train_seconds,
        "resumed_from_epoch": result.resumed_from, "epochs": cfg.epochs,
        "config": asdict(cfg), "data": {"name": train.name, "clips": len(train),
                                        "fingerprint": train.fingerprint()},
        "final": result.best}
    if out_dir is not None:
        defended.save(Path(out_dir) / "classifier.safetensors")
    return result
