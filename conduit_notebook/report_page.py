"""The HTML report's page: its style sheet (desktop, a 390 px phone, dark mode, print and PDF),
the document around the sections, the embedded plots and the glossaries. What the sections say
is :mod:`conduit_notebook.report`'s.

On a desktop the plots are shown at their own size, one under the other (two side by side
from 1,500 px), so their labels are never scaled down; on a phone they shrink to the screen and
tables scroll sideways inside their own box. Printed (or saved as PDF from a browser), the
page is A4 landscape with smaller type, so that every column of the cost tables fits, and the
glossaries are open.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from . import metrics

__all__ = ["PLOT_DPI", "REPORT_CSS", "glossary_html", "page_html", "png_html"]

#: Dots per inch of the embedded plots; the CSS shows them at this size (a 8 in plot: 720 px).
PLOT_DPI = 90

REPORT_CSS = """
:root { color-scheme: light dark; --ink: #222; --muted: #666; --paper: #fff; --card: #f6f8fa; --rule: #e5e5e5; }
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px auto; padding: 0 16px;
       max-width: 1360px; color: var(--ink); background: var(--paper); }
h1 { margin-bottom: 4px; } h2 { border-bottom: 2px solid var(--rule); padding-bottom: 4px; margin-top: 36px; }
.meta { color: var(--muted); } .cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 16px 0; }
.card { background: var(--card); border-radius: 6px; padding: 10px 16px; min-width: 130px; }
.card b { display: block; font-size: 22px; } table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; white-space: normal; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.wide-first th:first-child, .wide-first td:first-child { min-width: 300px; }
.grid { display: block; } .note { color: var(--muted); font-size: 13px; }
@media (min-width: 1500px) {
  body { max-width: 1480px; } .grid { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
}
@media (max-width: 700px) {
  body { margin: 8px auto; padding: 0 8px; font-size: 15px; } h1 { font-size: 22px; } h2 { font-size: 18px; }
  .cards { gap: 8px; } .card { min-width: 0; flex: 1 1 40%; padding: 8px 10px; } .card b { font-size: 18px; }
  table { font-size: 12px; } th, td { padding: 3px 6px; }
  .wide-first th:first-child, .wide-first td:first-child { min-width: 0; }
}
@media (prefers-color-scheme: dark) {
  :root { --ink: #e6e6e6; --muted: #a8a8a8; --paper: #16181c; --card: #23262d; --rule: #33363d; }
  a { color: #8ab4f8; }
  img { background: #fff; border-radius: 4px; }  /* the plots are drawn on white */
}
@page { size: A4 landscape; margin: 10mm; }
@media print {
  :root { --ink: #000; --muted: #444; --paper: #fff; --card: #f3f3f3; --rule: #ccc; }
  body { max-width: none; margin: 0; padding: 0; font-size: 11px; }
  h2 { margin-top: 18px; break-after: avoid; } table { font-size: 9px; } th, td { padding: 2px 4px; }
  div[style*='overflow-x'] { overflow: visible !important; }
  .wide-first th:first-child, .wide-first td:first-child { min-width: 0; }
  img { max-width: 100%; break-inside: avoid; } .card { min-width: 0; padding: 6px 10px; }
  details::details-content { content-visibility: visible; display: block; }
  details > summary { list-style: none; }
}
"""

#: Opens every glossary before printing, where the browser has no ``::details-content``.
_OPEN_FOR_PRINT = ("<script>addEventListener('beforeprint',()=>document.querySelectorAll('details')"
                   ".forEach(d=>d.open=true));</script>")


def page_html(title: str, parts: list[str]) -> str:
    """The whole document: head (viewport, colour schemes, style) and the sections."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<meta name='color-scheme' content='light dark'>"
            f"<title>{html.escape(title)}</title><style>{REPORT_CSS}</style></head>"
            f"<body>{''.join(parts)}{_OPEN_FOR_PRINT}</body></html>")


def png_html(draw: Any, figsize: tuple[float, float] = (8, 4.2)) -> str:
    """A plot drawn by ``draw(ax)`` as an embedded PNG, shown at its own size (``width`` set:
    a desktop browser does not scale it; a narrow screen shrinks it)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    try:
        draw(ax)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=PLOT_DPI)
    finally:
        plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    width, height = round(figsize[0] * PLOT_DPI), round(figsize[1] * PLOT_DPI)
    return f"<img alt='plot' width='{width}' height='{height}' src='data:image/png;base64,{data}'>"


def glossary_html(names: list[str]) -> str:
    """What the named columns mean (a collapsed list on screen, open in print)."""
    rows = "".join(f"<tr><td><code>{html.escape(n)}</code></td><td style='text-align:left;white-space:normal'>"
                   f"{html.escape(metrics.GLOSSARY[n])}</td></tr>" for n in names if n in metrics.GLOSSARY)
    return f"<details><summary class='note'>What the columns mean</summary><table>{rows}</table></details>"
