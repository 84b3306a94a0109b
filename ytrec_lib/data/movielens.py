"""MovieLens (GroupLens) in its published formats, mapped onto the project's tables.

Two releases are read here as published (``ml-100k`` in :mod:`.movielens100k`, through the same
:func:`_assemble`):

* ``ml-latest-small`` -- ``ratings.csv`` (``userId,movieId,rating,timestamp``; half-star ratings
  0.5-5.0) and ``movies.csv`` (``movieId,title,genres``; UTF-8, titles with commas are quoted,
  genres ``|``-separated or ``(no genres listed)``). No user file.
* ``ml-1m`` -- ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``), ``users.dat``
  (``UserID::Gender::Age::Occupation::Zip-code``) and ``movies.dat`` (``MovieID::Title::Genres``),
  separated by ``::``, Latin-1 encoded, no header.

The mapping (also in ``docs/real_datasets.md``):

* every rating is a *watch* by default (``threshold=None``: implicit feedback, "the user watched it",
  the usual protocol); ``threshold=4`` keeps only ratings ``>= 4`` (the liked ones) and drops the
  rest. A watch is a clicked impression with ``watch_time = NOMINAL_DURATION_S * rating / 5``
  (MovieLens has no watch time; the rating scales a nominal 100-minute film). There are no exposures
  beyond the watches.
* topic = the movie's *rarest* genre in the catalogue (its most specific one; ties by
  :data:`GENRES` order); category = :data:`GENRE_CATEGORY` of that genre.
* videos are numbered in upload order (as the simulator's), ties by movie id;
* upload time = 1 January of the year in the title, or the first rating if that is earlier (or if
  the title has no year); duration = :data:`NOMINAL_DURATION_S`; creator = the movie itself.
* ml-1m demographics: age code -> years (:data:`ML1M_AGE_YEARS`, the middle of each band), gender
  F -> 0, M -> 1, region = first digit of the US zip code (10 = not a 5-digit US zip code).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .rawio import DataFileError, FileFormat, check_unique, fail_at, line_of, read_table
from .realtables import (
    anonymous_users,
    day_origin,
    empty_searches,
    impressions_table,
    in_upload_order,
    observed_activity,
    real_meta,
    reindex,
    to_days,
    tokenize_titles,
)

__all__ = ["GENRES", "GENRE_CATEGORY", "CATEGORIES", "ML1M_AGE_YEARS", "NOMINAL_DURATION_S",
           "DEFAULT_THRESHOLD", "load_ml_latest_small", "load_ml_1m", "SMALL_FILES", "ML1M_FILES"]

GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
          "War", "Western", "(no genres listed)")
"""Every genre of both releases (ml-1m spells ``Children's``, read as ``Children``)."""
GENRE_ALIASES = {"Children's": "Children"}
CATEGORIES = ("action", "crime & suspense", "drama", "comedy", "family", "sci-fi & fantasy",
              "documentary & IMAX", "no genre")
GENRE_CATEGORY = {
    "Action": "action", "Adventure": "action", "War": "action", "Western": "action",
    "Crime": "crime & suspense", "Film-Noir": "crime & suspense", "Horror": "crime & suspense",
    "Mystery": "crime & suspense", "Thriller": "crime & suspense",
    "Drama": "drama", "Romance": "drama", "Comedy": "comedy", "Musical": "comedy",
    "Animation": "family", "Children": "family", "Fantasy": "sci-fi & fantasy", "Sci-Fi": "sci-fi & fantasy",
    "Documentary": "documentary & IMAX", "IMAX": "documentary & IMAX", "(no genres listed)": "no genre",
}
ML1M_AGE_YEARS = {1: 15.0, 18: 21.0, 25: 29.5, 35: 39.5, 45: 47.0, 50: 52.5, 56: 60.0}
"""ml-1m age codes (1: under 18, 18: 18-24, 25: 25-34, 35: 35-44, 45: 45-49, 50: 50-55, 56: 56+) -> years."""
NOMINAL_DURATION_S = 6000.0
MAX_RATING = 5.0
DEFAULT_THRESHOLD: float | None = None
"""Every rating is a watch (implicit feedback); a number keeps only the ratings ``>=`` it."""
N_ZIP_REGIONS = 11          # first zip digit 0-9, and 10 for anything else

_HINT = "re-download with `python -m ytrec_lib download {name}` or restore the published file"
_YEAR = re.compile(r"\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")

SMALL_FILES = ("ratings.csv", "movies.csv")
ML1M_FILES = ("ratings.dat", "users.dat", "movies.dat")


def _formats_small(name: str) -> dict[str, FileFormat]:
    hint = _HINT.format(name=name)
    return {
        "ratings.csv": FileFormat(("userId", "movieId", "rating", "timestamp"), {"rating": "float"},
                                  hint=hint),
        "movies.csv": FileFormat(("movieId", "title", "genres"), {"title": "str", "genres": "str"},
                                 hint=hint),
    }


def _formats_1m(name: str) -> dict[str, FileFormat]:
    hint = _HINT.format(name=name)
    common = dict(header=False, sep="::", encoding="latin-1", hint=hint)
    return {
        "ratings.dat": FileFormat(("UserID", "MovieID", "Rating", "Timestamp"), **common),
        "users.dat": FileFormat(("UserID", "Gender", "Age", "Occupation", "Zip-code"),
                                {"Gender": "str", "Zip-code": "str"}, **common),
        "movies.dat": FileFormat(("MovieID", "Title", "Genres"), {"Title": "str", "Genres": "str"}, **common),
    }


def file_formats(release: str, name: str) -> dict[str, FileFormat]:
    """The :class:`FileFormat` of every file of ``release`` (``"ml-latest-small"`` or ``"ml-1m"``)."""
    return _formats_small(name) if release == "ml-latest-small" else _formats_1m(name)


# --------------------------------------------------------------------------------------------
# checks that name the file and line
# --------------------------------------------------------------------------------------------
def _ratings_checks(r: pd.DataFrame, path: Path, fmt: FileFormat) -> np.ndarray:
    rating = r.iloc[:, 2].to_numpy(np.float64)
    fail_at(~((rating > 0) & (rating <= MAX_RATING)), path, fmt,
             "rating {value} is outside (0, 5]", rating)
    ts = r.iloc[:, 3].to_numpy(np.int64)
    fail_at(ts < 0, path, fmt, "negative timestamp {value}", ts)
    return rating


# --------------------------------------------------------------------------------------------
# videos
# --------------------------------------------------------------------------------------------
def _genre_lists(genres: pd.Series, path: Path, fmt: FileFormat) -> list[list[str]]:
    out = []
    for i, text in enumerate(genres.tolist()):
        names = [GENRE_ALIASES.get(g, g) for g in str(text).split("|")]
        bad = [g for g in names if g not in GENRE_CATEGORY]
        if bad:
            raise DataFileError(path, line_of(i, fmt),
                                f"unknown genre {bad[0]!r} (known: {', '.join(GENRES)})", fmt.hint)
        out.append(names)
    return out


def _topics(genre_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Each movie's rarest genre -> (topic (V,) int16, category (V,) int16, topic names, category names)."""
    counts = pd.Series([g for gs in genre_lists for g in gs]).value_counts().to_dict()
    rank = {g: i for i, g in enumerate(GENRES)}
    chosen = [min(gs, key=lambda g: (counts[g], rank[g])) for gs in genre_lists]
    topic_names = [g for g in GENRES if g in set(chosen)]
    cat_names = [c for c in CATEGORIES if c in {GENRE_CATEGORY[g] for g in topic_names}]
    t_index = {g: i for i, g in enumerate(topic_names)}
    c_index = {c: i for i, c in enumerate(cat_names)}
    topic = np.array([t_index[g] for g in chosen], dtype=np.int16)
    topic_category = np.array([c_index[GENRE_CATEGORY[g]] for g in topic_names], dtype=np.int16)
    return topic, topic_category[topic], topic_names, cat_names


def _title_years(titles: list[str]) -> np.ndarray:
    """The year in parentheses at the end of each title (V,) float64, NaN when there is none."""
    years = pd.Series(titles, dtype="str").str.extract(_YEAR, expand=False)
    return pd.to_numeric(years, errors="coerce").to_numpy(np.float64)


RELEASE_S = "release_s"
"""Optional column of a movies table: the published release date in Unix seconds (NaN when empty)."""


def _stated_release(movies: pd.DataFrame, titles: list[str], origin: float) -> np.ndarray:
    """Days since origin (V,) float64 of each movie's stated release: its release date where the
    release publishes one (ml-100k's ``RELEASE_S``), else 1 January of the title's year; NaN if neither."""
    years = _title_years(titles)
    out = np.full(years.shape, np.nan)
    ok = ~np.isnan(years)
    if ok.any():
        stamps = (years[ok].astype(np.int64) - 1970).astype("datetime64[Y]").astype("datetime64[s]")
        out[ok] = to_days(stamps.astype(np.int64), origin)
    if RELEASE_S in movies.columns:
        date = movies[RELEASE_S].to_numpy(np.float64)
        out = np.where(np.isnan(date), out, to_days(date, origin))
    return out


def _upload_times(stated: np.ndarray, first_rating: np.ndarray) -> np.ndarray:
    """The stated release (days), or the first rating when earlier or unknown (V,) float64."""
    out = np.fmin(stated, first_rating)               # fmin ignores NaN on either side
    return np.where(np.isnan(out), 0.0, out)


def _videos(movies: pd.DataFrame, genre_lists: list[list[str]], first_rating: np.ndarray,
            origin: float) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``movies`` (columns: movie id, title, genres; sorted by id) and their parsed genres -> the
    ``videos`` table and its meta."""
    ids = movies.iloc[:, 0].to_numpy(np.int64)
    titles = movies.iloc[:, 1].fillna("").astype(str).tolist()
    topic, category, topic_names, cat_names = _topics(genre_lists)
    tokens, n_tokens = tokenize_titles([_YEAR.sub("", t) for t in titles])
    n = ids.size
    videos = pd.DataFrame({
        "video_id": np.arange(n, dtype=np.int64), "creator_id": np.arange(n, dtype=np.int32),
        "topic": topic, "category": category,
        "upload_time": _upload_times(_stated_release(movies, titles, origin), first_rating),
        "duration": np.full(n, NOMINAL_DURATION_S, np.float32), "language": np.zeros(n, np.int16),
        "quality": np.full(n, np.nan, np.float32), "clickbait": np.full(n, np.nan, np.float32),
        "series_id": np.full(n, -1, np.int32), "episode": np.full(n, -1, np.int16),
        "title_tokens": tokens, "source_id": ids, "title": pd.array(titles, dtype="str"),
        "genres": movies.iloc[:, 2].astype("str").to_numpy(),
    })
    meta = dict(n_topics=len(topic_names), n_categories=len(cat_names), n_tokens=n_tokens,
                topic_names=topic_names, category_names=cat_names)
    return videos, meta


# --------------------------------------------------------------------------------------------
# users
# --------------------------------------------------------------------------------------------
def _zip_region(zips: pd.Series) -> np.ndarray:
    """First digit of a 5-digit US zip code (``55455`` or ``55455-1234``) -> 0..9; anything else -> 10."""
    s = zips.fillna("").astype(str).str.strip()
    us = s.str.fullmatch(r"\d{5}(-\d{4})?").to_numpy(bool)
    first = pd.to_numeric(s.str[:1], errors="coerce").fillna(10).to_numpy(np.int64)
    return np.where(us, first, 10).astype(np.int16)


def _ids_and_gender(ids: pd.Series, gender: pd.Series, path: Path, fmt: FileFormat
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Checked user ids (n,) int64 (unique) and gender texts (n,) str (F or M), in file order."""
    out = ids.to_numpy(np.int64)
    check_unique(out, path, fmt, "user id")
    gender_text = gender.fillna("").astype(str).to_numpy()
    fail_at(~np.isin(gender_text, ["F", "M"]), path, fmt, "gender {value!r} is not F or M", gender_text)
    return out, gender_text


def _users_table(ids: np.ndarray, age: np.ndarray, gender_text: np.ndarray, zips: pd.Series,
                 extra: dict[str, Any]) -> pd.DataFrame:
    """Checked columns in file order (n,) each -> the ``users`` table, by published id: age in years,
    gender F -> 0 / M -> 1, region from the zip code; ``extra`` columns appended."""
    n = ids.size
    out = pd.DataFrame({
        "user_id": np.zeros(n, dtype=np.int64), "region": _zip_region(zips),
        "age": np.asarray(age, np.float32), "gender": (gender_text == "M").astype(np.int8),
        "language": np.zeros(n, np.int16), "activity": np.zeros(n, np.float32), "source_id": ids, **extra,
    })
    out = out.sort_values("source_id", kind="stable").reset_index(drop=True)
    out["user_id"] = np.arange(n, dtype=np.int64)
    return out


def _users_1m(users: pd.DataFrame, path: Path, fmt: FileFormat) -> pd.DataFrame:
    """``users.dat`` as read (file order, for the line numbers of errors) -> the ``users`` table by UserID."""
    ids, gender_text = _ids_and_gender(users["UserID"], users["Gender"], path, fmt)
    age_code = users["Age"].to_numpy(np.int64)
    bad_age = ~np.isin(age_code, list(ML1M_AGE_YEARS))
    if bad_age.any():                   # an age such as 200 or -5: refused, never scaled
        i = int(np.argmax(bad_age))
        raise DataFileError(path, line_of(i, fmt), f"user {ids[i]} has age code {age_code[i]}, not one of "
                            f"{sorted(ML1M_AGE_YEARS)} (ml-1m publishes age bands, not years)", fmt.hint)
    occupation = users["Occupation"].to_numpy(np.int64)
    fail_at((occupation < 0) | (occupation > 20), path, fmt, "occupation {value} is not in 0..20",
             occupation)
    codes = np.array(sorted(ML1M_AGE_YEARS))
    ages = np.array([ML1M_AGE_YEARS[c] for c in codes])[np.searchsorted(codes, age_code)]
    return _users_table(ids, ages, gender_text, users["Zip-code"], {
        "age_code": age_code.astype(np.int8), "occupation": occupation.astype(np.int8),
        "zip_code": users["Zip-code"].astype("str").to_numpy()})


# --------------------------------------------------------------------------------------------
# the whole dataset
# --------------------------------------------------------------------------------------------
def _check_threshold(threshold: float | None) -> float | None:
    """``None`` (every rating is a watch) or a number in (0, 5] as a float; ValueError otherwise."""
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) \
            or not 0 < float(threshold) <= MAX_RATING:
        raise ValueError(f"rating threshold must be a number in (0, 5], got {threshold!r} "
                         "(ratings >= threshold become watches; None, the default, keeps every rating; 4 keeps the "
                         "liked ones)")
    return float(threshold)


def _assemble(name: str, ratings: pd.DataFrame, r_path: Path, r_fmt: FileFormat, movies: pd.DataFrame,
              m_path: Path, m_fmt: FileFormat, users: pd.DataFrame | None, u_source: np.ndarray,
              threshold: float | None, release: str) -> dict[str, Any]:
    """Published tables (already read strictly) -> the Dataset fields (users, videos, impressions, ...)."""
    rating = _ratings_checks(ratings, r_path, r_fmt)
    movie_ids = movies.iloc[:, 0].to_numpy(np.int64)
    check_unique(movie_ids, m_path, m_fmt, "movie id")
    genre_lists = _genre_lists(movies.iloc[:, 2], m_path, m_fmt)      # in file order: errors name the line
    order = np.argsort(movie_ids, kind="stable")
    movies = movies.iloc[order].reset_index(drop=True)
    genre_lists = [genre_lists[i] for i in order]
    u, _ = reindex(ratings.iloc[:, 0].to_numpy(np.int64), u_source)
    v, _ = reindex(ratings.iloc[:, 1].to_numpy(np.int64), movies.iloc[:, 0].to_numpy(np.int64))
    fail_at(u < 0, r_path, r_fmt, "user {value} is not in the users file",
             ratings.iloc[:, 0].to_numpy())
    fail_at(v < 0, r_path, r_fmt, f"movie {{value}} is not in {m_path.name}", ratings.iloc[:, 1].to_numpy())
    stamps = ratings.iloc[:, 3].to_numpy(np.float64)
    origin = day_origin(stamps)
    t = to_days(stamps, origin)
    first = np.full(len(movies), np.nan)
    np.fmin.at(first, v, t)
    videos, vmeta = _videos(movies, genre_lists, first, origin)
    videos, new_id = in_upload_order(videos)
    videos["creator_id"] = videos["video_id"].to_numpy().astype(np.int32)      # each film its own creator
    v = new_id[v]
    keep = np.ones(rating.size, bool) if threshold is None else rating >= threshold
    if not keep.any():
        raise ValueError(f"{name}: none of the {rating.size:,} ratings in {r_path} is >= the threshold "
                         f"{threshold:g} (the highest is {rating.max():g}); lower the threshold (ratings "
                         ">= threshold become watches)")
    demo = users is not None                        # ml-1m, ml-100k: a users file with demographics
    users = anonymous_users(u_source) if users is None else users
    imp = impressions_table(u[keep], v[keep], t[keep], np.ones(int(keep.sum()), bool),
                            NOMINAL_DURATION_S * rating[keep] / MAX_RATING,
                            extra={"rating": rating[keep].astype(np.float32)})
    users["activity"] = observed_activity(imp["user_id"].to_numpy(), imp["clicked"].to_numpy(), len(users))
    reasons = {
        "impressions": f"{name} (MovieLens) has ratings only, no exposure log: every impression is a rated "
                       "(watched) movie, so there are no exposed-but-not-clicked rows",
        "searches": f"{name} (MovieLens) has no search log",
        "truth": f"{name} is real data: there is no ground truth (no oracle)",
    }
    if not demo:
        reasons["demographics"] = f"{name} (ml-latest-small) publishes no user age, gender or location"
    meta = real_meta(
        name, n_users=len(users), n_videos=len(videos), n_topics=vmeta["n_topics"],
        n_categories=vmeta["n_categories"], n_regions=N_ZIP_REGIONS if demo else 1,
        n_languages=1, n_tokens=vmeta["n_tokens"], t_end=float(np.floor(t[keep].max()) + 1.0), origin=origin,
        has_impressions=False, has_demographics=demo, skip_reasons=reasons, release=release,
        threshold=threshold, n_ratings=int(rating.size), topic_names=vmeta["topic_names"],
        category_names=vmeta["category_names"],
        region_names=[f"zip {d}xxxx" for d in range(10)] + ["other"] if demo else ["unknown"],
        watch_time_rule=f"watch_time = {NOMINAL_DURATION_S:g} s * rating / 5 for "
                        + ("every rating" if threshold is None else f"ratings >= {threshold:g}"),
    )
    return dict(users=users, videos=videos, impressions=imp, searches=empty_searches(), meta=meta, truth=None)


def load_ml_latest_small(folder: str | Path, name: str = "movielens-small", *,
                         threshold: float | None = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Read ``ratings.csv`` and ``movies.csv`` from ``folder`` -> the fields of a ``Dataset``.

    Every rating is a watch (``threshold=None``), or only those ``>= threshold``. Users are the
    ``userId`` values of ``ratings.csv`` (including users with no rating >= threshold).
    """
    threshold = _check_threshold(threshold)
    folder = Path(folder)
    fmts = _formats_small(name)
    r_path, m_path = folder / "ratings.csv", folder / "movies.csv"
    ratings, movies = read_table(r_path, fmts["ratings.csv"]), read_table(m_path, fmts["movies.csv"])
    u_source = np.unique(ratings["userId"].to_numpy(np.int64))
    return _assemble(name, ratings, r_path, fmts["ratings.csv"], movies, m_path, fmts["movies.csv"], None,
                     u_source, threshold, "ml-latest-small")


def load_ml_1m(folder: str | Path, name: str = "movielens-1m", *,
               threshold: float | None = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Read ``ratings.dat``, ``users.dat`` and ``movies.dat`` from ``folder`` -> the fields of a
    ``Dataset``. Every rating is a watch (``threshold=None``), or only those ``>= threshold``. Users
    are the rows of ``users.dat``; a rating by any other user is an error."""
    threshold = _check_threshold(threshold)
    folder = Path(folder)
    fmts = _formats_1m(name)
    tables = {f: read_table(folder / f, fmts[f]) for f in ML1M_FILES}
    users = _users_1m(tables["users.dat"], folder / "users.dat", fmts["users.dat"])
    return _assemble(name, tables["ratings.dat"], folder / "ratings.dat", fmts["ratings.dat"],
                     tables["movies.dat"], folder / "movies.dat", fmts["movies.dat"], users,
                     users["source_id"].to_numpy(), threshold, "ml-1m")
