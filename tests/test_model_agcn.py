"""Tests of the 2s-AGCN victim model (skelrobust.models.agcn)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from skelrobust import get_skeleton, list_skeletons
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.models import create_model, list_models
from skelrobust.models.agcn import AdaptiveGraphConv
from skelrobust.models.blocks import bone_stream
from skelrobust.models.graph import inward_outward_partition

NUM_CLASSES = 5


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _model(layout: str = "ntu25", seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    kw.setdefault("num_classes", NUM_CLASSES)
    return create_model("agcn", layout, **kw)


def _warm(model: torch.nn.Module, m: int, v: int = 25) -> torch.nn.Module:
    """Move the BatchNorm running statistics away from their init, then eval()."""
    gen = torch.Generator().manual_seed(3)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(6, 3, 16, v, m, generator=gen) * 0.3 + 0.1)
    return model.eval()


def test_registered():
    assert "agcn" in list_models()


def test_base_parameter_count_and_plan():
    joint = create_model("agcn", "ntu25", num_classes=60, size="base", num_bodies=2)
    assert abs(_params(joint) - 3.47e6) / 3.47e6 < 0.05  # Shi et al.: 3.47 M per stream
    assert len(joint.units) == 10
    widths = [u.tcn1.conv.out_channels for u in joint.units]
    assert widths == [64, 64, 64, 64, 128, 128, 128, 256, 256, 256]
    strides = [u.tcn1.conv.stride[0] for u in joint.units]
    assert [i + 1 for i, s in enumerate(strides) if s == 2] == [5, 8]
    assert all(u.tcn1.conv.kernel_size == (9, 1) for u in joint.units)
    assert joint.units[0].residual is None and joint.units[1].residual is not None
    assert joint.data_bn.num_features == 2 * 25 * 3  # M·V·C
    two = create_model("agcn", "ntu25", num_classes=60, size="base", num_bodies=2, stream="two")
    assert _params(two) == 2 * _params(joint)
    small = create_model("agcn", "ntu25", num_classes=60, size="small", num_bodies=2)
    assert 1e5 < _params(small) < 5e5


def test_official_parameter_names_and_init():
    model = _model(size="base", num_classes=60, num_bodies=2)
    sd = model.state_dict()
    assert sd["units.0.gcn1.PA"].shape == (3, 25, 25)
    assert sd["units.0.gcn1.conv_a.2.weight"].shape == (16, 3, 1, 1)  # C_e = C_out / 4
    assert sd["units.0.gcn1.conv_d.0.weight"].shape == (64, 3, 1, 1)
    assert sd["units.4.residual.conv.weight"].shape == (128, 64, 1, 1)
    assert sd["units.7.gcn1.down.0.weight"].shape == (256, 128, 1, 1)
    assert "A" not in sd  # the fixed graph comes from the layout, not the checkpoint
    assert torch.all(sd["units.3.gcn1.PA"] == 1e-6)  # B_k starts at a small constant
    assert torch.all(sd["units.3.gcn1.bn.weight"] == 1e-6)
    assert sd["fc.weight"].std().item() == pytest.approx((2 / 60) ** 0.5, rel=0.1)


def _reference_agc(gc: AdaptiveGraphConv, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Shi et al., eqs. 3-4, one subset at a time: ``Σ_k W_k X (A_k + B_k + C_k)``."""
    n, c, t, v = x.shape
    y = 0
    for k in range(3):
        theta = gc.conv_a[k](x).permute(0, 3, 1, 2).reshape(n, v, -1)  # (N, V, C_e·T)
        phi = gc.conv_b[k](x).reshape(n, -1, v)
        ck = torch.softmax(theta @ phi / theta.shape[-1], dim=-2)
        g = ck + a[k] + gc.PA[k]
        y = y + gc.conv_d[k]((x.reshape(n, c * t, v) @ g).view(n, c, t, v))
    return torch.relu(gc.bn(y) + gc.down(x))


@pytest.mark.parametrize(("c_in", "c_out"), [(3, 8), (8, 8)])
def test_adaptive_graph_conv_matches_the_equation(c_in, c_out):
    torch.manual_seed(0)
    a = torch.from_numpy(inward_outward_partition("kinect20"))
    gc = AdaptiveGraphConv(c_in, c_out, 3, 20).eval()
    with torch.no_grad():
        gc.PA.normal_(0, 0.1)
        gc.bn.weight.fill_(1.3)
    x = torch.randn(2, c_in, 7, 20)
    torch.testing.assert_close(gc(x, a), _reference_agc(gc, x, a), atol=1e-5, rtol=1e-5)
    g = gc.graphs(x, a) - (a + gc.PA)
    torch.testing.assert_close(g.sum(-2), torch.ones(2, 3, 20))  # C_k: columns sum to 1


@pytest.mark.parametrize("layout", list_skeletons())
def test_output_shapes_on_every_layout(layout):
    v = get_skeleton(layout).num_joints
    for m in (1, 2):
        model = _model(layout, num_bodies=m)
        for training in (True, False):
            model.train(training)
            with torch.no_grad():
                out = model(torch.randn(2, 3, 16, v, m))
            assert out.shape == (2, NUM_CLASSES) and torch.isfinite(out).all()
    with torch.no_grad():  # single frame, odd length, two streams
        assert _model(layout, stream="two")(torch.randn(2, 3, 1, v, 1)).shape == (2, NUM_CLASSES)
        assert _model(layout, stream="bone")(torch.randn(2, 3, 11, v, 1)).shape == (
            2, NUM_CLASSES)


@pytest.mark.parametrize("stream", ["joint", "two"])
def test_eval_batch_independence(stream):
    model = _warm(_model(stream=stream, num_bodies=2), m=2)
    x = torch.randn(4, 3, 16, 25, 2)
    x[1, :, 10:] = 0  # a padded clip
    x[2, ..., 1] = 0  # an absent second body
    with torch.no_grad():
        batch = model(x)
        alone = torch.cat([model(x[i:i + 1]) for i in range(len(x))])
    torch.testing.assert_close(alone, batch, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        assert torch.equal(model(x), batch)


def test_two_stream_logits_are_the_sum_of_the_streams():
    model = _warm(_model(stream="two"), m=1)
    x = torch.randn(3, 3, 16, 25, 1)
    with torch.no_grad():
        joint, bone, fused = model.joint(x), model.bone(x), model(x)
    torch.testing.assert_close(fused, joint + bone)
    assert model.joint.stream == "joint" and model.bone.stream == "bone"
    assert not torch.allclose(joint, bone, atol=1e-3)  # the streams differ


def test_bone_stream_feeds_bone_vectors_and_ignores_translation():
    bone = _warm(_model(stream="bone"), m=1)
    joint = _model(stream="joint").eval()
    joint.load_state_dict(bone.state_dict())  # same weights, different input
    x = torch.randn(3, 3, 16, 25, 1)
    shift = torch.randn(3, 3, 1, 1, 1) * 2.0  # a global translation per sample
    with torch.no_grad():
        out = bone(x)
        torch.testing.assert_close(joint(bone_stream(x, get_skeleton("ntu25"))), out)
        torch.testing.assert_close(bone(x + shift), out, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(joint(x + shift), joint(x), atol=1e-2)


def test_gradients_reach_input_and_every_parameter():
    model = _model("kinect20", stream="two").eval()
    x = torch.randn(3, 3, 12, 20, 1, requires_grad=True)
    F.cross_entropy(model(x), torch.tensor([0, 1, 2])).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


def test_wrong_shapes_are_clear_errors():
    model = _model(num_bodies=2)
    with pytest.raises(ShapeError, match=r"agcn.*\(N, 3, T, 25, 2\).*ntu25"):
        model(torch.randn(1, 3, 8, 20, 2))
    with pytest.raises(ShapeError, match="agcn"):
        model(torch.randn(1, 3, 8, 25, 1))  # M is fixed by the input BatchNorm
    with pytest.raises(ShapeError):
        model(torch.randn(1, 3, 8, 25))
    with pytest.raises(ShapeError):
        _model(stream="two")(torch.randn(1, 2, 8, 25, 1))


def test_bad_config():
    with pytest.raises(ConfigError, match="size"):
        _model(size="huge")
    with pytest.raises(ConfigError, match="stream"):
        _model(stream="motion")
    with pytest.raises(ConfigError):
        _model(temporal_kernel=4)
    with pytest.raises(ConfigError):
        _model(embed_factor=0)


def test_deterministic_under_a_seed():
    x = torch.randn(2, 3, 16, 25, 1)
    a, b = _model(stream="bone", seed=7), _model(stream="bone", seed=7)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    c = _model(stream="bone", seed=8)
    assert not torch.equal(a.fc.weight, c.fc.weight)
