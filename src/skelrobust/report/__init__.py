"""Reports: tables (text, Markdown, CSV, LaTeX); plots and animations in later issues."""

from skelrobust.report.tables import format_table

__all__ = ["format_table"]
