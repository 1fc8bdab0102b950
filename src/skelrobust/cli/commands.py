"""The CLI's verbs. Each is thin: it validates, calls the library, and reports."""

from __future__ import annotations

import argparse
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skelrobust.cli.output import emit, file_fingerprint, prepare_out, provenance
from skelrobust.errors import ConfigError, DatasetNotFoundError, SkelRobustError

log = logging.getLogger("skelrobust")

TRAIN_OUTPUTS = ("classifier.safetensors", "last.safetensors", "history.json", "resume.pt")
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
    from skelrobust.experiment import train_experiment
    from skelrobust.training import is_main_process

    main_process = is_main_process()
    if not main_process:
        log.setLevel(logging.WARNING)
    exp = _experiment(args)
    out = prepare_out(args.out, args.overwrite, TRAIN_OUTPUTS) if main_process else Path(args.out)
    trained = train_experiment(exp, out_dir=out)
    if trained.test is None:  # not the main process of a distributed job
        return
    data, result, test, path = trained.data, trained.result, trained.test, trained.path
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


def _load_data(args: argparse.Namespace, clf: Any, split: str | None = None) -> Any:
    """The data ``clf`` was trained on, as it was prepared: ``split`` (default ``--split``;
    neither: its test split). ``clf`` may be anything with its header's fields."""
    from skelrobust.config import load_for_classifier

    return load_for_classifier(clf, args.data, split if split is not None else args.split,
                               args.root, options(args.option))


def cmd_eval(args: argparse.Namespace) -> None:
    from skelrobust.training import evaluate

    clf = _classifier(args.checkpoint)
    data = _load_data(args, clf)
    ev = evaluate(clf, data, batch_size=args.batch_size).as_dict(full=True)
    record = _data_record(data, args.root)
    emit(args, {"checkpoint": _checkpoint_record(args.checkpoint), "data": record, **ev,
                "provenance": provenance()},
         _accuracy_table(f"{record['name']} {record['split']}", ev))


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
    """Train, attack, defend, attack again, report (:mod:`skelrobust.demo`)."""
    import shutil

    from skelrobust.demo import run_demo

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        if not (out / "sweep.json").is_file():
            raise ConfigError(f"--out {out} holds other files; choose an empty or new folder")
        if args.overwrite:
            shutil.rmtree(out)
    if args.train_clips is not None and args.data != "synthetic":
        raise ConfigError("--train-clips sets the size of the synthetic dataset; "
                          f"{args.data} has its own splits")
    res = run_demo(out=out, dataset=args.data, root=args.root, epochs=args.epochs,
                   clips=args.clips, queries=args.queries, train_clips=args.train_clips,
                   progress=not args.quiet)
    text = (f"skelrobust demo on {args.data}: small ST-GCN, undefended and with BEAT "
            f"({res.seconds:.0f} s)\n\n" + _table(res.rows)
            + "\n%: attack success over the clips the classifier gets right; mm: mean joint "
            "displacement of the successful clips\n")
    if res.failed:
        text += "\nfailed cells: " + "; ".join(
            f"{r['cell']['defense']}/{r['cell']['attack']}: {r['error']['message']}"
            for r in res.failed) + "\n"
    if res.html is not None:
        text += f"\nreport: {res.html} (offline; open it in a browser)\n"
    text += f"results: {out}/cells/*.json, clips: {out}/artifacts/\nnext:\n" + "\n".join(
        f"  {c}" for c in res.next)
    emit(args, {"out": out, "rows": res.rows, "html": res.html, "seconds": res.seconds,
                "failed": res.failed, "next": res.next}, text)
    if res.failed:
        raise SystemExit(2)
