"""Validation splits carved from training data, so that model selection never sees test data.

Most skeleton datasets ship a train and a test split only. Choosing the best
epoch (or any hyper-parameter) on the test split reports an optimistic
accuracy; :func:`carve_validation` takes a seeded, class-stratified fraction of
the *training* clips instead.
"""

from __future__ import annotations

import numpy as np

from skelrobust.data.dataset import SkeletonDataset
from skelrobust.errors import ConfigError

__all__ = ["can_carve", "carve_validation"]


def can_carve(data: SkeletonDataset) -> bool:
    """Whether :func:`carve_validation` finds any clip to carve: some class has two clips."""
    return len(data) > 0 and int(np.bincount(data.y).max()) >= 2


def carve_validation(data: SkeletonDataset, fraction: float = 0.1,
                     seed: int = 0) -> tuple[SkeletonDataset, SkeletonDataset]:
    """Split ``data`` into ``(train, val)``: ``round(fraction·n_c)`` clips of each class ``c``.

    Every class with at least two clips gives at least one clip to ``val`` and
    keeps at least one in ``train``; the choice is a seeded permutation, so
    the same ``seed`` always carves the same clips. Both parts record it in
    ``info`` (``role`` ``"train"``/``"val"``, ``carved_from``, ``val_fraction``, ``seed``).
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {fraction}")
    if not can_carve(data):
        raise ConfigError(f"dataset {data.name!r}: too few clips ({len(data)}) to carve a "
                          "validation split; keep the last epoch instead (keep: last)")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(data))
    y = data.y[perm]
    order = np.argsort(y, kind="stable")  # classes in blocks, random order inside each
    sorted_y = y[order]
    counts = np.bincount(data.y, minlength=data.num_classes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(y)) - starts[sorted_y]
    take = np.where(counts >= 2, np.clip(np.round(counts * fraction), 1, counts - 1), 0)
    in_val = np.zeros(len(data), dtype=bool)
    in_val[perm[order[rank < take[sorted_y]]]] = True
    source = data.info.get("split", "?")
    record = {"carved_from": source, "val_fraction": float(fraction), "seed": int(seed)}
    train, val = data.subset(~in_val), data.subset(in_val)
    train.info.update(record, role="train", split=f"{source} minus carved validation")
    val.info.update(record, role="val", split=f"validation carved from {source}")
    return train, val
