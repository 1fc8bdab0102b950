"""The :class:`Classifier`: a model plus normalisation, layout and class names.

Attacks and defenses act on motion in metres; the (mean, std) normalisation
a model was trained with is a buffer inside the classifier, so the gradient an
attack sees is with respect to the motion itself.

A classifier file is one safetensors file: the weights, and in its JSON
header (``__metadata__["skelrobust"]``) the model name and arguments, the
layout, class names, preprocessing, training data fingerprint and metrics.
Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from skelrobust.data.dataset import SkeletonDataset, check_motion
from skelrobust.errors import CheckpointError, ConfigError, SkelRobustError
from skelrobust.models.adapters import INPUT_LAYOUTS, adapt_module
from skelrobust.models.registry import create_model
from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = ["CHECKPOINT_NAME", "Classifier", "normalization_stats"]

CHECKPOINT_NAME = "classifier.safetensors"
FORMAT_VERSION = 1


def normalization_stats(data: SkeletonDataset, eps: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate, per-joint mean and std ``(1, 3, 1, V, 1)`` over present frames.

    Only frames within ``lengths`` where the body is present count; ``std`` is
    floored at ``eps`` metres so constant joints (the centre) do not blow up.
    """
    x = data.x
    present = (np.abs(x).sum(axis=(1, 3), keepdims=True) > 0) & data.frame_mask()[
        :, None, :, None, None]
    w = np.broadcast_to(present, x.shape).astype(np.float64)
    count = np.maximum(w.sum(axis=(0, 2, 4), keepdims=True), 1.0)
    mean = (x * w).sum(axis=(0, 2, 4), keepdims=True) / count
    var = (((x - mean) ** 2) * w).sum(axis=(0, 2, 4), keepdims=True) / count
    return mean.astype(np.float32), np.maximum(np.sqrt(var), eps).astype(np.float32)


class Classifier(nn.Module):
    """Model + normalisation buffers + layout + class names; ``forward`` maps motion to logits.

    ``forward(x)`` takes ``(N, 3, T, V, M)`` motion in metres and returns
    ``(N, num_classes)`` logits of ``model((x - mean) / std)``.
    """

    def __init__(self, model: nn.Module, skeleton: Skeleton | str, class_names: list[str],
                 mean: np.ndarray | torch.Tensor | None = None,
                 std: np.ndarray | torch.Tensor | None = None,
                 preprocess: dict[str, Any] | None = None, info: dict[str, Any] | None = None,
                 validate: bool = True) -> None:
        super().__init__()
        self.model = model
        self.skeleton = get_skeleton(skeleton)
        self.class_names = [str(c) for c in class_names]
        v = self.skeleton.num_joints
        shape = (1, 3, 1, v, 1)
        self.register_buffer("mean", _as_buffer(mean, shape, 0.0, "mean"))
        self.register_buffer("std", _as_buffer(std, shape, 1.0, "std"))
        if bool((self.std <= 0).any()):
            raise ConfigError("std: normalisation scale must be positive")
        self.preprocess = dict(preprocess or {})
        self.info = dict(info or {})
        self.validate = validate
        # set by from_module(): {"input_layout", "class"} of a user module (no registry config)
        self.external: dict[str, str] | None = None

    @classmethod
    def create(cls, model_name: str, data: SkeletonDataset, size: str = "small",
               preprocess: dict[str, Any] | None = None, **model_kwargs: Any) -> Classifier:
        """Build a fresh model for ``data``'s layout and classes, normalised by its statistics."""
        model = create_model(model_name, skeleton=data.skeleton, num_classes=data.num_classes,
                             size=size, num_bodies=data.num_bodies, **model_kwargs)
        mean, std = normalization_stats(data)
        return cls(model, data.skeleton, data.class_names, mean, std, preprocess=preprocess,
                   info={"train_data": {"name": data.name, "fingerprint": data.fingerprint(),
                                        "clips": len(data)}})

    @classmethod
    def from_module(cls, module: nn.Module, skeleton: Skeleton | str, class_names: list[str],
                    input_layout: str = "nctvm",
                    mean: np.ndarray | torch.Tensor | None = None,
                    std: np.ndarray | torch.Tensor | None = None,
                    preprocess: dict[str, Any] | None = None, info: dict[str, Any] | None = None,
                    validate: bool = True) -> Classifier:
        """Wrap ANY user ``nn.Module`` returning logits ``(N, len(class_names))`` as a classifier.

        ``input_layout`` is the layout the module expects: ``"nctvm"`` (the
        library's ``(N, C, T, V, M)``), ``"pyskl"`` (``(N, M, T, V, C)``) or
        ``"sgn"`` (one body, ``(N, T, V·C)``); see :mod:`skelrobust.models.adapters`.
        ``mean``/``std`` (``(1, 3, 1, V, 1)``-compatible, in metres) normalise the
        motion before the module sees it, e.g. from :func:`normalization_stats`.

        ``save()`` writes the weights and a header naming the module's class and
        layout; the architecture itself is code, so it is not stored:
        ``Classifier.load(path, module=net)`` loads the weights back into ``net``
        (a freshly built instance of the same architecture).
        """
        if input_layout not in INPUT_LAYOUTS:
            raise ConfigError(f"input_layout must be one of {INPUT_LAYOUTS}, got "
                              f"{input_layout!r}")
        clf = cls(adapt_module(module, input_layout), skeleton, class_names, mean, std,
                  preprocess=preprocess, info=info, validate=validate)
        kind = type(module)
        clf.external = {"input_layout": input_layout,
                        "class": f"{kind.__module__}.{kind.__qualname__}"}
        return clf

    @classmethod
    def from_shiftgcn_checkpoint(cls, path: str | os.PathLike[str],
                                 num_classes: int | None = None,
                                 class_names: list[str] | None = None) -> Classifier:
        """An official Shift-GCN checkpoint (Cheng et al., CVPR 2020) as a classifier.

        See :func:`skelrobust.models.pretrained.load_shiftgcn_checkpoint`.
        """
        from skelrobust.models.pretrained import load_shiftgcn_checkpoint

        return load_shiftgcn_checkpoint(path, num_classes=num_classes, class_names=class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _model_input(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``x`` as a tensor in the classifier's dtype and device, checked when
        :attr:`validate`, and normalised: ``(x - mean) / std`` (gradients kept)."""
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x))
        if x.dtype != self.mean.dtype or x.device != self.mean.device:
            x = x.to(device=self.mean.device, dtype=self.mean.dtype)
        if self.validate:
            check_motion(x, "x", self.skeleton)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Logits of motion ``x`` (a tensor or numpy array of any float or integer dtype;
        computed in the classifier's dtype, gradients kept)."""
        logits = self.model(self._model_input(x))
        return logits

    def _feature_model(self) -> nn.Module:
        """The model, if it exposes ``forward_features``/``forward_head``; else ConfigError."""
        if all(hasattr(self.model, a) for a in ("forward_features", "forward_head")):
            return self.model
        what = (self.external or {}).get("class") or type(self.model).__name__
        raise ConfigError(f"the classifier's model ({what}) exposes no forward_features/"
                          "forward_head, which defenses that read features before the last "
                          "layer need; its logits are still available (call the classifier)")

    def forward_features(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Pre-logits features ``(N, num_features)`` of motion ``x`` (input handled as in
        :meth:`forward`); ``forward_head(forward_features(x))`` gives the logits."""
        model = self._feature_model()
        return model.forward_features(self._model_input(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` of features from :meth:`forward_features`."""
        return self._feature_model().forward_head(features)

    @property
    def num_features(self) -> int:
        """Width of :meth:`forward_features`' output (the model's ``num_features``)."""
        width = getattr(self._feature_model(), "num_features", None)
        if width is None:
            raise ConfigError(f"the classifier's model ({type(self.model).__name__}) has "
                              "forward_features but no num_features attribute")
        return int(width)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Predicted labels ``(N,)`` in eval mode, in batches."""
        return self.predict_logits(x, batch_size).argmax(1)

    @torch.no_grad()
    def predict_logits(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
            out = [self(chunk) for chunk in x.split(batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, self.num_classes)

    # ------------------------------------------------------------------ files
    def header(self) -> dict[str, Any]:
        config = getattr(self.model, "config", None)
        if self.external is not None:  # a user module: weights only, the code is the user's
            config = {"name": "external", "external": dict(self.external)}
        elif config is None:
            raise CheckpointError("only models built with create_model() or wrapped with "
                                  "Classifier.from_module() can be saved (the model has no "
                                  ".config to rebuild it from)")
        from skelrobust import __version__

        return {"format": FORMAT_VERSION, "skelrobust": __version__, "model": config,
                "layout": self.skeleton.name, "class_names": self.class_names,
                "preprocess": self.preprocess, "info": self.info}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write weights + JSON header to ``path`` (a directory gets ``classifier.safetensors``).

        The write is atomic: a temporary file is renamed over the target.
        """
        target = Path(path)
        if target.is_dir() or target.suffix == "":
            target.mkdir(parents=True, exist_ok=True)
            target = target / CHECKPOINT_NAME
        header = self.header()
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}
        tmp = target.with_name(target.name + ".tmp")
        meta = {"skelrobust": json.dumps(header, default=json_default)}
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str], map_location: str = "cpu",
             module: nn.Module | None = None) -> Classifier:
        """Load a classifier file (or a directory holding ``classifier.safetensors``).

        Registry models are rebuilt from the header. A classifier saved from
        :meth:`from_module` holds only weights: pass ``module``, a fresh instance
        of the same architecture, and it is wrapped for the saved input layout and
        filled with the weights (without it, :class:`CheckpointError`). ``module``
        may also receive the weights of a registry model (as an ``nctvm`` module).
        """
        file = resolve_checkpoint(path)
        try:
            with safe_open(str(file), framework="pt", device=map_location) as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{file}: not a readable skelrobust classifier ({err}); "
                                  f"supported formats: {_formats()}") from None
        if "skelrobust" not in meta:
            raise CheckpointError(f"{file}: a safetensors file without a skelrobust header; "
                                  f"supported formats: {_formats()}")
        try:
            header = json.loads(meta["skelrobust"])
        except json.JSONDecodeError as err:
            raise CheckpointError(f"{file}: malformed skelrobust header ({err!r})") from None
        if isinstance(header, dict) and "defense" in header:
            from skelrobust.defenses.base import load_defended

            return load_defended(header, tensors, file, module=module).eval()
        clf = cls.from_header(header, file, module)
        clf.load_weights(tensors, file, module is not None)
        return clf.eval()

    @classmethod
    def from_header(cls, header: dict[str, Any], file: str | os.PathLike[str] = "<header>",
                    module: nn.Module | None = None) -> Classifier:
        """A classifier with fresh weights built from a file's header (see :meth:`load`)."""
        try:
            config = header["model"]
            external = config.get("external")
            if module is not None:
                layout = external["input_layout"] if external else "nctvm"
                return cls.from_module(module, header["layout"], header["class_names"], layout,
                                       preprocess=header.get("preprocess"),
                                       info=header.get("info"))
            if external is not None:
                raise CheckpointError(
                    f"{file}: holds the weights of a user module ({external.get('class')}, "
                    f"input layout {external.get('input_layout')!r}) saved with "
                    "Classifier.from_module(); its architecture is not in the file: pass a "
                    "fresh instance, Classifier.load(path, module=...)")
            model = create_model(config["name"], skeleton=config["skeleton"],
                                 num_classes=config["num_classes"], size=config["size"],
                                 in_channels=config["in_channels"],
                                 num_bodies=config["num_bodies"], **config.get("kwargs", {}))
            return cls(model, header["layout"], header["class_names"],
                       preprocess=header.get("preprocess"), info=header.get("info"))
        except (KeyError, TypeError, AttributeError) as err:
            raise CheckpointError(f"{file}: malformed skelrobust header ({err!r})") from None
        except CheckpointError:
            raise
        except SkelRobustError as err:
            raise CheckpointError(f"{file}: cannot rebuild its model: {err}") from None

    def load_weights(self, tensors: dict[str, torch.Tensor], file: str | os.PathLike[str],
                     user_module: bool = False) -> None:
        """Fill the classifier with ``tensors`` (strict); a :class:`CheckpointError` on mismatch."""
        try:
            self.load_state_dict(tensors, strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()
            what = ((self.external or {}).get("class") if user_module
                    else (getattr(self.model, "config", None) or {}).get("name",
                                                                       type(self).__name__))
            raise CheckpointError(f"{file}: weights do not match model {what!r} "
                                  f"({first[0] if first else err})") from None


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """The classifier file for ``path`` (a file, or a directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.is_file():
        raise CheckpointError(f"{p}: no such classifier file")
    return p


def _formats() -> str:
    from skelrobust.models.pretrained import supported_formats

    return supported_formats() + " (convert one with skelrobust import FILE --out DIR)"


def _as_buffer(value: Any, shape: tuple[int, ...], default: float, name: str) -> torch.Tensor:
    if value is None:
        return torch.full(shape, default)
    t = torch.as_tensor(np.asarray(value, dtype=np.float32))
    try:
        return t.reshape(shape).clone()
    except RuntimeError:
        raise ConfigError(f"{name}: expected {int(np.prod(shape))} values for shape {shape}, "
                          f"got {tuple(t.shape)}") from None


def json_default(obj: Any) -> Any:
    """``json.dumps`` default for headers: numpy scalars and arrays, tuples; else TypeError."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
