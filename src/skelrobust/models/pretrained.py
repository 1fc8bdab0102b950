"""Third-party weights, described in one place: origin, key map, class names, preprocessing.

A *pretrained format* reads a checkpoint that skelrobust did not write (today:
the official Shift-GCN NTU state dicts, Cheng et al., CVPR 2020) and returns a
:class:`~skelrobust.classifier.Classifier` that remembers the data recipe the
weights expect (dataset, protocol, loader options), so ``skelrobust eval`` and
``skelrobust attack`` load the right data for it. ``skelrobust import`` writes
such a classifier as a skelrobust classifier folder; ``eval`` and ``attack``
also take the third-party file directly (:func:`load_any`).

Third-party files are read with ``torch.load(..., weights_only=True)``: no
code in them is ever run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from skelrobust.errors import CheckpointError, ConfigError, unknown_name
from skelrobust.models.registry import create_model
from skelrobust.skeleton import get_skeleton

if TYPE_CHECKING:
    from skelrobust.classifier import Classifier

__all__ = ["FORMATS", "PretrainedFormat", "detect_format", "load_any", "load_pretrained",
           "load_shiftgcn_checkpoint", "read_state_dict", "supported_formats"]


@dataclass(frozen=True)
class PretrainedFormat:
    """A third-party checkpoint format: how to recognise it and build a classifier from it."""

    name: str
    description: str
    origin: str
    matches: Callable[[Mapping[str, torch.Tensor]], bool]
    load: Callable[..., Classifier]


def _first(keys: Sequence[str], k: int = 5) -> str:
    return ", ".join(keys[:k]) + (f", ... ({len(keys)} in all)" if len(keys) > k else "")


def read_state_dict(file: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A PyTorch state dict from ``file`` (``weights_only``; ``module.`` prefixes dropped)."""
    file = Path(file)
    if not file.is_file():
        raise CheckpointError(f"{file}: no such checkpoint file")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types on bad files
        raise CheckpointError(f"{file}: not a readable PyTorch checkpoint "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    if not isinstance(obj, Mapping) or not obj or not all(
            isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in obj.items()):
        raise CheckpointError(f"{file}: not a state dict (expected a mapping of parameter names "
                              f"to tensors, got {type(obj).__name__})")
    sd = dict(obj)
    if all(k.startswith("module.") for k in sd):  # saved from DataParallel
        sd = {k[len("module."):]: t for k, t in sd.items()}
    return sd


# ---------------------------------------------------------------------- Shift-GCN
_SHIFTGCN_KEYS = ("fc.weight", "data_bn.weight", "l1.gcn1.Linear_weight")


def _ntu_recipe(file: Path, num_classes: int, bodies: int) -> dict[str, Any]:
    """The data an official NTU checkpoint expects: dataset, benchmark and pipeline options."""
    dataset = {60: "ntu60", 120: "ntu120"}.get(num_classes)
    found = re.search(r"x(sub|view|set)", file.name.lower())
    protocol = f"x{found.group(1)}" if found else "xsub"
    if dataset is None:
        return {}
    return {"name": dataset, "protocol": protocol, "train_split": f"{protocol}-train",
            "test_split": f"{protocol}-test",
            "options": {"pipeline": True, "num_frames": 300, "pad": "loop", "rotation": "agcn",
                        "max_bodies": bodies},
            "layout": "ntu25", "classes": num_classes,
            "validation": "trained by its authors (official checkpoint)"}


def load_shiftgcn_checkpoint(path: str | os.PathLike[str], num_classes: int | None = None,
                             class_names: Sequence[str] | None = None,
                             skeleton: str = "ntu25") -> Classifier:
    """An official Shift-GCN state dict (joint stream) as a :class:`Classifier`.

    The number of classes, bodies and input channels are read from the file
    (``fc.weight``, ``data_bn.weight``, ``l1.gcn1.Linear_weight``) and the
    weights and stored shift indices are loaded with ``strict=True``. No
    normalisation is added (mean 0, std 1) and no further preprocessing: the
    network expects 2s-AGCN's ``pre_normalization`` (metres, 2 bodies, 300
    frames *looped*), i.e. ``load_dataset("ntu60", ..., pad="loop")``, which the
    classifier records as its data recipe (dataset from the class count,
    benchmark from the file name, default ``xsub``). Class names default to
    :data:`~skelrobust.data.ntu.NTU_ACTIONS`.
    Raises :class:`CheckpointError` naming the file and the first mismatching keys.
    """
    from skelrobust.classifier import Classifier
    from skelrobust.data.ntu import NTU_ACTIONS

    file = Path(path)
    sd = read_state_dict(file)
    skel = get_skeleton(skeleton)
    absent = [k for k in _SHIFTGCN_KEYS if k not in sd]
    if absent:
        raise CheckpointError(f"{file}: not a Shift-GCN state dict; missing keys: {_first(absent)}")
    k, c_in = int(sd["fc.weight"].shape[0]), int(sd["l1.gcn1.Linear_weight"].shape[0])
    m = sd["data_bn.weight"].numel() // max(c_in * skel.num_joints, 1)
    if num_classes is not None and num_classes != k:
        raise CheckpointError(f"{file}: holds a {k}-class classifier (fc.weight "
                              f"{tuple(sd['fc.weight'].shape)}), not {num_classes} classes")
    if class_names is None:
        class_names = list(NTU_ACTIONS[:k]) if k in (60, 120) else [f"class {i}" for i in range(k)]
    if len(class_names) != k:
        raise ConfigError(f"class_names: expected {k} names for {file}, got {len(class_names)}")
    model = create_model("shiftgcn", skeleton=skel, num_classes=k, size="base",
                         in_channels=c_in, num_bodies=max(m, 1))
    expected = model.state_dict()
    missing = [n for n in expected if n not in sd]
    unexpected = [n for n in sd if n not in expected]
    shapes = [f"{n} {tuple(sd[n].shape)} vs model {tuple(t.shape)}" for n, t in expected.items()
              if n in sd and sd[n].shape != t.shape]
    if missing or unexpected or shapes:
        parts = [f"{label}: {_first(keys)}" for label, keys in (
            ("missing keys", missing), ("unexpected keys", unexpected),
            ("shape mismatches", shapes)) if keys]
        raise CheckpointError(f"{file}: does not match Shift-GCN base ({k} classes, layout "
                              f"{skel.name!r}, {m} bodies): " + "; ".join(parts))
    bad = [n for n, t in sd.items() if n.endswith(("shift_in", "shift_out"))
           and (t.is_floating_point() or int(t.min()) < 0 or int(t.max()) >= t.numel())]
    if bad:
        raise CheckpointError(f"{file}: spatial shift indices out of range in {_first(bad)}")
    model.load_state_dict(sd, strict=True)
    info: dict[str, Any] = {"source": "official Shift-GCN checkpoint", "file": str(file),
                            "paper": "Cheng et al., CVPR 2020", "format": "shiftgcn"}
    recipe = _ntu_recipe(file, k, m) if skel.name == "ntu25" else {}
    if recipe:
        info["data"] = recipe
    # the loader's NTU pipeline is the whole preprocessing: no centring, rotation or resampling
    preprocess = {"num_frames": None, "center_mode": None, "normalize_view": False}
    return Classifier(model, skel, list(class_names), preprocess=preprocess, info=info).eval()


def _is_shiftgcn(sd: Mapping[str, torch.Tensor]) -> bool:
    return all(k in sd for k in _SHIFTGCN_KEYS)


FORMATS: dict[str, PretrainedFormat] = {
    "shiftgcn": PretrainedFormat(
        name="shiftgcn", description="official Shift-GCN joint-stream state dict (.pt/.pth), "
        "NTU RGB+D 60/120", origin="Cheng et al., CVPR 2020 (kchengiva/Shift-GCN)",
        matches=_is_shiftgcn, load=load_shiftgcn_checkpoint),
}

SKELROBUST_FORMAT = ("skelrobust classifier (a .safetensors file with a skelrobust header, or a "
                     "folder holding classifier.safetensors)")


def supported_formats() -> str:
    """The checkpoint formats skelrobust reads, as one sentence for error messages."""
    return "; ".join([SKELROBUST_FORMAT] + [f"{f.name}: {f.description}"
                                           for f in FORMATS.values()])


def detect_format(path: str | os.PathLike[str]) -> str:
    """``"skelrobust"`` or the name of the third-party format of ``path``; else CheckpointError."""
    p = Path(path)
    if p.is_dir() or p.suffix == ".safetensors":
        return "skelrobust"
    if not p.exists():
        raise CheckpointError(f"{p}: no such classifier file or folder")
    with open(p, "rb") as fh:
        head = fh.read(16)
    # a safetensors file starts with its little-endian header length and then "{"
    if len(head) > 8 and head[8:9] == b"{":
        return "skelrobust"
    try:
        sd = read_state_dict(p)
    except CheckpointError:
        raise CheckpointError(f"{p}: not a supported checkpoint; supported formats: "
                              f"{supported_formats()}") from None
    for fmt in FORMATS.values():
        if fmt.matches(sd):
            return fmt.name
    raise CheckpointError(f"{p}: a PyTorch state dict of no supported model (keys "
                          f"{_first(sorted(sd))}); supported formats: {supported_formats()}")


def load_pretrained(path: str | os.PathLike[str], format: str | None = None,
                    **kwargs: Any) -> Classifier:
    """A third-party checkpoint as a classifier; ``format`` is detected when not given."""
    name = format or detect_format(path)
    if name == "skelrobust":
        raise CheckpointError(f"{path}: is a skelrobust classifier; load it with "
                              "Classifier.load")
    try:
        fmt = FORMATS[name]
    except KeyError:
        raise unknown_name("checkpoint format", name, list(FORMATS)) from None
    return fmt.load(path, **kwargs)


def load_any(path: str | os.PathLike[str]) -> Classifier:
    """A skelrobust classifier, or a supported third-party checkpoint, from ``path``."""
    from skelrobust.classifier import Classifier

    name = detect_format(path)
    return Classifier.load(path) if name == "skelrobust" else load_pretrained(path, name)
