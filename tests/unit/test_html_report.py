"""The HTML report: readable values, summaries, figures, widget snapshots, and pages that work offline
(checked in headless Chromium when Playwright and Chromium are installed)."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from ytrec_lib.course import html_report, runner

CHROMIUM = "/usr/bin/chromium"
STATE = {
    "box": {"model_name": "VBoxModel",
            "state": {"children": ["IPY_MODEL_user", "IPY_MODEL_k", "IPY_MODEL_out"]}},
    "user": {"model_name": "DropdownModel",
             "state": {"description": "user", "_options_labels": ["7", "12"], "index": 1}},
    "k": {"model_name": "IntSliderModel", "state": {"description": "k", "value": 9}},
    "out": {"model_name": "HTMLModel",
            "state": {"value": "<table><tr><td>Cooking · Ep. 3</td></tr></table>"}},
}


def png_bytes() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([1, 3, 2])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def executed_notebook() -> nbformat.NotebookNode:
    """An executed notebook as papermill leaves one: a figure, an explorer, a Summary section."""
    import base64

    v4 = nbformat.v4
    figure = v4.new_output("display_data", data={"image/png": base64.b64encode(png_bytes()).decode(),
                                                  "text/plain": "<Figure>"})
    ref = {"model_id": "box", "version_major": 2, "version_minor": 0}
    view = v4.new_output("display_data", data={html_report.WIDGET_VIEW: ref, "text/plain": "VBox(...)"})
    printed = v4.new_output("stream", name="stdout", text="- Recall 0.23 against 0.07.\n- It holds.\n")
    nb = v4.new_notebook(cells=[
        v4.new_markdown_cell("# 09 · A test notebook\n\nThe loss $L = -\\log p$ of [the paper](https://arxiv.org/)."),
        v4.new_markdown_cell("## 1. A figure"),
        v4.new_code_cell("plot()", outputs=[figure]),
        v4.new_markdown_cell("## 2. The explorer"),
        v4.new_code_cell("explorer()", outputs=[view]),
        v4.new_markdown_cell("## Summary\n\nWhat it showed:"),
        v4.new_code_cell("print(...)", outputs=[printed]),
        v4.new_markdown_cell("## Exercises\n\n1. Not part of the summary."),
    ])
    saved = {"state": STATE, "version_major": 2, "version_minor": 0}
    nb.metadata["widgets"] = {html_report.WIDGET_STATE: saved}
    return nb


@pytest.fixture
def build(tmp_path) -> Path:
    """A build folder holding one executed notebook, its results and its run record; report written."""
    build = tmp_path / "build"
    (build / "notebooks").mkdir(parents=True)
    nbformat.write(executed_notebook(), build / "notebooks" / "09_test.ipynb")
    (build / "results").mkdir()
    (build / "results" / "09_test.json").write_text(json.dumps({
        "recall@100": 0.22740740740740742, "n_users": 3000, "by_alpha": {"0.75": 3.6334169999999997},
        "sweep": [{"nprobe": 1, "recall": 0.51234}, {"nprobe": 8, "recall": 0.9}]}))
    runner.write_run_info(build / "results", "09_test", "ci", {"PRESET": "ci"}, 12.34)
    html_report.write_notebook_page(build, "09_test")
    html_report.write_index(build)
    return build


def test_numbers_are_rounded_for_people():
    assert [html_report.format_number(v) for v in (3.6334169999999997, 0.08946123, 428550.1, 2.842e-14, 3000,
                                                   0.0, True)] == ["3.633", "0.08946", "428,550", "2.842e-14",
                                                                   "3,000", "0", "True"]
    assert html_report.format_value({"a": [0.123456, 2]}) == '{"a": [0.1235, 2]}'


def test_nested_results_become_sub_tables():
    sweep = [{"nprobe": 1, "recall": 0.51234}, {"nprobe": 8, "recall": 0.9}]
    table = html_report.results_table({"by_alpha": {"0.75": 3.6334169999999997}, "sweep": sweep,
                                       "ctr": [0.1856, 0.09901], "name<x>": "a&b"})
    assert "3.633<" in table and "3.6334" not in table
    assert table.count("<table>") == 3  # the results, by_alpha, sweep
    assert "<th>nprobe</th><th>recall</th>" in table and "0.5123" in table
    assert "0.1856, 0.09901" in table and "name&lt;x&gt;" in table and "a&amp;b" in table


def test_summary_is_the_summary_sections_prose_and_printed_lines():
    assert html_report.notebook_summary(executed_notebook()) == [
        "What it showed:", "Recall 0.23 against 0.07.", "It holds."]
    assert html_report.notebook_summary(nbformat.v4.new_notebook()) == []


def test_widget_snapshot_shows_the_last_state():
    html = html_report.widget_snapshot(STATE, "box")
    assert "<b>user</b>: 12" in html and "<b>k</b>: 9" in html and "Cooking · Ep. 3" in html
    nb = executed_notebook()
    assert html_report.snapshot_widgets(nb) == 1
    assert "widgets" not in nb.metadata
    data = nb.cells[4].outputs[0].data
    assert list(data) == ["text/html"] and "Cooking · Ep. 3" in data["text/html"]


def test_index_shows_run_summary_figures_and_tables(build):
    index = (build / "index.html").read_text()
    info = html_report.run_info(build, "09_test")
    assert info["preset"] == "ci" and f"commit <code>{info['commit']}</code>" in index
    assert "preset <b>ci</b>" in index and "run time 12.3 s" in index
    assert "<li>Recall 0.23 against 0.07.</li>" in index and "Not part of the summary" not in index
    assert "src='html/figures/09_test-1.png'" in index
    assert (build / "html" / "figures" / "09_test-1.png").read_bytes() == png_bytes()
    assert "0.2274" in index and "3,000" in index and "3.633<" in index
    assert "href='html/09_test.html'" in index


def test_pages_load_nothing_from_the_network_and_link_back(build):
    page = (build / "html" / "09_test.html").read_text()
    assert "href=\"../index.html\"" in page
    assert "Cooking · Ep. 3" in page and "<b>k</b>: 9" in page
    assert "https://arxiv.org/" in page  # a link in the text stays a link
    for doc in (page, (build / "index.html").read_text()):
        tag = r"<(?:script|link|img|iframe|source|embed|object)\b[^>]*"
        loaded = re.findall(tag + r"\b(?:src|href|data)\s*=\s*['\"]?(https?:|//)", doc, re.IGNORECASE)
        assert loaded == []
        assert not re.search(r"@import|url\(\s*['\"]?(https?:|//)", doc)


def test_figures_of_a_notebook_that_lost_some_are_removed(build):
    (build / "html" / "figures" / "09_test-7.png").write_bytes(b"old")
    html_report.write_index(build)
    assert sorted(p.name for p in (build / "html" / "figures").iterdir()) == ["09_test-1.png"]


def _browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("chromium is not installed")
    return playwright


def test_report_opens_offline_in_chromium_with_every_figure(build):
    playwright = _browser()
    outside: list[str] = []

    def route(r):
        url = r.request.url
        local = (url.startswith(("file:", "data:", "about:"))
                 or re.match(r"https?://(localhost|127\.0\.0\.1)[:/]", url))
        if not local:
            outside.append(url)
            return r.abort()
        return r.continue_()

    with playwright.sync_playwright() as p:
        executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
        browser = p.chromium.launch(executable_path=executable)
        try:
            page = browser.new_page()
            page.route("**/*", route)
            page.goto((build / "index.html").as_uri())
            page.wait_for_load_state("load")
            page.evaluate("Promise.all([...document.images].map(i => { i.loading = 'eager'; "
                          "return i.decode().catch(() => null); }))")
            widths = page.evaluate("[...document.images].map(i => i.naturalWidth)")
            assert len(widths) == 1 and all(w > 0 for w in widths)
            page.click("text=09_test >> nth=1")  # the section title links to the notebook page
            page.wait_for_load_state("load")
            assert page.url.endswith("html/09_test.html")
            assert "Cooking · Ep. 3" in page.inner_text("body")
            page.wait_for_function("[...document.images].every(i => i.complete)", timeout=10_000)
            assert page.evaluate("[...document.images].every(i => i.naturalWidth > 0)")
            page.click("text=all notebooks")
            assert page.url.endswith("/index.html")
        finally:
            browser.close()
    assert outside == []
