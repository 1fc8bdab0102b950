"""The command line: data, train, eval, demo, JSON output and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from skelrobust.cli import main
from skelrobust.data.synthetic import SYNTHETIC_CLASSES


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_data_list_json(capsys):
    code, out, _ = run(capsys, "data", "list", "--json")
    assert code == 0
    names = {d["name"] for d in json.loads(out)["datasets"]}
    assert "synthetic" in names


def test_data_info_synthetic(capsys):
    code, out, _ = run(capsys, "data", "info", "synthetic", "--split", "val", "--json", "-q")
    assert code == 0
    info = json.loads(out)["splits"]["val"]
    assert info["clips"] == 400 and info["layout"] == "ntu25"
    assert 20 < info["bone_length_cm"]["left_elbow-left_shoulder"] < 40
    code, out, _ = run(capsys, "data", "info", "synthetic", "--split", "val", "-q")
    assert "bone lengths" in out and "frames mean" in out


def test_train_then_eval(capsys, tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = run(capsys, "train", "--data", "synthetic", "--model", "mlp", "--size",
                         "small", "--epochs", "1", "--frames", "16", "--out", str(out_dir),
                         "--json", "--quiet", "--optimizer", "adam", "--lr", "0.003")
    assert code == 0, err
    trained = json.loads(out)
    assert (out_dir / "classifier.safetensors").exists()
    assert len(trained["history"]) == 1
    code, out, err = run(capsys, "eval", str(out_dir), "--data", "synthetic", "--split", "val",
                         "--json", "-q")
    assert code == 0, err
    ev = json.loads(out)
    assert ev["n"] == 400 and ev["top1"] == pytest.approx(trained["held_out"]["top1"])
    assert len(ev["confusion"]) == len(SYNTHETIC_CLASSES)


def test_train_from_yaml_config(capsys, tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("data: {name: synthetic, frames: 16, options: {num_clips: 112}}\n"
                   "model: {name: mlp, size: small}\n"
                   "train: {epochs: 1, optimizer: adam, lr: 0.003}\n")
    code, out, err = run(capsys, "train", "--config", str(cfg), "--out", str(tmp_path / "r"),
                         "--json", "-q")
    assert code == 0, err
    assert json.loads(out)["history"][0]["epoch"] == 1
    cfg.write_text("train: {epochz: 1}\n")
    code, _, err = run(capsys, "train", "--config", str(cfg), "--out", str(tmp_path / "r"), "-q")
    assert code == 2 and "unknown keys" in err and "epochz" in err


@pytest.mark.parametrize("argv, needle", [
    (["data", "info", "nope"], "unknown dataset 'nope'"),
    (["train", "--model", "nope", "--out", "x", "--epochs", "1"], "unknown model 'nope'"),
    (["eval", "/nonexistent/ckpt"], "no such classifier"),
    (["train", "--epochs", "0", "--out", "x"], "epochs must be >= 1"),
])
def test_errors_are_one_line(capsys, argv, needle):
    code, _, err = run(capsys, *argv, "-q")
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_console_script_error_exit_code(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    proc = subprocess.run([sys.executable, "-m", "skelrobust.cli", "eval", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "bad.safetensors" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.realdata
def test_data_info_real_data_json_options_and_missing_split(capsys, real_data_root):
    root = str(real_data_root("smart-format"))
    code, out, err = run(capsys, "data", "info", "smart-hdm05", "--root", root, "--json", "-q")
    assert code == 0, err
    info = json.loads(out)
    assert info["splits"]["train"]["clips"] == 7 and "adClassTest.npz" in info["missing"]["test"]
    cv = info["splits"]["train"]["bone_length_temporal_cv_pct"]
    assert max(v for v in cv.values() if v is not None) < 0.01  # retargeted mocap: rigid bones
    bvh_root = str(real_data_root("bvh"))
    code, _, err = run(capsys, "data", "info", "bvh", "--root", bvh_root, "-q")
    assert code == 2 and "pattern" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "data", "info", "bvh", "--root", bvh_root, "--split", "all",
                         "-o", "pattern=HDM_*.bvh", "--json", "-q")
    assert code == 0, err
    assert json.loads(out)["splits"]["all"]["layout"] == "hdm05_31"
    code, _, err = run(capsys, "data", "info", "bvh", "--root", bvh_root, "-o", "pattern", "-q")
    assert code == 2 and "KEY=VALUE" in err


def test_attack_writes_summary_and_motions(capsys, tmp_path):
    ckpt = tmp_path / "mlp"
    code, _, err = run(capsys, "train", "--data", "synthetic", "--model", "mlp", "--size",
                       "small", "--epochs", "2", "--frames", "16", "--out", str(ckpt), "-q",
                       "--optimizer", "adam", "--lr", "0.003")
    assert code == 0, err
    out = tmp_path / "atk"
    code, text, err = run(capsys, "attack", str(ckpt), "--attack", "pgd", "--budget-mm", "40",
                          "--steps", "5", "--n", "12", "--out", str(out), "--json", "-q")
    assert code == 0, err
    summary = json.loads(text)
    assert summary["selected"] == 12 and summary["clean_accuracy"] == 100.0
    assert json.loads((out / "summary.json").read_text())["success_rate"] == pytest.approx(
        summary["success_rate"])
    with np.load(out / "adversarial.npz") as f:
        delta = np.abs(f["x_adv"] - f["x_clean"])
        assert f["x_adv"].shape == (12, 3, 16, 25, 1) and delta.max() <= 0.040 + 1e-7
        assert f["success"].mean() * 100 == pytest.approx(summary["success_rate"])
    code, _, err = run(capsys, "attack", str(ckpt), "--attack", "smart", "-o", "bogus=1",
                       "--out", str(out), "-q")
    assert code == 2 and "bogus" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "attack", str(ckpt), "--attack", "nope", "--out", str(out), "-q")
    assert code == 2 and "unknown attack 'nope'" in err
