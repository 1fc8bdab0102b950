"""The command line: listings, train, eval, attack, render, demo; outputs that can be trusted."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from cli_support import one_line_error, run
from skelrobust.cli import main
from skelrobust.data.synthetic import SYNTHETIC_CLASSES


@pytest.fixture(scope="module")
def mlp_ckpt(tmp_path_factory):
    """A small MLP trained for one epoch on synthetic (16 frames), through the CLI."""
    out = tmp_path_factory.mktemp("ckpt") / "mlp"
    code = main(["train", "--data", "synthetic", "--model", "mlp", "--size", "small",
                 "--epochs", "1", "--frames", "16", "--out", str(out), "--json", "-q",
                 "--optimizer", "adam", "--lr", "0.003"])
    assert code == 0
    return out


def test_data_list_shows_protocols(capsys):
    code, out, _ = run(capsys, "data", "list", "--json")
    assert code == 0
    specs = {d["name"]: d for d in json.loads(out)["datasets"]}
    assert [p["name"] for p in specs["ntu60"]["protocols"]] == ["xsub", "xview"]
    assert [p["name"] for p in specs["ntu120"]["protocols"]] == ["xsub", "xset"]
    assert len(specs["sbu"]["protocols"]) == 5
    assert specs["synthetic"]["protocols"][0] == {"name": "standard", "train": "train",
                                                  "val": "val", "test": "test"}
    code, out, _ = run(capsys, "data", "list")
    assert "xsub, xview" in out


def test_data_info_synthetic(capsys):
    code, out, _ = run(capsys, "data", "info", "synthetic", "--split", "val", "--json", "-q")
    assert code == 0
    info = json.loads(out)["splits"]["val"]
    assert info["clips"] == 400 and info["layout"] == "ntu25"
    assert 20 < info["bone_length_cm"]["left_elbow-left_shoulder"] < 40
    code, out, _ = run(capsys, "data", "info", "synthetic", "--split", "val", "-q")
    assert "bone lengths" in out and "frames mean" in out
    assert "protocols (skelrobust train --protocol NAME): standard (train train, val val, " \
           "test test)" in out


def test_models_and_attacks_listed_from_the_registries(capsys):
    from skelrobust.attacks.registry import ATTACKS
    from skelrobust.models.registry import list_models

    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [m["name"] for m in listed["models"]] == list_models()
    assert all(m["description"] for m in listed["models"])
    assert [f["format"] for f in listed["checkpoint_formats"]] == ["shiftgcn"]
    code, out, _ = run(capsys, "attacks", "--json")
    assert code == 0
    rows = json.loads(out)["attacks"]
    assert sorted(r["name"] for r in rows) == sorted(ATTACKS)
    assert all(r["description"] for r in rows)
    code, out, _ = run(capsys, "attacks")
    assert "pgd" in out and "Projected gradient descent" in out


def test_train_then_eval_defaults_to_the_classifiers_data(capsys, mlp_ckpt):
    history = json.loads((mlp_ckpt / "history.json").read_text())
    assert len(history["history"]) == 1
    code, out, err = run(capsys, "eval", str(mlp_ckpt), "--json", "-q")  # no --data, --split
    assert code == 0, err
    ev = json.loads(out)
    assert ev["data"]["name"] == "synthetic" and ev["data"]["split"] == "test"
    assert ev["n"] == 600 and len(ev["confusion"]) == len(SYNTHETIC_CLASSES)
    assert len(ev["data"]["fingerprint"]) == 16 and len(ev["checkpoint"]["sha256"]) == 16
    code, out, err = run(capsys, "eval", str(mlp_ckpt), "--split", "val", "--json", "-q")
    assert code == 0 and json.loads(out)["n"] == 400


def test_train_reports_protocol_validation_and_test(capsys, tmp_path):
    code, out, err = run(capsys, "train", "--model", "mlp", "--epochs", "2", "--frames", "16",
                         "--out", str(tmp_path / "r"), "--json", "-o", "num_clips=120",
                         "--optimizer", "adam", "--lr", "0.003")
    assert code == 0, err
    trained = json.loads(out)
    assert trained["protocol"]["name"] == "standard" and trained["validation"].startswith(
        "validation: split val")
    assert trained["test"]["n"] == 120 and trained["kept_epoch"] in (1, 2)
    # progress: readable epoch lines on stderr, never Python dicts; stdout stays JSON
    epochs = [line for line in err.splitlines() if re.match(r"epoch \d+/2: loss", line)]
    assert len(epochs) == 2 and "train top-1" in epochs[0] and "val top-1" in epochs[0]
    assert "{" not in "".join(epochs)


def test_train_from_yaml_config(capsys, tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("data: {name: synthetic, frames: 16, options: {num_clips: 112}}\n"
                   "model: {name: mlp, size: small}\n"
                   "train: {epochs: 1, optimizer: adam, lr: 0.003}\n")
    code, out, err = run(capsys, "train", "--config", str(cfg), "--out", str(tmp_path / "r"),
                         "--json", "-q")
    assert code == 0, err
    assert json.loads(out)["history"][0]["epoch"] == 1
    for text, needle in (("train: {epochz: 1}\n", "epochz"),
                         ("train: {lr: .nan}\n", "lr: must be a finite number"),
                         ("data: {frames: .inf}\n", "frames: must be an integer"),
                         ("train: {epochs: 2.5}\n", "epochs: must be an integer"),
                         ("train: {seed: -1}\n", "seed: must be in")):
        cfg.write_text(text)
        code, _, err = run(capsys, "train", "--config", str(cfg), "--out", str(tmp_path / "q"),
                           "-q")
        one_line_error(code, err, needle)


@pytest.mark.parametrize("argv, needle", [
    (["data", "info", "nope"], "unknown dataset 'nope'"),
    (["train", "--model", "nope", "--out", "x", "--epochs", "1"], "unknown model 'nope'"),
    (["eval", "/nonexistent/ckpt"], "no such classifier"),
    (["train", "--epochs", "0", "--out", "x"], "--epochs: must be in [1, 100000], got 0"),
    (["train", "--lr", "nan", "--out", "x"], "--lr: must be a finite number"),
    (["train", "--protocol", "xsub", "--out", "x"], "unknown protocol of dataset 'synthetic'"),
    (["attack", "x", "--out", "y", "--n", "0"], "--n: must be in [1,"),
    (["attack", "x", "--out", "y", "--budget-mm", "inf"], "--budget-mm: must be a finite"),
    (["attack", "x", "--out", "y", "--steps", "-3"], "--steps: must be in [1,"),
    (["attack", "x", "--out", "y", "--norm", "l7"], "invalid choice: 'l7'"),
    (["render", "x", "--out", "y.gif", "--fps", "0"], "--fps: must be in (0, 1000]"),
    (["--threads", "0", "models"], "invalid choice: '0'"),
    (["models", "--threads", "0"], "--threads: must be in [1, 1024]"),
    (["nope"], "invalid choice: 'nope'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_errors_are_one_line(capsys, argv, needle):
    code, _, err = run(capsys, *argv, *(["-q"] if argv and argv[0] != "--threads" else []))
    one_line_error(code, err, needle)


def test_console_script_error_exit_code(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    proc = subprocess.run([sys.executable, "-m", "skelrobust.cli", "eval", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "bad.safetensors" in proc.stderr and "Traceback" not in proc.stderr
    assert "supported formats" in proc.stderr


def test_unsupported_checkpoint_names_the_supported_formats(capsys, tmp_path):
    import torch

    other = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(2, 2)}, other)
    code, _, err = run(capsys, "eval", str(other), "-q")
    one_line_error(code, err, "a PyTorch state dict of no supported model")
    assert "shiftgcn" in err and "skelrobust classifier" in err
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    code, _, err = run(capsys, "eval", str(text), "-q")
    one_line_error(code, err, "not a supported checkpoint")


def test_broken_pipe_ends_quietly():
    """stdout closed before the command writes: no traceback, exit 141 (as SIGPIPE)."""
    proc = subprocess.Popen([sys.executable, "-m", "skelrobust.cli", "models"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and b"Traceback" not in err and err == b""


def test_unexpected_failure_is_one_line(capsys, monkeypatch):
    import skelrobust.cli.commands as commands

    def boom(args):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(commands, "cmd_models", boom)
    code, _, err = run(capsys, "models")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "internal error: RuntimeError: something broke" in err


def test_attack_writes_summary_with_settings_and_fingerprints(capsys, tmp_path, mlp_ckpt):
    out = tmp_path / "atk"
    code, text, err = run(capsys, "attack", str(mlp_ckpt), "--attack", "pgd", "--budget-mm",
                          "40", "--steps", "5", "--n", "12", "--seed", "3", "--out", str(out),
                          "--json", "-q")
    assert code == 0, err
    assert err == ""  # --quiet: no logs, no progress
    summary = json.loads(text)
    assert summary["selected"] == 12 and summary["clean_accuracy"] == 100.0
    saved = json.loads((out / "summary.json").read_text())
    assert saved["success_rate"] == pytest.approx(summary["success_rate"])
    settings = saved["settings"]
    assert settings["clips_requested"] == 12 and settings["clips"] == 12
    assert settings["seed"] == 3 and settings["attack"]["seed"] == 3
    assert settings["attack"]["steps"] == 5 and settings["attack"]["budget_mm"] == 40.0
    assert settings["attack"]["norm"] == "joint" and saved["norm"] == "joint"
    assert settings["attack"]["step_mm"] == pytest.approx(2.5 * 40 / 5)  # the default, resolved
    from skelrobust import __version__

    assert saved["provenance"]["skelrobust"] == __version__
    assert len(saved["checkpoint"]["sha256"]) == 16 and len(saved["data"]["fingerprint"]) == 16
    with np.load(out / "adversarial.npz") as f:
        joint = np.linalg.norm(f["x_adv"].astype(np.float64) - f["x_clean"], axis=1)
        assert f["x_adv"].shape == (12, 3, 16, 25, 1) and joint.max() <= 0.040
        assert f["success"].mean() * 100 == pytest.approx(summary["success_rate"])
    # earlier results are never mixed with new ones
    code, _, err = run(capsys, "attack", str(mlp_ckpt), "--attack", "fgsm", "--n", "4",
                       "--out", str(out), "-q")
    one_line_error(code, err, "already holds earlier results")
    assert json.loads((out / "summary.json").read_text())["attack"] == "pgd"
    code, _, err = run(capsys, "attack", str(mlp_ckpt), "--attack", "fgsm", "--n", "4",
                       "--out", str(out), "-q", "--overwrite")
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text())["attack"] == "fgsm"
    code, _, err = run(capsys, "attack", str(mlp_ckpt), "--attack", "smart", "-a", "bogus=1",
                       "--out", str(tmp_path / "o2"), "-q")
    one_line_error(code, err, "bogus")
    code, _, err = run(capsys, "attack", str(mlp_ckpt), "--attack", "nope",
                       "--out", str(tmp_path / "o3"), "-q")
    one_line_error(code, err, "unknown attack 'nope'")


def test_attack_text_shows_tails_and_norm(capsys, tmp_path, mlp_ckpt):
    code, text, err = run(capsys, "attack", str(mlp_ckpt), "--attack", "pgd", "--steps", "5",
                          "--n", "8", "--norm", "linf", "--out", str(tmp_path / "a"))
    assert code == 0, err
    assert "budget 20 mm (linf norm)" in text
    assert "median" in text and "p95" in text and "joint-frames moved > 50 mm (%)" in text
    assert "attacking 8 clips of synthetic test with pgd" in err


def test_render_checks_its_input(capsys, tmp_path, mlp_ckpt):
    src = tmp_path / "atk"
    code, _, err = run(capsys, "attack", str(mlp_ckpt), "--attack", "fgsm", "--n", "2",
                       "--out", str(src), "-q")
    assert code == 0, err
    with np.load(src / "adversarial.npz") as f:
        arrays = dict(f)
    arrays["x_adv"] = arrays["x_adv"].copy()
    arrays["x_adv"][0, 0, 3, 2, 0] = np.nan
    bad = tmp_path / "nan.npz"
    np.savez(bad, **arrays)
    code, _, err = run(capsys, "render", str(bad), "--out", str(tmp_path / "c.gif"), "-q")
    one_line_error(code, err, "NaN or infinite")
    arrays["x_adv"][0, 0, 3, 2, 0] = 0.0
    arrays["adv_pred"] = arrays["adv_pred"].copy()
    arrays["adv_pred"][0] = 99
    np.savez(bad, **arrays)
    code, _, err = run(capsys, "render", str(bad), "--out", str(tmp_path / "c.gif"), "-q")
    one_line_error(code, err, "label outside")
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes((src / "adversarial.npz").read_bytes()[:300])
    code, _, err = run(capsys, "render", str(truncated), "--out", str(tmp_path / "c.gif"), "-q")
    one_line_error(code, err, "cut.npz")


def test_demo_trains_attacks_defends_and_reports(capsys, tmp_path, monkeypatch):
    """The demo's whole path (sweep, runner, report, table, next steps) on a shrunken sweep:
    the real one takes minutes (benchmarks/demo_time.py measures it)."""
    import skelrobust.demo as demo

    real = demo.demo_sweep

    def tiny(*args, **kwargs):
        sweep = real(*args, **kwargs)
        sweep.update(models=["mlp"], clips=6, train={**sweep["train"], "epochs": 2},
                     data={"synthetic": {"frames": 20, "options": {"num_clips": 96}}},
                     attack_options={"smart": {"steps": 30},
                                     "ciasa": {"steps": 10, "discriminator": {"steps": 5}},
                                     "basar": {"max_queries": 60}},
                     defense_options={"beat": {"samples": 1, "training": {
                         "burn_in": 0, "sample_every": 1, "sgld_steps": 1,
                         "adversary_steps": 1}}})
        return sweep

    monkeypatch.setattr(demo, "demo_sweep", tiny)
    out = tmp_path / "demo"
    code, text, err = run(capsys, "demo", "--out", str(out), "--clips", "6", "-q")
    assert code == 0, err
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("defense"))
    assert header.split()[:5] == ["defense", "clean", "top-1", "%", "clips"]
    assert [line.split()[0] for line in lines[lines.index(header) + 2:][:2]] == ["none", "beat"]
    cells = list((out / "cells").glob("*.json"))
    assert len(cells) == 8  # (clean, smart, ciasa, basar) x (none, beat)
    assert (out / "report.html").is_file() and f"report: {out / 'report.html'}" in text
    assert f"skelrobust bench {out / 'demo-sweep.yaml'} --out {out}" in text
    # a rerun resumes (nothing recomputed); another folder's content is refused
    before = {p: p.stat().st_mtime_ns for p in cells}
    code, _, err = run(capsys, "demo", "--out", str(out), "--clips", "6", "-q")
    assert code == 0, err
    assert {p: p.stat().st_mtime_ns for p in cells} == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "demo", "--out", str(other), "-q")
    one_line_error(code, err, "holds other files")
