"""Typed experiment configuration with YAML files; every CLI flag maps to a field.

A training experiment is ``{data: ..., model: ..., train: ...}``::

    data: {name: nw-ucla, root: ../shared/data/nw-ucla, frames: 64}
    model: {name: stgcn, size: small}
    train: {epochs: 40, optimizer: sgd, lr: 0.05, schedule: cosine}
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.registry import dataset_spec, load_dataset
from skelrobust.data.transforms import preprocess
from skelrobust.errors import ConfigError
from skelrobust.training import TrainConfig

__all__ = ["DataConfig", "ExperimentConfig", "ModelConfig", "load_config", "load_prepared"]


@dataclass
class DataConfig:
    """Which dataset, which splits, and the preprocessing applied before the model."""

    name: str = "synthetic"
    root: str | None = None
    train_split: str = "train"
    val_split: str | None = None  # default: "val" if the dataset has one, else the test split
    test_split: str = "test"
    frames: int = 64
    center_mode: str | None = "first"
    normalize_view: bool = True
    temporal: str = "resample"
    options: dict[str, Any] = field(default_factory=dict)  # loader keyword arguments

    def preprocess_args(self) -> dict[str, Any]:
        return {"num_frames": self.frames, "center_mode": self.center_mode,
                "normalize_view": self.normalize_view, "temporal": self.temporal}

    def resolved_val_split(self) -> str:
        if self.val_split:
            return self.val_split
        return "val" if "val" in dataset_spec(self.name).splits else self.test_split


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
