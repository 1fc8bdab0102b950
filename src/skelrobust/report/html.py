"""The offline HTML report: one self-contained page.

Every style, script, image (base64 ``data:`` URIs) and clip is inline; a Content Security
Policy forbids the page any request beyond them (no CDN, no fonts, no favicon), so it opens
from a file, a mail attachment or an air-gapped machine alike. The 3-D viewer is
``assets/viewer.js`` (vanilla JavaScript on a ``<canvas>``); its clips come from
:func:`skelrobust.report.clips.viewer_clips` as one JSON block.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from html import escape
from importlib import resources
from typing import Any

from skelrobust.report.aggregate import group
from skelrobust.report.paper_tables import Table
from skelrobust.report.plots import Plot
from skelrobust.report.tables import format_table

__all__ = ["CSP", "render_html"]

#: Nothing but the page's own inline styles, scripts and data: images.
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'")


def _asset(name: str) -> str:
    return resources.files("skelrobust.report").joinpath("assets", name).read_text("utf-8")


def _script_json(value: Any) -> str:
    """JSON safe inside ``<script>``: no ``<`` (so no ``</script>``), no line separators."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _tables(tables: Sequence[Table], digits: int, folder: str) -> str:
    parts = []
    for t in tables:
        files = " · ".join(f'<a href="{escape(folder)}/tables/{escape(t.name)}.{ext}">{ext}</a>'
                           for ext in ("md", "csv", "tex"))
        note = f'<p class="note">{escape(t.note)}</p>' if t.note else ""
        parts.append(f'<section id="table-{escape(t.name)}"><h3>{escape(t.title)}</h3>{note}'
                     f'<div class="scroll">{format_table(t.rows, t.columns, "html", digits)}'
                     f'</div><p class="files">{files}</p></section>')
    return "\n".join(parts)


def _plots(plots: Sequence[Plot], folder: str) -> str:
    parts = []
    for p in plots:
        data = base64.b64encode(p.png.read_bytes()).decode("ascii")
        svg = f'<a href="{escape(folder)}/plots/{escape(p.svg.name)}">SVG</a>'
        parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(p.title)}">'
                     f"<figcaption>{escape(p.title)} · {svg}</figcaption></figure>")
    return '<div class="plots">\n' + "\n".join(parts) + "\n</div>" if parts else (
        '<p class="note">No plot: the sweep has no series (budgets, queries or iterations '
        "swept, or defenses), or matplotlib is not installed.</p>")


def _labels(clip: dict[str, Any]) -> str:
    def name(value: Any) -> str:
        return escape(str(value)) if value is not None else "?"

    verdict = ("" if clip.get("success") is None else
               '<span class="fooled">fooled</span>' if clip["success"] else
               '<span class="held">not fooled</span>')
    return (f'<div class="labels">true: <b>{name(clip.get("true"))}</b> · clean: '
            f'{name(clip.get("clean_pred"))} · adversarial: <b>{name(clip.get("adv_pred"))}</b>'
            f" {verdict}</div><figcaption>{escape(clip.get('where', ''))}</figcaption>")


def _clip_figure(index: int, clip: dict[str, Any]) -> str:
    frames = int(clip["frames"])
    return (f'<figure class="clip" data-clip="{index}">'
            f'<canvas class="view" width="480" height="360" aria-label="3-D view of clean '
            f'(grey) and adversarial motion; drag to rotate, wheel to zoom"></canvas>'
            f'<div class="controls"><button type="button" class="play" aria-pressed="false">'
            f'Play</button><input type="range" class="frame" min="0" max="{frames - 1}" '
            f'value="0" step="1" aria-label="frame"><span class="frame-no">frame 1 / {frames}'
            f'</span></div><div class="legend">joint displacement <span class="lo">0 mm</span>'
            f'<canvas class="legend-bar" width="160" height="10"></canvas><span class="hi">'
            f"</span> · grey: clean</div>{_labels(clip)}</figure>")


def _clips(clips: Sequence[dict[str, Any]]) -> str:
    if not clips:
        return ('<p class="note">No clip: no cell of the sweep saved its adversarial motion '
                "(artifacts/*.npz).</p>")
    indexed = list(enumerate(clips))
    parts = []
    for (attack, goal), members in group(indexed, lambda p: (p[1]["attack"], p[1]["goal"])).items():
        title = f"{attack} ({goal})" if goal else attack
        figures = "\n".join(_clip_figure(i, c) for i, c in members)
        parts.append(f'<h3>{escape(title)}</h3><div class="clips">\n{figures}\n</div>')
    return "\n".join(parts)


def render_html(title: str, summary: str, tables: Sequence[Table], plots: Sequence[Plot],
                clips: Sequence[dict[str, Any]], digits: int = 1, folder: str = "report") -> str:
    """The whole page. ``folder``: where the table and plot files lie, relative to the page
    (linked, never loaded)."""
    sections = [("tables", "Tables", _tables(tables, digits, folder)),
                ("plots", "Plots", _plots(plots, folder)),
                ("clips", "Clean vs adversarial motion", _clips(clips))]
    nav = " ".join(f'<a href="#{key}">{name}</a>' for key, name, _ in sections)
    body = "\n".join(f'<section id="{key}"><h2>{name}</h2>\n{html}\n</section>'
                     for key, name, html in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<link rel="icon" href="data:,">
<title>{escape(title)}</title>
<style>
{_asset("report.css")}
</style>
</head>
<body>
<header><h1>{escape(title)}</h1><p class="summary">{escape(summary)}</p><nav>{nav}</nav></header>
<main>
{body}
</main>
<script type="application/json" id="skelrobust-clips">{_script_json(list(clips))}</script>
<script>
{_asset("viewer.js")}
</script>
</body>
</html>
"""
