"""The HTML report under ``build/``: one page per executed notebook and an index with every result.

``build/index.html`` links each executed notebook (``build/html/<stem>.html``) and shows a table of
every value recorded through :mod:`ytrec_lib.report`.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from ytrec_lib import report

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.value { font-family: monospace; white-space: pre-wrap; }
"""


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_notebook_page(build: Path, stem: str) -> Path:
    """Render ``build/notebooks/<stem>.ipynb`` to ``build/html/<stem>.html``."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(build / "notebooks" / f"{stem}.ipynb", as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    out = build / "html" / f"{stem}.html"
    _write_text(out, body)
    return out


def format_value(value: Any) -> str:
    """A result value as short readable text (floats to 4 significant digits, mappings as JSON)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def index_html(results: dict[str, dict[str, Any]], pages: list[str]) -> str:
    """The index page: links to the executed notebooks, then one results table per notebook."""
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>ytrec — results</title>",
             f"<style>{_STYLE}</style></head><body>",
             "<h1>ytrec — executed notebooks and their recorded results</h1>",
             "<h2>Notebooks</h2><ul>"]
    for stem in pages:
        parts.append(f"<li><a href='html/{html.escape(stem)}.html'>{html.escape(stem)}</a></li>")
    parts.append("</ul><h2>Recorded results</h2>")
    if not results:
        parts.append("<p>No results recorded yet.</p>")
    for stem, values in results.items():
        parts.append(f"<h3>{html.escape(stem)}</h3><table><tr><th>key</th><th>value</th></tr>")
        for key, value in values.items():
            parts.append(f"<tr><td>{html.escape(key)}</td>"
                         f"<td class='value'>{html.escape(format_value(value))}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_index(build: Path) -> Path:
    """Write ``build/index.html`` from the pages and results present in ``build``."""
    pages = sorted(p.stem for p in (build / "html").glob("*.html"))
    out = build / "index.html"
    _write_text(out, index_html(report.load_all(build / "results"), pages))
    return out
