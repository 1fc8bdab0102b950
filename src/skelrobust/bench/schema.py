"""The result store's contract: what one cell is, and what its result file holds.

The runner (:mod:`skelrobust.bench`) writes it, the reports (:mod:`skelrobust.report`) read
only it. A sweep's output folder ``DIR`` holds::

    DIR/sweep.json              the manifest: schema, the sweep's name, its expanded cells'
                                ids and the hash of the sweep (another sweep is refused);
                                ``specs``: each id's :class:`CellSpec`
    DIR/cells/<id>.json         one result per cell (:class:`CellResult`), written atomically
    DIR/artifacts/<id>.npz      the clips of a cell that attacked: ``ARTIFACT_KEYS``
    DIR/checkpoints/<hash>/     classifiers the sweep trained, keyed by their config's hash
    DIR/locks/                  the runner's lock files (nothing for a report to read)

A **cell** (:class:`CellSpec`) is one (dataset, model, defense, attack, goal, budget, seed)
with the options that change its result; its id is a hash of its canonical JSON
(:func:`cell_id`), so the same cell in two sweeps has the same id and a rerun finds it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, TypedDict

__all__ = ["ARTIFACT_KEYS", "SCHEMA", "CellError", "CellMetrics", "CellResult", "CellSpec",
           "canonical_json", "cell_id"]

#: The version tag of every result file (bumped when a field changes meaning).
SCHEMA = "skelrobust.cell/1"

#: Arrays of ``artifacts/<id>.npz`` (no pickle): clean and adversarial motion ``(N, 3, T, V,
#: M)`` in metres, ``lengths (N,)``, true labels ``y``, predictions ``clean_pred``/``adv_pred``,
#: ``success`` (bool), ``index`` (clip indices in the split), ``class_names`` (str),
#: ``layout`` (the skeleton's name, a 0-d str array). The runner also writes ``iterations``,
#: ``queries``, ``target`` (goal ``sa``) and each clip's perceptual figures ``report__<key>``.
ARTIFACT_KEYS = ("x_clean", "x_adv", "lengths", "y", "clean_pred", "adv_pred", "success",
                 "index", "class_names", "layout")


class CellSpec(TypedDict, total=False):
    """One cell. ``attack`` is an attack's registry name, ``"clean"`` (accuracy only), or a
    list of names (an AutoAttack-style cascade, each attacking only the clips still robust).
    ``budget``: the attack options that bound it (``{"budget_mm": 20}``,
    ``{"max_queries": 5000}``, ``{}`` when unbounded). ``options``: other attack options
    (for a cascade: ``{attack: its options}``; a goal's own, ``n`` of ``abn`` and
    ``target_mode`` of ``sa``, are among them); ``defense_options``/``model_options``: those
    of the defense and the model; ``clips``: how many test clips (the first ``clips`` of the
    seeded selection). ``data``/``train``: the resolved data and training configuration of
    the classifier (:class:`~skelrobust.config.DataConfig` and
    :class:`~skelrobust.training.TrainConfig` fields; the training seed is ``seed``);
    ``defense_train``: the training options of the defense that the sweep sets. A
    ``"clean"`` cell (accuracy only) has goal ``"ab"``, an empty budget and no options:
    one per (dataset, model, defense, seed), whatever the sweep's goals and budgets.
    ``surrogate`` (transfer cells only, absent otherwise): the model the motion is crafted on
    (``model``, ``size``, ``model_options``, ``train``; same data and seed, undefended); the
    attack never queries the victim, whose answers to the crafted motion decide success."""

    dataset: str
    model: str
    size: str
    defense: str  # "none" or a defense's registry name
    attack: str | list[str]
    goal: Literal["ab", "abn", "sa"]
    budget: dict[str, Any]
    seed: int
    clips: int
    options: dict[str, Any]
    defense_options: dict[str, Any]
    model_options: dict[str, Any]
    data: dict[str, Any]
    train: dict[str, Any]
    defense_train: dict[str, Any]
    surrogate: dict[str, Any]


class CellError(TypedDict):
    type: str
    message: str
    traceback: str


class CellMetrics(TypedDict, total=False):
    """Figures of one cell. Percentages in %, distances in mm, times in seconds.

    ``success_pct``: attacked clips that reach the goal, % of the clean-correct ones;
    ``robust_accuracy_pct``: clips still correct after the attack, % of all clips;
    ``perceptual``: :meth:`skelrobust.metrics.PerceptualReport.summary` over the successful
    clips (``joint_mm_mean``, ``bone_pct_mean``, ``angle_deg_mean``, ...); ``curves``:
    optional series, each a list of points, e.g. ``{"queries": [{"queries": 500,
    "success_pct": ..., "joint_mm_mean": ...}, ...], "iterations": [...]}`` (the runner
    writes ``queries`` for a label-only attack run with ``snapshot_queries``); ``stages``:
    per attack of the cell (one, or each of a cascade, in order): ``attack``, ``clips`` it
    attacked, its ``success`` count, ``seconds``, ``queries_mean`` and ``settings`` (every
    argument it ran with). ``success_pct`` is ``None`` when no clip was classified
    correctly (nothing to attack); a ``"clean"`` cell has no attack figures."""

    clips: int
    clean_correct: int
    clean_accuracy_pct: float
    success_pct: float
    robust_accuracy_pct: float
    queries_mean: float
    iterations_mean: float
    perceptual: dict[str, float]
    curves: dict[str, list[dict[str, float]]]
    stages: list[dict[str, Any]]


class CellResult(TypedDict, total=False):
    """``cells/<id>.json``. ``status`` ``"ok"`` with ``metrics``, or ``"failed"`` with
    ``error`` (the traceback kept); ``attempts``: runs so far (a failed cell is retried up to
    the sweep's ``retries``). ``per_clip``: lists over the attacked clips (``index``, ``y``,
    ``clean_pred``, ``adv_pred``, ``success``, ``joint_mm``, ``queries``, ``iterations``,
    ``target`` for goal ``sa``, and for a cascade ``fooled_by``: the attack that fooled each
    clip, ``None`` if none did); the attacked clips are the selected clips the victim
    classifies correctly. A ``"clean"`` cell lists ``index``, ``y``, ``clean_pred`` over
    every selected clip and has no artifacts."""

    schema: str
    id: str
    sweep: str
    cell: CellSpec
    status: Literal["ok", "failed"]
    attempts: int
    error: CellError | None
    metrics: CellMetrics
    per_clip: dict[str, list[Any]]
    checkpoint: dict[str, Any]  # path, config hash, clean top-1 on the whole test split
    artifacts: dict[str, str]  # {"adversarial": "artifacts/<id>.npz"}, relative to DIR
    started: str  # ISO 8601, UTC
    finished: str
    seconds: float
    threads: int
    machine: dict[str, Any]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text (and hashes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def cell_id(spec: CellSpec | dict[str, Any]) -> str:
    """The cell's id: the first 16 hex digits of SHA-256 of its canonical JSON."""
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()[:16]
