"""The CLI's defense verbs: ``defend`` (train or wrap a defense around a saved classifier) and
``certify`` (randomized smoothing's certified accuracy, Cohen et al., ICML 2019). Thin: they
validate, call the library, report."""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from skelrobust.cli.commands import (
    _checkpoint_record,
    _classifier,
    _data_record,
    _load_data,
    _table,
)
from skelrobust.cli.output import emit, prepare_out, provenance
from skelrobust.errors import ConfigError
from skelrobust.validation import arg_type, integer, real

__all__ = ["add_parsers", "cmd_certify", "cmd_defend"]

log = logging.getLogger("skelrobust")

DEFAULT_CLIPS = 100
DEFEND_OUTPUTS = ("classifier.safetensors", "last.safetensors", "history.json", "resume.pt")


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
    from skelrobust.cli.parser import _data_flags, _out

    p = sub.add_parser("defend", parents=[common], help="train a defense around a saved "
                       "classifier (or wrap it, for smoothing) and save the defended classifier")
    p.add_argument("checkpoint", metavar="CKPT_DIR", help="the base: a classifier folder or "
                   ".safetensors file (a saved defense too: defenses stack)")
    p.add_argument("--defense", required=True, help="beat, smoothing, smart-at, trades, mart "
                   "or mmat (any registered defense)")
    p.add_argument("--defense-option", "-d", action="append", metavar="KEY=VALUE",
                   dest="defense_option", help="a defense argument, repeatable; values read as "
                   "JSON (e.g. -d samples=5 -d sigma_mm=20 -d 'training={\"burn_in\": 1}')")
    _data_flags(p, "default: the one the classifier was trained on; its training split "
                "trains the defense, its test split reports the accuracy")
    p.add_argument("--epochs", type=arg_type("train.epochs"), help="default: the defense's")
    p.add_argument("--lr", type=arg_type("train.lr"), help="default: the defense's")
    p.add_argument("--batch-size", type=arg_type("train.batch_size"),
                   help="default: the defense's")
    p.add_argument("--seed", type=arg_type("train.seed"), help="default 0")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out "
                   "after its last finished epoch")
    _out(p, "output folder")
    p.set_defaults(func=cmd_defend, split=None)

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


# ---------------------------------------------------------------------- defend
def _defense_options(pairs: list[str] | None) -> dict[str, Any]:
    """``--defense-option KEY=VALUE`` flags: values read as JSON (``5``, ``1e-3``, ``null``,
    ``{"burn_in": 1}``), else as YAML (``{burn_in: 1}``, ``True``), else kept as text."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigError(f"--defense-option {pair!r}: expected KEY=VALUE, e.g. samples=5")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            try:
                out[key] = yaml.safe_load(text) if text else ""
            except yaml.YAMLError:
                out[key] = text
    return out


def _train_split(args: argparse.Namespace, base: Any) -> str:
    """The split ``base`` was trained on (or the training split of ``--data``'s protocol)."""
    from skelrobust.data.registry import dataset_spec

    record = base.info.get("data") or {}
    name = args.data or record.get("name")
    if not name:
        raise ConfigError(f"{args.checkpoint}: the classifier does not record the dataset it "
                          "was trained on; name one with --data")
    if name == record.get("name") and record.get("train_split"):
        return str(record["train_split"])
    return dataset_spec(name).get_protocol(record.get("protocol") if name == record.get("name")
                                           else None).train


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The training settings given on the command line (the defense's defaults stand for the
    rest)."""
    given = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
             "seed": args.seed, "num_threads": args.threads}
    return {k: v for k, v in given.items() if v is not None}


def _check_resumable(out: Path, defended: Any, cfg: Any) -> None:
    """``--resume``: the run saved in ``out`` must be this defense, options, base and config."""
    from safetensors import safe_open

    from skelrobust.defenses.base import weights_fingerprint
    from skelrobust.training import RESUME_NAME

    last, history = out / "last.safetensors", out / "history.json"
    if not (out / RESUME_NAME).is_file():
        held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        if held:
            raise ConfigError(f"--resume: {str(out)!r} holds no interrupted defend run (no "
                              f"{RESUME_NAME}); pass --overwrite to replace what it holds, or "
                              "choose another folder")
        log.info("--resume: nothing saved in %s yet; starting afresh", out)
        return
    try:
        with safe_open(str(last), framework="pt") as f:
            saved = json.loads((f.metadata() or {})["skelrobust"])
        config = json.loads(history.read_text())["config"]
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise ConfigError(f"--resume: cannot read the run saved in {str(out)!r} ({err}); pass "
                          "--overwrite to start afresh") from None
    now = json.loads(json.dumps(defended.args, default=str))
    if saved.get("defense") != defended.defense or saved.get("args") != now:
        raise ConfigError(f"--resume: {str(out)!r} holds defense {saved.get('defense')!r} with "
                          f"options {saved.get('args')}, not {defended.defense!r} with {now}; "
                          "give the same --defense and --defense-option flags, or --overwrite")
    if defended.freezes_base and saved.get("base_fingerprint") != weights_fingerprint(
            defended.base):
        raise ConfigError(f"--resume: {str(out)!r} was started from another base classifier "
                          "(its weights differ); resume with the same CKPT_DIR, or --overwrite")
    ignored = {"progress", "num_threads"}
    current = json.loads(json.dumps(asdict(cfg), default=str))
    differ = sorted(k for k in current if k not in ignored and config.get(k) != current[k])
    if differ:
        shown = ", ".join(f"{k} {config.get(k)!r} (now {current[k]!r})" for k in differ)
        raise ConfigError(f"--resume: {str(out)!r} was trained with {shown}; resume with the "
                          "same training flags (a changed schedule would not continue the run), "
                          "or --overwrite to start afresh")


def _check_out(args: argparse.Namespace) -> Path:
    """``--out``, checked before any work: earlier results are refused unless --overwrite or
    --resume (nothing is removed here; :func:`_clear_out` does it after every check)."""
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: --resume continues "
                          "the run in --out, --overwrite replaces it")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; expected a folder")
    if not (args.resume or args.overwrite) and out.is_dir() and any(out.iterdir()):
        try:
            prepare_out(out, False, DEFEND_OUTPUTS)  # refuses: the folder holds results
        except ConfigError as err:
            if (out / "resume.pt").is_file():
                raise ConfigError(f"{err}; it holds an interrupted defend run: --resume "
                                  "continues it") from None
            raise
    return out


def _clear_out(args: argparse.Namespace, out: Path) -> Path:
    """``--out`` ready for writing; under --overwrite the earlier outputs are removed."""
    if args.overwrite:
        return prepare_out(out, True, DEFEND_OUTPUTS)
    out.mkdir(parents=True, exist_ok=True)
    return out


def cmd_defend(args: argparse.Namespace) -> None:
    """Train (or, for smoothing, wrap) a defense around a saved classifier; save it."""
    import torch

    from skelrobust.defenses.base import create_defense, get_defense, weights_fingerprint
    from skelrobust.defenses.training import defense_config, train_defense
    from skelrobust.training import evaluate

    name = get_defense(args.defense).defense  # an unknown name: one line listing the known
    defense_args = _defense_options(args.defense_option)
    out = _check_out(args)
    base = _classifier(args.checkpoint)
    base_record = {**_checkpoint_record(args.checkpoint), "fingerprint": weights_fingerprint(base)}
    try:  # bad options: the defense's own ConfigError naming them
        defended = create_defense(name, base, **defense_args)
    except TypeError as err:  # a value of the wrong kind that the defense did not check
        raise ConfigError(f"--defense-option: defense {name!r} cannot take {defense_args} "
                          f"({err})") from None
    trains = hasattr(defended, "training_objective")
    if args.resume and not trains:
        raise ConfigError(f"--resume: {name} has nothing to train, so there is no run to "
                          "resume; run without --resume")
    if not defended.freezes_base:  # provenance of a fine-tuned copy (DESIGN: defenses/base.py)
        defended.args["trained_from"] = base_record["fingerprint"]
    defended.info["base_checkpoint"] = base_record
    train = _load_data(args, base, _train_split(args, base)) if trains else None
    test = _load_data(args, base, None)
    cfg = None
    if trains:
        try:
            objective = defended.training_objective(num_data=len(train))
        except TypeError as err:  # e.g. an unknown key among BEAT's training options
            raise ConfigError(f"--defense-option: defense {name!r} cannot train with "
                              f"{defended.args} ({err})") from None
        cfg = defense_config(defended, objective, None, progress=not args.quiet,
                             **_train_overrides(args))
    elif given := sorted(f"--{k.replace('_', '-')}" for k in _train_overrides(args)
                         if k != "num_threads"):
        log.warning("%s has nothing to train: %s ignored", name, ", ".join(given))
    if args.resume and cfg is not None:
        _check_resumable(out, defended, cfg)
    out = _clear_out(args, out)
    result = None
    if cfg is not None:
        log.info("training %s on %s (%d clips) for %d epochs%s", name, train.split_label,
                 len(train), cfg.epochs, " (resuming)" if args.resume else "")
        result = train_defense(defended, train, None, cfg, out_dir=out, resume=args.resume)
    torch.manual_seed(cfg.seed if cfg is not None else args.seed or 0)  # stochastic: repeatable
    ev = evaluate(defended.eval(), test).as_dict()
    defended.info["test"] = {"split": test.info.get("split"), "top1": ev["top1"],
                             "top5": ev["top5"]}
    path = defended.save(out / "classifier.safetensors")
    training = defended.info.get("training") or {}
    seconds = float(training.get("seconds", 0.0))
    where = f"{_data_record(test, args.root)['name']} {test.info.get('split')}"
    payload = {"defense": name, "args": defended.args, "stochastic": bool(defended.stochastic),
               "base": base_record, "trained": cfg is not None,
               "epochs": cfg.epochs if cfg is not None else 0,
               "resumed_from_epoch": result.resumed_from if result is not None else None,
               "seconds": seconds, "train_data": (_data_record(train, args.root)
                                                  if train is not None else None),
               "config": asdict(cfg) if cfg is not None else None,
               "history": result.history if result is not None else [],
               "test": {"data": _data_record(test, args.root), "top1": ev["top1"],
                        "top5": ev["top5"], "n": ev["n"]},
               "out": str(out), "checkpoint": str(path), "provenance": provenance()}
    if cfg is not None:
        resumed = (f", resumed after epoch {result.resumed_from}"
                   if result is not None and result.resumed_from else "")
        done = (f"trained {name} around {args.checkpoint} on {train.split_label} "
                f"({len(train)} clips): {cfg.epochs} epochs in {seconds:.1f} s{resumed}")
    else:
        done = f"{name} has nothing to train: wrapped {args.checkpoint} as it is"
    single = " (one noisy draw per clip)" if defended.stochastic else ""
    emit(args, payload, f"{done}\nheld-out accuracy on {where}{single}: top-1 "
         f"{ev['top1']:.2f} %  top-5 {ev['top5']:.2f} %  (n={ev['n']})\nwrote {path}\n"
         f"next: skelrobust eval {out}   |   skelrobust attack {out} --out {out}-attack")
