"""Cache keys, atomic writes and safe loads: the one way every persisted artefact is named, written and read.

- :func:`cache_key` names a cached file (models, embeddings, real-data fingerprints). Changing the
  formula would orphan every cached file, so a test pins it.
- :func:`atomic_path` / :func:`atomic_write_bytes` / :func:`atomic_write_text` write through a unique
  temporary file beside the target, renamed into place: a reader sees the old file or the new one,
  never half of one, and two writers never share a temporary name.
- :func:`load_torch`, :func:`load_npz` and :func:`load_json` read weights, arrays and JSON only
  (``weights_only=True``, ``allow_pickle=False``): a damaged or foreign file raises
  :class:`DamagedArtifact` (a ``ValueError`` naming the file and what is wrong; the caller adds
  what to do), it is never executed.
- :func:`load_or_build` is "load from cache, else build and save", with one warning line when a
  damaged file is rebuilt.
- :func:`sweep_stale_temps` removes the temporary files an interrupted writer left behind.

Torch-free at import time, so the data layer can use it (``load_torch`` imports torch when called).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

TMP_MARK = ".tmp"
"""Every temporary name this project writes ends in (or, for folders, contains) this mark."""


class DamagedArtifact(ValueError):
    """A persisted file that cannot be used: missing parts, truncated, foreign or not weights-only."""


def cache_key(obj: Any) -> str:
    """12 hex digits of the SHA-256 of ``obj`` as sorted-key JSON (non-JSON values via ``str``)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------------------------------
# atomic writes
# ----------------------------------------------------------------------------------------------------


def temp_sibling(path: str | os.PathLike, directory: bool = False) -> Path:
    """Create and return a unique temporary file (or folder) beside ``path``: ``.<name>.<random>.tmp``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        return Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_MARK))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_MARK)
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a unique temporary path beside ``path``; rename it onto ``path`` when the block ends.

    If the block raises (or the process is killed), ``path`` is untouched; the temporary file is
    removed on an exception and left for :func:`sweep_stale_temps` after a kill.
    """
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename). Returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically. Returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def sweep_stale_temps(folder: str | os.PathLike, older_than: float = 3600.0) -> list[Path]:
    """Remove this project's temporary files and folders in ``folder`` (not recursive) that were last
    modified more than ``older_than`` seconds ago: what a killed writer leaves. Returns what went."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now, removed = time.time(), []
    for p in folder.iterdir():
        if not (p.name.startswith(".") and TMP_MARK in p.name):
            continue
        try:
            if now - p.lstat().st_mtime < older_than:
                continue  # perhaps another run is writing it right now
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
        except OSError:
            continue
    return removed


# ----------------------------------------------------------------------------------------------------
# safe loads
# ----------------------------------------------------------------------------------------------------


def _damaged(path: Path, what: str, err: BaseException | str) -> DamagedArtifact:
    if not isinstance(err, str):  # torch's messages run to paragraphs: keep their first line
        first = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), "")
        err = f"{type(err).__name__}: {first[:200]}" if first else type(err).__name__
    return DamagedArtifact(f"{path} is not a readable {what} ({err})")


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_torch(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """``torch.load`` of weights only (tensors, dicts, lists, numbers, strings) onto the CPU.

    The file must be a zip archive (``torch.save``'s format) whose members all pass their CRC
    check: ``torch.load`` itself does not check them, so flipped bytes in a tensor would load.
    A pickle that would run code, a truncated, garbage or altered file raises
    :class:`DamagedArtifact`; a missing file raises ``FileNotFoundError``.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # name of the first member whose CRC fails, or None
        if bad is not None:
            raise ValueError(f"member {bad} fails its CRC check")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError, EOFError, zip errors: all mean "damaged"
        raise _damaged(path, what, err) from err


def load_npz(path: str | os.PathLike, what: str = "array file") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read without pickle; :class:`DamagedArtifact` if damaged."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}")
    try:  # our own handle: np.load leaks the one it opens when the file is not a zip archive
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise _damaged(path, what, err) from err


def load_json(path: str | os.PathLike, what: str = "JSON file", expect: type | None = dict) -> Any:
    """The JSON value in ``path``; :class:`DamagedArtifact` if it is not JSON or not of type ``expect``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise _damaged(path, what, err) from err
    if expect is not None and not isinstance(value, expect):
        raise _damaged(path, what, f"holds a JSON {type(value).__name__}, expected {expect.__name__}")
    return value


def load_or_build(
    path: str | os.PathLike, load: Callable[[Path], T], build: Callable[[], T], save: Callable[[T, Path], Any],
    *, cache: bool = True, what: str = "artefact",
) -> tuple[T, bool]:
    """``(value, from_cache)``: ``load(path)`` when a usable file is there, else ``build()`` then
    ``save(value, path)`` (when ``cache``).

    ``load`` signals an unusable file by raising ``ValueError`` (:class:`DamagedArtifact` is one),
    ``KeyError`` or ``OSError``: the file is rebuilt with one warning line naming it.
    """
    path = Path(path)
    if cache and path.exists():
        try:
            return load(path), True
        except (ValueError, KeyError, OSError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            warnings.warn(f"cached {what} {path} is unusable ({first}); rebuilding it", stacklevel=2)
    value = build()
    if cache:
        save(value, path)
    return value, False


# ----------------------------------------------------------------------------------------------------
# what a model was trained on
# ----------------------------------------------------------------------------------------------------


def data_fingerprint(ds: Any) -> str:
    """12 hex digits naming the data a model is trained on, for every model's cache key.

    Combines ``meta["generator_version"]`` (for real data it already carries a fingerprint of the
    files) and ``meta["world_key"]`` (the simulator's full settings, :class:`SimConfig`): editing any
    setting of a preset changes it, so models trained on the old world are not reloaded.
    """
    meta = getattr(ds, "meta", None) or {}
    return cache_key({"generator_version": meta.get("generator_version"), "world_key": meta.get("world_key")})


__all__ = ["TMP_MARK", "DamagedArtifact", "cache_key", "temp_sibling", "atomic_path", "atomic_write_bytes",
           "atomic_write_text", "sweep_stale_temps", "file_sha256", "load_torch", "load_npz", "load_json", "load_or_build",
           "data_fingerprint"]
