"""The reports of recorded results: ``build/index.html``, the notebook pages and the README's results.

``build/index.html`` shows, per executed notebook: how it ran (preset, date, commit, run time, from
the run record :func:`ytrec_lib.course.runner.write_run_info` writes), its summary sentences, its figures and
its recorded results as tables. The summary is what the notebook's ``## Summary`` section shows: the
text its code cells print there and any prose under the heading (every notebook of the collection
prints its conclusions in that section from measured values). The figures are the PNG outputs of
the executed notebook, written to ``build/html/figures/`` and linked by relative paths.

The notebook pages ``build/html/<stem>.html`` are rendered by nbconvert from the executed copies
with nothing loaded from the network: no require.js, MathJax, Mermaid or widget-manager scripts
(formulas show as their TeX source), a link back to the index on top, and every widget output
replaced by a static snapshot rendered from the widget state saved in the executed notebook (the
HTML the explorer showed last, the values its controls had). Everything works from a file system,
offline. :func:`update_readme` writes the recorded values as Markdown between two marker comments
of a README.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import Any

from ytrec_lib import report
from ytrec_lib.data.cache import atomic_write_bytes, atomic_write_text, load_json

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
FIGURES_DIR = "figures"
"""Sub-folder of ``build/html`` holding the index's figures, ``<stem>-<n>.png``."""
SUMMARY_RE = re.compile(r"^#{1,2}\s+Summary\b", re.IGNORECASE)
HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72em; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h2 { border-top: 2px solid #ddd; padding-top: 1em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.3em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table table { margin: 0; font-size: 0.92em; }
.meta { color: #555; margin: 0.2em 0 0.8em; }
.summary { background: #f6f8fa; border-left: 4px solid #4a7bd0; padding: 0.5em 1em; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(20em, 1fr)); gap: 1em; }
figure { margin: 0; } figure img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
details > summary { cursor: pointer; font-weight: 600; margin: 0.5em 0; }
"""

_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block body_header -%}
{{ super() }}
<nav style="margin: 1em 2em"><a href="../index.html">&larr; all notebooks (build/index.html)</a></nav>
{%- endblock body_header -%}
"""
_SNAPSHOT_NOTE = ("<p style='font-size:0.85em;color:#666'>Static snapshot of the explorer as the run "
                  "left it; open the notebook in JupyterLab to move its controls.</p>")


# ----------------------------------------------------------------------------- numbers and values


def format_number(value: float | int) -> str:
    """A number for people: 4 significant digits, thousands separators, no float noise.

    ``3.6334169999999997`` -> ``3.633``; ``428550.1`` -> ``428,550``; ``2.842e-14`` stays.
    """
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if 1e4 <= abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def round_floats(value: Any) -> Any:
    """``value`` with every float rounded to 4 significant digits, at any depth."""
    if isinstance(value, float) and math.isfinite(value) and value != 0:
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: round_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [round_floats(v) for v in value]
    return value


def format_value(value: Any) -> str:
    """A result value as short readable text (numbers to 4 significant digits, nested values as JSON)."""
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, dict | list):
        return json.dumps(round_floats(value), default=str, ensure_ascii=False)
    return str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any) -> str:
    """A scalar as text: numbers through :func:`format_number`, None as a dash."""
    return format_number(value) if _is_number(value) else "—" if value is None else str(value)


def _scalar_html(value: Any) -> str:
    return f"<td{' class=num' if _is_number(value) else ''}>{html.escape(_text(value))}</td>"


def value_html(value: Any, depth: int = 0) -> str:
    """A result value as HTML: a scalar as text, a mapping as a key/value sub-table, a list of
    mappings with the same keys as a table with one column per key, a list of scalars as a list."""
    if _is_scalar(value):
        return html.escape(_text(value))
    if depth > 6:
        return html.escape(format_value(value))
    if isinstance(value, dict):
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th>{_cell(v, depth)}</tr>" for k, v in value.items())
        return f"<table>{rows}</table>"
    items = list(value)
    if items and all(isinstance(v, dict) for v in items) and len({tuple(v) for v in items}) == 1:
        keys = list(items[0])
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
        body = "".join("<tr>" + "".join(_cell(v[k], depth) for k in keys) + "</tr>" for v in items)
        return f"<table><tr>{head}</tr>{body}</table>"
    if all(_is_scalar(v) for v in items):
        return html.escape(", ".join(_text(v) for v in items))
    return "<ol>" + "".join(f"<li>{value_html(v, depth + 1)}</li>" for v in items) + "</ol>"


def _cell(value: Any, depth: int) -> str:
    return _scalar_html(value) if _is_scalar(value) else f"<td>{value_html(value, depth + 1)}</td>"


def results_table(values: dict[str, Any]) -> str:
    """One notebook's recorded results as a key/value table, nested values as sub-tables."""
    rows = "".join(f"<tr><th>{html.escape(k)}</th>{_cell(v, 0)}</tr>" for k, v in values.items())
    return f"<table><tr><th>result</th><th>value</th></tr>{rows}</table>"


# ----------------------------------------------------------------------------- executed notebooks


def _heading(cell: Any, max_level: int = 6) -> str | None:
    if cell.get("cell_type") != "markdown":
        return None
    match = HEADING_RE.search(cell.get("source", ""))
    return match.group(2) if match and len(match.group(1)) <= max_level else None


def notebook_summary(nb: Any) -> list[str]:
    """The lines a notebook's ``## Summary`` section shows: its prose and what its cells printed.

    The section runs from the heading to the next heading of level 1 or 2. Empty when there is none.
    """
    lines: list[str] = []
    inside = False
    for cell in nb.cells:
        text = cell.get("source", "") if cell.get("cell_type") == "markdown" else ""
        if text and SUMMARY_RE.match(text.lstrip()):
            inside = True
            text = text.lstrip().split("\n", 1)[1] if "\n" in text.lstrip() else ""
        elif inside and _heading(cell, max_level=2):
            break
        if not inside:
            continue
        lines += text.splitlines()
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                lines += "".join(out.get("text", "")).splitlines()
    return [re.sub(r"^\s*[-*]\s+", "", ln).strip() for ln in lines if ln.strip()]


def notebook_figures(nb: Any) -> list[tuple[str, bytes]]:
    """The PNG figures of an executed notebook, in order, each with its section heading."""
    figures: list[tuple[str, bytes]] = []
    section = ""
    for cell in nb.cells:
        section = _heading(cell, max_level=3) or section
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                figures.append((section, base64.b64decode("".join(png))))
    return figures


def write_figures(build: Path, stem: str, figures: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
    """Write ``build/html/figures/<stem>-<n>.png``; drop that notebook's older figures.

    Returns ``(caption, path relative to build)`` for each figure.
    """
    folder = build / "html" / FIGURES_DIR
    written = []
    for n, (caption, data) in enumerate(figures, start=1):
        name = f"{stem}-{n}.png"
        path = folder / name
        if not path.exists() or path.read_bytes() != data:
            atomic_write_bytes(path, data)
        written.append((caption, f"html/{FIGURES_DIR}/{name}"))
    for old in folder.glob(f"{stem}-*.png") if folder.exists() else []:
        if old.name not in {Path(rel).name for _, rel in written}:
            old.unlink(missing_ok=True)
    return written


# ----------------------------------------------------------------------------- widget snapshots


def _model_ref(value: Any) -> str | None:
    return value[len("IPY_MODEL_"):] if isinstance(value, str) and value.startswith("IPY_MODEL_") else None


def _output_html(out: dict[str, Any]) -> str:
    """One saved output of an Output widget as static HTML."""
    if out.get("output_type") == "stream":
        return f"<pre>{html.escape(''.join(out.get('text', '')))}</pre>"
    data = out.get("data", {})
    if "text/html" in data:
        return "".join(data["text/html"])
    if "image/png" in data:
        return f"<img alt='figure' src='data:image/png;base64,{''.join(data['image/png']).strip()}'>"
    if "text/plain" in data:
        return f"<pre>{html.escape(''.join(data['text/plain']))}</pre>"
    return ""


def widget_snapshot(states: dict[str, Any], model_id: str, depth: int = 0) -> str:
    """Static HTML of widget ``model_id`` from saved widget ``states`` (ipywidgets' state format).

    Boxes lay out their children, HTML and Label widgets show their value, Output widgets their
    outputs, progress bars a ``<progress>``, and controls ``description: value``. Unknown widgets
    render as nothing.
    """
    entry = states.get(model_id)
    if entry is None or depth > 20:
        return ""
    name, state = entry.get("model_name", ""), entry.get("state", {})
    label = html.escape(str(state.get("description", "") or ""))
    if "children" in state:
        flow = "row" if name in ("HBoxModel", "GridBoxModel") else "column"
        inner = "".join(widget_snapshot(states, ref, depth + 1)
                        for ref in map(_model_ref, state["children"]) if ref)
        return f"<div style='display:flex;flex-direction:{flow};gap:0.8em;flex-wrap:wrap'>{inner}</div>"
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{label + ' ' if label else ''}{state.get('value', '')}</div>"
    if name == "LabelModel":
        return f"<div>{html.escape(str(state.get('value', '')))}</div>"
    if name == "OutputModel":
        return "<div>" + "".join(_output_html(o) for o in state.get("outputs", [])) + "</div>"
    if name.endswith("ProgressModel"):
        return f"<progress value='{state.get('value', 0)}' max='{state.get('max', 100)}'></progress>"
    if "_options_labels" in state and state.get("index") is not None:
        index = state["index"]
        chosen = ([state["_options_labels"][i] for i in index] if isinstance(index, list)
                  else state["_options_labels"][index])
        return f"<div><b>{label or 'choice'}</b>: {html.escape(str(chosen))}</div>"
    if "value" in state and (_is_scalar(state["value"]) or isinstance(state["value"], list)):
        shown = state["value"]
        text = ", ".join(map(_text, shown)) if isinstance(shown, list) else _text(shown)
        return f"<div><b>{label or name.removesuffix('Model')}</b>: {html.escape(text)}</div>"
    return ""


def snapshot_widgets(nb: Any) -> int:
    """Replace every widget view in ``nb`` by its static snapshot (``text/html``) and drop the saved
    widget state, so nbconvert adds no widget-manager script. Returns the number of views replaced."""
    saved = nb.metadata.pop("widgets", {}) or {}
    states = saved.get(WIDGET_STATE, {}).get("state", {})
    replaced = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if not view:
                continue
            snapshot = widget_snapshot(states, view.get("model_id", ""))
            controls = re.search(r"<b>", snapshot) is not None
            out["data"] = {"text/html": (snapshot + (_SNAPSHOT_NOTE if controls else "")) if snapshot else
                           f"<pre>{html.escape(''.join(out['data'].get('text/plain', '')))}</pre>"}
            replaced += 1
    return replaced


# ----------------------------------------------------------------------------- pages


def offline_exporter() -> Any:
    """nbconvert's ``lab`` HTML exporter without any script from the network, with a link back."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"ytrec.html.j2": _OFFLINE_TEMPLATE})],
                        template_file="ytrec.html.j2")


def write_notebook_page(build: Path, stem: str) -> Path:
    """Render ``build/notebooks/<stem>.ipynb`` to ``build/html/<stem>.html`` (offline, see module doc)."""
    import nbformat

    nb = nbformat.read(build / "notebooks" / f"{stem}.ipynb", as_version=4)
    snapshot_widgets(nb)
    body, _ = offline_exporter().from_notebook_node(nb, resources={"metadata": {"name": stem}})
    out = build / "html" / f"{stem}.html"
    atomic_write_text(out, body)
    return out


def run_info(build: Path, stem: str) -> dict[str, Any]:
    """The run record of ``stem`` (see :func:`ytrec_lib.course.runner.write_run_info`); empty when missing."""
    from ytrec_lib.course.runner import RUN_INFO_DIR

    path = build / "results" / RUN_INFO_DIR / f"{stem}.json"
    try:
        info = load_json(path, "run record") if path.exists() else {}
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _meta_line(info: dict[str, Any]) -> str:
    if not info:
        return "<p class='meta'>How it ran is not recorded (not run by <code>run-notebooks</code>).</p>"
    finished = str(info.get("finished", "?")).replace("T", " ").replace("+00:00", " UTC")
    seconds = info.get("seconds")
    took = f"{format_number(float(seconds))} s" if isinstance(seconds, int | float) else "?"
    commit = html.escape(str(info.get("commit", "not recorded")))
    return (f"<p class='meta'>preset <b>{html.escape(str(info.get('preset', '?')))}</b> · finished "
            f"{html.escape(finished)} · commit <code>{commit}</code> · run time {took}</p>")


def notebook_section(stem: str, page: bool, info: dict[str, Any], summary: list[str],
                     figures: list[tuple[str, str]], values: dict[str, Any] | None) -> str:
    """The index's section of one notebook."""
    name = html.escape(stem)
    title = f"<a href='html/{name}.html'>{name}</a>" if page else name
    parts = [f"<h2 id='{name}'>{title}</h2>", _meta_line(info)]
    if summary:
        parts.append("<div class='summary'><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in summary)
                     + "</ul></div>")
    if figures:
        parts.append("<h3>Figures</h3><div class='figures'>" + "".join(
            f"<figure><a href='{html.escape(rel)}'><img src='{html.escape(rel)}' alt='{html.escape(cap)}' "
            f"loading='lazy'></a><figcaption>{html.escape(cap)}</figcaption></figure>"
            for cap, rel in figures) + "</div>")
    if values:
        parts.append(f"<details><summary>Recorded results ({len(values)})</summary>"
                     f"{results_table(values)}</details>")
    elif values is not None:
        parts.append("<p>No results recorded.</p>")
    return "\n".join(parts)


def index_html(results: dict[str, dict[str, Any]], pages: list[str],
               sections: dict[str, str] | None = None) -> str:
    """The index page: a contents list, then one section per notebook (``sections``, pre-rendered), or
    for notebooks without a section just their results table."""
    sections = sections or {}
    stems = sorted(set(pages) | set(results) | set(sections))
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             "<title>ytrec — executed notebooks</title>", f"<style>{_STYLE}</style></head><body>",
             "<h1>ytrec — executed notebooks, their summaries, figures and results</h1>"]
    if not stems:
        parts.append("<p>No notebooks run yet: <code>python -m ytrec_lib run-notebooks</code>.</p>")
    parts.append("<ul>" + "".join(f"<li><a href='#{html.escape(s)}'>{html.escape(s)}</a></li>" for s in stems)
                 + "</ul>")
    for stem in stems:
        section = sections.get(stem)
        parts.append(section or notebook_section(stem, stem in pages, {}, [], [], results.get(stem)))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_index(build: Path) -> Path:
    """Write ``build/index.html`` (and its figures) from what ``build`` holds."""
    import nbformat

    pages = sorted(p.stem for p in (build / "html").glob("*.html"))
    results = report.load_all(build / "results")
    sections = {}
    for path in sorted((build / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        figures = write_figures(build, path.stem, notebook_figures(nb))
        sections[path.stem] = notebook_section(path.stem, path.stem in pages, run_info(build, path.stem),
                                               notebook_summary(nb), figures, results.get(path.stem, {}))
    out = build / "index.html"
    atomic_write_text(out, index_html(results, pages, sections))
    return out


README_START = "<!-- results:start (generated by `python -m ytrec_lib update-readme`; do not edit) -->"
README_END = "<!-- results:end -->"


def results_markdown(results: dict[str, dict[str, Any]], preset: str, stems: list[str]) -> str:
    """The README's results section: one collapsible table per notebook in ``stems``, in order.

    A notebook without recorded results gets a line saying so, never invented values.
    """
    lines = [f"Recorded by the notebooks at the `{preset}` preset "
             "(`python -m ytrec_lib results --json` prints them all).", ""]
    for stem in stems:
        values = results.get(stem)
        if not values:
            lines += [f"* **{stem}** — no results recorded yet (notebook not built or not run).", ""]
            continue
        lines += [f"<details><summary><b>{stem}</b> — {len(values)} results</summary>", "",
                  "| key | value |", "|---|---|"]
        for key, value in values.items():
            text = format_value(value)
            text = (text[:200] + "…" if len(text) > 200 else text).replace("|", "\\|")
            lines.append(f"| `{key.replace('|', chr(92) + '|')}` | {text} |")
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def results_preset(folder: Path, stems: list[str], claimed: str | None = None) -> str:
    """The one preset the results of ``stems`` in ``folder`` were recorded at.

    Read from the run records ``run-notebooks`` writes beside the results (see
    :func:`ytrec_lib.course.runner.recorded_preset`). ``claimed`` (``update-readme --preset``) stands for
    notebooks whose preset was not recorded and must agree with those whose preset was. Raises
    ``ValueError`` saying which notebook ran at which preset when they differ, or when a preset is
    unknown and none is claimed.
    """
    from ytrec_lib.course import runner

    recorded, unknown = {}, {}
    for stem in stems:
        preset, why = runner.recorded_preset(folder, stem)
        if preset:
            recorded[stem] = preset
        else:
            unknown[stem] = why
    where = "; ".join(f"{stem} at {preset}" for stem, preset in recorded.items())
    if len(set(recorded.values())) > 1:
        raise ValueError(f"the results in {folder} were recorded at different presets ({where}); "
                         "re-run the notebooks at one preset, e.g. "
                         "`python -m ytrec_lib run-notebooks --preset ci`")
    if claimed and recorded and set(recorded.values()) != {claimed}:
        raise ValueError(f"--preset {claimed}, but the results in {folder} were recorded at another "
                         f"preset ({where}); drop --preset or re-run the notebooks at {claimed}")
    if unknown and not claimed:
        listed = "; ".join(f"{stem}: {why}" for stem, why in unknown.items())
        raise ValueError(f"the preset of some results in {folder} is {listed}; re-run those notebooks "
                         "with `python -m ytrec_lib run-notebooks --preset P --only NN`, or say which "
                         "preset they were recorded at with --preset P")
    return next(iter(recorded.values()), claimed or "")


def update_readme(readme: Path, section: str) -> bool:
    """Replace the text between the README's result markers with ``section``; True if it changed."""
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no results markers; add the lines {README_START!r} "
                         f"and {README_END!r}")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_START}\n{section}\n{README_END}{tail}"
    if new != text:
        atomic_write_text(readme, new)
    return new != text
