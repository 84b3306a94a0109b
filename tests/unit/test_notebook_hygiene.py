"""Committed notebooks carry no outputs and no execution counts, and follow the skeleton."""

from __future__ import annotations

import nbformat
import pytest

from ytrec_lib import course
from ytrec_lib.course import notebooks, runner

NOTEBOOKS = runner.list_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped(path):
    assert notebooks.dirty_cells(path) == [], f"run `make clean-notebooks` before committing {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_skeleton(path):
    params = runner.notebook_parameters(path)
    assert {"PRESET", "SEED"} <= set(params), f"{path.name}: parameters cell must define PRESET and SEED"
    assert params["PRESET"] == runner.DEFAULT_PRESET
    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
    assert f'report.use_notebook("{path.stem}")' in source
    assert "## Summary" in source and "## Exercises" in source and "## References" in source


def test_strip_removes_outputs(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1 + 1")
    cell.execution_count = 3
    cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=3)]
    nb.cells = [cell]
    nbformat.write(nb, tmp_path / "00_x.ipynb")
    assert notebooks.dirty_cells(tmp_path / "00_x.ipynb") == [0]
    assert notebooks.strip_all(tmp_path) == ["00_x"]
    assert notebooks.dirty_cells(tmp_path / "00_x.ipynb") == []


def test_course_map_names_modules_that_exist():
    """Every module the course map (notebook 00, README) names is a real module of ytrec_lib."""
    import importlib

    from ytrec_lib import course

    for chapter in course.CHAPTERS:
        for name in (m.strip() for m in chapter.modules.split(",")):
            importlib.import_module(f"ytrec_lib.{name}")  # ModuleNotFoundError names the missing one


def test_course_map_lists_every_notebook_on_disk():
    mapped = {c.stem for c in course.CHAPTERS}
    assert {p.stem for p in NOTEBOOKS} <= mapped


MAX_CELL_LINES = 25
"""A code cell holds the few lines worth reading; anything longer belongs in ytrec_lib."""


def code_cell_lengths(path) -> list[tuple[int, int]]:
    """``(cell index, non-blank lines)`` of every code cell of the notebook at ``path``."""
    cells = nbformat.read(path, as_version=4).cells
    return [(i, sum(1 for ln in c.source.splitlines() if ln.strip()))
            for i, c in enumerate(cells) if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_are_short(path):
    long = [(i, n) for i, n in code_cell_lengths(path) if n > MAX_CELL_LINES]
    assert not long, (f"{path.name}: code cells over {MAX_CELL_LINES} non-blank lines (cell, lines): {long}; "
                      "move the logic into ytrec_lib")


def test_cell_length_counts_non_blank_lines(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("x\n" * 40), nbformat.v4.new_code_cell("a = 1\n\n  \nb = 2\n")]
    nbformat.write(nb, tmp_path / "00_x.ipynb")
    assert code_cell_lengths(tmp_path / "00_x.ipynb") == [(1, 2)]


def test_no_notebook_points_outside_the_repository():
    for path in NOTEBOOKS:
        text = path.read_text()
        assert "shared/seed" not in text and "../shared" not in text, f"{path.name} cites a path outside"
