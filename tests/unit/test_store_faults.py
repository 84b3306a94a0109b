"""Faults of ytrec_lib.serving.store: a writer mid-transaction, a lock timeout, a full disk, an unwritable or
corrupt file, read-only opening and use from another thread. Every failure names the file."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ytrec_lib.serving.store import EmbeddingStore, StoreCorrupt, StoreLocked, StoreWriteError


def _marked(k: float, n_users: int = 4, n_videos: int = 6, dim: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Users (n_users, dim) and videos (n_videos, dim) float32, every value equal to ``k``."""
    return np.full((n_users, dim), k, np.float32), np.full((n_videos, dim), k, np.float32)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A store with one committed version "v1" whose values are all 1."""
    p = tmp_path / "s.sqlite"
    with EmbeddingStore(p) as s:
        s.write_version("v1", *_marked(1))
    return p


@pytest.fixture
def open_write(path: Path):
    """Another connection (as another process would) inside an uncommitted write transaction that
    empties the store and points it at a version that does not exist."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    con.execute("DELETE FROM embeddings")
    con.execute("DELETE FROM blocks")
    con.execute("UPDATE store_meta SET value='half-written' WHERE key='active_version'")
    yield con
    con.execute("ROLLBACK")
    con.close()


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _chain(exc: BaseException) -> str:
    """The messages of ``exc`` and every exception it was raised from or during."""
    out = []
    while exc is not None:
        out.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(out)


# ---------------------------------------------------------------- readers are never blocked


@pytest.mark.parametrize("readonly", [False, True])
def test_reader_is_not_blocked_by_an_open_write_transaction(path, open_write, readonly):
    # A short timeout: a reader that waited for the writer's lock would raise here instead of reading.
    with EmbeddingStore(path, timeout=0.05, readonly=readonly) as r:
        assert r.active_version() == "v1" and r.versions() == ["v1"]
        np.testing.assert_array_equal(r.get_user(3), np.ones(3, np.float32))
        ids, videos = r.get_videos()
        np.testing.assert_array_equal(ids, np.arange(6))
        assert (videos == 1).all()
        with r.snapshot():
            assert r.get_users([0, 1]).shape == (2, 3)


def test_reader_thread_with_its_own_connection_reads_during_a_write(path, open_write):
    def read() -> np.ndarray:
        with EmbeddingStore(path, timeout=0.05) as r:
            return r.get_videos()[1]

    with ThreadPoolExecutor(1) as pool:
        videos = pool.submit(read).result(timeout=60)
    assert videos.shape == (6, 3) and (videos == 1).all()


def test_opening_an_existing_store_writes_nothing(path):
    before = _digest(path)
    for readonly in (False, True):
        with EmbeddingStore(path, readonly=readonly) as s:
            assert s.get_videos()[1].shape == (6, 3)
    assert _digest(path) == before


# ---------------------------------------------------------------- a writer that cannot get the lock


def test_blocked_writer_is_told_another_process_is_writing(path, open_write):
    with EmbeddingStore(path, timeout=0.05) as w:    # opening needs no lock
        with pytest.raises(StoreLocked, match="another process is writing") as err:
            w.write_version("v2", *_marked(2))
        msg = str(err.value)
        assert str(path) in msg and "retry" in msg and "timeout=" in msg and "delete" not in msg.lower()
        assert isinstance(err.value, TimeoutError)
        open_write.execute("ROLLBACK")              # the other writer gives up; now the write goes in
        open_write.execute("BEGIN")                 # (the fixture's final ROLLBACK needs a transaction)
        w.write_version("v2", *_marked(2))
        assert w.versions() == ["v1", "v2"]


# ---------------------------------------------------------------- full disk


def test_full_disk_reports_the_disk_error_with_the_path(path):
    with EmbeddingStore(path) as s:
        (pages,) = s._con.execute("PRAGMA page_count").fetchone()
        s._con.execute(f"PRAGMA max_page_count={pages + 2}")  # SQLite's own "disk is full" at 2 more pages
        with pytest.raises(StoreWriteError, match="database or disk is full") as err:
            s.write_version("big", *_marked(2, n_users=5000, n_videos=10, dim=16))
        assert str(path) in str(err.value) and isinstance(err.value, OSError)
        assert "cannot rollback" not in _chain(err.value)
        assert s.versions() == ["v1"] and s.active_version() == "v1"   # rolled back, nothing half-written
        s._con.execute("PRAGMA max_page_count=1073741823")
        s.write_version("big", *_marked(2, n_users=5000, n_videos=10, dim=16))
        assert s.active_version() == "big"


# ---------------------------------------------------------------- unwritable locations


def test_parent_that_is_a_file_is_named(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    target = blocker / "sub" / "s.sqlite"
    with pytest.raises(StoreWriteError, match="is a file, not a folder") as err:
        EmbeddingStore(target)
    assert str(target) in str(err.value) and str(blocker) in str(err.value)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc (root cannot write it)")
def test_unwritable_folder_is_named():
    target = "/proc/ytrec-store-test.sqlite"
    with pytest.raises(StoreWriteError, match="writable") as err:
        EmbeddingStore(target)
    assert target in str(err.value) and "unable to open database file" in str(err.value)


def test_folder_as_path_is_refused(tmp_path):
    with pytest.raises(StoreWriteError, match="is a folder; pass a file path"):
        EmbeddingStore(tmp_path)


def test_readonly_store_never_writes(path, tmp_path):
    before = _digest(path)
    with EmbeddingStore(path, readonly=True) as r:
        with pytest.raises(StoreWriteError, match="readonly=True") as err:
            r.write_version("v2", *_marked(2))
        assert str(path) in str(err.value)
        for write in (lambda: r.set_active("v1"), lambda: r.delete_version("v1")):
            with pytest.raises(StoreWriteError, match="readonly=True"):
                write()
        assert r.versions() == ["v1"]
    assert _digest(path) == before
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(FileNotFoundError, match="missing.sqlite"):
        EmbeddingStore(missing, readonly=True)
    assert not missing.exists()


# ---------------------------------------------------------------- corrupt files


@pytest.mark.parametrize("readonly", [False, True])
@pytest.mark.parametrize("damage", ["garbage", "truncated", "zeroed_pages"])
def test_corrupt_file_is_named(path, damage, readonly):
    with EmbeddingStore(path) as s:                   # big enough to span many pages
        s.write_version("v2", *_marked(2, n_users=3000, n_videos=3000, dim=16))
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"this is not sqlite" * 100)
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    else:                                             # header intact, everything after page 1 zeroed
        path.write_bytes(raw[:4096] + bytes(len(raw) - 4096))
    with pytest.raises(StoreCorrupt, match="not a usable embedding store") as err:
        with EmbeddingStore(path, readonly=readonly) as s:
            s.get_videos()
            s.get_users(np.arange(3000))
    assert str(path) in str(err.value) and isinstance(err.value, ValueError)
    if damage == "garbage":
        assert path.read_bytes() == b"this is not sqlite" * 100   # refused, not overwritten


def test_foreign_sqlite_file_is_not_taken_over(tmp_path):
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE songs (title TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StoreCorrupt, match=r"not an embedding store.*'songs'"):
        EmbeddingStore(other)
    con = sqlite3.connect(other)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["songs"]
    con.close()


# ---------------------------------------------------------------- one store object, several threads


def test_store_is_usable_from_other_threads(path):
    """A widget callback runs on another thread than the one that opened the store."""
    with EmbeddingStore(path) as s:
        with ThreadPoolExecutor(1) as pool:
            got = pool.submit(s.get_user, 2).result(timeout=60)
        np.testing.assert_array_equal(got, np.ones(3, np.float32))

        errors: list[BaseException] = []

        def reader() -> None:
            try:
                for _ in range(30):
                    with s.snapshot():
                        marker = s.get_user(0)[0]
                        assert (s.get_videos()[1] == marker).all()
            except BaseException as exc:  # surfaced in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for k in range(2, 12):
            s.write_version("v1", *_marked(k), replace=True)
        for t in threads:
            t.join(60)
        assert not errors, _chain(errors[0])
        assert s.get_user(0)[0] == 11


def test_damaged_cached_store_is_rebuilt_by_the_system(path):
    """The system's cache check calls a damaged store damaged (so ``load_or_build`` rebuilds it)."""
    from ytrec_lib.data.cache import DamagedArtifact, file_sha256
    from ytrec_lib.serving import system

    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DamagedArtifact, match="does not match its checksum"):  # no digest beside it
        system.check_store(path)
    (path.parent / f"{path.name}.sha256").write_text(file_sha256(path))  # digest agrees: SQLite decides
    with pytest.raises(DamagedArtifact, match="not a usable embedding store"):
        system.check_store(path)
