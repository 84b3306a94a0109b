"""Baseline recommenders every later notebook compares against: most popular, item-kNN, the oracle.

All share one interface::

    rec = MostPopular().fit(watches, n_videos=V, cutoff=split.train_cutoff)
    ids = rec.recommend(user_ids, k=100, times=query_times)          # (n, k) int64, best first

``watches`` is a watch log: the ``watches()`` DataFrame of the data contract (columns ``user_id``,
``video_id``, ``time``), a mapping with those keys, or a tuple ``(user_id, video_id, time)`` of
arrays. ``fit_dataset(ds, cutoff=...)`` does the same from a ``Dataset``.

No baseline looks into the future of a query:

* ``cutoff`` given to ``fit`` drops every watch at or after it (the model is fitted only on the past);
* a query ``(user, time)`` uses only the fitted watches strictly before ``time`` (the popularity
  counts and the user's history); ``times=None`` means "at the cutoff" (or just after the last
  fitted watch when there is no cutoff).

``recommend(user_ids, k, histories=None, times=None, exclude_watched=True)`` -> (n, k) int64:
``histories`` optionally gives each query's watch history (a list of n id arrays, oldest first, or
the ``History`` of ``splits.history``) instead of reading it from the fitted log; with
``exclude_watched`` the history's items are never recommended. A row that runs out of items ends
in -1 padding (see :func:`ytrec_lib.metrics.top_k`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ytrec_lib.metrics import recall_at_k, top_k
from ytrec_lib.progress import tqdm

__all__ = [
    "EASE",
    "Baseline",
    "ItemKNN",
    "MostPopular",
    "ORACLE_MOMENTS",
    "Oracle",
    "RP3beta",
    "Tuned",
    "Truth",
    "as_watch_log",
    "cooccurrence_similarity",
    "ease_weights",
    "oracle_rankings",
    "rp3beta_similarity",
    "tune",
]

WatchLog = pd.DataFrame | Mapping[str, Any] | tuple[Any, Any, Any]
_BLOCK_CELLS = 1 << 22  # scores per block: (rows x videos) about 32 MiB of float64


class Truth(Protocol):
    """The part of the simulator's ground truth the oracle needs (see docs/data_contract.md)."""

    def next_watch_probs(self, user_ids: np.ndarray, times: np.ndarray) -> np.ndarray:
        """(n,) int64 users, (n,) float64 times -> (n, n_videos) float32, rows summing to 1."""
        ...


# ----------------------------------------------------------------------------------------------
# Watch logs and histories
# ----------------------------------------------------------------------------------------------


def as_watch_log(watches: WatchLog, cutoff: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A watch log as arrays (user_id (m,) int64, video_id (m,) int64, time (m,) float64).

    Accepts a DataFrame or mapping with ``user_id``, ``video_id``, ``time``, or a 3-tuple of arrays.
    With ``cutoff``, only the watches with ``time < cutoff`` are kept.
    """
    if isinstance(watches, (pd.DataFrame, Mapping)):
        missing = [c for c in ("user_id", "video_id", "time") if c not in watches]
        if missing:
            raise KeyError(f"the watch log lacks column(s) {missing}; it needs user_id, video_id and time")
        cols = [np.asarray(watches[c]) for c in ("user_id", "video_id", "time")]
    elif isinstance(watches, tuple) and len(watches) == 3:
        cols = [np.asarray(c) for c in watches]
    else:
        raise ValueError(
            "watches must be a DataFrame/mapping with user_id, video_id, time or a (user_id, video_id, "
            f"time) tuple, got {type(watches).__name__}"
        )
    user, video, time = cols
    if not (user.ndim == video.ndim == time.ndim == 1) or not (user.size == video.size == time.size):
        raise ValueError(
            f"user_id, video_id and time must be 1-D and of equal length, got {user.shape}, "
            f"{video.shape}, {time.shape}"
        )
    for name, arr in (("user_id", user), ("video_id", video)):
        if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0):
            raise ValueError(f"{name} must hold integer ids >= 0")
    time = time.astype(np.float64)
    if not np.all(np.isfinite(time)):
        raise ValueError("the watch log's time column holds NaN or infinite values")
    user, video = user.astype(np.int64), video.astype(np.int64)
    if cutoff is not None:
        keep = time < cutoff
        user, video, time = user[keep], video[keep], time[keep]
    return user, video, time


@dataclass(frozen=True)
class _Ragged:
    """Row ``j`` holds ``values[starts[j]:ends[j]]`` (rows may share or skip values)."""

    starts: np.ndarray  # (n,) int64
    ends: np.ndarray  # (n,) int64
    values: np.ndarray  # (m,) int64

    @classmethod
    def from_histories(cls, histories: Any, n: int) -> _Ragged:
        """From a list of n id arrays, or a ``splits.History`` (``watch_offsets``, ``watch_ids``)."""
        if hasattr(histories, "watch_offsets") and hasattr(histories, "watch_ids"):
            offsets = np.asarray(histories.watch_offsets, dtype=np.int64)
            if offsets.size != n + 1:
                raise ValueError(f"histories holds {offsets.size - 1} rows for {n} queries; they must match")
            return cls(offsets[:-1], offsets[1:], np.asarray(histories.watch_ids, dtype=np.int64))
        return cls.from_list(histories, n)

    @classmethod
    def from_list(cls, arrays: Sequence[np.ndarray], n: int) -> _Ragged:
        if len(arrays) != n:
            raise ValueError(f"histories has {len(arrays)} entries for {n} queries; they must match")
        arrays = [np.asarray(a) for a in arrays]
        if any(a.ndim != 1 for a in arrays):
            raise ValueError("each history must be a 1-D array of video ids (oldest first)")
        lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=n)
        values = np.concatenate(arrays) if lengths.sum() else np.zeros(0, np.int64)
        if values.size and (not np.issubdtype(values.dtype, np.integer) or values.min() < 0):
            raise ValueError("histories must hold integer video ids >= 0")
        ends = np.cumsum(lengths)
        return cls(ends - lengths, ends, values.astype(np.int64))

    def take(self, idx: np.ndarray | slice) -> _Ragged:
        return _Ragged(self.starts[idx], self.ends[idx], self.values)

    def tail(self, n_last: int | None) -> _Ragged:
        """The last ``n_last`` values of every row (all of them when ``n_last`` is None)."""
        if n_last is None:
            return self
        return _Ragged(np.maximum(self.starts, self.ends - n_last), self.ends, self.values)

    def coo(self) -> tuple[np.ndarray, np.ndarray]:
        """(row (m,), value (m,)) of every stored value, rows in order."""
        lengths = self.ends - self.starts
        rows = np.repeat(np.arange(lengths.size), lengths)
        offsets = np.cumsum(lengths) - lengths
        pos = np.repeat(self.starts - offsets, lengths) + np.arange(int(lengths.sum()))
        return rows, self.values[pos]

    def csr(self, n_cols: int, binary: bool = True) -> sp.csr_matrix:
        """(n, n_cols) sparse matrix of the rows; repeats merged (1 if ``binary`` else a count)."""
        rows, vals = self.coo()
        if vals.size and vals.max() >= n_cols:
            raise ValueError(f"a history holds video id {int(vals.max())} >= n_videos={n_cols}")
        mat = sp.csr_matrix((np.ones(rows.size), (rows, vals)), shape=(self.starts.size, n_cols))
        mat.sum_duplicates()
        if binary:
            mat.data[:] = 1.0
        return mat


class _WatchIndex:
    """A watch log sorted by (user, time): each user's watches before any time, in O(log m)."""

    def __init__(self, user: np.ndarray, video: np.ndarray, time: np.ndarray) -> None:
        order = np.lexsort((time, user))
        self.user, self.video, self.time = user[order], video[order], time[order]
        self._utimes = np.unique(self.time)  # (T,) distinct watch times
        self._span = self._utimes.size + 1
        rank = np.searchsorted(self._utimes, self.time)  # (m,) dense time rank
        self._key = self.user * self._span + rank  # (m,) int64, sorted

    def before(self, user_ids: np.ndarray, times: np.ndarray) -> _Ragged:
        """Each query's watches with time < its time, oldest first. (n,) users, (n,) times."""
        qrank = np.searchsorted(self._utimes, times, "left")  # distinct watch times < t
        start = np.searchsorted(self._key, user_ids * self._span, "left")
        end = np.searchsorted(self._key, user_ids * self._span + qrank, "left")
        return _Ragged(start, end, self.video)


def _check_users(user_ids: Any) -> np.ndarray:
    users = np.asarray(user_ids)
    if users.ndim != 1 or users.size == 0:
        raise ValueError(f"user_ids must be a non-empty 1-D array, got shape {users.shape}")
    if not np.issubdtype(users.dtype, np.integer) or users.min() < 0:
        raise ValueError("user_ids must be integer ids >= 0")
    return users.astype(np.int64)


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_shrink(shrink: Any) -> None:
    if isinstance(shrink, bool) or not isinstance(shrink, (int, float, np.integer, np.floating)) \
            or not (np.isfinite(shrink) and shrink >= 0):
        raise ValueError(f"shrink must be a finite number >= 0 (0: the plain cosine), got {shrink!r}")


def _check_times(times: Any, n: int) -> np.ndarray:
    t = np.asarray(times, dtype=np.float64)
    if t.ndim == 0:
        t = np.full(n, float(t))
    if t.shape != (n,):
        raise ValueError(f"times must have shape ({n},) like user_ids, got {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("times hold NaN or infinite values")
    return t


# ----------------------------------------------------------------------------------------------
# The shared interface
# ----------------------------------------------------------------------------------------------


class Baseline:
    """Shared ``fit`` bookkeeping and the batched ``recommend`` of every baseline."""

    uses_history = False  # whether the scores read the query's history (item-kNN does)

    def __init__(self) -> None:
        self.n_videos: int | None = None
        self.cutoff: float | None = None
        self._index: _WatchIndex | None = None
        self._t_ref: float | None = None

    # -- fitting ----------------------------------------------------------------------------
    def _fit_log(
        self, watches: WatchLog | None, n_videos: int | None, cutoff: float | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Store the log (before ``cutoff``) for history look-ups; return its arrays."""
        if cutoff is not None and not np.isfinite(cutoff):
            raise ValueError(f"cutoff must be a finite time in days, got {cutoff}")
        if watches is None:
            user = video = np.zeros(0, np.int64)
            time = np.zeros(0)
        else:
            user, video, time = as_watch_log(watches, cutoff)
        if n_videos is None:
            if video.size == 0:
                raise ValueError("pass n_videos: it cannot be inferred from an empty watch log")
            n_videos = int(video.max()) + 1
        _check_positive_int(n_videos, "n_videos")
        if video.size and video.max() >= n_videos:
            raise ValueError(f"the watch log holds video id {int(video.max())} >= n_videos={n_videos}")
        self.n_videos, self.cutoff = int(n_videos), cutoff
        self._index = _WatchIndex(user, video, time) if watches is not None else None
        if cutoff is not None:
            self._t_ref = float(cutoff)
        elif time.size:
            self._t_ref = float(np.nextafter(time.max(), np.inf))
        else:
            self._t_ref = None
        return user, video, time

    def fit_dataset(self, ds: Any, cutoff: float | None = None) -> Baseline:
        """Fit on ``ds.watches()`` (a ``Dataset`` of the data contract) before ``cutoff``."""
        return self.fit(ds.watches(), n_videos=int(ds.meta["n_videos"]), cutoff=cutoff)

    def fit(self, watches: WatchLog, *, n_videos: int | None = None, cutoff: float | None = None) -> Baseline:
        """Fit on a watch log, keeping only watches before ``cutoff``. Returns ``self``."""
        self._fit_log(watches, n_videos, cutoff)
        return self

    @classmethod
    def fit_order(cls, params: Mapping[str, Any]) -> tuple:
        """The sort key of grid point ``params`` in :func:`tune`'s fitting order (default: grid order)."""
        return ()

    def variant(self, **params: Any) -> Baseline | None:
        """This fitted model with the knobs ``params`` without refitting, where the model can (see
        :meth:`ItemKNN.variant`); None: fit ``type(self)(**params)`` instead."""
        return None

    def _require_fitted(self) -> None:
        if self.n_videos is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call .fit(...) before .recommend(...)")

    # -- scoring ----------------------------------------------------------------------------
    def _score_batch(self, users: np.ndarray, times: np.ndarray, hist: _Ragged | None) -> np.ndarray:
        """Scores of one block of queries: (b,) users, (b,) times -> (b, n_videos) float64."""
        raise NotImplementedError

    def _iter_scores(
        self, users: np.ndarray, times: np.ndarray, hist: _Ragged | None, batch_size: int
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield (row slice, (b, n_videos) scores) over the queries (sorted by time) in blocks."""
        for start in range(0, users.size, batch_size):
            sl = slice(start, min(start + batch_size, users.size))
            yield sl, self._score_batch(users[sl], times[sl], None if hist is None else hist.take(sl))

    def _history(self, users: np.ndarray, times: np.ndarray, histories: Sequence | None) -> _Ragged:
        if histories is not None:
            return _Ragged.from_histories(histories, users.size)
        if self._index is None:
            raise ValueError(
                f"{type(self).__name__} has no watch log to read histories from: pass histories=, "
                "fit it with a watch log, or use exclude_watched=False"
            )
        return self._index.before(users, times)

    def recommend(
        self,
        user_ids: np.ndarray,
        k: int,
        histories: Sequence[np.ndarray] | Any | None = None,
        times: np.ndarray | float | None = None,
        exclude_watched: bool = True,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Top-``k`` video ids for each query ``(user_ids[i], times[i])``, best first.

        user_ids (n,) int; times (n,) float days or a scalar (``None``: the fit cutoff);
        histories: optional list of n id arrays (oldest first), or the ``History`` returned by
        ``splits.history``, replacing the fitted log's history (for exclusion and item-kNN).
        Returns (n, k) int64; rows end in -1 padding when fewer than ``k`` videos remain.
        """
        self._require_fitted()
        users = _check_users(user_ids)
        n = users.size
        _check_positive_int(k, "k")
        if k > self.n_videos:
            raise ValueError(f"k={k} is larger than the catalogue of {self.n_videos} videos; lower k")
        if times is None:
            if self._t_ref is None:
                raise ValueError(f"{type(self).__name__} needs query times: pass times= (days)")
            times = self._t_ref
        t = _check_times(times, n)
        hist = self._history(users, t, histories) if (exclude_watched or self.uses_history) else None
        if batch_size is None:
            batch_size = max(1, _BLOCK_CELLS // self.n_videos)
        _check_positive_int(batch_size, "batch_size")
        order = np.argsort(t, kind="stable")  # (n,) queries in time order
        hist_sorted = None if hist is None else hist.take(order)
        out = np.empty((n, k), dtype=np.int64)
        n_blocks = -(-n // batch_size)
        blocks = self._iter_scores(users[order], t[order], hist_sorted, batch_size)
        for sl, scores in tqdm(blocks, total=n_blocks, disable=n_blocks < 50, desc=type(self).__name__):
            exclude = hist_sorted.take(sl).csr(self.n_videos) if exclude_watched else None
            out[order[sl]] = top_k(scores, k, exclude=exclude)
        return out


# ----------------------------------------------------------------------------------------------
# Most popular (global or by region), optionally over a trailing window
# ----------------------------------------------------------------------------------------------


class _WindowedCounts:
    """Per-group video counts of the events with ``time < t`` and ``time + window >= t``.

    Queries must come in time order; the running counts sweep forward, so answering n queries
    costs O(events + blocks x groups x n_videos) in all.
    """

    def __init__(
        self,
        time: np.ndarray,
        video: np.ndarray,
        group: np.ndarray,
        n_groups: int,
        n_videos: int,
        window: float,
    ) -> None:
        order = np.argsort(time, kind="stable")
        self.time, self.video, self.group = time[order], video[order], group[order]
        self.expire = self.time + window  # (m,) the event counts at t while t <= expire; sorted
        self.counts = np.zeros((n_groups, n_videos), dtype=np.float64)
        self._added = self._dropped = 0
        self._last_t = -np.inf

    def _advance(self, t: float) -> None:
        """Move the running counts to time ``t`` (never backwards)."""
        if t < self._last_t:
            raise RuntimeError("internal error: popularity queries must come in time order")
        added = int(np.searchsorted(self.time, t, "left"))
        dropped = int(np.searchsorted(self.expire, t, "left"))
        sl_a, sl_d = slice(self._added, added), slice(self._dropped, dropped)
        np.add.at(self.counts, (self.group[sl_a], self.video[sl_a]), 1.0)
        np.add.at(self.counts, (self.group[sl_d], self.video[sl_d]), -1.0)
        self._added, self._dropped, self._last_t = added, dropped, t

    def at(self, times: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Counts for queries sorted by time: (b,) times, (b,) groups -> (b, n_videos) float64."""
        self._advance(float(times[0]))
        out = self.counts[groups]  # (b, V) counts at the block's first time
        t_last = float(times[-1])
        add = slice(self._added, int(np.searchsorted(self.time, t_last, "left")))
        drop = slice(self._dropped, int(np.searchsorted(self.expire, t_last, "left")))
        if add.start == add.stop and drop.start == drop.stop:
            return out
        for g in np.unique(groups):  # events inside the block reach later queries of their group
            rows = np.flatnonzero(groups == g)  # (b_g,) in time order
            delta = np.zeros((rows.size + 1, self.counts.shape[1]))  # (b_g + 1, V)
            for sl, sign, when in ((add, 1.0, self.time), (drop, -1.0, self.expire)):
                mine = self.group[sl] == g
                first_row = np.searchsorted(times[rows], when[sl][mine], "right")  # first row after event
                np.add.at(delta, (first_row, self.video[sl][mine]), sign)
            out[rows] += np.cumsum(delta[:-1], axis=0)
        return out


class MostPopular(Baseline):
    """Recommend the most-watched videos, globally or within the user's region.

    Scores are watch counts over the fitted log before each query time (only the last ``window``
    days with ``window``, a "trending" variant suited to a UGC catalogue that keeps renewing). With
    a fit ``cutoff``, a later query sees the counts at the cutoff (its window ends there).
    ``by_region=True`` counts only the watches of users from the query user's region, with the
    global count as tie-break (so a region with little data falls back to global popularity).
    """

    def __init__(self, by_region: bool = False, window: float | None = None) -> None:
        super().__init__()
        if window is not None and not (np.isfinite(window) and window > 0):
            raise ValueError(f"window must be a positive number of days or None, got {window}")
        self.by_region, self.window = by_region, window
        self.user_region: np.ndarray | None = None
        self._log: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def fit(
        self,
        watches: WatchLog,
        *,
        n_videos: int | None = None,
        cutoff: float | None = None,
        user_region: np.ndarray | None = None,
    ) -> MostPopular:
        """Fit on a watch log before ``cutoff``; ``user_region`` (n_users,) int is needed with by_region."""
        self._log = self._fit_log(watches, n_videos, cutoff)
        if self.by_region:
            if user_region is None:
                raise ValueError("MostPopular(by_region=True) needs fit(..., user_region=<region per user>)")
            region = np.asarray(user_region)
            if region.ndim != 1 or not np.issubdtype(region.dtype, np.integer) or region.min() < 0:
                raise ValueError("user_region must be a 1-D array of integer regions >= 0 indexed by user id")
            if self._log[0].size and self._log[0].max() >= region.size:
                raise ValueError(f"user_region covers {region.size} users but the log has user ids beyond it")
            self.user_region = region.astype(np.int64)
        return self

    def fit_dataset(self, ds: Any, cutoff: float | None = None) -> MostPopular:
        """Fit on ``ds.watches()`` before ``cutoff``, regions from ``ds.users``."""
        region = None
        if self.by_region:
            users = ds.users
            region = np.zeros(int(users["user_id"].max()) + 1, dtype=np.int64)
            region[users["user_id"].to_numpy()] = users["region"].to_numpy()
        return self.fit(ds.watches(), n_videos=int(ds.meta["n_videos"]), cutoff=cutoff, user_region=region)

    def _regions(self, users: np.ndarray) -> np.ndarray:
        if users.max() >= self.user_region.size:
            raise ValueError(
                f"user id {int(users.max())} has no region (user_region covers {self.user_region.size} users)"
            )
        return self.user_region[users]

    def _iter_scores(
        self, users: np.ndarray, times: np.ndarray, hist: _Ragged | None, batch_size: int
    ) -> Iterator[tuple[slice, np.ndarray]]:
        user, video, time = self._log
        window = np.inf if self.window is None else float(self.window)
        glob = _WindowedCounts(time, video, np.zeros_like(video), 1, self.n_videos, window)
        if self.by_region:
            n_regions = int(self.user_region.max()) + 1
            reg = _WindowedCounts(time, video, self.user_region[user], n_regions, self.n_videos, window)
            regions = self._regions(users)
        if self.cutoff is not None:  # nothing after the cutoff was fitted: count up to it
            times = np.minimum(times, self.cutoff)
        zeros = np.zeros(users.size, dtype=np.int64)
        for start in range(0, users.size, batch_size):
            sl = slice(start, min(start + batch_size, users.size))
            counts = glob.at(times[sl], zeros[sl])  # (b, V)
            if self.by_region:
                # region count first; the global share (< 1) only breaks its ties
                counts = reg.at(times[sl], regions[sl]) + counts / (counts.sum(axis=1, keepdims=True) + 1.0)
            yield sl, counts


# ----------------------------------------------------------------------------------------------
# Item-kNN over co-occurrence in users' histories
# ----------------------------------------------------------------------------------------------


def _prune_rows(mat: sp.csr_matrix, n_keep: int) -> sp.csr_matrix:
    """Keep the ``n_keep`` largest entries of every row (ties to the lower column). CSR -> CSR.

    Pruning a pruned matrix again to fewer entries gives what pruning the original would (the order,
    value then column, is total), which lets :meth:`ItemKNN.variant` narrow a fitted neighbourhood.
    """
    mat = mat.tocsr()
    mat.sort_indices()  # (row, column) order, so the stable sort below breaks ties by the lower column
    rows = np.repeat(np.arange(mat.shape[0]), np.diff(mat.indptr))  # (nnz,)
    order = np.lexsort((-mat.data, rows))  # (nnz,) by row, then value descending
    depth = np.arange(rows.size) - mat.indptr[rows]  # rows are unchanged by the sort
    keep = np.sort(order[depth < n_keep])  # (kept,) back in (row, column) order
    indptr = np.concatenate([[0], np.cumsum(np.minimum(np.diff(mat.indptr), n_keep))])  # (n_rows + 1,)
    return sp.csr_matrix((mat.data[keep], mat.indices[keep], indptr), shape=mat.shape)


def _blocks_by_cost(cost: np.ndarray, budget: float) -> list[tuple[int, int]]:
    """Split 0..len(cost) into consecutive (start, stop) blocks whose summed cost stays near ``budget``."""
    bounds = np.searchsorted(np.cumsum(cost), np.arange(1, int(cost.sum() // budget) + 1) * budget)
    edges = np.unique(np.concatenate([[0], bounds + 1, [cost.size]]).clip(0, cost.size))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def cooccurrence_similarity(
    user: np.ndarray, video: np.ndarray, n_videos: int, n_neighbors: int = 200, budget: float = 2e7,
    shrink: float = 0.0,
) -> sp.csr_matrix:
    """Shrunk cosine of videos' co-occurrence in users' histories, top ``n_neighbors`` per row.

    ``sim(i, j) = |U_i & U_j| / (sqrt(|U_i| |U_j|) + shrink)`` with ``U_i`` the users who watched ``i``
    (a binary user x video matrix ``X``, so ``X^T X`` normalised), diagonal removed. ``shrink`` >= 0
    pulls the similarity of pairs seen by few users towards 0 (shrink 0: the plain cosine); it is
    computed as the cosine times ``r / (r + shrink)``, ``r = sqrt(|U_i| |U_j|)``, a factor of exactly 1
    at shrink 0. (m,) users, (m,) videos -> (n_videos, n_videos) float64 CSR, row ``i`` holding
    ``i``'s neighbours. Computed in blocks of videos of about ``budget`` co-occurrence pairs each.
    """
    _check_shrink(shrink)
    n_users = int(user.max()) + 1 if user.size else 1
    x = sp.csr_matrix((np.ones(user.size), (user, video)), shape=(n_users, n_videos))
    x.sum_duplicates()
    x.data[:] = 1.0
    xt = x.T.tocsr()  # (V, U)
    n_watchers = np.asarray(x.sum(axis=0)).ravel()  # (V,) |U_i|
    root = np.sqrt(n_watchers)  # (V,)
    inv = np.divide(1.0, root, out=np.zeros(n_videos), where=n_watchers > 0)
    cost = xt @ np.diff(x.indptr).astype(np.float64)  # (V,) pairs each video's row will produce
    parts = []
    blocks = _blocks_by_cost(cost + 1.0, budget)
    for start, stop in tqdm(blocks, disable=cost.sum() < 5e7, desc="item-kNN similarity"):
        co = (xt[start:stop] @ x).tocoo()  # (b, V) co-occurrence counts
        keep = co.row + start != co.col  # drop the diagonal
        row, col = co.row[keep] + start, co.col[keep]  # (nnz,) video ids of each pair
        data = co.data[keep] * inv[row] * inv[col]  # (nnz,) cosine
        if shrink:
            r = root[row] * root[col]  # (nnz,) > 0: both videos have watchers
            data *= r / (r + shrink)
        sim = sp.csr_matrix((data, (row - start, col)), shape=(stop - start, n_videos))
        parts.append(_prune_rows(sim, n_neighbors))
    return sp.vstack(parts, format="csr")


class ItemKNN(Baseline):
    """Item co-occurrence kNN: score(v) = sum over the user's recent watches w of sim(w, v).

    ``sim`` is :func:`cooccurrence_similarity` (cosine shrunk by ``shrink``) fitted on the log before
    the cutoff; the recent watches are the last ``n_recent`` watches of the query's history before its
    time (a video watched twice among them counts once; ``None`` uses the whole history).
    Videos with no similarity to the history rank below every video with some, by popularity.
    """

    uses_history = True

    def __init__(self, n_neighbors: int = 200, n_recent: int | None = 20, shrink: float = 0.0) -> None:
        super().__init__()
        _check_positive_int(n_neighbors, "n_neighbors")
        if n_recent is not None:
            _check_positive_int(n_recent, "n_recent")
        _check_shrink(shrink)
        self.n_neighbors, self.n_recent, self.shrink = n_neighbors, n_recent, float(shrink)
        self.similarity: sp.csr_matrix | None = None
        self.popularity: np.ndarray | None = None

    def fit(self, watches: WatchLog, *, n_videos: int | None = None, cutoff: float | None = None) -> ItemKNN:
        """Fit the similarity on the watches before ``cutoff``. Returns ``self``."""
        user, video, _ = self._fit_log(watches, n_videos, cutoff)
        self.similarity = self._similarity(user, video)
        pop = np.bincount(video, minlength=self.n_videos).astype(np.float64)
        self.popularity = pop / (pop.max() + 1.0) if pop.size else pop  # (V,) in [0, 1)
        return self

    def _similarity(self, user: np.ndarray, video: np.ndarray) -> sp.csr_matrix:
        """(V, V) item-item weights from the fitted (m,) users and (m,) videos."""
        return cooccurrence_similarity(user, video, self.n_videos, self.n_neighbors, shrink=self.shrink)

    def _similarity_knobs(self) -> tuple:
        """The knobs the similarity depends on, besides the neighbourhood size."""
        return (self.shrink,)

    @classmethod
    def fit_order(cls, params: Mapping[str, Any]) -> tuple:
        """:func:`tune` visits the grid points in this order: each similarity's widest neighbourhood first,
        so that the narrower ones (and the other ``n_recent``) are derived from it by :meth:`variant`."""
        model = cls(**params)
        return (*model._similarity_knobs(), -model.n_neighbors)

    def variant(self, **params: Any) -> ItemKNN | None:
        """This fitted model with the knobs ``params``, without refitting: the same result as
        ``type(self)(**params).fit(...)`` on the same log when the similarity's other knobs are the same
        and ``n_neighbors`` is at most this model's (its rows pruned further); None otherwise."""
        wanted = type(self)(**params)  # checks the values
        if (self.similarity is None or wanted._similarity_knobs() != self._similarity_knobs()
                or wanted.n_neighbors > self.n_neighbors):
            return None
        out = copy.copy(self)  # shares the fitted log, popularity and (same size) similarity
        out.n_neighbors, out.n_recent = wanted.n_neighbors, wanted.n_recent
        if wanted.n_neighbors < self.n_neighbors:
            out.similarity = _prune_rows(self.similarity, wanted.n_neighbors)
        return out

    def _score_batch(self, users: np.ndarray, times: np.ndarray, hist: _Ragged | None) -> np.ndarray:
        recent = hist.tail(self.n_recent).csr(self.n_videos)  # (b, V) binary
        sim = (recent @ self.similarity).toarray()  # (b, V) summed similarities
        return np.where(sim > 0, sim, self.popularity[None, :] - 1.0)


# ----------------------------------------------------------------------------------------------
# RP3beta (Paudel et al. 2017) and EASE (Steck 2019)
# ----------------------------------------------------------------------------------------------


def _binary_matrix(user: np.ndarray, video: np.ndarray, n_videos: int) -> sp.csr_matrix:
    """(n_users, n_videos) float64 CSR with 1 where the user watched the video (repeats merged)."""
    n_users = int(user.max()) + 1 if user.size else 1
    x = sp.csr_matrix((np.ones(user.size), (user, video)), shape=(n_users, n_videos))
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


def _row_normalised(x: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """Rows of ``x`` divided by their sums (transition probabilities), then raised to ``alpha``."""
    deg = np.asarray(x.sum(axis=1)).ravel()
    p = sp.diags(np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)) @ x
    p = p.tocsr()
    p.data **= alpha
    return p


def rp3beta_similarity(user: np.ndarray, video: np.ndarray, n_videos: int, alpha: float = 1.0,
                       beta: float = 0.5, n_neighbors: int = 200, budget: float = 2e7) -> sp.csr_matrix:
    """RP3beta item-item weights: 3-step random walk item -> user -> item, popularity-penalised.

    With ``X`` the binary (users, videos) matrix, ``P_ui = (X / deg_u)^alpha`` and
    ``P_iu = (X^T / deg_i)^alpha`` (elementwise powers), ``W = P_iu P_ui`` with column ``j`` divided
    by ``deg_j^beta``, diagonal removed, the top ``n_neighbors`` of each row kept.
    (m,) users, (m,) videos -> (n_videos, n_videos) float64 CSR. Computed in blocks of rows.
    """
    x = _binary_matrix(user, video, n_videos)
    pui, piu = _row_normalised(x, alpha), _row_normalised(x.T.tocsr(), alpha)  # (U, V), (V, U)
    deg = np.asarray(x.sum(axis=0)).ravel()  # (V,)
    penalty = np.power(deg, -beta, out=np.zeros(n_videos), where=deg > 0)
    cost = (x.T.tocsr() @ np.diff(x.indptr).astype(np.float64)) + 1.0
    parts = []
    for start, stop in tqdm(_blocks_by_cost(cost, budget), disable=cost.sum() < 5e7, desc="RP3beta"):
        w = (piu[start:stop] @ pui).tocoo()  # (b, V)
        keep = w.row + start != w.col
        sim = sp.csr_matrix((w.data[keep] * penalty[w.col[keep]], (w.row[keep], w.col[keep])),
                            shape=(stop - start, n_videos))
        parts.append(_prune_rows(sim, n_neighbors))
    return sp.vstack(parts, format="csr")


class RP3beta(ItemKNN):
    """RP3beta (Paudel et al. 2017): score(v) = sum over the history's videos w of ``W[w, v]``.

    ``W`` is :func:`rp3beta_similarity`; ``alpha`` sharpens the walk's transition probabilities,
    ``beta`` penalises popular targets (0: plain P3alpha). The history is the whole watch history
    (``n_recent=None``) unless asked otherwise. Unreached videos rank below, by popularity.
    """

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, n_neighbors: int = 200,
                 n_recent: int | None = None) -> None:
        super().__init__(n_neighbors=n_neighbors, n_recent=n_recent)
        if not (np.isfinite(alpha) and alpha > 0) or not np.isfinite(beta):
            raise ValueError(f"alpha must be > 0 and beta finite, got alpha={alpha!r}, beta={beta!r}")
        self.alpha, self.beta = float(alpha), float(beta)

    def _similarity_knobs(self) -> tuple:
        return (self.alpha, self.beta)

    def _similarity(self, user: np.ndarray, video: np.ndarray) -> sp.csr_matrix:
        return rp3beta_similarity(user, video, self.n_videos, self.alpha, self.beta, self.n_neighbors)


def ease_weights(x: sp.spmatrix, lam: float) -> np.ndarray:
    """EASE's closed form (Steck 2019) for a binary (users, n) matrix ``x``: (n, n) float64.

    ``P = (X^T X + lam I)^-1``, ``B = I - P diag(1 / diag(P))`` i.e. ``B[i, j] = -P[i, j] / P[j, j]``
    off the diagonal, and ``B[j, j] = 0``.
    """
    g = np.asarray((x.T @ x).toarray(), dtype=np.float64)  # (n, n) Gram matrix
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    del g
    b = p / -np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


class EASE(Baseline):
    """EASE (Steck 2019): a linear item-item autoencoder, score(v) = sum over history w of ``B[w, v]``.

    ``B`` is :func:`ease_weights` over the videos watched in the fitted log (a dense (n, n) matrix,
    so at most ``max_items`` of them); never-watched videos score -inf (they rank last). The
    history is the whole watch history.
    """

    uses_history = True

    def __init__(self, lam: float = 100.0, max_items: int = 20_000) -> None:
        super().__init__()
        if not (np.isfinite(lam) and lam > 0):
            raise ValueError(f"lam must be a positive number, got {lam!r}")
        self.lam, self.max_items = float(lam), int(max_items)
        self.items: np.ndarray | None = None  # (n,) int64 the videos B covers
        self.weights: np.ndarray | None = None  # (n, n) float64

    def fit(self, watches: WatchLog, *, n_videos: int | None = None, cutoff: float | None = None) -> EASE:
        """Fit ``B`` on the watches before ``cutoff``. Returns ``self``."""
        user, video, _ = self._fit_log(watches, n_videos, cutoff)
        self.items = np.unique(video)
        if self.items.size > self.max_items:
            raise ValueError(f"EASE needs a dense ({self.items.size}, {self.items.size}) matrix: more than "
                             f"max_items={self.max_items} watched videos; raise max_items or drop EASE")
        x = _binary_matrix(user, video, self.n_videos)[:, self.items]
        self.weights = ease_weights(x, self.lam)
        return self

    def _score_batch(self, users: np.ndarray, times: np.ndarray, hist: _Ragged | None) -> np.ndarray:
        profile = hist.csr(self.n_videos)[:, self.items]  # (b, n) binary
        out = np.full((users.size, self.n_videos), -np.inf)
        out[:, self.items] = profile @ self.weights
        return out


# ----------------------------------------------------------------------------------------------
# Hyperparameters chosen on validation examples
# ----------------------------------------------------------------------------------------------


@dataclass
class Tuned:
    """The result of :func:`tune`: the ``model`` fitted with the best ``params``, and ``scores``
    (every grid point's params with its validation recall@k, in grid order)."""

    model: Baseline
    params: dict[str, Any]
    scores: list[tuple[dict[str, Any], float]]


def _grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in order: {"a": [1, 2]} -> [{"a": 1}, {"a": 2}]."""
    points: list[dict[str, Any]] = [{}]
    for name, values in grid.items():
        points = [{**p, name: v} for p in points for v in values]
    return points


def tune(make: Any, grid: Mapping[str, Sequence[Any]], watches: WatchLog, n_videos: int,
         valid_users: np.ndarray, valid_histories: Any, valid_labels: np.ndarray, k: int = 50,
         progress: bool = False) -> Tuned:
    """Fit ``make(**params)`` on ``watches`` for every point of ``grid``; keep the best on validation.

    Each model ranks all videos for the (n,) int64 ``valid_users`` with their ``valid_histories``
    (list of n id arrays, excluded from the ranking) and is scored by recall@``k`` of the (n,)
    int64 ``valid_labels``; ties go to the earlier grid point. The points are visited in
    ``make.fit_order``, and a point that is a ``variant`` of the previous point's model is derived from
    it instead of refitted (item-kNN: one fit per similarity, each narrower neighbourhood pruned from the
    previous one); the result is the same as fitting every point. Returns a :class:`Tuned` (scores in
    grid order).
    """
    points = _grid_points(grid)
    if not points or not valid_labels.size:
        raise ValueError("tune needs a non-empty grid and at least one validation example")
    order = sorted(range(len(points)), key=lambda i: make.fit_order(points[i]))  # stable: grid order within
    scores: list[tuple[dict[str, Any], float] | None] = [None] * len(points)
    model, best, best_model = None, -1, None
    for i in tqdm(order, disable=not progress or len(points) < 2, desc=f"tune {make.__name__}", leave=False):
        model = model.variant(**points[i]) if model is not None else None
        if model is None:
            model = make(**points[i]).fit(watches, n_videos=n_videos)
        ranked = model.recommend(valid_users, min(k, n_videos), histories=valid_histories)
        scores[i] = (points[i], float(recall_at_k(ranked, valid_labels)))
        if best < 0 or (scores[i][1], -i) > (scores[best][1], -best):  # best score, then earlier point
            best, best_model = i, model
    return Tuned(best_model, points[best], scores)


# ----------------------------------------------------------------------------------------------
# Oracle
# ----------------------------------------------------------------------------------------------


class Oracle(Baseline):
    """Rank by the simulator's true next-watch distribution ``truth.next_watch_probs(users, times)``.

    The ceiling on simulated data of any model asked at the same ``times``: asked at the cutoff it is the
    ceiling of a model served then; asked at a later time it also knows what was uploaded in between
    (:func:`oracle_rankings` gives both). ``fit`` is optional: it gives the watch log used to exclude
    watched videos (or pass ``histories=`` / ``exclude_watched=False``) and a default query time (the
    cutoff).
    """

    def __init__(self, truth: Truth, n_videos: int | None = None) -> None:
        super().__init__()
        if truth is None or not callable(getattr(truth, "next_watch_probs", None)):
            raise ValueError("Oracle needs a truth object with next_watch_probs(user_ids, times); got None")
        self.truth = truth
        if n_videos is not None:
            self._fit_log(None, n_videos, None)

    def fit(
        self, watches: WatchLog | None = None, *, n_videos: int | None = None, cutoff: float | None = None
    ) -> Oracle:
        """Optionally give the watch log (before ``cutoff``) used for histories. Returns ``self``."""
        self._fit_log(watches, n_videos or self.n_videos, cutoff)
        return self

    def fit_dataset(self, ds: Any, cutoff: float | None = None) -> Oracle:
        return self.fit(ds.watches(), n_videos=int(ds.meta["n_videos"]), cutoff=cutoff)

    def _score_batch(self, users: np.ndarray, times: np.ndarray, hist: _Ragged | None) -> np.ndarray:
        probs = np.asarray(self.truth.next_watch_probs(users, times))
        if probs.shape != (users.size, self.n_videos):
            raise ValueError(
                f"truth.next_watch_probs returned shape {probs.shape}; "
                f"expected ({users.size}, {self.n_videos}) = (queries, videos)"
            )
        return probs.astype(np.float64)

    @classmethod
    def from_dataset(cls, ds: Any, cutoff: float | None = None) -> Oracle:
        """The oracle of a simulated ``Dataset`` (``ds.truth``), with its watch log before ``cutoff``."""
        if ds.truth is None:
            raise ValueError(f"dataset {ds.meta.get('name')!r} has no ground truth (real data); no oracle")
        return cls(ds.truth).fit_dataset(ds, cutoff)


ORACLE_MOMENTS: dict[str, str] = {
    "oracle": "at the serving moment (the cutoff)",
    "oracle_label_time": "at each label's own time (clairvoyant)",
}
"""The two oracles of :func:`oracle_rankings`, by the names notebooks record them under."""


def oracle_rankings(ds: Any, users: np.ndarray, times: np.ndarray, cutoff: float, k: int,
                    histories: Any = None) -> dict[str, np.ndarray]:
    """The oracle's top-``k`` of each test query twice, (n, k) int64 each, keyed as :data:`ORACLE_MOMENTS`.

    ``"oracle"`` asks the truth at ``cutoff``, the moment a model trained on the log before it serves: it
    knows every user's hidden interests then, but only the videos uploaded by then -- the ceiling of a
    model served at the cutoff. ``"oracle_label_time"`` asks at each label's own ``times`` (n,) float64:
    it also knows which videos will be uploaded after the cutoff and how fresh each is when the user comes
    back, which no model served at the cutoff can know.
    """
    oracle = Oracle.from_dataset(ds, cutoff=cutoff)
    times = np.asarray(times, np.float64)  # (n,)
    at = {"oracle": np.full_like(times, cutoff), "oracle_label_time": times}
    return {name: oracle.recommend(users, k, histories=histories, times=t) for name, t in at.items()}
