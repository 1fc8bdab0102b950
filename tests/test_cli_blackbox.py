"""The black-box CLI: export to ONNX, label-only attacks on a classifier or an ONNX file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_support import one_line_error, run
from skelrobust.cli import main

pytest.importorskip("onnxruntime", reason="the onnx extra (pip install 'skelrobust[onnx]')")

SMALL = ("-o", "num_clips=120")  # synthetic splits of 120 clips keep these tests fast


@pytest.fixture(scope="module")
def victim(tmp_path_factory):
    """A small MLP trained for one epoch on synthetic (16 frames), and its ONNX export."""
    root = tmp_path_factory.mktemp("blackbox")
    ckpt = root / "mlp"
    code = main(["train", "--data", "synthetic", "--model", "mlp", "--epochs", "1", "--frames",
                 "16", "--out", str(ckpt), "-q", "--json", "--optimizer", "adam", "--lr",
                 "0.003", *SMALL])
    assert code == 0
    model = root / "mlp.onnx"
    assert main(["export", str(ckpt), "--onnx", str(model), "-q", "--json"]) == 0
    return ckpt, model


def test_export_writes_a_checked_onnx_file(capsys, victim, tmp_path):
    ckpt, model = victim
    code, _, err = run(capsys, "export", str(ckpt), "--onnx", str(model))
    one_line_error(code, err, "pass --overwrite")  # never replaced silently
    code, _, err = run(capsys, "export", str(ckpt), "--onnx", str(tmp_path / "m.txt"))
    one_line_error(code, err, "ending in .onnx")
    from skelrobust.deploy import OnnxModel

    onnx_model = OnnxModel(model)
    assert onnx_model.input_shape == (None, 3, 16, 25, 1)
    assert onnx_model.header["data"]["name"] == "synthetic"
    assert onnx_model.header["data"]["options"] == {"num_clips": 120}


def test_export_text_reports_the_agreement(capsys, victim, tmp_path):
    code, text, err = run(capsys, "export", str(victim[0]), "--onnx", str(tmp_path / "m.onnx"),
                          "--frames", "12")
    assert code == 0, err
    assert "max |logit difference|" in text and "same label on 8 of 8" in text
    assert "(N, 3, 12, 25, 1)" in text and "next: skelrobust attack" in text
    assert (tmp_path / "m.onnx").is_file()


def test_attacks_list_their_access(capsys):
    code, out, _ = run(capsys, "attacks", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["attacks"]}
    assert rows["hsja"]["access"] == "label" and rows["pgd"]["access"] == "gradient"
    assert rows["hopskipjump"]["aliases"] == "alias of hsja"
    code, out, _ = run(capsys, "attacks")
    assert "access" in out and "hopskipjump" in out
    code, out, _ = run(capsys, "attack", "--help")
    assert code == 0 and "hsja    label" in out and "CKPT_DIR_OR_ONNX" in out


def test_hsja_on_the_onnx_file_writes_outputs_and_renders(capsys, victim, tmp_path):
    _, model = victim
    out = tmp_path / "hsja"
    code, text, err = run(capsys, "attack", str(model), "--attack", "hsja", "--queries", "60",
                          "--n", "3", "--seed", "1", "--out", str(out), "--json", "-q", *SMALL)
    assert code == 0, err
    assert err == ""
    summary = json.loads(text)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["success_rate"] == pytest.approx(summary["success_rate"])
    assert saved["checkpoint"]["format"] == "onnx" and saved["victim_kind"] == "onnx"
    assert saved["data"]["name"] == "synthetic" and saved["data"]["split"] == "test"
    assert saved["access"] == "label" and saved["query_budget"] == 60
    assert saved["queries_max"] <= 60 and 0 < saved["queries_mean"] <= 60
    assert saved["selection_queries"] == 120 and saved["selected"] == 3
    settings = saved["settings"]
    assert settings["queries"] == 60 and settings["attack"]["max_queries"] == 60
    assert settings["pool"] == {"split": "train", "clips": 120, "data": "synthetic train"}
    assert settings["attack"]["pool_size"] == 120 and settings["attack"]["seed"] == 1
    with np.load(out / "adversarial.npz") as f:
        assert f["x_adv"].shape == (3, 3, 16, 25, 1) and (f["queries"] <= 60).all()
        assert str(f["layout"]) == "ntu25" and len(f["class_names"]) == 19
    code, _, err = run(capsys, "render", str(out), "--out", str(tmp_path / "c.gif"), "-q")
    assert code == 0, err
    assert (tmp_path / "c.gif").stat().st_size > 0


def test_same_result_on_the_classifier_and_its_onnx_file(capsys, victim, tmp_path):
    ckpt, model = victim
    npz = []
    for source, name in ((ckpt, "clf"), (model, "onnx")):
        out = tmp_path / name
        code, _, err = run(capsys, "attack", str(source), "--attack", "hsja", "--queries", "80",
                           "--n", "2", "--pool-split", "val", "-a", "boundary_tol=0.01",
                           "--out", str(out), "-q", *SMALL)
        assert code == 0, err
        with np.load(out / "adversarial.npz") as f:
            npz.append({k: f[k] for k in ("x_adv", "queries", "adv_pred", "index")})
        summary = json.loads((out / "summary.json").read_text())
        assert summary["settings"]["pool"]["split"] == "val"
    for key in npz[0]:
        assert np.array_equal(npz[0][key], npz[1][key]), key


def test_black_box_refusals_are_one_line(capsys, victim, tmp_path):
    ckpt, model = victim
    out = tmp_path / "o"
    code, _, err = run(capsys, "attack", str(model), "--attack", "pgd", "--out", str(out), "-q")
    one_line_error(code, err, "needs the victim's gradients")
    assert "hsja" in err and not out.exists()
    code, _, err = run(capsys, "attack", str(model), "--attack", "hsja", "--queries", "0",
                       "--out", str(out), "-q")
    one_line_error(code, err, "--queries")
    code, _, err = run(capsys, "attack", str(ckpt), "--attack", "pgd", "--queries", "10",
                       "--out", str(out), "-q")
    one_line_error(code, err, "no query budget")
    code, _, err = run(capsys, "attack", str(model), "--attack", "hsja", "--goal", "abn",
                       "--out", str(out), "-q", *SMALL)
    one_line_error(code, err, "anything-but-N")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    code, _, err = run(capsys, "attack", str(bad), "--attack", "hsja", "--out", str(out), "-q")
    one_line_error(code, err, "bad.onnx")


def test_onnx_file_without_metadata_needs_data(capsys, victim, tmp_path):
    import onnx

    proto = onnx.load(str(victim[1]))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    code, _, err = run(capsys, "attack", str(bare), "--attack", "hsja", "--out",
                       str(tmp_path / "o"), "-q")
    one_line_error(code, err, "--data")
    code, text, err = run(capsys, "attack", str(bare), "--attack", "hsja", "--data",
                          "synthetic", "--queries", "30", "--n", "1", "--out",
                          str(tmp_path / "o2"), "-q", "--json", *SMALL)
    assert code == 0, err
    summary = json.loads(text)
    assert summary["data"]["split"] == "test" and summary["settings"]["pool"]["split"] == "train"


def test_victim_failure_keeps_partial_results(capsys, victim, tmp_path, monkeypatch):
    from skelrobust.deploy import OnnxModel

    real, calls = OnnxModel.__call__, {"n": 0}

    def flaky(self, x):
        calls["n"] += 1
        if calls["n"] > 6:  # the selection and the first queries succeed, then it breaks
            raise RuntimeError("connection reset by peer")
        return real(self, x)

    monkeypatch.setattr(OnnxModel, "__call__", flaky)
    out = tmp_path / "fail"
    code, _, err = run(capsys, "attack", str(victim[1]), "--attack", "hsja", "--queries",
                       "100", "--n", "2", "--out", str(out), "-q", *SMALL)
    one_line_error(code, err, "the victim failed")
    assert "connection reset by peer" in err and str(out / "summary.json") in err
    summary = json.loads((out / "summary.json").read_text())
    assert "connection reset by peer" in summary["victim_error"]
    assert (out / "adversarial.npz").is_file()


def test_basar_on_the_onnx_file(capsys, victim, tmp_path):
    pytest.importorskip("skelrobust.attacks.basar")  # importing it registers "basar"
    out = tmp_path / "basar"
    code, text, err = run(capsys, "attack", str(victim[1]), "--attack", "basar", "--queries",
                          "30", "--n", "1", "--out", str(out), "--json", "-q", *SMALL)
    assert code == 0, err
    summary = json.loads(text)
    assert summary["attack"] == "basar" and summary["query_budget"] == 30
    assert summary["queries_max"] <= 30 and summary["settings"]["attack"]["pool_size"] == 120
    assert (out / "adversarial.npz").is_file()
