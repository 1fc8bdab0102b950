"""Property: over random options and files, the CLI exits 0 with valid output or exits 2 with
one line on stderr, and nothing else (no traceback, no internal error, no other status)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skelrobust.classifier import Classifier
from skelrobust.cli import main
from skelrobust.config import load_prepared

PREP = {"num_frames": 8, "center_mode": "first", "normalize_view": True}
NUMBERS = ["1", "2", "3", "1", "2", "3", "0", "-1", "nan", "inf", "-inf", "1e309", "2.5", "abc", "",
           "99999999999", "0x10"]
_counter = itertools.count()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small (untrained) classifier, a real attack output, and broken files of each kind."""
    root = tmp_path_factory.mktemp("prop")
    train = load_prepared("synthetic", "train", preprocess_args=PREP, num_clips=40)
    clf = Classifier.create("mlp", train, preprocess=PREP)
    clf.info["data"] = {"name": "synthetic", "protocol": "standard", "test_split": "test",
                        "options": {"num_clips": 40}}
    clf.save(root / "clf")
    assert main(["attack", str(root / "clf"), "--attack", "fgsm", "--n", "3", "--out",
                 str(root / "atk"), "-q"]) == 0
    with np.load(root / "atk" / "adversarial.npz") as f:
        arrays = dict(f)
    arrays["x_adv"] = arrays["x_adv"].copy()
    arrays["x_adv"][..., 0] = np.inf
    np.savez(root / "inf.npz", **arrays)
    (root / "garbage.bin").write_bytes(bytes(range(256)) * 4)
    (root / "empty.safetensors").write_bytes(b"")
    (root / "cut.safetensors").write_bytes((root / "clf" / "classifier.safetensors")
                                           .read_bytes()[:200])
    (root / "bad.yaml").write_text("train: {epochs: [1, 2]}\n")
    (root / "notyaml.yaml").write_text("data: {name: [\n")
    (root / "full").mkdir()
    (root / "full" / "summary.json").write_text("{}")
    return root


def _paths(root):
    good = ["clf"] * 4 + ["clf/classifier.safetensors", "atk", "atk"]  # valid inputs: often
    bad = ["garbage.bin", "empty.safetensors", "cut.safetensors", "missing", "inf.npz",
           "bad.yaml", "notyaml.yaml"]
    return [str(root / p) for p in good + bad]


@st.composite
def command_lines(draw, root):
    num = st.sampled_from(NUMBERS)
    path = st.sampled_from(_paths(root))
    kind = draw(st.sampled_from(["eval", "attack", "render", "train", "info", "list",
                                 "import"]))
    argv: list[str]
    if kind == "eval":
        argv = ["eval", draw(path)]
        if draw(st.booleans()):
            argv += ["--split", draw(st.sampled_from(["test", "val", "train", "nope"]))]
        if draw(st.booleans()):
            argv += ["--batch-size", draw(num)]
    elif kind == "attack":
        argv = ["attack", draw(path), "--attack", draw(st.sampled_from(
            ["fgsm", "pgd", "bim", "nope"])), "--steps", draw(st.sampled_from(["1", "2", "0",
                                                                              "nan"]))]
        for flag in ("--n", "--budget-mm", "--seed", "--top-n"):
            if draw(st.booleans()):
                argv += [flag, draw(num)]
        if draw(st.booleans()):
            argv += ["--goal", draw(st.sampled_from(["ab", "abn", "sa", "zz"]))]
        if draw(st.booleans()):
            argv += ["--norm", draw(st.sampled_from(["joint", "linf", "l2", "l3"]))]
        if draw(st.booleans()):
            argv += ["--target-mode", draw(st.sampled_from(["random", "least_likely",
                                                            "given"]))]
        argv += ["--out", draw(st.sampled_from([str(root / f"o{next(_counter)}"),
                                                str(root / "full"), str(root / "garbage.bin")]))]
    elif kind == "render":
        argv = ["render", draw(path), "--index", draw(num), "--fps", draw(num),
                "--out", str(root / f"r{next(_counter)}.{draw(st.sampled_from(['gif', 'png']))}")]
    elif kind == "train":
        argv = ["train", "--model", "mlp", "--out", str(root / f"t{next(_counter)}")]
        flag = draw(st.sampled_from(["--epochs", "--lr", "--frames", "--val-fraction",
                                     "--batch-size", "--config"]))
        value = draw(path) if flag == "--config" else draw(st.sampled_from(
            ["0", "-1", "nan", "inf", "abc", ""]))  # invalid values only: no real training
        argv += [flag, value]
    elif kind == "import":
        argv = ["import", draw(path), "--out", str(root / f"i{next(_counter)}")]
        if draw(st.booleans()):
            argv += ["--format", draw(st.sampled_from(["shiftgcn", "nope"]))]
    elif kind == "info":
        argv = ["data", "info", draw(st.sampled_from(["synthetic", "nw-ucla", "nope"])),
                "--split", draw(st.sampled_from(["val", "bogus"])), "--root", draw(path)]
    else:
        argv = [draw(st.sampled_from(["models", "attacks"]))]
        if draw(st.booleans()):
            argv += ["--threads", draw(num)]
    if draw(st.booleans()):
        argv.append("--json")
    return [*argv, "-q"]


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(data=st.data())
def test_cli_exits_0_with_valid_output_or_2_with_one_line(files, capsys, data):
    argv = data.draw(command_lines(files))
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 2), (argv, code, err)
    if code == 0:
        assert out.strip(), argv
        if "--json" in argv:
            json.loads(out)
    else:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("skelrobust: error: "), (argv, err)
        assert not out, (argv, out)
