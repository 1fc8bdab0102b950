"""Read a sweep's result store (:mod:`skelrobust.bench.schema`) for the reports.

:func:`load_store` reads ``DIR/sweep.json`` (optional) and every ``DIR/cells/*.json`` into
:class:`Cell` objects: one cell's spec, status, metrics and the path of its clips. Reports
read only what this module returns; optional fields of the schema are read defensively (a
missing field is ``None`` or empty, never an exception).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skelrobust.bench.schema import SCHEMA, canonical_json
from skelrobust.errors import ConfigError

__all__ = ["SURROGATE_KEYS", "Cell", "Store", "attack_label", "budget_label", "finite",
           "load_store", "options_label", "setting_key", "slug"]

#: Option keys that name the surrogate of a transfer cell (the model the motion was crafted
#: on; the cell's ``model`` is the victim). The schema does not fix one name.
SURROGATE_KEYS = ("surrogate", "source", "source_model")


def attack_label(attack: Any) -> str:
    """``"smart"``; a cascade (a list of attacks) as ``"smart+basar"``."""
    if isinstance(attack, list | tuple):
        return "+".join(str(a) for a in attack)
    return str(attack)


def _number(value: Any) -> str:
    if isinstance(value, dict | list | tuple):
        return canonical_json(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def options_label(options: dict[str, Any] | None, hide: tuple[str, ...] = ()) -> str:
    """Options for people, ``"steps=30, w=0.6"`` (``""`` when none); ``hide``: keys left out."""
    return ", ".join(f"{k}={_number(v)}" for k, v in sorted((options or {}).items())
                     if k not in hide)


def budget_label(budget: dict[str, Any] | None, skip: str | None = None) -> str:
    """A budget for people: ``{"budget_mm": 20}`` as ``"20 mm"``, ``{"max_queries": 500}`` as
    ``"500 queries"``; other keys as ``key=value``; ``"none"`` when unbounded. ``skip``: a key
    left out (the one a curve sweeps)."""
    units = {"budget_mm": " mm", "max_queries": " queries", "steps": " steps"}
    parts = [f"{_number(v)}{units[k]}" if k in units else f"{k}={_number(v)}"
             for k, v in sorted((budget or {}).items()) if k != skip]
    return ", ".join(parts) or "none"


def finite(value: Any) -> float | None:
    """A finite float, or ``None`` (missing, null, NaN or not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Cell:
    """One result file, read defensively. ``spec``: the :class:`~skelrobust.bench.schema.
    CellSpec`; ``artifact``: the clips' ``.npz`` if the cell has one on disk."""

    id: str
    path: Path
    spec: dict[str, Any]
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    attempts: int = 1
    per_clip: dict[str, Any] = field(default_factory=dict)
    checkpoint: dict[str, Any] = field(default_factory=dict)
    artifact: Path | None = None
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def get(self, name: str, default: str = "?") -> str:
        """A text field of the spec (dataset, model, defense, goal), ``default`` if absent."""
        value = self.spec.get(name)
        return default if value is None else str(value)

    @property
    def attack(self) -> str:
        return attack_label(self.spec.get("attack", "?"))

    @property
    def defense(self) -> str:
        return self.get("defense", "none")

    @property
    def budget(self) -> dict[str, Any]:
        budget = self.spec.get("budget")
        return budget if isinstance(budget, dict) else {}

    @property
    def options(self) -> dict[str, Any]:
        options = self.spec.get("options")
        return options if isinstance(options, dict) else {}

    @property
    def surrogate(self) -> str | None:
        """The model a transfer cell's motion was crafted on (``None``: not a transfer cell):
        the spec's ``surrogate`` (what the runner writes), else an option naming it."""
        spec = self.spec.get("surrogate")
        if isinstance(spec, dict) and spec.get("model"):
            return str(spec["model"])
        for key in SURROGATE_KEYS:
            if self.options.get(key) is not None:
                return str(self.options[key])
        return None

    @property
    def seed(self) -> Any:
        return self.spec.get("seed")

    def value(self, name: str) -> float | None:
        """A metric by name: ``"success_pct"`` or a dotted path, ``"perceptual.joint_mm_mean"``;
        ``None`` when the cell failed or lacks it."""
        node: Any = self.metrics if self.ok else {}
        for part in name.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return finite(node)


@dataclass(frozen=True)
class Store:
    """A sweep's output folder: its manifest (``{}`` if absent) and its cells, sorted."""

    root: Path
    sweep: dict[str, Any]
    cells: list[Cell]

    @property
    def name(self) -> str:
        return str(self.sweep.get("name") or self.root.name)

    @property
    def failed(self) -> list[Cell]:
        return [c for c in self.cells if not c.ok]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"report: cannot read {str(path)!r} ({err}); a result file of "
                          "'skelrobust bench' is JSON written atomically: delete it and rerun "
                          "the sweep to recompute that cell") from None


def _cell(root: Path, path: Path) -> Cell:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"report: {str(path)!r} is not a cell result (expected a JSON object)")
    schema = data.get("schema")
    if schema != SCHEMA:
        raise ConfigError(f"report: {str(path)!r} has schema {schema!r}; this version of "
                          f"skelrobust reads {SCHEMA!r}")
    spec, status = data.get("cell"), data.get("status")
    if not isinstance(spec, dict) or status not in ("ok", "failed"):
        raise ConfigError(f"report: {str(path)!r} lacks its cell spec or a status of 'ok' or "
                          f"'failed' (got {status!r})")
    artifacts = data.get("artifacts") if isinstance(data.get("artifacts"), dict) else {}
    cid = str(data.get("id") or path.stem)
    candidates = [root / str(artifacts["adversarial"])] if artifacts.get("adversarial") else []
    candidates.append(root / "artifacts" / f"{cid}.npz")
    artifact = next((p for p in candidates if p.is_file()), None)
    metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
    error = data.get("error") if isinstance(data.get("error"), dict) else None
    attempts = data.get("attempts")
    return Cell(id=cid, path=path, spec=spec, status=status, metrics=metrics, error=error,
                attempts=attempts if isinstance(attempts, int) else 1, artifact=artifact,
                per_clip=data.get("per_clip") if isinstance(data.get("per_clip"), dict) else {},
                checkpoint=data.get("checkpoint") if isinstance(data.get("checkpoint"),
                                                                dict) else {},
                seconds=finite(data.get("seconds")))


def slug(text: str) -> str:
    """``text`` as a file name's part: letters, digits and dashes."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def setting_key(cell: Cell, skip: str | None = None, drop: tuple[str, ...] = ()) -> str:
    """What the cell ran, but its seed (and ``drop``, spec fields, and ``skip``, a key of the
    budget or the attack options): the cells of one key are the seeds of one setting
    (canonical JSON)."""
    spec = {k: v for k, v in cell.spec.items() if k not in ("seed", *drop)}
    if skip is not None:
        spec["budget"] = {k: v for k, v in cell.budget.items() if k != skip}
        spec["options"] = {k: v for k, v in cell.options.items() if k != skip}
    return canonical_json(spec)


def _sortable(value: Any) -> tuple[float, str]:
    """Numbers in numeric order, before any text."""
    number = finite(value)
    return (math.inf, str(value)) if number is None else (number, "")


def _order(cell: Cell) -> tuple[Any, ...]:
    budget = tuple((k, _sortable(v)) for k, v in sorted(cell.budget.items()))
    return (cell.get("dataset"), cell.get("model"), cell.get("size", ""),
            "" if cell.defense == "none" else cell.defense, cell.attack, cell.get("goal"),
            budget, _sortable(cell.seed), cell.id)


def load_store(root: str | Path) -> Store:
    """Every cell result under ``root/cells`` and the manifest ``root/sweep.json``."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"report: {str(root)!r} is not a folder; expected the --out folder "
                          "of 'skelrobust bench'")
    folder = root / "cells"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise ConfigError(f"report: {str(folder)!r} holds no cell results (*.json); run "
                          f"'skelrobust bench SWEEP.yaml --out {root}' first")
    manifest = root / "sweep.json"
    sweep = _read_json(manifest) if manifest.is_file() else {}
    cells = sorted((_cell(root, p) for p in files), key=_order)
    return Store(root=root, sweep=sweep if isinstance(sweep, dict) else {}, cells=cells)
