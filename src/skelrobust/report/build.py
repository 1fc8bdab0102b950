"""``skelrobust report DIR``: every table, plot and the HTML page of a sweep's result store.

Writes, from ``DIR/cells`` and ``DIR/artifacts`` only::

    DIR/report/tables/<name>.md .csv .tex    one file per table and format
    DIR/report/tables.md                     every table in one Markdown file
    DIR/report/plots/<name>.png .svg         the figures the data allow
    DIR/report.html                          the self-contained page

The report is derived data: a rerun replaces the previous one whole (built beside it, then
swapped in), so no table or plot of an earlier run is left over.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from skelrobust.errors import ConfigError
from skelrobust.report.clips import viewer_clips
from skelrobust.report.collect import load_store
from skelrobust.report.html import render_html
from skelrobust.report.paper_tables import Table, build_tables
from skelrobust.report.plots import Plot, write_plots
from skelrobust.report.series import CURVES, curves, tradeoff
from skelrobust.report.tables import format_table

__all__ = ["REPORT_FOLDER", "Report", "build_report"]

REPORT_FOLDER = "report"
#: Table formats written to files: format -> extension.
TABLE_FILES = {"markdown": "md", "csv": "csv", "latex": "tex"}


@dataclass
class Report:
    """What :func:`build_report` wrote and read."""

    root: Path
    folder: Path
    html: Path | None
    tables: list[Table]
    plots: list[Plot]
    clips: int
    cells: int
    failed: int
    files: list[Path] = field(default_factory=list)


def _write_tables(tables: list[Table], folder: Path, digits: int) -> list[Path]:
    out = folder / "tables"
    out.mkdir(parents=True)
    written, sections = [], []
    for table in tables:
        for fmt, ext in TABLE_FILES.items():
            path = out / f"{table.name}.{ext}"
            path.write_text(format_table(table.rows, table.columns, fmt, digits), "utf-8")
            written.append(path)
        note = f"{table.note}\n\n" if table.note else ""
        sections.append(f"## {table.title}\n\n{note}"
                        f"{format_table(table.rows, table.columns, 'markdown', digits)}")
    combined = folder / "tables.md"
    combined.write_text("\n".join(sections), "utf-8")
    return [combined, *written]


def _replace(new: Path, old: Path) -> None:
    """Put the folder ``new`` where ``old`` is (the previous report removed)."""
    if old.exists():
        if not old.is_dir():
            raise ConfigError(f"report: {str(old)!r} is a file; the report writes a folder there")
        shutil.rmtree(old)
    os.replace(new, old)


def build_report(root: str | Path, html: bool = True, plots: bool = True,
                 clips_per_attack: int = 3, digits: int = 1) -> Report:
    """Read the store at ``root`` and write its report (see the module doc)."""
    store = load_store(root)
    cells = store.cells
    curve_sets = {kind: curves(cells, kind) for kind in CURVES}
    trade = tradeoff(cells)
    tables = build_tables(cells, curve_sets)
    target = store.root / REPORT_FOLDER
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=store.root))
    try:
        files = _write_tables(tables, staging, digits)
        figures = write_plots(curve_sets, trade, staging / "plots") if plots else []
        files += [p for f in figures for p in (f.png, f.svg)]
        clips = viewer_clips(cells, clips_per_attack) if html else []
        page = None
        if html:
            summary = (f"{len(cells)} cells ({len(store.failed)} failed) · "
                       f"{len(tables)} tables · {len(figures)} plots · {len(clips)} clips · "
                       "mean ± std over seeds")
            text = render_html(f"skelrobust report: {store.name}", summary, tables, figures,
                               clips, digits, REPORT_FOLDER)
            page = store.root / "report.html"
            (staging / "report.html").write_text(text, "utf-8")
        staging.chmod(0o755)
        _replace(staging, target)
        if page is not None:
            os.replace(target / "report.html", page)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    moved = [target / p.relative_to(staging) for p in files]
    moved_plots = [Plot(p.name, p.title, target / "plots" / p.png.name,
                        target / "plots" / p.svg.name) for p in figures]
    return Report(root=store.root, folder=target, html=page, tables=tables, plots=moved_plots,
                  clips=len(clips), cells=len(cells), failed=len(store.failed), files=moved)
