"""Set up a registered attack on a classifier and keep its clips, as ``skelrobust attack``, the
benchmark scripts and the benchmark runner (:mod:`skelrobust.bench`) all do.

- :func:`prepare_attack`: the attack ``name`` on a classifier, reaching it with the access
  the attack declares (white-box: the classifier; label-only: a counted
  :class:`~skelrobust.attacks.oracle.QueryOracle` whose calls are split into ``query_batch``
  clips), with the attacker's ``pool`` where the attack starts from one and a
  discriminator trained on clean clips where the attack has one (CIASA's GAN term);
- :func:`attack_settings`: every argument an attack runs with, as plain data;
- :func:`save_clips`: clean and adversarial clips of a result in one ``.npz`` (no pickle),
  written atomically, with the keys the renderer and the report's viewer read.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skelrobust.errors import ConfigError
from skelrobust.fileio import atomic_write

__all__ = ["QUERY_BATCH", "attack_settings", "prepare_attack", "save_clips"]

#: Clips per victim call of a label-only attack's oracle: HopSkipJump sends thousands of probes
#: at once, and a CPU forward pass over them runs 2-3x slower per clip than at 16-64 (MS-G3D
#: NW-UCLA, 1 thread: 8.0 / 9.9 / 23.1 ms per clip at 16 / 64 / 1024).
QUERY_BATCH = 64


def prepare_attack(name: str, classifier: torch.nn.Module, pool: Any = None,
                   discriminator: dict[str, Any] | None = None,
                   discriminator_clips: torch.Tensor | None = None,
                   query_batch: int = QUERY_BATCH, **options: Any) -> Any:
    """Attack ``name`` on ``classifier`` with ``options`` (unknown ones: a ``ConfigError``).

    ``pool``: the attacker's clips ``(x, y[, lengths])``, given to attacks that take one and
    ignored by the others. ``discriminator``: keyword arguments of the attack's
    ``fit_discriminator`` (e.g. ``{"steps": 300}``), which is trained on
    ``discriminator_clips``; refused for an attack without one.
    """
    from skelrobust.attacks.oracle import QueryOracle
    from skelrobust.attacks.registry import (
        ATTACKS,
        attack_arguments,
        create_attack,
        describe_attack,
    )

    access = describe_attack(name)["access"]
    victim = (classifier if access == "gradient" else QueryOracle.from_classifier(
        classifier, access=access, batch_size=query_batch))
    if pool is not None and "pool" in attack_arguments(ATTACKS[name]):
        options = {**options, "pool": pool}
    atk = create_attack(name, victim, **options)
    if discriminator is not None:
        if not hasattr(atk, "fit_discriminator"):
            raise ConfigError(f"attack {name!r} has no discriminator to train")
        if discriminator_clips is None:
            raise ConfigError(f"attack {name!r}: a discriminator needs clean clips to train on")
        atk.fit_discriminator(discriminator_clips, **discriminator)
    return atk


def attack_settings(atk: Any) -> dict[str, Any]:
    """Every constructor argument of ``atk`` (its own and the shared options) with the value it
    actually uses; values that are not plain data are left out (the pool: its size)."""
    from skelrobust.attacks.registry import attack_arguments

    out: dict[str, Any] = {"name": getattr(atk, "name", type(atk).__name__),
                           "class": type(atk).__name__}
    for name, param in attack_arguments(type(atk)).items():
        if name == "pool":
            pool = getattr(atk, "pool", None)
            out["pool_size"] = None if pool is None else len(pool[0])
            continue
        value = getattr(atk, name, getattr(atk, f"with_{name}", param.default))
        if value is param.empty:
            continue
        if isinstance(value, int | float | str | bool | list | tuple | dict) or value is None:
            out[name] = value
    return out


def save_clips(path: str | os.PathLike[str], result: Any, x_clean: torch.Tensor,
               lengths: torch.Tensor, index: torch.Tensor, class_names: list[str],
               layout: str, **extra: Any) -> Path:
    """Write ``result`` (an :class:`~skelrobust.attacks.base.AttackResult`) with the clean clips,
    their lengths, their indices in the split, the class names and the layout, to ``path``.

    Atomic (:func:`skelrobust.fileio.atomic_write`): a reader, or a run killed half-way,
    never sees half a file.
    """
    buffer = io.BytesIO()
    result.save_npz(buffer, x_clean=x_clean, lengths=lengths, index=index,
                    class_names=np.asarray(class_names), layout=np.asarray(layout), **extra)
    atomic_write(path, buffer.getvalue())
    return Path(path)
