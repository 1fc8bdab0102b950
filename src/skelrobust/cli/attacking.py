"""The CLI's attack verbs: ``attack`` (white-box or label-only, on a classifier or an ONNX
file) and ``export`` (a classifier to ONNX). Thin: they validate, call the library, report."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from skelrobust.cli.commands import (
    _checkpoint_record,
    _classifier,
    _data_record,
    _load_data,
    _table,
    options,
)
from skelrobust.cli.output import emit, file_fingerprint, prepare_out, provenance, write_json
from skelrobust.errors import ConfigError, VictimError

log = logging.getLogger("skelrobust")

ATTACK_OUTPUTS = ("summary.json", "adversarial.npz")


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
    """A split of the victim's data, loaded as it was trained (``split`` None: ``--split``,
    else the test split)."""
    if victim.data is not None and split in (None, args.split):
        return victim.data
    data = _load_data(args, victim.recipe, split)
    if victim.onnx is not None:
        victim.onnx.check_input(data.x.shape)  # ShapeError naming the file and both shapes
    return data


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
    from skelrobust.attacks.running import attack_settings, save_clips
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
    save_clips(out / "adversarial.npz", res, x[order], lengths, order, victim.class_names,
               victim.layout)
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
