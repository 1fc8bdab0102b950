"""The offline HTML report: self-contained (nothing to fetch), its images and clips inline,
the clips encoded compactly and decoded back to the motion, and ``skelrobust report``."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from cli_support import one_line_error, run
from report_fixtures import FRAMES, make_store
from skelrobust.data.synthetic import generate_synthetic
from skelrobust.report.build import build_report
from skelrobust.report.clips import encode_clip, up_axis, viewer_clips
from skelrobust.report.collect import load_store
from skelrobust.skeleton import get_skeleton


class Tags(HTMLParser):
    """Every start tag and its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    make_store(root)
    report = build_report(root)
    return report, report.html.read_text("utf-8")


def decode(clip):
    """``(clean, adversarial)`` in metres, ``(T, M, V, 3)``, from the viewer's encoding."""
    shape = (clip["frames"], clip["bodies"], clip["joints"], 3)
    clean = np.asarray(clip["clean"]).reshape(shape)
    adv = clean + np.asarray(clip["delta"]).reshape(shape)
    return clean * clip["unit_mm"] / 1000, adv * clip["unit_mm"] / 1000


def clips_json(page):
    block = re.search(r'<script type="application/json" id="skelrobust-clips">(.*?)</script>',
                      page, re.S)
    return json.loads(block.group(1))


def test_page_is_self_contained(built):
    _, page = built
    parser = Tags()
    parser.feed(page)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page, re.I)  # no URL at all
    meta = [a for t, a in parser.tags if t == "meta" and a.get("http-equiv")]
    assert meta and "default-src 'none'" in meta[0]["content"]
    for tag, attrs in parser.tags:
        assert not (tag == "script" and "src" in attrs), attrs
        assert not (tag == "link" and attrs.get("rel") == "stylesheet"), attrs
        if tag == "link":
            assert attrs["href"].startswith("data:")
    images = [a["src"] for t, a in parser.tags if t == "img"]
    assert len(images) == 4
    for src in images:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            assert im.size[0] > 100


def test_page_holds_tables_and_labelled_clips(built):
    report, page = built
    for table in report.tables:
        assert f'id="table-{table.name}"' in page
    assert "85.0 ± 7.1" in page and "60.0 (1 failed)" in page
    assert "RuntimeError: out of memory" in page
    clips = clips_json(page)
    assert [(c["attack"], c["goal"]) for c in clips] == [("basar", "ab")] * 3 + [
        ("smart", "ab")] * 3
    assert [c["success"] for c in clips[3:]] == [True, True, False]  # fooled ones first
    names = generate_synthetic(num_clips=1, num_frames=4).class_names
    assert all(c["true"] in names and c["adv_pred"] in names for c in clips)
    assert page.count('<figure class="clip"') == 6 and "fooled" in page


def test_clips_decode_to_the_motion_within_a_tenth_of_a_mm(tmp_path):
    make_store(tmp_path)
    cells = load_store(tmp_path).cells
    clips = viewer_clips(cells, per_attack=8)
    smart = [c for c in clips if c["attack"] == "smart"]
    assert len(smart) == 8 and {c["bodies"] for c in smart} == {1, 2}
    cell = next(c for c in cells if c.id == smart[0]["cell"])
    with np.load(cell.artifact) as f:
        x, xa, lengths = f["x_clean"], f["x_adv"], f["lengths"]
    for k, clip in enumerate(smart[:4]):  # the first cell's four clips, fooled first
        i = [0, 1, 2, 3][k]
        clean, adv = decode(clip)
        t = int(lengths[i])
        assert clip["frames"] == t and clean.shape[0] == t  # padding frames dropped
        np.testing.assert_allclose(clean, x[i, :, :t].transpose(1, 3, 2, 0), atol=5e-5)
        np.testing.assert_allclose(adv, xa[i, :, :t].transpose(1, 3, 2, 0), atol=5e-5)
    assert [c["frames"] for c in smart[:4]] == [FRAMES, FRAMES, FRAMES, 10]
    assert smart[0]["parents"] == list(get_skeleton("ntu25").parents)
    assert viewer_clips(cells, per_attack=0) == []


def test_encoding_is_compact():
    x = generate_synthetic(num_clips=1, num_frames=FRAMES, seed=0).x[0]
    clip = encode_clip(x, x + 0.0123, FRAMES, get_skeleton("ntu25"))
    text = json.dumps(clip, separators=(",", ":"))
    naive = json.dumps([x.tolist(), (x + 0.0123).tolist()])
    assert len(text) < 0.5 * len(naive)  # integers of 0.1 mm, the delta small
    assert set(clip["delta"]) == {123}  # 12.3 mm in units of 0.1 mm


def test_up_axis_follows_the_spine():
    skel = get_skeleton("ntu25")
    x = generate_synthetic(num_clips=1, num_frames=8, seed=0).x[0]  # z up
    assert up_axis(x, skel) == (2, 1)
    assert up_axis(x[[0, 2, 1]], skel) == (1, 1)  # y up (Kinect)
    assert up_axis(-x, skel) == (2, -1)
    assert up_axis(np.zeros_like(x), skel) == (2, 1)


def test_unreadable_artifact_is_skipped_with_a_warning(tmp_path, caplog):
    make_store(tmp_path)
    cells = load_store(tmp_path).cells
    broken = next(c for c in cells if c.attack == "basar" and c.artifact is not None)
    broken.artifact.write_bytes(b"not a zip")
    with caplog.at_level("WARNING", logger="skelrobust"):
        clips = viewer_clips(cells)
    assert {c["attack"] for c in clips} == {"smart"} and "cannot read" in caplog.text


def test_cli_report_writes_and_replaces(tmp_path, capsys):
    make_store(tmp_path)
    code, out, err = run(capsys, "report", str(tmp_path), "--json", "-q")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["cells"] == 17 and payload["failed"] == 1 and payload["clips"] == 6
    assert "goals" in payload["tables"] and len(payload["plots"]) == 4
    tables = tmp_path / "report" / "tables"
    assert {p.suffix for p in tables.iterdir()} == {".md", ".csv", ".tex"}
    stale = tables / "old.csv"
    stale.write_text("x")
    code, out, _ = run(capsys, "report", str(tmp_path), "--no-plots", "--clips", "0")
    assert code == 0 and not stale.exists()  # the earlier report is replaced whole
    assert not (tmp_path / "report" / "plots").exists() and "report.html" in out
    page = (tmp_path / "report.html").read_text()
    assert '<figure class="clip"' not in page and "No plot" in page
    (tmp_path / "report.html").unlink()
    assert run(capsys, "report", str(tmp_path), "--no-html", "-q")[0] == 0
    assert not (tmp_path / "report.html").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report-")]


def test_cli_report_errors(tmp_path, capsys):
    one_line_error(*run(capsys, "report", str(tmp_path / "none"))[::2], "is not a folder")
    one_line_error(*run(capsys, "report", str(tmp_path))[::2], "skelrobust bench")
    one_line_error(*run(capsys, "report", str(tmp_path), "--clips", "-1")[::2], "--clips")
