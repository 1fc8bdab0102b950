"""Clean-vs-adversarial animations: frames written, padding not drawn, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skelrobust.cli import main
from skelrobust.data.synthetic import generate_synthetic
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.report.animation import render_comparison


@pytest.fixture(scope="module")
def clip():
    return generate_synthetic(num_clips=1, num_frames=10, seed=2).x[0]


def test_gif_has_one_frame_per_real_frame(clip, tmp_path):
    adv = clip + 0.02
    path = render_comparison(clip, adv, "ntu25", tmp_path / "a.gif", length=6, fps=10,
                             labels=("true: a", "pred: b"))
    with Image.open(path) as im:
        assert im.n_frames == 6 and im.size[0] > im.size[1]


def test_render_errors(clip, tmp_path):
    with pytest.raises(ShapeError, match="layout"):
        render_comparison(clip, clip, "kinect20", tmp_path / "a.gif")
    with pytest.raises(ShapeError, match="one clip"):
        render_comparison(clip[0], clip[0], "ntu25", tmp_path / "a.gif")
    with pytest.raises(ConfigError, match=r"\.gif or \.mp4"):
        render_comparison(clip, clip, "ntu25", tmp_path / "a.png")


def test_cli_render_from_attack_output(clip, tmp_path, capsys):
    np.savez(tmp_path / "adversarial.npz", x_adv=clip[None] + 0.01, x_clean=clip[None],
             y=np.array([1]), adv_pred=np.array([2]), clean_pred=np.array([1]),
             lengths=np.array([4]), class_names=np.array(["a", "b", "c"]),
             layout=np.array("ntu25"))
    assert main(["render", str(tmp_path), "--out", str(tmp_path / "r.gif"), "-q"]) == 0
    with Image.open(tmp_path / "r.gif") as im:
        assert im.n_frames == 4
    assert main(["render", str(tmp_path), "--index", "3", "--out", str(tmp_path / "r3.gif"),
                 "-q"]) == 2
    assert "--index must be in [0, 1)" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "none"), "--out", str(tmp_path / "r4.gif"),
                 "-q"]) == 2
    assert "adversarial.npz" in capsys.readouterr().err
    assert main(["render", str(tmp_path), "--out", str(tmp_path / "r.gif"), "-q"]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err  # never replaced silently
