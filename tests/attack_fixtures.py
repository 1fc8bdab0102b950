"""Shared victims for the attack tests: a small classifier trained on ``synthetic``.

Import the builders, not fixtures: ``victim()`` is cached per process, so every
attack test module in one pytest session trains the classifier once (~10 s on
2 cores). Use it from a module fixture::

    from attack_fixtures import victim

    @pytest.fixture(scope="module")
    def v():
        return victim()

Attacks run many small steps; two threads contending with other processes make
them several times slower, so attack test modules run single-threaded with the
autouse fixture ``one_thread`` (imported into the module). Tests of progress output
request ``eager_progress`` (imported likewise).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import pytest
import torch

from skelrobust.classifier import Classifier
from skelrobust.config import load_prepared
from skelrobust.progress import progress_enabled, set_progress
from skelrobust.training import TrainConfig, evaluate, fit

PREP = {"num_frames": 32, "center_mode": "first", "normalize_view": True}


@dataclass(frozen=True)
class Victim:
    """A trained classifier and held-out clips it classifies correctly."""

    classifier: Classifier
    x: torch.Tensor  # (N, 3, 32, 25, 1) metres, correctly classified test clips
    y: torch.Tensor  # (N,) true labels
    clean_accuracy: float  # % on the whole test split


def victim(model: str = "mlp", epochs: int = 8, train_clips: int = 400,
           test_clips: int = 120, seed: int = 0) -> Victim:
    """The cached victim of :func:`_train_victim`, always handed out in eval mode."""
    v = _train_victim(model, epochs, train_clips, test_clips, seed)
    v.classifier.eval()
    return v


@cache
def _train_victim(model: str, epochs: int, train_clips: int, test_clips: int,
                  seed: int) -> Victim:
    """Train ``model`` (size ``small``) on ``synthetic`` clips of 32 frames; cached."""
    torch.manual_seed(seed)
    train = load_prepared("synthetic", "train", preprocess_args=PREP, num_clips=train_clips,
                          num_frames=32, seed=seed)
    test = load_prepared("synthetic", "test", preprocess_args=PREP, num_clips=test_clips,
                         num_frames=32, seed=seed)
    clf = Classifier.create(model, train, size="small", preprocess=PREP)
    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=0.05, warmup_epochs=1, grad_clip=5.0,
                      seed=seed, progress=False)
    fit(clf, train, None, cfg)
    clf.eval()
    ev = evaluate(clf, test)
    x, y = test.tensors()
    ok = torch.as_tensor(ev.predictions) == y
    return Victim(clf, x[ok].contiguous(), y[ok].contiguous(), ev.top1)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Run the module with one intra-op thread, restoring the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def eager_progress() -> Iterator[None]:
    """Progress on, written at once even off a terminal (as under ``capsys``); then restored."""
    before = progress_enabled()
    set_progress(True, interval=0.0)
    yield
    set_progress(before)
