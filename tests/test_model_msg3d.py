"""Tests of MS-G3D (skelrobust.models.msg3d): graphs, window unfolding, G3D reach, the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrobust import get_skeleton
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.models import create_model
from skelrobust.models import graph as G
from skelrobust.models.msg3d import (
    G3DPathway,
    MultiScaleGraphConv,
    unfold_windows,
    window_hop_distance,
    window_multiscale_adjacency,
)

LAYOUTS = ("ntu25", "kinect20", "hdm05_31", "hdm05_25", "sbu15", "openpose18")


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _model(layout: str = "ntu25", num_bodies: int = 1, seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("msg3d", layout, num_classes=5, size="small", num_bodies=num_bodies, **kw)


# ----------------------------------------------------------------------------- graphs
def _bfs_hops(a: np.ndarray) -> np.ndarray:
    """Hop distances by repeated boolean products (the official k_adjacency's matrix powers)."""
    n = len(a)
    step = (a + np.eye(n)) > 0
    reach, hops = np.eye(n, dtype=bool), np.full((n, n), -1)
    hops[reach] = 0
    for k in range(1, n):
        new = (reach.astype(int) @ step.astype(int)) > 0
        hops[new & ~reach] = k
        if (new == reach).all():
            break
        reach = new
    return hops


@pytest.mark.parametrize("layout", ["ntu25", "sbu15"])
@pytest.mark.parametrize("window", [1, 3, 5])
def test_window_hops_match_tiled_graph(layout, window):
    skel = get_skeleton(layout)
    tiled = np.tile(skel.adjacency + np.eye(skel.num_joints), (window, window))
    np.testing.assert_array_equal(window_hop_distance(skel, window), _bfs_hops(tiled))


def test_window_multiscale_adjacency():
    skel = get_skeleton("ntu25")
    a = window_multiscale_adjacency(skel, 4, 3)
    assert a.shape == (4, 75, 75) and a.dtype == np.float32
    np.testing.assert_array_equal(a[0], np.eye(75))
    np.testing.assert_allclose(a, a.transpose(0, 2, 1), atol=1e-7)
    elbow, shoulder = skel.joint_index("left_elbow"), skel.joint_index("left_shoulder")
    # Scale 1 links a joint to itself and its neighbours in every frame of the window.
    assert a[1][elbow, 2 * 25 + elbow] > 0 and a[1][elbow, 25 + shoulder] > 0
    assert a[2][elbow, 25 + shoulder] == 0  # disentangled: one hop is not in scale 2
    # A window of one frame is the joint graph's stack.
    np.testing.assert_allclose(window_multiscale_adjacency(skel, 5, 1),
                               G.multiscale_adjacency(skel, 5), atol=1e-7)
    with pytest.raises(ConfigError):
        window_multiscale_adjacency(skel, 0, 3)


@pytest.mark.parametrize(("window", "stride", "dilation"),
                         [(3, 1, 1), (3, 2, 1), (3, 1, 2), (5, 1, 1), (5, 2, 1), (3, 2, 2)])
@pytest.mark.parametrize("t", [1, 8, 9])
def test_unfold_windows_matches_reference(window, stride, dilation, t):
    x = torch.randn(2, 3, t, 4)
    out = unfold_windows(x, window, stride, dilation)
    pad = dilation * (window - 1) // 2
    starts = range(-pad, t + pad - dilation * (window - 1), stride)
    assert out.shape == (2, 3, -(-t // stride), window * 4)
    for w, s in enumerate(starts):
        for i in range(window):
            f = s + i * dilation
            ref = x[:, :, f] if 0 <= f < t else torch.zeros(2, 3, 4)
            torch.testing.assert_close(out[:, :, w, i * 4:(i + 1) * 4], ref)


def test_multiscale_graph_conv_matches_formula():
    torch.manual_seed(0)
    a = G.multiscale_adjacency("kinect20", 3)
    conv = MultiScaleGraphConv(4, 6, a).eval()
    torch.nn.init.uniform_(conv.A_res, -0.1, 0.1)
    x = torch.randn(2, 4, 5, 20)
    w = conv.conv.weight.view(6, 4, 3)  # [o, c, k]
    ak = torch.from_numpy(a) + conv.A_res
    agg = torch.einsum("nctv,kvw->nkctw", x, ak)
    ref = torch.einsum("ock,nkctw->notw", w, agg) + conv.conv.bias.view(1, 6, 1, 1)
    ref = torch.relu(conv.bn(ref))
    torch.testing.assert_close(conv(x), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("window", "dilation"), [(3, 1), (3, 2), (5, 1)])
def test_g3d_reaches_across_space_and_time(window, dilation):
    """One G3D pathway couples joint v at frame t with neighbours in the window's frames only."""
    skel = get_skeleton("ntu25")
    torch.manual_seed(0)
    g3d = G3DPathway(3, 6, skel, num_scales=2, window=window, dilation=dilation).eval()
    with torch.no_grad():
        g3d.gcn.A_res.zero_()  # the learnable masks are dense (±1e-6): test the fixed graph
    x = torch.randn(1, 3, 12, 25, requires_grad=True)
    elbow, shoulder = skel.joint_index("left_elbow"), skel.joint_index("left_shoulder")
    t = 6
    g3d(x)[0, :, t, elbow].sum().backward()
    grad = x.grad[0].abs().sum(0)  # (T, V)
    in_window = {t + (i - window // 2) * dilation for i in range(window)}
    for f in range(12):
        assert (grad[f, shoulder] > 0) == (f in in_window), f
    # Two scales reach one hop only: the wrist's neighbour (hand) is two hops from the elbow.
    assert grad[:, skel.joint_index("left_hand")].sum() == 0


# ----------------------------------------------------------------------------- network
def test_base_parameter_count():
    model = create_model("msg3d", "ntu25", num_classes=60, size="base", num_bodies=2)
    assert abs(_params(model) - 3.2e6) / 3.2e6 < 0.05
    assert [b.gcn3d[0].out_bn.num_features for b in model.blocks] == [96, 192, 384]
    assert [len(b.gcn3d) for b in model.blocks] == [2, 2, 2]
    assert model.blocks[0].sgcn[0].num_scales == 13
    assert model.blocks[0].gcn3d[0].gcn.num_scales == 6
    dilated = create_model("msg3d", "ntu25", num_classes=60, size="base",
                           windows=((3, 1), (3, 2)))
    assert 2.6e6 < _params(dilated) < _params(model)
    small = create_model("msg3d", "ntu25", num_classes=60, size="small")
    assert 0.1e6 < _params(small) < 0.5e6


def test_errors():
    model = _model("ntu25")
    with pytest.raises(ShapeError, match=r"msg3d.*ntu25"):
        model(torch.randn(1, 3, 8, 20, 1))
    with pytest.raises(ShapeError):
        model(torch.randn(1, 3, 8, 25))
    with pytest.raises(ShapeError, match=r"1\)"):
        model(torch.randn(1, 3, 8, 25, 2))  # num_bodies is fixed at construction
    with pytest.raises(ConfigError):
        create_model("msg3d", size="huge")
    with pytest.raises(ConfigError):
        create_model("msg3d", windows=((4, 1),))
    with pytest.raises(ConfigError):
        create_model("msg3d", windows=((3, 0),))
    with pytest.raises(ConfigError):
        create_model("msg3d", gcn_scales=0)
    with pytest.raises(ConfigError):
        create_model("msg3d", windows=())
