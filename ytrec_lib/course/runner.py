"""Execute the notebooks in order, headless, and publish them with their results under ``build/``.

``python -m ytrec_lib run-notebooks [--preset P] [--only 03] [--param NAME=VALUE]`` ends here.
Each notebook runs in its own papermill process (so a per-notebook timeout can stop it and its
kernel), with its parameters injected into the cell tagged ``parameters``. It runs in a staging
folder (``<temp dir>/ytrec-<stem>-*``); only a notebook that finished is copied into ``build/``
(executed notebook, results JSON, HTML page), so a failure, a timeout or a SIGTERM / Ctrl-C leaves
``build/`` as it was. Every file is installed through a unique temporary name beside it, so two runs
in one checkout never trip over each other's temporary files. A failed notebook's executed copy goes
to a fresh ``<temp dir>/ytrec-failed-<stem>-*`` folder of its own (the error names it).

Beside each published results file the runner writes ``build/results/run-info/<stem>.json``: the
preset and parameters the notebook ran with, its run time, the commit and the SHA-256 of the results
file it published, so ``update-readme`` can say which preset the results were recorded at (and notice
results written since by something else), and the report can show when and how each notebook ran.

While a notebook runs, the runner prints each ``##`` section heading as execution reaches it, with
the time since the notebook started. Kernels listen on Unix sockets in the staging folder.

Parameters are checked against the notebook's parameters cell before any kernel starts:

- the name must be defined there;
- the type follows the default: an ``int`` default takes integers, a ``float`` default takes any
  number, a ``bool`` default ``True``/``False``, a ``str`` default a string, a list default a list
  (of the same kind of scalars as the default's), a dict default a dict, a ``None`` (or computed)
  default any JSON-like value;
- ranges, as one simple rule: an integer parameter whose default is positive must stay ``>= 1``
  (sizes, counts, epochs), one whose default is ``0`` must stay ``>= 0`` (seeds, offsets);
- ``None`` is accepted as well where the parameter's comment says what None means
  (``N_EVAL_USERS = 1500  # ... (None: all of them)``);
- ``PRESET`` must be a known preset or dataset name (:func:`known_presets`).

``$YTREC_NOTEBOOKS_DIR`` points the runner at another folder of notebooks (the tests use it).
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from ytrec_lib import progress, report
from ytrec_lib.data.cache import atomic_path, atomic_write_text, file_sha256, load_json, sweep_stale_temps

NOTEBOOK_DIR = report.REPO_ROOT / "notebooks"
NOTEBOOKS_ENV = "YTREC_NOTEBOOKS_DIR"
RUN_INFO_DIR = "run-info"
"""Sub-folder of a results folder holding one ``<stem>.json`` run record per published results file."""
SWEEP_AGE_S = 3600.0
"""Temporary files and staging folders older than this (seconds) are an interrupted run's leftovers."""
NOTEBOOK_RE = re.compile(r"^[0-9]{2}[a-z]?_.+\.ipynb$")
"""A notebook of the collection: ``NN_name.ipynb``, or ``NNx_name.ipynb`` for one inserted after NN."""
STAGING_RE = re.compile(r"^ytrec-[0-9]{2}[a-z]?_.+")
OWNER_FILE = "owner.pid"
DEFAULT_PRESET = "ci"
DEFAULT_TIMEOUT_S = 1800
# Per-notebook wall-clock limits in seconds at the presets up to `small`; `large` gets 6 times more.
# 03, 06 and 07 train many models (about 1,600 s, 620 s and 590 s at `small` in a fresh clone), 03b and
# 03c dozens of them over three seeds: an hour leaves headroom for slower machines.
TIMEOUT_S = {"00_overview": 300, "03_candidate_generation": 3600, "03b_paper_lessons": 3600,
             "03c_fresh_and_labels": 3600,
             "06_negative_sampling": 3600, "07_ranking": 3600}
AFTER: dict[str, tuple[str, ...]] = {"04_video_embeddings": ("03_candidate_generation",),
                                     "05_ann_serving": ("03_candidate_generation",),
                                     "08_two_stage_system": ("03_candidate_generation", "07_ranking")}
"""With ``jobs > 1``: a notebook that reuses a model an earlier one trains and caches (03's candidate
model, 07's ranker) starts only after that one ends, so the model is trained once. (Each notebook still
runs alone: what it needs and does not find in the cache, it builds.)"""
ALONE: tuple[str, ...] = ("05_ann_serving",)
"""With ``jobs > 1``: notebooks that time work against work and need a quiet core (05 times one query
against batches of queries); they run last, one at a time, with nothing beside them."""
RUN_TAG_ENV = "YTREC_RUN_TAG"
"""Environment variable the child appends to each section line (the stem, when notebooks run side by
side)."""


class RunError(Exception):
    """A problem the user can fix; its message is printed on one line and the exit status is 1."""


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived; a ``BaseException`` so that no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass
class Outcome:
    """How one notebook run went."""

    stem: str
    ok: bool
    seconds: float
    message: str = ""


def notebook_dir() -> Path:
    """The folder of notebooks: ``$YTREC_NOTEBOOKS_DIR`` or ``<repo>/notebooks``."""
    env = os.environ.get(NOTEBOOKS_ENV)
    return Path(env).expanduser().resolve() if env else NOTEBOOK_DIR


def list_notebooks(folder: Path | None = None) -> list[Path]:
    """The collection's notebooks in order: ``NN_name.ipynb`` (and ``NNx_name.ipynb``, after NN) files
    sorted by name."""
    found = (folder or notebook_dir()).glob("[0-9][0-9]*.ipynb")
    return sorted(p for p in found if NOTEBOOK_RE.match(p.name))


def select_notebooks(only: list[str] | None, folder: Path | None = None) -> list[Path]:
    """Pick notebooks by number (``03``) or stem (``03_candidate_generation``); all when ``only`` is empty."""
    notebooks = list_notebooks(folder)
    if not notebooks:
        raise RunError(f"no notebooks found in {folder or notebook_dir()}")
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


def _parameters_source(path: Path) -> str:
    """The source of the one code cell of ``path`` tagged ``parameters``."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1 or cells[0].cell_type != "code":
        raise RunError(f"{path.name}: needs exactly one code cell tagged 'parameters' (found {len(cells)})")
    return cells[0].source


def _assignments(source: str) -> Iterator[tuple[str, ast.stmt]]:
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    yield target.id, node


def _is_default_preset_call(node: ast.expr | None) -> bool:
    """Is ``node`` the call ``course.default_preset()`` (or ``default_preset()``), with no arguments?"""
    if not isinstance(node, ast.Call) or node.args or node.keywords:
        return False
    func = node.func
    return ((isinstance(func, ast.Attribute) and func.attr == "default_preset"
             and isinstance(func.value, ast.Name) and func.value.id == "course")
            or (isinstance(func, ast.Name) and func.id == "default_preset"))


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The names and default values in the cell tagged ``parameters`` (None for a computed default).

    ``PRESET = course.default_preset()`` resolves as the kernel would: ``$YTREC_PRESET``, else the
    default preset; an unknown ``$YTREC_PRESET`` is a :class:`RunError` (the cell would fail on it).
    """
    from ytrec_lib import course

    names: dict[str, Any] = {}
    for name, node in _assignments(_parameters_source(path)):
        if _is_default_preset_call(node.value):
            try:
                names[name] = course.default_preset()
            except ValueError as err:
                raise RunError(f"{path.name}: {err} (or unset it)") from None
            continue
        try:
            names[name] = ast.literal_eval(node.value)
        except (ValueError, SyntaxError):
            names[name] = None
    return names


def parameter_comments(path: Path) -> dict[str, str]:
    """The comment at the end of each parameter's line in the parameters cell (``""`` when none)."""
    source = _parameters_source(path)
    lines = source.splitlines()
    comments = {}
    for name, node in _assignments(source):
        rest = lines[node.end_lineno - 1][node.end_col_offset:]
        comments[name] = rest.split("#", 1)[1].strip() if "#" in rest else ""
    return comments


def _scalar_kind(value: Any) -> str | None:
    """``"bool"``, ``"int"``, ``"float"``, ``"str"`` or ``"none"`` for a JSON scalar, else None."""
    if value is None:
        return "none"
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(value, types):
            return kind
    return None


def _jsonish(value: Any) -> bool:
    """True for what survives the trip into the notebook as JSON: scalars, lists, string-keyed dicts."""
    if isinstance(value, float):
        return math.isfinite(value)
    if _scalar_kind(value) is not None:
        return True
    if isinstance(value, list | tuple):
        return all(_jsonish(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _jsonish(v) for k, v in value.items())
    return False


def _fits_kind(value: Any, kind: str) -> bool:
    """Does ``value`` fit a default of scalar kind ``kind`` (an int fits a float; a bool fits only bool)?"""
    if kind == "float":
        return _scalar_kind(value) in ("int", "float")
    return _scalar_kind(value) == kind


_KIND_TEXT = {"bool": "True or False", "int": "an integer", "float": "a number", "str": "a string"}
_KINDS_TEXT = {"bool": "True/False values", "int": "integers", "float": "numbers", "str": "strings"}


def allowed_values(name: str, default: Any, presets: list[str]) -> str | None:
    """What a parameter accepts, in words (None: any JSON-like value). See the module docstring."""
    if name == "PRESET":
        return f"one of: {', '.join(presets)}"
    kind = _scalar_kind(default)
    if kind == "int":
        return "an integer >= 1" if default > 0 else "an integer >= 0" if default == 0 else "an integer"
    if kind in _KIND_TEXT:
        return _KIND_TEXT[kind]
    if isinstance(default, list | tuple):
        kinds = {_scalar_kind(v) for v in default}
        if len(kinds) == 1 and (only := kinds.pop()) in _KIND_TEXT:
            return f"a list of {_KINDS_TEXT[only]}, like {list(default)}"
        return f"a list, like {list(default)}"
    if isinstance(default, dict):
        return f"a dict, like {default}"
    return None


def check_parameter(
    stem: str, name: str, value: Any, default: Any, presets: list[str], none_ok: bool = False
) -> None:
    """Raise :class:`RunError` when ``value`` does not fit parameter ``name`` of notebook ``stem``.

    ``none_ok``: ``None`` is allowed too (the parameter's comment says what None means).
    """
    allowed = allowed_values(name, default, presets)
    if allowed and none_ok:
        allowed += " or None"
    ok = _jsonish(value)
    if value is None and none_ok:
        pass
    elif ok and name == "PRESET":
        ok = isinstance(value, str) and value in presets
    elif ok and (kind := _scalar_kind(default)) not in (None, "none"):
        ok = _fits_kind(value, kind)
        if ok and kind == "int" and default >= 0:
            ok = value >= (1 if default > 0 else 0)
    elif ok and isinstance(default, list | tuple):
        ok = isinstance(value, list | tuple)
        kinds = {_scalar_kind(v) for v in default}
        if ok and len(kinds) == 1 and (only := kinds.pop()) in _KIND_TEXT:
            ok = all(_fits_kind(v, only) for v in value)
    elif ok and isinstance(default, dict):
        ok = isinstance(value, dict)
    if not ok:
        what = allowed or "a JSON-like value (number, string, True/False, None, list or dict)"
        raise RunError(f"--param {name}={value!r} does not fit {stem}: {name} takes {what} "
                       f"(its default is {default!r}); nothing was run")


def plan_parameters(
    notebooks: list[Path], preset: str, params: dict[str, Any]
) -> dict[Path, dict[str, Any]]:
    """Check every parameter against every chosen notebook before anything runs.

    Returns the parameters each notebook gets (``PRESET`` from ``preset`` unless ``params`` sets it).
    Raises :class:`RunError` naming the parameter, the value, the notebook and what is allowed.
    """
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
        comments = parameter_comments(path)
        for name, value in params.items():
            none_ok = re.search(r"\bNone\b", comments.get(name, "")) is not None
            check_parameter(path.stem, name, value, defined[name], presets, none_ok)
        plan[path] = {**({"PRESET": preset} if "PRESET" in defined else {}), **params}
    return plan


def check_folders(build: Path) -> None:
    """Refuse, before anything runs, a build folder or ``$YTREC_DATA_DIR`` that is not a folder."""
    for folder, name in [(build, f"the build folder {build} (--build or $YTREC_BUILD_DIR)"),
                         *[(build / sub, f"{build / sub}") for sub in ("html", "notebooks", "results")]]:
        if folder.exists() and not folder.is_dir():
            raise RunError(f"{name} is a file, not a folder; give a folder (it is created if missing)")
    parent = next((p for p in build.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise RunError(f"cannot create the build folder {build}: {parent} is a file")
    data = os.environ.get("YTREC_DATA_DIR")
    if data and Path(data).expanduser().exists() and not Path(data).expanduser().is_dir():
        raise RunError(f"YTREC_DATA_DIR={data} is a file, not a folder; point it at a folder "
                       "(created if missing) or unset it to use data/")


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
    """Copy ``src`` to ``dst`` atomically (a reader sees the old or the new file, never half of one).

    The copy goes through a unique temporary name beside ``dst``, so concurrent installs of one
    file never share a temporary file: the last rename wins and the file is always whole.
    """
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _descendants(pid: int) -> list[Any]:
    """The processes below ``pid`` (psutil ``Process`` objects; empty if psutil cannot tell)."""
    try:
        import psutil  # installed with IPython, which every kernel needs
    except ImportError:
        return []
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _gone(proc: Any) -> bool:
    import psutil

    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the child's process group and the groups of everything below it, then reap the child.

    jupyter_client starts the kernel in a session of its own, so killing the child's group alone
    would leave the kernel running: its group is killed too.
    """
    below = _descendants(proc.pid)
    groups = {proc.pid}
    for p in below:
        try:
            groups.add(os.getpgid(p.pid))
        except OSError:
            continue
    groups.discard(os.getpgrp())  # never our own group
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            continue
    for p in below:  # anything that left its group
        try:
            p.kill()
        except Exception:  # noqa: BLE001 - psutil.NoSuchProcess and friends: already gone
            continue
    proc.wait()
    deadline = time.monotonic() + 5.0
    while below and time.monotonic() < deadline:  # not our children: wait until they are really gone
        below = [p for p in below if not _gone(p)]
        if below:
            time.sleep(0.02)


_RUNNING: set[subprocess.Popen] = set()
"""The notebook children running now (several when notebooks run side by side)."""
_RUNNING_LOCK = threading.Lock()
_STOPPING = threading.Event()
"""Set while an interrupt kills the running children: their runs are not failures to keep a copy of."""


def _kill_running() -> None:
    """Kill every notebook child running now, with its kernel (an interrupt of a side-by-side run)."""
    _STOPPING.set()
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for proc in running:
        _kill_tree(proc)


def _papermill(src: Path, out: Path, params: dict[str, Any], env: dict[str, str], limit: int) -> str | None:
    """Run one notebook in a child process group; return None on success, else what went wrong.

    On a timeout, and when anything (SIGTERM, Ctrl-C) interrupts the wait, the child and its kernel
    are killed before this returns or re-raises.
    """
    cmd = [sys.executable, "-m", "ytrec_lib.course.runner", str(src), str(out), json.dumps(params)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    try:
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            return f"timed out after {limit} s ({failing_cell(out)})"
    except BaseException:  # SIGTERM / Ctrl-C (as Interrupted), even in the middle of the timeout's kill
        _kill_tree(proc)
        raise
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)
    if proc.returncode != 0:
        return failing_cell(out)
    return None


HEADING_RE = re.compile(r"^##\s+(.+?)\s*#*\s*$", re.MULTILINE)
"""A section heading: a markdown line starting with exactly two ``#``."""
IPC_PATH_MAX = 90
"""Longest kernel socket path prefix (Unix sockets allow about 107 bytes, the port adds 6)."""


def section_heading(cell: Any) -> str | None:
    """The first ``## `` heading of a markdown cell, or None (code cells, no such heading)."""
    if cell.get("cell_type") != "markdown":
        return None
    match = HEADING_RE.search(cell.get("source", ""))
    return match.group(1) if match else None


def format_elapsed(seconds: float) -> str:
    """``75.4`` -> ``"1:15"``; ``3725`` -> ``"1:02:05"``."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class SectionProgress:
    """Print each ``##`` section of a notebook as execution reaches it, with the time since the start.

    Used as nbclient's ``on_cell_start`` hook, which sees every cell, markdown ones included.
    """

    def __init__(self, out: Any = None, tag: str = "") -> None:
        self.out = out or sys.stdout
        self.start = time.perf_counter()
        self.tag = tag

    def __call__(self, cell: Any, cell_index: int | None = None, **_: Any) -> None:
        heading = section_heading(cell)
        if heading:
            elapsed = format_elapsed(time.perf_counter() - self.start)
            print(f"    {elapsed:>7}  {heading}{self.tag}", file=self.out, flush=True)


def _ipc_prefix() -> str | None:
    """The socket path prefix in the child's temporary folder (the staging folder), or None when too long."""
    prefix = str(Path(tempfile.gettempdir()) / "kernel")
    return prefix if len(prefix) <= IPC_PATH_MAX else None


def kernel_manager_class() -> type:
    """A kernel manager class whose kernels listen on Unix sockets (the ``ipc`` transport).

    Local sockets in the staging folder instead of TCP ports, so ipykernel does not warn that it
    "is running over TCP without encryption", and the sockets go with the staging folder. TCP stays
    where the path would be too long for a socket. nbclient creates, and shuts down, the kernel. At
    shutdown (every cell has run; the runner kills a kernel it stops for a timeout) jupyter_client
    interrupts the kernel first: an idle kernel that gets the SIGINT prints "KeyboardInterrupt caught in
    kernel" (it did once in a run of two notebooks side by side), so this one skips that interrupt.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IpcKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc" if _ipc_prefix() else "tcp"

        @default("ip")
        def _ip_default(self) -> str:
            return (_ipc_prefix() or "127.0.0.1") if self.transport == "ipc" else "127.0.0.1"

        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

    return IpcKernelManager


SHELL_POLL_SLICE_S = 1.0
"""Seconds the executing client waits on a kernel channel before it looks again."""


def patch_shell_polling(slice_s: float = SHELL_POLL_SLICE_S) -> None:
    """Make jupyter_client's asyncio channels wait for a message in slices of ``slice_s`` seconds.

    nbclient waits for a cell's ``execute_reply`` with one ``get_msg(timeout=<cell timeout>)``. After a
    cell that drives ipywidgets (an ``Output`` widget written to while it is displayed: notebook 02's
    neighbour explorer), that wait sometimes never wakes although the kernel has replied and gone idle,
    and the run hangs until the cell timeout (jupyter/nbclient#312). A notebook of 150 such cells hung in
    3 of 7 runs here, and in none of 10 with this patch. Looking again every ``slice_s`` seconds finds the
    waiting reply; the overall timeout is kept. Idempotent; for the executing process only.
    """
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    if getattr(AsyncZMQSocketChannel.get_msg, "ytrec_sliced", False):
        return
    original = AsyncZMQSocketChannel.get_msg

    async def get_msg(self: Any, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = math.inf if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await original(self, timeout=min(slice_s, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    get_msg.ytrec_sliced = True  # type: ignore[attr-defined]
    AsyncZMQSocketChannel.get_msg = get_msg  # type: ignore[method-assign]


def _child(src: str, out: str, params_json: str) -> int:
    """The child process: execute with papermill, printing section headings (not a cell counter).

    The child's own temporary files (the kernel's connection file and sockets) go into the staging
    folder, so they go with it even when the child is killed; the kernel keeps the usual temp folder.
    """
    import papermill

    tempfile.tempdir = str(Path(out).parent)
    patch_shell_polling()
    try:
        papermill.execute_notebook(src, out, parameters=json.loads(params_json), kernel_name="python3",
                                   cwd=str(Path(src).parent), progress_bar=False, log_output=False,
                                   kernel_manager_class=kernel_manager_class(),
                                   on_cell_start=SectionProgress(tag=os.environ.get(RUN_TAG_ENV, "")))
    except papermill.PapermillExecutionError:
        return 1
    return 0


@contextmanager
def staging_folder(stem: str) -> Iterator[Path]:
    """A fresh ``<temp dir>/ytrec-<stem>-*`` folder holding this process's id; removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix=f"ytrec-{stem}-"))
    try:
        (folder / OWNER_FILE).write_text(str(os.getpid()))
        yield folder
    finally:
        try:
            shutil.rmtree(folder, ignore_errors=True)
        finally:  # a signal cut the first removal short (signals are ignored by then)
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


def sweep_stale(build: Path, older_than: float = SWEEP_AGE_S) -> list[Path]:
    """Remove what interrupted runs left: temporary files in ``build`` and its html/notebooks/results
    (and results/run-info) folders, and staging folders ``ytrec-NN_*`` in the system temp folder.

    Only leftovers older than ``older_than`` seconds go, and a staging folder only when the run that
    made it (``owner.pid``) is gone. Returns the paths removed.
    """
    removed: list[Path] = []
    for folder in (build, build / "html", build / "notebooks", build / "results",
                   build / "results" / RUN_INFO_DIR):
        removed += sweep_stale_temps(folder, older_than=older_than)
    now = time.time()
    tmp_root = Path(tempfile.gettempdir())
    try:
        candidates = [p for p in tmp_root.iterdir() if STAGING_RE.match(p.name)]
    except OSError:
        return removed
    for folder in candidates:
        try:
            if folder.is_symlink() or not folder.is_dir() or now - folder.stat().st_mtime < older_than:
                continue
            owner = folder / OWNER_FILE
            if owner.exists() and _pid_alive(int(owner.read_text().strip() or 0)):
                continue
        except (OSError, ValueError):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


def git_commit(root: Path | None = None) -> str:
    """The short hash of the checked-out commit of ``root`` (the repository), or ``"unknown"``."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root or report.REPO_ROOT,
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else "unknown"


def write_run_info(
    results: Path, stem: str, preset: str, params: dict[str, Any], seconds: float, source: Path | None = None
) -> Path:
    """Write ``results/run-info/<stem>.json``: how the results file ``results/<stem>.json`` was made.

    Keys: ``notebook``, ``preset``, ``parameters``, ``seconds``, ``finished`` (UTC, ISO 8601),
    ``commit`` (:func:`git_commit`) and ``results_sha256``: of ``source``, the file this run
    published (default: the published file as it is now; None when there is none), so a results file
    another run published since does not match.
    """
    source = source or results / f"{stem}.json"
    info = {"notebook": stem, "preset": preset, "parameters": params, "seconds": round(seconds, 1),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"), "commit": git_commit(),
            "results_sha256": file_sha256(source) if source.exists() else None}
    return atomic_write_text(results / RUN_INFO_DIR / f"{stem}.json", json.dumps(info, indent=2) + "\n")


def recorded_preset(results: Path, stem: str) -> tuple[str | None, str]:
    """``(preset, "")`` when the runner recorded the preset of ``results/<stem>.json`` and the file is
    still the one it published; else ``(None, why not)``."""
    info_path = results / RUN_INFO_DIR / f"{stem}.json"
    if not info_path.exists():
        return None, "not recorded (its results were not published by run-notebooks)"
    try:
        info = load_json(info_path, "run record")
    except ValueError as err:
        return None, str(err)
    published = results / f"{stem}.json"
    if not published.exists() or info.get("results_sha256") != file_sha256(published):
        return None, "unknown (its results changed after run-notebooks published them)"
    preset = info.get("preset")
    return (preset, "") if isinstance(preset, str) and preset else (None, f"missing from {info_path}")


def settle_progress_bars(executed: Path) -> int:
    """Keep only the final frame of every text progress bar in the stream outputs of ``executed``.

    A text bar redraws its line with a carriage return, and the kernel stores each redraw as a
    stream output of its own: runs of adjacent stream outputs of one stream (stdout or stderr) are
    joined, as JupyterLab joins them, and each line keeps what follows its last ``\\r``
    (:func:`ytrec_lib.progress.final_frames`); a stderr output left blank (a bar's closing newline,
    flushed after a print) is dropped. Outputs keep their order. Rewrites the file only when
    something changed; returns the number of outputs removed or shortened.
    """
    nb = nbformat.read(executed, as_version=4)
    changed = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept, joined = _join_streams(cell.get("outputs", []))
        for out in kept:
            if out.get("output_type") == "stream" and "\r" in out.get("text", ""):
                settled = progress.final_frames(out["text"])
                changed += settled != out["text"]
                out["text"] = settled
        shown = [o for o in kept if not (o.get("output_type") == "stream" and o.get("name") == "stderr"
                                         and not o.get("text", "").strip())]  # blank: a bar's late newline
        cell["outputs"], joined_again = _join_streams(shown)
        changed += joined + len(kept) - len(shown) + joined_again
    if changed:
        nbformat.write(nb, executed)
    return changed


def _join_streams(outputs: list[Any]) -> tuple[list[Any], int]:
    """``outputs`` with each run of adjacent stream outputs of one stream joined into its first (in
    place), and the number of outputs joined away."""
    kept: list[Any] = []
    for out in outputs:
        last = kept[-1] if kept else None
        if (out.get("output_type") == "stream" and last is not None
                and last.get("output_type") == "stream" and last.get("name") == out.get("name")):
            last["text"] += out.get("text", "")
        else:
            kept.append(out)
    return kept, len(outputs) - len(kept)


def run_one(path: Path, params: dict[str, Any], preset: str, build: Path, tag: bool = False) -> Outcome:
    """Execute one notebook in a staging folder and publish it into ``build`` if it finished.
    ``tag``: its section lines end with its stem (notebooks running side by side)."""
    stem = path.stem
    start = time.perf_counter()
    preset = params.get("PRESET", preset)
    with staging_folder(stem) as staging:
        executed = staging / f"{stem}.ipynb"
        env = {**os.environ, "YTREC_NOTEBOOK": stem, "YTREC_RESULTS_DIR": str(staging / "results"),
               "YTREC_BUILD_DIR": str(build), "PYTHONUNBUFFERED": "1", progress.TEXT_ENV: "1",
               "MPLBACKEND": "module://matplotlib_inline.backend_inline",  # figures into the outputs
               RUN_TAG_ENV: f"  [{stem}]" if tag else ""}
        problem = _papermill(path, executed, params, env, timeout_for(stem, preset))
        seconds = time.perf_counter() - start
        if problem:
            if executed.exists() and not _STOPPING.is_set():
                kept = Path(tempfile.mkdtemp(prefix=f"ytrec-failed-{stem}-")) / f"{stem}.ipynb"
                _install(executed, kept)
                problem += f" — executed copy kept at {kept}"
            return Outcome(stem, False, seconds, problem)
        results = staging / "results" / f"{stem}.json"
        settle_progress_bars(executed)
        _install(executed, build / "notebooks" / f"{stem}.ipynb")
        if results.exists():
            _install(results, build / "results" / f"{stem}.json")
        else:
            (build / "results" / f"{stem}.json").unlink(missing_ok=True)
        write_run_info(build / "results", stem, preset, params, seconds, source=results)
    return Outcome(stem, True, seconds)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`Interrupted` while the block runs (main thread only).

    After the first signal both are ignored, so a second one cannot cut the clean-up short.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    watched = (signal.SIGTERM, signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        for s in watched:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in watched}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run_notebooks(
    preset: str = DEFAULT_PRESET,
    only: list[str] | None = None,
    params: list[str] | None = None,
    build: Path | None = None,
    html: bool = True,
    jobs: int = 1,
) -> int:
    """Run the chosen notebooks in order; stop at the first failure. Returns the exit status.

    ``jobs > 1``: that many notebooks side by side (one kernel each), longest time limit first, each
    of :data:`AFTER` once what it reuses has ended, those of :data:`ALONE` last and one at a time; at
    the first failure no further notebook starts, the running ones finish (and are published).
    Every check (notebooks, parameters, folders) happens before the first kernel starts. SIGTERM or
    Ctrl-C kills the running notebooks and their kernels, removes their staging folders, prints one line
    and returns 128 + the signal number.
    """
    build = (build or report.build_dir()).resolve()
    try:
        jobs = int(jobs)
        if jobs < 1:
            raise RunError(f"--jobs must be >= 1 (notebooks run side by side), got {jobs}")
        notebooks = select_notebooks(only)
        plan = plan_parameters(notebooks, preset, dict(parse_param(p) for p in params or []))
        check_folders(build)
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    with signals_interrupt():
        try:
            if jobs > 1:
                return _run_side_by_side(plan, preset, build, html, jobs)
            return _run_plan(plan, preset, build, html)
        except Interrupted as stop:
            name = signal.Signals(stop.signum).name
            # the leading newline ends the killed child's progress bar line
            print(f"\nerror: stopped by {name}; the running notebook and its kernel were killed and "
                  f"nothing of it was published to {build}", file=sys.stderr)
            return 128 + stop.signum


def _announce(i: int, n: int, path: Path, nb_params: dict[str, Any], preset: str) -> None:
    print(f"[{i}/{n}] {path.stem} (preset {nb_params.get('PRESET', preset)}) ...", flush=True)


def _finish(i: int, n: int, outcome: Outcome, build: Path, html: bool, total: float) -> bool:
    """Print how notebook ``i`` of ``n`` ended and write its HTML page; whether it succeeded."""
    if not outcome.ok:
        print(f"error: {outcome.stem} failed after {outcome.seconds:.1f} s: {outcome.message}",
              file=sys.stderr)
        return False
    print(f"[{i}/{n}] {outcome.stem} done in {outcome.seconds:.1f} s "
          f"(total {time.perf_counter() - total:.1f} s)", flush=True)
    if html:
        from ytrec_lib.course import html_report

        html_report.write_notebook_page(build, outcome.stem)
    return True


def _write_index(build: Path) -> None:
    from ytrec_lib.course import html_report

    index = html_report.write_index(build)
    print(f"Report: {index}  (open it in a browser)")


def _run_in_order(paths: list[Path], plan: dict[Path, dict[str, Any]], preset: str, build: Path,
                  html: bool, total: float, first: int = 1) -> bool:
    """Run and publish ``paths`` one after another, numbered from ``first`` of ``len(plan)``; stop at the
    first failure. Returns whether all of them succeeded."""
    for i, path in enumerate(paths, start=first):
        _announce(i, len(plan), path, plan[path], preset)
        if not _finish(i, len(plan), run_one(path, plan[path], preset, build), build, html, total):
            return False
    return True


def _run_plan(plan: dict[Path, dict[str, Any]], preset: str, build: Path, html: bool) -> int:
    """Sweep stale leftovers, then run and publish each planned notebook (see :func:`run_notebooks`)."""
    sweep_stale(build)
    if not _run_in_order(list(plan), plan, preset, build, html, time.perf_counter()):
        return 1
    if html:
        _write_index(build)
    return 0


def side_by_side_order(stems: list[str], preset: str) -> list[str]:
    """The order notebooks start in when several run side by side: longest time limit first (plan order
    among equals), those of :data:`ALONE` last."""
    rank = {stem: i for i, stem in enumerate(stems)}
    return sorted(stems, key=lambda s: (s in ALONE, -timeout_for(s, preset), rank[s]))


def _ready(waiting: list[Path], done: set[str], planned: set[str]) -> Path | None:
    """The first of ``waiting`` whose :data:`AFTER` notebooks (those in the plan) have all ended."""
    return next((p for p in waiting if all(d in done or d not in planned for d in AFTER.get(p.stem, ()))),
                None)


def _run_side_by_side(plan: dict[Path, dict[str, Any]], preset: str, build: Path, html: bool,
                      jobs: int) -> int:
    """:func:`_run_plan` with ``jobs`` notebooks at a time, then those of :data:`ALONE` one by one."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    sweep_stale(build)
    _STOPPING.clear()
    total, n = time.perf_counter(), len(plan)
    by_stem = {p.stem: p for p in plan}
    planned = set(by_stem)
    order = [by_stem[s] for s in side_by_side_order(list(by_stem), preset)]
    waiting = [p for p in order if p.stem not in ALONE]
    done: set[str] = set()
    number: dict[str, int] = {}
    failed = False
    running: dict[Future, Path] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        try:
            while waiting or running:
                while not failed and len(running) < jobs and (path := _ready(waiting, done, planned)):
                    waiting.remove(path)
                    number[path.stem] = len(number) + 1
                    _announce(number[path.stem], n, path, plan[path], preset)
                    running[pool.submit(run_one, path, plan[path], preset, build, True)] = path
                if not running:
                    break
                ended, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
                for future in ended:
                    path = running.pop(future)
                    done.add(path.stem)
                    failed |= not _finish(number[path.stem], n, future.result(), build, html, total)
        except BaseException:  # Interrupted: the children of the other threads go too
            _kill_running()
            raise
    alone = [p for p in order if p.stem in ALONE]
    if failed or not _run_in_order(alone, plan, preset, build, html, total, first=len(number) + 1):
        return 1
    if html:
        _write_index(build)
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
