"""The CLI's defense verbs: ``certify`` (randomized smoothing's certified accuracy, Cohen et al.,
ICML 2019). Thin: they validate, call the library, report."""

from __future__ import annotations

import argparse
import inspect
import logging
import math
from collections.abc import Callable
from typing import Any

from skelrobust.cli.commands import (
    _checkpoint_record,
    _classifier,
    _data_record,
    _load_data,
    _table,
)
from skelrobust.cli.output import emit, provenance
from skelrobust.errors import ConfigError
from skelrobust.validation import integer, real

__all__ = ["add_parsers", "cmd_certify"]

log = logging.getLogger("skelrobust")

DEFAULT_CLIPS = 100


def _flag_type(rule: Callable[[Any], Any], name: str) -> Callable[[str], Any]:
    """An ``argparse`` type from a :mod:`skelrobust.validation` rule (one-line errors)."""
    def parse(text: str) -> Any:
        try:
            return rule(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    parse.__name__ = name
    return parse


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register this module's verbs on the ``skelrobust`` subparsers ``sub``."""
    from skelrobust.cli.parser import _data_flags

    p = sub.add_parser("certify", parents=[common], help="certified accuracy of a classifier "
                       "under randomized smoothing (Cohen et al., 2019)")
    p.add_argument("checkpoint", metavar="DIR", help="classifier folder or .safetensors file: "
                   "a plain classifier (smoothed with --sigma-mm) or a saved smoothing defense")
    _data_flags(p, "default: the one the classifier was trained on")
    p.add_argument("--split", help="default: the test split of the classifier's protocol")
    positive_int = _flag_type(integer(1, 100_000_000), "int")
    p.add_argument("--sigma-mm", type=_flag_type(real(0.0, lo_open=True), "sigma"),
                   help="noise sigma in mm (required for a plain classifier; a saved smoothing "
                   "defense uses its own unless given)")
    p.add_argument("--n0", type=positive_int, help="selection draws per clip (default 100, or "
                   "the saved defense's)")
    p.add_argument("--n", type=positive_int, help="estimation draws per clip (default 10000, "
                   "or the saved defense's)")
    p.add_argument("--alpha", type=_flag_type(real(0.0, 1.0, lo_open=True, hi_open=True),
                                              "alpha"),
                   help="failure probability of each certificate (default 0.001)")
    p.add_argument("--clips", type=positive_int, default=DEFAULT_CLIPS,
                   help=f"clips to certify, evenly spaced over the split (default "
                   f"{DEFAULT_CLIPS})")
    p.add_argument("--radii", type=_flag_type(real(0.0, 1e6), "radius"), nargs="+",
                   default=[0.0, 10.0, 20.0, 50.0], metavar="MM",
                   help="radii (mm) to report certified accuracy at (default 0 10 20 50)")
    p.add_argument("--batch-size", type=positive_int, help="noisy copies per forward call "
                   "(default 1000, or the saved defense's)")
    p.add_argument("--seed", type=_flag_type(integer(0, 2**32 - 1), "seed"), default=0,
                   help="seed of the noise (default 0)")
    p.set_defaults(func=cmd_certify)


def _smoothed(args: argparse.Namespace) -> Any:
    """The :class:`RandomizedSmoothing` to certify: the saved one, or the classifier wrapped."""
    from skelrobust.defenses.smoothing import RandomizedSmoothing

    clf = _classifier(args.checkpoint)
    saved = isinstance(clf, RandomizedSmoothing)
    if not saved and args.sigma_mm is None:
        raise ConfigError(f"--sigma-mm is required: {args.checkpoint} is a plain classifier "
                          "(not a saved smoothing defense); give the noise sigma in mm")
    settings = dict(clf.args) if saved else {}
    for key in ("sigma_mm", "n0", "n", "alpha", "batch_size"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    defaults = inspect.signature(RandomizedSmoothing).parameters
    n0, n = (settings.get(k, defaults[k].default) for k in ("n0", "n"))
    if n < n0:
        raise ConfigError(f"--n ({n}) must be >= --n0 ({n0}): the estimation draws cannot be "
                          "fewer than the selection draws")
    return RandomizedSmoothing(clf.base if saved else clf, **settings), saved


def cmd_certify(args: argparse.Namespace) -> None:
    import torch

    from skelrobust.progress import progress_enabled

    smooth, saved = _smoothed(args)
    data = _load_data(args, smooth.root_base)
    x, y = data.tensors()
    count = min(args.clips, len(x))
    if count == 0:
        raise ConfigError(f"{data.split_label}: no clips to certify")
    if count < args.clips:
        log.warning("%s has only %d clips; certifying all of them (--clips %d)",
                    data.split_label, count, args.clips)
    index = torch.arange(count) * len(x) // count  # evenly spaced, as Cohen et al. subsample
    smooth.progress = progress_enabled()
    log.info("certifying %d clips of %s: sigma %g mm, n0 %d, n %d, alpha %g", count,
             data.split_label, smooth.sigma_mm, smooth.n0, smooth.n, smooth.alpha)
    gen = torch.Generator(device=smooth.mean.device).manual_seed(args.seed)
    res = smooth.certify(x[index], generator=gen)
    acc = res.certified_accuracy(y[index], args.radii)
    mean_radius = res.mean_radius_mm
    payload = {"checkpoint": _checkpoint_record(args.checkpoint),
               "data": _data_record(data, args.root),
               "smoothing": {**smooth.args, "from_saved_defense": saved, "seed": args.seed},
               "clips": count,
               "certified_accuracy": {f"{r:g}": a for r, a in acc.items()},
               "abstain_rate": res.abstain_rate, "mean_radius_mm": mean_radius,
               "seconds": res.seconds,
               "per_clip": [{"index": int(i), "label": int(t), "certified": int(c),
                             "radius_mm": float(r), "p_lower": float(p)}
                            for i, t, c, r, p in zip(index.tolist(), y[index].tolist(),
                                                     res.label.tolist(),
                                                     res.radius_mm.tolist(),
                                                     res.p_lower.tolist(), strict=True)],
               "provenance": provenance()}
    rows = [{"radius mm": f"{r:g}", "certified accuracy %": a} for r, a in acc.items()]
    shown = "n/a (every clip abstained)" if math.isnan(mean_radius) else f"{mean_radius:.2f} mm"
    text = (f"randomized smoothing on {data.split_label}: {count} clips, sigma "
            f"{smooth.sigma_mm:g} mm, n0 {smooth.n0}, n {smooth.n}, alpha {smooth.alpha:g}, "
            f"{res.seconds:.1f} s\n\n"
            + _table(rows, ["radius mm", "certified accuracy %"])
            + f"\nabstained on {res.abstain_rate:.1f} % of clips; mean certified radius "
            f"{shown} (over the clips not abstained on)")
    emit(args, payload, text)
