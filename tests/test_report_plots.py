"""Report plots: one PNG and one SVG per figure the store has data for, and none otherwise."""

from __future__ import annotations

import builtins
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from report_fixtures import make_store, metrics, spec, write_cell
from skelrobust.report.collect import load_store
from skelrobust.report.plots import legend_labels, write_plots
from skelrobust.report.series import CURVES, curves, tradeoff


def plots_of(root, out):
    cells = load_store(root).cells
    return write_plots({k: curves(cells, k) for k in CURVES}, tradeoff(cells), out)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    make_store(root)
    return plots_of(root, root / "plots")


def test_every_kind_with_data_is_drawn(written):
    names = [p.name for p in written]
    assert names == ["queries-synthetic-basar", "iterations-synthetic-smart",
                     "budget-synthetic-smart", "tradeoff-synthetic"]
    for plot in written:
        with Image.open(plot.png) as im:
            assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
            assert len(np.unique(np.asarray(im.convert("L")))) > 10  # drawn on, not blank
        root = ET.parse(plot.svg).getroot()
        assert root.tag.endswith("svg")
        assert not re.search(r'href="(?!#)', plot.svg.read_text())  # links inside it only


def test_queries_figure_has_success_and_distance(written):
    queries = next(p for p in written if p.name.startswith("queries"))
    with Image.open(queries.png) as q, Image.open(
            next(p for p in written if p.name.startswith("iterations")).png) as it:
        assert q.size[0] > 1.6 * it.size[0]  # two panels: success and mean distance


def test_no_series_no_plot(tmp_path):
    write_cell(tmp_path, spec(), metrics(50.0))  # one cell: nothing to draw a line through
    write_cell(tmp_path, spec(seed=1), metrics(60.0))
    assert plots_of(tmp_path, tmp_path / "plots") == []


def test_without_matplotlib_no_plot_and_a_warning(tmp_path, monkeypatch, caplog):
    make_store(tmp_path)
    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with caplog.at_level("WARNING", logger="skelrobust"):
        assert plots_of(tmp_path, tmp_path / "plots") == []
    assert "skelrobust[viz]" in caplog.text


def test_legend_labels_show_what_differs():
    fields = [{"dataset": "d", "model": "stgcn", "defense": "none", "attack": "smart"},
              {"dataset": "d", "model": "stgcn", "defense": "beat", "attack": "smart"}]
    assert legend_labels(fields) == ["none", "beat"]
    assert legend_labels(fields[:1]) == ["smart"]
    assert legend_labels(fields, skip=("dataset", "defense")) == ["smart", "smart"]
