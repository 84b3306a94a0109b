"""MovieLens 100K (``ml-100k``, GroupLens 1998) in its published format, mapped onto the project's tables.

The release with the demographics of the paper's user features (age in years, gender, occupation,
zip code). Three files are read, as published in ``ml-100k.zip`` (no header, Latin-1):

* ``u.data`` -- ``user id \\t item id \\t rating \\t timestamp``, ratings 1-5;
* ``u.user`` -- ``user id|age|gender|occupation|zip code``, the age in years, one of the 21
  occupations of ``u.occupation`` (:data:`OCCUPATIONS`);
* ``u.item`` -- ``movie id|movie title|release date|video release date|IMDb URL|`` and 19 genre
  flags 0/1 in the order of ``u.genre`` (:data:`ML100K_GENRES`); release dates such as ``01-Jan-1995``.

``u.genre``, ``u.occupation``, ``u.info``, the README and the numbered splits are not read (the genre
and occupation names are fixed here, as published).

The mapping follows ml-1m (:mod:`.movielens`; ``docs/real_datasets.md``; every rating is a watch by
default, ``threshold=4`` keeps only the liked ones) except:

* age = the published years (checked to lie in 0..120); occupation -> its index in
  :data:`OCCUPATIONS` (extra column ``occupation`` int8; names in ``meta["occupation_names"]``);
* genres = the names of the flags that are set (``unknown`` -> ``(no genres listed)``); topic and
  category as ml-1m (the rarest genre);
* upload time = the release date where given (GroupLens gives most films as 1 January of their
  year), else 1 January of the title's year; the first rating when that is earlier or neither is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .movielens import (
    _HINT,
    DEFAULT_THRESHOLD,
    RELEASE_S,
    _assemble,
    _check_threshold,
    _ids_and_gender,
    _users_table,
)
from .rawio import DataFileError, FileFormat, fail_at, line_of, read_table
from .realtables import AGE_RANGE

__all__ = ["ML100K_FILES", "ML100K_GENRES", "OCCUPATIONS", "DEFAULT_THRESHOLD", "file_formats", "load_ml_100k"]

ML100K_FILES = ("u.data", "u.user", "u.item")
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                 "Thriller", "War", "Western")
"""The 19 genre flags of ``u.item``, in file order (as in ``u.genre``)."""
OCCUPATIONS = ("administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
               "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
               "retired", "salesman", "scientist", "student", "technician", "writer")
"""The 21 occupations of ``u.occupation``; a user's ``occupation`` is the index here."""
_NO_GENRE = "(no genres listed)"
_MONTHS = {m: f"{i:02d}" for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                                                "Oct", "Nov", "Dec"), start=1)}
_ITEM_TEXT = ("movie title", "release date", "video release date", "IMDb URL")


def file_formats(name: str) -> dict[str, FileFormat]:
    """The :class:`FileFormat` of ``u.data``, ``u.user`` and ``u.item``."""
    common = dict(header=False, encoding="latin-1", hint=_HINT.format(name=name))
    return {
        "u.data": FileFormat(("user id", "item id", "rating", "timestamp"), sep="\t", **common),
        "u.user": FileFormat(("user id", "age", "gender", "occupation", "zip code"),
                             {"gender": "str", "occupation": "str", "zip code": "str"}, sep="|",
                             text_only=True, **common),
        "u.item": FileFormat(("movie id", *_ITEM_TEXT, *ML100K_GENRES), dict.fromkeys(_ITEM_TEXT, "str"),
                             sep="|", nullable=frozenset(_ITEM_TEXT[1:]), text_only=True, **common),
    }


# --------------------------------------------------------------------------------------------
# users
# --------------------------------------------------------------------------------------------
def _users(users: pd.DataFrame, path: Path, fmt: FileFormat) -> pd.DataFrame:
    """``u.user`` as read (file order, for the line numbers of errors) -> the ``users`` table by user id."""
    ids, gender_text = _ids_and_gender(users["user id"], users["gender"], path, fmt)
    age = users["age"].to_numpy(np.int64)
    lo, hi = AGE_RANGE
    bad = (age < lo) | (age > hi)
    if bad.any():                       # an age such as 200 or -5: refused, never clipped
        i = int(np.argmax(bad))
        raise DataFileError(path, line_of(i, fmt), f"user {ids[i]} has age {age[i]}, outside the plausible "
                            f"{lo:g}..{hi:g} years", fmt.hint)
    occupation = users["occupation"].fillna("").astype(str).to_numpy()
    known = np.isin(occupation, OCCUPATIONS)
    fail_at(~known, path, fmt, "occupation {value!r} is not one of the 21 of u.occupation "
            f"({', '.join(OCCUPATIONS)})", occupation)
    code = np.searchsorted(np.array(OCCUPATIONS), occupation).astype(np.int8)
    zips = users["zip code"]
    return _users_table(ids, age.astype(np.float32), gender_text, zips,
                        {"occupation": code, "zip_code": zips.astype("str").to_numpy()})


# --------------------------------------------------------------------------------------------
# movies
# --------------------------------------------------------------------------------------------
def _release_seconds(dates: pd.Series, path: Path, fmt: FileFormat) -> np.ndarray:
    """Release dates such as ``01-Jan-1995`` or ``4-Feb-1971`` (or empty) -> Unix seconds of that UTC midnight (n,)
    float64, NaN when empty. A date in any other form is an error naming its line."""
    text = dates.fillna("").astype(str)
    parts = text.str.extract(r"^(\d{1,2})-([A-Z][a-z]{2})-(\d{4})$")       # day: "01" or "4"
    iso = parts[2] + "-" + parts[1].map(_MONTHS) + "-" + parts[0].str.zfill(2)
    stamp = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce")
    fail_at(((text != "") & stamp.isna()).to_numpy(), path, fmt,
            "release date {value!r} is not a date like 01-Jan-1995", text.to_numpy())
    return ((stamp - pd.Timestamp(0)) / pd.Timedelta(seconds=1)).to_numpy(np.float64)


def _genre_text(flags: np.ndarray, path: Path, fmt: FileFormat) -> list[str]:
    """Genre flags (V, 19) int64 -> ``|``-joined genre names per movie (``unknown`` or none set ->
    ``(no genres listed)``)."""
    bad_cell = (flags != 0) & (flags != 1)
    first_bad = flags[np.arange(flags.shape[0]), np.argmax(bad_cell, axis=1)]
    fail_at(bad_cell.any(axis=1), path, fmt, "genre flag {value} is not 0 or 1", first_bad)
    names = np.array(ML100K_GENRES, dtype=object)
    out = []
    for row in flags.astype(bool):
        chosen = [g for g in names[row] if g != "unknown"]
        out.append("|".join(chosen) if chosen else _NO_GENRE)
    return out


def _movies(items: pd.DataFrame, path: Path, fmt: FileFormat) -> pd.DataFrame:
    """``u.item`` as read -> (movie id, title, genres, release seconds), file order kept (for the line
    numbers of the checks in :func:`~.movielens._assemble`)."""
    return pd.DataFrame({
        "movie id": items["movie id"].to_numpy(np.int64),
        "movie title": items["movie title"].astype("str").to_numpy(),
        "genres": _genre_text(items[list(ML100K_GENRES)].to_numpy(np.int64), path, fmt),
        RELEASE_S: _release_seconds(items["release date"], path, fmt),
    })


# --------------------------------------------------------------------------------------------
# the whole dataset
# --------------------------------------------------------------------------------------------
def load_ml_100k(folder: str | Path, name: str = "movielens-100k", *,
                 threshold: float | None = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Read ``u.data``, ``u.user`` and ``u.item`` from ``folder`` -> the fields of a ``Dataset``.

    Users are the rows of ``u.user``, movies those of ``u.item``; a rating of any other user or movie is
    an error. Every rating is a watch (``threshold=None``, the default), or only those ``>= threshold``.
    """
    threshold = _check_threshold(threshold)
    folder = Path(folder)
    fmts = file_formats(name)
    tables = {f: read_table(folder / f, fmts[f]) for f in ML100K_FILES}
    users = _users(tables["u.user"], folder / "u.user", fmts["u.user"])
    movies = _movies(tables["u.item"], folder / "u.item", fmts["u.item"])
    fields = _assemble(name, tables["u.data"], folder / "u.data", fmts["u.data"], movies, folder / "u.item",
                       fmts["u.item"], users, users["source_id"].to_numpy(), threshold, "ml-100k")
    fields["meta"]["occupation_names"] = list(OCCUPATIONS)
    return fields
