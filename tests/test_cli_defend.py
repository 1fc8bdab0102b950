"""``skelrobust defend``: every defense trained (or wrapped) around a saved classifier, its
output taken by eval/attack/render/export, bad input refused in one line, and an interrupted
run resumed to the weights of an uninterrupted one."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from attack_fixtures import one_thread  # noqa: F401  (autouse: single-threaded module)
from cli_support import one_line_error, run
from defense_fixtures import alter_base_weight
from skelrobust.classifier import Classifier
from skelrobust.cli import main
from skelrobust.config import load_for_classifier
from skelrobust.data.dataset import SkeletonDataset
from skelrobust.defenses.base import get_defense
from skelrobust.skeleton import get_skeleton
from skelrobust.training import evaluate

SMALL = ("-o", "num_clips=60")  # synthetic splits of 60 clips keep these tests fast
BEAT_TRAINING = '{"burn_in": 1, "sample_every": 1, "sgld_steps": 1, "adversary_steps": 1}'
OPTIONS = {
    "beat": ("-d", "samples=2", "-d", f"training={BEAT_TRAINING}"),
    "smoothing": ("-d", "sigma_mm=20", "-d", "n0=10", "-d", "n=20"),
    "smart-at": ("-d", "steps=1"),
    "trades": ("-d", "steps=1"),
    "mart": ("-d", "steps=1"),
    "mmat": ("-d", "steps=1", "-d", "projection_steps=1"),
}


def defend(capsys, base, name, out, *extra):
    """``(exit code, JSON payload or None, stderr)`` of ``skelrobust defend`` (2 epochs)."""
    code, text, err = run(capsys, "defend", str(base), "--defense", name, *OPTIONS[name],
                          "--epochs", "2", "--out", str(out), "--json", "-q", *extra)
    return code, (json.loads(text) if code == 0 else None), err


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A small MLP trained for three epochs on 60 synthetic clips (16 frames), through the CLI."""
    out = tmp_path_factory.mktemp("defend") / "mlp"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", "--data", "synthetic", "--model", "mlp", "--epochs", "3",
                     "--frames", "16", "--out", str(out), "-q", "--json", "--optimizer", "adam",
                     "--lr", "0.003", *SMALL])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def defended(base, tmp_path_factory):
    """Every defense through ``defend`` (2 epochs): ``name -> (folder, JSON payload)``."""
    root = tmp_path_factory.mktemp("defended")
    results = {}
    for name in OPTIONS:
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            code = main(["defend", str(base), "--defense", name, *OPTIONS[name], "--epochs",
                         "2", "--out", str(root / name), "--json", "-q"])
        assert code == 0, name
        results[name] = root / name, json.loads(text.getvalue())
    return results


@pytest.mark.parametrize("name", list(OPTIONS))
def test_every_defense_defends_and_reloads(base, defended, name):
    out, payload = defended[name]
    trains = name != "smoothing"
    assert payload["defense"] == name and payload["trained"] is trains
    assert payload["epochs"] == (2 if trains else 0) and payload["seconds"] >= 0
    assert payload["stochastic"] is (name == "smoothing")
    assert payload["base"]["path"].endswith("classifier.safetensors")
    held = {p.name for p in out.iterdir()}
    assert held == ({"classifier.safetensors", "last.safetensors", "history.json", "resume.pt"}
                    if trains else {"classifier.safetensors"})
    if trains:
        assert len(json.loads((out / "history.json").read_text())["history"]) == 2
    first, again = (Classifier.load(out) for _ in range(2))
    assert type(first) is get_defense(name)
    test = load_for_classifier(first)
    torch.manual_seed(0)  # the seed defend evaluated smoothing under
    top1 = evaluate(first, test).top1
    assert top1 == pytest.approx(payload["test"]["top1"], abs=1e-9)
    x, _ = test.tensors()
    torch.manual_seed(1)
    p1 = first.predict(x)
    torch.manual_seed(1)
    assert torch.equal(p1, again.predict(x))  # stochastic smoothing: the same under one seed
    if first.freezes_base:  # the base in the file is the given classifier, bit for bit
        given = Classifier.load(base).state_dict()
        assert all(torch.equal(v, given[k]) for k, v in first.base.state_dict().items())
    else:
        assert first.args["trained_from"] == payload["base"]["fingerprint"]


def test_text_output_and_smoothing_says_nothing_to_train(capsys, base, tmp_path):
    code, out, err = run(capsys, "defend", str(base), "--defense", "smoothing",
                         *OPTIONS["smoothing"], "--epochs", "3", "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert "nothing to train" in out and "held-out accuracy" in out
    assert "--epochs ignored" in err
    code, out, err = run(capsys, "defend", str(base), "--defense", "trades", "-d", "steps=1",
                         "--epochs", "1", "--out", str(tmp_path / "t"))
    assert code == 0, err
    assert "trained trades" in out and "1 epochs" in out and "classifier.safetensors" in out
    assert "epoch 1/1" in err  # the per-epoch progress (bars, then a line) without --quiet


def test_eval_attack_render_export_take_a_defended_classifier(capsys, defended, tmp_path):
    beat, smoothing, trades = (defended[n][0] for n in ("beat", "smoothing", "trades"))
    code, out, err = run(capsys, "eval", str(beat), "--json", "-q")
    assert code == 0, err
    assert json.loads(out)["n"] == 60
    code, out, err = run(capsys, "attack", str(beat), "--attack", "smart", "--n", "3",
                         "--steps", "3", "--out", str(tmp_path / "beat-smart"), "--json", "-q")
    assert code == 0, err
    assert json.loads(out)["selected"] >= 1
    code, out, err = run(capsys, "render", str(tmp_path / "beat-smart"), "--out",
                         str(tmp_path / "clip.gif"), "-q")
    assert code == 0, err
    assert (tmp_path / "clip.gif").stat().st_size > 0
    code, out, err = run(capsys, "attack", str(trades), "--attack", "hsja", "--n", "2",
                         "--queries", "30", "--out", str(tmp_path / "trades-hsja"), "--json",
                         "-q")
    assert code == 0, err
    assert json.loads(out)["queries_max"] <= 30
    code, out, err = run(capsys, "attack", str(smoothing), "--attack", "smart", "--n", "2",
                         "--steps", "2", "--out", str(tmp_path / "smooth-smart"), "--json", "-q")
    assert code == 0, err  # a stochastic victim: EOT by default
    pytest.importorskip("onnxruntime", reason="the onnx extra")
    code, out, err = run(capsys, "export", str(smoothing), "--onnx", str(tmp_path / "s.onnx"),
                         "-q")
    one_line_error(code, err, "stochastic")
    assert not (tmp_path / "s.onnx").exists()
    code, out, err = run(capsys, "export", str(beat), "--onnx", str(tmp_path / "b.onnx"),
                         "--json", "-q")
    assert code == 0, err
    report = json.loads(out)
    assert report["model"] == "beat on mlp" and report["labels_agree"] == report["check_clips"]
    from skelrobust.deploy import OnnxModel

    header = OnnxModel(tmp_path / "b.onnx").header
    assert header["model"]["name"] == "mlp" and header["defenses"][0]["defense"] == "beat"
    reloaded = Classifier.load(beat)
    assert int(reloaded.kept) >= 1 and "kept" in reloaded.state_dict()  # restored after export


# ---------------------------------------------------------------------- bad input
def _other_layout(base, path):
    """A classifier of layout kinect20 that records the synthetic (ntu25) data of ``base``."""
    clf = Classifier.load(base)
    rng = np.random.default_rng(0)
    n = 2 * clf.num_classes
    data = SkeletonDataset(x=rng.normal(0, 0.3, (n, 3, 16, 20, 1)).astype(np.float32),
                           y=np.arange(n) % clf.num_classes, class_names=clf.class_names,
                           skeleton=get_skeleton("kinect20"), name="random")
    other = Classifier.create("mlp", data, size="small", preprocess=clf.preprocess)
    other.info["data"] = clf.info["data"]
    return other.save(path)


def test_bad_input_is_one_line_naming_the_file_or_argument(capsys, base, tmp_path):
    out = str(tmp_path / "out")
    junk = tmp_path / "junk.safetensors"
    save_file({"w": torch.zeros(3)}, str(junk))
    code, _, err = run(capsys, "defend", str(junk), "--defense", "trades", "--out", out)
    one_line_error(code, err, "junk.safetensors")
    assert "skelrobust header" in err
    code, _, err = run(capsys, "defend", str(tmp_path / "none"), "--defense", "trades",
                       "--out", out)
    one_line_error(code, err, "no such classifier file")
    code, _, err = run(capsys, "defend", str(base), "--defense", "shield", "--out", out)
    one_line_error(code, err, "unknown defense 'shield'")
    assert all(n in err for n in ("beat", "smoothing", "smart-at", "trades", "mart", "mmat"))
    for option, needle in (("sigma_mm=0", "sigma_mm"), ("sigma_mm=-5", "sigma_mm")):
        code, _, err = run(capsys, "defend", str(base), "--defense", "smoothing", "-d", option,
                           "--out", out)
        one_line_error(code, err, needle)
    code, _, err = run(capsys, "defend", str(base), "--defense", "smoothing", "-d", "n0=100",
                       "-d", "n=10", "--out", out)
    one_line_error(code, err, "n (estimation draws, 10) must be >= n0")
    code, _, err = run(capsys, "defend", str(base), "--defense", "beat", "-d", "gamma=1",
                       "--out", out)
    one_line_error(code, err, "unknown option(s) ['gamma']")
    code, _, err = run(capsys, "defend", str(base), "--defense", "beat", "-d",
                       'training={"warp": 1}', "--epochs", "1", "--out", out)
    one_line_error(code, err, "--defense-option")
    code, _, err = run(capsys, "defend", str(base), "--defense", "beat", "-d", "samples",
                       "--out", out)
    one_line_error(code, err, "expected KEY=VALUE")
    code, _, err = run(capsys, "defend", str(base), "--defense", "trades", *SMALL, "-o",
                       "classes=[wave_left, wave_right]", "--out", out)
    one_line_error(code, err, "synthetic train has 2 classes")
    assert "expects layout 'ntu25' and its 19 classes" in err
    other = _other_layout(base, tmp_path / "kinect")
    code, _, err = run(capsys, "defend", str(other), "--defense", "trades", "--out", out)
    one_line_error(code, err, "synthetic train has layout 'ntu25'")
    assert "expects layout 'kinect20'" in err
    code, _, err = run(capsys, "defend", str(base), "--defense", "trades", "--resume",
                       "--overwrite", "--out", out)
    one_line_error(code, err, "contradict")
    assert not (tmp_path / "out").exists()  # nothing refused left a folder behind


def test_altered_base_weights_are_refused(capsys, defended, tmp_path):
    altered = tmp_path / "altered.safetensors"
    alter_base_weight(defended["beat"][0] / "classifier.safetensors", altered, 1e-3)
    code, _, err = run(capsys, "eval", str(altered))
    one_line_error(code, err, "altered.safetensors")
    assert "fingerprint" in err and "altered" in err
    code, _, err = run(capsys, "defend", str(altered), "--defense", "smoothing", "--out",
                       str(tmp_path / "s"))
    one_line_error(code, err, "fingerprint")


def test_out_is_guarded(capsys, base, tmp_path):
    out = tmp_path / "t"
    code, _, err = defend(capsys, base, "smoothing", out)
    assert code == 0, err
    (out / "notes.txt").write_text("mine")
    code, _, err = defend(capsys, base, "smoothing", out)
    one_line_error(code, err, "pass --overwrite")
    code, _, err = defend(capsys, base, "trades", out, "--resume")
    one_line_error(code, err, "holds no interrupted defend run")
    code, _, err = defend(capsys, base, "smoothing", out, "--resume")
    one_line_error(code, err, "nothing to train")
    code, payload, err = defend(capsys, base, "trades", out, "--overwrite")
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"  # only defend's own files replaced
    assert payload["defense"] == "trades"


# ---------------------------------------------------------------------- resuming
class Interrupt(KeyboardInterrupt):
    """Ctrl-C after the first epoch."""


def _interrupting_fit(monkeypatch):
    """Make ``train_defense``'s fit stop (as by Ctrl-C) after its first finished epoch."""
    import skelrobust.defenses.training as training

    real = training.fit

    def fit(*args, **kwargs):
        def on_epoch(record):
            if record["epoch"] == 1:
                raise Interrupt

        return real(*args, on_epoch=on_epoch, **kwargs)

    monkeypatch.setattr(training, "fit", fit)


@pytest.mark.parametrize("name", ["trades", "beat"])
def test_interrupted_defend_resumes_to_the_uninterrupted_weights(capsys, monkeypatch, base,
                                                                 tmp_path, name):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    code, payload, err = defend(capsys, base, name, whole, "--epochs", "3")
    assert code == 0, err
    with monkeypatch.context() as m:
        _interrupting_fit(m)
        code, _, err = defend(capsys, base, name, cut, "--epochs", "3")
    assert code == 130 and "interrupted" in err
    history = json.loads((cut / "history.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [1] and (cut / "resume.pt").is_file()
    code, _, err = defend(capsys, base, name, cut, "--epochs", "3")
    one_line_error(code, err, "--resume continues it")
    code, _, err = defend(capsys, base, name, cut, "--epochs", "4", "--resume")
    one_line_error(code, err, "epochs 3 (now 4)")
    code, _, err = defend(capsys, base, name, cut, "--epochs", "3", "--resume", "-d",
                          "samples=3" if name == "beat" else "steps=2")
    one_line_error(code, err, "give the same --defense and --defense-option")
    code, resumed, err = defend(capsys, base, name, cut, "--epochs", "3", "--resume")
    assert code == 0, err
    assert resumed["resumed_from_epoch"] == 1 and len(resumed["history"]) == 3
    a = load_file(str(whole / "classifier.safetensors"))
    b = load_file(str(cut / "classifier.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), name
    assert resumed["test"]["top1"] == payload["test"]["top1"]
