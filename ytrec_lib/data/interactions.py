"""A dataset from one's own interaction table (``datasets.from_interactions``), mapped onto the tables.

The input is a pandas DataFrame with one row per interaction: a user id, an item id and a time (Unix
seconds as numbers, or datetimes), optionally a rating. The mapping follows the MovieLens adapter
(:mod:`.movielens`, ``docs/real_datasets.md``) with no side information:

* every row is a *watch* (a clicked impression), or, with ``rating`` and ``threshold``, every row whose
  rating is ``>= threshold``; the rating, when given, is kept in the extra column ``rating``;
* user and item ids may be integers or strings; they are renumbered 0..n-1 and kept as ``source_id``
  (users by id, items in order of their first interaction, ties by id, as the simulator numbers videos);
  every user and item of the frame is in the tables, also those whose rows the threshold dropped;
* times become days since the UTC midnight before the first interaction; an item's upload time is its
  first interaction; sessions are a user's rows less than 30 minutes apart;
* no demographics (age NaN, gender -1, region 0), one topic and category, no searches, no exposures;
  duration and watch time are 1 s (unknown: every watch weighs the same);
* ``meta["source"] == "real"``, so the standard split is per-user leave-last-out; ``meta
  ["generator_version"]`` carries a hash of the interactions used, so models cached on them are
  keyed by their content (a changed table never reloads an old model).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np
import pandas as pd

from .cache import cache_key
from .realtables import (
    ADAPTER_VERSION,
    anonymous_users,
    day_origin,
    empty_searches,
    impressions_table,
    observed_activity,
    real_meta,
    to_days,
)

__all__ = ["interaction_fields", "NAME_PATTERN"]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""A dataset name: letters, digits, ``.``, ``_`` and ``-`` (it names cache files)."""
_WHERE = "from_interactions"


def _check_frame(frame: Any, columns: dict[str, str | None], name: str) -> None:
    """ValueError / TypeError for a frame that is not a DataFrame, lacks a column, is empty or has NaNs."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{_WHERE}: expected a pandas DataFrame of interactions, got {type(frame).__name__}")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{_WHERE}: name must be letters, digits, '.', '_' or '-' (it names cache files), "
                         f"got {name!r}")
    missing = [f"{role}={col!r}" for role, col in columns.items() if col is not None and col not in frame]
    if missing:
        raise ValueError(f"{_WHERE}: the frame has no column for {', '.join(missing)}; its columns are "
                         f"{list(frame.columns)} -- pass the right names, e.g. user='userId'")
    if len(frame) == 0:
        raise ValueError(f"{_WHERE}: the frame has no rows; give one row per interaction (a user needs 3 "
                         "or more for the leave-last-out split to test them)")
    for role, col in columns.items():
        if col is None:
            continue
        na = frame[col].isna().to_numpy()
        if na.any():
            raise ValueError(f"{_WHERE}: column {col!r} ({role}) has {int(na.sum()):,} missing value(s), the "
                             f"first in row {frame.index[int(np.argmax(na))]!r}; drop or fill those rows "
                             f"first, e.g. frame.dropna(subset=[{col!r}])")


def _seconds(values: pd.Series, col: str) -> np.ndarray:
    """Times as Unix seconds (n,) float64: numbers as they are, datetimes (naive = UTC) converted."""
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values, utc=True)
        return ((stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(np.float64)
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        raise ValueError(f"{_WHERE}: column {col!r} (time) holds {values.dtype} values, not times; give Unix "
                         f"seconds as numbers or datetimes, e.g. frame[{col!r}] = pd.to_datetime(frame[{col!r}])")
    out = values.to_numpy(np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{_WHERE}: column {col!r} (time) has infinite values; every interaction needs a "
                         "finite time")
    return out


def _ratings(frame: pd.DataFrame, rating: str | None,
             threshold: float | None) -> tuple[np.ndarray | None, np.ndarray]:
    """``(rating (n,) float32 or None, keep (n,) bool)``: the rows that are watches."""
    n = len(frame)
    if rating is None:
        if threshold is not None:
            raise ValueError(f"{_WHERE}: threshold={threshold!r} needs a rating column; pass rating='...' "
                             "or leave threshold=None (every row is a watch)")
        return None, np.ones(n, bool)
    values = frame[rating]
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        raise ValueError(f"{_WHERE}: column {rating!r} (rating) holds {values.dtype} values, not numbers; "
                         "convert it, or pass rating=None")
    r = values.to_numpy(np.float64)
    if threshold is None:
        return r.astype(np.float32), np.ones(n, bool)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
        raise ValueError(f"{_WHERE}: threshold must be a number or None, got {threshold!r}")
    keep = r >= float(threshold)
    if not keep.any():
        raise ValueError(f"{_WHERE}: none of the {n:,} ratings is >= the threshold {threshold:g} (the highest "
                         f"is {r.max():g}); lower the threshold or pass threshold=None")
    return r.astype(np.float32), keep


def _codes(values: pd.Series, col: str) -> tuple[np.ndarray, np.ndarray]:
    """``(codes (n,) int64, ids (m,))``: contiguous ids in order of the sorted original ids."""
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError as err:
        raise ValueError(f"{_WHERE}: column {col!r} mixes id types that cannot be sorted ({err}); use one "
                         "type, e.g. frame[col].astype(str)") from err
    ids = np.asarray(uniques)
    return codes.astype(np.int64), ids.astype(np.int64) if np.issubdtype(ids.dtype, np.integer) else ids


def _content_key(frame: pd.DataFrame, cols: list[str], threshold: float | None) -> str:
    """12 hex digits of the interactions' values (row order included) and the threshold."""
    h = hashlib.sha256(pd.util.hash_pandas_object(frame[cols], index=False).to_numpy().tobytes())
    return cache_key({"rows": h.hexdigest(), "threshold": threshold})


def _videos(ids: np.ndarray, first_seen: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The ``videos`` table in upload order (first interaction, ties by id) and old -> new ids (m,) int64."""
    perm = np.lexsort((np.arange(ids.size), first_seen))                     # (m,) old ids, new order
    new_id = np.empty(ids.size, np.int64)
    new_id[perm] = np.arange(ids.size)
    n = ids.size
    tokens = np.empty(n, dtype=object)
    tokens[:] = [np.zeros(0, np.int32) for _ in range(n)]
    videos = pd.DataFrame({
        "video_id": np.arange(n, dtype=np.int64), "creator_id": np.arange(n, dtype=np.int32),
        "topic": np.zeros(n, np.int16), "category": np.zeros(n, np.int16), "upload_time": first_seen[perm],
        "duration": np.ones(n, np.float32), "language": np.zeros(n, np.int16),
        "quality": np.full(n, np.nan, np.float32), "clickbait": np.full(n, np.nan, np.float32),
        "series_id": np.full(n, -1, np.int32), "episode": np.full(n, -1, np.int16), "title_tokens": tokens,
        "source_id": ids[perm],
    })
    return videos, new_id


def interaction_fields(frame: pd.DataFrame, *, user: str = "user_id", item: str = "item_id",
                       time: str = "timestamp", rating: str | None = None, threshold: float | None = None,
                       name: str = "interactions") -> dict[str, Any]:
    """The fields of a ``Dataset`` (users, videos, impressions, searches, meta, truth=None) from
    ``frame``'s columns ``user``, ``item``, ``time`` (and ``rating``); see the module docstring.

    Raises TypeError for a non-DataFrame and ValueError (saying what is wrong and what to do) for a
    missing column, no rows, missing values, times that are not numbers or datetimes, a threshold
    without a rating column or one that keeps no row, and a bad ``name``.
    """
    _check_frame(frame, {"user": user, "item": item, "time": time, "rating": rating}, name)
    stamps = _seconds(frame[time], time)                                     # (n,) Unix seconds
    r, keep = _ratings(frame, rating, threshold)
    u, user_ids = _codes(frame[user], user)
    v, item_ids = _codes(frame[item], item)
    origin = day_origin(stamps)
    t = to_days(stamps, origin)                                              # (n,) days
    first_seen = np.full(item_ids.size, np.inf)
    np.minimum.at(first_seen, v, t)
    videos, new_id = _videos(item_ids, first_seen)
    v = new_id[v]
    n_keep = int(keep.sum())
    imp = impressions_table(u[keep], v[keep], t[keep], np.ones(n_keep, bool), np.ones(n_keep, np.float32),
                            extra={} if r is None else {"rating": r[keep]})
    users = anonymous_users(user_ids)
    users["activity"] = observed_activity(imp["user_id"].to_numpy(), imp["clicked"].to_numpy(), len(users))
    reasons = {"impressions": f"{name} is an interaction table: every impression is a watch, so there are "
                              "no exposed-but-not-clicked rows",
               "searches": f"{name} has no search log",
               "truth": f"{name} is real data: there is no ground truth (no oracle)",
               "demographics": f"{name} is an interaction table without user age, gender or location"}
    meta = real_meta(name, n_users=len(users), n_videos=len(videos), n_topics=1, n_categories=1, n_regions=1,
                     n_languages=1, n_tokens=0, t_end=float(np.floor(t[keep].max()) + 1.0), origin=origin,
                     has_impressions=False, has_demographics=False, skip_reasons=reasons,
                     release="interactions",
                     threshold=None if threshold is None else float(threshold), n_interactions=len(frame),
                     topic_names=["all"], category_names=["all"], region_names=["unknown"],
                     watch_time_rule="watch_time = 1 s per watch (the table has no watch time)")
    cols = [c for c in (user, item, time, rating) if c is not None]
    meta["generator_version"] = f"{ADAPTER_VERSION}-{_content_key(frame, cols, threshold)}"
    return dict(users=users, videos=videos, impressions=imp, searches=empty_searches(), meta=meta, truth=None)
