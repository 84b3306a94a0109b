"""Hostile and damaged files in the data layer: the dataset cache, killed writers' debris, downloads.

A damaged cache is rebuilt with one warning naming it, and the rebuilt dataset equals a fresh one;
a foreign file is refused, never executed; temporary folders of killed writers are swept.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ytrec_lib.data import datasets, download
from ytrec_lib.data.cache import file_sha256
from ytrec_lib.data.simulator import GENERATOR_VERSION
from ytrec_lib.studies import ann_bench

NPZ = ("users.npz", "videos.npz", "impressions.npz", "searches.npz", "world.npz")
DAY = 24 * 3600


@pytest.fixture()
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def clean_cache(tmp_path_factory):
    """A valid cached tiny dataset (seed 1) generated once, and a second, uncached generation of it."""
    root = tmp_path_factory.mktemp("clean")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YTREC_DATA_DIR", str(root))
        datasets.load("tiny", seed=1, progress=False)
        fresh = datasets.load("tiny", seed=1, cache=False, progress=False)
        return fresh, datasets.cache_path("tiny", 1)


def _copy_cache(clean: Path) -> Path:
    path = datasets.cache_path("tiny", 1)
    shutil.copytree(clean, path)
    return path


def _load_expecting_one_warning(naming: Path) -> datasets.Dataset:
    """``datasets.load("tiny", seed=1)``, asserting exactly one warning, that it names ``naming``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = datasets.load("tiny", seed=1, progress=False)
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1, msgs
    assert str(naming) in msgs[0] and msgs[0].endswith("; rebuilding it") and "\n" not in msgs[0], msgs[0]
    assert "running again" not in msgs[0], msgs[0]
    return ds


def _assert_equals_fresh(ds: datasets.Dataset, fresh: datasets.Dataset) -> None:
    for table in ("users", "impressions", "searches"):
        pd.testing.assert_frame_equal(getattr(ds, table), getattr(fresh, table))
    assert ds.meta == fresh.meta
    assert np.array_equal(ds.truth.world.v_quality, fresh.truth.world.v_quality)


def _read_back_silently() -> None:
    """The rebuilt cache is valid: it is read again without a warning and without simulating."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(datasets, "simulate", lambda *a, **k: pytest.fail("simulated instead of reading"))
            datasets.load("tiny", seed=1, progress=False)


# --------------------------------------------------------------------------------------------
# the manifest
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", ["[]", "null", "3", '"text"', "truncated"])
def test_manifest_that_is_not_an_object_is_rebuilt_with_one_warning(data_root, clean_cache, content):
    fresh, clean = clean_cache
    mpath = _copy_cache(clean) / "manifest.json"
    if content == "truncated":
        content = mpath.read_text()[: mpath.stat().st_size // 2]
    mpath.write_text(content)
    ds = _load_expecting_one_warning(naming=mpath)     # warns; must not raise AttributeError
    _assert_equals_fresh(ds, fresh)
    assert json.loads(mpath.read_text())["generator_version"] == GENERATOR_VERSION
    _read_back_silently()


@pytest.mark.parametrize("change", [
    {"files": []}, {"files": {"users.npz": 3}}, {"files": {"../users.npz": {"bytes": 1, "sha256": "x"}}},
    {"schema": None}, {"schema": {"users": [["user_id"]]}}, {"config": None}, {"meta": []},
], ids=["files-list", "file-info-number", "file-outside", "schema-null", "schema-pair", "config-null",
        "meta-list"])
def test_manifest_with_parts_of_the_wrong_shape_is_rebuilt(data_root, clean_cache, change):
    fresh, clean = clean_cache
    path = _copy_cache(clean)
    mpath = path / "manifest.json"
    manifest = json.loads(mpath.read_text())
    manifest.update(change)
    mpath.write_text(json.dumps(manifest))
    ds = _load_expecting_one_warning(naming=path)
    _assert_equals_fresh(ds, fresh)
    _read_back_silently()


def test_deleted_manifest_is_rebuilt(data_root, clean_cache):
    fresh, clean = clean_cache
    path = _copy_cache(clean)
    (path / "manifest.json").unlink()
    _assert_equals_fresh(_load_expecting_one_warning(naming=path), fresh)
    _read_back_silently()


# --------------------------------------------------------------------------------------------
# the array files
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncate", "flip"])
@pytest.mark.parametrize("fname", NPZ)
def test_each_damaged_array_file_is_rebuilt(data_root, clean_cache, fname, damage):
    fresh, clean = clean_cache
    f = _copy_cache(clean) / fname
    raw = bytearray(f.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    ds = _load_expecting_one_warning(naming=f.parent)
    _assert_equals_fresh(ds, fresh)
    _read_back_silently()


class _RunsCode:
    """Unpickling this object creates the file ``marker``: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("checksum", ["stale", "matching"])
@pytest.mark.parametrize("fname", ["impressions.npz", "world.npz"])
def test_pickle_payload_in_an_array_file_is_refused_never_unpickled(data_root, clean_cache, tmp_path,
                                                                    fname, checksum):
    """An ``.npz`` holding an object array (a pickle) is rebuilt, even when the manifest's checksum
    was updated to match it, and its pickle never runs."""
    fresh, clean = clean_cache
    path = _copy_cache(clean)
    marker = tmp_path / "unpickled"
    f = path / fname
    with open(f, "wb") as fh:
        np.savez(fh, clicked=np.array([_RunsCode(marker)], dtype=object))
    with np.load(f, allow_pickle=True) as z:           # the payload is live: loading it with pickle runs it
        z["clicked"]
    assert marker.exists()
    marker.unlink()
    if checksum == "matching":
        mpath = path / "manifest.json"
        manifest = json.loads(mpath.read_text())
        manifest["files"][fname] = {"bytes": f.stat().st_size, "sha256": file_sha256(f)}
        mpath.write_text(json.dumps(manifest))
    ds = _load_expecting_one_warning(naming=path)
    assert not marker.exists(), "the pickle was executed"
    _assert_equals_fresh(ds, fresh)
    _read_back_silently()


# --------------------------------------------------------------------------------------------
# debris of killed writers
# --------------------------------------------------------------------------------------------
def _debris(folder: Path, name: str, age_s: float, is_dir: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    if is_dir:
        p.mkdir()
        (p / "impressions.npz").write_bytes(b"\0" * 1000)
    else:
        p.write_bytes(b"\0" * 1000)
    t = time.time() - age_s
    os.utime(p, (t, t))
    return p


def test_load_sweeps_stale_temporary_folders_of_killed_writers(data_root):
    v = GENERATOR_VERSION
    old = [
        _debris(data_root, f".tiny-seed0-v{v}.tmpk3j_x9a1", DAY),                  # the former naming
        _debris(data_root, f".small-seed0-v{v}.zq81mw0c.tmp", DAY),                # temp_sibling's naming
        _debris(data_root / "models", ".candidate-tiny-seed0-abc.pt.8fj2k1.tmp", DAY, is_dir=False),
        _debris(data_root / "system", ".store-tiny-seed0-abc.sqlite.x1y2z3.tmp", DAY, is_dir=False),
    ]
    running = [                                           # a writer that is still at work keeps its files
        _debris(data_root, f".tiny-seed0-v{v}.tmpnew12345", 5),
        _debris(data_root / "models", ".ranker-tiny-seed0-abc.pt.k2j3h4.tmp", 5, is_dir=False),
    ]
    keep = [_debris(data_root, "notes.tmp", DAY, is_dir=False),                   # not a hidden temp name
            _debris(data_root / "models", "candidate-tiny-seed0-abc.pt", DAY, is_dir=False)]
    datasets.load("tiny", progress=False)
    assert [p for p in old if p.exists()] == []
    assert all(p.exists() for p in running + keep)
    assert datasets.cache_path("tiny", 0).is_dir()


def test_load_without_cache_touches_nothing(data_root):
    stale = _debris(data_root, f".tiny-seed0-v{GENERATOR_VERSION}.tmpk3j_x9a1", DAY)
    datasets.load("tiny", cache=False, progress=False)
    assert stale.exists()


def test_cache_write_stages_in_a_marked_temporary_folder(data_root, monkeypatch):
    """The staging folder's name carries the temp mark (so a sweep finds it after a kill)."""
    seen = []
    real_savez = np.savez

    def spy(file, *args, **kwargs):
        seen.append(Path(file).parent.name)
        return real_savez(file, *args, **kwargs)

    monkeypatch.setattr(np, "savez", spy)
    datasets.load("tiny", progress=False)
    name = datasets.cache_path("tiny", 0).name
    assert seen and all(s.startswith(f".{name}.") and s.endswith(".tmp") for s in seen), seen
    assert [p.name for p in data_root.iterdir()] == [name]


def test_cache_written_meanwhile_by_another_process_is_kept(data_root, clean_cache):
    """Two processes generate the same dataset: the second rename finds the first copy and keeps it."""
    _, clean = clean_cache
    path = datasets.cache_path("tiny", 1)
    real_replace = os.replace

    def racing_replace(src, dst):
        if Path(dst) == path and not path.exists():
            shutil.copytree(clean, path)                 # the other process finished first
        return real_replace(src, dst)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.os, "replace", racing_replace)
        datasets.load("tiny", seed=1, progress=False)
    assert [p.name for p in data_root.iterdir()] == [path.name]
    assert (path / "manifest.json").read_bytes() == (clean / "manifest.json").read_bytes()
    _read_back_silently()


# --------------------------------------------------------------------------------------------
# downloads and the benchmark writer
# --------------------------------------------------------------------------------------------
def test_download_stages_in_a_marked_folder_and_sweeps_old_ones(tmp_path):
    data = tmp_path / "data"
    stale = _debris(data, ".movielens-1m.ab12cd34.tmp", DAY)
    running = _debris(data, ".movielens-1m.zz99yy88.tmp", 5)
    with pytest.raises(download.DownloadError, match="archive not found"):
        download.download("movielens-1m", data, archive=tmp_path / "nowhere.zip", progress=False)
    assert not stale.exists() and running.exists()
    assert sorted(p.name for p in data.iterdir()) == [running.name], "the failed download's staging is gone"


def test_a_long_download_keeps_its_staging_folder_fresh(tmp_path, monkeypatch):
    """While the archive streams in, the staging folder is touched, so no sweep takes it away."""
    data = tmp_path / "data"
    ages = []

    class Response:
        headers: dict = {}
        chunks = [b"x" * 10, b"y" * 10, b"z" * 10]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n):
            (staging,) = data.glob(".movielens-1m.*.tmp")
            ages.append(time.time() - staging.stat().st_mtime)
            t = time.time() - DAY                    # as if the last chunk came a day ago
            os.utime(staging, (t, t))
            return self.chunks.pop(0) if self.chunks else b""

    monkeypatch.setattr(download, "_KEEPALIVE_S", 0.0)
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout=None: Response())
    with pytest.raises(download.ChecksumError):      # 30 bytes are not the published archive
        download.download("movielens-1m", data, progress=False)
    assert len(ages) == 4 and max(ages[1:]) < 3600, ages   # touched after each chunk
    assert list(data.iterdir()) == []


def test_download_staging_name_carries_the_temp_mark(tmp_path, monkeypatch):
    made = []
    real_temp = download.temp_sibling

    def spy(path, directory=False):
        made.append(real_temp(path, directory=directory))
        return made[-1]

    monkeypatch.setattr(download, "temp_sibling", spy)
    with pytest.raises(download.DownloadError):
        download.download("movielens-1m", tmp_path, archive=tmp_path / "nowhere.zip", progress=False)
    assert len(made) == 1 and made[0].name.startswith(".movielens-1m.") and made[0].name.endswith(".tmp")


def test_bench_writer_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "table.md"
    ann_bench._write_atomic(target, lambda p: Path(p).write_text("first"))

    def half_then_fail(p: str) -> None:
        Path(p).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        ann_bench._write_atomic(target, half_then_fail)
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]
