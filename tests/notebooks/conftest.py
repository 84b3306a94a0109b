"""Notebook tests: execute each notebook once per session at the ci preset, then assert on its results.

The notebooks run through the real runner (papermill + a kernel) into ``build/test`` (or
``$YTREC_TEST_BUILD_DIR``), so a test run does not overwrite what ``make run`` published.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ytrec_lib import report
from ytrec_lib.course import runner

TEST_PRESET = "ci"


@pytest.fixture(scope="session")
def notebook_build() -> Path:
    return Path(os.environ.get("YTREC_TEST_BUILD_DIR", report.REPO_ROOT / "build" / "test")).resolve()


@pytest.fixture(scope="session")
def notebook_results(notebook_build: Path) -> Callable[[str], dict[str, Any]]:
    """``notebook_results("03_candidate_generation")``: run it at the ci preset (once), return its results."""
    done: dict[str, dict[str, Any]] = {}

    def run(stem: str) -> dict[str, Any]:
        if stem not in done:
            status = runner.run_notebooks(TEST_PRESET, only=[stem], build=notebook_build, html=False)
            assert status == 0, f"{stem} failed at the {TEST_PRESET} preset (see the error above)"
            done[stem] = report.load(stem, notebook_build / "results")
        return done[stem]

    return run


@pytest.fixture(scope="session")
def notebook_printed(notebook_results: Callable[[str], dict[str, Any]], notebook_build: Path
                     ) -> Callable[[str], list[str]]:
    """``notebook_printed("03c_fresh_and_labels")``: every line the notebook printed (run as above)."""
    import nbformat

    def lines(stem: str) -> list[str]:
        notebook_results(stem)
        nb = nbformat.read(notebook_build / "notebooks" / f"{stem}.ipynb", as_version=4)
        return [line for cell in nb.cells for out in cell.get("outputs", [])
                for line in out.get("text", "").splitlines()]

    return lines
