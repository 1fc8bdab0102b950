"""Tests of skelrobust.models: graph partitions, ST-GCN, the MLP baselines and the registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrobust import get_skeleton, list_skeletons
from skelrobust.errors import ConfigError, ShapeError, UnknownNameError
from skelrobust.models import create_model, list_models
from skelrobust.models import graph as G
from skelrobust.models.stgcn import SpatialGraphConv

LAYOUTS = list_skeletons()
NUM_CLASSES = 7


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- graph
@pytest.mark.parametrize("layout", LAYOUTS)
def test_partition_shapes(layout):
    v = get_skeleton(layout).num_joints
    assert G.uniform_partition(layout).shape == (1, v, v)
    assert G.distance_partition(layout).shape == (2, v, v)
    assert G.spatial_partition(layout).shape == (3, v, v)
    assert G.spatial_partition(layout, max_hop=2).shape == (5, v, v)
    assert G.inward_outward_partition(layout).shape == (3, v, v)
    assert G.multiscale_adjacency(layout, 4).shape == (4, v, v)
    assert G.k_adjacency(layout, 2).shape == (v, v)
    for strategy in G.STRATEGIES:
        a = G.get_partition(layout, strategy)
        assert a.dtype == np.float32 and np.isfinite(a).all()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_spatial_partition_covers_normalised_adjacency(layout):
    skel = get_skeleton(layout)
    a = G.spatial_partition(skel)
    norm = G.normalize_digraph(skel.adjacency + np.eye(skel.num_joints))
    assert np.all(a.sum(axis=1) <= 1 + 1e-6)  # each subset's columns sum to <= 1
    np.testing.assert_allclose(a.sum(0), norm, atol=1e-6)  # the subsets add up to Λ
    assert np.array_equal((a > 0).any(0), norm > 0)  # union of supports = support of A+I
    assert np.all((a > 0).sum(0) <= 1)  # disjoint
    np.testing.assert_allclose(norm.sum(0), 1.0, atol=1e-6)
    # In a tree no neighbour is as far from the centre as its root: root = self-loops.
    assert np.array_equal(a[G.ROOT] > 0, np.eye(skel.num_joints, dtype=bool))


def _column(a: np.ndarray, skel, joint: str) -> list[dict[str, float]]:
    i = skel.joint_index(joint)
    return [{skel.joint_names[j]: round(float(sub[j, i]), 6) for j in np.flatnonzero(sub[:, i])}
            for sub in a]


def test_spatial_partition_hand_worked_ntu25():
    skel = get_skeleton("ntu25")
    a = G.spatial_partition(skel)
    # Elbow (2 hops from spine_shoulder): shoulder is nearer the centre, wrist farther.
    third = round(1 / 3, 6)
    assert _column(a, skel, "left_elbow") == [
        {"left_elbow": third}, {"left_shoulder": third}, {"left_wrist": third}]
    # The centre itself: every neighbour is centrifugal.
    fifth = 0.2
    assert _column(a, skel, "spine_shoulder") == [
        {"spine_shoulder": fifth}, {},
        {"spine_mid": fifth, "neck": fifth, "left_shoulder": fifth, "right_shoulder": fifth}]
    # A leaf: only a centripetal neighbour.
    assert _column(a, skel, "head") == [{"head": 0.5}, {"neck": 0.5}, {}]
    # A 3-way branch below the centre: spine_base has spine_mid above and two hips below.
    quarter = 0.25
    assert _column(a, skel, "spine_base") == [
        {"spine_base": quarter}, {"spine_mid": quarter},
        {"left_hip": quarter, "right_hip": quarter}]


def test_uniform_and_distance_partitions():
    skel = get_skeleton("kinect20")
    norm = G.normalize_digraph(skel.adjacency + np.eye(20))
    np.testing.assert_allclose(G.uniform_partition(skel)[0], norm)
    d = G.distance_partition(skel)
    np.testing.assert_allclose(d[0], np.diag(np.diag(norm)))
    np.testing.assert_allclose(d.sum(0), norm, atol=1e-7)


def test_normalisations():
    a = get_skeleton("sbu15").adjacency + np.eye(15)
    dig = G.normalize_digraph(a)
    np.testing.assert_allclose(dig.sum(0), 1.0, atol=1e-6)
    np.testing.assert_allclose(dig, a / a.sum(0, keepdims=True), atol=1e-7)
    und = G.normalize_undigraph(a)
    np.testing.assert_allclose(und, und.T, atol=1e-7)
    d = a.sum(0)
    np.testing.assert_allclose(und, a / np.sqrt(np.outer(d, d)), atol=1e-7)
    empty = G.normalize_digraph(np.zeros((3, 3)))
    assert np.array_equal(empty, np.zeros((3, 3)))


def test_k_adjacency():
    skel = get_skeleton("ntu25")
    v = skel.num_joints
    np.testing.assert_array_equal(G.k_adjacency(skel, 0), np.eye(v))
    np.testing.assert_array_equal(G.k_adjacency(skel, 1), skel.adjacency)
    a2 = G.k_adjacency(skel, 2)
    ls, rs = skel.joint_index("left_shoulder"), skel.joint_index("right_shoulder")
    assert a2[ls, rs] == a2[rs, ls] == 1 and np.all(np.diag(a2) == 0)
    assert not np.any(a2 * skel.adjacency)  # exactly k hops, not within k
    np.testing.assert_array_equal(G.k_adjacency(skel, 2, with_self=True), a2 + np.eye(v))
    ms = G.multiscale_adjacency(skel, 3)
    np.testing.assert_array_equal(ms[0], np.eye(v))
    np.testing.assert_allclose(ms, ms.transpose(0, 2, 1), atol=1e-7)
    with pytest.raises(ConfigError):
        G.k_adjacency(skel, -1)


def test_inward_outward_partition():
    skel = get_skeleton("ntu25")
    a = G.inward_outward_partition(skel)
    np.testing.assert_array_equal(a[0], np.eye(25))
    elbow, shoulder = skel.joint_index("left_elbow"), skel.joint_index("left_shoulder")
    assert a[1][shoulder, elbow] == 1.0 and a[1][elbow, shoulder] == 0.0
    center = skel.center  # spine_shoulder has 4 children
    assert a[2][shoulder, center] == pytest.approx(0.25)
    np.testing.assert_allclose(np.delete(a[1].sum(0), center), 1.0)
    assert a[1][:, center].sum() == 0
    assert np.array_equal(a[2] > 0, a[1].T > 0)


def test_unknown_strategy():
    with pytest.raises(UnknownNameError, match="spatial"):
        G.get_partition("ntu25", "nonsense")


# ----------------------------------------------------------------------------- models
def test_registry_lists_models():
    assert {"mlp", "stgcn"} <= set(list_models())


def test_stgcn_base_parameter_count():
    model = create_model("stgcn", "ntu25", num_classes=60, size="base")
    assert abs(_params(model) - 3.1e6) / 3.1e6 < 0.05
    assert len(model.units) == 10
    small = create_model("stgcn", "ntu25", num_classes=60, size="small")
    assert _params(small) < _params(model) / 5
    no_edges = create_model("stgcn", "ntu25", num_classes=60, size="base", edge_importance=False)
    assert _params(model) - _params(no_edges) == 10 * 3 * 25 * 25


def test_graph_conv_matches_published_formula():
    torch.manual_seed(0)
    k, c_in, c_out, v = 3, 4, 5, 25
    conv = SpatialGraphConv(c_in, c_out, k)
    torch.nn.init.normal_(conv.bias)
    a = torch.from_numpy(G.spatial_partition("ntu25")) * (1 + torch.rand(k, v, v))
    x = torch.randn(2, c_in, 6, v)
    # Published: 1×1 conv to K·C_out channels, then einsum over partitions.
    w = conv.conv.weight.view(c_out, c_in, k).permute(2, 0, 1)  # (K, C_out, C_in)
    y = torch.einsum("koc,nctv->nkotv", w, x) + conv.bias.view(1, k, c_out, 1, 1)
    ref = torch.einsum("nkctv,kvw->nctw", y, a)
    torch.testing.assert_close(conv(x, a), ref, atol=1e-5, rtol=1e-5)


def _variants():
    out = []
    for name in list_models():
        out.append((name, {}))
        if name == "mlp":
            out.append((name, {"temporal": False}))
    return out


VARIANTS = _variants()


def _model(name, layout, **kw):
    torch.manual_seed(0)
    return create_model(name, layout, num_classes=NUM_CLASSES, size="small", **kw)


@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=lambda p: str(p))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_model_runs_on_every_layout(name, kw, layout):
    v = get_skeleton(layout).num_joints
    gen = torch.Generator().manual_seed(1)
    for m in (1, 2):  # models with an M·V·C input BatchNorm fix M at construction
        model = _model(name, layout, num_bodies=m, **kw)
        for training, t in ((True, 12), (False, 1), (False, 13)):  # odd T: strided units
            model.train(training)
            x = torch.randn(2, 3, t, v, m, generator=gen)
            with torch.no_grad():
                out = model(x)
            assert out.shape == (2, NUM_CLASSES)
            assert torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=lambda p: str(p))
def test_eval_batch_independence_and_determinism(name, kw):
    model = _model(name, "ntu25", num_bodies=2, **kw)
    gen = torch.Generator().manual_seed(2)
    model.train()
    with torch.no_grad():  # move BatchNorm running statistics away from their init
        for _ in range(3):
            model(torch.randn(8, 3, 32, 25, 2, generator=gen) * 0.3 + 0.1)
    model.eval()
    x = torch.randn(5, 3, 32, 25, 2, generator=gen)
    x[1, :, 20:] = 0  # a padded clip
    x[2, ..., 1] = 0  # an absent second body
    with torch.no_grad():
        batch = model(x)
        alone = torch.cat([model(x[i:i + 1]) for i in range(len(x))])
        again = model(x)
    torch.testing.assert_close(alone, batch, atol=1e-5, rtol=1e-5)
    assert torch.equal(batch, again)


@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=lambda p: str(p))
def test_learns_a_tiny_batch_deterministically(name, kw):
    """Adam on 8 random clips halves the loss in 10 steps; a seed fixes weights and path."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(8, 3, 12, 15, 2, generator=gen)
    y = torch.arange(8) % NUM_CLASSES

    def train() -> tuple[list[float], torch.Tensor]:
        model = _model(name, "sbu15", num_bodies=2, **kw).train()
        opt = torch.optim.Adam(model.parameters(), lr=5e-3)
        losses = []
        for _ in range(10):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        with torch.no_grad():
            return losses, model.eval()(x)

    losses, out = train()
    assert losses[-1] < 0.5 * losses[0], losses
    again, out2 = train()
    assert again == losses and torch.equal(out, out2)


@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=lambda p: str(p))
def test_gradients_reach_the_input(name, kw):
    model = _model(name, "kinect20", **kw).eval()
    x = torch.randn(3, 3, 24, 20, 1, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2]))
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    params = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in params)


def test_single_frame_mlp_ignores_order_and_padding():
    model = _model("mlp", "ntu25", temporal=False).eval()
    x = torch.randn(2, 3, 10, 25, 1)
    with torch.no_grad():
        base = model(x)
        shuffled = model(x[:, :, torch.randperm(10)])
        padded = model(torch.cat([x, torch.zeros(2, 3, 6, 25, 1)], dim=2))
    torch.testing.assert_close(shuffled, base, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded, base, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        assert torch.isfinite(model(torch.zeros(1, 3, 5, 25, 1))).all()


def test_temporal_models_see_order():
    x = torch.randn(2, 3, 32, 25, 1)
    for name in ("stgcn", "mlp"):
        model = _model(name, "ntu25").eval()
        with torch.no_grad():
            assert not torch.allclose(model(x), model(x.flip(2)), atol=1e-4)


def test_model_config_and_kwargs():
    model = create_model("mlp", "sbu15", num_classes=8, temporal=False, hidden=32)
    assert model.config["kwargs"] == {"temporal": False, "hidden": 32}
    assert model.config["skeleton"] == "sbu15"
    assert model.net[0].out_features == 32
    assert create_model("mlp", size="base").net[0].out_features == 1024


def test_create_model_errors():
    with pytest.raises(UnknownNameError) as err:
        create_model("no-such-model")
    assert "mlp" in str(err.value) and "stgcn" in str(err.value)
    for name in ("stgcn", "mlp"):
        with pytest.raises(ConfigError):
            create_model(name, size="huge")
    with pytest.raises(ConfigError):
        create_model("stgcn", temporal_kernel=4)
    with pytest.raises(ConfigError):
        create_model("mlp", bins=0)


def test_wrong_input_shape_is_a_clear_error():
    for name in ("stgcn", "mlp"):
        model = _model(name, "ntu25")
        with pytest.raises(ShapeError, match="ntu25"):
            model(torch.randn(1, 3, 8, 20, 1))
        with pytest.raises(ShapeError):
            model(torch.randn(1, 3, 8, 25))
