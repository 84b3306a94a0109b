"""Cached model artefacts: never executed, rebuilt when damaged, retrained when the world changes.

Every model cached under ``<data dir>/models/`` (candidate checkpoint, the ranker's candidate scorer,
item2vec ``.npz``, ranker ``.pt``)
and the embedding store of :func:`ytrec_lib.pipeline.system` are read weights/arrays-only through
``ytrec_lib.data.cache.load_or_build``, and keyed by :func:`ytrec_lib.data.cache.data_fingerprint`.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ytrec_lib import pipeline
from ytrec_lib.data import datasets, presets, splits
from ytrec_lib.data.cache import data_fingerprint
from ytrec_lib.features import FeatureBuilder, FeatureSpec
from ytrec_lib.models import candidate, ranking
from ytrec_lib.models import item2vec as iv
from ytrec_lib.threads import limit_threads
from ytrec_lib.train import TrainConfig, fit

CANDIDATE = {"epochs": 1, "tower": [16], "n_negatives": 50, "dim": 8}
RANKER = {"epochs": 1, "hidden": [8], "dim": 8, "max_train_impressions": 4000}
ITEM2VEC = {"kind": "videos", "dim": 8, "seed": 0, "epochs": 1}
SCORER = {"epochs": 1, "tower": (16,), "dim": 8, "loss": "full", "seed": 0}
SCORER_CUTOFF = 7.0


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


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
        pipeline.candidate_model("tiny", 0, progress=False, init="random", **CANDIDATE)
        pipeline.ranker(ds, "tiny", 0, progress=False, **RANKER)
        pipeline.pretrained_embeddings(ds, **ITEM2VEC)
        pipeline.candidate_scorer(ds, SCORER_CUTOFF, progress=False, **SCORER)
    return root


def _candidate(calls: list[int]) -> tuple[Any, bool]:
    run = pipeline.candidate_model("tiny", 0, progress=False, init="random", **CANDIDATE)
    return {k: v.clone() for k, v in run.model.state_dict().items()}, run.from_cache


def _ranker(calls: list[int]) -> tuple[Any, bool]:
    n = len(calls)
    ranker = pipeline.ranker(datasets.load("tiny", 0, progress=False), "tiny", 0, progress=False, **RANKER)
    return {k: v.clone() for k, v in ranker.model.state_dict().items()}, len(calls) == n


def _item2vec(calls: list[int]) -> tuple[Any, bool]:
    n = len(calls)
    table = pipeline.pretrained_embeddings(datasets.load("tiny", 0, progress=False), **ITEM2VEC)
    return {"table": torch.from_numpy(table)}, len(calls) == n


def _scorer(calls: list[int]) -> tuple[Any, bool]:
    n = len(calls)
    model, _ = pipeline.candidate_scorer(datasets.load("tiny", 0, progress=False), SCORER_CUTOFF,
                                         progress=False, **SCORER)
    return {k: v.clone() for k, v in model.state_dict().items()}, len(calls) == n


ARTEFACTS = {  # name -> (file pattern under models/, what trains it, how to get it)
    "candidate": ("candidate-tiny-*.pt", (pipeline, "_train_candidate"), _candidate),
    "ranker": ("ranker-tiny-*.pt", (ranking, "fit_ranker"), _ranker),
    "item2vec": ("item2vec-tiny-*-videos-*.npz", (iv.Item2Vec, "fit"), _item2vec),
    "scorer": ("scorer-tiny-*.pt", (pipeline, "fit"), _scorer),
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


def _direct_scorer(ds: Any, cutoff: float, cfg: dict[str, Any]) -> tuple[candidate.CandidateModel, Any]:
    """The ranker's candidate scorer trained by hand, as ``models/ranking.py`` once did it itself."""
    spec = FeatureSpec()
    split = splits.next_watch_split(ds, train_cutoff=cutoff, seed=cfg["seed"])
    builder = FeatureBuilder.from_dataset(ds, spec, window=(0.0, cutoff))
    train = builder.examples(split.train["user_id"], split.train["time"], window_end=cutoff)
    n_tokens, n_regions = int(ds.meta.get("n_tokens") or 1), int(ds.meta["n_regions"])
    model = candidate.CandidateModel(ds.n_videos, n_tokens, n_regions, dim=cfg["dim"], tower=cfg["tower"],
                                     spec=spec, seed=cfg["seed"])
    config = TrainConfig(loss=cfg["loss"], epochs=cfg["epochs"], seed=cfg["seed"])
    with limit_threads(1, blas=False):
        fit(model, train, split.train["label"].to_numpy(), config, progress=False)
    return model, builder


def test_the_candidate_scorer_is_cached_and_equals_a_direct_training(
    prebuilt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    shutil.copytree(prebuilt, root)
    monkeypatch.setenv("YTREC_DATA_DIR", str(root))
    ds = datasets.load("tiny", 0, progress=False)
    cfg = SCORER | {"loss": "sampled", "seed": 1}  # not in the prebuilt cache
    calls = _counter(monkeypatch, pipeline, "fit")
    model, builder = pipeline.candidate_scorer(ds, SCORER_CUTOFF, progress=False, **cfg)
    assert len(calls) == 1
    (path,) = [p for p in (root / "models").glob("scorer-tiny-seed0-*.pt")
               if not (prebuilt / "models" / p.name).exists()]
    direct, direct_builder = _direct_scorer(ds, SCORER_CUTOFF, cfg)
    want = direct.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in model.state_dict().items())  # bit-equal weights

    same, _ = pipeline.candidate_scorer(ds, SCORER_CUTOFF, pipeline.ScorerConfig(**cfg), progress=False)
    assert same is model and len(calls) == 1  # the memo
    pipeline.clear_memo()
    loaded, loaded_builder = pipeline.candidate_scorer(ds, SCORER_CUTOFF, progress=False, **cfg)
    assert loaded is not model and len(calls) == 1  # read from the file, not trained
    assert all(torch.equal(v, want[k]) for k, v in loaded.state_dict().items())
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == candidate.CHECKPOINT_FORMAT and payload["extra"]["cutoff"] == SCORER_CUTOFF
    imp = ds.impressions.iloc[:40]
    args = (imp["user_id"], imp["video_id"], imp["time"])
    np.testing.assert_array_equal(ranking.candidate_scores(loaded, loaded_builder, *args, progress=False),
                                  ranking.candidate_scores(direct, direct_builder, *args, progress=False))

    pipeline.candidate_scorer(ds, SCORER_CUTOFF - 1.0, progress=False, **cfg)  # another cutoff: another file
    assert len(calls) == 2 and len(list((root / "models").glob("scorer-tiny-*.pt"))) == 3


def test_load_checkpoint_refuses_a_hostile_file_with_a_value_error(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    _hostile(tmp_path / "m.pt", marker)
    with pytest.raises(ValueError, match=r"m\.pt is not a readable checkpoint"):
        pipeline.load_candidate_checkpoint(tmp_path / "m.pt")
    assert not marker.exists()
    torch.save({"format": candidate.CHECKPOINT_FORMAT, "hparams": {"n_videos": 3}, "state_dict": {},
                "extra": {}}, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"m\.pt is not a usable ytrec-candidate-v1 checkpoint"):
        pipeline.load_candidate_checkpoint(tmp_path / "m.pt")


def test_the_ranker_file_loads_weights_only(prebuilt: Path) -> None:
    (path,) = (prebuilt / "models").glob("ranker-tiny-*.pt")
    payload = torch.load(path, weights_only=True)  # no numpy arrays or other objects inside
    assert payload["format"] == pipeline.RANKER_FORMAT
    assert isinstance(payload["normalizer"]["quantiles"], list)
    json.dumps({k: v for k, v in payload.items() if k != "state_dict"})


def test_a_damaged_store_is_rebuilt_with_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    kw = {"index_kind": "exact", "progress": False, "candidate_config": CANDIDATE | {"init": "random"},
          "ranker_config": RANKER}
    first = pipeline.system("tiny", 0, **kw)
    uid = int(first.test_users[0])
    shown = first.system.recommend(uid).video_ids.tolist()
    first.system.store.close()
    first.store_path.write_bytes(b"garbage" * 100)
    again, messages = _recorded(lambda: pipeline.system("tiny", 0, **kw))
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
    trained = {"candidate": _counter(monkeypatch, pipeline, "_train_candidate"),
               "ranker": _counter(monkeypatch, ranking, "fit_ranker"),
               "item2vec": _counter(monkeypatch, iv.Item2Vec, "fit")}
    kw = {"index_kind": "exact", "progress": False, "candidate_config": CANDIDATE, "ranker_config": RANKER}
    first = pipeline.system("tiny", 0, **kw)
    before = _files(tmp_path)
    assert {k: len(v) for k, v in trained.items()} == {"candidate": 1, "ranker": 1, "item2vec": 2}

    same = pipeline.system("tiny", 0, **kw)  # the same world: everything comes from the caches
    assert same.run.from_cache and _files(tmp_path) == before
    assert {k: len(v) for k, v in trained.items()} == {"candidate": 1, "ranker": 1, "item2vec": 2}

    monkeypatch.setitem(presets.PRESET_SIZES["tiny"], "quality_sd", 1.5)  # one setting of the world
    with pytest.warns(UserWarning, match="out of date"):  # the dataset cache is regenerated ...
        edited = pipeline.system("tiny", 0, **kw)
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


def test_a_changed_upstream_stage_retrains_the_stages_below_it(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The candidate model's key holds its item2vec tables' keys: new pretraining settings retrain the
    video table and the candidate model, and reuse the unchanged token table."""
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    trained = {"candidate": _counter(monkeypatch, pipeline, "_train_candidate"),
               "item2vec": _counter(monkeypatch, iv.Item2Vec, "fit")}
    first = pipeline.candidate_model("tiny", 0, progress=False, **CANDIDATE)
    assert {k: len(v) for k, v in trained.items()} == {"candidate": 1, "item2vec": 2}
    videos = {**pipeline.PRETRAINED_SETTINGS["videos"], "epochs": 2}
    monkeypatch.setitem(pipeline.PRETRAINED_SETTINGS, "videos", videos)
    edited = pipeline.candidate_model("tiny", 0, progress=False, **CANDIDATE)
    assert {k: len(v) for k, v in trained.items()} == {"candidate": 2, "item2vec": 3}
    assert edited.path != first.path and not edited.from_cache and first.path.exists()


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
