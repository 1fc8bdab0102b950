"""Model registry in the shape of timm: ``create_model(name, skeleton=..., size=...)``.

Every model class takes ``(skeleton, num_classes, size, in_channels, num_bodies,
**kwargs)`` and maps motion ``(N, C, T, V, M)`` to logits ``(N, num_classes)``.
The arguments a model was created with are kept in ``model.config`` so a
:class:`~skelrobust.classifier.Classifier` can save and rebuild it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from skelrobust.errors import ConfigError, unknown_name
from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = ["ModelSpec", "create_model", "list_models", "model_spec", "register_model"]

SIZES = ("small", "base")

# Modules of this package that hold building blocks, not models.
_NOT_MODELS = frozenset({"registry", "graph", "blocks", "adapters", "pretrained"})


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: Callable[..., nn.Module]
    description: str
    paper: str = ""


_MODELS: dict[str, ModelSpec] = {}
_loaded = False


def register_model(name: str, description: str = "", paper: str = "") -> Callable[[type], type]:
    """Class decorator adding a model to the registry under ``name``."""

    def wrap(cls: type) -> type:
        _MODELS[name] = ModelSpec(name=name, cls=cls, description=description, paper=paper)
        return cls

    return wrap


def _ensure_loaded() -> None:
    """Import every model module of ``skelrobust.models`` (each registers itself)."""
    global _loaded
    if not _loaded:
        _loaded = True
        package = importlib.import_module("skelrobust.models")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if info.name not in _NOT_MODELS and not info.name.startswith("_"):
                importlib.import_module(f"skelrobust.models.{info.name}")


def list_models() -> list[str]:
    _ensure_loaded()
    return sorted(_MODELS)


def model_spec(name: str) -> ModelSpec:
    _ensure_loaded()
    try:
        return _MODELS[name]
    except KeyError:
        raise unknown_name("model", name, list(_MODELS)) from None


def create_model(name: str, skeleton: Skeleton | str = "ntu25", num_classes: int = 60,
                 size: str = "small", in_channels: int = 3, num_bodies: int = 1,
                 **kwargs: Any) -> nn.Module:
    """Build model ``name`` for a layout; ``size``: ``"small"`` (CPU) or ``"base"`` (published)."""
    spec = model_spec(name)
    skel = get_skeleton(skeleton)
    if size not in SIZES:
        raise ConfigError(f"size must be one of {SIZES}, got {size!r}")
    if num_classes < 1 or in_channels < 1 or num_bodies < 1:
        raise ConfigError(f"num_classes, in_channels and num_bodies must be >= 1 (got "
                          f"{num_classes}, {in_channels}, {num_bodies})")
    model = spec.cls(skeleton=skel, num_classes=num_classes, size=size,
                     in_channels=in_channels, num_bodies=num_bodies, **kwargs)
    model.config = {"name": name, "skeleton": skel.name, "num_classes": num_classes,
                    "size": size, "in_channels": in_channels, "num_bodies": num_bodies,
                    "kwargs": dict(kwargs)}
    return model
