"""Shared pieces of the defense tests: tiny data, a tiny base, a tampered defense file."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from skelrobust.classifier import Classifier
from skelrobust.config import load_prepared
from skelrobust.data.dataset import SkeletonDataset

PREP = {"num_frames": 16, "center_mode": "first", "normalize_view": True}


def tiny_data() -> SkeletonDataset:
    """24 synthetic clips of 16 frames (seeded)."""
    return load_prepared("synthetic", "train", preprocess_args=PREP, num_clips=24,
                         num_frames=16, seed=0)


def tiny_mlp(data: SkeletonDataset) -> Classifier:
    """A fresh small MLP for ``data`` (the same weights every time), in eval mode."""
    torch.manual_seed(0)
    return Classifier.create("mlp", data, size="small", preprocess=PREP).eval()


def alter_base_weight(src: Path, dst: Path, delta: float) -> None:
    """Copy the defense file ``src`` to ``dst`` with one base weight moved by ``delta``
    (same header: what tampering with a base looks like)."""
    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(src))
    key = next(k for k in sorted(tensors) if k.startswith("base.model."))
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] += delta
    save_file(tensors, str(dst), metadata=meta)
