"""ONNX export of classifiers and ONNX files as victims (skelrobust.deploy, the ``onnx`` extra)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime", reason="the onnx extra (pip install 'skelrobust[onnx]')")
onnx = pytest.importorskip("onnx")

from skelrobust.attacks.oracle import QueryOracle  # noqa: E402
from skelrobust.attacks.registry import create_attack  # noqa: E402
from skelrobust.classifier import Classifier  # noqa: E402
from skelrobust.config import load_prepared  # noqa: E402
from skelrobust.deploy import METADATA_KEY, OnnxModel, export_onnx  # noqa: E402
from skelrobust.errors import CheckpointError, ConfigError, ShapeError  # noqa: E402

T = 16
PREP = {"num_frames": T, "center_mode": "first", "normalize_view": True, "temporal": "resample"}


@pytest.fixture(scope="module")
def data():
    return load_prepared("synthetic", "test", None, PREP, num_clips=60)


@pytest.fixture(scope="module")
def clf(data):
    torch.manual_seed(0)
    model = Classifier.create("mlp", data, preprocess=PREP)
    return model.eval()


@pytest.fixture(scope="module")
def exported(clf, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "mlp.onnx"
    report = export_onnx(clf, path)
    return path, report


def test_export_matches_the_classifier(clf, data, exported):
    path, report = exported
    assert report.path == str(path) and path.is_file() and report.bytes == path.stat().st_size
    assert report.input_shape == ("N", 3, T, 25, 1) and report.num_classes == clf.num_classes
    assert report.max_abs_diff <= report.tolerance and report.max_abs_diff < 1e-4
    assert report.labels_agree == report.check_clips
    assert not list(path.parent.glob("*.tmp"))
    model = OnnxModel(path)
    assert model.input_shape == (None, 3, T, 25, 1) and model.output_classes == clf.num_classes
    x = torch.from_numpy(data.x)
    for batch in (x[:1], x[:7], x):  # the batch axis is dynamic
        got, want = model(batch), clf.predict_logits(batch)
        assert got.dtype == torch.float32 and got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
        assert torch.equal(got.argmax(1), want.argmax(1))
    assert model(x[:0]).shape == (0, clf.num_classes)


def test_metadata_round_trip(clf, exported):
    path, report = exported
    model = OnnxModel(path)
    assert model.layout == "ntu25" and model.class_names == clf.class_names
    assert model.num_classes() == model.num_classes(clf.class_names) == clf.num_classes
    header = model.header
    assert header["frames"] == T and header["bodies"] == 1 and header["joints"] == 25
    assert header["model"]["name"] == "mlp" and header["units"] == "metres"
    assert header["preprocess"] == PREP and header["exporter"] == report.exporter
    # readable without skelrobust, straight from the ONNX file
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props[METADATA_KEY])["class_names"] == clf.class_names
    assert [i.name for i in proto.graph.input] == ["motion"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    with pytest.raises(ConfigError, match="3 class names"):
        model.num_classes(["a", "b", "c"])


def test_file_without_metadata(exported, tmp_path):
    proto = onnx.load(str(exported[0]))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    model = OnnxModel(bare)
    assert model.layout is None and model.class_names is None and model.header == {}
    assert model.num_classes() == 19
    oracle = QueryOracle.from_onnx(bare, skeleton="ntu25")
    assert oracle.class_names == [str(k) for k in range(19)]


def test_mismatched_input_is_a_shape_error_naming_the_file(exported):
    path, _ = exported
    model = OnnxModel(path)
    with pytest.raises(ShapeError) as err:
        model(torch.zeros(2, 3, T + 4, 25, 1))
    assert str(path) in str(err.value) and "(N, 3, 16, 25, 1)" in str(err.value)
    assert "(2, 3, 20, 25, 1)" in str(err.value)
    with pytest.raises(ShapeError, match=r"mlp\.onnx"):
        model(np.zeros((2, 3, T, 25, 2), np.float32))
    oracle = QueryOracle.from_onnx(path)  # through the oracle: the same error, not a VictimError
    oracle.reset(1)
    with pytest.raises(ShapeError, match=r"mlp\.onnx"):
        oracle.label(torch.zeros(1, 3, T + 4, 25, 1))


def test_corrupt_or_missing_files_are_checkpoint_errors(exported, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \x00\x01\x02" * 10)
    with pytest.raises(CheckpointError, match=r"junk\.onnx"):
        OnnxModel(junk)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(exported[0].read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"cut\.onnx"):
        OnnxModel(cut)
    with pytest.raises(CheckpointError, match="no such ONNX file"):
        OnnxModel(tmp_path / "missing.onnx")
    with pytest.raises(ConfigError, match="not available"):
        OnnxModel(exported[0], providers=["NoSuchExecutionProvider"])


def test_missing_onnxruntime_says_how_to_install(exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    with pytest.raises(ConfigError, match=r"pip install 'skelrobust\[onnx\]'"):
        OnnxModel(exported[0])


class _Branchy(nn.Module):
    """A module whose Python control flow depends on the data: padded clips take another path."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.mean(dim=(2, 3, 4))
        if bool((x.abs().sum(dim=(1, 3, 4)) == 0).any()):
            h = 3 * h + 1
        return self.fc(h)


def test_an_export_that_disagrees_is_refused_and_not_written(tmp_path):
    clf = Classifier.from_module(_Branchy(), "ntu25", list("abcd"), preprocess={"num_frames": 8})
    clf.model.config = {"num_bodies": 1}  # what the export reads for M
    clf.train()
    target = tmp_path / "branchy.onnx"
    with pytest.raises(CheckpointError, match="disagrees") as err:
        export_onnx(clf, target)
    assert "branchy.onnx" in str(err.value) and "not written" in str(err.value)
    assert not target.exists() and not list(tmp_path.iterdir())
    assert clf.validate and clf.training  # the classifier is left as it was


def test_export_arguments_are_checked(clf, tmp_path):
    with pytest.raises(ConfigError, match="frames"):
        export_onnx(clf, tmp_path / "a.onnx", frames=1)
    with pytest.raises(ConfigError, match="exporter"):
        export_onnx(clf, tmp_path / "a.onnx", exporter="magic")
    with pytest.raises(ConfigError, match="Classifier"):
        export_onnx(nn.Linear(2, 2), tmp_path / "a.onnx")


def test_onnx_victim_answers_like_its_classifier(clf, data, exported):
    x = torch.from_numpy(data.x)
    onnx_oracle = QueryOracle.from_onnx(exported[0])
    torch_oracle = QueryOracle.from_classifier(clf)
    assert onnx_oracle.skeleton.name == "ntu25" and onnx_oracle.class_names == clf.class_names
    assert onnx_oracle.num_classes == torch_oracle.num_classes
    for oracle in (onnx_oracle, torch_oracle):
        oracle.reset(len(x))
    assert torch.equal(onnx_oracle.label(x), torch_oracle.label(x))
    assert onnx_oracle.queries.tolist() == [1] * len(x)


@pytest.mark.parametrize("name,options", [("hsja", {"boundary_tol": 0.01}), ("basar", {})])
def test_same_attack_result_on_the_onnx_file_and_the_classifier(clf, data, exported, name,
                                                                 options):
    """Label-only attacks see labels only: equal answers give equal results (same seed).

    ``boundary_tol`` keeps HopSkipJump's binary searches off the exact decision boundary,
    where float rounding (onnxruntime vs torch, ~1e-6 in the logits) could flip a label.
    """
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y).long()
    y = clf.predict(x)  # the victim is untrained: attack its own labels
    pool = (x[20:], torch.from_numpy(data.y[20:]).long(), torch.from_numpy(data.lengths[20:]))
    lengths = torch.from_numpy(data.lengths[:4])
    results = []
    for oracle in (QueryOracle.from_onnx(exported[0]), QueryOracle.from_classifier(clf)):
        atk = create_attack(name, oracle, max_queries=150, pool=pool, seed=3, **options)
        results.append(atk.attack(x[:4], y[:4], lengths=lengths))
    a, b = results
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.queries, b.queries)
    assert torch.equal(a.success, b.success) and torch.equal(a.adv_pred, b.adv_pred)
    assert a.info["access"] == "label" and a.info["query_budget"] == 150
    assert int(a.queries.max()) <= 150

