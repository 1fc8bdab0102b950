"""Tests of the CTR-GCN victim model (skelrobust.models.ctrgcn)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from skelrobust.errors import ConfigError, ShapeError
from skelrobust.models import create_model, list_models
from skelrobust.models.blocks import MultiScaleTemporalConv
from skelrobust.models.ctrgcn import ChannelTopologyGraphConv
from skelrobust.models.graph import inward_outward_partition

NUM_CLASSES = 5


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _model(layout: str = "ntu25", seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    kw.setdefault("num_classes", NUM_CLASSES)
    return create_model("ctrgcn", layout, **kw)


def test_registered():
    assert "ctrgcn" in list_models()


def test_base_parameter_count_and_plan():
    model = create_model("ctrgcn", "ntu25", num_classes=60, size="base", num_bodies=2)
    assert abs(_params(model) - 1.46e6) / 1.46e6 < 0.05  # Chen et al.: 1.46 M
    assert len(model.units) == 10
    assert [u.gcn1.out_channels for u in model.units] == [64] * 4 + [128] * 3 + [256] * 3
    strides = [u.tcn1.branches[-1][0].stride[0] for u in model.units]
    assert [i + 1 for i, s in enumerate(strides) if s == 2] == [5, 8]
    tcn = model.units[1].tcn1
    assert isinstance(tcn, MultiScaleTemporalConv) and tcn.residual is None
    assert not tcn.activation and len(tcn.branches) == 4  # dilations (1, 2) + max + 1×1
    assert [b[-1].conv.kernel_size[0] for b in tcn.branches[:2]] == [5, 5]
    assert [b[-1].conv.dilation[0] for b in tcn.branches[:2]] == [1, 2]
    assert model.units[0].residual is None and model.units[4].residual is not None
    # Embedding widths: 8 at the input unit, C_in / 8 elsewhere.
    assert [u.gcn1.rel_channels for u in model.units] == [8, 8, 8, 8, 8, 16, 16, 16, 32, 32]
    assert model.data_bn.num_features == 2 * 25 * 3
    small = create_model("ctrgcn", "ntu25", num_classes=60, size="small", num_bodies=2)
    assert 1e5 < _params(small) < 5e5


def test_official_parameter_names_and_init():
    sd = _model(size="base", num_classes=60, num_bodies=2).state_dict()
    assert sd["units.0.gcn1.convs.2.conv1.weight"].shape == (8, 3, 1, 1)
    assert sd["units.5.gcn1.convs.0.conv4.weight"].shape == (128, 16, 1, 1)
    assert sd["units.8.gcn1.convs.1.conv3.weight"].shape == (256, 256, 1, 1)
    assert sd["units.4.residual.conv.weight"].shape == (128, 64, 1, 1)
    assert sd["units.4.gcn1.down.0.weight"].shape == (128, 64, 1, 1)
    a = torch.from_numpy(inward_outward_partition("ntu25"))
    assert torch.equal(sd["units.2.gcn1.PA"], a)  # shared topology starts at the partition
    assert sd["units.2.gcn1.alpha"].item() == 0.0
    assert torch.all(sd["units.2.gcn1.bn.weight"] == 1e-6)


def _reference_ctrgc(gc: ChannelTopologyGraphConv, x: torch.Tensor) -> torch.Tensor:
    """Chen et al., eqs. 3-6, one subset at a time, receiver-first as in the official code."""
    y = 0
    for k, sub in enumerate(gc.convs):
        x1, x2, x3 = sub.conv1(x).mean(2), sub.conv2(x).mean(2), sub.conv3(x)
        m = torch.tanh(x1[..., :, None] - x2[..., None, :])  # (N, R, V, V)
        r = sub.conv4(m) * gc.alpha + gc.PA[k]  # (N, C_out, V, V)
        y = y + torch.einsum("ncuv,nctv->nctu", r, x3)
    return torch.relu(gc.bn(y) + gc.down(x))


@pytest.mark.parametrize(("c_in", "c_out", "rel"), [(3, 8, 8), (16, 24, 2)])
def test_ctr_gc_matches_the_equation(c_in, c_out, rel):
    torch.manual_seed(0)
    a = torch.from_numpy(inward_outward_partition("sbu15"))
    gc = ChannelTopologyGraphConv(c_in, c_out, a, rel).eval()
    with torch.no_grad():
        gc.alpha.fill_(0.7)
        gc.PA.add_(torch.randn_like(gc.PA) * 0.1)
        gc.bn.weight.fill_(1.3)
    x = torch.randn(2, c_in, 7, 15)
    torch.testing.assert_close(gc(x), _reference_ctrgc(gc, x), atol=1e-5, rtol=1e-5)
    r = gc.topologies(x)
    assert r.shape == (2, 3, c_out, 15, 15)
    assert not torch.allclose(r[:, :, 0], r[:, :, 1])  # one topology per channel
    with torch.no_grad():
        gc.alpha.zero_()  # without refinement every channel shares A
    torch.testing.assert_close(gc.topologies(x), gc.PA[None, :, None].expand_as(r))


def test_refinement_learns_from_zero_alpha():
    model = _model()
    x = torch.randn(2, 3, 16, 25, 1)
    F.cross_entropy(model(x), torch.tensor([0, 1])).backward()
    gc = model.units[2].gcn1
    assert gc.alpha.grad.abs().item() > 0
    assert gc.PA.grad.abs().sum() > 0


def test_wrong_shapes_are_clear_errors():
    model = _model(num_bodies=2)
    with pytest.raises(ShapeError, match=r"ctrgcn.*\(N, 3, T, 25, 2\).*ntu25"):
        model(torch.randn(1, 3, 8, 20, 2))
    with pytest.raises(ShapeError, match="ctrgcn"):
        model(torch.randn(1, 3, 8, 25, 1))  # M is fixed by the input BatchNorm
    with pytest.raises(ShapeError):
        model(torch.randn(1, 3, 8, 25))
    with pytest.raises(ShapeError):
        model(torch.randn(1, 2, 8, 25, 2))


def test_bad_config():
    with pytest.raises(ConfigError, match="size"):
        _model(size="huge")
    with pytest.raises(ConfigError):
        _model(rel_reduction=0)
    with pytest.raises(ConfigError):
        _model(dropout=1.0)


def test_deterministic_under_a_seed():
    x = torch.randn(2, 3, 16, 25, 1)
    a, b = _model(seed=7), _model(seed=7)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    assert not torch.equal(a.fc.weight, _model(seed=8).fc.weight)
