"""Reports: tables (text, Markdown, CSV, LaTeX, HTML), plots, animations and the offline
HTML report with its 3-D viewer, built from a sweep's result store.

``build_report`` (in :mod:`skelrobust.report.build`) is imported on use, so that
``format_table`` stays light.
"""

from skelrobust.report.tables import format_table

__all__ = ["format_table"]
