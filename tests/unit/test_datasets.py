"""datasets.load: presets, the verified cache (atomic, rebuilt when damaged), Dataset helpers."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from ytrec_lib.data import datasets
from ytrec_lib.data.simulator import GENERATOR_VERSION


@pytest.fixture()
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    return tmp_path


def _assert_same(a: datasets.Dataset, b: datasets.Dataset) -> None:
    for table in datasets.TABLES:
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
    assert a.meta == b.meta


def _forbid_simulation(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("should have been read from the cache")
    monkeypatch.setattr(datasets, "simulate", boom)


def test_known_presets_and_unknown_name():
    assert {"tiny", "ci", "small", "large"} <= set(datasets.known_presets())
    with pytest.raises(ValueError, match=r"unknown preset 'nope'; known presets: tiny, ci, small, large"):
        datasets.load("nope")
    with pytest.raises(ValueError, match="seed"):
        datasets.load("tiny", seed=-3)
    with pytest.raises(ValueError, match="style"):
        datasets.load("tiny", style="anime")


def test_first_load_writes_a_verified_cache_and_the_second_reads_it(data_root, monkeypatch):
    ds = datasets.load("tiny", seed=0, progress=False)
    path = datasets.cache_path("tiny", 0)
    assert path == data_root / f"tiny-seed0-v{GENERATOR_VERSION}" and path.is_dir()
    manifest = json.loads((path / "manifest.json").read_text())
    names = {"users.npz", "videos.npz", "impressions.npz", "searches.npz", "world.npz"}
    assert set(manifest["files"]) == names
    assert not [p for p in data_root.iterdir() if p.name.startswith(".")], "no temporary folders left"
    _forbid_simulation(monkeypatch)
    again = datasets.load("tiny", seed=0, progress=False)
    _assert_same(ds, again)
    # the ground truth comes back too
    u, t = np.array([0, 5, 9]), np.array([3.0, 7.5, 12.0])
    assert np.array_equal(ds.truth.next_watch_probs(u, t), again.truth.next_watch_probs(u, t))


def test_same_seed_identical_other_seed_different(data_root):
    a = datasets.load("tiny", seed=3, cache=False, progress=False)
    b = datasets.load("tiny", seed=3, cache=False, progress=False)
    c = datasets.load("tiny", seed=4, cache=False, progress=False)
    _assert_same(a, b)
    assert not a.impressions["video_id"].equals(c.impressions["video_id"])
    assert not list(data_root.iterdir()), "cache=False writes nothing"


@pytest.fixture(scope="module")
def clean_cache(tmp_path_factory):
    """A valid cached tiny dataset (seed 1), generated once; each test copies it."""
    root = tmp_path_factory.mktemp("clean")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YTREC_DATA_DIR", str(root))
        ds = datasets.load("tiny", seed=1, progress=False)
        return ds, datasets.cache_path("tiny", 1)


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete_file", "delete_manifest", "bad_manifest"])
def test_damaged_cache_is_detected_and_rebuilt(data_root, clean_cache, damage):
    ds, clean = clean_cache
    path = datasets.cache_path("tiny", 1)
    shutil.copytree(clean, path)
    f = path / "impressions.npz"
    if damage == "truncate":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif damage == "flip":
        b = bytearray(f.read_bytes())
        b[len(b) // 2] ^= 0xFF
        f.write_bytes(bytes(b))
    elif damage == "delete_file":
        f.unlink()
    elif damage == "delete_manifest":
        (path / "manifest.json").unlink()
    else:
        (path / "manifest.json").write_text("{ not json")
    with pytest.warns(UserWarning, match="damaged"):
        rebuilt = datasets.load("tiny", seed=1, progress=False)
    _assert_same(ds, rebuilt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # now valid again: read without a warning
        _assert_same(ds, datasets.load("tiny", seed=1, progress=False))


def test_a_failed_write_leaves_no_cache_behind(data_root, monkeypatch):
    calls = {"n": 0}
    real = np.savez

    def failing_savez(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        datasets.load("tiny", seed=2, progress=False)
    assert not datasets.cache_path("tiny", 2).exists()
    assert not list(data_root.iterdir()), "the temporary folder is removed"


def test_studio_style_is_cached_separately(data_root):
    ugc = datasets.load("tiny", progress=False)
    studio = datasets.load("tiny", style="studio", progress=False)
    assert datasets.cache_path("tiny", 0, "studio").is_dir()
    assert studio.meta["style"] == "studio" and ugc.meta["style"] == "ugc"
    assert studio.videos["creator_id"].nunique() < ugc.videos["creator_id"].nunique()


def test_dataset_helpers(data_root):
    ds = datasets.load("tiny", progress=False)
    w = ds.watches()
    assert w["clicked"].all() and len(w) == int(ds.impressions["clicked"].sum())
    assert (np.diff(w["time"].to_numpy()) >= 0).all()
    seqs = ds.watch_sequences()
    assert len(seqs) == ds.n_users and sum(len(s) for s in seqs) == len(w)
    u = int(np.argmax([len(s) for s in seqs]))
    assert seqs[u].tolist() == w[w["user_id"] == u].sort_values("time")["video_id"].tolist()
    toks = ds.search_token_sequences()
    assert len(toks) == len(ds.searches) and all(t.dtype == np.int32 for t in toks)
    assert "Dataset('tiny'" in repr(ds)
    m = ds.meta
    for key in ("name", "seed", "n_users", "n_videos", "n_topics", "n_categories", "n_regions", "n_languages",
                "n_tokens", "t_end", "generator_version", "has_impressions", "has_searches", "has_truth"):
        assert key in m
    assert max(int(t.max()) for t in toks if t.size) < m["n_tokens"]


def test_cache_written_with_other_settings_is_rebuilt(data_root, clean_cache):
    ds, clean = clean_cache
    path = datasets.cache_path("tiny", 1)
    shutil.copytree(clean, path)
    mpath = path / "manifest.json"
    manifest = json.loads(mpath.read_text())
    manifest["config"]["w_quality"] = 123.0            # as if the generator's constants had changed
    mpath.write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="out of date.*w_quality"):
        rebuilt = datasets.load("tiny", seed=1, progress=False)
    _assert_same(ds, rebuilt)
    assert json.loads(mpath.read_text())["config"]["w_quality"] != 123.0


def test_cache_from_before_a_new_setting_is_still_valid(data_root, clean_cache, monkeypatch):
    """A setting added later (at its default, which never changes the world) does not force a rebuild."""
    ds, clean = clean_cache
    path = datasets.cache_path("tiny", 1)
    shutil.copytree(clean, path)
    mpath = path / "manifest.json"
    manifest = json.loads(mpath.read_text())
    del manifest["config"]["interest_drift"]
    mpath.write_text(json.dumps(manifest))
    _forbid_simulation(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_same(ds, datasets.load("tiny", seed=1, progress=False))
