"""Building blocks that turn a real interaction log into the project's tables (``docs/data_contract.md``).

Real logs have their own ids, Unix timestamps and no sessions; the contract wants contiguous ids
from 0, times in days since the start of the log, and impressions grouped into sessions with a
position. The helpers here do that mapping, vectorised (no Python loop per event):

* :func:`reindex` -- published ids -> contiguous ids 0..n-1 (sorted by the published id);
* :func:`day_origin`, :func:`to_days` -- Unix seconds -> days since the UTC midnight before the first event;
* :func:`sessionize` -- a user's events closer than :data:`SESSION_GAP_DAYS` form one session;
  positions count events within their session;
* :func:`impressions_table`, :func:`empty_searches`, :func:`observed_activity`, :func:`real_meta`;
* :func:`check_ages` -- a users table's ages are years in :data:`AGE_RANGE` or NaN (missing).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ADAPTER_VERSION", "SESSION_GAP_DAYS", "SECONDS_PER_DAY", "AGE_RANGE", "reindex", "day_origin",
           "to_days", "in_upload_order", "sessionize", "impressions_table", "empty_searches",
           "observed_activity", "anonymous_users", "real_meta", "tokenize_titles", "check_ages"]

ADAPTER_VERSION = 1
"""Bumped whenever a real-data mapping changes (recorded as ``meta['generator_version']``)."""
SECONDS_PER_DAY = 86400.0
SESSION_GAP_DAYS = 30.0 / 1440.0
"""A gap of more than 30 minutes between two events of a user starts a new session."""
_MAX_POSITION = np.iinfo(np.int16).max
AGE_RANGE = (0.0, 120.0)
"""Plausible ages in years (inclusive). A missing age is NaN; anything else outside is an error."""


def check_ages(age: np.ndarray, user_ids: np.ndarray | None = None, source: str = "the users table") -> None:
    """Raise ValueError at the first age that is neither NaN (missing) nor a number of years in
    :data:`AGE_RANGE`.

    ``age`` (n,) float years; ``user_ids`` (n,) int64 (named in the message when given); ``source``
    names the table or file. An age of 200 or -5 would otherwise stretch the age scaling (fitted on
    the smallest and largest age) so that every real age lands in a narrow band.
    """
    a = np.asarray(age, dtype=np.float64).ravel()
    lo, hi = AGE_RANGE
    bad = ~np.isnan(a) & ~((a >= lo) & (a <= hi))                          # (n,); inf is bad too
    if not bad.any():
        return
    i = int(np.argmax(bad))
    who = f"user {int(np.asarray(user_ids).ravel()[i])} (row {i})" if user_ids is not None else f"row {i}"
    raise ValueError(f"{source}: {who} has age {a[i]:g}, outside the plausible {lo:g}..{hi:g} years "
                     f"({int(bad.sum())} such age(s)); fix the table, or give an unknown age as NaN "
                     "(missing), never as a number such as -1 or 999")


def reindex(values: np.ndarray, known: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Map published ids to contiguous ids.

    ``values`` (n,) int64 published ids; ``known`` (k,) int64 the published ids of the whole table
    (default: the unique ``values``). Returns ``(ids (n,) int64, originals (m,) int64)`` with
    ``originals[ids] == values``; ``ids`` is -1 where a value is not in ``known``.
    """
    values = np.asarray(values, dtype=np.int64)
    originals = _unique_sorted(values if known is None else np.asarray(known, dtype=np.int64))
    pos = np.searchsorted(originals, values)
    pos_c = np.minimum(pos, max(originals.size - 1, 0))
    if originals.size == 0:
        return np.full(values.size, -1, np.int64), originals
    found = (pos < originals.size) & (originals[pos_c] == values)
    return np.where(found, pos_c, -1).astype(np.int64), originals


def _unique_sorted(x: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (numpy 2.4's hash-based ``np.unique`` is slow on millions of ids)."""
    s = np.sort(x)
    return s[np.r_[True, s[1:] != s[:-1]]] if s.size else s


def _order_by_user_time(user: np.ndarray, time: np.ndarray) -> np.ndarray:
    """The permutation sorting events by (user, time, row) (n,) int64: one stable argsort of the
    times, then a plain sort of a packed (user, time rank) key -- faster than ``np.lexsort`` here."""
    n = user.size
    by_time = np.argsort(time, kind="stable")                             # (n,) rows by time, then row
    rank = np.empty(n, np.int64)
    rank[by_time] = np.arange(n)
    key = np.sort(user.astype(np.int64) * n + rank)                       # (n,) by user, then time rank
    return by_time[key % n]


def in_upload_order(videos: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Renumber videos in upload order (ties by ``source_id``), as the simulator numbers them.

    ``videos`` (V rows) with ``video_id`` = row, ``upload_time`` and ``source_id``. Returns the
    reordered table (``video_id`` = new row) and ``new_id`` (V,) int64 mapping old ids to new ones.
    """
    perm = np.lexsort((videos["source_id"].to_numpy(), videos["upload_time"].to_numpy()))  # (V,) old ids
    new_id = np.empty(perm.size, np.int64)
    new_id[perm] = np.arange(perm.size)
    out = videos.iloc[perm].reset_index(drop=True)
    out["video_id"] = np.arange(perm.size, dtype=np.int64)
    return out, new_id


def day_origin(unix_seconds: np.ndarray) -> float:
    """The UTC midnight at or before the earliest timestamp, in Unix seconds (0.0 for no events)."""
    if len(unix_seconds) == 0:
        return 0.0
    return float(np.floor(np.min(unix_seconds) / SECONDS_PER_DAY) * SECONDS_PER_DAY)


def to_days(unix_seconds: np.ndarray, origin: float) -> np.ndarray:
    """Unix seconds (n,) -> days since ``origin`` (n,) float64."""
    return (np.asarray(unix_seconds, dtype=np.float64) - origin) / SECONDS_PER_DAY


def sessionize(user: np.ndarray, time: np.ndarray, gap: float = SESSION_GAP_DAYS
               ) -> tuple[np.ndarray, np.ndarray]:
    """Group each user's events into sessions and number the events within them.

    ``user`` (n,) int64 (non-negative), ``time`` (n,) float64 days; equal times keep the row order.
    A user's events more than ``gap`` days apart are in different
    sessions. Returns ``(session_id (n,) int64, position (n,) int16)``: session ids are contiguous
    from 0 in order of session start (ties by user id); positions count from 0 within a session
    (capped at 32767).
    """
    n = len(user)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int16)
    idx = _order_by_user_time(np.asarray(user, np.int64), np.asarray(time, np.float64))
    u, t = user[idx], time[idx]
    new = np.ones(n, bool)
    new[1:] = (u[1:] != u[:-1]) | (t[1:] - t[:-1] > gap)
    local = np.cumsum(new) - 1                                            # (n,) session rank in idx order
    starts = np.flatnonzero(new)                                          # (S,) first event of each session
    pos = np.arange(n) - starts[local]
    rank = np.empty(starts.size, np.int64)
    rank[np.lexsort((u[starts], t[starts]))] = np.arange(starts.size)     # by start time, then user
    session = np.empty(n, np.int64)
    position = np.empty(n, np.int16)
    session[idx] = rank[local]
    position[idx] = np.minimum(pos, _MAX_POSITION)
    return session, position


def impressions_table(user: np.ndarray, video: np.ndarray, time: np.ndarray, clicked: np.ndarray,
                      watch_time: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """The contract's ``impressions`` table from events (n,) each, sessionized, sorted by
    (time, session_id, position); ``source`` is ``"home"`` for every row (real logs here are feeds).

    ``watch_time`` (n,) seconds is set to 0 where ``clicked`` is False; ``extra`` columns are appended.
    """
    user = np.asarray(user, np.int64)
    time = np.asarray(time, np.float64)
    clicked = np.asarray(clicked, bool)
    session, position = sessionize(user, time)
    df = pd.DataFrame({
        "user_id": user, "video_id": np.asarray(video, np.int64), "time": time, "session_id": session,
        "position": position,
        "source": pd.Categorical.from_codes(np.zeros(len(user), np.int8), categories=["home", "search"]),
        "clicked": clicked,
        "watch_time": np.where(clicked, np.asarray(watch_time, np.float32), 0).astype(np.float32),
    })
    for name, col in (extra or {}).items():
        df[name] = col
    return df.sort_values(["time", "session_id", "position"], kind="stable").reset_index(drop=True)


def empty_searches() -> pd.DataFrame:
    """A ``searches`` table with the contract's columns and no rows (for datasets without searches)."""
    return pd.DataFrame({"user_id": np.zeros(0, np.int64), "time": np.zeros(0, np.float64),
                         "session_id": np.zeros(0, np.int64), "tokens": np.empty(0, dtype=object)})


def observed_activity(user: np.ndarray, clicked: np.ndarray, n_users: int) -> np.ndarray:
    """Each user's number of watches over the mean number: (n_users,) float32, mean 1 (0 without watches).

    Real logs do not publish the simulator's latent activity level; this observed stand-in covers the
    whole log, so it must not be used as a model input (it would leak the future).
    """
    counts = np.bincount(np.asarray(user)[np.asarray(clicked, bool)], minlength=n_users).astype(np.float64)
    mean = counts.mean() if n_users else 0.0
    return (counts / mean if mean > 0 else counts).astype(np.float32)


def anonymous_users(source_ids: np.ndarray) -> pd.DataFrame:
    """The ``users`` table of a log without demographics: one row per published id (n,) (``source_id``),
    age NaN, gender -1, region 0, language 0, activity 0 (set it with :func:`observed_activity`)."""
    n = len(source_ids)
    return pd.DataFrame({
        "user_id": np.arange(n, dtype=np.int64), "region": np.zeros(n, np.int16),
        "age": np.full(n, np.nan, np.float32), "gender": np.full(n, -1, np.int8),
        "language": np.zeros(n, np.int16), "activity": np.zeros(n, np.float32), "source_id": source_ids,
    })


def tokenize_titles(titles: list[str]) -> tuple[np.ndarray, int]:
    """Lower-cased word tokens of each title -> (object array of (k,) int32 token ids, vocabulary size).

    Token ids follow the sorted vocabulary, so they do not depend on the order of the titles.
    """
    found = pd.Series(list(titles), dtype="str").str.lower().str.findall(r"[^\W_]+").tolist()
    words = [w if isinstance(w, list) else [] for w in found]
    vocab = np.array(sorted({w for ws in words for w in ws}), dtype=object)
    lookup = {w: i for i, w in enumerate(vocab)}
    out = np.empty(len(words), dtype=object)
    out[:] = [np.array([lookup[w] for w in ws], dtype=np.int32) for ws in words]
    return out, int(vocab.size)


def real_meta(name: str, *, n_users: int, n_videos: int, n_topics: int, n_categories: int,
              n_regions: int, n_languages: int, n_tokens: int, t_end: float, origin: float,
              has_impressions: bool, has_demographics: bool, skip_reasons: dict[str, str],
              **extra: Any) -> dict[str, Any]:
    """The ``meta`` dict of a real dataset: the contract's keys plus ``source="real"``, ``t0_unix``
    (the Unix time of day 0), ``has_demographics`` and ``skip_reasons`` (why each missing table is
    missing)."""
    return dict(name=name, seed=0, style="real", source="real", n_users=int(n_users), n_videos=int(n_videos),
                n_topics=int(n_topics), n_categories=int(n_categories), n_regions=int(n_regions),
                n_languages=int(n_languages), n_tokens=int(n_tokens), t_end=float(t_end),
                t0_unix=float(origin), generator_version=ADAPTER_VERSION,
                has_impressions=bool(has_impressions),
                has_searches=False, has_truth=False, has_demographics=bool(has_demographics),
                skip_reasons=dict(skip_reasons), **extra)
