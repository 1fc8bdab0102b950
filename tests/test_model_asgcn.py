"""Tests of AS-GCN (Li et al., CVPR 2019): A-link inference, S-links, AGC, prediction head."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from skelrobust.errors import ConfigError, ShapeError
from skelrobust.models import create_model
from skelrobust.models.asgcn import PLANS, ActionalGraphConv, LinkDecoder
from skelrobust.models.graph import spatial_partition

LAYOUTS = ["ntu25", "kinect20", "hdm05_31", "hdm05_25", "sbu15", "openpose18"]
NUM_CLASSES = 5


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _model(layout: str = "ntu25", **kw):
    torch.manual_seed(0)
    return create_model("asgcn", layout, num_classes=NUM_CLASSES, size="small", **kw)


def _agc_params(c_in: int, c_out: int, n: int) -> int:
    return n * c_in * c_out + n * c_out  # 1×1 weights per subset/type + their biases


# ----------------------------------------------------------------------------- architecture
def test_base_architecture_and_parameter_count():
    model = create_model("asgcn", "ntu25", num_classes=60, size="base")
    assert len(model.blocks) == 9
    assert [b.agc.structural.conv.out_channels for b in model.blocks] == [64] * 3 + [128] * 3 + [
        256] * 3
    strides = [b.tcn[2].conv.stride[0] for b in model.blocks]
    assert strides == [1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert model.A.shape == (9, 25, 25)  # 1 + 2K subsets, K = 4
    assert model.aim.frames == 50 and model.aim.hidden == 128 and model.num_link_types == 3
    assert model.blocks[0].residual is None
    total = _params(model)
    assert total == 4_982_742  # no published count; this pins the architecture
    none = create_model("asgcn", "ntu25", num_classes=60, size="base", actional_links="none")
    # Removing A-links removes the AIM and every block's C−1 = 2 A-GC weight sets.
    chans = [(3, 64), (64, 64), (64, 64), (64, 128), (128, 128), (128, 128), (128, 256),
             (256, 256), (256, 256)]
    expected = _params(model.aim) + sum(_agc_params(i, o, 2) for i, o in chans)
    assert total - _params(none) == expected
    small = create_model("asgcn", "ntu25", num_classes=60, size="small")
    assert 100_000 < _params(small) < 500_000


def test_s_links_are_the_k_hop_spatial_partition():
    model = _model("kinect20", max_hop=3)
    torch.testing.assert_close(model.A, torch.from_numpy(spatial_partition("kinect20", 3)))
    assert model.A.shape[0] == 7
    assert model.blocks[0].agc.edge_importance.shape == (7, 20, 20)


def test_actional_graph_conv_matches_published_formula():
    torch.manual_seed(0)
    conv = ActionalGraphConv(4, 6, 2)
    torch.nn.init.normal_(conv.bias)
    x, a = torch.randn(3, 4, 5, 15), torch.rand(3, 2, 15, 15)
    w = conv.conv.weight.view(6, 4, 2).permute(2, 0, 1)  # (K, C_out, C_in)
    y = torch.einsum("koc,nctv->nkotv", w, x) + conv.bias.view(1, 2, 6, 1, 1)
    ref = torch.einsum("nkctv,nkvw->nctw", y, a)  # published per-sample aggregation
    torch.testing.assert_close(conv(x, a), ref, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- A-links
def test_inferred_links_are_stochastic_over_link_types():
    model = _model().eval()
    x = torch.randn(4, 3, 16, 25, 1)
    with torch.no_grad():
        probs = model.link_probabilities(x)
        links = model.infer_links(x)
        logits = model.aim(model.aim.resample(x[..., 0]))
    assert probs.shape == (4, 3, 25, 25) and links.shape == (4, 2, 25, 25)
    torch.testing.assert_close(probs.sum(1), torch.ones(4, 25, 25))
    assert probs.min() >= 0 and torch.equal(links, probs[:, 1:])
    assert torch.all(links.sum(1) <= 1 + 1e-6)
    assert torch.all(links[:, :, torch.arange(25), torch.arange(25)] == 0)  # no self-links
    # Pair (sender 3, receiver 7) sits at its row-major off-diagonal index.
    k = model.aim.pair_index.tolist().index(3 * 25 + 7)
    torch.testing.assert_close(probs[:, :, 3, 7], logits[:, k].softmax(-1))
    # Links come from the motion, per sample and per body.
    assert not torch.allclose(links[0], links[1])
    with torch.no_grad():
        assert model.infer_links(torch.randn(2, 3, 16, 25, 2)).shape == (4, 2, 25, 25)


def test_training_samples_hard_links():
    model = _model().train()
    torch.manual_seed(3)
    links = model.infer_links(torch.randn(2, 3, 16, 25, 1))
    full = torch.cat([1 - links.sum(1, keepdim=True), links], dim=1)
    assert set(links.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(full.sum(1), torch.ones(2, 25, 25))
    soft = _model(link_sampling="soft").train()
    assert not set(soft.infer_links(torch.randn(2, 3, 16, 25, 1)).unique().tolist()) <= {0.0, 1.0}


def test_s_link_only_model_has_fewer_parameters_and_runs():
    full, none = _model(), _model(actional_links="none")
    assert none.aim is None and _params(none) < _params(full)
    assert all(b.agc.actional is None for b in none.blocks)
    out = none(torch.randn(2, 3, 16, 25, 2))
    assert out.shape == (2, NUM_CLASSES) and torch.isfinite(out).all()
    with pytest.raises(ConfigError):
        none.infer_links(torch.randn(1, 3, 16, 25, 1))
    with pytest.raises(ConfigError):
        none.pretrain_aim(torch.randn(2, 3, 16, 25, 1), steps=1)


def test_lambda_zero_ignores_actional_links():
    model = _model(lambda_act=0.0).eval()
    x = torch.randn(2, 3, 16, 25, 1)
    with torch.no_grad():
        before = model(x)
        for p in model.aim.parameters():
            p.add_(torch.randn_like(p))
        torch.testing.assert_close(model(x), before)


# ----------------------------------------------------------------------------- classifier


def test_deterministic_under_a_seed_in_training_mode():
    x = torch.randn(3, 3, 16, 25, 1)
    outs = []
    for _ in range(2):
        model = _model().train()
        torch.manual_seed(7)  # Gumbel noise
        outs.append(model(x))
    assert torch.equal(outs[0], outs[1])


def test_wrong_shape_is_a_clear_error():
    model = _model()
    with pytest.raises(ShapeError, match="asgcn"):
        model(torch.randn(1, 3, 8, 20, 1))
    with pytest.raises(ShapeError):
        model(torch.randn(1, 3, 8, 25))
    with pytest.raises(ShapeError):
        model.infer_links(torch.randn(1, 2, 8, 25, 1))


def test_config_errors():
    for kw in ({"actional_links": "maybe"}, {"num_link_types": 1}, {"link_sampling": "x"},
               {"max_hop": 0}, {"aim_frames": 1}, {"dropout": 1.0}, {"temporal_kernel": 4}):
        with pytest.raises(ConfigError):
            _model(**kw)
    with pytest.raises(ConfigError):
        create_model("asgcn", size="huge")


# ----------------------------------------------------------------------------- prediction head
def test_prediction_head():
    model = _model(prediction_head=True, future_frames=4)
    x = torch.randn(2, 3, 16, 25, 2)
    with torch.no_grad():
        future = model.predict_future(x)
        logits, _ = model.classify_and_predict(x.clone())
    assert future.shape == (2, 3, 4, 25, 2) and logits.shape == (2, NUM_CLASSES)
    assert torch.isfinite(future).all()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.classify_and_predict(x)[0])
    # Published objective: CE + 0.01·MSE trains the head too.
    logits, future = model.classify_and_predict(x)
    (F.cross_entropy(logits, torch.tensor([0, 1])) + F.mse_loss(future, x[:, :, -4:])).backward()
    assert all(p.grad is not None for p in model.head_out.parameters())
    plain = _model()
    assert _params(plain) < _params(model)
    with pytest.raises(ConfigError):
        plain.predict_future(x)


# ----------------------------------------------------------------------------- AIM pretraining
def _smooth_motion(n: int, t: int = 12, v: int = 25) -> torch.Tensor:
    gen = torch.Generator().manual_seed(5)
    phase, amp = torch.rand(n, 3, 1, v, 1, generator=gen) * 6, torch.rand(n, 3, 1, v, 1,
                                                                            generator=gen)
    time = torch.linspace(0, 3, t).view(1, 1, t, 1, 1)
    return amp * torch.sin(time + phase)


def test_pretrain_aim_lowers_its_loss_and_can_freeze():
    model = _model(aim_frames=8)
    head = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("aim.")}
    data = _smooth_motion(12)
    res = model.pretrain_aim(data, steps=20, lr=1e-2, batch_size=4, variance=1e-2,
                             generator=torch.Generator().manual_seed(0))
    assert len(res.loss) == 20 and isinstance(res.decoder, LinkDecoder)
    assert sum(res.loss[-5:]) < 0.7 * sum(res.loss[:5])
    assert sum(res.kl[-5:]) < 0.7 * sum(res.kl[:5])  # the links move towards the sparse prior
    assert model.training  # mode restored
    for k, v in model.state_dict().items():  # only the AIM changed
        if not k.startswith("aim."):
            assert torch.equal(v, head[k]), k
    # Batches from an iterable (x, y) loader; freeze for the published second stage.
    loader = [(data[:4], torch.zeros(4)), (data[4:8], torch.zeros(4))]
    res2 = model.pretrain_aim(loader, steps=3, decoder=res.decoder, freeze=True)
    assert len(res2.kl) == 3 and all(k >= 0 for k in res2.kl)
    assert not any(p.requires_grad for p in model.aim.parameters())
    with pytest.raises(ConfigError):
        model.pretrain_aim(data, steps=1, prior=(0.5, 0.5))
    with pytest.raises(ConfigError):
        model.pretrain_aim([], steps=1)


def test_small_plan_is_cheaper_than_base():
    assert PLANS["small"].max_hop < PLANS["base"].max_hop
    assert PLANS["small"].aim_frames < PLANS["base"].aim_frames
