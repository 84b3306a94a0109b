"""Cached model artefacts: never executed, rebuilt when damaged, retrained when the world changes.

Every model cached under ``<data dir>/models/`` (candidate checkpoint, item2vec ``.npz``, ranker ``.pt``)
and the embedding store of :func:`ytrec_lib.serving.system.build_system` are read weights/arrays-only through
``ytrec_lib.data.cache.load_or_build``, and keyed by :func:`ytrec_lib.data.cache.data_fingerprint`.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ytrec_lib import train
from ytrec_lib.data import datasets, presets
from ytrec_lib.data.cache import data_fingerprint
from ytrec_lib.models import candidate, ranking
from ytrec_lib.models import item2vec as iv
from ytrec_lib.serving import system as S

CANDIDATE = {"epochs": 1, "tower": [16], "n_negatives": 50, "dim": 8}
RANKER = {"epochs": 1, "hidden": [8], "dim": 8, "max_train_impressions": 4000}
ITEM2VEC = {"kind": "videos", "dim": 8, "seed": 0, "epochs": 1}


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models train faster on one thread, and CI machines are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _Payload:
    """Unpickling this object creates the file ``marker``: what a hostile cache file would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return open, (self.marker, "w")


def _counter(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Wrap ``owner.name`` so that each call appends to the returned list (the training functions)."""
    calls: list[int] = []
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def _recorded(fn: Callable[[], Any]) -> tuple[Any, list[str]]:
    """``fn()`` and the messages of every warning it raised."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        value = fn()
    return value, [str(w.message) for w in rec]


# ----------------------------------------------------------------------------------------------------
# damaged and hostile files


@pytest.fixture(scope="module")
def prebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the tiny dataset and one cached candidate model, ranker and item2vec model."""
    root = tmp_path_factory.mktemp("prebuilt")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YTREC_DATA_DIR", str(root))
        ds = datasets.load("tiny", 0, progress=False)
        candidate.trained_candidate_model("tiny", 0, progress=False, init="random", **CANDIDATE)
        S.trained_ranker(ds, "tiny", 0, progress=False, **RANKER)
        iv.pretrained_embeddings(ds, **ITEM2VEC)
    return root


def _candidate(calls: list[int]) -> tuple[Any, bool]:
    run = candidate.trained_candidate_model("tiny", 0, progress=False, init="random", **CANDIDATE)
    return {k: v.clone() for k, v in run.model.state_dict().items()}, run.from_cache


def _ranker(calls: list[int]) -> tuple[Any, bool]:
    n = len(calls)
    ranker = S.trained_ranker(datasets.load("tiny", 0, progress=False), "tiny", 0, progress=False, **RANKER)
    return {k: v.clone() for k, v in ranker.model.state_dict().items()}, len(calls) == n


def _item2vec(calls: list[int]) -> tuple[Any, bool]:
    n = len(calls)
    table = iv.pretrained_embeddings(datasets.load("tiny", 0, progress=False), **ITEM2VEC)
    return {"table": torch.from_numpy(table)}, len(calls) == n


ARTEFACTS = {  # name -> (file pattern under models/, what trains it, how to get it)
    "candidate": ("candidate-tiny-*.pt", (train, "fit"), _candidate),
    "ranker": ("ranker-tiny-*.pt", (ranking, "fit_ranker"), _ranker),
    "item2vec": ("item2vec-tiny-*-videos-*.npz", (iv.Item2Vec, "fit"), _item2vec),
}


def _hostile(path: Path, marker: Path) -> None:
    """Replace ``path`` with a file of the same kind whose unpickling would create ``marker``."""
    if path.suffix == ".npz":
        with open(path, "wb") as fh:
            np.savez(fh, meta=np.array([_Payload(marker)], dtype=object), ids=np.arange(3))
    else:
        torch.save({"format": candidate.CHECKPOINT_FORMAT, "state_dict": _Payload(marker)}, path)


def _damage(path: Path, how: str, marker: Path) -> None:
    if how == "pickle":
        _hostile(path, marker)
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(np.random.default_rng(0).bytes(4096))


def test_the_hostile_payloads_are_live(tmp_path: Path) -> None:
    """The payloads the next test plants do run code when a file is unpickled without restriction."""
    marker = tmp_path / "marker"
    _hostile(tmp_path / "x.pt", marker)
    torch.load(tmp_path / "x.pt", weights_only=False)
    assert marker.exists()
    marker.unlink()
    _hostile(tmp_path / "x.npz", marker)
    with np.load(tmp_path / "x.npz", allow_pickle=True) as z:
        _ = z["meta"]
    assert marker.exists()


@pytest.mark.parametrize("how", ["pickle", "truncated", "garbage"])
@pytest.mark.parametrize("name", list(ARTEFACTS))
def test_a_damaged_or_hostile_artefact_is_rebuilt_never_executed(
    name: str, how: str, prebuilt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    shutil.copytree(prebuilt, root)
    monkeypatch.setenv("YTREC_DATA_DIR", str(root))
    pattern, (owner, trainer), get = ARTEFACTS[name]
    (path,) = (root / "models").glob(pattern)
    calls = _counter(monkeypatch, owner, trainer)
    marker = tmp_path / "marker"
    _damage(path, how, marker)

    (rebuilt, from_cache), messages = _recorded(lambda: get(calls))
    assert not marker.exists()  # the payload never ran
    assert not from_cache and len(calls) == 1
    named = [m for m in messages if str(path) in m]
    assert len(named) == 1 and "\n" not in named[0], messages  # one warning line naming the file
    assert not [m for m in messages if "rebuild" in m and m not in named]

    (again, from_cache), messages = _recorded(lambda: get(calls))
    assert from_cache and len(calls) == 1 and not [m for m in messages if str(path) in m]
    assert all(torch.equal(again[k], rebuilt[k]) for k in rebuilt)
    assert not marker.exists()
    assert sorted(p.name for p in (root / "models").iterdir()) == sorted(
        p.name for p in (prebuilt / "models").iterdir())  # rebuilt in place, no temp file left


def test_load_checkpoint_refuses_a_hostile_file_with_a_value_error(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    _hostile(tmp_path / "m.pt", marker)
    with pytest.raises(ValueError, match=r"m\.pt is not a readable checkpoint"):
        candidate.load_checkpoint(tmp_path / "m.pt")
    assert not marker.exists()
    torch.save({"format": candidate.CHECKPOINT_FORMAT, "hparams": {"n_videos": 3}, "state_dict": {},
                "extra": {}}, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"m\.pt is not a usable ytrec-candidate-v1 checkpoint"):
        candidate.load_checkpoint(tmp_path / "m.pt")


def test_the_ranker_file_loads_weights_only(prebuilt: Path) -> None:
    (path,) = (prebuilt / "models").glob("ranker-tiny-*.pt")
    payload = torch.load(path, weights_only=True)  # no numpy arrays or other objects inside
    assert payload["format"] == S.RANKER_FORMAT and isinstance(payload["normalizer"]["quantiles"], list)
    json.dumps({k: v for k, v in payload.items() if k != "state_dict"})


def test_a_damaged_store_is_rebuilt_with_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    kw = {"index_kind": "exact", "progress": False, "candidate_config": CANDIDATE | {"init": "random"},
          "ranker_config": RANKER}
    first = S.build_system("tiny", 0, **kw)
    uid = int(first.test_users[0])
    shown = first.system.recommend(uid).video_ids.tolist()
    first.system.store.close()
    first.store_path.write_bytes(b"garbage" * 100)
    again, messages = _recorded(lambda: S.build_system("tiny", 0, **kw))
    assert again.store_path == first.store_path
    named = [m for m in messages if str(first.store_path) in m]
    assert len(named) == 1 and "embedding store" in named[0], messages
    assert again.system.recommend(uid).video_ids.tolist() == shown


# ----------------------------------------------------------------------------------------------------
# a changed world retrains every model


def _files(root: Path) -> dict[str, int]:
    """Every cached model and store file under ``root``: name -> modification time (ns). SQLite's
    ``-wal`` / ``-shm`` companions of an open store and its ``.sha256`` are left out."""
    return {p.name: p.stat().st_mtime_ns for d in ("models", "system") for p in (root / d).iterdir()
            if not p.name.endswith(("-wal", "-shm", ".sha256"))}


def test_a_changed_simulator_setting_retrains_every_model(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    trained = {"candidate": _counter(monkeypatch, train, "fit"),
               "ranker": _counter(monkeypatch, ranking, "fit_ranker"),
               "item2vec": _counter(monkeypatch, iv.Item2Vec, "fit")}
    kw = {"index_kind": "exact", "progress": False, "candidate_config": CANDIDATE, "ranker_config": RANKER}
    first = S.build_system("tiny", 0, **kw)
    before = _files(tmp_path)
    assert {k: len(v) for k, v in trained.items()} == {"candidate": 1, "ranker": 1, "item2vec": 2}

    same = S.build_system("tiny", 0, **kw)  # the same world: everything comes from the caches
    assert same.run.from_cache and _files(tmp_path) == before
    assert {k: len(v) for k, v in trained.items()} == {"candidate": 1, "ranker": 1, "item2vec": 2}

    monkeypatch.setitem(presets.PRESET_SIZES["tiny"], "quality_sd", 1.5)  # one setting of the world
    with pytest.warns(UserWarning, match="out of date"):  # the dataset cache is regenerated ...
        edited = S.build_system("tiny", 0, **kw)
    assert edited.dataset.meta["world_key"] != first.dataset.meta["world_key"]
    assert data_fingerprint(edited.dataset) != data_fingerprint(first.dataset)
    # ... and so is every model: none of the old files is reused or overwritten
    assert {k: len(v) for k, v in trained.items()} == {"candidate": 2, "ranker": 2, "item2vec": 4}
    assert not edited.run.from_cache and edited.run.path != first.run.path
    assert edited.store_path != first.store_path
    after = _files(tmp_path)
    assert {k: after[k] for k in before} == before
    new = sorted(n.split("-")[0] for n in set(after) - set(before))
    assert new == ["candidate", "item2vec", "item2vec", "ranker", "store"]


def test_an_older_dataset_cache_without_world_key_gets_it(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    fresh = datasets.load("tiny", 0, progress=False)
    key = fresh.meta["world_key"]
    simulated = datasets.load("tiny", 0, config=presets.preset_config("tiny"), progress=False)
    assert simulated.meta["world_key"] == key
    manifest = datasets.cache_path("tiny", 0) / "manifest.json"
    stored = json.loads(manifest.read_text())
    del stored["meta"]["world_key"]  # as written before the key existed
    manifest.write_text(json.dumps(stored))
    old = datasets.load("tiny", 0, progress=False)
    assert old.meta["world_key"] == key and data_fingerprint(old) == data_fingerprint(fresh)
