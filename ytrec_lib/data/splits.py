"""Training / evaluation splits of the watch log, and each example's history (paper §3.4).

* :func:`next_watch_split` -- the temporal split the paper uses: training examples are watches
  before ``train_cutoff``, each to be predicted from the history *before* it; evaluation users
  (``valid`` and ``test``, disjoint) are asked for their next watch(es) after the cutoff.
* :func:`heldout_watch_split` -- the contrast: the same training labels, but each predicted
  from the user's whole pre-cutoff history with only the label removed (future watches leak in).
* :func:`history` -- for any ``(user, time)`` pairs, the last watches and search tokens strictly
  before each time (vectorised; no loop per example).
* :func:`ranking_split` -- the impression log split in time for the ranking model: the candidate
  model's watches, then the ranker's training impressions, then the test impressions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .datasets import Dataset, dataset_before

__all__ = ["Split", "History", "next_watch_split", "heldout_watch_split", "history", "RankingSplit",
           "ranking_split"]


@dataclass
class Split:
    """Examples as DataFrames with columns ``user_id`` int64, ``time`` float64, ``label`` int64.

    ``time`` is the moment the features are taken at (history strictly before it). ``valid`` and
    ``test`` also have ``label_time`` (when the label was watched; equal to ``time`` for the first).
    When ``exclude_label`` is True, the label itself must be removed from the example's history
    (pass ``exclude=train["label"]`` to :func:`history`). When ``match_context`` is True too, ``train``
    also has ``label_time`` and each training example's watch bag is cut to as many watches as the user had
    before that time (the next-watch example's count): the latest before ``time``, the label left out.
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    train_cutoff: float
    kind: str
    exclude_label: bool = False
    match_context: bool = False

    @property
    def test_users(self) -> np.ndarray:
        """The distinct test users, (n,) int64."""
        return np.unique(self.test["user_id"].to_numpy())

    @property
    def valid_users(self) -> np.ndarray:
        """The distinct validation users, (n,) int64."""
        return np.unique(self.valid["user_id"].to_numpy())

    def __repr__(self) -> str:
        return (f"Split({self.kind!r}, cutoff={self.train_cutoff:.2f} d, train={len(self.train):,}, "
                f"valid={len(self.valid):,} ({self.valid_users.size:,} users), "
                f"test={len(self.test):,} ({self.test_users.size:,} users))")


def _watch_arrays(ds: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = ds.watches()
    return (w["user_id"].to_numpy().astype(np.int64), w["video_id"].to_numpy().astype(np.int64),
            w["time"].to_numpy().astype(np.float64))


def _cutoff(ds: Dataset, train_cutoff: float | None, cutoff_frac: float) -> float:
    if train_cutoff is None:
        if not 0.0 < cutoff_frac < 1.0:
            raise ValueError(f"cutoff_frac must be in (0, 1), got {cutoff_frac!r}")
        return float(cutoff_frac * ds.meta["t_end"])
    if not np.isfinite(train_cutoff):
        raise ValueError(f"train_cutoff must be a finite time in days, got {train_cutoff!r}")
    return float(train_cutoff)


def _rank_in_group(groups: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Rank of each element within its group when sorted by ``keys`` (n,) -> (n,) int64."""
    order = np.lexsort((keys, groups))
    g = groups[order]
    first = np.r_[True, g[1:] != g[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(g.size), 0))
    rank = np.empty(g.size, np.int64)
    rank[order] = np.arange(g.size) - start
    return rank


def _train_examples(u, v, t, cutoff, max_per_user, rng) -> pd.DataFrame:
    m = t < cutoff
    u, v, t = u[m], v[m], t[m]
    if max_per_user is not None:
        keep = _rank_in_group(u, rng.random(u.size)) < max_per_user
        u, v, t = u[keep], v[keep], t[keep]
    order = np.lexsort((t, u))
    return pd.DataFrame({"user_id": u[order], "time": t[order], "label": v[order]})


def _eval_examples(u, v, t, cutoff, users, n_next) -> pd.DataFrame:
    m = (t >= cutoff) & np.isin(u, users)
    u, v, t = u[m], v[m], t[m]
    rank = _rank_in_group(u, t)
    keep = rank < n_next
    u, v, t, rank = u[keep], v[keep], t[keep], rank[keep]
    order = np.lexsort((t, u))
    u, v, t = u[order], v[order], t[order]
    first_t = pd.Series(t).groupby(u).transform("min").to_numpy()
    return pd.DataFrame({"user_id": u, "time": first_t, "label": v, "label_time": t})


def next_watch_split(ds: Dataset, *, train_cutoff: float | None = None, cutoff_frac: float = 0.8,
                     max_examples_per_user: int | None = 100, valid_frac: float = 0.2, n_next: int = 1,
                     seed: int = 0) -> Split:
    """Temporal next-watch split (paper §3.4).

    * ``train``: up to ``max_examples_per_user`` watches per user (a random subset, so heavy users
      do not dominate) before the cutoff, each labelled with its video at its own time.
    * ``valid`` / ``test``: users with a watch at or after the cutoff, split at random into
      ``valid_frac`` / the rest; each has its first ``n_next`` watches after the cutoff as labels,
      all with ``time`` = the first one's time.
    """
    if max_examples_per_user is not None and max_examples_per_user <= 0:
        raise ValueError(f"max_examples_per_user must be positive or None, got {max_examples_per_user!r}")
    if not 0.0 <= valid_frac < 1.0:
        raise ValueError(f"valid_frac must be in [0, 1), got {valid_frac!r}")
    if n_next <= 0:
        raise ValueError(f"n_next must be positive, got {n_next!r}")
    cutoff = _cutoff(ds, train_cutoff, cutoff_frac)
    u, v, t = _watch_arrays(ds)
    rng = np.random.default_rng([seed, 7])
    train = _train_examples(u, v, t, cutoff, max_examples_per_user, rng)
    eligible = np.unique(u[t >= cutoff])
    if eligible.size == 0:
        raise ValueError(f"no watches at or after the cutoff {cutoff:.2f} d: choose an earlier train_cutoff")
    perm = rng.permutation(eligible)
    n_valid = int(round(valid_frac * perm.size))
    valid = _eval_examples(u, v, t, cutoff, perm[:n_valid], n_next)
    test = _eval_examples(u, v, t, cutoff, perm[n_valid:], n_next)
    return Split(train=train, valid=valid, test=test, train_cutoff=cutoff, kind="next_watch")


def heldout_watch_split(ds: Dataset, *, match_context: bool = False, **kwargs) -> Split:
    """The contrast to :func:`next_watch_split`: same labels, but predicted from *all* other history.

    Training examples have the same labels as the next-watch split (same arguments), but ``time``
    is the cutoff, so their history holds the user's watches after the label too (minus the label:
    ``exclude_label`` is True). ``valid`` and ``test`` are the next-watch ones: both splits are
    evaluated on the next watch. ``match_context``: the control with as much context as the next-watch
    example has -- each bag cut to the number of watches before the label (``label_time``), taken from
    the latest before the cutoff, so only *which* watches are the context differs (kind
    ``"heldout_matched"``).
    """
    s = next_watch_split(ds, **kwargs)
    train = s.train.assign(label_time=s.train["time"], time=s.train_cutoff)
    return Split(train=train, valid=s.valid, test=s.test, train_cutoff=s.train_cutoff,
                 kind="heldout_matched" if match_context else "heldout", exclude_label=True,
                 match_context=match_context)


# --------------------------------------------------------------------------------------------
# history
# --------------------------------------------------------------------------------------------
@dataclass
class History:
    """Ragged per-example histories (row ``i`` belongs to the i-th ``(user, time)`` asked for).

    ``watch_ids[watch_offsets[i]:watch_offsets[i+1]]`` are the example's last watches in time order,
    int64; ``watch_times`` alongside (float64 days); ``tokens[token_offsets[i]:token_offsets[i+1]]``
    the last search tokens in time order, int32.
    """

    watch_offsets: np.ndarray   # (n + 1,) int64
    watch_ids: np.ndarray       # (total,) int64
    watch_times: np.ndarray     # (total,) float64
    token_offsets: np.ndarray   # (n + 1,) int64
    tokens: np.ndarray          # (total,) int32

    def __len__(self) -> int:
        return self.watch_offsets.size - 1

    @property
    def n_watches(self) -> np.ndarray:
        """(n,) int64 history length of each example."""
        return np.diff(self.watch_offsets)

    @property
    def n_tokens(self) -> np.ndarray:
        """(n,) int64 number of search tokens of each example."""
        return np.diff(self.token_offsets)

    def padded_watches(self, length: int | None = None, pad: int = -1) -> np.ndarray:
        """(n, length) int64, the most recent watches left-aligned in time order, ``pad`` after them."""
        return _pad(self.watch_offsets, self.watch_ids, length, pad)

    def padded_tokens(self, length: int | None = None, pad: int = -1) -> np.ndarray:
        """(n, length) int64 search tokens, as :meth:`padded_watches`."""
        return _pad(self.token_offsets, self.tokens.astype(np.int64), length, pad)


def _pad(offsets: np.ndarray, values: np.ndarray, length: int | None, pad: int) -> np.ndarray:
    lens = np.diff(offsets)
    L = int(lens.max(initial=0)) if length is None else int(length)
    n = lens.size
    take = np.minimum(lens, L)
    out = np.full((n, max(L, 0)), pad, dtype=np.int64)
    rows = np.repeat(np.arange(n), take)
    col = np.arange(take.sum()) - np.repeat(np.cumsum(take) - take, take)
    src = np.repeat(offsets[1:] - take, take) + col         # the most recent `take` items
    out[rows, col] = values[src]
    return out


class _EventIndex:
    """Events sorted by (user, time) with exact 'how many before t' lookups."""

    def __init__(self, users: np.ndarray, times: np.ndarray, n_users: int, *cols: np.ndarray) -> None:
        order = np.lexsort((np.arange(users.size), times, users))
        self.u, self.t = users[order], times[order]
        self.cols = [c[order] for c in cols]
        self.start = np.searchsorted(self.u, np.arange(n_users + 1))
        self.uniq_t = np.unique(self.t)
        self.m = np.int64(self.uniq_t.size + 1)
        self.keys = self.u * self.m + np.searchsorted(self.uniq_t, self.t)

    def count_before(self, u: np.ndarray, t: np.ndarray) -> np.ndarray:
        q = u * self.m + np.searchsorted(self.uniq_t, t, side="left")
        return np.searchsorted(self.keys, q, side="left") - self.start[u]

    def last(self, u: np.ndarray, t: np.ndarray, k: int, exclude: np.ndarray | None = None
             ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Offsets (n + 1,) and columns of the last ``k`` events strictly before ``t`` per query."""
        end = self.start[u] + self.count_before(u, t)
        avail = end - self.start[u]
        extra = 0 if exclude is None else 1
        take = np.minimum(avail, k + extra)
        rows = np.repeat(np.arange(u.size), take)
        idx = np.repeat(end - take, take) + (np.arange(take.sum()) - np.repeat(np.cumsum(take) - take, take))
        keep = np.ones(idx.size, bool)
        if exclude is not None:
            keep = self.cols[0][idx] != exclude[rows]
            # of the remaining, keep the last k per row
            cnt = np.bincount(rows[keep], minlength=u.size)
            from_end = np.zeros(idx.size, np.int64)
            kept_rank = np.cumsum(keep) - 1 - np.repeat(np.cumsum(cnt) - cnt, take)
            from_end[keep] = (np.repeat(cnt, take) - kept_rank)[keep]
            keep &= from_end <= k
        rows, idx = rows[keep], idx[keep]
        offsets = np.r_[0, np.cumsum(np.bincount(rows, minlength=u.size))].astype(np.int64)
        return offsets, [c[idx] for c in self.cols]


def _indexes(ds: Dataset) -> tuple[_EventIndex, _EventIndex]:
    if "history_index" not in ds._cache:
        u, v, t = _watch_arrays(ds)
        widx = _EventIndex(u, t, ds.n_users, v, t)
        s = ds.searches
        lens = np.fromiter((len(x) for x in s["tokens"]), dtype=np.int64, count=len(s))
        toks = (np.concatenate([np.asarray(x, np.int32) for x in s["tokens"]]) if len(s)
                else np.zeros(0, np.int32))
        su = np.repeat(s["user_id"].to_numpy().astype(np.int64), lens)
        st = np.repeat(s["time"].to_numpy().astype(np.float64), lens)
        tidx = _EventIndex(su, st, ds.n_users, toks)
        ds._cache["history_index"] = (widx, tidx)
    return ds._cache["history_index"]


def history(ds: Dataset, user_ids, times, *, max_watches: int = 50, max_tokens: int = 50,
            exclude=None) -> History:
    """The last ``max_watches`` watches and ``max_tokens`` search tokens strictly before each time.

    ``user_ids`` (n,) int, ``times`` (n,) float days; ``exclude`` (n,) video ids to leave out of each
    example's watches (the label of a held-out example), or None.
    """
    u = np.asarray(user_ids, dtype=np.int64).reshape(-1)
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if u.shape != t.shape:
        raise ValueError(f"user_ids and times must have the same length, got {u.size} and {t.size}")
    if u.size and (u.min() < 0 or u.max() >= ds.n_users):
        raise KeyError(f"user ids must be in [0, {ds.n_users}); got {u.min()}..{u.max()}")
    if not np.all(np.isfinite(t)):
        raise ValueError("times must be finite (days since the start of the log)")
    if max_watches < 0 or max_tokens < 0:
        raise ValueError("max_watches and max_tokens must be >= 0")
    ex = None if exclude is None else np.asarray(exclude, dtype=np.int64).reshape(-1)
    if ex is not None and ex.shape != u.shape:
        raise ValueError(f"exclude must have one entry per example ({u.size}), got {ex.size}")
    widx, tidx = _indexes(ds)
    w_off, (w_ids, w_t) = widx.last(u, t, max_watches, ex)
    t_off, (toks,) = tidx.last(u, t, max_tokens)
    return History(watch_offsets=w_off, watch_ids=w_ids, watch_times=w_t, token_offsets=t_off,
                   tokens=toks.astype(np.int32))


# ----------------------------------------------------------------------------------------------------
# The impression log split in time (the ranking model, paper §4)
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankingSplit:
    """Row indices into the impression log: ``train`` (score_cutoff <= t < train_cutoff) and ``test``
    (t >= train_cutoff); ``candidate_cutoff`` is where the candidate model's training watches end, so
    its score is out-of-sample for every ranker impression."""

    train: np.ndarray
    test: np.ndarray
    train_cutoff: float
    candidate_cutoff: float


def ranking_split(ds: Dataset, *, train_cutoff: float | None = None, cutoff_frac: float = 0.8,
                  candidate_frac: float = 0.5) -> RankingSplit:
    """Split the impression log in time: the candidate model trains on watches before
    ``candidate_frac * train_cutoff``, the ranker on the impressions between that and ``train_cutoff``
    (default ``cutoff_frac * t_end``, as :func:`next_watch_split`), and the test
    period is every impression from ``train_cutoff`` on."""
    t_end = float(ds.meta["t_end"])
    if train_cutoff is None:
        if not 0.0 < cutoff_frac < 1.0:
            raise ValueError(f"ranking_split: cutoff_frac must be in (0, 1), got {cutoff_frac}")
        train_cutoff = cutoff_frac * t_end
    if not 0.0 <= candidate_frac < 1.0:
        raise ValueError(f"ranking_split: candidate_frac must be in [0, 1), got {candidate_frac}")
    t = ds.impressions["time"].to_numpy(np.float64)
    cand_cut = candidate_frac * float(train_cutoff)
    train = np.flatnonzero((t >= cand_cut) & (t < train_cutoff))
    test = np.flatnonzero(t >= train_cutoff)
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"ranking_split: no impressions in the training ({len(train)}) or test "
                         f"({len(test)}) period for train_cutoff={train_cutoff:.2f} d; choose another cutoff")
    return RankingSplit(train, test, float(train_cutoff), cand_cut)


# ----------------------------------------------------------------------------------------------------
# The standard real-data protocol: per-user temporal leave-last-out
# ----------------------------------------------------------------------------------------------------


@dataclass
class LeaveLastOutSplit(Split):
    """A :class:`Split` holding out each user's last watch (``test``) and the one before (``valid``).

    ``short_users`` (s,) int64: users with 1 or 2 different videos; their first watches stay in ``train`` and
    they have no ``valid`` / ``test`` example. ``heldout_rows`` (2 n,) int64: the impression-table
    index labels of the ``valid`` and ``test`` watches; ``repeat_rows`` (r,) int64: those of the
    repeat watches (a video the user had watched before), which belong to no part (see
    :func:`training_view`).
    """

    short_users: np.ndarray = None  # type: ignore[assignment]
    heldout_rows: np.ndarray = None  # type: ignore[assignment]
    repeat_rows: np.ndarray = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", short users={self.short_users.size:,})"


def _ordered_watches(ds: Dataset) -> pd.DataFrame:
    """Watches sorted by (user, time); ties keep ``ds.watches()`` order (time, session_id, position)."""
    w = ds.watches()
    u, t = w["user_id"].to_numpy(np.int64), w["time"].to_numpy(np.float64)
    order = np.lexsort((np.arange(u.size), t, u))
    return pd.DataFrame({"user_id": u[order], "time": t[order],
                         "label": w["video_id"].to_numpy(np.int64)[order], "row": w.index.to_numpy()[order]})


def leave_last_out_split(ds: Dataset) -> LeaveLastOutSplit:
    """Per-user temporal leave-last-out: the standard protocol on real data.

    Only each user's *first* watch of a video counts: repeat watches (KuaiRand logs them; MovieLens
    and the simulator have none) are left out of every part (``repeat_rows``), so a held-out video is
    never in the user's training rows nor among the earlier watches a ranking excludes.
    Each user's watches in time order (ties broken by ``ds.watches()`` order, so deterministic):
    ``test`` = the last, ``valid`` = the one before, ``train`` = the rest (every watch, one example
    at its own time). Users with fewer than 3 first watches keep them all in ``train``
    (``short_users``). ``valid`` / ``test`` examples have ``time`` = ``label_time`` = the held-out
    watch's time, so their history (strictly before ``time``) is every earlier watch of the user:
    for ``test`` that includes the ``valid`` watch (unless both share one timestamp; then neither
    sees the other, nor any other tied watch).

    There is no global cutoff. ``train_cutoff`` is just above the latest ``train`` time, so every
    training example's age ``train_cutoff - time`` is >= 0 and the example-age scale spans the
    training window. It is *not* a leak-free boundary (other users' held-out watches come before
    it): pretrain on :func:`training_view`, never on ``dataset_before(ds, train_cutoff)``.
    """
    w = _ordered_watches(ds)
    repeat = w.duplicated(["user_id", "label"]).to_numpy()   # (user, time)-sorted: keeps the first watch
    repeat_rows = w["row"].to_numpy()[repeat]
    w = w[~repeat]
    u = w["user_id"].to_numpy()
    n_user = np.bincount(u, minlength=ds.n_users)[u]
    from_end = n_user - 1 - _rank_in_group(u, np.arange(u.size))  # 0: last watch
    long_user = n_user >= 3
    test, valid = w[long_user & (from_end == 0)], w[long_user & (from_end == 1)]
    train = w[~long_user | (from_end >= 2)]
    cols = ["user_id", "time", "label"]
    if len(test) == 0:
        raise ValueError("no user has 3 or more watches: leave-last-out needs train, valid and test watches")
    return LeaveLastOutSplit(
        train=train[cols].reset_index(drop=True),
        valid=valid[cols].assign(label_time=valid["time"]).reset_index(drop=True),
        test=test[cols].assign(label_time=test["time"]).reset_index(drop=True),
        train_cutoff=float(np.nextafter(train["time"].max(), np.inf)), kind="leave_last_out",
        short_users=np.unique(u[(n_user > 0) & ~long_user]),
        heldout_rows=np.concatenate([valid["row"].to_numpy(), test["row"].to_numpy()]),
        repeat_rows=repeat_rows)


def _left_out_rows(split: LeaveLastOutSplit) -> np.ndarray:
    """The held-out and repeat watches' impression index labels (repeat_rows None: none)."""
    repeats = split.repeat_rows if split.repeat_rows is not None else np.zeros(0, np.int64)
    return np.concatenate([np.asarray(split.heldout_rows), np.asarray(repeats)])


def training_view(ds: Dataset, split: Split) -> Dataset:
    """A view of ``ds`` holding only what the split's models may train on (e.g. for item2vec).

    Leave-last-out: every impression and search except the held-out and repeat watches and, per
    evaluated user, any impression or search at or after their ``valid`` time. Other splits:
    :func:`ytrec_lib.data.datasets.dataset_before` ``(ds, split.train_cutoff)``. The view's
    ``meta['name']`` says which, so caches keyed by the name keep it apart.
    """
    if not isinstance(split, LeaveLastOutSplit):
        return dataset_before(ds, split.train_cutoff)
    first_heldout = np.full(ds.n_users, np.inf)
    first_heldout[split.valid["user_id"].to_numpy()] = split.valid["time"].to_numpy()
    imp, s = ds.impressions, ds.searches
    keep = ((imp["time"].to_numpy() < first_heldout[imp["user_id"].to_numpy()])
            | imp["clicked"].to_numpy()) & ~imp.index.isin(_left_out_rows(split))
    keep_s = s["time"].to_numpy() < first_heldout[s["user_id"].to_numpy()]
    meta = {**ds.meta, "name": f"{ds.meta.get('name')}-train-lastout"}
    return Dataset(users=ds.users, videos=ds.videos, impressions=imp[keep], searches=s[keep_s], meta=meta,
                   truth=None)


__all__ += ["LeaveLastOutSplit", "leave_last_out_split", "training_view"]


# ----------------------------------------------------------------------------------------------------
# The standard split of a dataset, and what each test user brings to it
# ----------------------------------------------------------------------------------------------------


def is_real_dataset(ds: Dataset) -> bool:
    """Whether ``ds`` was read from published files (``meta['source'] == 'real'``, set by every real
    adapter and kept by :func:`training_view`) rather than simulated."""
    return ds.meta.get("source") == "real"


def default_split(ds: Dataset, *, seed: int = 0) -> Split:
    """The standard split of ``ds``: :func:`leave_last_out_split` for a real dataset (users join and
    leave at any time, so a global cutoff would leave most test users with no history),
    :func:`next_watch_split` ``(ds, seed=seed)`` for the simulator (every user is active throughout)."""
    if is_real_dataset(ds):
        return leave_last_out_split(ds)
    return next_watch_split(ds, seed=seed)


def training_watches(ds: Dataset, split: Split) -> pd.DataFrame:
    """The rows of ``ds.watches()`` a model evaluated on ``split`` may be fitted on: leave-last-out,
    the ``train`` watches (all but the held-out and repeat ones); other splits, the watches before
    ``split.train_cutoff``."""
    w = ds.watches()
    if isinstance(split, LeaveLastOutSplit):
        return w[~w.index.isin(_left_out_rows(split))]
    return w[w["time"].to_numpy() < split.train_cutoff]


def empty_history_share(split: Split, part: str = "test") -> float:
    """The share of ``part``'s users (``"test"`` or ``"valid"``) with no training example before their
    (first) evaluation example: cold-start users, whom no history-based model can personalise for.

    Leave-last-out: 0 (every evaluated user keeps at least one training watch, unless it ties with the
    held-out ones). A global-cutoff split on real data: often most users (they join after the cutoff).
    NaN when ``part`` has no users.
    """
    if part not in ("test", "valid"):
        raise ValueError(f"part must be 'test' or 'valid', got {part!r}")
    ev = getattr(split, part)
    if len(ev) == 0:
        return float("nan")
    asked = ev.groupby("user_id")["time"].min()                         # (n users,) first example time
    first_train = split.train.groupby("user_id")["time"].min().reindex(asked.index)
    has_history = first_train.to_numpy() < asked.to_numpy()            # NaN (no training row) -> False
    return float(1.0 - has_history.mean())


__all__ += ["is_real_dataset", "default_split", "training_watches", "empty_history_share"]
