"""Tests of the SGN victim model (skelrobust.models.sgn)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from skelrobust.errors import ConfigError, ShapeError
from skelrobust.models import create_model
from skelrobust.models.sgn import segment_weights

LAYOUTS = ["ntu25", "kinect20", "hdm05_31", "hdm05_25", "sbu15", "openpose18"]
K = 6


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _model(layout: str = "ntu25", size: str = "small", **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("sgn", layout, num_classes=K, size=size, **kw)


def _warm(model: torch.nn.Module, v: int) -> torch.nn.Module:
    """Move BatchNorm running statistics away from their initial values, then eval."""
    gen = torch.Generator().manual_seed(3)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(6, 3, 20, v, 1, generator=gen) * 0.5 + 0.2)
    return model.eval()


def test_parameter_count_is_published():
    base = create_model("sgn", "ntu25", num_classes=60, size="base")
    assert abs(_params(base) - 0.69e6) / 0.69e6 < 0.05
    assert _params(base) == 691_048
    small = create_model("sgn", "ntu25", num_classes=60, size="small")
    assert 100_000 <= _params(small) <= 500_000
    # num_frames only sizes the frame-semantics embedding (S·c weights of its first layer).
    longer = create_model("sgn", "ntu25", num_classes=60, size="base", num_frames=32)
    assert _params(longer) - _params(base) == 12 * 64


def test_same_logits_in_batches_of_1_3_and_17():
    model = _warm(_model(size="base"), 25)
    x = torch.randn(17, 3, 20, 25, 1, generator=torch.Generator().manual_seed(1))
    x[4, :, 13:] = 0  # a padded clip
    with torch.no_grad():
        full = model(x)
        ones = torch.cat([model(x[i:i + 1]) for i in range(17)])
        threes = torch.cat([model(x[i:i + 3]) for i in range(0, 17, 3)])
    torch.testing.assert_close(ones, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(threes, full, atol=1e-5, rtol=1e-5)


def test_matches_the_published_batch_fixed_one_hot_formulation():
    """Published code: one-hot tensors of a fixed batch size, fed through the embeddings."""
    model = _warm(_model(), 25)
    n, v, s = 4, 25, 20
    x = torch.randn(n, 3, s, v, 1)
    with torch.no_grad():
        p = x[..., 0].transpose(2, 3)  # (N, C, V, T)
        dif = torch.cat([torch.zeros_like(p[..., :1]), p[..., 1:] - p[..., :-1]], -1)
        spa = torch.eye(v).view(1, 1, v, v).repeat(n, s, 1, 1).permute(0, 3, 2, 1)
        tem = torch.eye(s).view(1, 1, s, s).repeat(n, v, 1, 1).permute(0, 3, 1, 2)
        z = torch.cat([model.joint_embed(p) + model.dif_embed(dif), model.spa_embed(spa)], 1)
        g = torch.softmax(model.graph.theta(z).permute(0, 3, 2, 1)
                          @ model.graph.phi(z).permute(0, 3, 1, 2), dim=-1)
        for gcn in (model.gcn1, model.gcn2, model.gcn3):
            gz = (g @ z.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)
            z = torch.relu(gcn.bn(gcn.w(gz) + gcn.w_y(z)))
        z = model.frame(z + model.tem_embed(tem))
        ref = model.fc(F.adaptive_max_pool2d(z, 1).flatten(1))
        torch.testing.assert_close(model(x), ref, atol=1e-5, rtol=1e-5)
    # The adjacency is a row-stochastic V×V matrix per frame.
    torch.testing.assert_close(g.sum(-1), torch.ones(n, s, v))


def test_segment_weights():
    lengths = torch.tensor([20, 45, 7, 1])
    for mode in ("mean", "middle", "random"):
        w = segment_weights(lengths, 20, 50, mode)
        assert w.shape == (4, 20, 50)
        torch.testing.assert_close(w.sum(-1), torch.ones(4, 20))
        for i, length in enumerate(lengths.tolist()):
            assert w[i, :, length:].abs().sum() == 0  # never reads padding
            assert (w[i, :, :length].sum(0) > 0).all() or length > 20  # every frame used
    torch.testing.assert_close(segment_weights(torch.tensor([20]), 20, 20, "mean")[0],
                               torch.eye(20))
    middle = segment_weights(torch.tensor([40]), 20, 40, "middle")[0]
    assert middle.argmax(-1).tolist() == list(range(1, 40, 2))
    mean = segment_weights(torch.tensor([40]), 20, 40, "mean")[0]
    assert (mean[3, 6:8] == 0.5).all() and mean[3].sum() == 1


def test_frame_handling_modes():
    v = 20
    models = {s: _warm(_model("kinect20", sampling=s), v)
              for s in ("mean", "middle", "random", "exact")}
    for model in models.values():  # the same weights everywhere
        model.load_state_dict(models["mean"].state_dict())
    x = torch.randn(2, 3, 20, v, 1)
    with torch.no_grad():
        ref = models["mean"](x)
        for model in models.values():  # T = L = num_frames: identity for all
            torch.testing.assert_close(model(x), ref, atol=1e-6, rtol=1e-6)
        long = torch.randn(2, 3, 57, v, 1)
        with pytest.raises(ShapeError, match="num_frames"):
            models["exact"](long)
        assert not torch.allclose(models["mean"](long), models["middle"](long), atol=1e-4)
        # Zero padding after the clip changes nothing.
        padded = torch.cat([long, torch.zeros(2, 3, 30, v, 1)], dim=2)
        for s in ("mean", "middle"):
            torch.testing.assert_close(models[s](padded), models[s](long), atol=1e-5, rtol=1e-5)
        # Random segments: only in training, reproducible under a seed.
        rnd = models["random"]
        torch.testing.assert_close(rnd(long), models["middle"](long))
        rnd.train()
        torch.manual_seed(7)
        a = rnd(long)
        torch.manual_seed(7)
        assert torch.equal(a, rnd(long))
        assert not torch.equal(a, rnd(long))


def test_bodies():
    model = _warm(_model("sbu15"), 15)
    x = torch.randn(3, 3, 20, 15, 2)
    y = x.clone()
    y[..., 1] = torch.randn(3, 3, 20, 15)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(y))  # only the first body is used
        torch.testing.assert_close(model(x), model(x[..., :1]))
        mean = _warm(_model("sbu15", multi_body="mean"), 15)
        torch.testing.assert_close(mean(x), (mean(x[..., :1]) + mean(x[..., 1:])) / 2,
                                   atol=1e-5, rtol=1e-5)


def test_gradients_reach_every_frame():
    model = _model("hdm05_25").eval()
    x = torch.randn(2, 3, 33, 25, 1, requires_grad=True)
    F.cross_entropy(model(x), torch.tensor([0, 1])).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad.abs().sum(dim=(0, 1, 3, 4)) > 0).all()  # "mean" segments: all frames
    assert all(p.grad is not None for p in model.parameters())


def test_wrong_shape_and_bad_config():
    model = _model("ntu25")
    with pytest.raises(ShapeError, match=r"sgn.*ntu25"):
        model(torch.randn(1, 3, 20, 20, 1))
    with pytest.raises(ShapeError):
        model(torch.randn(1, 3, 20, 25))
    for kw in ({"num_frames": 0}, {"sampling": "linear"}, {"multi_body": "max"},
               {"dropout": -0.1}, {"size": "huge"}):
        with pytest.raises(ConfigError):
            create_model("sgn", "ntu25", **kw)
