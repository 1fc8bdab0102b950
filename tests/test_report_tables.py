"""Report tables from a result store: the papers' shapes, mean ± std over seeds, failed cells
shown as failed, CSV that a reader parses back, LaTeX that is well formed, and clear errors
for a folder that is not a store."""

from __future__ import annotations

import csv
import io
import json
import math
import re

import pytest

from report_fixtures import BEAT_TOP1, SMART_AB, make_store, metrics, spec, write_cell
from skelrobust.errors import ConfigError
from skelrobust.report.aggregate import Stat, group
from skelrobust.report.collect import load_store
from skelrobust.report.paper_tables import build_tables
from skelrobust.report.series import CURVES, curves
from skelrobust.report.tables import format_table, latex_escape

STD = math.sqrt(((SMART_AB[0] - 85) ** 2 + (SMART_AB[1] - 85) ** 2) / 1)  # ddof=1: 7.07


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    make_store(root)
    return load_store(root)


@pytest.fixture(scope="module")
def tables(store):
    sets = {k: curves(store.cells, k) for k in CURVES}
    return {t.name: t for t in build_tables(store.cells, sets)}


def row(table, **fields):
    """The one row of ``table`` whose fields equal ``fields``."""
    found = [r for r in table.rows if all(r.get(k) == v for k, v in fields.items())]
    assert len(found) == 1, (fields, [{k: r.get(k) for k in fields} for r in table.rows])
    return found[0]


def test_store_reads_every_cell_and_its_artifact(store):
    assert len(store.cells) == 17 and store.name == "fixture"
    assert [c.id for c in store.failed] and store.failed[0].error["type"] == "RuntimeError"
    with_clips = [c for c in store.cells if c.artifact is not None]
    assert len(with_clips) == 3 and all(c.artifact.suffix == ".npz" for c in with_clips)
    transfer = [c.surrogate for c in store.cells if c.surrogate]
    assert sorted(transfer) == ["agcn", "stgcn"]


def test_stat_mean_std_and_text():
    s = Stat.of([80.0, 90.0, None, math.nan])
    assert (s.mean, s.n) == (85.0, 2) and s.std == pytest.approx(STD)
    assert s.text() == "85.0 ± 7.1" and Stat.of([3.0]).text(2) == "3.00"
    assert Stat.of([], failed=2).text() == "failed" and Stat.of([]).text() == "-"
    assert Stat.of([1.0], failed=1).text() == "1.0 (1 failed)"


def test_goal_table_in_smart_shape(tables):
    goals = tables["goals"]
    assert goals.columns == ["dataset", "model", "attack", "budget", "AB %", "ABN %", "SA %",
                             "AB mm", "ABN mm", "SA mm"]
    smart = row(goals, model="stgcn", attack="smart", budget="20 mm")
    assert smart["AB %"].mean == 85.0 and smart["AB %"].std == pytest.approx(STD)
    assert smart["AB mm"].mean == 12.5 and smart["ABN %"].mean == 70.0
    assert smart["SA %"].mean == 50.0 and smart["SA %"].n == 1
    agcn = row(goals, model="agcn", attack="smart", budget="20 mm")
    assert agcn["SA %"].text() == "60.0 (1 failed)"  # one seed failed: shown, not dropped
    assert agcn["ABN %"].text() == "-"
    budgets = [r["budget"] for r in goals.rows if r["model"] == "stgcn" and r["attack"] == "smart"]
    assert budgets == ["5 mm", "10 mm", "20 mm"]  # numeric order
    md = format_table(goals.rows, goals.columns, "markdown")
    assert "| 85.0 ± 7.1 |" in md and "60.0 (1 failed)" in md


def test_defense_table_before_and_after(tables):
    beat = tables["defenses"]
    assert [r["defense"] for r in beat.rows] == ["none", "beat"]  # undefended first
    assert beat.columns == ["dataset", "model", "defense", "clean acc %", "basar success %",
                            "basar mm", "smart success %", "smart mm"]
    none, defended = beat.rows
    assert none["clean acc %"].mean == 92.0  # its clean cell, no whole-split record
    assert defended["clean acc %"].mean == BEAT_TOP1  # the whole test split's, not 88 of 8 clips
    assert none["smart success %"].text() == "85.0 ± 7.1" and defended["smart mm"].mean == 18.0
    assert defended["basar success %"].mean == 25.0


def test_transfer_matrix_with_white_box_diagonal(tables):
    (name,) = [n for n in tables if n.startswith("transfer-")]
    matrix = tables[name]
    assert matrix.columns == ["surrogate \\ victim", "agcn", "stgcn"]
    cells = {r["surrogate \\ victim"]: r for r in matrix.rows}
    assert cells["agcn"]["stgcn"].mean == 35.0 and cells["stgcn"]["agcn"].mean == 45.0
    assert cells["agcn"]["agcn"].mean == 95.0  # white-box cell on the diagonal
    assert cells["stgcn"]["stgcn"].text() == "85.0 ± 7.1"


def test_query_budget_curve_table(tables):
    queries = tables["queries"]
    assert [r["queries"] for r in queries.rows] == [500, 1000, 2000, 5000]
    first, last = queries.rows[0], queries.rows[-1]
    assert first["success %"].mean == pytest.approx(42.0)  # (40 + 44) / 2 over two seeds
    assert first["success %"].n == 2 and first["joint mm"].mean == pytest.approx(94.5)
    assert last["joint mm"].mean == pytest.approx(42.0)
    budget = tables["budget"]
    assert [r["perturbation budget (mm)"] for r in budget.rows] == [5, 10, 20]
    assert [r["success %"].mean for r in budget.rows] == [20.0, 55.0, 85.0]
    recorded, from_clips = group(tables["iterations"].rows, lambda r: r["goal"]).values()
    assert [r["iterations"] for r in recorded] == [10, 50, 100]  # the runner's curve
    assert [r["success %"].mean for r in recorded] == pytest.approx([25.5, 68.0, 85.0])
    # SMART-ABN's clips (steps until success): the share fooled within each step count
    assert [r["iterations"] for r in from_clips] == [0, 5, 12, 30, 50]
    assert [r["success %"].mean for r in from_clips] == pytest.approx(
        [0.0, 100 / 7, 300 / 7, 400 / 7, 500 / 7])


def test_failed_cells_listed_with_their_error(tables, store):
    failed = tables["failed"]
    (only,) = failed.rows
    assert only["cell"] == store.failed[0].id and only["attempts"] == 3
    assert only["error"] == "RuntimeError: out of memory"
    results = tables["results"]
    agcn = row(results, model="agcn", goal="sa", surrogate=None)
    assert (agcn["seeds"], agcn["failed"], agcn["success %"].text()) == (2, 1, "60.0")
    assert "failed" in results.columns


def test_csv_parses_back_to_the_numbers(tables):
    goals = tables["goals"]
    text = format_table(goals.rows, goals.columns, "csv")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(goals.rows)
    smart = next(r for r in parsed if r["model"] == "stgcn" and r["budget"] == "20 mm"
                 and r["attack"] == "smart")
    assert float(smart["AB %"]) == 85.0 and float(smart["AB % std"]) == pytest.approx(STD)
    assert smart["AB % n"] == "2" and smart["ABN % std"] == ""
    agcn = next(r for r in parsed if r["model"] == "agcn")
    assert agcn["SA % failed"] == "1" and agcn["ABN %"] == "" and agcn["ABN % n"] == "0"


def _check_latex(text: str) -> None:
    """A tabular whose rows all have the spec's column count, braces balanced, and no
    unescaped special character outside ``$\\pm$``."""
    lines = text.strip().splitlines()
    spec = re.fullmatch(r"\\begin\{tabular\}\{([lr]+)\}", lines[1]).group(1)
    assert lines[0].startswith("%") and lines[-1] == r"\end{tabular}"
    rows = [ln for ln in lines if ln.endswith(r"\\")]
    assert rows and all(len(re.findall(r"(?<!\\)&", ln)) == len(spec) - 1 for ln in rows)
    body = "\n".join(lines[1:]).replace(r"$\pm$", "")
    assert body.count("{") - body.count(r"\{") == body.count("}") - body.count(r"\}")
    assert not re.search(r"(?<!\\)[%_#$]", body), body


def test_latex_is_well_formed(tables):
    for table in tables.values():
        _check_latex(format_table(table.rows, table.columns, "latex"))
    assert latex_escape("a_b & 5% {x} ±") == r"a\_b \& 5\% \{x\} $\pm$"
    text = format_table([{"name": "x_1", "v": Stat.of([1.0, 3.0])}], fmt="latex")
    assert r"x\_1 & 2.0 $\pm$ 1.4 \\" in text


def test_html_table_marks_failed_and_numbers():
    text = format_table([{"m": "<b>", "v": Stat.of([1.0], failed=1)}], fmt="html")
    assert "&lt;b&gt;" in text and '<td class="num failed">1.0 (1 failed)</td>' in text


def test_not_a_store_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="is not a folder"):
        load_store(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no cell results"):
        load_store(tmp_path)
    write_cell(tmp_path, spec(), metrics(50.0))
    (tmp_path / "cells" / "broken.json").write_text('{"schema": ')
    with pytest.raises(ConfigError, match=r"broken\.json.*rerun the sweep"):
        load_store(tmp_path)
    (tmp_path / "cells" / "broken.json").write_text(json.dumps({"schema": "other/9"}))
    with pytest.raises(ConfigError, match="has schema 'other/9'"):
        load_store(tmp_path)


def test_missing_optional_fields_are_read_as_absent(tmp_path):
    """A minimal ok cell (no metrics beyond success, no perceptual, no curves) still reports."""
    from skelrobust.bench.schema import SCHEMA

    (tmp_path / "cells").mkdir()
    cell = {"schema": SCHEMA, "status": "ok", "cell": {"dataset": "d", "model": "m",
                                                       "attack": "smart", "goal": "ab"},
            "metrics": {"success_pct": 40.0, "perceptual": None}}
    (tmp_path / "cells" / "a.json").write_text(json.dumps(cell))
    store = load_store(tmp_path)
    tables = {t.name: t for t in build_tables(store.cells, {})}
    assert set(tables) == {"results", "goals"}
    assert tables["goals"].rows[0]["AB %"].mean == 40.0
    assert tables["goals"].rows[0]["AB mm"].text() == "-"


def test_settings_told_apart_by_options_and_all_failed_shown(tmp_path):
    """Two cells that differ only in an attack option are two rows, told apart by their
    options; a setting whose every seed failed reads 'failed', not '-'."""
    write_cell(tmp_path, spec(steps=30), metrics(40.0))
    write_cell(tmp_path, spec(steps=200), metrics(70.0))
    write_cell(tmp_path, spec(goal="sa"), None)
    write_cell(tmp_path, spec(goal="sa", seed=1), None)
    cells = load_store(tmp_path).cells
    sets = {k: curves(cells, k) for k in CURVES}
    tables = {t.name: t for t in build_tables(cells, sets)}
    results = tables["results"]
    assert "options" in results.columns
    assert row(results, options="steps=30")["success %"].mean == 40.0
    assert row(results, options="steps=200")["success %"].mean == 70.0
    failed = row(results, goal="sa")
    assert failed["success %"].text() == "failed" and failed["failed"] == 2
    goals = tables["goals"]
    assert [r["SA %"].text() for r in goals.rows if r["options"] == ""] == ["failed"]
    (curve,) = sets["iterations"]  # the steps option swept across cells
    assert [(x, s["success_pct"].mean) for x, s in curve.points] == [(30, 40.0), (200, 70.0)]
