"""Notebook hygiene: committed notebooks carry no outputs and no execution counts."""

from __future__ import annotations

from pathlib import Path

import nbformat

from ytrec_lib.course.runner import list_notebooks


def dirty_cells(path: Path) -> list[int]:
    """Indices of the code cells of ``path`` that have outputs or an execution count."""
    nb = nbformat.read(path, as_version=4)
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]


def strip(path: Path) -> bool:
    """Remove outputs and execution counts from one notebook in place; True if it changed."""
    if not dirty_cells(path):
        return False
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, path)
    return True


def strip_all(folder: Path | None = None) -> list[str]:
    """Strip every notebook in ``folder``; the stems of those that changed."""
    return [p.stem for p in list_notebooks(folder) if strip(p)]
