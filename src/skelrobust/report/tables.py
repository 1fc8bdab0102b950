"""Result tables as plain text, Markdown, CSV, LaTeX or HTML, from a list of row dicts.

A value may be a :class:`~skelrobust.report.aggregate.Stat` (mean ± std over seeds): the
text formats show ``85.3 ± 2.1``, LaTeX ``85.3 $\\pm$ 2.1``, and CSV splits it into the
columns ``NAME`` (mean), ``NAME std``, ``NAME n`` (and ``NAME failed`` when a cell of the
column failed) so a spreadsheet reads numbers. Columns whose values are all text are
left-aligned, the others right-aligned.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Sequence
from typing import Any

from skelrobust.errors import ConfigError
from skelrobust.report.aggregate import Stat

__all__ = ["FORMATS", "format_table", "latex_escape"]

FORMATS = ("text", "markdown", "csv", "latex", "html")

_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
          "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
          "^": r"\textasciicircum{}", "±": r"$\pm$", "×": r"$\times$", "→": r"$\to$"}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (``±`` becomes ``$\\pm$``)."""
    return "".join(_LATEX.get(ch, ch) for ch in text)


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, Stat):
        return value.text(digits)
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return "" if value is None else value


def _csv(rows: Sequence[dict[str, Any]], columns: list[str], names: list[str]) -> str:
    """CSV with every :class:`Stat` column split into mean, std, n (and failed) columns."""
    header: list[str] = []
    getters: list[Any] = []
    for col, name in zip(columns, names):
        stats = [r[col] for r in rows if isinstance(r.get(col), Stat)]
        if not stats:
            header.append(name)
            getters.append(lambda r, c=col: _csv_value(r.get(c)))
            continue
        parts = ["mean", "std", "n"] + (["failed"] if any(s.failed for s in stats) else [])
        for part in parts:
            header.append(name if part == "mean" else f"{name} {part}")
            getters.append(lambda r, c=col, p=part: _csv_value(
                getattr(r[c], p) if isinstance(r.get(c), Stat) else None))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[get(r) for get in getters] for r in rows])
    return buf.getvalue()


def _latex(body: list[list[str]], names: list[str], left: list[bool]) -> str:
    spec = "".join("l" if is_left else "r" for is_left in left)
    lines = [r"% needs \usepackage{booktabs}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(n) for n in names) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in body]
    return "\n".join([*lines, r"\bottomrule", r"\end{tabular}"]) + "\n"


def _html(rows: Sequence[dict[str, Any]], columns: list[str], body: list[list[str]],
          names: list[str], left: list[bool]) -> str:
    def cls(i: int, value: Any) -> str:
        marks = [] if left[i] else ["num"]
        if isinstance(value, Stat) and value.failed:
            marks.append("failed")
        return f' class="{" ".join(marks)}"' if marks else ""

    head = "".join(f"<th{cls(i, None)}>{html.escape(n)}</th>" for i, n in enumerate(names))
    trs = ["<tr>" + "".join(f"<td{cls(i, r.get(c))}>{html.escape(text)}</td>"
                            for i, (c, text) in enumerate(zip(columns, cells))) + "</tr>"
           for r, cells in zip(rows, body)]
    return (f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(trs)
            + "\n</tbody>\n</table>\n")


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
                 fmt: str = "text", digits: int = 1, headers: dict[str, str] | None = None) -> str:
    """Render ``rows`` (dicts) with ``columns`` (default: keys of the first row) in ``fmt``
    (one of :data:`FORMATS`); ``headers`` renames columns, ``digits`` rounds floats."""
    if fmt not in FORMATS:
        raise ConfigError(f"table format must be one of {FORMATS}, got {fmt!r}")
    columns = list(columns or (rows[0].keys() if rows else []))
    names = [(headers or {}).get(c, c) for c in columns]
    if fmt == "csv":
        return _csv(rows, columns, names)
    body = [[_cell(r.get(c), digits) for c in columns] for r in rows]
    left = [all(isinstance(r.get(c), str | None) for r in rows) for c in columns]
    if left:
        left[0] = True
    if fmt == "latex":
        return _latex(body, names, left)
    if fmt == "html":
        return _html(rows, columns, body, names, left)
    if fmt == "markdown":
        body = [[c.replace("|", r"\|") for c in row] for row in body]
    widths = [max([len(n)] + [len(row[i]) for row in body]) for i, n in enumerate(names)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) if is_left else c.rjust(w)
                  for c, w, is_left in zip(cells, widths, left)]
        return ("| " + " | ".join(padded) + " |") if fmt == "markdown" else "  ".join(padded)

    sep = ("|" + "|".join((":" + "-" * (w + 1)) if is_left else ("-" * (w + 1) + ":")
                          for w, is_left in zip(widths, left)) + "|") if fmt == "markdown" else (
        "  ".join("-" * w for w in widths))
    return "\n".join([line(names), sep, *[line(r) for r in body]]) + "\n"
