"""fit/evaluate: learning, determinism, schedules, metrics, and the synthetic task."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from skelrobust.classifier import Classifier
from skelrobust.config import load_prepared
from skelrobust.data.dataset import SkeletonDataset
from skelrobust.errors import ConfigError
from skelrobust.training import TrainConfig, evaluate, fit, learning_rate

PREP = {"num_frames": 32, "center_mode": "first", "normalize_view": True}


@pytest.fixture(scope="module")
def synth():
    train = load_prepared("synthetic", "train", preprocess_args=PREP, num_clips=560,
                          num_frames=32)
    val = load_prepared("synthetic", "val", preprocess_args=PREP, num_clips=280,
                        num_frames=32)  # model selection on the validation split, never test
    return train, val


class _Fixed(nn.Module):
    """Returns preset logits: lets the metrics be checked by hand."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[: x.shape[0]]


def test_evaluate_metrics_by_hand():
    x = np.zeros((4, 3, 2, 25, 1), dtype=np.float32)
    data = SkeletonDataset(x=x, y=[0, 1, 2, 2], class_names=["a", "b", "c"], skeleton="ntu25")
    logits = torch.tensor([[3.0, 2, 1], [3, 2, 1], [1, 2, 3], [3, 1, 2]])
    clf = Classifier(_Fixed(logits), "ntu25", ["a", "b", "c"])
    ev = evaluate(clf, data)
    assert ev.top1 == 50.0 and ev.top5 == 100.0
    assert ev.per_class == {"a": 100.0, "b": 0.0, "c": 50.0}
    assert ev.confusion.tolist() == [[1, 0, 0], [1, 0, 0], [1, 0, 1]]
    expected = float(torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 2])))
    assert math.isclose(ev.loss, expected, rel_tol=1e-6)


def test_learning_rate_schedules():
    cos = TrainConfig(epochs=10, lr=1.0, schedule="cosine", warmup_epochs=2)
    assert learning_rate(cos, 0, 10) == pytest.approx(0.05)
    assert learning_rate(cos, 19, 10) == pytest.approx(1.0)
    assert learning_rate(cos, 60, 10) == pytest.approx(0.5, abs=1e-9)
    assert learning_rate(cos, 100, 10) == pytest.approx(0.0, abs=1e-9)
    step = TrainConfig(epochs=10, lr=1.0, schedule="step", milestones=(3, 6), gamma=0.1)
    assert learning_rate(step, 29, 10) == 1.0
    assert learning_rate(step, 30, 10) == pytest.approx(0.1)
    assert learning_rate(step, 65, 10) == pytest.approx(0.01)


def test_config_validation():
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ConfigError, match="unknown keys"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=0)


def test_fit_learns_and_is_deterministic(synth, tmp_path):
    train, val = synth
    cfg = TrainConfig(epochs=3, batch_size=32, optimizer="adam", lr=3e-3, weight_decay=0.0,
                      schedule="cosine", seed=3, progress=False, grad_clip=5.0)
    runs = []
    for k in range(2):
        torch.manual_seed(0)
        clf = Classifier.create("mlp", train)
        res = fit(clf, train, val, cfg, out_dir=tmp_path / f"run{k}")
        runs.append((clf, res))
    (clf, res), (_, res2) = runs
    assert [h["loss"] for h in res.history] == [h["loss"] for h in res2.history]
    chance = 100.0 / train.num_classes
    assert res.best["val_top1"] > 3 * chance
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    # the best checkpoint on disk reproduces the returned classifier
    back = Classifier.load(tmp_path / "run0")
    assert evaluate(back, val).top1 == pytest.approx(evaluate(clf, val).top1)
    assert (tmp_path / "run0" / "history.json").exists()
    assert (tmp_path / "run0" / "last.safetensors").exists()


def test_fit_rejects_class_mismatch(synth):
    train, _ = synth
    sub = SkeletonDataset(x=train.x[:4], y=[0, 1, 0, 1], class_names=["a", "b"],
                          skeleton="ntu25")
    clf = Classifier.create("mlp", train)
    with pytest.raises(ConfigError, match="classes"):
        fit(clf, sub, config=TrainConfig(epochs=1, progress=False))


def test_synthetic_needs_motion_not_single_poses(synth):
    """A single-frame classifier does clearly worse than a temporal one on `synthetic`."""
    train, val = synth
    cfg = TrainConfig(epochs=8, batch_size=32, optimizer="adam", lr=3e-3, weight_decay=1e-4,
                      schedule="cosine", seed=0, progress=False)
    acc = {}
    for temporal in (True, False):
        torch.manual_seed(0)
        clf = Classifier.create("mlp", train, temporal=temporal)
        fit(clf, train, val, cfg)
        acc[temporal] = evaluate(clf, val).top1
    assert acc[True] >= 75.0, acc
    assert acc[True] - acc[False] >= 15.0, acc
