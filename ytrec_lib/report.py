"""Record a notebook's key results, and read them back.

A notebook calls ``report.record("recall@100_model", value)``; the value lands in
``build/results/<notebook stem>.json`` (``$YTREC_RESULTS_DIR`` overrides the folder, which is
how the notebook runner stages results until the notebook has finished). Tests, the HTML report
and the README table read every recorded result through :func:`load_all`.

Which notebook is recording is taken, in order, from :func:`use_notebook`, the
``$YTREC_NOTEBOOK`` variable the runner sets, and JupyterLab's ``$JPY_SESSION_NAME``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
_current_notebook: str | None = None


def build_dir() -> Path:
    """The folder that executed notebooks, results and the HTML report go to (``$YTREC_BUILD_DIR``)."""
    return Path(os.environ.get("YTREC_BUILD_DIR", REPO_ROOT / "build")).resolve()


def results_dir() -> Path:
    """The folder of ``<notebook stem>.json`` result files (``$YTREC_RESULTS_DIR`` or ``build/results``)."""
    env = os.environ.get("YTREC_RESULTS_DIR")
    return Path(env).resolve() if env else build_dir() / "results"


def use_notebook(stem: str) -> None:
    """Say which notebook later :func:`record` calls belong to (e.g. ``"03_candidate_generation"``)."""
    global _current_notebook
    _current_notebook = Path(stem).stem


def current_notebook() -> str:
    """The stem of the notebook that is recording, or a clear error when it cannot be told."""
    if _current_notebook:
        return _current_notebook
    for var in ("YTREC_NOTEBOOK", "JPY_SESSION_NAME"):
        if os.environ.get(var):
            return Path(os.environ[var]).stem
    raise RuntimeError(
        "report.record() does not know which notebook it is in: call "
        "report.use_notebook('NN_name') first, or run the notebook through "
        "`python -m ytrec_lib run-notebooks`."
    )


def to_jsonable(value: Any) -> Any:
    """Turn numpy scalars and arrays, tuples and non-string keys into plain JSON values.

    NaN and infinities become ``None`` (JSON has no spelling for them).
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"report.record: cannot store a value of type {type(value).__name__} as JSON")


def _read(path: Path) -> dict[str, Any]:
    """The results in ``path`` (``{}`` when there is none); :class:`DamagedArtifact` (a ``ValueError``
    naming the file and what to do) when it is not a JSON object."""
    from ytrec_lib.data.cache import DamagedArtifact, load_json  # here, not on top: the CLI imports report

    try:
        return load_json(path, "results file")
    except FileNotFoundError:
        return {}
    except DamagedArtifact as err:
        raise DamagedArtifact(f"{err}; delete it and re-run the notebook {path.stem}") from err


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON through a unique temporary file renamed onto ``path``."""
    from ytrec_lib.data.cache import atomic_write_text

    text = json.dumps(data, indent=2)  # insertion order: mappings keep the order they were built in
    atomic_write_text(path, text)


def record(key: str, value: Any, notebook: str | None = None) -> Any:
    """Record ``value`` under ``key`` for the current notebook and return ``value`` unchanged.

    ``value`` may be a number, bool, string, list or mapping (numpy types are converted).
    The file is rewritten atomically, so a reader never sees half a result file.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("report.record: the key must be a non-empty string")
    stem = notebook or current_notebook()
    path = results_dir() / f"{stem}.json"
    data = _read(path)
    data[key] = to_jsonable(value)
    _write_atomic(path, data)
    return value


def record_many(values: Mapping[str, Any], notebook: str | None = None) -> Mapping[str, Any]:
    """Record every ``key: value`` of ``values`` (in order) in one atomic rewrite; returns ``values``."""
    if not all(isinstance(k, str) and k for k in values):
        raise ValueError("report.record_many: every key must be a non-empty string")
    stem = notebook or current_notebook()
    path = results_dir() / f"{stem}.json"
    data = _read(path)
    data.update({k: to_jsonable(v) for k, v in values.items()})
    _write_atomic(path, data)
    return values


def load(stem: str, folder: Path | None = None) -> dict[str, Any]:
    """The results one notebook recorded (``{}`` when it has not run)."""
    return _read((folder or results_dir()) / f"{stem}.json")


def load_all(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every recorded result as ``{notebook stem: {key: value}}``, notebooks in order."""
    folder = folder or results_dir()
    if not folder.exists():
        return {}
    return {p.stem: _read(p) for p in sorted(folder.glob("*.json"))}
