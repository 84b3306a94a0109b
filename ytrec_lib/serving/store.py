"""The embedding store: the lecture's "feature database" for serving without the network.

After training, the candidate model's user embeddings (the last ReLU layer) and video embeddings
(the columns of the m x n softmax matrix) are written here under a model version; serving reads a
user's vector and the video vectors back and runs a nearest-neighbour search, with no torch involved.

The store is one SQLite file (standard library ``sqlite3``, nothing to install or run):

* **Exact.** Vectors are stored as little-endian float32 bytes and come back bit for bit
  (negative zero, subnormals and all). NaN and infinity are refused at write time.
* **Versioned.** Each write is a complete model version (users + videos + its dimension and a
  JSON ``meta`` dict) and becomes the *active* version that reads use by default.
* **Safe to read while writing.** The file is put in WAL mode when it is created (the mode is stored
  in the file) and a version is written in ONE transaction; every read (even a batched one over many
  SELECTs) runs inside one plain read transaction, a snapshot. Opening a store and reading it never
  takes the write lock, so a reader is never blocked by a writer and always sees a complete old or a
  complete new version, never a mix. ``readonly=True`` opens the file read-only (it is never written).
* **Strict.** Unknown ids or versions raise ``KeyError``; a wrong dtype or shape, a dimension that
  differs from what the caller expects, or re-using a version name raise ``ValueError``; each message
  names the id / version and says what to do.
* **Clear failures.** Every SQLite error is reported with the store's path: a file that is not a
  store (garbage, truncated) raises :class:`StoreCorrupt` (a ``ValueError``); a writer that waited
  ``timeout`` seconds for another writer raises :class:`StoreLocked` (a ``TimeoutError``); a full
  disk, a read-only location or an unopenable path raise :class:`StoreWriteError` (an ``OSError``)
  carrying SQLite's own message. A failed write is rolled back: the store keeps its last complete state.

Schema (``SCHEMA_VERSION`` = 1)::

    store_meta(key TEXT PRIMARY KEY, value TEXT)          -- 'schema_version', 'active_version'
    versions(version TEXT PRIMARY KEY, dim INTEGER, n_users INTEGER, n_videos INTEGER,
             created_at REAL,                               -- unix seconds
             meta TEXT)                                     -- JSON of the caller's meta dict
    embeddings(version TEXT, kind TEXT,                    -- kind: 'user' | 'video'
               id INTEGER, vec BLOB,                        -- vec: dim little-endian float32 = 4*dim bytes
               PRIMARY KEY (version, kind, id)) WITHOUT ROWID
    blocks(version TEXT, kind TEXT, block INTEGER,         -- the same vectors again, in id order,
           ids BLOB, vecs BLOB,                             -- BLOCK_ROWS rows a blob: int64 / float32 LE
           UNIQUE (version, kind, block))

``embeddings`` serves lookups by id (one B-tree probe each; batches as ``id IN (...)`` over chunks
of ``CHUNK`` ids). ``blocks`` serves bulk reads: all 100k videos of a version are ~13 blobs instead
of 100k rows (about ten times faster), at the price of storing each vector twice. Both are written
in the same transaction, so they always agree.

One ``EmbeddingStore`` object holds one connection, guarded by a lock: it may be used from several
threads (e.g. a widget callback thread), one call at a time; a ``snapshot()`` block holds the lock
until it ends. For parallel reads, open one object per thread or process.

Example::

    with EmbeddingStore("build/store.sqlite") as store:
        store.write_version("cand-v1", users, videos, meta={"model": "candidate"})
        u = store.get_user(42)                      # (m,) float32
        ids, V = store.get_videos()                 # (n,) int64, (n, m) float32

    with EmbeddingStore("build/store.sqlite", readonly=True) as store:   # a server: never writes
        u = store.get_user(42)
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
CHUNK = 900  # ids per "IN (...)" SELECT (well under SQLite's limit on bound parameters)
BLOCK_ROWS = 8192  # vectors per blob in the bulk-read table
BULK_FRACTION = 0.1  # a batch asking for more than this share of a version's rows reads the blocks
_I64 = np.dtype("<i8")
_F32 = np.dtype("<f4")
_KINDS = ("user", "video")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    version TEXT PRIMARY KEY,
    dim INTEGER NOT NULL,
    n_users INTEGER NOT NULL,
    n_videos INTEGER NOT NULL,
    created_at REAL NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    id INTEGER NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (version, kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    block INTEGER NOT NULL,
    ids BLOB NOT NULL,
    vecs BLOB NOT NULL,
    UNIQUE (version, kind, block)
);
"""


class StoreCorrupt(ValueError):
    """The file is not a usable embedding store: not SQLite, truncated or otherwise damaged."""


class StoreLocked(TimeoutError):
    """Another connection held the store's write lock for longer than this store's ``timeout``."""


class StoreWriteError(OSError):
    """The store cannot be created or written: disk full, read-only location, I/O error, ``readonly=True``."""


# SQLite's primary result codes (the low byte of ``sqlite3.Error.sqlite_errorcode``)
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 10, 11, 13, 14, 26


class EmbeddingStore:
    """User and video embeddings of one or more model versions in one SQLite file.

    Args:
        path: the database file (created with its folder if missing). ``":memory:"`` works for
            experiments but has no WAL and cannot be shared between connections.
        timeout: seconds a writer waits for another writer's lock before giving up
            (:class:`StoreLocked`). Readers never wait for writers.
        readonly: open an existing store read-only (``file:...?mode=ro``): the database file is never
            written (SQLite may create its empty ``-wal``/``-shm`` side files) and the write methods
            raise :class:`StoreWriteError`. A missing file raises ``FileNotFoundError``.

    Raises:
        StoreCorrupt: the file is not an embedding store (garbage, truncated, damaged).
        ValueError: the file is a store of another schema version.
        StoreWriteError: the store cannot be created at ``path`` (its folder cannot be made, the
            location is not writable, ``path`` is a folder).
        StoreLocked: a new file is being created while another process holds its write lock.
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 30.0, readonly: bool = False) -> None:
        self.path = str(path)
        self.timeout = float(timeout)
        self.readonly = bool(readonly)
        self._memory = self.path == ":memory:"
        self._lock = threading.RLock()  # one call at a time on the shared connection
        self._wal = self._memory        # True once the file is known to be in WAL mode
        target, uri = self._prepare_path()
        try:
            # isolation_level=None: no implicit transactions; every transaction below is explicit.
            self._con = sqlite3.connect(target, timeout=self.timeout, isolation_level=None, uri=uri,
                                        check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            self._open()
        except BaseException:
            self._con.close()
            raise

    # ------------------------------------------------------------------ lifecycle

    def _prepare_path(self) -> tuple[str, bool]:
        """Check ``path`` (and make its folder when writing); return ``(connect target, is_uri)``."""
        if self._memory:
            if self.readonly:
                raise ValueError("readonly=True needs a store file; ':memory:' is always a new, empty store")
            return self.path, False
        file = Path(self.path)
        if file.is_dir():
            raise StoreWriteError(
                f"the embedding store path {self.path!r} is a folder; pass a file path such as "
                f"{str(file / 'store.sqlite')!r}"
            )
        if self.readonly:
            if not file.is_file():
                raise FileNotFoundError(
                    f"no embedding store at {self.path!r}; write it first (readonly=True never creates a "
                    "store) or check the path"
                )
            return file.resolve().as_uri() + "?mode=ro", True
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocker = next((a for a in file.parents if a.exists() and not a.is_dir()), None)
            why = f"{str(blocker)!r} is a file, not a folder" if blocker else str(exc)
            raise StoreWriteError(
                f"cannot create the folder for the embedding store {self.path!r}: {why}; pass a path in a "
                "folder you can write"
            ) from exc
        return self.path, False

    def _open(self) -> None:
        """Check the schema in a read transaction; create it (one write) only in a new, empty file."""
        if not self.readonly:
            self._execute("PRAGMA synchronous=NORMAL")  # per connection; writes nothing
        with self._read_tx() as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            row = None
            if "store_meta" in tables:
                row = con.execute("SELECT value FROM store_meta WHERE key='schema_version'").fetchone()
            self._wal = self._wal or con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        if row:
            self._check_schema(row[0])
            return
        if self.readonly or tables:
            raise StoreCorrupt(
                f"{self.path!r} is not an embedding store (it has no store_meta table"
                + (f", but other tables: {sorted(tables)[:5]}" if tables else "")
                + "); check the path, or write the store to a new file (readonly=True never creates one)"
            )
        with self._write_tx() as con:  # a new file: WAL mode and the tables, once
            for stmt in filter(str.strip, _SCHEMA.split(";")):
                con.execute(stmt)
            row = con.execute("SELECT value FROM store_meta WHERE key='schema_version'").fetchone()
            if row is None:  # (another process may have created the schema meanwhile)
                con.execute("INSERT INTO store_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            else:
                self._check_schema(row[0])

    def _check_schema(self, value: str) -> None:
        if value != str(SCHEMA_VERSION):
            raise ValueError(
                f"{self.path!r} has store schema {value}, this code reads schema {SCHEMA_VERSION}; "
                "re-write the embeddings into a new file"
            )

    def close(self) -> None:
        """Close the connection (the file stays)."""
        with self._lock:
            self._con.close()

    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddingStore({self.path!r}, versions={self.versions()}, active={self.active_version()!r})"

    # ------------------------------------------------------------------ transactions and errors

    def _execute(self, sql: str) -> tuple | None:
        """One statement outside a transaction (its first row), its SQLite error reported with the path."""
        with self._lock:
            try:
                return self._con.execute(sql).fetchone()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    @contextmanager
    def _tx(self, begin: str) -> Iterator[sqlite3.Connection]:
        """``begin`` ... COMMIT, or ROLLBACK on any error; a read inside an open snapshot joins it.

        Holds the connection's lock throughout. SQLite errors leave as the exceptions of
        :meth:`_error` (with the path); a failed ROLLBACK never hides the error that caused it.
        """
        with self._lock:
            con = self._con
            if con.in_transaction:
                if begin != "BEGIN":
                    raise ValueError("cannot write inside store.snapshot(); leave the with-block first")
                try:
                    yield con
                except sqlite3.Error as exc:
                    raise self._error(exc) from exc
                return
            try:
                con.execute(begin)
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            try:
                yield con
                con.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._error(exc) from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        """ROLLBACK if a transaction is still open (SQLite rolls back by itself on e.g. a full disk)."""
        if self._con.in_transaction:
            try:
                self._con.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the error being raised already says what went wrong

    def _write_tx(self) -> AbstractContextManager[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock now, so the whole version goes in atomically."""
        if self.readonly:
            raise StoreWriteError(
                f"the embedding store {self.path!r} was opened with readonly=True; open it without "
                "readonly=True to write"
            )
        if not self._wal and not self._con.in_transaction:  # first write: WAL mode, kept in the file
            row = self._execute("PRAGMA journal_mode=WAL")
            self._wal = row is not None and str(row[0]).lower() == "wal"
        return self._tx("BEGIN IMMEDIATE")

    def _read_tx(self) -> AbstractContextManager[sqlite3.Connection]:
        """One read snapshot (a deferred transaction, no write lock): all SELECTs see one committed state."""
        return self._tx("BEGIN")

    def _error(self, exc: sqlite3.Error) -> Exception:
        """The exception to raise for SQLite's ``exc``: it names the store's path and says what to do."""
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        where, said = repr(self.path), f"SQLite: {exc}"
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return StoreLocked(
                f"another process is writing to the embedding store {where} (or another connection in this "
                f"process is) and it kept the lock for more than timeout={self.timeout:g} s ({said}); wait "
                "for that writer to finish and retry, or open the store with a larger timeout="
            )
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return StoreCorrupt(
                f"{where} is not a usable embedding store ({said}): the file is damaged, truncated or not a "
                "store; re-write the embeddings into a new file (a rebuildable cache can be deleted)"
            )
        if code == _SQLITE_FULL:
            return StoreWriteError(
                f"cannot write the embedding store {where} ({said}); free disk space or put the store "
                "on a larger disk, then retry (the failed write was rolled back, the store is unchanged)"
            )
        if code in (_SQLITE_CANTOPEN, _SQLITE_READONLY, _SQLITE_PERM):
            hint = (" it was opened with readonly=True;" if self.readonly and code == _SQLITE_READONLY else
                    " make sure the file and its folder exist and are writable (SQLite also writes the "
                    "-wal and -shm files beside it), or pass a path in a writable folder;")
            return StoreWriteError(f"cannot open or write the embedding store {where} ({said});{hint} "
                                   "nothing was written")
        if code == _SQLITE_IOERR:
            return StoreWriteError(
                f"disk I/O error on the embedding store {where} ({said}); check the disk (full, removed, "
                "a network filesystem without locking) and retry"
            )
        return type(exc)(f"embedding store {where}: {exc}")

    @contextmanager
    def snapshot(self) -> Iterator[EmbeddingStore]:
        """Make several reads see one committed state of the file.

        Each read method is already consistent on its own; use this when a user vector and the
        video matrix must come from the same write (a concurrent writer may replace a version
        between two separate calls)::

            with store.snapshot():
                v = store.active_version(); u = store.get_user(7); ids, V = store.get_videos()

        Other threads using this same object wait until the block ends.
        """
        with self._read_tx():
            yield self

    # ------------------------------------------------------------------ writing

    def write_version(
        self,
        version: str,
        users: np.ndarray,
        videos: np.ndarray,
        *,
        user_ids: Sequence[int] | np.ndarray | None = None,
        video_ids: Sequence[int] | np.ndarray | None = None,
        meta: Mapping[str, Any] | None = None,
        activate: bool = True,
        replace: bool = False,
    ) -> None:
        """Write one model version's embeddings in a single transaction.

        Args:
            version: the model version name (non-empty string), e.g. ``"cand-2016-09-15"``.
            users: (U, m) float32, one row per user.
            videos: (V, m) float32, one row per video (same m as ``users``).
            user_ids, video_ids: (U,) / (V,) distinct integer ids; default ``arange(U)`` / ``arange(V)``.
            meta: JSON-able dict stored with the version (training config, metrics, ...).
            activate: make this the version that reads use by default.
            replace: overwrite an existing version of the same name (same dimension only).

        Raises:
            ValueError: wrong dtype/shape, non-finite values, duplicate ids, users and videos of
                different dimension, an existing version without ``replace=True``, or a replacement
                of another dimension. Nothing is written in that case.
        """
        _check_version_name(version)
        users = _check_matrix(users, "users")
        videos = _check_matrix(videos, "videos")
        if users.shape[1] != videos.shape[1]:
            raise ValueError(
                f"dimension mismatch: users have m={users.shape[1]} but videos have m={videos.shape[1]}; "
                "both must come from the same model (fold the bias into both or neither)"
            )
        dim = users.shape[1]
        uids = _check_ids(user_ids, len(users), "user_ids")
        vids = _check_ids(video_ids, len(videos), "video_ids")
        meta_json = _meta_to_json(meta)

        with self._write_tx() as con:
            old = con.execute("SELECT dim FROM versions WHERE version=?", (version,)).fetchone()
            if old is not None:
                if not replace:
                    raise ValueError(
                        f"version {version!r} already exists (dim {old[0]}); write under a new version "
                        "name, or pass replace=True to overwrite it"
                    )
                if old[0] != dim:
                    raise ValueError(
                        f"dimension mismatch: version {version!r} has dim {old[0]}, the replacement has "
                        f"dim {dim}; a new dimension is a new model, write it under a new version name"
                    )
                _delete_rows(con, version)
            con.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
                (version, dim, len(uids), len(vids), time.time(), meta_json),
            )
            _insert_rows(con, version, "user", uids, users)
            _insert_rows(con, version, "video", vids, videos)
            if activate:
                con.execute(
                    "INSERT OR REPLACE INTO store_meta VALUES ('active_version', ?)", (version,)
                )

    def set_active(self, version: str) -> None:
        """Make ``version`` the one that reads use by default (KeyError if it does not exist)."""
        with self._write_tx() as con:
            self._require_version(con, version)
            con.execute("INSERT OR REPLACE INTO store_meta VALUES ('active_version', ?)", (version,))

    def delete_version(self, version: str) -> None:
        """Remove a version; refuses the active one (activate another version first)."""
        with self._write_tx() as con:
            self._require_version(con, version)
            if self._active(con) == version:
                raise ValueError(
                    f"version {version!r} is the active version; set_active() another version first"
                )
            _delete_rows(con, version)

    # ------------------------------------------------------------------ metadata

    def active_version(self) -> str | None:
        """The version reads use by default, or None while the store is empty."""
        with self._read_tx() as con:
            return self._active(con)

    def versions(self) -> list[str]:
        """All stored version names, oldest first."""
        with self._read_tx() as con:
            return [r[0] for r in con.execute("SELECT version FROM versions ORDER BY created_at, version")]

    def version_info(self, version: str | None = None) -> dict[str, Any]:
        """Facts of a version (default: the active one).

        Returns ``{"version", "dim", "n_users", "n_videos", "created_at", "meta"}``.
        """
        with self._read_tx() as con:
            v = self._resolve(con, version)
            dim, n_users, n_videos, created, meta = con.execute(
                "SELECT dim, n_users, n_videos, created_at, meta FROM versions WHERE version=?", (v,)
            ).fetchone()
        return {"version": v, "dim": dim, "n_users": n_users, "n_videos": n_videos,
                "created_at": created, "meta": json.loads(meta)}

    def dim(self, version: str | None = None) -> int:
        """The embedding dimension m of a version (default: the active version)."""
        return int(self.version_info(version)["dim"])

    # ------------------------------------------------------------------ reading

    def get_user(
        self, user_id: int, version: str | None = None, *, expect_dim: int | None = None
    ) -> np.ndarray:
        """One user's embedding: (m,) float32 (KeyError if the id is not in the version)."""
        return self.get_users(np.array([user_id]), version, expect_dim=expect_dim)[0]

    def get_users(
        self,
        user_ids: Sequence[int] | np.ndarray,
        version: str | None = None,
        *,
        expect_dim: int | None = None,
    ) -> np.ndarray:
        """Embeddings of ``user_ids`` (n,) in that order (repeats allowed): (n, m) float32."""
        ids = _check_query_ids(user_ids, "user_ids")
        with self._read_tx() as con:
            v, dim = self._resolve_dim(con, version, expect_dim)
            return self._read_ids(con, v, "user", ids, dim)

    def get_videos(
        self,
        video_ids: Sequence[int] | np.ndarray | None = None,
        version: str | None = None,
        *,
        expect_dim: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Video embeddings: ``(ids (n,) int64, vectors (n, m) float32)``.

        ``video_ids=None`` reads every video of the version in id order (one range scan);
        otherwise the given ids in the given order.
        """
        with self._read_tx() as con:
            v, dim = self._resolve_dim(con, version, expect_dim)
            if video_ids is None:
                return self._read_all(con, v, "video", dim)
            ids = _check_query_ids(video_ids, "video_ids")
            return ids, self._read_ids(con, v, "video", ids, dim)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _active(con: sqlite3.Connection) -> str | None:
        row = con.execute("SELECT value FROM store_meta WHERE key='active_version'").fetchone()
        return None if row is None else row[0]

    @staticmethod
    def _require_version(con: sqlite3.Connection, version: str) -> int:
        row = con.execute("SELECT dim FROM versions WHERE version=?", (version,)).fetchone()
        if row is None:
            known = [r[0] for r in con.execute("SELECT version FROM versions ORDER BY created_at")]
            raise KeyError(
                f"version {version!r} is not in the store (it has {known or 'no versions'}); "
                "write it with write_version() or pick one of those"
            )
        return int(row[0])

    def _resolve(self, con: sqlite3.Connection, version: str | None) -> str:
        if version is None:
            version = self._active(con)
            if version is None:
                raise KeyError(f"the store {self.path!r} has no versions yet; call write_version() first")
        self._require_version(con, version)
        return version

    def _resolve_dim(
        self, con: sqlite3.Connection, version: str | None, expect_dim: int | None
    ) -> tuple[str, int]:
        v = self._resolve(con, version)
        dim = self._require_version(con, v)
        if expect_dim is not None and int(expect_dim) != dim:
            raise ValueError(
                f"dimension mismatch: version {v!r} stores m={dim} but the caller expects m={expect_dim}; "
                "read the version written by the same model (or drop expect_dim)"
            )
        return v, dim

    def _read_all(
        self, con: sqlite3.Connection, version: str, kind: str, dim: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """All rows of one kind: (ids (n,) int64 ascending, (n, m) float32), from the blocks table."""
        rows = con.execute(
            "SELECT ids, vecs FROM blocks WHERE version=? AND kind=? ORDER BY block", (version, kind)
        ).fetchall()
        ids = np.frombuffer(b"".join(r[0] for r in rows), dtype=_I64).astype(np.int64)  # (n,)
        vecs = b"".join(r[1] for r in rows)
        if len(vecs) != len(ids) * dim * _F32.itemsize:
            raise StoreCorrupt(f"version {version!r} of {self.path!r} has {kind} blocks of the wrong size; "
                               "the file is corrupt, re-write that version")
        return ids, np.frombuffer(vecs, dtype=_F32).reshape(len(ids), dim).astype(np.float32)  # (n, m)

    def _read_ids(
        self, con: sqlite3.Connection, version: str, kind: str, ids: np.ndarray, dim: int
    ) -> np.ndarray:
        """(n, m) float32 rows for ``ids`` in order, all read inside the caller's snapshot.

        Small batches: chunked ``id IN (...)`` SELECTs. Batches over ``BULK_FRACTION`` of the
        version's rows: one bulk read of the blocks, then a sorted lookup.
        """
        uniq = _unique_sorted(ids)
        (n_rows,) = con.execute(
            f"SELECT n_{kind}s FROM versions WHERE version=?", (version,)
        ).fetchone()
        if len(uniq) > BULK_FRACTION * n_rows:
            all_ids, mat = self._read_all(con, version, kind, dim)
            pos = np.clip(np.searchsorted(all_ids, uniq), 0, max(len(all_ids) - 1, 0))
            ok = all_ids[pos] == uniq if len(all_ids) else np.zeros(len(uniq), bool)
            if not ok.all():
                _raise_missing(kind, version, uniq[~ok].tolist())
            return mat[pos[np.searchsorted(uniq, ids)]]                            # (n, m)
        found: dict[int, bytes] = {}
        for start in range(0, len(uniq), CHUNK):
            chunk = uniq[start:start + CHUNK].tolist()
            marks = ",".join("?" * len(chunk))
            found.update(con.execute(
                f"SELECT id, vec FROM embeddings WHERE version=? AND kind=? AND id IN ({marks})",
                (version, kind, *chunk),
            ).fetchall())
        if len(found) < len(uniq):
            _raise_missing(kind, version, [i for i in uniq.tolist() if i not in found])
        mat = _blobs_to_matrix([found[i] for i in uniq.tolist()], dim, version, self.path)  # (n_unique, m)
        return mat[np.searchsorted(uniq, ids)]                                    # (n, m)


def _insert_rows(con: sqlite3.Connection, version: str, kind: str, ids: np.ndarray, mat: np.ndarray) -> None:
    """One row per id into ``embeddings`` and id-sorted blobs of BLOCK_ROWS rows into ``blocks``."""
    n = len(ids)
    con.executemany(
        "INSERT INTO embeddings VALUES (?, ?, ?, ?)",
        zip([version] * n, [kind] * n, ids.tolist(), _rows_to_blobs(mat), strict=True),
    )
    order = np.argsort(ids, kind="stable")
    ids_sorted, mat_sorted = ids[order].astype(_I64), mat[order]      # (n,), (n, m)
    con.executemany(
        "INSERT INTO blocks VALUES (?, ?, ?, ?, ?)",
        ((version, kind, b, ids_sorted[s:s + BLOCK_ROWS].tobytes(), mat_sorted[s:s + BLOCK_ROWS].tobytes())
         for b, s in enumerate(range(0, n, BLOCK_ROWS))),
    )


def _delete_rows(con: sqlite3.Connection, version: str) -> None:
    for table in ("embeddings", "blocks", "versions"):
        con.execute(f"DELETE FROM {table} WHERE version=?", (version,))


def _raise_missing(kind: str, version: str, missing: list[int]) -> None:
    raise KeyError(
        f"{kind} id {missing[0]} is not in version {version!r}"
        + (f" ({len(missing)} ids missing: {missing[:5]}...)" if len(missing) > 1 else "")
        + f"; write the {kind} embeddings of that version first, or check the ids"
    )


# ---------------------------------------------------------------------- validation and encoding


def _check_version_name(version: object) -> None:
    if not isinstance(version, str) or not version.strip():
        raise ValueError(f"version must be a non-empty string, got {version!r}")


def _check_matrix(mat: object, name: str) -> np.ndarray:
    """(n, m) float32 array (any byte order), finite; returned as C-contiguous little-endian float32."""
    if not isinstance(mat, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of shape (n, m), got {type(mat).__name__}")
    if mat.dtype.kind != "f" or mat.dtype.itemsize != 4:
        raise ValueError(
            f"{name} must be float32, got {mat.dtype}; convert with .astype(np.float32) "
            "(the store keeps float32 bytes exactly and will not round silently)"
        )
    if mat.ndim != 2 or mat.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n, m) with m >= 1, got shape {mat.shape}")
    bad = ~np.isfinite(mat).all(axis=1)
    if bad.any():
        raise ValueError(f"{name} row {int(np.argmax(bad))} has NaN or infinite values; fix the model output")
    return np.ascontiguousarray(mat, dtype=_F32)


def _check_ids(ids: object, n: int, name: str) -> np.ndarray:
    """(n,) int64 distinct ids; ``None`` -> arange(n)."""
    if ids is None:
        return np.arange(n, dtype=np.int64)
    arr = np.asarray(ids)
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"{name} must have shape ({n},) to match the embedding rows, got shape {arr.shape}")
    if n and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    s = np.sort(arr)
    if (s[1:] == s[:-1]).any():
        dup = int(s[1:][np.argmax(s[1:] == s[:-1])])
        raise ValueError(f"{name} has duplicates (e.g. id {dup}); ids must be distinct")
    return arr


def _unique_sorted(a: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy 2.4's hash-based np.unique is much slower on large int64 arrays)."""
    s = np.sort(a)
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


def _check_query_ids(ids: object, name: str) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of integer ids, got shape {arr.shape}")
    if len(arr) and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _meta_to_json(meta: Mapping[str, Any] | None) -> str:
    from ytrec_lib.report import to_jsonable

    try:
        return json.dumps(to_jsonable(dict(meta or {})), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta must be a JSON-able dict (numbers, strings, lists, dicts): {exc}") from exc


def _rows_to_blobs(mat: np.ndarray) -> list[bytes]:
    """(n, m) little-endian float32 -> n blobs of 4*m bytes (one bytes object, sliced)."""
    raw, width = mat.tobytes(), mat.shape[1] * _F32.itemsize
    return [raw[i:i + width] for i in range(0, len(raw), width)]


def _blobs_to_matrix(blobs: list[bytes], dim: int, version: str, path: str) -> np.ndarray:
    """n blobs of 4*dim bytes -> (n, dim) float32 (native order), bit-exact."""
    raw = b"".join(blobs)
    if len(raw) != len(blobs) * dim * _F32.itemsize:
        raise StoreCorrupt(
            f"version {version!r} of {path!r} has vectors that are not {dim} float32 values; the file is "
            "corrupt, re-write that version"
        )
    return np.frombuffer(raw, dtype=_F32).reshape(len(blobs), dim).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# A reader while versions are written (notebook 04)
# ----------------------------------------------------------------------------------------------------


def reads_during_writes(
    path: str | os.PathLike,
    write: Callable[[], Any],
    user_ids: Sequence[int] | np.ndarray,
    known: Mapping[str, tuple[np.ndarray, np.ndarray]],
    timeout: float = 120.0,
) -> list[tuple[str | None, str]]:
    """Read the store at ``path`` over and over from a second connection while ``write()`` runs.

    A thread opens its own :class:`EmbeddingStore` and, in one :meth:`~EmbeddingStore.snapshot` per
    read, takes the active version's name, its (n, d) video matrix and the (len(user_ids), d) vectors of
    ``user_ids``. Each read is classified as the name of the ``known`` content ``{name: (users, videos)}``
    it equals exactly (users (len(user_ids), d), videos (n, d)), or ``"mixed"``. ``write()`` runs in the
    caller's thread once the first read is done (or after 60 s); the reader stops after one more read
    that starts after ``write`` returned.

    Returns one ``(version, content)`` per read, in order. Re-raises the reader's exception if it failed.
    """
    reads: list[tuple[str | None, str]] = []
    errors: list[BaseException] = []
    started, stop = threading.Event(), threading.Event()

    def classify(videos: np.ndarray, users: np.ndarray) -> str:
        for name, (u, v) in known.items():
            if np.array_equal(videos, v) and np.array_equal(users, u):
                return name
        return "mixed"

    def reader() -> None:
        try:
            with EmbeddingStore(path) as r:
                while True:
                    finished = stop.is_set()
                    with r.snapshot():
                        version = r.active_version()
                        _, videos = r.get_videos()  # (n, d) float32
                        users = r.get_users(user_ids)  # (len(user_ids), d) float32
                    reads.append((version, classify(videos, users)))
                    started.set()
                    if finished:
                        return
        except Exception as exc:  # re-raised in the caller's thread
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=reader)
    thread.start()
    started.wait(60)
    try:
        write()
    finally:
        stop.set()
        thread.join(timeout)
    if errors:
        raise errors[0]
    return reads
