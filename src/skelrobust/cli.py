"""The ``skelrobust`` command line.

Every user error becomes one line on stderr and exit status 2 (never a
traceback); ``--json`` prints machine-readable results on stdout; ``--quiet``
silences logs and progress bars.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skelrobust.errors import ConfigError, DatasetNotFoundError, SkelRobustError

__all__ = ["main"]

log = logging.getLogger("skelrobust")


# ---------------------------------------------------------------------- output
def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become null, numpy scalars become numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(_clean(payload), indent=2))
    else:
        print(text, end="" if text.endswith("\n") else "\n")


def _accuracy_table(name: str, ev: dict[str, Any]) -> str:
    from skelrobust.report.tables import format_table

    rows = [{"class": c, "accuracy %": a} for c, a in ev["per_class"].items()]
    head = f"{name}: top-1 {ev['top1']:.2f} %  top-5 {ev['top5']:.2f} %  (n={ev['n']})\n\n"
    return head + format_table(rows, ["class", "accuracy %"])


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, line: str | None = None) -> str:
    return f"skelrobust: warning: {message}\n"


# ---------------------------------------------------------------------- commands
def cmd_data_list(args: argparse.Namespace) -> None:
    from skelrobust.data.registry import list_datasets
    from skelrobust.report.tables import format_table

    specs = [s.describe() for s in list_datasets()]
    rows = [{"name": s["name"], "layout": s["layout"], "classes": s["classes"],
             "splits": ", ".join(s["splits"]), "files": "yes" if s["needs_files"] else "no"}
            for s in specs]
    _emit(args, {"datasets": specs}, format_table(rows))


def _options(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` flags as keyword arguments (values parsed as YAML scalars)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigError(f"--option {pair!r}: expected KEY=VALUE, e.g. window=60")
        out[key] = yaml.safe_load(value) if value else ""
    return out


def cmd_data_info(args: argparse.Namespace) -> None:
    from skelrobust.data.registry import dataset_spec, load_dataset
    from skelrobust.report.tables import format_table

    spec = dataset_spec(args.name)
    splits = [args.split] if args.split else list(spec.splits)
    options = _options(args.option)
    infos: dict[str, dict[str, Any]] = {}
    missing: dict[str, SkelRobustError] = {}
    for s in splits:
        try:
            infos[s] = load_dataset(args.name, root=args.root, split=s, **options).summary()
        except (DatasetNotFoundError, ConfigError) as err:  # e.g. a release without a split
            missing[s] = err
    if not infos:  # nothing loads: the first error is the user's problem to see
        raise next(iter(missing.values()))
    for s, err in missing.items():
        log.warning("split %s not available: %s", s, err)
    lines = [f"{spec.name}: {spec.description}", f"layout {spec.layout}; protocol: "
             f"{spec.protocol or '-'}", ""]
    rows = [{"split": s, "clips": i["clips"], "classes": i["classes"],
             "frames min": i["length"]["min"], "frames mean": i["length"]["mean"],
             "frames max": i["length"]["max"], "bodies": i["bodies"]} for s, i in infos.items()]
    rows += [{"split": s, "clips": "missing"} for s in missing]
    lines.append(format_table(rows))
    first_split, first = next(iter(infos.items()))
    per_class = [{"class": c, **{s: infos[s]["class_counts"][c] for s in infos}}
                 for c in first["class_counts"]]
    shown = [r for r in per_class if any(r[s] for s in infos)]
    lines.append(format_table(shown))
    if len(shown) < len(per_class):
        lines.append(f"({len(per_class) - len(shown)} classes with no clips not shown)\n")
    bones = [{"bone": b, "mean cm": v, "std cm": first["bone_length_std_cm"][b],
              "within-clip cv %": first["bone_length_temporal_cv_pct"][b]}
             for b, v in first["bone_length_cm"].items()]
    lines.append(f"bone lengths ({first_split} split, over present frames):")
    lines.append(format_table(bones))
    payload = {"dataset": spec.describe(), "splits": infos,
               "missing": {k: str(v) for k, v in missing.items()}}
    _emit(args, payload, "\n".join(lines))


def _experiment(args: argparse.Namespace) -> Any:
    from skelrobust.config import ExperimentConfig, load_config

    exp = load_config(args.config) if args.config else ExperimentConfig()
    overrides = {
        "data": {"name": args.data, "root": args.root, "frames": args.frames},
        "model": {"name": args.model, "size": args.size},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                  "optimizer": args.optimizer, "schedule": args.schedule,
                  "weight_decay": args.weight_decay, "seed": args.seed,
                  "num_threads": args.threads},
    }
    for section, values in overrides.items():
        target = getattr(exp, section)
        for key, value in values.items():
            if value is not None:
                setattr(target, key, value)
    exp.train.progress = not args.quiet
    exp.train.__post_init__()  # re-validate after the overrides
    return exp


def cmd_train(args: argparse.Namespace) -> None:
    """Train; under ``torchrun --nproc_per_node=K -m skelrobust train ...`` with DDP.

    In a distributed job every rank loads the data and trains its shard; only
    rank 0 logs, writes ``--out`` and prints the result.
    """
    from skelrobust.classifier import Classifier
    from skelrobust.config import load_prepared
    from skelrobust.training import evaluate, fit, is_main_process, seed_everything

    main_process = is_main_process()
    if not main_process:
        log.setLevel(logging.WARNING)
    exp = _experiment(args)
    d = exp.data
    prep = d.preprocess_args()
    train = load_prepared(d.name, d.train_split, d.root, prep, **d.options)
    val = load_prepared(d.name, d.resolved_val_split(), d.root, prep, **d.options)
    log.info("train %s: %d clips; held-out %s: %d clips", d.train_split, len(train),
             d.resolved_val_split(), len(val))
    seed_everything(exp.train.seed)  # the initial weights too are reproducible under the seed
    clf = Classifier.create(exp.model.name, train, size=exp.model.size, preprocess=prep,
                            **exp.model.kwargs)
    clf.info["experiment"] = exp.as_dict()
    out = Path(args.out)
    result = fit(clf, train, val, exp.train, out_dir=out)
    if not main_process:
        return
    ev = evaluate(clf, val).as_dict()
    payload = {"out": str(out), "best_epoch": result.best_epoch, "seconds": result.seconds,
               "samples_per_second": result.samples_per_second, "held_out": ev,
               "history": result.history, "world_size": result.world_size}
    _emit(args, payload, _accuracy_table(f"{d.name} {d.resolved_val_split()}", ev)
          + f"\nbest epoch {result.best_epoch}/{exp.train.epochs}, {result.seconds:.1f} s; "
          f"classifier saved in {out}/classifier.safetensors")


def cmd_eval(args: argparse.Namespace) -> None:
    from skelrobust.classifier import Classifier
    from skelrobust.config import load_prepared
    from skelrobust.training import evaluate

    clf = Classifier.load(args.checkpoint)
    data = load_prepared(args.data, args.split, args.root, clf.preprocess)
    ev = evaluate(clf, data).as_dict(full=True)
    _emit(args, {"checkpoint": args.checkpoint, "data": args.data, "split": args.split, **ev},
          _accuracy_table(f"{args.data} {args.split}", ev))


def cmd_attack(args: argparse.Namespace) -> None:
    import torch

    from skelrobust.attacks.registry import create_attack
    from skelrobust.attacks.sampling import choose_clips, correct_mask
    from skelrobust.classifier import Classifier
    from skelrobust.config import load_prepared
    from skelrobust.report.tables import format_table

    clf = Classifier.load(args.checkpoint).eval()
    data = load_prepared(args.data, args.split, args.root, clf.preprocess)
    x, y = data.tensors()
    correct = correct_mask(clf, x, y)
    if not bool(correct.any()):
        raise ConfigError(f"attack: the classifier gets no clip of {args.data} {args.split} right")
    # A seeded choice among the correctly classified clips (attacks start from a correct label).
    order = choose_clips(correct, args.n, args.seed)
    kwargs = {"goal": args.goal, "n": args.top_n, "target_mode": args.target_mode,
              "steps": args.steps, "budget_mm": args.budget_mm, "norm": args.norm,
              "seed": args.seed, **_options(args.option)}
    atk = create_attack(args.attack, clf, **kwargs)
    lengths = torch.from_numpy(data.lengths[order.numpy()])
    target = torch.tensor(args.target).expand(len(order)) if args.target is not None else None
    res = atk.attack(x[order], y[order], target=target, lengths=lengths)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res.save_npz(str(out / "adversarial.npz"), x_clean=x[order], lengths=lengths,
                 index=order, class_names=np.asarray(clf.class_names),
                 layout=np.asarray(clf.skeleton.name))
    summary = {"checkpoint": args.checkpoint, "data": args.data, "split": args.split,
               "attack": args.attack, "arguments": kwargs, "selected": len(order),
               "correct_in_split": int(correct.sum()), "split_size": len(y), **res.summary()}
    (out / "summary.json").write_text(json.dumps(_clean(summary), indent=2))
    per = summary.get("perceptual", {})
    rows = [{"metric": k, "value": v} for k, v in per.items()]
    text = (f"{args.attack} ({summary['goal']}) on {args.data} {args.split}: success "
            f"{res.success_rate:.1f} % of {len(order)} clips, {res.seconds:.1f} s, mean "
            f"{summary['iterations_mean']:.1f} steps\n\nperceptual report (successful clips):\n"
            + format_table(rows) + f"\nwrote {out / 'summary.json'} and {out / 'adversarial.npz'}")
    _emit(args, summary, text)


def cmd_render(args: argparse.Namespace) -> None:
    from skelrobust.report.animation import render_comparison

    src = Path(args.source)
    src = src / "adversarial.npz" if src.is_dir() else src
    try:
        f = np.load(src, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ConfigError(f"render: cannot read {str(src)!r} ({err}); expected the "
                          "adversarial.npz that 'skelrobust attack' writes") from None
    with f:
        missing = {"x_adv", "x_clean", "y", "adv_pred", "class_names", "layout"} - set(f.files)
        if missing:
            raise ConfigError(f"render: {str(src)!r} lacks {sorted(missing)}")
        count = len(f["y"])
        if not 0 <= args.index < count:
            raise ConfigError(f"render: --index must be in [0, {count}), got {args.index}")
        i, names = args.index, [str(c) for c in f["class_names"]]
        truth, pred = names[int(f["y"][i])], names[int(f["adv_pred"][i])]
        clean_pred = names[int(f["clean_pred"][i])] if "clean_pred" in f.files else truth
        length = int(f["lengths"][i]) if "lengths" in f.files else None
        path = render_comparison(
            f["x_clean"][i], f["x_adv"][i], str(f["layout"]), args.out, length=length,
            fps=args.fps, labels=(f"true: {truth}\npred: {clean_pred}",
                                  f"true: {truth}\npred: {pred}"))
    _emit(args, {"source": str(src), "index": i, "true": truth, "clean_pred": clean_pred,
                 "adversarial_pred": pred, "out": str(path)}, f"wrote {path}")


def cmd_demo(args: argparse.Namespace) -> None:
    from skelrobust.demo import run_demo
    from skelrobust.report.tables import format_table

    summary = run_demo(out=args.out, epochs=args.epochs, progress=not args.quiet,
                       threads=args.threads)
    tr, te, m = summary["training"], summary["test"], summary["model"]
    rows = [{"model": f"{m['name']}-{m['size']}", "params": m["parameters"],
             "epochs": tr["epochs"], "train s": tr["seconds"],
             "samples/s": tr["samples_per_second"], "val top-1 %": tr["val_top1"],
             "test top-1 %": te["top1"], "test top-5 %": te["top5"]}]
    text = (f"skelrobust demo: synthetic ({summary['dataset']['classes']} classes, "
            f"{summary['dataset']['train']} train / {summary['dataset']['test']} test clips)\n\n"
            + format_table(rows) + "\n" + _accuracy_table("held-out test", te)
            + f"\nclassifier: {summary['checkpoint']}")
    _emit(args, summary, text)


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--quiet", "-q", action="store_true", help="no logs or progress bars")
    common.add_argument("--threads", type=int, default=None, help="torch CPU threads")

    parser = argparse.ArgumentParser(
        prog="skelrobust", description="Attack, defend and benchmark skeleton action "
        "recognition classifiers.")
    from skelrobust import __version__

    parser.add_argument("--version", action="version", version=f"skelrobust {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="list and inspect datasets")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    p = dsub.add_parser("list", parents=[common], help="every dataset, its layout and splits")
    p.set_defaults(func=cmd_data_list)
    p = dsub.add_parser("info", parents=[common], help="counts, lengths and bone lengths")
    p.add_argument("name")
    p.add_argument("--root", help="the dataset's folder")
    p.add_argument("--split", help="one split only (default: all)")
    p.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                   help="loader option, repeatable (e.g. -o window=60 -o pattern='HDM_*')")
    p.set_defaults(func=cmd_data_info)

    p = sub.add_parser("train", parents=[common], help="train a classifier")
    p.add_argument("--config", help="YAML experiment file (flags override it)")
    p.add_argument("--data", help="dataset name (default synthetic)")
    p.add_argument("--root", help="the dataset's folder")
    p.add_argument("--model", help="model name (default stgcn)")
    p.add_argument("--size", choices=["small", "base"])
    p.add_argument("--frames", type=int, help="frames per clip after resampling")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    p.add_argument("--schedule", choices=["cosine", "step", "none"])
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", parents=[common], help="evaluate a saved classifier")
    p.add_argument("checkpoint", help="classifier folder or .safetensors file")
    p.add_argument("--data", default="synthetic")
    p.add_argument("--root")
    p.add_argument("--split", default="test")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("attack", parents=[common], help="attack a saved classifier")
    p.add_argument("checkpoint", help="classifier folder or .safetensors file")
    p.add_argument("--attack", default="smart", help="smart, ciasa, fgsm, bim, pgd, mifgsm")
    p.add_argument("--goal", default="ab", choices=["ab", "abn", "sa"])
    p.add_argument("--top-n", type=int, default=None, help="N of anything-but-N (goal abn)")
    p.add_argument("--target-mode", default=None, choices=["given", "random", "least_likely"])
    p.add_argument("--target", type=int, default=None, help="target class (goal sa, given)")
    p.add_argument("--data", default="synthetic")
    p.add_argument("--root")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=64, help="clips to attack (correctly classified)")
    p.add_argument("--steps", type=int)
    p.add_argument("--budget-mm", type=float)
    p.add_argument("--norm", choices=["linf", "l2"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                   help="any other attack argument, repeatable (e.g. -o w=0.6)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_attack)

    p = sub.add_parser("render", parents=[common],
                       help="animate clean vs adversarial motion (GIF or MP4)")
    p.add_argument("source", help="attack output folder or its adversarial.npz")
    p.add_argument("--index", type=int, default=0, help="which attacked clip")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--out", required=True, help="output .gif or .mp4")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("demo", parents=[common], help="train and evaluate end to end")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--epochs", type=int, help="training epochs (default tuned)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    warnings.formatwarning = _one_line_warning
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        args.func(args)
    except SkelRobustError as err:
        print(f"skelrobust: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skelrobust: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
