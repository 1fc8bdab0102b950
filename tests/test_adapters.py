"""Layout adapters (pyskl, SGN) and wrapping user modules as a Classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from skelrobust.classifier import Classifier
from skelrobust.errors import CheckpointError, ConfigError, ShapeError
from skelrobust.models.adapters import (
    FromPyskl,
    FromSGN,
    adapt_module,
    from_pyskl,
    from_sgn,
    to_pyskl,
    to_sgn,
)
from skelrobust.models.registry import create_model

dims = st.tuples(*(st.integers(1, 4) for _ in range(5)))


def _motion(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@settings(max_examples=30, deadline=None)
@given(dims)
def test_pyskl_roundtrip_and_index_map(shape):
    x = _motion(shape)
    p = to_pyskl(x)
    n, c, t, v, m = shape
    assert p.shape == (n, m, t, v, c) and p.flags["C_CONTIGUOUS"]
    idx = (n - 1, c - 1, t // 2, v - 1, m - 1)
    assert p[idx[0], idx[4], idx[2], idx[3], idx[1]] == x[idx]
    np.testing.assert_array_equal(from_pyskl(p), x)
    xt = torch.from_numpy(x)
    assert torch.equal(from_pyskl(to_pyskl(xt)), xt)
    assert torch.equal(to_pyskl(xt), torch.from_numpy(p))


@settings(max_examples=30, deadline=None)
@given(dims)
def test_sgn_roundtrip_and_index_map(shape):
    n, c, t, v, _ = shape
    x = _motion((n, c, t, v, 1))
    s = to_sgn(x)
    assert s.shape == (n, t, v * c)
    # the coordinates of a joint are adjacent: x_sgn[n, t, v*C + c] = x[n, c, t, v, 0]
    assert s[n - 1, t - 1, (v - 1) * c + (c - 1)] == x[n - 1, c - 1, t - 1, v - 1, 0]
    assert s[0, 0, 0] == x[0, 0, 0, 0, 0]
    np.testing.assert_array_equal(from_sgn(s, channels=c), x)
    np.testing.assert_array_equal(to_sgn(from_sgn(s, channels=c)), s)
    xt = torch.from_numpy(x)
    assert torch.equal(from_sgn(to_sgn(xt), channels=c), xt)
    assert torch.equal(to_sgn(xt), torch.from_numpy(s))


def test_adapters_keep_gradients():
    x = torch.randn(2, 3, 5, 4, 1, requires_grad=True)
    (to_pyskl(x) * torch.arange(3.0)).sum().backward()
    assert torch.equal(x.grad[:, 2], torch.full_like(x.grad[:, 2], 2.0))
    x.grad = None
    to_sgn(x)[..., 4].sum().backward()  # joint 1, coordinate y
    assert x.grad[:, 1, :, 1].eq(1).all() and x.grad.sum() == 2 * 5


def test_adapter_shape_errors():
    with pytest.raises(ShapeError, match="to_sgn"):
        to_sgn(np.zeros((2, 3, 4, 5, 2), np.float32))
    with pytest.raises(ShapeError, match="from_sgn"):
        from_sgn(np.zeros((2, 4, 10), np.float32))
    with pytest.raises(ShapeError, match="to_pyskl"):
        to_pyskl(torch.zeros(2, 3, 4, 5))
    with pytest.raises(ConfigError, match="input_layout"):
        adapt_module(nn.Identity(), "nchw")
    with pytest.raises(ConfigError, match=r"nn\.Module"):
        adapt_module(lambda x: x, "pyskl")


class PysklNet(nn.Module):
    """A user model in pyskl's layout: refuses anything but (N, M, T, V, C=3)."""

    def __init__(self, v=25, k=5):
        super().__init__()
        self.fc = nn.Linear(v * 3, k)

    def forward(self, x):
        assert x.dim() == 5 and x.shape[-1] == 3, x.shape
        n, m, t, v, c = x.shape
        return self.fc(x.reshape(n, m, t, v * c)).mean(dim=(1, 2))


class SGNNet(nn.Module):
    """A user model in SGN's layout: (N, T, V*3), one body."""

    def __init__(self, v=25, k=5):
        super().__init__()
        self.fc1 = nn.Linear(v * 3, 16)
        self.fc2 = nn.Linear(16, k)

    def forward(self, x):
        assert x.dim() == 3, x.shape
        return self.fc2(torch.tanh(self.fc1(x)).mean(dim=1))


def test_from_pyskl_wrapper_matches_manual_call():
    torch.manual_seed(0)
    net = PysklNet()
    x = torch.randn(3, 3, 8, 25, 2)
    assert torch.equal(FromPyskl(net)(x), net(x.permute(0, 4, 2, 3, 1)))


def test_from_sgn_wrapper_one_and_two_bodies():
    torch.manual_seed(0)
    net = SGNNet()
    x = torch.randn(3, 3, 8, 25, 2)
    one = x[..., :1]
    sgn_one = one[..., 0].permute(0, 2, 3, 1).reshape(3, 8, 75)
    assert torch.equal(FromSGN(net)(one), net(sgn_one))
    per_body = [net(to_sgn(x[..., m:m + 1])) for m in range(2)]
    torch.testing.assert_close(FromSGN(net)(x), (per_body[0] + per_body[1]) / 2)


@pytest.mark.parametrize(("layout", "net_cls", "m"),
                         [("pyskl", PysklNet, 2), ("sgn", SGNNet, 1), ("nctvm", None, 1)])
def test_classifier_from_module_save_load(layout, net_cls, m, tmp_path):
    torch.manual_seed(0)
    classes = list("abcde")
    if net_cls is None:
        def make():
            return nn.Sequential(nn.Flatten(), nn.LazyLinear(5))
    else:
        make = net_cls
    mean = torch.randn(1, 3, 1, 25, 1) * 0.1
    std = torch.rand(1, 3, 1, 25, 1) + 0.5
    net = make()
    clf = Classifier.from_module(net, "ntu25", classes, input_layout=layout, mean=mean, std=std,
                                 preprocess={"num_frames": 8}).eval()
    x = torch.randn(4, 3, 8, 25, m)
    ref = clf(x)
    assert ref.shape == (4, 5)
    # the module sees normalised motion in its own layout
    xn = (x - mean) / std
    direct = {"pyskl": lambda: net(to_pyskl(xn)), "sgn": lambda: net(to_sgn(xn)),
              "nctvm": lambda: net(xn)}[layout]()
    torch.testing.assert_close(ref, direct)
    path = clf.save(tmp_path / "user")
    with pytest.raises(CheckpointError, match=r"module=") as err:
        Classifier.load(path)
    assert type(net).__qualname__ in str(err.value)
    fresh = make()
    if layout == "nctvm":
        fresh(torch.zeros(1, 3, 8, 25, 1))  # materialise the lazy layer
    back = Classifier.load(path, module=fresh)
    assert torch.equal(back(x), ref)
    assert back.external == clf.external == {
        "input_layout": layout, "class": f"{type(net).__module__}.{type(net).__qualname__}"}
    assert back.preprocess == {"num_frames": 8} and back.class_names == classes
    assert torch.equal(back.mean, clf.mean) and torch.equal(back.std, clf.std)


def test_from_module_gradients_and_errors(tmp_path):
    torch.manual_seed(0)
    clf = Classifier.from_module(SGNNet(), "ntu25", list("abcde"), input_layout="sgn")
    x = torch.randn(2, 3, 8, 25, 1, requires_grad=True)
    clf(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="input_layout"):
        Classifier.from_module(SGNNet(), "ntu25", list("abcde"), input_layout="ntcv")
    with pytest.raises(ShapeError):  # the classifier still checks library motion
        clf(torch.zeros(2, 8, 75))
    path = clf.save(tmp_path / "sgn")
    with pytest.raises(CheckpointError, match="do not match"):
        Classifier.load(path, module=SGNNet(k=7))


def test_registry_weights_into_user_module(tmp_path):
    torch.manual_seed(0)
    model = create_model("mlp", skeleton="ntu25", num_classes=4)
    clf = Classifier(model, "ntu25", list("abcd")).eval()
    path = clf.save(tmp_path / "mlp")
    user = create_model("mlp", skeleton="ntu25", num_classes=4)
    back = Classifier.load(path, module=user)
    x = torch.randn(2, 3, 8, 25, 1)
    assert torch.equal(back(x), clf(x)) and back.model is user
