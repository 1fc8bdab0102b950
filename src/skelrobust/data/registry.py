"""The dataset registry: ``load_dataset(name, root=..., split=...)`` and ``list_datasets()``.

Each loader module registers a :class:`DatasetSpec`. ``root`` is the dataset's
own folder; when omitted, ``$SKELROBUST_DATA/<default folder>`` is used.

A dataset's evaluation **protocols** (:class:`Protocol`) name its train, test and,
where the release has one, validation split: NTU's ``xsub``/``xview``/``xset``,
SBU's ``fold1``..``fold5``, one protocol for the others. Every loaded split
records in ``info`` its ``dataset``, ``split`` and ``role`` (``"train"``,
``"val"``, ``"test"`` or ``"all"``), so that training can refuse to choose a
model on test data.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skelrobust.data.dataset import SkeletonDataset
from skelrobust.errors import DatasetNotFoundError, unknown_name

__all__ = ["DatasetSpec", "Protocol", "dataset_spec", "list_datasets", "load_dataset",
           "register_dataset", "split_role"]

# Modules that register datasets on import (imported on first registry access).
_LOADER_MODULES: list[str] = [
    "skelrobust.data.synthetic",
    "skelrobust.data.hdm05",
    "skelrobust.data.smart",
    "skelrobust.data.bvh",
    "skelrobust.data.ntu",
    "skelrobust.data.nwucla",
    "skelrobust.data.utdmhad",
    "skelrobust.data.msr",
    "skelrobust.data.gtu",
    "skelrobust.data.sbu",
    "skelrobust.data.kinetics",
]


@dataclass(frozen=True)
class Protocol:
    """An evaluation protocol: the splits a model trains on, is selected on, and is tested on.

    ``val`` is ``None`` when the release has no validation split; training then
    carves one from ``train`` (or keeps the last epoch), never using ``test``.
    """

    name: str
    train: str
    test: str
    val: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "train": self.train, "val": self.val, "test": self.test}


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is and how to load it.

    ``loader(root, split, **kwargs)`` returns a :class:`SkeletonDataset`;
    ``root`` is ``None`` for datasets that need no files.
    """

    name: str
    layout: str
    num_classes: int | None
    splits: tuple[str, ...]
    description: str
    loader: Callable[..., SkeletonDataset]
    needs_root: bool = True
    default_folder: str | None = None
    protocol: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # ``<name>-train``/``<name>-test`` split pairs are protocols of their own; a plain
    # ``train``/``test`` pair is the protocol named ``protocol_name``.
    protocol_name: str = "standard"
    explicit_protocols: tuple[Protocol, ...] = ()

    def protocols(self) -> dict[str, Protocol]:
        """The evaluation protocols, by name (the first is the default)."""
        if self.explicit_protocols:
            return {p.name: p for p in self.explicit_protocols}
        out: dict[str, Protocol] = {}
        val = "val" if "val" in self.splits else None
        if "train" in self.splits and "test" in self.splits:
            out[self.protocol_name] = Protocol(self.protocol_name, "train", "test", val)
        for s in self.splits:
            base, sep, part = s.rpartition("-")
            if sep and part == "train" and f"{base}-test" in self.splits:
                own_val = f"{base}-val" if f"{base}-val" in self.splits else None
                out[base] = Protocol(base, s, f"{base}-test", own_val)
        return out

    def get_protocol(self, name: str | None = None) -> Protocol:
        """Protocol ``name`` (default: the first); unknown names list the valid ones."""
        protocols = self.protocols()
        if not protocols:
            raise unknown_name(f"protocol of dataset {self.name!r}", str(name), [])
        if name is None:
            return next(iter(protocols.values()))
        try:
            return protocols[name]
        except KeyError:
            raise unknown_name(f"protocol of dataset {self.name!r}", name,
                               list(protocols)) from None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layout": self.layout,
            "classes": self.num_classes,
            "splits": list(self.splits),
            "protocol": self.protocol,
            "protocols": [p.describe() for p in self.protocols().values()],
            "needs_files": self.needs_root,
            "description": self.description,
        }


_DATASETS: dict[str, DatasetSpec] = {}
_loaded = False


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    _DATASETS[spec.name] = spec
    return spec


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _LOADER_MODULES:
            importlib.import_module(module)


def list_datasets() -> list[DatasetSpec]:
    """All registered datasets, by name."""
    _ensure_loaded()
    return [_DATASETS[k] for k in sorted(_DATASETS)]


def dataset_spec(name: str) -> DatasetSpec:
    _ensure_loaded()
    try:
        return _DATASETS[name]
    except KeyError:
        raise unknown_name("dataset", name, list(_DATASETS)) from None


def resolve_root(spec: DatasetSpec, root: str | os.PathLike[str] | None) -> Path | None:
    """The dataset folder: ``root``, else ``$SKELROBUST_DATA/<default folder>``."""
    if not spec.needs_root:
        return Path(root) if root is not None else None
    if root is None:
        env = os.environ.get("SKELROBUST_DATA")
        if not env or spec.default_folder is None:
            raise DatasetNotFoundError(
                f"dataset {spec.name!r} needs its files: pass root=PATH (--root) or set "
                f"SKELROBUST_DATA to the folder holding {spec.default_folder or spec.name!r}")
        root = Path(env) / spec.default_folder
    path = Path(root)
    if not path.is_dir():
        raise DatasetNotFoundError(f"dataset {spec.name!r}: root {str(path)!r} is not a folder")
    return path


def load_dataset(name: str, root: str | os.PathLike[str] | None = None, split: str = "train",
                 **kwargs: Any) -> SkeletonDataset:
    """Load split ``split`` of dataset ``name`` (see :func:`list_datasets`)."""
    spec = dataset_spec(name)
    if split not in spec.splits:
        raise unknown_name(f"split of dataset {name!r}", split, spec.splits)
    data = spec.loader(resolve_root(spec, root), split, **kwargs)
    data.info.update(dataset=spec.name, split=split, role=split_role(spec, split))
    return data


def split_role(spec: DatasetSpec, split: str) -> str:
    """``"test"`` if ``split`` is the test split of any protocol, else ``"val"``, ``"train"``
    or ``"all"``; a split that tests one protocol is test data, whatever else it is."""
    protocols = spec.protocols().values()
    for role in ("test", "val", "train"):
        if any(getattr(p, role) == split for p in protocols):
            return role
    return "all"
