"""Result tables as plain text, Markdown, CSV or LaTeX, from a list of row dicts."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

from skelrobust.errors import ConfigError

__all__ = ["FORMATS", "format_table"]

FORMATS = ("text", "markdown", "csv", "latex")


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
                 fmt: str = "text", digits: int = 1, headers: dict[str, str] | None = None) -> str:
    """Render ``rows`` (dicts) with ``columns`` (default: keys of the first row)."""
    if fmt not in FORMATS:
        raise ConfigError(f"table format must be one of {FORMATS}, got {fmt!r}")
    columns = list(columns or (rows[0].keys() if rows else []))
    names = [(headers or {}).get(c, c) for c in columns]
    body = [[_cell(r.get(c), digits) for c in columns] for r in rows]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([[r.get(c, "") for c in columns] for r in rows])
        return buf.getvalue()
    if fmt == "latex":
        lines = [r"\begin{tabular}{l" + "r" * (len(columns) - 1) + "}", r"\toprule",
                 " & ".join(names) + r" \\", r"\midrule"]
        lines += [" & ".join(c.replace("%", r"\%").replace("_", r"\_") for c in row) + r" \\"
                  for row in body]
        return "\n".join([*lines, r"\bottomrule", r"\end{tabular}"]) + "\n"
    widths = [max([len(n)] + [len(row[i]) for row in body]) for i, n in enumerate(names)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) if i == 0 else c.rjust(w)
                  for i, (c, w) in enumerate(zip(cells, widths))]
        return ("| " + " | ".join(padded) + " |") if fmt == "markdown" else "  ".join(padded)

    sep = ("|" + "|".join(("-" * (w + 1) + ":") if i else (":" + "-" * (w + 1))
                          for i, w in enumerate(widths)) + "|") if fmt == "markdown" else (
        "  ".join("-" * w for w in widths))
    return "\n".join([line(names), sep, *[line(r) for r in body]]) + "\n"
