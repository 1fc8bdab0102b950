"""The CLI's ``report`` verb: tables, plots and the offline HTML page of a sweep's result
store (``skelrobust bench``'s ``--out`` folder). Thin: it calls
:func:`skelrobust.report.build.build_report` and says what it wrote."""

from __future__ import annotations

import argparse
from typing import Any

from skelrobust.cli.output import emit
from skelrobust.validation import integer

__all__ = ["add_parsers", "cmd_report"]


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``report`` on the ``skelrobust`` subparsers ``sub``."""
    from skelrobust.cli.defending import _flag_type

    p = sub.add_parser("report", parents=[common], help="tables (Markdown, CSV, LaTeX), plots "
                       "and an offline HTML page with a 3-D motion viewer, from a sweep's "
                       "results")
    p.add_argument("dir", metavar="DIR", help="the output folder of 'skelrobust bench' (its "
                   "cells/ and artifacts/); the report goes to DIR/report/ and DIR/report.html")
    p.add_argument("--clips", type=_flag_type(integer(0, 100), "int"), default=3,
                   help="clean vs adversarial clips shown per attack (default 3; 0: none)")
    p.add_argument("--digits", type=_flag_type(integer(0, 6), "int"), default=1,
                   help="decimals in the tables (default 1)")
    p.add_argument("--no-plots", dest="plots", action="store_false",
                   help="no plots (no matplotlib needed)")
    p.add_argument("--no-html", dest="html", action="store_false", help="tables and plots "
                   "only, no report.html")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> None:
    """Build the report of ``args.dir`` and print where it is."""
    from skelrobust.report.build import build_report

    rep = build_report(args.dir, html=args.html, plots=args.plots,
                       clips_per_attack=args.clips, digits=args.digits)
    lines = [f"report of {rep.root}: {rep.cells} cells ({rep.failed} failed), "
             f"{len(rep.tables)} tables, {len(rep.plots)} plots, {rep.clips} clips",
             f"tables: {rep.folder / 'tables.md'} (and tables/*.md, *.csv, *.tex)"]
    if rep.plots:
        lines.append(f"plots:  {rep.folder / 'plots'}/ (PNG and SVG)")
    if rep.html is not None:
        lines.append(f"page:   {rep.html} (offline; open it in a browser, e.g. "
                     f"xdg-open {rep.html})")
    payload = {"root": rep.root, "folder": rep.folder, "html": rep.html,
               "cells": rep.cells, "failed": rep.failed, "clips": rep.clips,
               "tables": [t.name for t in rep.tables],
               "plots": [str(p.png) for p in rep.plots], "files": [str(f) for f in rep.files]}
    emit(args, payload, "\n".join(lines))
