"""forward_features / forward_head of every model and of the Classifier (timm's split).

``forward(x) == forward_head(forward_features(x))`` bit for bit, except for the
per-frame readouts (HRNN, single-frame MLP), where the pooled features give the
logits up to float rounding; features are ``(N, num_features)``; the split adds
no parameters or buffers, so checkpoints saved before it still load.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from skelrobust.classifier import Classifier
from skelrobust.data.dataset import SkeletonDataset
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.models import create_model, list_models

K = 5
LAYOUT, V = "sbu15", 15  # a small layout keeps the tests fast

# (name, kwargs, state_dict size and digest of its sorted key names before the split,
# for one body: a change means old checkpoints no longer load)
VARIANTS: list[tuple[str, dict, int, str]] = [
    ("hrnn", {}, 103, "91163575642d"),
    ("hrnn", {"time_pool": "sum", "dropout": 0.3}, 103, "91163575642d"),
    ("stgcn", {}, 119, "a02d6d3199c2"),
    ("asgcn", {"prediction_head": True}, 222, "b6431bd16950"),
    ("asgcn", {"actional_links": "none"}, 119, "bbfbe6eb6890"),
    ("dgnn", {}, 220, "2b75823a5d34"),
    ("dgnn", {"motion": True}, 440, "6ba14190dd66"),
    ("agcn", {}, 242, "4e61af88f61d"),
    ("agcn", {"stream": "two"}, 484, "ea56f2a7bf53"),
    ("ctrgcn", {"dropout": 0.3}, 524, "a703113167ee"),
    ("sgn", {}, 70, "630e2135cbde"),
    ("sgn", {"multi_body": "mean"}, 70, "630e2135cbde"),
    ("msg3d", {}, 513, "248efb220b7d"),
    ("shiftgcn", {}, 219, "9dd358a8a83c"),
    ("mlp", {}, 10, "ca37734b8288"),
    ("mlp", {"temporal": False}, 10, "ca37734b8288"),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}"
       for n, kw, _, _ in VARIANTS]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is faster, and on a busy machine far faster, than two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _approximate(name: str, kw: dict) -> bool:
    """Per-frame readouts: head(features) equals forward up to float rounding only."""
    return name == "hrnn" or (name == "mlp" and kw.get("temporal") is False)


def _model(name: str, kw: dict, bodies: int = 1) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, LAYOUT, num_classes=K, size="small", num_bodies=bodies, **kw)


def _motion(n: int = 3, t: int = 12, bodies: int = 1, seed: int = 1) -> torch.Tensor:
    x = torch.randn(n, 3, t, V, bodies, generator=torch.Generator().manual_seed(seed))
    x[1, :, t - 4:] = 0  # a padded clip
    return x


def test_every_registered_model_is_covered():
    assert {name for name, *_ in VARIANTS} == set(list_models())


@pytest.mark.parametrize(("name", "kw", "n_keys", "digest"), VARIANTS, ids=IDS)
def test_forward_is_head_of_features(name, kw, n_keys, digest):
    bodies = 2
    model = _model(name, kw, bodies).eval()
    x = _motion(bodies=bodies)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
        out = model.forward_head(feats)
    assert isinstance(model.num_features, int)
    assert feats.shape == (3, model.num_features)
    assert out.shape == logits.shape == (3, K)
    if _approximate(name, kw):
        torch.testing.assert_close(out, logits, rtol=1e-5, atol=1e-6)
    else:
        assert torch.equal(out, logits)
        # the same holds in training mode (batch statistics, dropout, Gumbel samples)
        model.train()
        with torch.no_grad():
            torch.manual_seed(7)
            train_logits = model(x)
            torch.manual_seed(7)
            train_out = model.forward_head(model.forward_features(x))
        assert torch.equal(train_out, train_logits)


@pytest.mark.parametrize(("name", "kw", "n_keys", "digest"), VARIANTS, ids=IDS)
def test_state_dict_unchanged_and_gradients_flow(name, kw, n_keys, digest):
    model = _model(name, kw).eval()
    keys = sorted(model.state_dict())
    assert (len(keys), hashlib.sha1("\n".join(keys).encode()).hexdigest()[:12]) == (
        n_keys, digest)
    x = _motion().requires_grad_(True)
    loss = nn.functional.cross_entropy(model.forward_head(model.forward_features(x)),
                                       torch.tensor([0, 1, 2]))
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def _data(n: int = 3, t: int = 12) -> SkeletonDataset:
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 0.5, size=(n, 3, t, V, 1)).astype(np.float32)
    return SkeletonDataset(x=x, y=np.arange(n) % 2, class_names=["a", "b"],
                           skeleton=LAYOUT, name="toy")


@pytest.mark.parametrize(("name", "kw", "n_keys", "digest"), VARIANTS, ids=IDS)
def test_classifier_features_and_reload(name, kw, n_keys, digest, tmp_path):
    torch.manual_seed(0)
    clf = Classifier.create(name, _data(), size="small", **kw).eval()
    x = _data().x  # numpy input, converted as by forward
    with torch.no_grad():
        feats = clf.forward_features(x)
        logits = clf(x)
        out = clf.forward_head(feats)
    assert clf.num_features == clf.model.num_features
    assert feats.shape == (len(x), clf.num_features)
    if _approximate(name, kw):
        torch.testing.assert_close(out, logits, rtol=1e-5, atol=1e-6)
    else:
        assert torch.equal(out, logits)
    with torch.no_grad():  # normalisation happens once, before the model
        assert torch.equal(feats, clf.model.forward_features(
            (torch.from_numpy(x) - clf.mean) / clf.std))
    back = Classifier.load(clf.save(tmp_path / "ckpt"))
    with torch.no_grad():
        assert torch.equal(back(x), logits)
        assert torch.equal(back.forward_features(x), feats)


def test_classifier_features_validate_input():
    torch.manual_seed(0)
    clf = Classifier.create("stgcn", _data(), size="small").eval()
    with pytest.raises(ShapeError):
        clf.forward_features(torch.zeros(2, 3, 12, V))
    x = torch.from_numpy(_data().x).double().requires_grad_(True)  # cast, gradients kept
    logits = clf.forward_head(clf.forward_features(x))
    assert logits.dtype == torch.float32
    (grad,) = torch.autograd.grad(logits.sum(), x)
    assert grad.dtype == torch.float64 and grad.abs().sum() > 0


class _External(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * V, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 4)).flatten(1))


@pytest.mark.parametrize("layout", ["nctvm", "pyskl"])
def test_external_module_without_features_is_a_config_error(layout):
    net = _External()
    module = net if layout == "nctvm" else _Pyskl(net)
    clf = Classifier.from_module(module, LAYOUT, ["a", "b"], input_layout=layout)
    x = _data().x
    assert clf(x).shape == (3, 2)  # logits still work
    for call in (lambda: clf.forward_features(x), lambda: clf.forward_head(torch.zeros(3, 8)),
                 lambda: clf.num_features):
        with pytest.raises(ConfigError, match="forward_features/forward_head"):
            call()


class _Pyskl(nn.Module):
    """``_External`` for pyskl's ``(N, M, T, V, C)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.permute(0, 4, 2, 3, 1))


def test_external_module_with_features_is_used():
    class Split(_External):
        num_features = 3 * V

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 4)).flatten(1)

        def forward_head(self, f: torch.Tensor) -> torch.Tensor:
            return self.fc(f)

    clf = Classifier.from_module(Split(), LAYOUT, ["a", "b"])
    x = _data().x
    with torch.no_grad():
        assert torch.equal(clf.forward_head(clf.forward_features(x)), clf(x))
    assert clf.num_features == 3 * V
