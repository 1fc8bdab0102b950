"""The CLI's verbs. Each is thin: it validates, calls the library, and reports."""

from __future__ import annotations

import argparse
import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from skelrobust.cli.output import emit, file_fingerprint, prepare_out, provenance, write_json
from skelrobust.errors import ConfigError, DatasetNotFoundError, SkelRobustError, VictimError

log = logging.getLogger("skelrobust")

TRAIN_OUTPUTS = ("classifier.safetensors", "last.safetensors", "history.json")
ATTACK_OUTPUTS = ("summary.json", "adversarial.npz")
IMPORT_OUTPUTS = ("classifier.safetensors",)


def _table(rows: list[dict[str, Any]], columns: Sequence[str] | None = None,
           digits: int = 1) -> str:
    from skelrobust.report.tables import format_table

    return format_table(rows, columns, digits=digits)


def _accuracy_table(name: str, ev: dict[str, Any]) -> str:
    """Top-1/top-5 and per-class accuracy; classes without clips in the data are counted, not
    listed (e.g. the 9 of NTU's 60 classes in a small sample)."""
    rows = [{"class": c, "accuracy %": a} for c, a in ev["per_class"].items()
            if a is not None and a == a]
    head = f"{name}: top-1 {ev['top1']:.2f} %  top-5 {ev['top5']:.2f} %  (n={ev['n']})\n\n"
    hidden = len(ev["per_class"]) - len(rows)
    return head + _table(rows, ["class", "accuracy %"]) + (
        f"({hidden} classes without clips here not shown)\n" if hidden else "")


def options(pairs: Sequence[str] | None, flag: str = "--option") -> dict[str, Any]:
    """``KEY=VALUE`` flags as keyword arguments (values parsed as YAML scalars)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigError(f"{flag} {pair!r}: expected KEY=VALUE, e.g. window=60")
        try:
            out[key] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            raise ConfigError(f"{flag} {pair!r}: cannot read the value {value!r}") from None
    return out


# ---------------------------------------------------------------------- listings
def cmd_data_list(args: argparse.Namespace) -> None:
    from skelrobust.data.registry import list_datasets

    specs = list_datasets()
    rows = [{"name": s.name, "layout": s.layout, "classes": s.num_classes,
             "protocols": ", ".join(s.protocols()) or "-", "splits": ", ".join(s.splits),
             "files": "yes" if s.needs_root else "no"} for s in specs]
    emit(args, {"datasets": [s.describe() for s in specs]}, _table(rows))


def cmd_models(args: argparse.Namespace) -> None:
    from skelrobust.models.pretrained import FORMATS
    from skelrobust.models.registry import list_models, model_spec

    specs = [model_spec(n) for n in list_models()]
    rows = [{"name": s.name, "description": s.description, "paper": s.paper} for s in specs]
    formats = [{"format": f.name, "description": f.description, "origin": f.origin}
               for f in FORMATS.values()]
    text = (_table(rows, ["name", "description"]) + "\nthird-party checkpoints (skelrobust "
            "import FILE --out DIR, or pass the file to eval/attack):\n" + _table(formats))
    emit(args, {"models": rows, "checkpoint_formats": formats}, text)


def cmd_attacks(args: argparse.Namespace) -> None:
    from skelrobust.attacks.registry import describe_attack, list_attacks

    described = {name: describe_attack(name) for name in list_attacks(aliases=False)}
    alias_of = {a: name for name, d in described.items() for a in d["aliases"]}
    rows = []
    for name in list_attacks():  # every name the registry takes, aliases too
        d = described.get(name) or describe_attack(alias_of.get(name, name))
        rows.append({"name": name, "access": d["access"], "class": d["class"],
                     "aliases": (f"alias of {alias_of[name]}" if name in alias_of
                                 else ", ".join(d["aliases"])),
                     "description": d["summary"].rstrip(".").replace("``", "")})
    shown = [r for r in rows if r["name"] not in alias_of]
    emit(args, {"attacks": rows}, _table(shown, ["name", "access", "aliases", "description"])
         + "\naccess: gradient = white-box (a classifier); label = label-only, sees the "
         "victim's top-1 class only (a classifier or an ONNX file from skelrobust export)\n"
         "skelrobust attack CKPT_DIR_OR_ONNX --attack NAME ... (skelrobust attack --help)")


def cmd_data_info(args: argparse.Namespace) -> None:
    from skelrobust.data.registry import dataset_spec, load_dataset

    spec = dataset_spec(args.name)
    splits = [args.split] if args.split else list(spec.splits)
    opts = options(args.option)
    infos: dict[str, dict[str, Any]] = {}
    missing: dict[str, SkelRobustError] = {}
    for s in splits:
        try:
            infos[s] = load_dataset(args.name, root=args.root, split=s, **opts).summary()
        except (DatasetNotFoundError, ConfigError) as err:  # e.g. a release without a split
            missing[s] = err
    if not infos:  # nothing loads: the first error is the user's problem to see
        raise next(iter(missing.values()))
    for s, err in missing.items():
        log.warning("split %s not available: %s", s, err)
    protocols = [f"{p.name} (train {p.train}, {'val ' + p.val + ', ' if p.val else ''}"
                 f"test {p.test})" for p in spec.protocols().values()]
    lines = [f"{spec.name}: {spec.description}", f"layout {spec.layout}; protocol: "
             f"{spec.protocol or '-'}",
             "protocols (skelrobust train --protocol NAME): " + ("; ".join(protocols) or "-"), ""]
    rows = [{"split": s, "clips": i["clips"], "classes": i["classes"],
             "frames min": i["length"]["min"], "frames mean": i["length"]["mean"],
             "frames max": i["length"]["max"], "bodies": i["bodies"]} for s, i in infos.items()]
    rows += [{"split": s, "clips": "missing"} for s in missing]
    lines.append(_table(rows))
    first_split, first = next(iter(infos.items()))
    per_class = [{"class": c, **{s: infos[s]["class_counts"][c] for s in infos}}
                 for c in first["class_counts"]]
    shown = [r for r in per_class if any(r[s] for s in infos)]
    lines.append(_table(shown))
    if len(shown) < len(per_class):
        lines.append(f"({len(per_class) - len(shown)} classes with no clips not shown)\n")
    bones = [{"bone": b, "mean cm": v, "std cm": first["bone_length_std_cm"][b],
              "within-clip cv %": first["bone_length_temporal_cv_pct"][b]}
             for b, v in first["bone_length_cm"].items()]
    lines.append(f"bone lengths ({first_split} split, over present frames):")
    lines.append(_table(bones))
    payload = {"dataset": spec.describe(), "splits": infos,
               "missing": {k: str(v) for k, v in missing.items()}}
    emit(args, payload, "\n".join(lines))


# ---------------------------------------------------------------------- train
def _experiment(args: argparse.Namespace) -> Any:
    from skelrobust.config import ExperimentConfig, load_config

    exp = load_config(args.config) if args.config else ExperimentConfig()
    overrides = {
        "data": {"name": args.data, "root": args.root, "frames": args.frames,
                 "protocol": args.protocol, "val_split": args.val_split,
                 "val_fraction": args.val_fraction},
        "model": {"name": args.model, "size": args.size},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                  "optimizer": args.optimizer, "schedule": args.schedule,
                  "weight_decay": args.weight_decay, "seed": args.seed,
                  "num_threads": args.threads, "keep": args.keep},
    }
    for section, values in overrides.items():
        target = getattr(exp, section)
        for key, value in values.items():
            if value is not None:
                setattr(target, key, value)
    if args.option:
        exp.data.options = {**exp.data.options, **options(args.option)}
    exp.data.__post_init__()  # re-validate after the overrides
    exp.train.progress = not args.quiet
    exp.train.__post_init__()  # re-validate after the overrides
    return exp


def cmd_train(args: argparse.Namespace) -> None:
    """Train; under ``torchrun --nproc_per_node=K -m skelrobust train ...`` with DDP.

    In a distributed job every rank loads the data and trains its shard; only
    rank 0 logs, writes ``--out`` and prints the result.
    """
    from skelrobust.classifier import Classifier
    from skelrobust.config import data_record, load_experiment_data
    from skelrobust.training import evaluate, fit, is_main_process, seed_everything

    main_process = is_main_process()
    if not main_process:
        log.setLevel(logging.WARNING)
    exp = _experiment(args)
    out = prepare_out(args.out, args.overwrite, TRAIN_OUTPUTS) if main_process else Path(args.out)
    data = load_experiment_data(exp.data, exp.train.keep, exp.train.seed)
    log.info("%s, protocol %s: train %s, %d clips; test %s, %d clips", exp.data.name,
             data.protocol.name, data.protocol.train, len(data.train), data.protocol.test,
             len(data.test))
    log.info("%s", data.validation)
    exp.train.keep = data.keep
    seed_everything(exp.train.seed)  # the initial weights too are reproducible under the seed
    clf = Classifier.create(exp.model.name, data.train, size=exp.model.size,
                            preprocess=exp.data.preprocess_args(), **exp.model.kwargs)
    clf.info["data"] = data_record(exp.data, data)
    clf.info["experiment"] = exp.as_dict()
    result = fit(clf, data.train, data.val, exp.train, out_dir=out)
    if not main_process:
        return
    test = evaluate(clf, data.test).as_dict()
    clf.info["test"] = {"split": data.protocol.test, "top1": test["top1"], "top5": test["top5"]}
    path = clf.save(out / "classifier.safetensors")
    val_top1 = result.best.get("val_top1")
    payload = {"out": str(out), "checkpoint": str(path), "dataset": exp.data.name,
               "protocol": data.protocol.describe(), "validation": data.validation,
               "keep": exp.train.keep, "kept_epoch": result.best_epoch, "val_top1": val_top1,
               "seconds": result.seconds, "samples_per_second": result.samples_per_second,
               "test": test, "history": result.history, "world_size": result.world_size,
               "provenance": provenance()}
    kept = (f"kept epoch {result.best_epoch}/{exp.train.epochs} ({exp.train.keep}"
            + (f", val top-1 {val_top1:.2f} %" if val_top1 is not None else "") + ")")
    emit(args, payload, _accuracy_table(f"{exp.data.name} {data.protocol.test}", test)
         + f"\n{data.validation}\n{kept}, {result.seconds:.1f} s; classifier saved in {path}\n"
         f"next: skelrobust eval {out}   |   skelrobust attack {out} --out {out}-attack")


# ---------------------------------------------------------------------- eval / attack
def _classifier(path: str) -> Any:
    from skelrobust.models.pretrained import load_any

    return load_any(path).eval()


def _checkpoint_record(path: str) -> dict[str, Any]:
    from skelrobust.classifier import resolve_checkpoint

    file = resolve_checkpoint(path)  # a folder's classifier file, or the file itself
    return {"path": str(file), "sha256": file_fingerprint(file)}


def _data_record(data: Any, root: str | None) -> dict[str, Any]:
    return {"name": data.info.get("dataset", data.name), "split": data.info.get("split"),
            "root": root, "clips": len(data), "fingerprint": data.fingerprint()}


def _load_data(args: argparse.Namespace, clf: Any) -> Any:
    from skelrobust.config import load_for_classifier

    return load_for_classifier(clf, args.data, args.split, args.root, options(args.option))


def cmd_eval(args: argparse.Namespace) -> None:
    from skelrobust.training import evaluate

    clf = _classifier(args.checkpoint)
    data = _load_data(args, clf)
    ev = evaluate(clf, data, batch_size=args.batch_size).as_dict(full=True)
    record = _data_record(data, args.root)
    emit(args, {"checkpoint": _checkpoint_record(args.checkpoint), "data": record, **ev,
                "provenance": provenance()},
         _accuracy_table(f"{record['name']} {record['split']}", ev))


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


def _is_onnx(path: str) -> bool:
    return Path(path).suffix.lower() == ".onnx"


@dataclass
class _Victim:
    """What ``skelrobust attack`` attacks: a classifier or an ONNX file, and how to reach it."""

    kind: str  # "classifier" or "onnx"
    record: dict[str, Any]  # path and fingerprint of the file, for the summary
    recipe: Any  # what load_for_classifier reads: .info, .preprocess, .skeleton, .class_names
    classifier: Any = None  # the Classifier (None for an ONNX file)
    onnx: Any = None  # the OnnxModel (None for a classifier)
    data: Any = None  # data already loaded to learn the layout of an ONNX file without metadata
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return list(self.recipe.class_names)

    @property
    def layout(self) -> str:
        return self.recipe.skeleton.name

    @property
    def num_classes(self) -> int:
        return len(self.recipe.class_names)

    def oracle(self, access: str) -> Any:
        """The black-box view of the victim: a QueryOracle with ``access``."""
        from skelrobust.attacks.oracle import QueryOracle

        if self.classifier is not None:
            return QueryOracle.from_classifier(self.classifier, access=access, batch_size=256)
        return QueryOracle.from_onnx(self.onnx.path, skeleton=self.layout,
                                     class_names=self.class_names, access=access,
                                     batch_size=256)


def _victim(args: argparse.Namespace) -> _Victim:
    if not _is_onnx(args.checkpoint):
        clf = _classifier(args.checkpoint)
        return _Victim("classifier", _checkpoint_record(args.checkpoint), clf, classifier=clf)
    from skelrobust.deploy import OnnxModel
    from skelrobust.skeleton import get_skeleton

    model = OnnxModel(args.checkpoint)
    record = {"path": str(model.path), "sha256": file_fingerprint(model.path), "format": "onnx"}
    header = model.header
    if model.layout is not None and model.class_names is not None:
        names = model.class_names
        model.num_classes(names)  # the output agrees with the class names
        prep = dict(header.get("preprocess") or {})
        if model.frames is not None:
            prep["num_frames"] = model.frames
        recipe = SimpleNamespace(info={"data": header.get("data") or {}}, preprocess=prep,
                                 skeleton=get_skeleton(model.layout), class_names=names,
                                 num_classes=len(names))
        return _Victim("onnx", record, recipe, onnx=model)
    # an ONNX file without skelrobust metadata: the data say what it classifies
    if not args.data:
        raise ConfigError(f"{model.path}: has no skelrobust metadata (layout, class names, "
                          "data); name the data it classifies with --data")
    from skelrobust.config import DataConfig, load_prepared
    from skelrobust.data.registry import dataset_spec

    prep = {**DataConfig().preprocess_args(), "num_frames": model.frames}
    split = args.split or dataset_spec(args.data).get_protocol().test
    data = load_prepared(args.data, split, args.root, prep, **options(args.option))
    where = data.split_label
    if model.joints is not None and model.joints != data.skeleton.num_joints:
        raise ConfigError(f"{where} has layout {data.skeleton.name!r} "
                          f"({data.skeleton.num_joints} joints); {model.path} takes "
                          f"{model.joints} joints")
    model.num_classes(data.class_names)  # K of the output agrees with the data's classes
    recipe = SimpleNamespace(info={"data": {"name": args.data}}, preprocess=prep,
                             skeleton=data.skeleton, class_names=list(data.class_names),
                             num_classes=data.num_classes)
    return _Victim("onnx", record, recipe, onnx=model, data=data)


def _victim_data(args: argparse.Namespace, victim: _Victim, split: str | None) -> Any:
    """A split of the victim's data, loaded as it was trained (``split`` None: the test split)."""
    if victim.data is not None and split in (None, args.split):
        return victim.data
    data = _load_data_split(args, victim.recipe, split)
    if victim.onnx is not None:
        victim.onnx.check_input(data.x.shape)  # ShapeError naming the file and both shapes
    return data


def _load_data_split(args: argparse.Namespace, recipe: Any, split: str | None) -> Any:
    from skelrobust.config import load_for_classifier

    return load_for_classifier(recipe, args.data, split, args.root, options(args.option))


def _pool_split(args: argparse.Namespace, victim: _Victim, data: Any) -> str | None:
    """The split the attacker's pool comes from (``None``: no pool)."""
    from skelrobust.data.registry import dataset_spec

    if args.pool_split is not None:
        return None if args.pool_split.lower() == "none" else args.pool_split
    record = victim.recipe.info.get("data") or {}
    name = data.info.get("dataset", data.name)
    if record.get("name") == name and record.get("train_split"):
        return record["train_split"]
    return dataset_spec(name).get_protocol(record.get("protocol") if record.get("name") == name
                                           else None).train


def _check_access(args: argparse.Namespace, access: str, accepted: dict[str, Any]) -> None:
    """Flags that the attack or the victim cannot honour: one line, before any work."""
    from skelrobust.attacks.registry import describe_attack, list_attacks

    if _is_onnx(args.checkpoint) and access == "gradient":
        label_only = [n for n in list_attacks(aliases=False)
                      if describe_attack(n)["access"] != "gradient"]
        raise ConfigError(f"attack {args.attack!r} needs the victim's gradients, but "
                          f"{args.checkpoint} is an ONNX file, a black box with no gradient: "
                          f"use a label-only attack ({', '.join(label_only) or 'none registered'})")
    if args.queries is not None and "max_queries" not in accepted:
        raise ConfigError(f"--queries: attack {args.attack!r} has no query budget (access "
                          f"{access!r}); it applies to label-only attacks")
    if args.pool_split is not None and "pool" not in accepted:
        raise ConfigError(f"--pool-split: attack {args.attack!r} starts from no pool of clips")


def cmd_attack(args: argparse.Namespace) -> None:
    import torch

    from skelrobust.attacks.registry import (
        ATTACKS,
        attack_arguments,
        create_attack,
        describe_attack,
    )
    from skelrobust.attacks.sampling import choose_clips, correct_mask
    from skelrobust.metrics import perceptual_rows
    from skelrobust.progress import progress_enabled

    access = describe_attack(args.attack)["access"]  # an unknown name: one line, no work done
    accepted = attack_arguments(ATTACKS[args.attack])
    _check_access(args, access, accepted)
    kwargs = {"goal": args.goal, "n": args.top_n, "target_mode": args.target_mode,
              "steps": args.steps, "budget_mm": args.budget_mm, "norm": args.norm,
              "seed": args.seed, "max_queries": args.queries,
              **options(args.attack_option, "--attack-option")}
    unknown = sorted(k for k, v in kwargs.items() if v is not None and k not in accepted)
    if unknown:
        raise ConfigError(f"attack {args.attack!r} takes no argument(s) {unknown}; it takes "
                          f"{sorted(accepted)}")
    out = prepare_out(args.out, args.overwrite, ATTACK_OUTPUTS)
    victim = _victim(args)
    if args.target is not None and args.target >= victim.num_classes:
        raise ConfigError(f"--target must be a class in [0, {victim.num_classes}), "
                          f"got {args.target}")
    black_box = access != "gradient"
    oracle = victim.oracle(access) if black_box else None
    if not black_box:  # every argument checked before any work
        atk = create_attack(args.attack, victim.classifier, **kwargs)
    data = _victim_data(args, victim, args.split)
    x, y = data.tensors()
    where = data.split_label
    if oracle is not None:  # the clean labels, as the attacker learns them: bookkeeping queries
        oracle.reset(len(x))
        with oracle.bookkeeping():
            correct = oracle.label(x).to(y.device) == y
    else:
        correct = correct_mask(victim.classifier, x, y)
    pool_info = None
    if black_box:
        pool = None
        split = _pool_split(args, victim, data) if "pool" in accepted else None
        if split is not None:
            pool_data = _victim_data(args, victim, split)
            if pool_data.split_label == where:
                log.warning("the pool is the attacked split (%s): the attacker holds the very "
                            "clips it attacks", where)
            pool = (torch.from_numpy(pool_data.x), torch.from_numpy(pool_data.y).long(),
                    torch.from_numpy(pool_data.lengths))
            pool_info = {"split": split, "clips": len(pool_data), "data": pool_data.split_label}
        atk = create_attack(args.attack, oracle, pool=pool, **kwargs)
    atk.progress = progress_enabled()
    if not bool(correct.any()):
        raise ConfigError(f"attack: the victim gets no clip of {where} right")
    # A seeded choice among the correctly classified clips (attacks start from a correct label).
    order = choose_clips(correct, args.n, args.seed)
    if len(order) < args.n:
        log.warning("only %d clips of %s are classified correctly; "
                    "attacking those (--n %d)", len(order), where, args.n)
    lengths = torch.from_numpy(data.lengths[order.numpy()])
    target = torch.tensor(args.target).expand(len(order)) if args.target is not None else None
    log.info("attacking %d clips of %s with %s (%s)%s", len(order), where, args.attack,
             args.goal, f", {atk.max_queries} queries each" if black_box and hasattr(
                 atk, "max_queries") else "")
    res = atk.attack(x[order], y[order], target=target, lengths=lengths)
    tmp = out / "adversarial.tmp.npz"
    res.save_npz(str(tmp), x_clean=x[order], lengths=lengths, index=order,
                 class_names=np.asarray(victim.class_names), layout=np.asarray(victim.layout))
    os.replace(tmp, out / "adversarial.npz")
    queries = res.queries.float()
    summary = {"checkpoint": victim.record, "victim_kind": victim.kind,
               "data": _data_record(data, args.root), "attack": args.attack,
               "settings": {"attack": attack_settings(atk), "clips_requested": args.n,
                            "clips": len(order), "seed": args.seed, "target": args.target,
                            "queries": args.queries, "pool": pool_info},
               "selected": len(order), "correct_in_split": int(correct.sum()),
               "split_size": len(y), **res.summary(),
               "queries_max": int(queries.max()) if len(queries) else 0,
               "provenance": provenance()}
    if oracle is not None:
        summary["selection_queries"] = len(x)  # bookkeeping: the clean labels of the split
    write_json(out / "summary.json", summary)
    if res.info.get("victim_error"):
        raise VictimError(f"the victim failed during the attack ({res.info['victim_error']}); "
                          f"the partial results are in {out / 'summary.json'} and "
                          f"{out / 'adversarial.npz'}")
    norm = summary.get("norm")
    budget = (f"budget {summary['budget_mm']:g} mm ({norm} norm)"
              if summary.get("budget_mm") else "no budget")
    spent = (f"queries per clip: mean {summary['queries_mean']:.1f}, max "
             f"{summary['queries_max']} of {summary.get('query_budget')}\n" if black_box else "")
    text = (f"{args.attack} ({summary['goal']}) on {where}: success "
            f"{res.success_rate:.1f} % of {len(order)} clips, {budget}, {res.seconds:.1f} s, "
            f"mean {summary['iterations_mean']:.1f} steps\n{spent}\n"
            "perceptual report over the successful clips (per-clip maxima: their mean, "
            "median, 95th percentile and max):\n"
            + _table(perceptual_rows(summary.get("perceptual", {})), digits=2)
            + f"\nwrote {out / 'summary.json'} and {out / 'adversarial.npz'}\n"
            f"next: skelrobust render {out} --index 0 --out {out / 'clip0.gif'}")
    emit(args, summary, text)


def cmd_export(args: argparse.Namespace) -> None:
    from skelrobust.deploy import export_onnx

    target = Path(args.onnx)
    if target.suffix.lower() != ".onnx":
        raise ConfigError(f"--onnx {str(target)!r}: expected a file name ending in .onnx")
    if target.is_dir():
        raise ConfigError(f"--onnx {str(target)!r} is a folder; expected a file name")
    if target.exists() and not args.overwrite:
        raise ConfigError(f"--onnx {str(target)!r} exists; pass --overwrite to replace it")
    clf = _classifier(args.checkpoint)
    log.info("exporting %s to %s and checking it against the classifier", args.checkpoint,
             target)
    report = export_onnx(clf, target, frames=args.frames)
    size = report.bytes / 2**20
    shape = "(" + ", ".join(map(str, report.input_shape)) + ")"
    payload = {"checkpoint": _checkpoint_record(args.checkpoint), **report.as_dict(),
               "sha256": file_fingerprint(target), "class_names": clf.class_names,
               "provenance": provenance()}
    stem = target.with_suffix("")
    text = (f"wrote {target} ({size:.2f} MB): {report.model} classifier, layout "
            f"{report.layout}, {report.num_classes} classes, normalisation included\n"
            f"input 'motion' {shape} in metres -> output 'logits' (N, {report.num_classes}); "
            f"{report.exporter} exporter, opset {report.opset}, {report.seconds:.1f} s\n"
            f"agreement with the classifier on {report.check_clips} random clips (batched and "
            f"alone): max |logit difference| "
            f"{report.max_abs_diff:.2g} (allowed {report.tolerance:.2g}), same label on "
            f"{report.labels_agree} of {report.check_clips}\n"
            f"next: skelrobust attack {target} --attack hsja --queries 1000 --out {stem}-hsja")
    emit(args, payload, text)


def cmd_import(args: argparse.Namespace) -> None:
    from skelrobust.models.pretrained import load_pretrained

    out = prepare_out(args.out, args.overwrite, IMPORT_OUTPUTS)
    clf = load_pretrained(args.file, args.format)
    clf.info["imported"] = {"file": str(args.file), "sha256": file_fingerprint(args.file)}
    path = clf.save(out / "classifier.safetensors")
    data = clf.info.get("data") or {}
    emit(args, {"out": str(path), "format": clf.info.get("format"), "classes": clf.num_classes,
                "layout": clf.skeleton.name, "data": data},
         f"wrote {path}: {clf.info.get('source', 'classifier')}, {clf.num_classes} classes, "
         f"layout {clf.skeleton.name}"
         + (f", expects {data['name']} {data['protocol']} (test split {data['test_split']})"
            if data else "") + f"\nnext: skelrobust eval {out}")


# ---------------------------------------------------------------------- render / demo
def cmd_render(args: argparse.Namespace) -> None:
    from skelrobust.data.dataset import check_motion
    from skelrobust.report.animation import render_comparison

    src = Path(args.source)
    src = src / "adversarial.npz" if src.is_dir() else src
    out = prepare_out(args.out, args.overwrite, (), folder=False)
    try:
        f = np.load(src, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ConfigError(f"render: cannot read {str(src)!r} ({err}); expected the "
                          "adversarial.npz that 'skelrobust attack' writes") from None
    try:
        with f:
            missing = {"x_adv", "x_clean", "y", "adv_pred", "class_names", "layout"} - set(
                f.files)
            if missing:
                raise ConfigError(f"render: {str(src)!r} lacks {sorted(missing)}")
            count = len(f["y"])
            if not 0 <= args.index < count:
                raise ConfigError(f"render: --index must be in [0, {count}), got {args.index}")
            i, names = args.index, [str(c) for c in f["class_names"]]
            labels = [int(f[k][i]) for k in ("y", "adv_pred", "clean_pred") if k in f.files]
            if any(not 0 <= c < len(names) for c in labels):
                raise ConfigError(f"render: {str(src)!r} holds a label outside its "
                                  f"{len(names)} class names")
            clean, adv = f["x_clean"][i:i + 1], f["x_adv"][i:i + 1]
            check_motion(clean, f"{src.name}: x_clean[{i}]")
            check_motion(adv, f"{src.name}: x_adv[{i}]")
            truth, pred = names[int(f["y"][i])], names[int(f["adv_pred"][i])]
            clean_pred = names[int(f["clean_pred"][i])] if "clean_pred" in f.files else truth
            length = int(f["lengths"][i]) if "lengths" in f.files else None
            layout = str(f["layout"])
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        if isinstance(err, SkelRobustError):
            raise
        raise ConfigError(f"render: {str(src)!r} is damaged ({type(err).__name__}: "
                          f"{err})") from None
    path = render_comparison(
        clean[0], adv[0], layout, out, length=length, fps=args.fps,
        labels=(f"true: {truth}\npred: {clean_pred}", f"true: {truth}\npred: {pred}"))
    emit(args, {"source": str(src), "index": i, "true": truth, "clean_pred": clean_pred,
                "adversarial_pred": pred, "out": str(path)}, f"wrote {path}")


def cmd_demo(args: argparse.Namespace) -> None:
    from skelrobust.demo import run_demo

    out = prepare_out(args.out, args.overwrite, TRAIN_OUTPUTS)
    summary = run_demo(out=out, epochs=args.epochs, progress=not args.quiet,
                       train_clips=args.train_clips)
    tr, te, m = summary["training"], summary["test"], summary["model"]
    rows = [{"model": f"{m['name']}-{m['size']}", "params": m["parameters"],
             "epochs": tr["epochs"], "train s": tr["seconds"],
             "samples/s": tr["samples_per_second"], "val top-1 %": tr["val_top1"],
             "test top-1 %": te["top1"], "test top-5 %": te["top5"]}]
    ckpt = summary["checkpoint"]
    summary["next"] = [f"skelrobust eval {out}",
                       f"skelrobust attack {out} --attack smart --n 16 --out {out}-smart",
                       f"skelrobust render {out}-smart --index 0 --out {out}-smart/clip0.gif"]
    text = (f"skelrobust demo: synthetic ({summary['dataset']['classes']} classes, "
            f"{summary['dataset']['train']} train / {summary['dataset']['test']} test clips)\n\n"
            + _table(rows) + "\n" + _accuracy_table("held-out test", te)
            + f"\noutputs in {out}/: {Path(ckpt).name} (the classifier), history.json "
            "(per-epoch metrics), last.safetensors\nnext:\n"
            + "\n".join(f"  {c}" for c in summary["next"]))
    emit(args, summary, text)
