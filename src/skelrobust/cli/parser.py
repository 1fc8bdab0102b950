"""The ``skelrobust`` argument parser; every flag is typed by a validation rule."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from skelrobust.cli import attacking as a
from skelrobust.cli import benching as b
from skelrobust.cli import commands as c
from skelrobust.cli import defending as d
from skelrobust.cli import reporting as r
from skelrobust.validation import arg_type

__all__ = ["UsageError", "build_parser"]

NORMS = ("joint", "linf", "l2")


class UsageError(Exception):
    """A command line argparse refuses; the CLI prints it as one line and exits 2."""


class Parser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line (not usage text and exit) for :func:`main`.

    ``lazy_epilog``: a function giving the epilog, called only when the help is shown
    (e.g. the registered attacks, which need the attack modules imported).
    """

    lazy_epilog: Callable[[], str] | None = None

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def format_help(self) -> str:
        if self.lazy_epilog is not None:
            self.epilog, self.lazy_epilog = self.lazy_epilog(), None
        return super().format_help()


def _attacks_epilog() -> str:
    """The registered attacks, one line each (for ``skelrobust attack --help``)."""
    from skelrobust.attacks.registry import describe_attack, list_attacks

    rows = [describe_attack(name) for name in list_attacks(aliases=False)]
    width = max(len(r["name"]) for r in rows)
    lines = [f"  {r['name']:<{width}}  {r['access']:<8}  {r['summary'].replace('``', '')}"
             for r in rows]
    return ("attacks (--attack NAME; access 'gradient': white-box, a classifier only; 'label': "
            "label-only, also on an ONNX file):\n" + "\n".join(lines))


def _common() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout (logs stay on stderr)")
    common.add_argument("--quiet", "-q", action="store_true", help="no logs or progress bars")
    common.add_argument("--threads", type=arg_type("run.threads"), default=None,
                        help="torch CPU threads")
    return common


def _out(p: argparse.ArgumentParser, what: str, default: str | None = None) -> None:
    if default is None:
        p.add_argument("--out", required=True, help=what)
    else:
        p.add_argument("--out", default=default, help=f"{what} (default {default})")
    p.add_argument("--overwrite", action="store_true",
                   help="replace earlier results in --out (refused otherwise)")


def _data_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--data", help=f"dataset name ({what})")
    p.add_argument("--root", help="the dataset's folder (default $SKELROBUST_DATA/<dataset>)")
    p.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                   help="loader option, repeatable (e.g. -o window=60)")


def build_parser() -> argparse.ArgumentParser:
    from skelrobust import __version__

    common = _common()
    parser = Parser(prog="skelrobust", description="Attack, defend and benchmark skeleton "
                    "action recognition classifiers.")
    parser.add_argument("--version", action="version", version=f"skelrobust {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="list and inspect datasets")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    p = dsub.add_parser("list", parents=[common], help="every dataset, its layout, protocols "
                        "and splits")
    p.set_defaults(func=c.cmd_data_list)
    p = dsub.add_parser("info", parents=[common], help="protocols, counts, lengths and bone "
                        "lengths")
    p.add_argument("name")
    p.add_argument("--root", help="the dataset's folder")
    p.add_argument("--split", help="one split only (default: all)")
    p.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                   help="loader option, repeatable (e.g. -o window=60 -o pattern='HDM_*')")
    p.set_defaults(func=c.cmd_data_info)

    p = sub.add_parser("models", parents=[common], help="the model zoo and the third-party "
                       "checkpoint formats")
    p.set_defaults(func=c.cmd_models)
    p = sub.add_parser("attacks", parents=[common], help="the attacks, by name, and what "
                       "access to the victim each needs")
    p.set_defaults(func=c.cmd_attacks)

    p = sub.add_parser("train", parents=[common], help="train a classifier")
    p.add_argument("--config", help="YAML experiment file (flags override it)")
    _data_flags(p, "default synthetic")
    p.add_argument("--protocol", help="evaluation protocol (skelrobust data info NAME lists "
                   "them; default the dataset's first)")
    p.add_argument("--val-split", help="validation split name, 'carve' (a seeded, stratified "
                   "part of the training clips) or 'none'; never the test split")
    p.add_argument("--val-fraction", type=arg_type("data.val_fraction"),
                   help="fraction of the training clips carved for validation (default 0.1)")
    p.add_argument("--keep", choices=["best", "last"],
                   help="keep the best validation epoch (default) or the last")
    p.add_argument("--model", help="model name (default stgcn; skelrobust models lists them)")
    p.add_argument("--size", choices=["small", "base"])
    p.add_argument("--frames", type=arg_type("data.frames"), help="frames per clip")
    p.add_argument("--epochs", type=arg_type("train.epochs"))
    p.add_argument("--batch-size", type=arg_type("train.batch_size"))
    p.add_argument("--lr", type=arg_type("train.lr"))
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    p.add_argument("--schedule", choices=["cosine", "step", "none"])
    p.add_argument("--weight-decay", type=arg_type("train.weight_decay"))
    p.add_argument("--seed", type=arg_type("train.seed"))
    _out(p, "output folder")
    p.set_defaults(func=c.cmd_train)

    def checkpoint_flags(p: argparse.ArgumentParser, onnx: bool = False) -> None:
        p.add_argument("checkpoint", metavar="CKPT_DIR_OR_ONNX" if onnx else "checkpoint",
                       help="classifier folder, .safetensors file, or a supported third-party "
                       "checkpoint (skelrobust models lists them)" + (
                           "; or an .onnx file (skelrobust export), a black-box victim for "
                           "label-only attacks" if onnx else ""))
        _data_flags(p, "default: the one the classifier was trained on")
        p.add_argument("--split", help="default: the test split of the classifier's protocol")

    p = sub.add_parser("eval", parents=[common], help="evaluate a saved classifier")
    checkpoint_flags(p)
    p.add_argument("--batch-size", type=arg_type("run.batch_size"), default=256)
    p.set_defaults(func=c.cmd_eval)

    p = sub.add_parser("attack", parents=[common], help="attack a saved classifier or an "
                       "ONNX file", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.lazy_epilog = _attacks_epilog
    checkpoint_flags(p, onnx=True)
    p.add_argument("--attack", default="smart", help="attack name (listed below; default "
                   "smart)")
    p.add_argument("--goal", default="ab", choices=["ab", "abn", "sa"])
    p.add_argument("--top-n", type=arg_type("attack.top_n"), default=None,
                   help="N of anything-but-N (goal abn)")
    p.add_argument("--target-mode", default=None, choices=["given", "random", "least_likely"])
    p.add_argument("--target", type=arg_type("attack.target"), default=None,
                   help="target class (goal sa, given)")
    p.add_argument("--n", type=arg_type("attack.clips"), default=64,
                   help="clips to attack, chosen among the correctly classified (default 64)")
    p.add_argument("--steps", type=arg_type("attack.steps"))
    p.add_argument("--budget-mm", type=arg_type("attack.budget_mm"),
                   help="perturbation budget in mm (per joint and frame under --norm joint)")
    p.add_argument("--norm", choices=NORMS, help="budget norm: joint (every joint within "
                   "the budget; the default), linf (per coordinate) or l2 (whole clip)")
    p.add_argument("--seed", type=arg_type("attack.seed"), default=0)
    p.add_argument("--queries", type=arg_type("attack.queries"), default=None,
                   help="label-only attacks: queries per clip, the attack's max_queries "
                   "(default: the attack's)")
    p.add_argument("--pool-split", default=None,
                   help="label-only attacks: the split of the same dataset whose clips the "
                   "attacker holds to start from (default: the training split; 'none': no "
                   "pool)")
    p.add_argument("--attack-option", "-a", action="append", metavar="KEY=VALUE",
                   dest="attack_option",
                   help="any other attack argument, repeatable (e.g. -a w=0.6)")
    _out(p, "output folder")
    p.set_defaults(func=a.cmd_attack)
    d.add_parsers(sub, common)  # defend, certify
    b.add_parsers(sub, common)  # bench
    r.add_parsers(sub, common)  # report

    p = sub.add_parser("export", parents=[common], help="write a classifier as an ONNX file "
                       "(normalisation included), checked against the classifier")
    p.add_argument("checkpoint", metavar="CKPT_DIR", help="classifier folder, .safetensors "
                   "file, or a supported third-party checkpoint")
    p.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument("--frames", type=arg_type("data.frames"), help="frames per clip T of the "
                   "input (default: those the classifier was trained on)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --onnx file "
                   "(refused otherwise)")
    p.set_defaults(func=a.cmd_export)

    p = sub.add_parser("import", parents=[common], help="convert a third-party checkpoint "
                       "into a classifier folder")
    p.add_argument("file", help="the checkpoint (e.g. an official Shift-GCN .pt)")
    p.add_argument("--format", help="its format (default: detected)")
    _out(p, "output folder")
    p.set_defaults(func=c.cmd_import)

    p = sub.add_parser("render", parents=[common],
                       help="animate clean vs adversarial motion (GIF or MP4)")
    p.add_argument("source", help="attack output folder or its adversarial.npz")
    p.add_argument("--index", type=arg_type("render.index"), default=0,
                   help="which attacked clip")
    p.add_argument("--fps", type=arg_type("render.fps"), default=30.0)
    _out(p, "output .gif or .mp4")
    p.set_defaults(func=c.cmd_render)

    p = sub.add_parser("demo", parents=[common], help="train, attack (SMART, CIASA, BASAR), "
                       "defend (BEAT), attack again, report: end to end")
    _out(p, "output folder (a rerun resumes it)", "runs/demo")
    p.add_argument("--data", default="synthetic", help="dataset (default synthetic; a real "
                   "one needs --root or $SKELROBUST_DATA)")
    p.add_argument("--root", help="the dataset's folder")
    p.add_argument("--epochs", type=arg_type("train.epochs"), help="training epochs "
                   "(default tuned: 6)")
    p.add_argument("--clips", type=arg_type("attack.clips"), default=12,
                   help="test clips attacked (default 12)")
    p.add_argument("--queries", type=arg_type("attack.queries"), default=500,
                   help="BASAR's queries per clip (default 500)")
    p.add_argument("--train-clips", type=arg_type("data.clips"),
                   help="synthetic only: clips per split (default 600)")
    p.set_defaults(func=c.cmd_demo)
    return parser


