"""Every persisted file, damaged on disk, then read by its entry point again.

Method. A clean artefact is copied from the reference workspace, then damaged in one of these ways:

* ``truncate``: only the first half of its bytes is left (a crash or a full disk);
* ``flip``: 16 bytes in the middle are inverted (bit rot, a bad copy);
* ``pickle``: replaced by a file of the right format that holds a pickle payload whose
  ``__reduce__`` opens a marker file for writing: an ``.npz`` with an object array, a torch
  checkpoint holding the object, a bare ``pickle.dumps`` (``raw-pickle``). For the dataset the
  manifest's checksum is updated too, so only refusing to unpickle can stop it;
* for JSON files: ``[]``, ``null`` and text that is not JSON.

The entry point is then called again. Where the file is a cache (dataset, models, the system's
store) it must be rebuilt, with a warning that names the damaged file, into exactly what the clean
run produced, and the rebuilt file must load without a warning. Where nothing can rebuild it (an
embedding store's versions, recorded results) the reader must raise a ``ValueError`` that names
the file and leave the file as it is. In every case the marker file must never appear: no cache
file is ever executed. (The HTML report is written, never read back, so it has no damage test.)
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faultkit import (
    CANDIDATE,
    NOTEBOOK,
    PRESET,
    RANKER,
    SEED,
    assert_same_dataset,
    assert_same_state,
    flip,
    folders,
    npz_payload,
    raw_pickle,
    store_path,
    target,
    torch_payload,
    truncate,
    vectors,
    write,
)

DATASET_FILES = ["users.npz", "videos.npz", "impressions.npz", "searches.npz", "world.npz"]
JSON_KINDS = ["truncate", "flip", "empty-list", "null", "not-json"]


def damage(path: Path, kind: str, marker: Path) -> None:
    """Damage ``path`` in place (see the module docstring for the kinds)."""
    if kind == "truncate":
        truncate(path)
    elif kind == "flip":
        flip(path)
    elif kind == "pickle" and path.suffix == ".npz":
        npz_payload(path, marker)
    elif kind == "pickle" and path.suffix == ".pt":
        torch_payload(path, marker)
    elif kind in ("pickle", "raw-pickle"):
        raw_pickle(path, marker)
    else:
        path.write_text({"empty-list": "[]", "null": "null", "not-json": '{"first": 1, '}[kind])


def rebuilt(writer: str, root: Path, damaged: Path, marker: Path) -> Any:
    """Run ``writer`` over the damaged file: a warning must name it, the payload must not run."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = write(writer, root)
    finally:
        assert not marker.exists(), f"reading the damaged {damaged.name} ran the pickle payload it held"
    messages = [str(w.message) for w in caught]
    assert any(damaged.name in m for m in messages), (
        f"no warning names the damaged file {damaged.name}; warnings: {messages}")
    return value


def clean_reload(writer: str, root: Path) -> Any:
    """The rebuilt file is whole again: it loads without any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return write(writer, root)


@pytest.fixture()
def marker(tmp_path: Path) -> Path:
    return tmp_path / "payload-ran"


# ----------------------------------------------------------------------------------------------------
# caches: rebuilt
# ----------------------------------------------------------------------------------------------------


def _dataset_cases() -> list:
    cases = [(f, k) for f in DATASET_FILES for k in ("truncate", "flip", "pickle")]
    return cases + [("manifest.json", k) for k in JSON_KINDS]


@pytest.mark.parametrize(("name", "kind"), _dataset_cases())
def test_damaged_dataset_file_is_rebuilt(name, kind, workspace, reference, marker):
    reference.copy_to(workspace, models=False)
    folder = target("dataset", workspace)
    path = folder / name
    damage(path, kind, marker)
    if kind == "pickle":            # a consistent manifest: only refusing to unpickle stops the payload
        manifest = json.loads((folder / "manifest.json").read_text())
        import hashlib

        manifest["files"][name] = {"bytes": path.stat().st_size,
                                   "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        (folder / "manifest.json").write_text(json.dumps(manifest))
    assert_same_dataset(rebuilt("dataset", workspace, path, marker), reference.dataset)
    assert_same_dataset(clean_reload("dataset", workspace), reference.dataset)


MODEL_KINDS = {"candidate": ["truncate", "flip", "pickle", "raw-pickle"],
               "item2vec": ["truncate", "flip", "pickle"],
               "ranker": ["truncate", "flip", "pickle", "raw-pickle"]}


@pytest.mark.parametrize(("writer", "kind"), [(w, k) for w, kinds in MODEL_KINDS.items() for k in kinds])
def test_damaged_model_file_is_retrained(writer, kind, workspace, reference, marker):
    reference.copy_to(workspace)
    pattern = target(writer, workspace)
    (path,) = pattern.parent.glob(pattern.name)
    damage(path, kind, marker)
    value = rebuilt(writer, workspace, path, marker)
    again = clean_reload(writer, workspace)
    for v in (value, again):
        if writer == "item2vec":
            np.testing.assert_array_equal(v, reference.item2vec)
        else:
            assert_same_state(v.model.state_dict(), getattr(reference, writer))


@pytest.mark.parametrize("kind", ["truncate", "flip", "raw-pickle"])
def test_damaged_system_store_is_rebuilt(kind, workspace, reference, marker):
    """``pipeline.system``'s embedding store is a cache of the candidate model: rebuilt when damaged."""

    reference.copy_to(workspace)

    def build() -> tuple[Path, np.ndarray, np.ndarray]:
        from ytrec_lib import pipeline

        bundle = pipeline.system(PRESET, SEED, index_kind="exact", progress=False,
                                 candidate_config=CANDIDATE, ranker_config=RANKER)
        store = bundle.system.store
        users = store.get_users(np.arange(bundle.system.n_users))       # (U, d)
        _, videos = store.get_videos()                                   # (V, d)
        store.close()
        return bundle.store_path, users, videos

    path, users, videos = build()
    damage(path, kind, marker)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            again_path, again_users, again_videos = build()
        finally:
            assert not marker.exists()
    messages = [str(w.message) for w in caught]
    assert any(path.name in m for m in messages), f"no warning names {path.name}; warnings: {messages}"
    assert again_path == path
    np.testing.assert_array_equal(again_users, users)
    np.testing.assert_array_equal(again_videos, videos)


# ----------------------------------------------------------------------------------------------------
# the record of work: refused with a clear error, left as it is
# ----------------------------------------------------------------------------------------------------


def _read_everything(path: Path) -> None:
    """Every read path of every version of the store at ``path`` (bulk blocks and per-id rows)."""
    from ytrec_lib.serving.store import EmbeddingStore

    users, videos = vectors(1)
    with EmbeddingStore(path) as store:
        assert store.versions() == ["v1"]
        np.testing.assert_array_equal(store.get_users(np.arange(len(users))), users)
        for i in range(len(users)):
            np.testing.assert_array_equal(store.get_user(i), users[i])
        ids, got = store.get_videos()
        np.testing.assert_array_equal(got, videos)
        for i in range(len(videos)):
            np.testing.assert_array_equal(store.get_videos(np.array([i]))[1][0], videos[i])
        assert store.version_info("v1")["meta"] == {"n": 1}


@pytest.mark.parametrize("kind", ["truncate", "flip", "raw-pickle"])
def test_damaged_embedding_store_is_refused(kind, workspace, marker):
    """A damaged store raises a ValueError naming the file on open or on a read, or reads back whole."""
    from ytrec_lib.serving.store import EmbeddingStore

    path = store_path(workspace)
    with EmbeddingStore(path) as store:
        store.write_version("v1", *vectors(1), meta={"n": 1})
    damage(path, kind, marker)
    damaged = path.read_bytes()
    try:
        _read_everything(path)
    except ValueError as err:
        assert path.name in str(err), f"the error does not name the store file: {err}"
    finally:
        assert not marker.exists()
    assert path.read_bytes() == damaged, "reading a damaged store changed the file"


@pytest.mark.parametrize("kind", JSON_KINDS)
def test_damaged_results_file_is_refused(kind, workspace, marker):
    """``record`` into a damaged results file raises a ValueError naming it and does not overwrite it
    (the keys recorded before are still in there for a person to recover); readers raise too."""
    from ytrec_lib import report

    report.record("first", 1, notebook=NOTEBOOK)
    path = folders(workspace)["results"] / f"{NOTEBOOK}.json"
    damage(path, kind, marker)
    damaged = path.read_bytes()
    name = re.escape(path.name)
    with pytest.raises(ValueError, match=name):
        report.record("second", 2, notebook=NOTEBOOK)
    assert path.read_bytes() == damaged
    with pytest.raises(ValueError, match=name):
        report.load(NOTEBOOK)
    with pytest.raises(ValueError, match=name):
        report.load_all()
