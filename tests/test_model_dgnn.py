"""Tests of DGNN (skelrobust.models.dgnn): incidence matrices, the DGN block, the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrobust import get_skeleton
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.models import create_model
from skelrobust.models.blocks import motion_stream
from skelrobust.models.dgnn import DGNBlock, incidence_matrices

LAYOUTS = ("ntu25", "kinect20", "hdm05_31", "hdm05_25", "sbu15", "openpose18")


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _model(layout: str = "ntu25", num_bodies: int = 1, seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("dgnn", layout, num_classes=5, size="small", num_bodies=num_bodies, **kw)


# ----------------------------------------------------------------------------- graph
@pytest.mark.parametrize("layout", LAYOUTS)
def test_incidence_matrices_follow_the_bones(layout):
    skel = get_skeleton(layout)
    v = skel.num_joints
    s, t = incidence_matrices(skel)
    assert s.shape == t.shape == (v, v - 1)
    for j, (child, parent) in enumerate(skel.bones):
        assert np.flatnonzero(s[:, j]).tolist() == [parent]  # edge parent -> child
        assert np.flatnonzero(t[:, j]).tolist() == [child]
    # Every joint but the root is the target of exactly one edge; sources count children.
    in_degree = np.ones(v)
    in_degree[skel.center] = 0
    np.testing.assert_array_equal(t.sum(1), in_degree)
    children = np.bincount([p for p in skel.parents if p >= 0], minlength=v)
    np.testing.assert_array_equal(s.sum(1), children)
    # The directed graph is the skeleton's tree: S·Tᵀ is the parent -> child adjacency.
    np.testing.assert_array_equal(s @ t.T + t @ s.T, skel.adjacency)
    # The model's bone input is E = X·T − X·S, and every block starts from S and T.
    model = _model(layout)
    x = torch.randn(2, 3, 4, v, 1)
    ref = torch.einsum("nctvm,ve->ncte m".replace(" ", ""), x, torch.from_numpy(t - s))
    torch.testing.assert_close(model.bones(x), ref)
    for unit in model.spatial.units:
        assert torch.equal(unit.dgn.source.detach(), torch.from_numpy(s))
        assert torch.equal(unit.dgn.target.detach(), torch.from_numpy(t))


def test_dgn_block_matches_per_vertex_reference():
    """Vertex: [v, mean incoming edge, mean outgoing edge]; edge: [e, v'_source, v'_target]."""
    skel = get_skeleton("sbu15")
    s, t = incidence_matrices(skel)
    torch.manual_seed(0)
    block = DGNBlock(2, 3, s, t).eval()
    for bn in (block.bn_v, block.bn_e):
        torch.nn.init.uniform_(bn.running_mean, -0.5, 0.5)
    fv, fe = torch.randn(1, 2, 3, 15), torch.randn(1, 2, 3, 14)
    out_v, out_e = block(fv, fe)
    bones = [tuple(b) for b in skel.bones]

    def fc(conv, bn, z):  # z: (C,) per frame -> one output vector
        y = conv.weight[:, :, 0, 0] @ z + conv.bias
        return torch.relu((y - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
                          * bn.weight + bn.bias)

    for f in range(3):
        ref_v = []
        for i in range(15):
            inc = [j for j, (c, _) in enumerate(bones) if c == i]
            out = [j for j, (_, p) in enumerate(bones) if p == i]
            mean_in = fe[0, :, f, inc].mean(1) if inc else torch.zeros(2)
            mean_out = fe[0, :, f, out].mean(1) if out else torch.zeros(2)
            ref_v.append(fc(block.h_v, block.bn_v, torch.cat([fv[0, :, f, i], mean_in, mean_out])))
        ref_v = torch.stack(ref_v, 1)
        torch.testing.assert_close(out_v[0, :, f], ref_v, atol=1e-5, rtol=1e-5)
        for j, (c, p) in enumerate(bones):
            ref_e = fc(block.h_e, block.bn_e, torch.cat([fe[0, :, f, j], ref_v[:, p], ref_v[:, c]]))
            torch.testing.assert_close(out_e[0, :, f, j], ref_e, atol=1e-5, rtol=1e-5)


def test_adaptive_incidence_can_be_frozen_or_fixed():
    model = _model("kinect20")
    graph = [p for n, p in model.named_parameters() if n.endswith((".source", ".target"))]
    assert len(graph) == 2 * len(model.spatial.units)
    model.set_graph_trainable(False)
    assert not any(p.requires_grad for p in graph)
    model.set_graph_trainable(True)
    assert all(p.requires_grad for p in graph)
    fixed = _model("kinect20", adaptive=False)
    assert _params(model) - _params(fixed) == sum(p.numel() for p in graph)


# ----------------------------------------------------------------------------- network
def test_base_plan_and_parameter_count():
    model = create_model("dgnn", "ntu25", num_classes=60, size="base")
    units = model.spatial.units
    assert len(units) == 10
    assert [u.tcn_v.conv.out_channels for u in units] == [64] * 4 + [128] * 3 + [256] * 3
    assert [u.tcn_v.conv.stride[0] for u in units] == [1] * 4 + [2, 1, 1, 2, 1, 1]
    assert units[0].res_v is None and model.motion is None
    assert model.spatial.fc.in_features == 512  # pooled vertices and edges, concatenated
    # No count is published; this is the paper's plan with separate vertex/edge TCNs.
    assert abs(_params(model) - 6.26e6) / 6.26e6 < 0.01
    two = create_model("dgnn", "ntu25", num_classes=60, size="base", motion=True)
    assert _params(two) == 2 * _params(model)
    assert 0.1e6 < _params(_model()) < 0.5e6


def test_motion_stream_adds_scores():
    model = _model("ntu25", motion=True).eval()
    x = torch.randn(2, 3, 10, 25, 1)
    with torch.no_grad():
        bones = model.bones(x)
        spatial = model.spatial(x, bones)
        motion = model.motion(motion_stream(x), motion_stream(bones))
        torch.testing.assert_close(model(x), spatial + motion)


def test_errors():
    model = _model("ntu25")
    with pytest.raises(ShapeError, match=r"dgnn.*ntu25"):
        model(torch.randn(1, 3, 8, 20, 1))
    with pytest.raises(ShapeError):
        model(torch.randn(1, 3, 8, 25))
    with pytest.raises(ShapeError):
        model(torch.randn(1, 3, 8, 25, 2))  # num_bodies is fixed at construction
    with pytest.raises(ConfigError):
        create_model("dgnn", size="huge")
    with pytest.raises(ConfigError):
        create_model("dgnn", temporal_kernel=4)
