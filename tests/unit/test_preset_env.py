"""``YTREC_PRESET`` sets every notebook's default preset; the runner reads it; ``make lab`` passes it on."""

from __future__ import annotations

import os
import shutil
import subprocess

import nbformat
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from ytrec_lib import course
from ytrec_lib.course import runner

NOTEBOOKS = runner.list_notebooks()


def parameters_cell(path) -> str:
    return next(c.source for c in nbformat.read(path, as_version=4).cells
                if "parameters" in c.metadata.get("tags", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runner_reads_the_preset_default_from_the_environment(path, monkeypatch):
    monkeypatch.delenv(course.PRESET_ENV, raising=False)
    assert runner.notebook_parameters(path)["PRESET"] == runner.DEFAULT_PRESET == course.DEFAULT_PRESET
    monkeypatch.setenv(course.PRESET_ENV, "ci")
    assert runner.notebook_parameters(path)["PRESET"] == "ci"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_takes_its_preset_from_the_environment(path, monkeypatch):
    monkeypatch.setenv(course.PRESET_ENV, "ci")
    names: dict = {}
    exec(parameters_cell(path), names)  # noqa: S102 - the notebook's own parameters cell
    assert names["PRESET"] == "ci"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_injected_parameters_still_win(path, monkeypatch):
    """Papermill's injected cell follows the parameters cell, so ``--preset tiny`` beats ``YTREC_PRESET``."""
    monkeypatch.setenv(course.PRESET_ENV, "ci")
    nb = parameterize_notebook(load_notebook_node(str(path)), {"PRESET": "tiny"})  # as papermill reads it
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    start = next(i for i, t in enumerate(tags) if "parameters" in t)
    assert "injected-parameters" in tags[start + 1]
    names: dict = {}
    for cell in nb.cells[start:start + 2]:
        exec(cell.source, names)  # noqa: S102
    assert names["PRESET"] == "tiny"


def test_unknown_preset_is_one_clear_line(monkeypatch):
    monkeypatch.setenv(course.PRESET_ENV, "huge")
    known = r"^YTREC_PRESET='huge' is not a known preset; choose from: tiny, ci, small, large"
    with pytest.raises(ValueError, match=known) as err:
        course.default_preset()
    assert "\n" not in str(err.value)
    with pytest.raises(runner.RunError, match="YTREC_PRESET='huge' is not a known preset"):
        runner.notebook_parameters(NOTEBOOKS[0])


def test_unknown_preset_stops_the_runner_before_any_kernel(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv(course.PRESET_ENV, "huge")
    assert runner.run_notebooks("tiny", only=["00"], build=tmp_path / "build", html=False) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: 00_overview.ipynb: YTREC_PRESET='huge' is not a known preset; choose from")
    assert not (tmp_path / "build").exists()


def test_empty_preset_variable_means_the_default(monkeypatch):
    monkeypatch.setenv(course.PRESET_ENV, " ")
    assert course.default_preset() == course.DEFAULT_PRESET


def make_lab_dry_run(*args: str) -> str:
    root = runner.NOTEBOOK_DIR.parent
    done = subprocess.run(["make", "-n", "-C", str(root), "lab", *args], capture_output=True, text=True,
                          check=True, env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")})
    return next(line for line in done.stdout.splitlines() if "jupyter lab" in line and "echo" not in line)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_allows_root_only_as_root():
    as_root = make_lab_dry_run("LAB_UID=0", "PRESET=ci", "LAB_ARGS=--port 9999 --no-browser")
    assert as_root.startswith("YTREC_PRESET=ci ") and "--allow-root" in as_root
    assert as_root.endswith("--port 9999 --no-browser notebooks/")
    as_user = make_lab_dry_run("LAB_UID=1000")
    assert as_user.startswith(f"YTREC_PRESET={runner.DEFAULT_PRESET} ") and "--allow-root" not in as_user
    assert ("--allow-root" in make_lab_dry_run()) == (os.getuid() == 0)  # the real user id
