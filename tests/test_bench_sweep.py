"""Sweep files and the result store: expansion into cells, errors that name the line and the
field, unknown names listed against the registered ones, another sweep's folder refused."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from cli_support import one_line_error, run
from skelrobust.bench import Store, cell_id, load_sweep, parse_sweep
from skelrobust.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "sweeps" / "tiny-synthetic.yaml"

BASE = """\
name: t
datasets: [synthetic]
models: [mlp]
attacks: [clean, smart]
"""


def parse(text: str, path: str = "s.yaml"):
    return parse_sweep(textwrap.dedent(text), path)


def error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return str(info.value)


def test_tiny_sweep_expands_to_its_grid():
    sweep = load_sweep(TINY)
    attacks = [c["attack"] for c in sweep.cells]
    assert attacks == ["clean", "smart", "pgd", ["smart", "pgd"]]
    cascade = sweep.cells[3]
    assert cascade["options"] == {"smart": {"steps": 30}, "pgd": {"steps": 10, "step_mm": 2.0}}
    assert sweep.cells[2]["options"] == {"steps": 10, "step_mm": 2.0}
    assert sweep.cells[0]["budget"] == {} and sweep.cells[1]["budget"] == {"budget_mm": 20}
    assert sweep.cells[1]["train"]["epochs"] == 2 and "seed" not in sweep.cells[1]["train"]
    assert sweep.cells[1]["data"]["frames"] == 20
    assert len(set(sweep.ids)) == 4 and sweep.ids == [cell_id(c) for c in sweep.cells]
    assert load_sweep(TINY).hash == sweep.hash  # the same file, the same sweep


def test_goals_budgets_and_clean_cells():
    sweep = parse(BASE.replace("attacks: [clean, smart]", "attacks: [clean, smart, basar]") + """\
goals: [ab, abn-3, sa]
budgets: [{budget_mm: 10, max_queries: 50}, {budget_mm: 20, max_queries: 50}]
seeds: [0, 1]
""")
    clean = [c for c in sweep.cells if c["attack"] == "clean"]
    assert len(clean) == 2  # one per seed: goals and budgets do not apply to accuracy
    assert {c["goal"] for c in clean} == {"ab"} and all(c["budget"] == {} for c in clean)
    basar = [c for c in sweep.cells if c["attack"] == "basar"]
    # basar takes max_queries only: the two budgets are one cell per goal and seed
    assert len(basar) == 6 and all(c["budget"] == {"max_queries": 50} for c in basar)
    smart = [c for c in sweep.cells if c["attack"] == "smart"]
    assert len(smart) == 12 and all("max_queries" not in c["budget"] for c in smart)
    abn = [c for c in smart if c["goal"] == "abn"]
    assert all(c["options"] == {"n": 3} for c in abn)
    assert all(c["options"] == {"target_mode": "random"} for c in smart if c["goal"] == "sa")


def test_recipe_is_read_beside_the_sweep(tmp_path):
    (tmp_path / "mlp_synthetic.yaml").write_text("model: {name: mlp, size: base}\n"
                                                 "train: {epochs: 7, lr: 0.01}\n")
    path = tmp_path / "sweeps" / "s.yaml"
    path.parent.mkdir()
    path.write_text(BASE + "recipe: ../{model}_{dataset}.yaml\ntrain: {epochs: 1}\n")
    cell = load_sweep(path).cells[1]
    assert cell["size"] == "base" and cell["train"]["lr"] == 0.01
    assert cell["train"]["epochs"] == 1  # the sweep's train section overrides the recipe
    path.write_text(BASE + "recipe: ../{model}_missing.yaml\n")
    with pytest.raises(ConfigError, match=r"s\.yaml:5: recipe: no recipe for mlp on synthetic"):
        load_sweep(path)


@pytest.mark.parametrize(("text", "expected"), [
    (BASE + "clips: many\n", r"s.yaml:5: clips: expected an integer >= 1, got 'many'"),
    (BASE + "goals: [ab, abn-x]\n", r"s.yaml:5: goals[1]: expected ab, abn, abn-N"),
    (BASE + "attack_options:\n  smart:\n    stepz: 3\n",
     r"s.yaml:7: attack_options.smart.stepz: attack 'smart' takes no option 'stepz'"),
    (BASE + "attack_options:\n  pgdd: {steps: 3}\n",
     "s.yaml:6: attack_options.pgdd: unknown attack 'pgdd'; available: basar, bim, ciasa"),
    (BASE + "model_options: {stgcm: {}}\n",
     "s.yaml:5: model_options.stgcm: unknown model 'stgcm'; available: agcn, asgcn"),
    (BASE + "budgets: [{max_querys: 10}]\n",
     "s.yaml:5: budgets[0].max_querys: no attack takes 'max_querys'"),
    (BASE + "budgets: [{budget_mm: 10}]\nattack_options: {smart: {budget_mm: 5}}\n",
     "s.yaml:6: attack_options.smart.budget_mm: 'budget_mm' is a budget: set it under budgets"),
    (BASE + "train:\n  epochs: 0\n", "s.yaml:6: train.epochs: must be in [1, 100000], got 0"),
    (BASE + "train: {epoch: 2}\n", r"s.yaml:5: train.epoch: unknown training option"),
    (BASE + "defenses: [beat]\ndefense_train:\n  beat: {seed: 3}\n",
     "s.yaml:7: defense_train.beat.seed: every cell trains with its own seed"),
    (BASE + "data:\n  synthetic: {root: /x}\n",
     r"s.yaml:6: data.synthetic.root: not a data option the sweep sets"),
    (BASE + "attackz: []\n", r"s.yaml:5: attackz: unknown key; known: attack_options"),
    (BASE + "clips: 3\nclips: 4\n", r"s.yaml:6: clips: given twice"),
    (BASE.replace("name: t\n", ""), r"s.yaml:1: name: the sweep needs a name"),
    ("name: t\nmodels: [mlp]\nattacks: [smart]\n",
     "s.yaml:1: datasets: missing: every grid needs datasets"),
    (BASE + "defenses: [none]\ndefense_options:\n  none: {x: 1}\n",
     r"s.yaml:7: defense_options.none: 'none' takes no options"),
    (BASE + "attacks: [clean]\n", r"s.yaml:5: attacks: given twice"),
    ("name: t\ndatasets: [synthetic\nmodels: [mlp]\n", "s.yaml:3: invalid YAML"),
    ("- a\n- b\n", r"s.yaml:1: sweep: expected a mapping"),
])
def test_malformed_sweeps_name_the_line_and_field(text, expected):
    assert expected in error(text)


@pytest.mark.parametrize(("field", "bad", "kind", "known"), [
    ("datasets", "[synthetic, ntu61]", "dataset", "ntu120, ntu60, nw-ucla"),
    ("models", "[mlp, stgcm]", "model", "sgn, shiftgcn, stgcn"),
    ("attacks", "[clean, [smart, pgdd]]", "attack", "mifgsm, pgd, smart"),
    ("defenses", "[none, beet]", "defense", "beat, mart"),
])
def test_unknown_names_are_listed_against_the_registered(field, bad, kind, known):
    grid = {"datasets": "[synthetic]", "models": "[mlp]", "attacks": "[smart]",
            "defenses": "[none]", field: bad}
    text = "name: t\n" + "".join(f"{k}: {v}\n" for k, v in grid.items())
    line = 2 + list(grid).index(field)
    at = f"{field}[1][1]" if field == "attacks" else f"{field}[1]"
    message = error(text)
    assert message.startswith(f"s.yaml:{line}: {at}: unknown {kind} "), message
    assert known in message, message


def test_cascades_refuse_clean_and_repeats():
    assert "cannot be in a cascade" in error(BASE.replace("[clean, smart]",
                                                          "[[smart, clean]]"))
    assert "two or more different attacks" in error(BASE.replace("[clean, smart]",
                                                                 "[[smart, smart]]"))


def test_cli_reports_a_malformed_sweep_in_one_line(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BASE + "seeds: [0, -1]\n")
    code, _, err = run(capsys, "bench", str(path), "--out", str(tmp_path / "out"))
    one_line_error(code, err, f"{path}:5: seeds[1]: expected an integer >= 0, got -1")
    assert not (tmp_path / "out").exists()  # nothing written before the sweep is checked


def test_another_sweeps_folder_is_refused(tmp_path):
    first, second = parse(BASE), parse(BASE + "clips: 3\n")
    store = Store(tmp_path / "out")
    manifest = store.open(first)
    assert manifest["cells"] == first.ids and manifest["hash"] == first.hash
    assert store.open(first)["created"] == manifest["created"]  # the same sweep resumes
    with pytest.raises(ConfigError, match="holds the results of another sweep"):
        store.open(second)
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["hash"] == first.hash


def test_a_folder_of_other_files_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds other files \(notes.txt\)"):
        Store(tmp_path).open(parse(BASE))
    code, _, err = run(capsys, "bench", str(TINY), "--out", str(tmp_path))
    one_line_error(code, err, "no sweep manifest")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_grids_are_partial_products_with_shared_options():
    sweep = parse("""\
    name: t
    datasets: [synthetic]
    models: [mlp]
    grids:
      - attacks: [clean, smart]
        goals: [ab, sa]
      - attacks: [clean, pgd]
        budgets: [{budget_mm: 5}, {budget_mm: 10}]
    attack_options: {smart: {steps: 3}}
    """)
    rows = [(c["attack"], c["goal"], c["budget"].get("budget_mm")) for c in sweep.cells]
    assert rows == [("clean", "ab", None), ("smart", "ab", None), ("smart", "sa", None),
                    ("pgd", "ab", 5), ("pgd", "ab", 10)]  # clean once: the grids' union
    assert sweep.cells[1]["options"] == {"steps": 3}
    message = error("""\
    name: t
    datasets: [synthetic]
    models: [mlp]
    grids:
      - attacks: [smart]
      - attacks: [pgdd]
    """)
    assert message.startswith("s.yaml:6: grids[1].attacks[0]: unknown attack 'pgdd'"), message
    assert error("name: t\nmodels: [mlp]\ngrids: [{attacks: [smart]}]\n").startswith(
        "s.yaml:3: grids[0]: missing: every grid needs datasets")


@pytest.mark.parametrize(("argv", "expected"), [
    (["bench", "s.yaml", "--out", "d", "--ray"], ("s.yaml", "local")),
    (["bench", "--ray", "s.yaml", "--out", "d"], ("s.yaml", "local")),  # argparse took it
    (["bench", "s.yaml", "--ray", "auto", "--out", "d"], ("s.yaml", "auto")),
    (["bench", "s.yaml", "--out", "d", "--workers", "2"], ("s.yaml", None)),
])
def test_the_sweep_file_and_the_ray_address(argv, expected):
    from skelrobust.cli.benching import sweep_and_ray
    from skelrobust.cli.parser import build_parser

    assert sweep_and_ray(build_parser().parse_args(argv)) == expected
    with pytest.raises(ConfigError, match="name the sweep file"):
        sweep_and_ray(build_parser().parse_args(["bench", "--out", "d"]))
