"""Executed notebooks carry no warning blocks (no stderr output mentioning a warning), and every
figure they display is an image, not the text ``<Figure size ...>``.

The test reads the executed copies the ``notebook_results`` fixture leaves in ``<build>/notebooks``
(each notebook runs once per session; the notebook tests before this file have run them already).
By hand, on any folder of executed notebooks::

    python tests/notebooks/test_no_warnings.py build/notebooks
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat
import pytest

from ytrec_lib import progress
from ytrec_lib.course import runner

WARNING_RE = re.compile(r"warning", re.IGNORECASE)


def warning_outputs(executed: Path) -> list[str]:
    """One line per stderr stream of ``executed`` that mentions a warning:
    ``<notebook> cell In [n] (<first source line>): <first warning line>``.

    Progress bar lines (text bars write to stderr) are not warnings, whatever their description says.
    """
    nb = nbformat.read(executed, as_version=4)
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            is_stderr = out.get("output_type") == "stream" and out.get("name") == "stderr"
            text = out.get("text", "") if is_stderr else ""
            warned = [ln for ln in text.splitlines()
                      if WARNING_RE.search(ln) and not progress.is_progress_line(ln)]
            if not warned:
                continue
            line = warned[0]
            source = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
            count = cell.get("execution_count") or f"#{index}"
            found.append(f"{executed.stem} cell In [{count}] ({source[:60]!r}): {line.strip()[:200]}")
    return found


def text_only_figures(executed: Path) -> list[str]:
    """One line per displayed output of ``executed`` that is a matplotlib figure shown only as its text
    (``<Figure size ...>``, no image): ``<notebook> cell In [n] (<first source line>)``."""
    nb = nbformat.read(executed, as_version=4)
    found = []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {})
            as_text = str(data.get("text/plain", "")).startswith("<Figure size")
            if as_text and "image/png" not in data:
                source = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
                count = cell.get("execution_count") or f"#{index}"
                found.append(f"{executed.stem} cell In [{count}] ({source[:60]!r})")
    return found


def _plot_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and ast.unparse(node.func).startswith("plots.")


def _shows_a_plot(source: str) -> bool:
    """Whether a cell means to show a figure: a top-level ``display(plots.f(...))`` anywhere, or a last
    statement ``plots.f(...)``."""
    code = "\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!")))
    try:
        body = ast.parse(code).body
    except SyntaxError:
        return False
    calls = [s.value for s in body if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)]
    displayed = any(ast.unparse(c.func) == "display" and c.args and _plot_call(c.args[0]) for c in calls)
    last = body[-1] if body else None
    return displayed or (isinstance(last, ast.Expr) and _plot_call(last.value))


def figures_not_shown(executed: Path) -> list[str]:
    """One line per code cell of ``executed`` that ends in a call of a ``plots`` function yet shows no
    image (a figure function that returned None, e.g.): ``<notebook> cell In [n] (<first source line>)``."""
    nb = nbformat.read(executed, as_version=4)
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not _shows_a_plot(cell.source):
            continue
        if not any("image/png" in out.get("data", {}) for out in cell.get("outputs", [])):
            source = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
            found.append(f"{executed.stem} cell In [{cell.get('execution_count') or f'#{index}'}] "
                         f"({source[:60]!r})")
    return found


@pytest.mark.parametrize("path", runner.list_notebooks(), ids=lambda p: p.stem)
def test_executed_notebook_shows_figures_as_images(path, notebook_results, notebook_build):
    notebook_results(path.stem)  # runs it at the ci preset unless this session already has
    executed = notebook_build / "notebooks" / f"{path.stem}.ipynb"
    lost = figures_not_shown(executed)
    assert not lost, "cells that call a plots function show no image:\n" + "\n".join(lost)
    found = text_only_figures(executed)
    assert not found, "figures shown as text, not images (add %matplotlib inline?):\n" + "\n".join(found)


def test_text_only_figures_finds_a_figure_without_an_image(tmp_path):
    nb = nbformat.v4.new_notebook()
    shown = nbformat.v4.new_code_cell("display(fig)", execution_count=2)
    figure = "<Figure size 640x480 with 1 Axes>"
    shown.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": figure, "image/png": "iV"})]
    lost = nbformat.v4.new_code_cell("display(fig2)", execution_count=3)
    lost.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": figure})]
    nb.cells = [shown, lost]
    nbformat.write(nb, tmp_path / "06_demo.ipynb")
    assert text_only_figures(tmp_path / "06_demo.ipynb") == ["06_demo cell In [3] ('display(fig2)')"]


def test_figures_not_shown_finds_a_plot_call_without_an_image(tmp_path):
    nb = nbformat.v4.new_notebook()
    shown = nbformat.v4.new_code_cell("%matplotlib inline\nx = 1\ndisplay(plots.curve(x))", execution_count=1)
    shown.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iV"})]
    lost = nbformat.v4.new_code_cell("curves = {}\nplots.softmax_time_curves(curves)", execution_count=2)
    mid = nbformat.v4.new_code_cell("display(plots.curve(2))\nprint('then text')", execution_count=4)
    mid.outputs = [nbformat.v4.new_output("stream", name="stdout", text="then text\n")]
    lost.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a line\n")]
    no_plot = nbformat.v4.new_code_cell("fig = plots.curve(1)\nprint('saved')", execution_count=3)
    nb.cells = [shown, lost, no_plot, mid]
    nbformat.write(nb, tmp_path / "03_demo.ipynb")
    assert figures_not_shown(tmp_path / "03_demo.ipynb") == [
        "03_demo cell In [2] ('curves = {}')", "03_demo cell In [4] ('display(plots.curve(2))')"]


@pytest.mark.parametrize("path", runner.list_notebooks(), ids=lambda p: p.stem)
def test_executed_notebook_has_no_warnings(path, notebook_results, notebook_build):
    notebook_results(path.stem)  # runs it at the ci preset unless this session already has
    found = warning_outputs(notebook_build / "notebooks" / f"{path.stem}.ipynb")
    assert not found, "warnings in the executed notebook:\n" + "\n".join(found)


def test_warning_outputs_names_cell_and_line(tmp_path):
    nb = nbformat.v4.new_notebook()
    quiet = nbformat.v4.new_code_cell("print('ok')")
    quiet.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a warning on stdout is text\n"),
                     nbformat.v4.new_output("stream", name="stderr", text="progress 10/10\n")]
    noisy = nbformat.v4.new_code_cell("\nx = torch.from_numpy(a)\n", execution_count=7)
    noisy.outputs = [nbformat.v4.new_output(
        "stream", name="stderr", text="/x/y.py:3: UserWarning: The given NumPy array is not writable\n  x\n")]
    nb.cells = [quiet, noisy]
    path = tmp_path / "06_demo.ipynb"
    nbformat.write(nb, path)
    assert warning_outputs(path) == [
        "06_demo cell In [7] ('x = torch.from_numpy(a)'): "
        "/x/y.py:3: UserWarning: The given NumPy array is not writable"]


def test_warning_outputs_skips_progress_bars_but_not_warnings_beside_them(tmp_path):
    nb = nbformat.v4.new_notebook()
    bars = nbformat.v4.new_code_cell("fit()", execution_count=1)
    bars.outputs = [nbformat.v4.new_output("stream", name="stderr", text=(
        "warmup warnings: 100%|##########| 3/3 [00:42<00:00, 14.00s/it]\n"
        "warning-free epochs: 5it [00:01, 3.21it/s]\n"))]
    both = nbformat.v4.new_code_cell("fit(lr=9)", execution_count=2)
    both.outputs = [nbformat.v4.new_output("stream", name="stderr", text=(
        "skip warnings: 100%|##########| 2/2 [00:01<00:00, 1.90it/s]\n"
        "/x/train.py:8: RuntimeWarning: overflow encountered in exp\n"))]
    nb.cells = [bars, both]
    path = tmp_path / "03_demo.ipynb"
    nbformat.write(nb, path)
    assert warning_outputs(path) == [
        "03_demo cell In [2] ('fit(lr=9)'): /x/train.py:8: RuntimeWarning: overflow encountered in exp"]


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "build/notebooks")
    lines = [line for nb in runner.list_notebooks(folder) for line in warning_outputs(nb)]
    print("\n".join(lines) or f"no warnings in {folder}")
    sys.exit(1 if lines else 0)
