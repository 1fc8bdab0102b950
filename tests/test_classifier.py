"""Classifier: normalisation, input validation, save/load and checkpoint errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from skelrobust.classifier import Classifier, normalization_stats
from skelrobust.data.dataset import SkeletonDataset
from skelrobust.errors import CheckpointError, InvalidMotionError, LayoutError, ShapeError


def _data(n=8, t=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 0.5, size=(n, 3, t, 25, 1)).astype(np.float32)
    return SkeletonDataset(x=x, y=np.arange(n) % 4, class_names=list("abcd"), skeleton="ntu25",
                           name="toy")


@pytest.fixture(params=["mlp", "stgcn"])
def clf(request):
    torch.manual_seed(0)
    return Classifier.create(request.param, _data(), size="small",
                             preprocess={"num_frames": 16}).eval()


def test_normalization_stats_ignore_padding():
    d = _data()
    d.x[:, :, 10:] = 0.0
    d.lengths[:] = 10
    mean, std = normalization_stats(d)
    assert mean.shape == (1, 3, 1, 25, 1)
    np.testing.assert_allclose(mean[0, :, 0, :, 0], d.x[:, :, :10].mean(axis=(0, 2))[..., 0],
                               atol=1e-5)
    assert (std > 0).all()


def test_save_load_identical_logits(clf, tmp_path):
    x = torch.from_numpy(_data(seed=1).x)
    path = clf.save(tmp_path / "ckpt")
    assert path.name == "classifier.safetensors"
    back = Classifier.load(tmp_path / "ckpt")
    assert torch.equal(back(x), clf(x))
    assert back.class_names == clf.class_names and back.skeleton is clf.skeleton
    assert back.preprocess == {"num_frames": 16}
    assert back.info["train_data"]["fingerprint"] == _data().fingerprint()


def test_forward_validates_input(clf):
    with pytest.raises(ShapeError, match=r"\(N, 3, T, V, M\)"):
        clf(torch.zeros(2, 3, 16, 25))
    with pytest.raises(ShapeError, match="3 coordinates"):
        clf(torch.zeros(2, 1, 16, 25, 3))
    with pytest.raises(LayoutError, match="25 joints"):
        clf(torch.zeros(2, 3, 16, 20, 1))
    x = torch.zeros(2, 3, 16, 25, 1)
    x[1, 0, 3, 4, 0] = float("inf")
    with pytest.raises(InvalidMotionError):
        clf(x)


def test_numpy_and_other_dtypes_give_the_same_logits(clf):
    x = _data(seed=2).x
    ref = clf(torch.from_numpy(x))
    assert torch.equal(clf(x), ref)  # a numpy array
    assert torch.allclose(clf(x.astype(np.float64)), ref)  # float64 computed in float32
    assert torch.equal(clf.predict(x), ref.argmax(1))
    xd = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    clf(xd).sum().backward()  # the cast keeps the graph
    assert xd.grad is not None and xd.grad.dtype == torch.float64
    with pytest.raises(InvalidMotionError):
        clf(np.full_like(x, np.nan))


def test_normalisation_is_inside_the_classifier(clf):
    """Shifting data and mean together leaves logits unchanged: attacks see metres."""
    x = torch.from_numpy(_data(seed=2).x)
    ref = clf(x)
    clf.mean += 1.0
    np.testing.assert_allclose(clf(x + 1.0).detach(), ref.detach(), atol=1e-4)


def test_checkpoint_errors(clf, tmp_path):
    with pytest.raises(CheckpointError, match="no such classifier"):
        Classifier.load(tmp_path / "missing")
    bad = tmp_path / "corrupt.safetensors"
    good = clf.save(tmp_path / "good.safetensors")
    bad.write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"corrupt\.safetensors"):
        Classifier.load(bad)
    third = tmp_path / "third.safetensors"
    save_file({"w": torch.zeros(2)}, str(third))
    with pytest.raises(CheckpointError, match="without a skelrobust header; supported formats"):
        Classifier.load(third)
    # weights of a different architecture under this header
    header = json.dumps(clf.header())
    other = "stgcn" if clf.header()["model"]["name"] == "mlp" else "mlp"
    other_clf = Classifier.create(other, _data())
    tensors = {k: v.contiguous() for k, v in other_clf.state_dict().items()}
    mismatched = tmp_path / "mismatch.safetensors"
    save_file(tensors, str(mismatched), metadata={"skelrobust": header})
    with pytest.raises(CheckpointError, match="do not match"):
        Classifier.load(mismatched)
    broken = tmp_path / "header.safetensors"
    save_file({"w": torch.zeros(2)}, str(broken), metadata={"skelrobust": "{not json"})
    with pytest.raises(CheckpointError, match="malformed"):
        Classifier.load(broken)


def test_predict_batches_match_full(clf):
    x = torch.from_numpy(_data(n=10, seed=3).x)
    full = clf.predict_logits(x, batch_size=64)
    parts = clf.predict_logits(x, batch_size=3)
    torch.testing.assert_close(full, parts, atol=1e-5, rtol=1e-5)
    assert torch.equal(clf.predict(x), full.argmax(1))
