"""The command line on the real datasets and checkpoints: protocols, data a classifier remembers,
third-party checkpoints. Each test runs the real commands (marked ``realdata``)."""

from __future__ import annotations

import json
import os

import pytest

from skelrobust.cli import main

pytestmark = [
    pytest.mark.realdata,
    # the real releases' known defects, each tested where it is handled (test_data_*.py)
    pytest.mark.filterwarnings("ignore:.*skipped 2 of 10 files that could not be parsed"),
    pytest.mark.filterwarnings("ignore:.*dropped 2 clips with fewer than 2 tracked frames"),
]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def ucla_ckpt(tmp_path_factory, real_data_root):
    """An MLP trained one epoch on NW-UCLA cross-view, through ``skelrobust train``."""
    root = real_data_root("nw-ucla")
    out = tmp_path_factory.mktemp("ucla") / "mlp"
    code = main(["train", "--data", "nw-ucla", "--root", str(root), "--model", "mlp",
                 "--frames", "16", "--epochs", "1", "--out", str(out), "-q", "--json",
                 "--optimizer", "adam", "--lr", "0.003"])
    assert code == 0
    return out


def test_classifier_remembers_its_data_and_refuses_other_classes(capsys, ucla_ckpt,
                                                                  real_data_root, tmp_path,
                                                                  monkeypatch):
    utd, ntu = real_data_root("utd-mhad"), real_data_root("ntu")
    monkeypatch.delenv("SKELROBUST_DATA", raising=False)  # the recorded root is used
    code, out, err = run(capsys, "eval", ucla_ckpt, "--json", "-q")
    assert code == 0, err
    ev = json.loads(out)
    assert ev["data"]["name"] == "nw-ucla" and ev["data"]["split"] == "test" and ev["n"] == 463
    # the trial that once "succeeded": 10-class NW-UCLA classifier on the 27-class UTD-MHAD
    code, _, err = run(capsys, "attack", ucla_ckpt, "--data", "utd-mhad", "--root",
                       utd, "--attack", "pgd", "--steps", "5", "--n", "4",
                       "--out", tmp_path / "o", "-q")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "utd-mhad test has 27 classes" in err and "expects layout 'kinect20' and its 10 " \
        "classes" in err and "trained on 'nw-ucla'" in err
    assert not (tmp_path / "o" / "summary.json").exists()
    code, _, err = run(capsys, "eval", ucla_ckpt, "--data", "ntu60", "--root", ntu, "-q")
    assert code == 2 and "has layout 'ntu25'" in err


def test_training_records_protocol_and_carves_validation(capsys, ucla_ckpt):
    from skelrobust.classifier import Classifier

    data = Classifier.load(ucla_ckpt).info["data"]
    assert data["name"] == "nw-ucla" and data["protocol"] == "cross-view"
    assert data["test_split"] == "test" and data["layout"] == "kinect20"
    # 10 % of each class of the 1,019 training clips, rounded per class
    assert data["validation"].startswith("validation: 102 clips (10% of train")
    assert data["clips"] == 1019 - 102 and os.path.isdir(data["root"])


@pytest.mark.parametrize("dataset, folder, protocol, train_clips", [
    ("ntu60", "ntu", None, 4), ("ntu60", "ntu", "xview", 7), ("ntu120", "ntu", "xset", 3),
    ("sbu", "sbu", "fold2", None),
])
def test_every_dataset_trains_with_its_protocol(capsys, tmp_path, real_data_root, dataset,
                                                folder, protocol, train_clips):
    argv = ["train", "--data", dataset, "--root", real_data_root(folder), "--model", "mlp",
            "--frames", "16", "--epochs", "1", "--out", tmp_path / "x", "--json", "-q"]
    code, out, err = run(capsys, *argv, *(["--protocol", protocol] if protocol else []))
    assert code == 0, err
    trained = json.loads(out)
    expected = protocol or "xsub"
    assert trained["protocol"]["name"] == expected
    assert trained["protocol"]["test"] == f"{expected}-test"
    if train_clips is not None:  # NTU: too few clips per class to carve; the last epoch kept
        assert trained["keep"] == "last" and "too few training clips" in trained["validation"]
    else:
        assert trained["validation"].startswith("validation:") and trained["keep"] == "best"


def test_data_info_lists_protocols(capsys, real_data_root):
    code, out, err = run(capsys, "data", "info", "ntu60", "--root", real_data_root("ntu"),
                         "--split", "xsub-test", "-q")
    assert code == 0, err
    assert "xsub (train xsub-train, test xsub-test); xview (train xview-train, test " \
           "xview-test)" in out


def test_shiftgcn_checkpoint_from_the_cli(capsys, tmp_path, real_data_root, monkeypatch):
    ckpt = real_data_root("../models") / "shiftgcn_ntu60_xsub_joint.pt"
    monkeypatch.setenv("SKELROBUST_DATA", str(real_data_root("ntu").parent))
    code, out, err = run(capsys, "eval", ckpt, "--json", "-q")  # the file itself
    assert code == 0, err
    ev = json.loads(out)
    assert ev["data"]["name"] == "ntu60" and ev["data"]["split"] == "xsub-test"
    assert ev["n"] == 4 and ev["top1"] == 100.0
    code, out, err = run(capsys, "import", ckpt, "--out", tmp_path / "shift", "--json", "-q")
    assert code == 0, err
    assert json.loads(out)["data"]["protocol"] == "xsub"
    code, out, err = run(capsys, "attack", tmp_path / "shift", "--attack", "fgsm", "--n", "2",
                         "--out", tmp_path / "atk", "--json", "-q")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["selected"] == 2 and summary["data"]["name"] == "ntu60"
    assert summary["norm"] == "joint" and summary["budget_mm"] == 20.0
