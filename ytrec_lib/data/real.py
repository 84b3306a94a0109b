"""Real datasets (MovieLens, KuaiRand) as :class:`~ytrec_lib.data.datasets.Dataset` objects, by name.

>>> from ytrec_lib.data import real
>>> real.known_real()
['movielens-small', 'movielens-100k', 'movielens-1m', 'kuairand-pure', 'kuairand-1k']
>>> ds = real.load_real("movielens-1m")          # doctest: +SKIP  (reads data/movielens-1m/)

The files are read from ``<data dir>/<name>/`` (``$YTREC_DATA_DIR`` or ``<repo>/data``); nothing is
downloaded here -- ``python -m ytrec_lib download <name>`` does that, on request only
(:mod:`ytrec_lib.data.download`). A missing file raises :class:`MissingDataError` saying where to put
it; a damaged one raises :class:`DataFileError` naming the file and line.

A real dataset lacks some of what the simulator has (MovieLens: exposures and searches; every real
dataset: the ground truth). ``meta`` says so (``has_impressions``, ``has_searches``, ``has_truth``,
``has_demographics``), and notebooks ask first:

>>> if (why := real.skip_reason(ds, "searches")):   # doctest: +SKIP
...     print(f"Skipped: {why}")
>>> real.require(ds, "impressions")                   # doctest: +SKIP  (MissingTableError for MovieLens)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import cache_key
from .rawio import DataFileError, FileFormat, MissingDataError, check_header

__all__ = ["Archive", "RealSpec", "REAL_DATASETS", "known_real", "is_real", "data_root", "dataset_dir",
           "find_files", "load_real", "check_files", "MissingTableError", "TABLES", "has", "skip_reason",
           "require", "skipped", "DataFileError", "MissingDataError"]

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Archive:
    """Where a dataset is published and how to verify the archive.

    ``sha256`` / ``md5`` / ``size``: the expected archive, ``None`` where not known;
    ``checksum_source``: where the expected values come from. ``root``: the folder inside the
    archive that holds the data files.
    """

    url: str
    filename: str
    root: str
    sha256: str | None
    md5: str | None
    size: int | None
    checksum_source: str


@dataclass(frozen=True)
class RealSpec:
    """One real dataset: its files, where it is published and how to read it."""

    name: str
    title: str
    homepage: str
    license: str
    files: tuple[str, ...]            # required, in <data dir>/<name>/
    optional_files: tuple[str, ...]   # read only when asked (e.g. KuaiRand's random-exposure log)
    archive: Archive
    loader: Callable[..., dict[str, Any]]
    formats: Callable[[], dict[str, FileFormat]]   # file name -> FileFormat (for a quick header check)
    options: tuple[str, ...] = ()     # keyword options the loader accepts


def _ml_loader(kind: str) -> Callable[..., dict[str, Any]]:
    def load(folder: Path, name: str, **options: Any) -> dict[str, Any]:
        from . import movielens, movielens100k

        fn = {"ml-1m": movielens.load_ml_1m, "ml-100k": movielens100k.load_ml_100k,
              "ml-latest-small": movielens.load_ml_latest_small}[kind]
        return fn(folder, name, **options)
    return load


def _ml_formats(kind: str, name: str) -> Callable[[], dict[str, FileFormat]]:
    def formats() -> dict[str, FileFormat]:
        from . import movielens, movielens100k

        if kind == "ml-100k":
            return movielens100k.file_formats(name)
        return movielens.file_formats(kind, name)
    return formats


def _kr_loader(variant: str) -> Callable[..., dict[str, Any]]:
    def load(folder: Path, name: str, **options: Any) -> dict[str, Any]:
        from . import kuairand

        return kuairand.load_kuairand(folder, name, variant=variant, **options)
    return load


def _kr_formats(variant: str, name: str) -> Callable[[], dict[str, FileFormat]]:
    def formats() -> dict[str, FileFormat]:
        from . import kuairand

        fmts = kuairand.file_formats(name)
        role_fmt = {"log_a": "log", "log_b": "log", "log_random": "log", "users": "users", "videos": "videos"}
        files = kuairand.kuairand_files(variant, include_random=True)
        return {fname: fmts[role_fmt[role]] for role, fname in files.items()}
    return formats


_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
_ML_LICENSE = "GroupLens usage licence: research use, no redistribution (see the README in the archive)"
_KR_LICENSE = "CC BY-SA 4.0"
_KR_MD5_SOURCE = "md5 published by the authors in the KuaiRand README (github.com/chongminggao/KuaiRand)"


def _kuairand(variant: str, suffix: str, md5: str) -> RealSpec:
    name = f"kuairand-{variant}"
    stem = f"KuaiRand-{suffix}"
    return RealSpec(
        name=name, title=f"KuaiRand-{suffix} (Kuaishou short-video feed log with random exposures)",
        homepage="https://kuairand.com/", license=_KR_LICENSE,
        files=(f"log_standard_4_08_to_4_21_{variant}.csv", f"log_standard_4_22_to_5_08_{variant}.csv",
               f"user_features_{variant}.csv", f"video_features_basic_{variant}.csv"),
        optional_files=(f"log_random_4_22_to_5_08_{variant}.csv",),
        archive=Archive(url=f"https://zenodo.org/records/10439422/files/{stem}.tar.gz",
                        filename=f"{stem}.tar.gz", root=f"{stem}/data", sha256=None, md5=md5, size=None,
                        checksum_source=_KR_MD5_SOURCE),
        loader=_kr_loader(variant), formats=_kr_formats(variant, name),
        options=("include_random", "progress"),
    )


REAL_DATASETS: dict[str, RealSpec] = {
    "movielens-small": RealSpec(
        name="movielens-small", title="MovieLens ml-latest-small (100,836 ratings, 610 users, 9,742 movies)",
        homepage="https://grouplens.org/datasets/movielens/latest/", license=_ML_LICENSE,
        files=("ratings.csv", "movies.csv"), optional_files=(),
        archive=Archive(url=_GROUPLENS + "ml-latest-small.zip", filename="ml-latest-small.zip",
                        root="ml-latest-small",
                        sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
                        md5=None, size=978_202,
                        checksum_source="SHA-256 and size of the 2018-09 release as pinned by several "
                                        "independent projects; GroupLens publishes only an .md5 file"),
        loader=_ml_loader("ml-latest-small"), formats=_ml_formats("ml-latest-small", "movielens-small"),
        options=("threshold",),
    ),
    "movielens-100k": RealSpec(
        name="movielens-100k", title="MovieLens 100K (100,000 ratings, 943 users, 1,682 movies)",
        homepage="https://grouplens.org/datasets/movielens/100k/", license=_ML_LICENSE,
        files=("u.data", "u.user", "u.item"), optional_files=(),
        archive=Archive(url=_GROUPLENS + "ml-100k.zip", filename="ml-100k.zip", root="ml-100k",
                        sha256=None, md5="0e33842e24a9c977be4e0107933c0723", size=None,
                        checksum_source="md5 as published by GroupLens (ml-100k.zip.md5), also pinned by "
                                        "several independent projects"),
        loader=_ml_loader("ml-100k"), formats=_ml_formats("ml-100k", "movielens-100k"), options=("threshold",),
    ),
    "movielens-1m": RealSpec(
        name="movielens-1m", title="MovieLens 1M (1,000,209 ratings, 6,040 users, 3,883 movies)",
        homepage="https://grouplens.org/datasets/movielens/1m/", license=_ML_LICENSE,
        files=("ratings.dat", "users.dat", "movies.dat"), optional_files=(),
        archive=Archive(url=_GROUPLENS + "ml-1m.zip", filename="ml-1m.zip", root="ml-1m",
                        sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
                        md5="c4d9eecfca2ab87c1945afe126590906", size=5_917_549,
                        checksum_source="md5 as published by GroupLens (ml-1m.zip.md5); SHA-256 and size "
                                        "as pinned by TensorFlow Datasets"),
        loader=_ml_loader("ml-1m"), formats=_ml_formats("ml-1m", "movielens-1m"), options=("threshold",),
    ),
    "kuairand-pure": _kuairand("pure", "Pure", "0820331067a3784d9691136f772b35a7"),
    "kuairand-1k": _kuairand("1k", "1K", "6b0b9c8222d67fcd4c676218edca3f1f"),
}


def known_real() -> list[str]:
    """Names of the real datasets, in the order of :data:`REAL_DATASETS`."""
    return list(REAL_DATASETS)


def is_real(name: str) -> bool:
    """Whether ``name`` is a real dataset (rather than a simulator preset)."""
    return name in REAL_DATASETS


def spec(name: str) -> RealSpec:
    """The :class:`RealSpec` of ``name``; ``KeyError`` listing the known names otherwise."""
    if name not in REAL_DATASETS:
        raise KeyError(f"unknown real dataset {name!r}; known: {', '.join(REAL_DATASETS)}")
    return REAL_DATASETS[name]


def data_root() -> Path:
    """The data folder: ``$YTREC_DATA_DIR`` or ``<repo>/data`` (the same rule as ``datasets.data_dir``)."""
    env = os.environ.get("YTREC_DATA_DIR")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "data"


def dataset_dir(name: str, data_dir: str | Path | None = None) -> Path:
    """Where the files of ``name`` belong: ``<data dir>/<name>``."""
    spec(name)
    return (Path(data_dir).expanduser().resolve() if data_dir is not None else data_root()) / name


def manual_instructions(name: str, folder: Path, missing: list[str] | None = None) -> str:
    """How to put the files of ``name`` in place by hand (for offline machines)."""
    s = spec(name)
    need = ", ".join(missing or s.files)
    return (f"put {need} into {folder}/ -- they are in the {s.archive.root}/ folder of {s.archive.filename} "
            f"({s.archive.url}); or copy {s.archive.filename} to this machine and run "
            f"`python -m ytrec_lib download {name} --archive PATH/{s.archive.filename}`")


def find_files(name: str, data_dir: str | Path | None = None, *, include_optional: bool = False) -> Path:
    """The folder holding the files of ``name``: ``<data dir>/<name>/``, or the archive's own folder
    inside it (``<data dir>/<name>/<archive root>/``, as left by unpacking the archive there by hand).

    Raises :class:`MissingDataError` naming the missing files and where to put them.
    """
    s = spec(name)
    base = dataset_dir(name, data_dir)
    wanted = list(s.files) + (list(s.optional_files) if include_optional else [])
    for folder in (base, base / s.archive.root):
        if all((folder / f).is_file() for f in wanted):
            return folder
    missing = [f for f in wanted if not (base / f).is_file()]
    what = "is not there" if not base.exists() else f"lacks {', '.join(missing)}"
    raise MissingDataError(
        f"dataset {name!r}: {base}/ {what}. Nothing is downloaded automatically: run "
        f"`python -m ytrec_lib download {name}` (needs internet), or "
        f"{manual_instructions(name, base, missing)}"
    )


def check_files(name: str, folder: Path, *, include_optional: bool = False) -> None:
    """A quick check of the files of ``name`` in ``folder``: each exists and its first line has the
    published columns (header files) or field count (``.dat`` files). Raises on the first problem."""
    s = spec(name)
    formats = s.formats()
    for fname in list(s.files) + (list(s.optional_files) if include_optional else []):
        path = folder / fname
        fmt = formats[fname]
        if fmt.header:
            check_header(path, fmt)
            continue
        if not path.is_file():
            raise MissingDataError(f"{path}: file not found")
        with open(path, encoding=fmt.encoding, newline="") as fh:
            first = fh.readline().rstrip("\r\n")
        n = len(first.split(fmt.sep)) if first else 0
        if n != len(fmt.columns):
            raise DataFileError(path, 1, f"{n} fields, expected {len(fmt.columns)} "
                                f"({', '.join(fmt.columns)})", fmt.hint)


def load_real(name: str, data_dir: str | Path | None = None, *, style: str = "ugc", progress: bool = True,
              **options: Any):
    """Read the real dataset ``name`` from ``<data dir>/<name>/`` -> ``datasets.Dataset`` (``truth=None``).

    ``options``: ``threshold`` (MovieLens; default None: every rating is a watch, implicit feedback;
    a number keeps only the ratings >= it, e.g. 4 for the liked ones),
    ``include_random`` (KuaiRand; add the random-exposure log, default False). ``style`` exists for
    the call from ``datasets.load``: only ``"ugc"`` is accepted (a real dataset has one catalogue).
    Nothing is written and nothing is downloaded.
    """
    from .datasets import Dataset

    s = spec(name)
    if style != "ugc":
        raise ValueError(f"style={style!r} is a simulator setting; the real dataset {name!r} has one "
                         "catalogue (compare against a simulator preset instead)")
    unknown = sorted(set(options) - set(s.options))
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {', '.join(unknown)}; it accepts: "
                         f"{', '.join(o for o in s.options if o != 'progress') or 'none'}")
    if "progress" in s.options:
        options["progress"] = progress
    folder = find_files(name, data_dir, include_optional=bool(options.get("include_random")))
    fields = s.loader(folder, name, **options)
    fields["meta"]["data_dir"] = str(folder)
    # models cached on this dataset are keyed by the version: new files or options -> new models. The
    # options count at the values the loader used (meta), so a changed default cannot reuse old models.
    fingerprint = files_fingerprint(folder, _resolved_options(s, fields["meta"], options))
    fields["meta"]["generator_version"] = f"{fields['meta']['generator_version']}-{fingerprint}"
    return Dataset(**fields)


def _resolved_options(s: RealSpec, meta: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Every loading option of ``s`` (``progress`` aside) at the value the loader used: ``meta[option]``
    where the loader records it (``threshold``, ``include_random``), else as passed (None if not)."""
    return {k: meta.get(k, options.get(k)) for k in s.options if k != "progress"}


def files_fingerprint(folder: Path, options: dict[str, Any] | None = None) -> str:
    """A 12-hex-digit hash of the names, sizes and modification times of the files under ``folder``
    (and of the loading ``options``): it changes when a dataset's files are replaced, so models
    cached on the old files are not reused. Reads no file contents."""
    entries = sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                     for p in Path(folder).rglob("*") if p.is_file())
    return cache_key({"files": entries, "options": options or {}})


# --------------------------------------------------------------------------------------------
# what a dataset has
# --------------------------------------------------------------------------------------------
TABLES = {
    "impressions": "has_impressions",     # an exposure log: exposed-but-not-clicked rows exist
    "searches": "has_searches",
    "truth": "has_truth",                 # the simulator's ground truth (oracle)
    "demographics": "has_demographics",   # age, gender, region of users
}
"""What a notebook section may need -> the ``meta`` flag that says whether the dataset has it."""


class MissingTableError(LookupError):
    """A notebook section needs something this dataset lacks (check :func:`skip_reason` first)."""


def has(ds: Any, what: str) -> bool:
    """Whether dataset ``ds`` has ``what`` (a key of :data:`TABLES`). Missing flags count as present
    (the simulator has everything)."""
    if what not in TABLES:
        raise KeyError(f"unknown table or feature {what!r}; choose from {', '.join(TABLES)}")
    return bool(ds.meta.get(TABLES[what], True))


def skip_reason(ds: Any, what: str) -> str | None:
    """``None`` when ``ds`` has ``what``; else a one-line reason to print before skipping a section."""
    if has(ds, what):
        return None
    name = ds.meta.get("name", "this dataset")
    why = ds.meta.get("skip_reasons", {}).get(what, f"{name} has no {what}")
    return f"{why}; this section needs {what} and is skipped"


def skipped(ds: Any, *needs: str) -> bool:
    """True, after printing ``Skipped: <reason>`` for each, when ``ds`` lacks one of ``needs``
    (impressions, searches, truth, demographics, ...): the notebook then skips its section and records
    nothing for it. False (and nothing printed) when every need is met."""
    reasons = [why for what in needs if (why := skip_reason(ds, what))]
    for why in reasons:
        print(f"Skipped: {why}")
    return bool(reasons)


def require(ds: Any, *what: str) -> None:
    """Raise :class:`MissingTableError` (one line: what is missing and that the section should be
    skipped) unless ``ds`` has every item of ``what``."""
    for item in what:
        reason = skip_reason(ds, item)
        if reason:
            raise MissingTableError(reason)
