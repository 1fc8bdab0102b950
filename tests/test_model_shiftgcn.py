"""Tests of Shift-GCN (Cheng et al., CVPR 2020) and its official-checkpoint loader."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from skelrobust.classifier import Classifier
from skelrobust.errors import CheckpointError, ConfigError, ShapeError
from skelrobust.models import create_model
from skelrobust.models.pretrained import load_shiftgcn_checkpoint
from skelrobust.models.shiftgcn import ShiftGraphConv, TemporalShift, spatial_shift_index

LAYOUTS = ("ntu25", "kinect20", "hdm05_31", "hdm05_25", "sbu15", "openpose18")
NUM_CLASSES = 7
# Parameters of the official NTU-60 checkpoint (all nn.Parameters, incl. xpos/ypos;
# without BN statistics and the spatial shift indices): the published "0.69 M".
CHECKPOINT_PARAMS = 693_107


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _model(layout: str = "ntu25", m: int = 1, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("shiftgcn", layout, num_classes=NUM_CLASSES, size="small",
                        num_bodies=m, **kw)


# ----------------------------------------------------------------------------- size
def test_parameter_counts():
    base = create_model("shiftgcn", "ntu25", num_classes=60, size="base", num_bodies=2)
    assert _params(base) == CHECKPOINT_PARAMS
    assert abs(_params(base) - 0.69e6) / 0.69e6 < 0.05
    one_body = create_model("shiftgcn", "ntu25", num_classes=60, size="base")
    assert _params(base) - _params(one_body) == 2 * 75  # data_bn weight + bias of body 2
    assert [n for n, _ in base.named_children()] == [
        "data_bn", *(f"l{i}" for i in range(1, 11)), "fc"]
    small = create_model("shiftgcn", "ntu25", num_classes=60, size="small")
    assert 1e5 <= _params(small) <= 5e5


# ----------------------------------------------------------------------------- shifts
def test_spatial_shift_index_is_the_published_permutation():
    for v, c in ((25, 3), (25, 64), (15, 8)):
        shift_in, shift_out = spatial_shift_index(v, c, 1), spatial_shift_index(v, c, -1)
        for i in range(v):
            for j in range(c):
                assert shift_in[i * c + j] == (i * c + j + j * c) % (c * v)
                assert shift_out[i * c + j] == (i * c + j - j * c) % (c * v)
        for idx in (shift_in, shift_out):
            assert torch.equal(idx.sort().values, torch.arange(v * c))
    # Channel j of joint i reads joint (i + j) mod V.
    x = torch.arange(25.0)[:, None].expand(25, 64).reshape(-1)
    moved = x[spatial_shift_index(25, 64, 1)].view(25, 64)
    assert moved[3, 5] == 8 and moved[24, 2] == 1


def _kernel_reference(x: torch.Tensor, xpos: torch.Tensor, ypos: torch.Tensor,
                      stride: int) -> torch.Tensor:
    """The official CUDA kernel, literally: bilinear read at (t·s + y, w + x), zeros outside."""
    n, c, t, v = x.shape
    out = torch.zeros(n, c, t // stride, v)
    y_all = ypos + 0.5 if stride != 1 else ypos
    for ci in range(c):
        xs, ys = float(xpos[ci]), float(y_all[ci])
        x1, y1 = math.floor(xs), math.floor(ys)
        dx, dy = xs - x1, ys - y1
        for h in range(t // stride):
            for w in range(v):
                def q(hh: int, ww: int, ci: int = ci) -> torch.Tensor:
                    inside = 0 <= hh < t and 0 <= ww < v
                    return x[:, ci, hh, ww] if inside else torch.zeros(n)
                hh = h * stride
                out[:, ci, h, w] = (q(hh + y1, w + x1) * (1 - dx) * (1 - dy)
                                    + q(hh + y1, w + x1 + 1) * dx * (1 - dy)
                                    + q(hh + y1 + 1, w + x1) * (1 - dx) * dy
                                    + q(hh + y1 + 1, w + x1 + 1) * dx * dy)
    return out


@pytest.mark.parametrize(("stride", "t"), [(1, 10), (2, 10), (2, 11)])
def test_temporal_shift_matches_the_official_kernel(stride, t):
    torch.manual_seed(3)
    shift = TemporalShift(6, stride, init_scale=4.0)
    with torch.no_grad():
        shift.ypos[:3] = torch.tensor([0.0, -2.0, 1.5])  # integer, negative and half positions
    x = torch.randn(2, 6, t, 5)
    out = shift(x)
    assert out.shape == (2, 6, t // stride, 5)
    ref = _kernel_reference(x, shift.xpos.detach(), shift.ypos.detach(), stride)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    # A zero position with stride 1 is the identity; a position of +1 reads the next frame.
    with torch.no_grad():
        shift.ypos.zero_()
        shift.ypos[0] = 1.0
    if stride == 1:
        out = shift(x)
        torch.testing.assert_close(out[:, 1:], x[:, 1:])
        torch.testing.assert_close(out[:, 0, :-1], x[:, 0, 1:])
        assert torch.all(out[:, 0, -1] == 0)


def test_temporal_position_gradients():
    torch.manual_seed(4)
    x = torch.randn(3, 4, 12, 5)
    exact = TemporalShift(4, 2, shift_grad="exact")
    loss = (exact(x) * torch.linspace(-1, 1, 6)[:, None]).sum()
    (g,) = torch.autograd.grad(loss, exact.ypos)
    eps = 1e-3
    with torch.no_grad():
        for c in range(4):
            exact.ypos[c] += eps
            up = (exact(x) * torch.linspace(-1, 1, 6)[:, None]).sum()
            exact.ypos[c] -= 2 * eps
            down = (exact(x) * torch.linspace(-1, 1, 6)[:, None]).sum()
            exact.ypos[c] += eps
            assert g[c].item() == pytest.approx(((up - down) / (2 * eps)).item(), rel=1e-2,
                                                abs=1e-3)
    sign = TemporalShift(4, 2, shift_grad="sign")
    sign.load_state_dict(exact.state_dict())
    (s,) = torch.autograd.grad((sign(x) * torch.linspace(-1, 1, 6)[:, None]).sum(), sign.ypos)
    torch.testing.assert_close(s, 0.01 * torch.sign(g))
    assert not sign.xpos.requires_grad


def test_shift_graph_conv_matches_the_published_formula():
    torch.manual_seed(5)
    gcn = ShiftGraphConv(4, 6, 25).eval()
    with torch.no_grad():
        gcn.Feature_Mask.normal_()
        gcn.Linear_bias.normal_()
    x = torch.randn(2, 4, 3, 25)
    mask = torch.tanh(gcn.Feature_Mask[0]) + 1
    feats = torch.zeros(2, 3, 25, 6)
    for i in range(25):  # out joint i, channel d = Σ_j x[(i + j) % V, j] mask W, read at i + d
        pre = torch.stack([x[:, j, :, (i + j) % 25] * mask[i, j] for j in range(4)], -1)
        feats[:, :, i] = pre @ gcn.Linear_weight + gcn.Linear_bias[0, 0]
    shifted = torch.stack([feats[:, :, (torch.arange(25) - d) % 25, d] for d in range(6)], -1)
    y = gcn.bn(shifted.reshape(-1, 25 * 6)).view(2, 3, 25, 6).permute(0, 3, 1, 2)
    ref = torch.relu(y + gcn.down(x))
    torch.testing.assert_close(gcn(x), ref, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- the model


def test_wrong_shapes_and_config_are_clear_errors():
    model = _model("ntu25", 2)
    with pytest.raises(ShapeError, match=r"shiftgcn.*ntu25"):
        model(torch.randn(1, 3, 8, 20, 2))
    with pytest.raises(ShapeError, match="shiftgcn"):
        model(torch.randn(1, 3, 8, 25, 1))  # num_bodies fixed at 2
    with pytest.raises(ShapeError):
        model(torch.randn(1, 3, 8, 25))
    with pytest.raises(ConfigError):
        create_model("shiftgcn", size="huge")
    with pytest.raises(ConfigError, match="shift_grad"):
        create_model("shiftgcn", shift_grad="nope")


# ----------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def fake_checkpoint(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A state dict shaped like the official NTU-60 one (random weights)."""
    torch.manual_seed(7)
    model = create_model("shiftgcn", "ntu25", num_classes=60, size="base", num_bodies=2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    sd = model.state_dict()
    path = tmp_path_factory.mktemp("ckpt") / "shiftgcn_fake.pt"
    torch.save(sd, path)
    return path, sd


def test_loader_builds_a_classifier_without_normalisation(fake_checkpoint, tmp_path):
    path, sd = fake_checkpoint
    clf = Classifier.from_shiftgcn_checkpoint(path)
    assert clf.num_classes == 60 and clf.class_names[0] == "drink water"
    assert torch.all(clf.mean == 0) and torch.all(clf.std == 1) and not clf.training
    for k, t in clf.model.state_dict().items():
        assert torch.equal(t, sd[k]), k
    x = torch.randn(2, 3, 20, 25, 2)
    with torch.no_grad():
        torch.testing.assert_close(clf(x), clf.model(x))
        saved = Classifier.load(clf.save(tmp_path / "clf"))
        torch.testing.assert_close(saved(x), clf(x))
    named = load_shiftgcn_checkpoint(path, num_classes=60, class_names=[f"c{i}" for i in range(60)])
    assert named.class_names[5] == "c5"


def test_loader_errors_name_the_file_and_keys(fake_checkpoint, tmp_path):
    path, sd = fake_checkpoint
    with pytest.raises(CheckpointError, match=r"no_such\.pt"):
        load_shiftgcn_checkpoint(tmp_path / "no_such.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match=r"garbage\.pt"):
        load_shiftgcn_checkpoint(garbage)
    listed = tmp_path / "listed.pt"
    torch.save([torch.zeros(2)], listed)
    with pytest.raises(CheckpointError, match=r"listed\.pt.*not a state dict"):
        load_shiftgcn_checkpoint(listed)
    broken = dict(sd)
    del broken["l3.gcn1.Feature_Mask"]
    broken["l3.gcn1.extra"] = torch.zeros(1)
    broken["l7.tcn1.shift_in.ypos"] = torch.zeros(64)
    bad = tmp_path / "broken.pt"
    torch.save(broken, bad)
    with pytest.raises(CheckpointError) as err:
        load_shiftgcn_checkpoint(bad)
    msg = str(err.value)
    assert "broken.pt" in msg and "l3.gcn1.Feature_Mask" in msg and "l3.gcn1.extra" in msg
    assert "l7.tcn1.shift_in.ypos (64,) vs model (128,)" in msg
    out_of_range = dict(sd, **{"l2.gcn1.shift_in": sd["l2.gcn1.shift_in"] + 5000})
    torch.save(out_of_range, bad)
    with pytest.raises(CheckpointError, match=r"l2\.gcn1\.shift_in"):
        load_shiftgcn_checkpoint(bad)
    with pytest.raises(CheckpointError, match="60-class"):
        load_shiftgcn_checkpoint(path, num_classes=120)
    with pytest.raises(ConfigError, match="class_names"):
        load_shiftgcn_checkpoint(path, class_names=["a", "b"])


# ----------------------------------------------------------------------------- real data
def _models_dir() -> Path:
    path = Path(os.environ["SKELROBUST_DATA"]).parent / "models"
    for name in ("shiftgcn_ntu60_xsub_joint.pt", "shiftgcn_ntu120_xsub_joint.pt"):
        if not (path / name).is_file():
            if os.environ.get("SKELROBUST_REQUIRE_DATA", "") not in ("", "0"):
                pytest.fail(f"required checkpoint {path / name} is missing")
            pytest.skip(f"{path / name} is missing")
    return path


@pytest.mark.realdata
def test_official_checkpoints_on_real_ntu_files(real_data_root):
    from skelrobust.data.registry import load_dataset

    root = real_data_root("ntu")
    models = _models_dir()
    # The checkpoints were trained on 2s-AGCN pre_normalization, which loops every
    # clip to 300 frames (pad="loop"); zero-padding loses the shortest clips.
    with pytest.warns(UserWarning, match="skipped 2 of 10 files"):
        data = load_dataset("ntu60", root=root, split="all", pad="loop")
    assert {Path(s["file"]).stem for s in data.info["skipped"]} == {
        "S005C002P013R002A056", "S012C001P008R002A030"}
    assert data.x.shape == (8, 3, 300, 25, 2)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)

    clf = Classifier.from_shiftgcn_checkpoint(models / "shiftgcn_ntu60_xsub_joint.pt")
    sd = torch.load(models / "shiftgcn_ntu60_xsub_joint.pt", map_location="cpu",
                    weights_only=True)
    clf.model.load_state_dict(sd, strict=True)
    assert _params(clf.model) == CHECKPOINT_PARAMS
    with torch.no_grad():
        logits = clf(x)
        alone = torch.cat([clf(x[i:i + 1]) for i in range(len(x))])
    assert torch.equal(logits.argmax(1), y), (logits.argmax(1).tolist(), y.tolist())
    torch.testing.assert_close(alone, logits, atol=1e-4, rtol=0)

    clf120 = load_shiftgcn_checkpoint(models / "shiftgcn_ntu120_xsub_joint.pt")
    assert clf120.num_classes == 120
    with torch.no_grad():
        top5 = clf120(x).topk(5, dim=1).indices
    assert (top5 == y[:, None]).any(1).all(), top5.tolist()
