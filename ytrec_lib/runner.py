"""Execute the notebooks in order, headless, and publish them with their results under ``build/``.

``python -m ytrec_lib run-notebooks [--preset P] [--only 03] [--param NAME=VALUE]`` ends here.
Each notebook runs in its own papermill process (so a per-notebook timeout can stop it and its
kernel), with its parameters injected into the cell tagged ``parameters``. It runs in a staging
folder; only a notebook that finished is copied into ``build/`` (executed notebook, results JSON,
HTML page), so a failure or a timeout leaves ``build/`` as it was.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from ytrec_lib import report

NOTEBOOK_DIR = report.REPO_ROOT / "notebooks"
DEFAULT_PRESET = "small"
DEFAULT_TIMEOUT_S = 1800
# Per-notebook wall-clock limits in seconds at the presets up to `small`; `large` gets 6 times more.
# 03 trains 20+ models (1,614 s at `small` in a fresh clone, pretraining included). 06 and 07 got an hour
# when they ran 1,243 s and past 1,800 s at `small`; their small-preset budgets have since brought them
# to 619 s and 587 s (fresh-clone `make run`, 2026-11-28), so the hour is headroom for slower machines.
TIMEOUT_S = {"00_overview": 300, "03_candidate_generation": 3600, "06_negative_sampling": 3600,
             "07_ranking": 3600}


class RunError(Exception):
    """A problem the user can fix; its message is printed on one line and the exit status is 1."""


@dataclass
class Outcome:
    """How one notebook run went."""

    stem: str
    ok: bool
    seconds: float
    message: str = ""


def list_notebooks(folder: Path | None = None) -> list[Path]:
    """The collection's notebooks in order: ``NN_name.ipynb`` files sorted by name."""
    return sorted((folder or NOTEBOOK_DIR).glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(only: list[str] | None, folder: Path | None = None) -> list[Path]:
    """Pick notebooks by number (``03``) or stem (``03_candidate_generation``); all when ``only`` is empty."""
    notebooks = list_notebooks(folder)
    if not notebooks:
        raise RunError(f"no notebooks found in {folder or NOTEBOOK_DIR}")
    if not only:
        return notebooks
    chosen = []
    for name in only:
        name = Path(name).stem
        match = [p for p in notebooks if p.stem == name or p.stem.split("_", 1)[0] == name]
        if not match:
            known = ", ".join(p.stem for p in notebooks)
            raise RunError(f"--only {name}: no such notebook; choose from: {known}")
        chosen.extend(p for p in match if p not in chosen)
    return sorted(chosen)


def known_presets() -> list[str]:
    """Preset and dataset names that notebooks accept as ``PRESET``."""
    from ytrec_lib.data.datasets import known_presets as data_presets

    return list(data_presets())


def parse_param(text: str) -> tuple[str, Any]:
    """``"EPOCHS=3"`` -> ``("EPOCHS", 3)``: a Python literal when the value parses as one, else a string."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise RunError(f"--param {text!r}: write it as NAME=VALUE, e.g. --param EPOCHS=3")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return name, value


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The names and default values in the cell tagged ``parameters``."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1 or cells[0].cell_type != "code":
        raise RunError(f"{path.name}: needs exactly one code cell tagged 'parameters' (found {len(cells)})")
    names: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    try:
                        names[target.id] = ast.literal_eval(node.value)
                    except (ValueError, SyntaxError):
                        names[target.id] = None
    return names


def plan_parameters(
    notebooks: list[Path], preset: str, params: dict[str, Any]
) -> dict[Path, dict[str, Any]]:
    """Check every parameter against every chosen notebook before anything runs."""
    presets = known_presets()
    if preset not in presets:
        raise RunError(f"unknown preset {preset!r}; choose from: {', '.join(presets)}")
    plan = {}
    for path in notebooks:
        defined = notebook_parameters(path)
        missing = [name for name in params if name not in defined]
        if missing:
            raise RunError(
                f"{path.stem} has no parameter {', '.join(missing)} in its parameters cell "
                f"(it defines: {', '.join(defined) or 'nothing'}); pick notebooks with --only"
            )
        plan[path] = {**({"PRESET": preset} if "PRESET" in defined else {}), **params}
    return plan


def timeout_for(stem: str, preset: str) -> int:
    """The wall-clock limit of one notebook at one preset, in seconds."""
    base = TIMEOUT_S.get(stem, DEFAULT_TIMEOUT_S)
    return base * 6 if preset == "large" else base


def failing_cell(executed: Path) -> str:
    """Describe the first cell whose output is an error: ``In [n]``, its first line and the exception."""
    if not executed.exists():
        return "the kernel did not start or the notebook could not be read"
    nb = nbformat.read(executed, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code_cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
                return (f"cell In [{cell.get('execution_count')}] ({first.strip()[:60]!r}): "
                        f"{out.get('ename')}: {out.get('evalue')}")
    last = max((c.get("execution_count") or 0 for c in code_cells), default=0)
    return f"stopped after cell In [{last}] of {len(code_cells)} code cells"


def _install(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically (a reader sees the old or the new file, never half of one)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _papermill(src: Path, out: Path, params: dict[str, Any], env: dict[str, str], limit: int) -> str | None:
    """Run one notebook in a child process group; return None on success, else what went wrong."""
    cmd = [sys.executable, "-m", "ytrec_lib.runner", str(src), str(out), json.dumps(params)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"timed out after {limit} s ({failing_cell(out)})"
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    if proc.returncode != 0:
        return failing_cell(out)
    return None


def _child(src: str, out: str, params_json: str) -> int:
    """The child process: execute with papermill, showing its cell progress bar but not its traceback."""
    import papermill

    try:
        papermill.execute_notebook(src, out, parameters=json.loads(params_json), kernel_name="python3",
                                   cwd=str(Path(src).parent), progress_bar=True, log_output=False)
    except papermill.PapermillExecutionError:
        return 1
    return 0


def run_one(path: Path, params: dict[str, Any], preset: str, build: Path) -> Outcome:
    """Execute one notebook in a staging folder and publish it into ``build`` if it finished."""
    stem = path.stem
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"ytrec-{stem}-") as tmp:
        staging = Path(tmp)
        executed = staging / f"{stem}.ipynb"
        env = {**os.environ, "YTREC_NOTEBOOK": stem, "YTREC_RESULTS_DIR": str(staging / "results"),
               "YTREC_BUILD_DIR": str(build), "PYTHONUNBUFFERED": "1",
               "MPLBACKEND": "module://matplotlib_inline.backend_inline"}  # figures into the outputs
        problem = _papermill(path, executed, params, env, timeout_for(stem, preset))
        seconds = time.perf_counter() - start
        if problem:
            kept = Path(tempfile.gettempdir()) / "ytrec-failed" / f"{stem}.ipynb"
            if executed.exists():
                _install(executed, kept)
                problem += f" — executed copy kept at {kept}"
            return Outcome(stem, False, seconds, problem)
        results = staging / "results" / f"{stem}.json"
        _install(executed, build / "notebooks" / f"{stem}.ipynb")
        if results.exists():
            _install(results, build / "results" / f"{stem}.json")
        else:
            (build / "results" / f"{stem}.json").unlink(missing_ok=True)
    return Outcome(stem, True, seconds)


def run_notebooks(
    preset: str = DEFAULT_PRESET,
    only: list[str] | None = None,
    params: list[str] | None = None,
    build: Path | None = None,
    html: bool = True,
) -> int:
    """Run the chosen notebooks in order; stop at the first failure. Returns the exit status."""
    build = (build or report.build_dir()).resolve()
    try:
        notebooks = select_notebooks(only)
        plan = plan_parameters(notebooks, preset, dict(parse_param(p) for p in params or []))
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    total = time.perf_counter()
    for i, (path, nb_params) in enumerate(plan.items(), start=1):
        print(f"[{i}/{len(plan)}] {path.stem} (preset {preset}) ...", flush=True)
        outcome = run_one(path, nb_params, preset, build)
        if not outcome.ok:
            print(f"error: {outcome.stem} failed after {outcome.seconds:.1f} s: {outcome.message}",
                  file=sys.stderr)
            return 1
        print(f"[{i}/{len(plan)}] {path.stem} done in {outcome.seconds:.1f} s "
              f"(total {time.perf_counter() - total:.1f} s)", flush=True)
        if html:
            from ytrec_lib import html_report

            html_report.write_notebook_page(build, path.stem)
    if html:
        from ytrec_lib import html_report

        index = html_report.write_index(build)
        print(f"Report: {index}  (open it in a browser)")
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
