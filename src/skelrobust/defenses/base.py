"""Defenses produce a :class:`~skelrobust.classifier.Classifier` (DESIGN: "a defense returns a
Classifier").

A :class:`DefendedClassifier` wraps a *base* classifier and is itself a
``Classifier``: every attack, ``eval``, ``render`` and the ONNX export take it as
they take any classifier. Its file is one safetensors file whose weights are the
base's (under ``base.``) and the defense's own, and whose JSON header nests the
base's header::

    {"defense": name, "args": {...}, "base": <the base's header>,
     "base_fingerprint": sha256 of the base weights, "layout": ..., "class_names": ..., ...}

Loading rebuilds the base from the nested header, the defense from its registry
name and ``args``, fills the weights, and recomputes the base's fingerprint: a
file whose base weights were altered is refused. Defenses register themselves
like models and attacks (:func:`register_defense`, :func:`create_defense`).

Two kinds of defense share this class:

- ``freezes_base = True`` (BEAT, randomized smoothing): the base's weights never
  change (``requires_grad`` off, always in eval mode) and the defense adds its
  own parameters or randomness around the base's forward pass;
- ``freezes_base = False`` (SMART-AT, TRADES, MART, MMAT): the base is a copy
  fine-tuned by the defense; the header keeps the fingerprint of the weights it
  started from (``args["trained_from"]``) for provenance.

A classifier whose answers are random (``stochastic = True``: smoothing, a
sampled posterior) says so; attacks on it average over draws by default (EOT,
see :func:`skelrobust.attacks.oracle.as_oracle`).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import os
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from skelrobust.classifier import FORMAT_VERSION, Classifier
from skelrobust.errors import CheckpointError, ConfigError

__all__ = ["DEFENSES", "DefendedClassifier", "create_defense", "defense_stack",
           "describe_defense",
           "get_defense", "list_defenses", "load_defended", "register_defense",
           "weights_fingerprint"]

DEFENSES: dict[str, type[DefendedClassifier]] = {}
_ALIASES: dict[str, str] = {}


def register_defense(name: str, *aliases: str) -> Callable[[type[DefendedClassifier]],
                                                            type[DefendedClassifier]]:
    """Class decorator: make a :class:`DefendedClassifier` subclass known as ``name``."""
    def wrap(cls: type[DefendedClassifier]) -> type[DefendedClassifier]:
        if name in DEFENSES and DEFENSES[name] is not cls:
            raise ConfigError(f"defense {name!r} is already registered")
        cls.defense = name
        DEFENSES[name] = cls
        for alias in aliases:
            _ALIASES[alias] = name
        return cls
    return wrap


def _ensure_registered() -> None:
    """Import the defense modules (they register themselves on import)."""
    import importlib

    for module in ("beat", "smoothing", "adversarial_training"):
        try:
            importlib.import_module(f"skelrobust.defenses.{module}")
        except ModuleNotFoundError as err:  # a defense module not written yet
            if err.name != f"skelrobust.defenses.{module}":
                raise


def get_defense(name: str) -> type[DefendedClassifier]:
    """The defense class registered as ``name`` (or an alias); unknown: a ConfigError."""
    _ensure_registered()
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in DEFENSES:
        raise ConfigError(f"unknown defense {name!r}; known: {', '.join(list_defenses())}")
    return DEFENSES[key]


def list_defenses() -> list[str]:
    """Registered defense names, sorted."""
    _ensure_registered()
    return sorted(DEFENSES)


def describe_defense(name: str) -> str:
    """The first line of a defense's docstring."""
    doc = (get_defense(name).__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def create_defense(name: str, base: Classifier, **args: Any) -> DefendedClassifier:
    """An untrained defense ``name`` around ``base`` (train it with its ``fit``).

    An option the defense does not take is a :class:`ConfigError` naming it.
    """
    cls = get_defense(name)
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        known = [k for k in params if k not in ("self", "base")]
        unknown = sorted(set(args) - set(known))
        if unknown:
            raise ConfigError(f"defense {cls.defense!r}: unknown option(s) {unknown}; it takes "
                              f"{known}")
    return cls(base, **args)


def weights_fingerprint(module: nn.Module) -> str:
    """SHA-256 over a module's state dict: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        t = value.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class DefendedClassifier(Classifier):
    """A defense around a base classifier; itself a :class:`Classifier` (module doc).

    Subclasses set ``freezes_base`` and ``stochastic``, take their options as
    keyword arguments (stored in :attr:`args`, which must be JSON) and implement
    :meth:`defended_logits`.
    """

    defense: ClassVar[str] = ""
    freezes_base: ClassVar[bool] = True
    stochastic: bool = False

    def __init__(self, base: Classifier, args: dict[str, Any] | None = None) -> None:
        nn.Module.__init__(self)
        if not isinstance(base, Classifier):
            raise ConfigError(f"{self.defense or type(self).__name__}: the base must be a "
                              f"skelrobust Classifier, got {type(base).__name__}")
        self.base = base
        self.args: dict[str, Any] = dict(args or {})
        self.skeleton = base.skeleton
        self.class_names = list(base.class_names)
        self.preprocess = dict(base.preprocess)
        self.info: dict[str, Any] = {**base.info, "defense": self.defense}
        self.validate = base.validate
        self.external = None
        if getattr(base, "stochastic", False):  # a defense over a random classifier is random
            self.stochastic = True
        if self.freezes_base:
            base.requires_grad_(False)
            base.eval()

    # the base's normalisation, layout and model stand for the defended classifier's
    @property
    def mean(self) -> torch.Tensor:  # type: ignore[override]
        return self.base.mean

    @property
    def std(self) -> torch.Tensor:  # type: ignore[override]
        return self.base.std

    @property
    def model(self) -> nn.Module:  # type: ignore[override]
        return self.base.model

    @property
    def root_base(self) -> Classifier:
        """The undefended classifier at the bottom of a stack of defenses."""
        return defense_stack(self)[-1]

    def train(self, mode: bool = True) -> DefendedClassifier:
        super().train(mode)
        if self.freezes_base:
            self.base.eval()  # a frozen base keeps its BatchNorm statistics and no dropout
        return self

    def forward(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Logits of the defended classifier for motion ``x`` (metres, ``(N, 3, T, V, M)``)."""
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x))
        if x.dtype != self.mean.dtype or x.device != self.mean.device:
            x = x.to(device=self.mean.device, dtype=self.mean.dtype)
        return self.defended_logits(x)

    def defended_logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Not defined for a defense (its logits are not a head over one feature vector)."""
        raise ConfigError(f"{self.defense}: a defended classifier has no feature/head split; "
                          "read the undefended model's with .base.forward_features")

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.forward_features(features)

    # ------------------------------------------------------------------ files
    def header(self) -> dict[str, Any]:
        from skelrobust import __version__

        return {"format": FORMAT_VERSION, "skelrobust": __version__, "defense": self.defense,
                "args": self.args, "base": self.base.header(),
                "base_fingerprint": weights_fingerprint(self.base),
                "layout": self.skeleton.name, "class_names": self.class_names,
                "preprocess": self.preprocess, "info": self.info}

    @classmethod
    def from_args(cls, base: Classifier, args: dict[str, Any]) -> DefendedClassifier:
        """The defense with fresh weights around ``base`` from its header's ``args``."""
        return cls(base, **args)


def defense_stack(classifier: Classifier) -> list[Classifier]:
    """``classifier``, then the base of each defense under it, down to the undefended one."""
    stack = [classifier]
    while isinstance(stack[-1], DefendedClassifier):
        stack.append(stack[-1].base)
    return stack


def load_defended(header: dict[str, Any], tensors: dict[str, torch.Tensor],
                  file: str | os.PathLike[str], module: nn.Module | None = None,
                  ) -> DefendedClassifier:
    """A defended classifier from its file's ``header`` and ``tensors`` (module doc)."""
    try:
        name, args, base_header = header["defense"], header["args"], header["base"]
        fingerprint = header["base_fingerprint"]
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{file}: malformed defense header (missing {err})") from None
    try:
        cls = get_defense(name)
    except ConfigError as err:
        raise CheckpointError(f"{file}: {err}") from None
    base_tensors = {k[len("base."):]: v for k, v in tensors.items() if k.startswith("base.")}
    if "defense" in base_header:
        base: Classifier = load_defended(base_header, base_tensors, file, module)
    else:
        base = Classifier.from_header(base_header, file, module)
        base.load_weights(base_tensors, file, module is not None)
    found = weights_fingerprint(base)
    if found != fingerprint:
        raise CheckpointError(f"{file}: the base classifier's weights do not match the "
                              f"fingerprint the defense {name!r} was saved with (expected "
                              f"{fingerprint[:12]}..., found {found[:12]}...): the file was "
                              "altered")
    try:
        defended = cls.from_args(base, dict(args))
    except ConfigError as err:
        raise CheckpointError(f"{file}: cannot rebuild defense {name!r}: {err}") from None
    defended.load_weights(tensors, file)
    defended.info = dict(header.get("info") or defended.info)
    return defended


def trainable_copy(classifier: Classifier) -> Classifier:
    """A deep copy of ``classifier`` to fine-tune (the caller's is never trained).

    A plain classifier's copy has every parameter trainable again (another defense,
    e.g. BEAT, may have frozen the caller's object); a defended one keeps its own
    choice (a stack over BEAT must not train BEAT's frozen base).
    """
    duplicate = copy.deepcopy(classifier)
    if not isinstance(duplicate, DefendedClassifier):
        duplicate.requires_grad_(True)
    return duplicate
