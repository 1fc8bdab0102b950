"""Typed experiment configuration with YAML files; every CLI flag maps to a field.

A training experiment is ``{data: ..., model: ..., train: ...}``::

    data: {name: nw-ucla, root: ../shared/data/nw-ucla, frames: 64}
    model: {name: stgcn, size: small}
    train: {epochs: 40, optimizer: sgd, lr: 0.05, schedule: cosine}

The splits come from the dataset's evaluation protocol (``data.protocol``,
e.g. NTU's ``xsub``; see :meth:`~skelrobust.data.registry.DatasetSpec.protocols`).
Model selection never sees the test split: with ``train.keep: best`` the
validation data are the protocol's validation split, or a seeded, stratified
``val_fraction`` carved from the training clips (:func:`load_experiment_data`).
A trained classifier records that recipe (:func:`data_record`), so ``eval`` and
``attack`` load the same data in the same way (:func:`load_for_classifier`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.registry import Protocol, dataset_spec, load_dataset, resolve_root
from skelrobust.data.splits import can_carve, carve_validation
from skelrobust.data.transforms import preprocess
from skelrobust.errors import ConfigError, DatasetNotFoundError
from skelrobust.training import TrainConfig
from skelrobust.validation import check_section

if TYPE_CHECKING:
    from skelrobust.classifier import Classifier

__all__ = [
    "DataConfig",
    "ExperimentConfig",
    "ExperimentData",
    "ModelConfig",
    "check_compatible",
    "data_record",
    "load_config",
    "load_experiment_data",
    "load_for_classifier",
    "load_prepared",
]

log = logging.getLogger(__name__)

#: ``val_split`` values that are not split names.
CARVE, NO_VALIDATION = "carve", "none"


@dataclass
class DataConfig:
    """Which dataset, which protocol and splits, and the preprocessing before the model.

    ``protocol`` defaults to the dataset's first; ``train_split`` and
    ``test_split`` default to the protocol's. ``val_split``: a split name, or
    ``"carve"`` (``val_fraction`` of the training clips, seeded and stratified),
    or ``"none"``; by default the protocol's validation split where the release
    has one, else ``"carve"`` when the best epoch is kept and ``"none"`` when
    the last one is.
    """

    name: str = "synthetic"
    root: str | None = None
    protocol: str | None = None
    train_split: str | None = None
    val_split: str | None = None
    test_split: str | None = None
    val_fraction: float = 0.1
    frames: int = 64
    center_mode: str | None = "first"
    normalize_view: bool = True
    temporal: str = "resample"
    options: dict[str, Any] = field(default_factory=dict)  # loader keyword arguments

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"data: val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.frames is not None and self.frames < 2:
            raise ConfigError(f"data: frames must be >= 2, got {self.frames}")

    def preprocess_args(self) -> dict[str, Any]:
        return {"num_frames": self.frames, "center_mode": self.center_mode,
                "normalize_view": self.normalize_view, "temporal": self.temporal}

    def resolved_protocol(self) -> Protocol:
        """The protocol with this config's split overrides applied."""
        base = dataset_spec(self.name).get_protocol(self.protocol)
        return replace(base, train=self.train_split or base.train,
                       test=self.test_split or base.test)

    def resolved_val_split(self, keep: str = "best") -> str:
        """A split name, ``"carve"`` or ``"none"`` (see the class docstring)."""
        if self.val_split:
            return self.val_split
        own = self.resolved_protocol().val
        if own:
            return own
        return CARVE if keep == "best" else NO_VALIDATION


@dataclass
class ModelConfig:
    name: str = "stgcn"
    size: str = "small"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls: type, values: Any, where: str) -> Any:
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    section = {DataConfig: "data", ModelConfig: "model", TrainConfig: "train"}[cls]
    values = check_section(section, values, where)
    if cls is TrainConfig:
        return TrainConfig.from_dict(values)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    return cls(**values)


def load_config(path: str | os.PathLike[str]) -> ExperimentConfig:
    """Read an :class:`ExperimentConfig` from a YAML file (unknown keys are errors)."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except OSError as err:
        raise ConfigError(f"{p}: cannot read config ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: invalid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping with data/model/train sections")
    unknown = sorted(set(raw) - {"data", "model", "train"})
    if unknown:
        raise ConfigError(f"{p}: unknown sections {unknown}; expected data, model, train")
    return ExperimentConfig(
        data=_build(DataConfig, raw.get("data"), f"{p}: data"),
        model=_build(ModelConfig, raw.get("model"), f"{p}: model"),
        train=_build(TrainConfig, raw.get("train"), f"{p}: train"),
    )


def load_prepared(name: str, split: str, root: str | None = None,
                  preprocess_args: dict[str, Any] | None = None,
                  **options: Any) -> SkeletonDataset:
    """Load a split and apply the classifier's preprocessing (see :func:`preprocess`)."""
    data = load_dataset(name, root=root, split=split, **options)
    return preprocess(data, **(preprocess_args or {}))


@dataclass
class ExperimentData:
    """The splits of one training run and how its validation data were chosen."""

    train: SkeletonDataset
    val: SkeletonDataset | None
    test: SkeletonDataset
    protocol: Protocol
    validation: str  # a sentence for people: which data choose the kept epoch
    keep: str = "best"  # the keep policy these data allow ("last" when there is no validation)


def load_experiment_data(d: DataConfig, keep: str = "best", seed: int = 0) -> ExperimentData:
    """Train, validation and test data of a protocol; validation never comes from the test split.

    ``keep`` is :class:`~skelrobust.training.TrainConfig`'s: with ``"best"`` and
    no validation split of its own, ``val_fraction`` of the training clips are
    carved off (seeded by ``seed``, stratified by class).
    """
    proto, prep = d.resolved_protocol(), d.preprocess_args()
    train = load_prepared(d.name, proto.train, d.root, prep, **d.options)
    test = load_prepared(d.name, proto.test, d.root, prep, **d.options)
    how = d.resolved_val_split(keep)
    val: SkeletonDataset | None
    last = (f"the last epoch is kept; {proto.test} is evaluated once, after training")
    val: SkeletonDataset | None = None
    if how == CARVE and not can_carve(train):
        how, last = NO_VALIDATION, (f"too few training clips to carve validation data (no "
                                    f"class has two): {last}")
        log.warning("%s %s: %s", d.name, proto.train, last)
    if how == CARVE:
        train, val = carve_validation(train, d.val_fraction, seed)
        text = (f"validation: {len(val)} clips ({d.val_fraction:.0%} of {proto.train}, seeded, "
                f"stratified) carved from the training data; {len(train)} clips train")
    elif how == NO_VALIDATION:
        text = f"no validation data: {last}"
    else:
        val = load_prepared(d.name, how, d.root, prep, **d.options)
        text = f"validation: split {how} ({len(val)} clips)"
    return ExperimentData(train, val, test, proto, text, keep if val is not None else "last")


def data_record(d: DataConfig, data: ExperimentData) -> dict[str, Any]:
    """What a classifier remembers of its data (stored in its header as ``info["data"]``)."""
    root = None
    try:
        found = resolve_root(dataset_spec(d.name), d.root)
        root = str(found.resolve()) if found is not None else None
    except DatasetNotFoundError:
        pass
    return {"name": d.name, "protocol": data.protocol.name, "train_split": data.protocol.train,
            "test_split": data.protocol.test, "validation": data.validation,
            "options": dict(d.options), "root": root, "layout": data.train.skeleton.name,
            "classes": data.train.num_classes, "fingerprint": data.train.fingerprint(),
            "clips": len(data.train)}


def check_compatible(classifier: Classifier, data: SkeletonDataset) -> None:
    """Refuse data whose layout or class set differ from the classifier's (a clear error)."""
    where = data.split_label
    expects = (f"the classifier expects layout {classifier.skeleton.name!r} and its "
               f"{classifier.num_classes} classes ({_names(classifier.class_names)})")
    recorded = (classifier.info.get("data") or {}).get("name")
    hint = f"; it was trained on {recorded!r}" if recorded else ""
    if data.skeleton.name != classifier.skeleton.name:
        raise ConfigError(f"{where} has layout {data.skeleton.name!r}: {expects}{hint}")
    if list(data.class_names) != list(classifier.class_names):
        raise ConfigError(f"{where} has {data.num_classes} classes ({_names(data.class_names)})"
                          f": {expects}{hint}")


def _names(names: list[str], shown: int = 3) -> str:
    head = ", ".join(names[:shown])
    return head + (f", ... {len(names) - shown} more" if len(names) > shown else "")


def load_for_classifier(classifier: Classifier, name: str | None = None,
                        split: str | None = None, root: str | None = None,
                        options: dict[str, Any] | None = None) -> SkeletonDataset:
    """Data for ``classifier``: by default its own dataset's test split, loaded as it was trained.

    ``name``/``split``/``root``/``options`` override the recorded recipe; the
    recorded root is used when neither ``root`` nor ``$SKELROBUST_DATA`` finds
    the files. Data whose layout or classes differ from the classifier's are
    refused (:func:`check_compatible`).
    """
    record = dict(classifier.info.get("data") or {})
    legacy = (classifier.info.get("train_data") or {}).get("name")
    recorded = record.get("name") or legacy
    name = name or recorded
    if not name:
        raise ConfigError("the classifier does not record the dataset it was trained on; name "
                          "one with --data")
    same = name == recorded
    spec = dataset_spec(name)
    if split is None:
        split = record.get("test_split") if same and record.get("test_split") else (
            spec.get_protocol().test)
    recorded_options = (record.get("options") or {}) if same else {}
    opts = {**recorded_options, **(options or {})}
    if root is None and same and record.get("root"):
        try:
            resolve_root(spec, None)
        except DatasetNotFoundError:
            root = record["root"]
    data = load_prepared(name, split, root, classifier.preprocess, **opts)
    check_compatible(classifier, data)
    return data
