"""Every write path, killed with SIGKILL in the middle of a write, then run again.

Method. Each writer runs in a child Python process (``driver.py``) that kills itself at a chosen,
deterministic point: just before the rename that would put the finished temporary file in place
(``rename``), at the same point with the temporary file cut to half its bytes (``partial``), or,
for the SQLite store, inside the transaction (``commit`` / ``insert``). No timers, no races: the
point is found through Python's ``os.rename`` audit event (or a wrapped SQLite connection).

After the kill (return code -9) the workspace is compared with its state before:

* nothing committed before is lost or changed (the earlier version, result key, page, dataset);
* no new visible file appeared: whatever the killed writer left is a hidden temporary name that
  no reader picks up.

Then the same entry point runs again, in this process, and must produce exactly what a clean run
produces (same dataset tables, same weights bit for bit at the fixed seed, the earlier store
version and result key still there). Where the next run promises to sweep what a killed writer
left (the data cache: datasets and models), the leftovers are first aged by two hours with
``os.utime``; after the rerun they must be gone while a young temporary file (perhaps another run's,
still being written) must still be there. The rerun itself must leave no temporary file behind.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faultkit import (
    NOTEBOOK,
    PAGE_TEXT,
    assert_same_dataset,
    assert_same_state,
    folders,
    hidden,
    run_killed,
    store_path,
    target,
    top_hidden,
    tree,
    truncate,
    vectors,
    write,
)

SWEPT = {"dataset", "candidate", "item2vec", "ranker"}
"""Write paths whose next run removes an aged temporary file a killed writer left (the data cache)."""

STALE_AGE = 2 * 3600.0


@dataclass
class Outcome:
    writer: str
    value: Any              # what the rerun returned
    leftovers: set[str]     # hidden entries the killed writer left (relative to the workspace)
    after_rerun: dict[str, str]
    decoy: Path | None      # a young temporary file placed before the rerun (SWEPT writers)

    def assert_swept(self) -> None:
        """The rerun removed the aged leftovers of the killed write, and kept the young decoy.

        Tests call this last, so that a missing sweep does not hide the other checks.
        """
        if self.writer not in SWEPT:
            return
        assert self.decoy.exists(), f"the rerun of {self.writer} removed a young temporary file {self.decoy}"
        stale = sorted(self.leftovers & set(self.after_rerun))
        assert not stale, (f"the rerun of {self.writer} did not sweep the temporary files a killed write "
                           f"left (aged {STALE_AGE / 3600:g} h): {stale}")


def kill(writer: str, root: Path, mode: str, mutable: Callable[[str], bool]) -> tuple[dict, dict]:
    """Run ``writer`` killed at ``mode``; check nothing before was lost and nothing partial is visible.

    Returns the workspace's files before and after the kill (see :func:`faultkit.tree`).
    """
    before = tree(root)
    proc = run_killed(writer, root, mode)
    assert proc.returncode == -signal.SIGKILL, (
        f"the {writer} writer was not killed at {mode!r} (return code {proc.returncode}):\n"
        f"{proc.stderr[-3000:]}")
    after = tree(root)
    lost = sorted(rel for rel, h in before.items() if not mutable(rel) and after.get(rel) != h)
    assert not lost, f"killed {writer} write lost or changed what was there before: {lost}"
    shown = sorted(rel for rel in set(after) - set(before)
                   if after[rel] != "dir" and not hidden(rel) and not mutable(rel))
    assert not shown, f"killed {writer} write left visible (partial) files: {shown}"
    return before, after


def age_and_add_decoy(writer: str, root: Path, leftovers: set[str]) -> Path:
    """Make ``leftovers`` look two hours old; put a young temporary file beside the target."""
    old = time.time() - STALE_AGE
    for rel in leftovers:
        os.utime(root / rel, (old, old), follow_symlinks=False)
    name = target(writer, root)
    name.parent.mkdir(parents=True, exist_ok=True)
    decoy = name.parent / f".{name.name.replace('*', 'x')}.young.tmp"
    decoy.write_bytes(b"another run is writing this right now")
    return decoy


def rerun(writer: str, root: Path, damaged_before: bool) -> Any:
    """Run ``writer`` again in this process; it may warn about a damaged target only if one was there."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = write(writer, root)
    name = target(writer, root).name
    words = [(str(w.message), re.split(r"[\s/()'\"]+", str(w.message))) for w in caught]
    about_target = [m for m, ws in words if any(fnmatch.fnmatch(word, name) for word in ws)]
    if damaged_before:
        assert about_target, f"the rerun of {writer} replaced the damaged {name} without a warning"
    else:
        assert not about_target, f"the rerun of {writer} met a damaged target after the kill: {about_target}"
    return value


def kill_then_rerun(writer: str, root: Path, mode: str,
                    mutable: Callable[[str], bool] = lambda rel: False,
                    between: Callable[[], None] = lambda: None, damaged_before: bool = False) -> Outcome:
    """Kill ``writer`` at ``mode``, check nothing was lost or half-shown, then run it again here.

    ``mutable(rel)`` marks paths the killed write may legitimately change (a SQLite file and its
    journal; a damaged cache being replaced): ``between()``, called after the kill, checks those.
    The rerun may warn about a damaged target only when one was put there before (``damaged_before``).
    """
    before, after = kill(writer, root, mode, mutable)
    between()
    leftovers = top_hidden(set(after) - set(before))
    decoy = age_and_add_decoy(writer, root, leftovers) if writer in SWEPT else None
    value = rerun(writer, root, damaged_before)
    after_rerun = tree(root)
    placed = {decoy.relative_to(root).as_posix()} if decoy else set()
    new_hidden = top_hidden(set(after_rerun) - set(after)) - placed
    assert not new_hidden, f"the rerun of {writer} left temporary files of its own: {sorted(new_hidden)}"
    return Outcome(writer, value, leftovers, after_rerun, decoy)


# ----------------------------------------------------------------------------------------------------
# dataset cache
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["rename", "partial", "over-damaged"])
def test_killed_dataset_cache_write(mode, workspace, reference, monkeypatch):
    """``over-damaged``: a damaged copy is in place, and the writer is killed while replacing it (at
    the first rename that moves the old copy aside or the new one in)."""
    damaged = mode == "over-damaged"
    path = target("dataset", workspace)
    if damaged:
        reference.copy_to(workspace, models=False)
        truncate(path / "impressions.npz")
    inside = path.relative_to(workspace).as_posix() + "/"
    out = kill_then_rerun("dataset", workspace, "rename" if damaged else mode,
                          mutable=lambda rel: damaged and rel.startswith(inside),  # may be replaced
                          damaged_before=damaged)
    assert_same_dataset(out.value, reference.dataset)

    from ytrec_lib.data import datasets

    def no_simulation(*args, **kwargs):
        raise AssertionError("the rerun's cache should have been read, not simulated again")

    monkeypatch.setattr(datasets, "simulate", no_simulation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same_dataset(write("dataset", workspace), reference.dataset)
    out.assert_swept()


# ----------------------------------------------------------------------------------------------------
# model artefacts
# ----------------------------------------------------------------------------------------------------


def _same_model(writer: str, value: Any, reference: Any) -> None:
    if writer == "candidate":
        assert_same_state(value.model.state_dict(), reference.candidate)
    elif writer == "item2vec":
        np.testing.assert_array_equal(value, reference.item2vec)
    else:
        assert_same_state(value.model.state_dict(), reference.ranker)


@pytest.mark.parametrize("mode", ["rename", "partial"])
@pytest.mark.parametrize("writer", ["candidate", "item2vec", "ranker"])
def test_killed_model_write(writer, mode, workspace, reference):
    reference.copy_to(workspace, models=False)
    out = kill_then_rerun(writer, workspace, mode)
    _same_model(writer, out.value, reference)
    pattern = target(writer, workspace)
    assert len(list(pattern.parent.glob(pattern.name))) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = write(writer, workspace)       # now from the cache
    _same_model(writer, again, reference)
    if writer == "candidate":
        assert not out.value.from_cache and again.from_cache
    out.assert_swept()


# ----------------------------------------------------------------------------------------------------
# embedding store
# ----------------------------------------------------------------------------------------------------


def _assert_store_holds(path: Path, version: str, number: int) -> None:
    from ytrec_lib.serving.store import EmbeddingStore

    users, videos = vectors(number)
    with EmbeddingStore(path) as store:
        assert version in store.versions()
        np.testing.assert_array_equal(store.get_users(np.arange(len(users)), version), users)
        np.testing.assert_array_equal(store.get_users(np.array([3, 1]), version), users[[3, 1]])
        ids, got = store.get_videos(version=version)
        np.testing.assert_array_equal(ids, np.arange(len(videos)))
        np.testing.assert_array_equal(got, videos)
        assert store.version_info(version)["meta"] == {"n": number}


@pytest.mark.parametrize("mode", ["commit", "insert"])
def test_killed_store_version_write(mode, workspace):
    """A version committed before survives a killed ``write_version`` of the next; the next rerun works."""
    from ytrec_lib.serving.store import EmbeddingStore

    path = store_path(workspace)
    with EmbeddingStore(path) as store:
        store.write_version("v1", *vectors(1), meta={"n": 1})
    name = path.relative_to(workspace).as_posix()

    def only_v1() -> None:
        with EmbeddingStore(path) as store:
            assert store.versions() == ["v1"] and store.active_version() == "v1"
        _assert_store_holds(path, "v1", 1)

    kill_then_rerun("store", workspace, mode, mutable=lambda rel: rel.startswith(name), between=only_v1)
    with EmbeddingStore(path) as store:
        assert store.versions() == ["v1", "v2"] and store.active_version() == "v2"
    _assert_store_holds(path, "v1", 1)
    _assert_store_holds(path, "v2", 2)


@pytest.mark.parametrize("mode", ["rename", "partial"])
def test_killed_system_store_write(mode, workspace):
    """``system.write_store`` over an existing store: killed, the old file is intact; rerun, the new one."""
    from ytrec_lib.serving import system

    path = store_path(workspace)
    system.write_store(path, *vectors(1), {"n": 1})
    kill_then_rerun("write_store", workspace, mode)
    _assert_store_holds(path, "candidate", 2)


# ----------------------------------------------------------------------------------------------------
# results and the HTML report
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["rename", "partial"])
def test_killed_results_write(mode, workspace):
    """A recorded key survives a killed ``record`` of the next key, and no reader sees the temp file."""
    from ytrec_lib import report

    report.record("first", 1, notebook=NOTEBOOK)

    def first_only() -> None:
        assert report.load(NOTEBOOK) == {"first": 1}
        assert report.load_all() == {NOTEBOOK: {"first": 1}}

    kill_then_rerun("results", workspace, mode, between=first_only)
    assert report.load(NOTEBOOK) == {"first": 1, "second": 2}
    path = folders(workspace)["results"] / f"{NOTEBOOK}.json"
    assert json.loads(path.read_text()) == {"first": 1, "second": 2}


@pytest.fixture()
def built_notebook(workspace: Path) -> Path:
    """A build folder with an executed notebook, its results and an earlier page and index."""
    import nbformat

    f = folders(workspace)
    (f["build"] / "notebooks").mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(PAGE_TEXT)])
    nbformat.write(nb, f["build"] / "notebooks" / f"{NOTEBOOK}.ipynb")
    f["results"].mkdir(parents=True)
    (f["results"] / f"{NOTEBOOK}.json").write_text(json.dumps({"first": 1}))
    (f["build"] / "html").mkdir()
    (f["build"] / "html" / f"{NOTEBOOK}.html").write_text("<html>an earlier page</html>")
    (f["build"] / "index.html").write_text("<html>an earlier index</html>")
    return f["build"]


@pytest.mark.parametrize("mode", ["rename", "partial"])
@pytest.mark.parametrize("writer", ["html_page", "html_index"])
def test_killed_html_report_write(writer, mode, built_notebook, workspace):
    out = kill_then_rerun(writer, workspace, mode)
    text = Path(out.value).read_text(encoding="utf-8")
    if writer == "html_page":
        assert PAGE_TEXT in text
    else:
        assert f"html/{NOTEBOOK}.html" in text and "first" in text
