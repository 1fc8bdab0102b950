"""fit's hooks (loss, optimizer, end_epoch) and resuming after an interruption."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from skelrobust.classifier import Classifier
from skelrobust.config import load_prepared
from skelrobust.errors import ConfigError
from skelrobust.training import TrainConfig, cross_entropy_loss, fit

PREP = {"num_frames": 16, "center_mode": "first", "normalize_view": True}


@pytest.fixture(scope="module")
def data():
    return load_prepared("synthetic", "train", preprocess_args=PREP, num_clips=48,
                         num_frames=16, seed=1)


def fresh(data) -> Classifier:
    torch.manual_seed(0)
    return Classifier.create("mlp", data, size="small", preprocess=PREP)


CFG = TrainConfig(epochs=3, batch_size=16, lr=0.05, progress=False, keep="last",
                  augment_yaw_deg=10.0)


class Interrupt(Exception):
    pass


def test_loss_hook_replaces_the_objective(data):
    calls = []

    def doubled(net, x, y):
        calls.append(len(y))
        logits = net(x)
        return 2.0 * F.cross_entropy(logits, y), logits

    one = TrainConfig(**{**CFG.__dict__, "epochs": 1, "lr": 1e-6})  # weights barely move
    ra = fit(fresh(data), data, None, one, loss=doubled)
    rb = fit(fresh(data), data, None, one)
    assert set(calls) == {16} and len(calls) == 3  # every batch went through the hook
    assert ra.history[0]["loss"] == pytest.approx(2 * rb.history[0]["loss"], rel=1e-3)


def test_default_loss_is_cross_entropy_with_label_smoothing(data):
    clf = fresh(data).eval()
    x, y = data.tensors()
    loss, logits = cross_entropy_loss(0.1)(clf, x[:8], y[:8])
    assert torch.allclose(loss, F.cross_entropy(clf(x[:8]), y[:8], label_smoothing=0.1))
    assert logits.shape == (8, clf.num_classes)


def test_optimizer_hook_and_end_epoch(data):
    made, ends = [], []

    def adam(params, config):
        opt = torch.optim.Adam(params, lr=config.lr)
        made.append(opt)
        return opt

    class Loss:
        def __call__(self, net, x, y):
            logits = net(x)
            return F.cross_entropy(logits, y), logits

        def end_epoch(self, classifier, epoch):
            ends.append(epoch)

    fit(fresh(data), data, None, TrainConfig(**{**CFG.__dict__, "lr": 1e-3}), loss=Loss(),
        optimizer=adam)
    assert len(made) == 1 and made[0].state  # the hook's optimiser took the steps
    assert ends == [1, 2, 3]


def test_resumed_run_ends_with_the_uninterrupted_weights(data, tmp_path):
    full = fresh(data)
    fit(full, data, None, CFG, out_dir=tmp_path / "full")

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(fresh(data), data, None, CFG, out_dir=tmp_path / "cut", on_epoch=stop_after_two)
    assert (tmp_path / "cut" / "resume.pt").is_file()
    resumed = fresh(data)
    result = fit(resumed, data, None, CFG, out_dir=tmp_path / "cut", resume=True)
    assert result.resumed_from == 2
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    # the training time covers the epochs of both runs, not only the one after the resume
    assert result.train_seconds == pytest.approx(
        sum(r["seconds"] for r in result.history), rel=0.05)
    assert result.train_seconds > sum(r["seconds"] for r in result.history[2:])
    for key, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_resume_keeps_the_loss_state(data, tmp_path):
    class Counting:
        def __init__(self):
            self.seen = 0

        def __call__(self, net, x, y):
            self.seen += len(y)
            logits = net(x)
            return F.cross_entropy(logits, y), logits

        def state_dict(self):
            return {"seen": torch.tensor(self.seen)}

        def load_state_dict(self, state):
            self.seen = int(state["seen"])

    def stop_after_one(record):
        if record["epoch"] == 1:
            raise Interrupt

    first = Counting()
    with pytest.raises(Interrupt):
        fit(fresh(data), data, None, CFG, out_dir=tmp_path, on_epoch=stop_after_one,
            loss=first)
    second = Counting()
    fit(fresh(data), data, None, CFG, out_dir=tmp_path, loss=second, resume=True)
    assert second.seen == 3 * 48  # 48 restored, 96 more


def test_fit_errors(data, tmp_path):
    with pytest.raises(ConfigError, match="resume=True needs out_dir"):
        fit(fresh(data), data, None, CFG, resume=True)
    frozen = fresh(data).requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        fit(frozen, data, None, CFG)

    def exploding(net, x, y):
        logits = net(x)
        return logits.sum() * float("nan"), logits

    with pytest.raises(ConfigError, match="training loss became nan"):
        fit(fresh(data), data, None, CFG, loss=exploding)
