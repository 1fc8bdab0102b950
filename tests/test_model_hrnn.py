"""Tests of the HBRNN-L victim model (skelrobust.models.hrnn)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from skelrobust import get_skeleton
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.models import create_model
from skelrobust.models.hrnn import PART_ORDER, body_parts, derive_body_parts, valid_lengths
from skelrobust.skeleton import Skeleton

LAYOUTS = ["ntu25", "kinect20", "hdm05_31", "hdm05_25", "sbu15", "openpose18"]
K = 5


def _model(layout: str = "ntu25", **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("hrnn", layout, num_classes=K, size="small", **kw)


def _warm(model: torch.nn.Module, v: int) -> torch.nn.Module:
    """Move BatchNorm running statistics away from their initial values, then eval."""
    gen = torch.Generator().manual_seed(3)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(6, 3, 12, v, 1, generator=gen) * 0.5 + 0.2)
    return model.eval()


@pytest.mark.parametrize("layout", [*LAYOUTS, "coco17"])
def test_parts_cover_every_joint_exactly_once(layout):
    skel = get_skeleton(layout)
    parts = body_parts(skel)
    assert tuple(parts) == PART_ORDER
    flat = sorted(j for p in PART_ORDER for j in parts[p])
    assert flat == list(range(skel.num_joints))
    assert all(parts[p] for p in PART_ORDER)
    # The naming rule alone gives the same split as the layout's own parts.
    derived = derive_body_parts(skel)
    assert {p: set(js) for p, js in derived.items()} == {p: set(js) for p, js in parts.items()}


def test_parts_derived_when_layout_has_none():
    base = get_skeleton("hdm05_31")
    bare = Skeleton(name="bare31", joint_names=base.joint_names, parents=base.parents,
                    frame=base.frame, left_right=base.left_right, parts={})
    parts = body_parts(bare)
    names = {p: {base.joint_names[j] for j in js} for p, js in parts.items()}
    assert names["left_leg"] == {"lhipjoint", "lfemur", "ltibia", "lfoot", "ltoes"}
    assert names["right_arm"] == {"rclavicle", "rhumerus", "rradius", "rwrist", "rhand",
                                  "rfingers", "rthumb"}
    assert "lowerback" in names["torso"] and "head" in names["torso"]
    model = create_model("hrnn", bare, num_classes=K)
    assert model(torch.randn(2, 3, 8, 31, 1)).shape == (2, K)
    # A layout without legs cannot be split into five parts.
    upper = Skeleton(name="upper", joint_names=("neck", "left_hand", "right_hand"),
                     parents=(-1, 0, 0), frame=base.frame.__class__((0,), (0,), (1,), (2,)))
    with pytest.raises(ConfigError, match="left_leg"):
        create_model("hrnn", upper, num_classes=K)


def _rnn_params(n_in: int, h: int, gates: int = 1) -> int:
    return 2 * gates * (h * n_in + h * h + 2 * h)


def test_parameter_count_matches_the_architecture():
    model = create_model("hrnn", "ntu25", num_classes=60, size="base")
    h1, h2, h3, h4 = 32, 64, 128, 256
    parts = body_parts(get_skeleton("ntu25"))
    expected = 2 * 75  # input BatchNorm
    expected += sum(_rnn_params(3 * len(parts[p]), h1) for p in PART_ORDER)  # bl1
    expected += 4 * _rnn_params(4 * h1, h2) + 2 * _rnn_params(4 * h2, h3)  # bl2, bl3
    expected += _rnn_params(4 * h3, h4, gates=4) + (2 * h4 + 1) * 60  # bl4 LSTM, fc
    total = sum(p.numel() for p in model.parameters())
    assert total == expected == 1_920_530
    small = sum(p.numel() for p in create_model("hrnn", "ntu25", num_classes=60).parameters())
    assert 100_000 <= small <= 500_000
    assert isinstance(model.bl4, torch.nn.LSTM) and model.bl1[0].nonlinearity == "tanh"


def test_each_part_feeds_only_its_own_subnet():
    model = _warm(_model("ntu25"), 25)
    outs: dict[int, torch.Tensor] = {}
    for i, rnn in enumerate(model.bl1):
        rnn.register_forward_hook(lambda _m, _i, o, i=i: outs.__setitem__(i, o[0].detach()))
    x = torch.randn(2, 3, 10, 25, 1)
    with torch.no_grad():
        model(x)
        ref = dict(outs)
        for i, part in enumerate(PART_ORDER):
            y = x.clone()
            y[:, :, :, list(model.parts[part])] += 1.0
            model(y)
            changed = [k for k in range(5) if not torch.equal(outs[k], ref[k])]
            assert changed == [i], part


def test_eval_batch_independence_and_body_average():
    model = _warm(_model("ntu25"), 25)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(4, 3, 20, 25, 2, generator=gen)
    x[1, :, 14:] = 0  # a padded clip
    x[2, ..., 1] = 0  # an absent second body
    with torch.no_grad():
        batch = model(x)
        alone = torch.cat([model(x[i:i + 1]) for i in range(4)])
        bodies = (model(x[..., :1]) + model(x[..., 1:])) / 2
    torch.testing.assert_close(alone, batch, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bodies, batch, atol=1e-5, rtol=1e-5)


def test_padding_is_ignored_and_readout_is_the_time_sum():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 12, 20, 1)
    padded = torch.cat([x, torch.zeros(2, 3, 7, 20, 1)], dim=2)
    assert valid_lengths(padded).tolist() == [12, 12]
    model = _warm(_model("kinect20"), 20)
    with torch.no_grad():
        torch.testing.assert_close(model(padded), model(x), atol=1e-5, rtol=1e-5)
        plain = _warm(_model("kinect20", ignore_padding=False), 20)
        assert not torch.allclose(plain(padded), plain(x), atol=1e-4)
        summed = _warm(_model("kinect20", time_pool="sum"), 20)
        torch.testing.assert_close(summed(x), model(x) * 12, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(summed(padded), model(x) * 12, atol=1e-4, rtol=1e-5)
        assert not torch.allclose(model(x), model(x.flip(2)), atol=1e-4)  # order matters


def test_gradients_reach_the_input():
    model = _model("sbu15").eval()
    x = torch.randn(3, 3, 9, 15, 2, requires_grad=True)
    F.cross_entropy(model(x), torch.tensor([0, 1, 2])).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad.abs().sum(dim=(0, 1, 3, 4)) > 0).all()  # every frame
    assert all(p.grad is not None for p in model.parameters())


def test_wrong_shape_and_bad_config():
    model = _model("ntu25")
    with pytest.raises(ShapeError, match=r"hrnn.*ntu25"):
        model(torch.randn(1, 3, 8, 20, 1))
    with pytest.raises(ShapeError):
        model(torch.randn(1, 3, 8, 25))
    for kw in ({"time_pool": "max"}, {"cell": "transformer"}, {"hidden": (8, 8)},
               {"dropout": 1.0}):
        with pytest.raises(ConfigError):
            create_model("hrnn", "ntu25", **kw)
    with pytest.raises(ConfigError):
        create_model("hrnn", "ntu25", size="huge")
    gru = create_model("hrnn", "ntu25", cell="gru", hidden=(4, 4, 4, 4))
    assert isinstance(gru.bl2[0], torch.nn.GRU)
