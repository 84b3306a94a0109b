"""Download a real dataset on request: ``python -m ytrec_lib download <name>``.

:func:`download` fetches the publisher's archive (or takes one copied by hand, ``archive=``),
verifies its size and checksums against the constants of :data:`~ytrec_lib.data.real.REAL_DATASETS`,
unpacks the files the adapter reads, checks their first lines, and only then renames the finished
folder to ``<data dir>/<name>/``. Everything happens in a temporary folder next to it
(``.<name>.<random>.tmp``), removed on any failure, so ``data/`` never holds a partial dataset; one
that a killed download left is removed by the next download (or cached dataset load) once it is an
hour old. Offline it fails at once (a short connection timeout) with a message saying where to put
the files by hand.

Nothing else in the package downloads anything.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from .cache import sweep_stale_temps, temp_sibling
from .rawio import DataFileError, MissingDataError
from .real import RealSpec, check_files, dataset_dir, manual_instructions, spec

__all__ = ["DownloadError", "ChecksumError", "download", "verify_archive", "DEFAULT_TIMEOUT_S"]

DEFAULT_TIMEOUT_S = 10.0
_CHUNK = 1 << 20
_KEEPALIVE_S = 60.0
"""A running download touches its staging folder this often, so a sweep of stale temporary folders
(which removes those untouched for an hour) never takes it, however long the download runs."""


class DownloadError(OSError):
    """The archive could not be fetched, verified or unpacked; the message says what to do."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ChecksumError(DownloadError):
    """The archive's size or checksum is not the published one."""


def _fetch(url: str, dest: Path, timeout: float, progress: bool, s: RealSpec, target: Path) -> None:
    """Stream ``url`` into ``dest`` (a progress bar when the size is known)."""
    from ytrec_lib.progress import tqdm

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
            total = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            bar = tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                       desc=f"downloading {s.archive.filename}", disable=not progress, leave=False)
            with bar:
                touched = time.monotonic()
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
                    if time.monotonic() - touched >= _KEEPALIVE_S:
                        os.utime(dest.parent)
                        touched = time.monotonic()
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(
            f"could not download {url} ({reason}). Offline? {manual_instructions(s.name, target)}"
        ) from None


def _digests(path: Path) -> tuple[int, str, str]:
    """(size in bytes, sha256 hex, md5 hex) of a file."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest(), md5.hexdigest()


def verify_archive(path: Path, s: RealSpec, origin: str | None = None) -> None:
    """Compare the archive's size, SHA-256 and md5 with the published values that are known;
    :class:`ChecksumError` naming the archive (``origin``: the URL it came from, default ``path``)
    and both values on a mismatch."""
    size, sha, md5 = _digests(path)
    a = s.archive
    for what, expected, got in (("size", a.size, size), ("SHA-256", a.sha256, sha), ("md5", a.md5, md5)):
        if expected is not None and expected != got:
            raise ChecksumError(
                f"{origin or path}: {what} is {got}, expected {expected} ({a.checksum_source}) — it is "
                f"damaged or not the published {a.filename}; nothing was installed. Get the archive again "
                f"from {a.url}"
            )


def _members(path: Path, s: RealSpec) -> dict[str, str]:
    """File name -> member name in the archive, for every file the adapter reads (required + optional)."""
    wanted = set(s.files) | set(s.optional_files)
    root = s.archive.root.strip("/")
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    else:
        with tarfile.open(path, "r:*") as tf:
            names = [m.name for m in tf.getmembers() if m.isfile()]
    found = {}
    for member in names:
        folder, _, base = member.rstrip("/").rpartition("/")
        if base in wanted and folder.strip("/") in (root, ""):
            found.setdefault(base, member)
    return found


def _unpack(path: Path, s: RealSpec, out: Path) -> None:
    """Extract the adapter's files from the archive into ``out`` (flat), checking the archive's integrity."""
    try:
        members = _members(path, s)
        missing = [f for f in s.files if f not in members]
        if missing:
            raise DownloadError(f"{path}: the archive has no {', '.join(missing)} under {s.archive.root}/ — "
                                f"is it {s.archive.filename}?")
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for base, member in members.items():
                    with zf.open(member) as src, open(out / base, "wb") as dst:   # CRC checked on read
                        shutil.copyfileobj(src, dst, _CHUNK)
        else:
            with tarfile.open(path, "r:*") as tf:
                for base, member in members.items():
                    src = tf.extractfile(member)
                    if src is None:
                        raise DownloadError(f"{path}: {member} is not a regular file")
                    with src, open(out / base, "wb") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError, ValueError) as err:
        if isinstance(err, DownloadError):
            raise
        raise DownloadError(f"{path}: the archive is damaged ({err}); delete it and download again") from None


def download(name: str, data_dir: str | Path | None = None, *, url: str | None = None,
             archive: str | Path | None = None, timeout: float = DEFAULT_TIMEOUT_S, force: bool = False,
             progress: bool = True) -> Path:
    """Fetch, verify and unpack the real dataset ``name`` into ``<data dir>/<name>/``; returns that folder.

    ``url`` replaces the publisher's URL (a mirror, or ``file://`` in tests); ``archive`` uses a local
    copy of the archive instead of the network. An existing complete folder is kept unless ``force``.
    Raises :class:`DownloadError` / :class:`ChecksumError` (and leaves ``data/`` as it was) on failure.
    """
    s = spec(name)
    target = dataset_dir(name, data_dir)
    if target.exists() and not force:
        try:
            check_files(name, target)
            return target
        except (MissingDataError, DataFileError) as err:
            raise DownloadError(f"{target} exists but is incomplete or damaged ({err}); "
                                f"run again with --force to replace it") from None
    sweep_stale_temps(target.parent)                 # staging folders of killed downloads
    staging = temp_sibling(target, directory=True)
    try:
        if archive is not None:
            local = Path(archive).expanduser()
            if not local.is_file():
                raise DownloadError(f"{local}: archive not found")
        else:
            local = staging / s.archive.filename
            _fetch(url or s.archive.url, local, timeout, progress, s, target)
        verify_archive(local, s, origin=None if archive is not None else (url or s.archive.url))
        ready = staging / name
        ready.mkdir()
        _unpack(local, s, ready)
        try:
            check_files(name, ready)
        except (MissingDataError, DataFileError) as err:
            raise DownloadError(f"the unpacked files are not in the published format: {err}") from None
        if target.exists():                          # --force: swap the old folder out, then in with the new
            os.replace(target, staging / "old")
        os.replace(ready, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
