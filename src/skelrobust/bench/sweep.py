"""Sweep files: a YAML grid of cells, checked line by line and expanded into :class:`CellSpec`.

A sweep is the grid ``datasets × models × defenses × seeds × attacks × goals × budgets``
plus options every cell shares::

    name: tiny-synthetic
    datasets: [synthetic]
    models: [mlp]
    defenses: [none, beat]               # "none": the classifier itself (the default)
    attacks: [clean, smart, [smart, pgd]]  # a list in the list: an AutoAttack-style cascade
    goals: [ab, abn-3, sa]               # abn-N: true class out of the top N
    budgets: [{budget_mm: 20, max_queries: 2000}]  # each attack takes the keys it knows
    seeds: [0, 1]
    clips: 16                            # test clips per cell (a seeded selection)
    size: small                          # model size (default: the recipe's, else small)
    recipe: ../{model}_{dataset}.yaml    # training recipe per (model, dataset), optional
    data: {synthetic: {frames: 32, options: {num_clips: 200}}}  # per dataset
    train: {epochs: 2}                   # TrainConfig keys over the recipe's
    model_options: {stgcn: {}}           # per model
    attack_options: {smart: {steps: 50}, basar: {pool: train}}  # per attack
    defense_options: {beat: {samples: 2}}  # per defense
    defense_train: {beat: {epochs: 1}}   # per defense: TrainConfig keys of its training
    retries: 1                           # runs of a failed cell after its first
    threads: 1                           # torch threads per cell

Besides an attack's own arguments, ``attack_options`` take ``pool`` (the split whose clips a
label-only attacker holds: ``train``, the default, another split, or ``none``),
``discriminator`` (``fit_discriminator`` arguments: CIASA's GAN term trained on the training
clips) and ``query_batch`` (clips per victim call of a label-only attack).

Every error names the file, the line and the field; unknown dataset, model, attack and
defense names are listed against the registered ones. Relative ``recipe`` paths are read
beside the sweep file first, then from the working folder.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from skelrobust.bench.fields import FieldReader, YamlLines
from skelrobust.bench.schema import CellSpec, canonical_json, cell_id
from skelrobust.errors import ConfigError

__all__ = ["BENCH_ATTACK_OPTIONS", "CLEAN", "NO_DEFENSE", "Sweep", "load_sweep", "parse_sweep"]

CLEAN, NO_DEFENSE = "clean", "none"
#: Attack options the runner handles itself (see the module doc).
BENCH_ATTACK_OPTIONS = ("pool", "discriminator", "query_batch")
#: TrainConfig fields that do not change what a classifier learns.
_NOT_TRAINING = ("progress", "num_threads", "eval_batch_size", "seed")
#: DataConfig fields a sweep may not set (the dataset is a grid axis; roots come from
#: ``$SKELROBUST_DATA``, so results do not depend on where a machine keeps the files).
_NOT_DATA = ("name", "root")
GRID = {"datasets": None, "models": None, "defenses": [NO_DEFENSE], "attacks": None,
        "goals": ["ab"], "budgets": [{}], "seeds": [0], "surrogates": [None]}
SHARED = {"name": None, "description": "", "clips": 16, "size": None, "recipe": None,
          "data": {}, "train": {}, "model_options": {}, "attack_options": {},
          "defense_options": {}, "defense_train": {}, "retries": 0, "threads": None,
          "grids": None}


@dataclass
class Sweep:
    """An expanded sweep: its cells (in grid order, no duplicates) and how to run them."""

    name: str
    path: str
    cells: list[CellSpec]
    retries: int = 0
    threads: int | None = None
    description: str = ""
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [cell_id(c) for c in self.cells]

    @property
    def hash(self) -> str:
        """What makes two sweeps the same sweep: the set of their cells."""
        return hashlib.sha256(canonical_json(sorted(self.ids)).encode()).hexdigest()[:16]


def load_sweep(path: str | os.PathLike[str]) -> Sweep:
    """Read, check and expand the sweep file ``path`` (module doc)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise ConfigError(f"{p}: cannot read the sweep file ({err.strerror})") from None
    return parse_sweep(text, str(p), base=p.parent)


def parse_sweep(text: str, path: str = "<sweep>", base: Path | None = None) -> Sweep:
    """:func:`load_sweep` on YAML ``text`` (``path`` names it in errors; ``base``: the folder
    relative recipes are read from first)."""
    where = YamlLines(path, text, root="sweep")
    raw = yaml.safe_load(text) if where.lines else None
    if not isinstance(raw, dict):
        raise where.error((), "expected a mapping with the keys datasets, models, attacks, ...")
    unknown = sorted(set(raw) - set(GRID) - set(SHARED))
    if unknown:
        known = ", ".join(sorted({*GRID, *SHARED}))
        raise where.error((unknown[0],), f"unknown key; known: {known}")
    return _Expander(raw, where, base).sweep()


class _Expander(FieldReader):
    """Checks every field of a parsed sweep (naming its line) and builds its cells."""

    def __init__(self, raw: dict[str, Any], where: YamlLines, base: Path | None) -> None:
        self.raw, self.where, self.base = raw, where, base
        self.grid: tuple[int, dict[str, Any]] | None = None  # the entry of grids being read

    def at(self, key: str) -> tuple[Any, ...]:
        """Where ``key`` is read from: the current entry of ``grids`` or the top level."""
        return ("grids", self.grid[0], key) if self.grid and key in self.grid[1] else (key,)

    def get(self, key: str) -> Any:
        default = GRID[key] if key in GRID else SHARED[key]
        if self.grid and key in self.grid[1]:
            return self.grid[1][key]
        value = self.raw.get(key, default)
        if value is None and default is None and key in GRID:
            where = ("grids", self.grid[0]) if self.grid else (key,)
            raise self.where.error(where, f"missing: every grid needs {key}")
        return value

    def attack(self, item: Any, at: tuple[Any, ...]) -> str | list[str]:
        if item == CLEAN:
            return CLEAN
        if isinstance(item, list) and len(item) == 1:
            item = item[0]
        if isinstance(item, list):
            if not item or len(set(map(str, item))) != len(item):
                raise self.fail(at, f"a cascade lists two or more different attacks, got {item}")
            return [self.attack_name(a, (*at, i)) for i, a in enumerate(item)]
        return self.attack_name(item, at)

    def attack_name(self, item: Any, at: tuple[Any, ...]) -> str:
        from skelrobust.attacks.registry import describe_attack

        if item == CLEAN:
            raise self.fail(at, "'clean' measures accuracy alone; it cannot be in a cascade")
        return self.registered("attack", lambda n: describe_attack(n) and n)(item, at)

    def goal(self, item: Any, at: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
        text = str(item)
        if text in ("ab", "sa", "abn"):
            return text, ({"target_mode": "random"} if text == "sa" else {})
        head, _, n = text.partition("-")
        if head == "abn" and n.isdigit() and int(n) >= 1:
            return "abn", {"n": int(n)}
        raise self.fail(at, f"expected ab, abn, abn-N (N >= 1) or sa, got {item!r}")

    def seed(self, item: Any, at: tuple[Any, ...]) -> int:
        return self.integer("seeds", 0, item, at)  # type: ignore[return-value]

    def surrogate(self, item: Any, at: tuple[Any, ...]) -> str | None:
        """A transfer cell's surrogate model (``null``: the attack runs on the victim)."""
        from skelrobust.models.registry import model_spec

        if item is None:
            return None
        return self.registered("model", lambda n: model_spec(n).name)(item, at)

    def budget(self, item: Any, at: tuple[Any, ...]) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise self.fail(at, f"expected a mapping such as {{budget_mm: 20}}, got {item!r}")
        return item

    # ------------------------------------------------------------------ cells
    def sweep(self) -> Sweep:
        from skelrobust.data.registry import list_datasets
        from skelrobust.models.registry import list_models

        raw = self.raw
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise self.fail(("name",), "the sweep needs a name (a short string)")
        clips = self.integer("clips", 1)
        retries = self.integer("retries", 0)
        threads = self.integer("threads", 1, optional=True)
        size = self.get("size")
        if size is not None and size not in ("small", "base"):
            raise self.fail(("size",), f"expected small or base, got {size!r}")
        shared = {"attack_options": self.attack_options(),
                  "defense_options": self.defense_options(),
                  "defense_train": self.train_section("defense_train")}
        model_options = self.section("model_options", "model", list_models())
        data = self.section("data", "dataset", [s.name for s in list_datasets()])
        self.train_overrides(self.get("train"), ("train",))
        grids = raw.get("grids") or [{}]
        if not isinstance(grids, list):
            raise self.fail(("grids",), "expected a list of grids (mappings of grid axes)")
        cells: dict[str, CellSpec] = {}
        recipes: dict[tuple[str, str], dict[str, Any]] = {}
        for i, grid in enumerate(grids):
            if not isinstance(grid, dict) or not set(grid) <= set(GRID):
                extra = sorted(set(grid) - set(GRID)) if isinstance(grid, dict) else []
                raise self.fail(("grids", i, *extra[:1]), "a grid is a mapping of the axes "
                                f"{', '.join(GRID)}")
            self.grid = (i, grid) if raw.get("grids") else None
            for spec in self.grid_cells(size, clips, data, model_options, recipes, shared):
                cells.setdefault(cell_id(spec), spec)
        self.grid = None
        return Sweep(name=name.strip(), path=self.where.path, cells=list(cells.values()),
                     retries=retries, threads=threads,
                     description=str(raw.get("description") or ""), source=raw)

    def grid_cells(self, size: str | None, clips: int, data: dict[str, Any],
                   model_options: dict[str, Any], recipes: dict[tuple[str, str], Any],
                   shared: dict[str, Any]) -> list[CellSpec]:
        """The cells of the current grid, in grid order."""
        import itertools

        from skelrobust.data.registry import dataset_spec
        from skelrobust.defenses.base import get_defense
        from skelrobust.models.registry import model_spec

        datasets = self.names("datasets", self.registered("dataset",
                                                          lambda n: dataset_spec(n).name))
        models = self.names("models", self.registered("model", lambda n: model_spec(n).name))
        defenses = self.names("defenses", self.registered(
            "defense", lambda n: NO_DEFENSE if n == NO_DEFENSE else get_defense(n).defense))
        attacks = self.names("attacks", self.attack)
        goals = self.names("goals", self.goal)
        budgets = self.names("budgets", self.budget)
        seeds = self.names("seeds", self.seed)
        surrogates = self.names("surrogates", self.surrogate)
        singles = sorted({a for entry in attacks for a in ([entry] if isinstance(entry, str)
                                                            else entry)} - {CLEAN})
        self.check_budgets(budgets, singles, shared["attack_options"])
        for d, m in itertools.product(datasets, {*models, *surrogates} - {None}):
            if (d, m) not in recipes:
                recipes[(d, m)] = self.experiment(d, m, size, data.get(d, {}),
                                                  model_options.get(m, {}))
        return [self.cell(recipes[(d, m)], defense, attack, goal, goal_options, budget, seed,
                          clips, surrogate=None if sur is None or attack == CLEAN
                          else recipes[(d, sur)], **shared)
                for d, m, defense, seed, attack, (goal, goal_options), budget, sur in
                itertools.product(datasets, models, defenses, seeds, attacks, goals, budgets,
                                  surrogates)]

    def cell(self, exp: dict[str, Any], defense: str, attack: str | list[str], goal: str,
             goal_options: dict[str, Any], budget: dict[str, Any], seed: int, clips: int,
             attack_options: dict[str, dict[str, Any]], defense_options: dict[str, Any],
             defense_train: dict[str, Any], surrogate: dict[str, Any] | None = None
             ) -> CellSpec:
        """One cell: what changes its result, and nothing else (so equal cells share an id).
        ``surrogate``: the experiment of the model a transfer cell crafts its motion on."""
        from skelrobust.attacks.registry import ATTACKS, attack_arguments

        if attack == CLEAN:  # accuracy alone: no goal, budget or attack options
            goal, budget, options = "ab", {}, {}
        else:
            members = [attack] if isinstance(attack, str) else attack
            accepted = {a: set(attack_arguments(ATTACKS[a])) for a in members}
            own = {a: {**{k: v for k, v in goal_options.items() if k not in
                          attack_options.get(a, {})}, **attack_options.get(a, {})}
                   for a in members}
            budget = {k: v for k, v in budget.items() if any(k in s for s in accepted.values())}
            options = own[attack] if isinstance(attack, str) else own
        spec = CellSpec(
            dataset=exp["dataset"], model=exp["model"], size=exp["size"], defense=defense,
            attack=attack, goal=goal, budget=budget, seed=seed, clips=clips, options=options,
            defense_options=defense_options.get(defense, {}), model_options=exp["model_options"],
            data=exp["data"], train=exp["train"],
            defense_train=defense_train.get(defense, {}))
        if surrogate is not None:  # absent otherwise: the ids of other cells do not change
            spec["surrogate"] = {k: surrogate[k] for k in ("model", "size", "model_options",
                                                           "train")}
        return _plain(spec)

    # ------------------------------------------------------------------ option checks
    def attack_options(self) -> dict[str, dict[str, Any]]:
        from skelrobust.attacks.registry import ATTACKS, attack_arguments, list_attacks

        section = self.section("attack_options", "attack", list_attacks())
        for name, options in section.items():
            accepted = set(attack_arguments(ATTACKS[name])) | set(BENCH_ATTACK_OPTIONS)
            for key in options:
                if key == "goal":
                    raise self.fail(("attack_options", name, key), "goals are a grid axis: "
                                    "set them under goals")
                if key not in accepted:
                    raise self.fail(("attack_options", name, key), f"attack {name!r} takes no "
                                    f"option {key!r}; it takes {', '.join(sorted(accepted))}")
        return section

    def check_budgets(self, budgets: list[dict[str, Any]], singles: list[str],
                      attack_options: dict[str, dict[str, Any]]) -> None:
        """Every budget key is some attack's argument (each cell keeps those its attacks take)
        and is not set again under ``attack_options``."""
        from skelrobust.attacks.registry import ATTACKS, attack_arguments, list_attacks

        known = {k for a in list_attacks(aliases=False) for k in attack_arguments(ATTACKS[a])}
        for i, budget in enumerate(budgets):
            for key in budget:
                if key not in known:
                    raise self.fail((*self.at("budgets"), i, key), f"no attack takes "
                                    f"{key!r}; budgets bound attacks, e.g. budget_mm, "
                                    "max_queries, steps")
                both = [a for a in singles if key in attack_options.get(a, {})
                        and key in attack_arguments(ATTACKS[a])]
                if both:
                    raise self.fail(("attack_options", both[0], key), f"{key!r} is a budget: "
                                    "set it under budgets, not attack_options")

    def defense_options(self) -> dict[str, dict[str, Any]]:
        import inspect

        from skelrobust.defenses.base import get_defense

        section = self.section("defense_options", "defense", _defenses())
        for name, options in section.items():
            if name == NO_DEFENSE:
                raise self.fail(("defense_options", name), "'none' takes no options")
            params = inspect.signature(get_defense(name).__init__).parameters
            if any(p.kind is p.VAR_KEYWORD for p in params.values()):
                continue
            known = [k for k in params if k not in ("self", "base")]
            for key in options:
                if key not in known:
                    raise self.fail(("defense_options", name, key), f"defense {name!r} takes "
                                    f"no option {key!r}; it takes {', '.join(known)}")
        return section

    def train_section(self, key: str) -> dict[str, dict[str, Any]]:
        section = self.section(key, "defense", _defenses())
        for name, values in section.items():
            if name == NO_DEFENSE:
                raise self.fail((key, name), "'none' trains nothing")
            self.train_overrides(values, (key, name))
        return section

    def train_overrides(self, values: Any, at: tuple[Any, ...]) -> dict[str, Any]:
        from skelrobust.training import TrainConfig
        from skelrobust.validation import RULES

        if not isinstance(values, dict):
            raise self.fail(at, f"expected a mapping of training options, got {values!r}")
        known = {f.name for f in fields(TrainConfig)} - {"progress", "num_threads", "seed"}
        for key, value in values.items():
            if key == "seed":
                raise self.fail((*at, key), "every cell trains with its own seed: set them "
                                "under seeds")
            if key not in known:
                raise self.fail((*at, key), f"unknown training option; known: "
                                f"{', '.join(sorted(known))}")
            rule = RULES.get(f"train.{key}")
            try:
                if rule is not None:
                    rule(value)
            except ValueError as err:  # the rule's words: "must be in [1, 100000], got 0"
                raise self.fail((*at, key), str(err)) from None
        return values

    def experiment(self, dataset: str, model: str, size: str | None, data: dict[str, Any],
                   model_options: dict[str, Any]) -> dict[str, Any]:
        """The resolved training recipe of (``dataset``, ``model``): recipe file, then the sweep."""
        from skelrobust.config import DataConfig, ExperimentConfig, load_config
        from skelrobust.training import TrainConfig

        recipe = self.get("recipe")
        exp = ExperimentConfig()
        if recipe:
            if not isinstance(recipe, str):
                raise self.fail(("recipe",), f"expected a path template, got {recipe!r}")
            exp = load_config(self.recipe_path(recipe, dataset, model))
        for key in data:
            if key in _NOT_DATA or key not in {f.name for f in fields(DataConfig)}:
                raise self.fail(("data", dataset, key), "not a data option the sweep sets; "
                                f"known: {', '.join(sorted(_data_keys()))}")
        try:
            d = DataConfig(**{**asdict(exp.data), **data, "name": dataset, "root": None})
            t = TrainConfig.from_dict({**asdict(exp.train), **self.get("train")})
        except (ConfigError, TypeError) as err:
            raise self.fail(("data", dataset) if data else ("train",), str(err)) from None
        train = {k: v for k, v in asdict(t).items() if k not in _NOT_TRAINING}
        return {"dataset": dataset, "model": model, "size": size or exp.model.size or "small",
                "model_options": {**exp.model.kwargs, **model_options},
                "data": {k: v for k, v in asdict(d).items() if k not in _NOT_DATA},
                "train": train}

    def recipe_path(self, template: str, dataset: str, model: str) -> Path:
        try:
            name = Path(template.format(dataset=dataset, model=model))
        except (KeyError, IndexError, ValueError) as err:
            raise self.fail(("recipe",), f"bad template ({err}); use {{model}} and "
                            "{dataset}") from None
        tries = [name] if name.is_absolute() else [
            *([self.base / name] if self.base is not None else []), Path.cwd() / name]
        for candidate in tries:
            if candidate.is_file():
                return candidate
        raise self.fail(("recipe",), f"no recipe for {model} on {dataset}: looked for "
                        f"{', '.join(map(str, tries))}")


def _defenses() -> list[str]:
    from skelrobust.defenses.base import list_defenses

    return [NO_DEFENSE, *list_defenses()]


def _data_keys() -> set[str]:
    from skelrobust.config import DataConfig

    return {f.name for f in fields(DataConfig)} - set(_NOT_DATA)


def _plain(value: Any) -> Any:
    """JSON values only (tuples become lists): the spec as the store will read it back."""
    import json

    return json.loads(canonical_json(value))
