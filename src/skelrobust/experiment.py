"""Run a training experiment: its data, a fresh classifier, :func:`~skelrobust.training.fit`,
the held-out evaluation. ``skelrobust train`` and the benchmark runner both train through
:func:`train_experiment`, so a classifier trained either way is the same classifier.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skelrobust.classifier import Classifier
from skelrobust.config import ExperimentConfig, ExperimentData, data_record, load_experiment_data
from skelrobust.training import TrainResult, evaluate, fit, is_main_process, seed_everything

__all__ = ["TrainedExperiment", "train_experiment"]

log = logging.getLogger(__name__)


@dataclass
class TrainedExperiment:
    """What :func:`train_experiment` made: ``test`` is ``None`` on non-main DDP ranks."""

    classifier: Classifier
    data: ExperimentData
    result: TrainResult
    test: dict[str, Any] | None
    path: Path | None = None  # the saved classifier file (with ``out_dir``)


def train_experiment(exp: ExperimentConfig, out_dir: str | os.PathLike[str] | None = None,
                     resume: bool = False) -> TrainedExperiment:
    """Load ``exp``'s data, build its classifier under its seed, train, evaluate on the test split.

    ``exp.train.keep`` is set to what the data allow (``"last"`` without validation data).
    With ``out_dir`` the training files go there (``resume``: continue after the last finished
    epoch) and the final classifier, with its test accuracy, is saved as
    ``classifier.safetensors`` (by the main process only under DDP).
    """
    data = load_experiment_data(exp.data, exp.train.keep, exp.train.seed)
    log.info("%s, protocol %s: train %s, %d clips; test %s, %d clips", exp.data.name,
             data.protocol.name, data.protocol.train, len(data.train), data.protocol.test,
             len(data.test))
    log.info("%s", data.validation)
    exp.train.keep = data.keep
    seed_everything(exp.train.seed)  # the initial weights too are reproducible under the seed
    clf = Classifier.create(exp.model.name, data.train, size=exp.model.size,
                            preprocess=exp.data.preprocess_args(), **exp.model.kwargs)
    clf.info["data"] = data_record(exp.data, data)
    clf.info["experiment"] = exp.as_dict()
    result = fit(clf, data.train, data.val, exp.train, out_dir=out_dir, resume=resume)
    if not is_main_process():
        return TrainedExperiment(clf, data, result, None)
    test = evaluate(clf, data.test).as_dict()
    clf.info["test"] = {"split": data.protocol.test, "top1": test["top1"], "top5": test["top5"]}
    path = clf.save(Path(out_dir) / "classifier.safetensors") if out_dir is not None else None
    return TrainedExperiment(clf, data, result, test, path)
