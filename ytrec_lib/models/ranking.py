"""The ranking model of Covington et al. (RecSys 2016, §4): weighted logistic regression on watch time.

The second stage scores a few hundred candidates per request, so it can afford many features of the
(user, video) *pair*. One training example is one **impression** of the log (the video was shown;
clicked or not). Its inputs, all built from events strictly before the impression's time:

==================  =====================================================================================
group               input
==================  =====================================================================================
``video``           the impression video's embedding (the same table as the watched videos: shared)
``watches``         the average embedding of the user's last <= ``max_bag`` watched videos
``language``        embeddings of the user's language and of the video's language
``source``          the request context: home feed (0) or search results (1)
continuous          ``days_since_creator`` / ``days_since_topic`` (since the user last watched a video of
                    this creator / topic; :data:`NEVER_DAYS` when never), ``prev_impressions`` (times this
                    video was shown to the user before), ``video_age`` (days since upload),
                    ``duration`` (the video's length, s) and ``candidate_score`` (the candidate
                    model's logit of the video at the start of the session, optional)
==================  =====================================================================================

Continuous features are normalised by their empirical CDF (:class:`QuantileNormalizer`, fitted in
one pass over the training impressions) to ``x~`` in [0, 1] and fed as ``x~, x~^2, sqrt(x~)`` (§4.1:
super- and sub-linear powers; a flag turns them off).

Two objectives over the same network (§4.2):

* ``"weighted"`` -- logistic regression with clicked impressions weighted by their watch time and
  unclicked ones by 1: the learned odds ``exp(logit)`` approximate the expected watch time of the
  impression (``E[T] / (1 - P(click))``, close to ``E[T]`` when clicks are rare);
* ``"plain"`` -- logistic regression on clicks (every impression weighs 1): the odds of a click.

Evaluation (:func:`evaluate_scores`): AUC, grouped AUC per user, the paper's weighted per-user loss over
(clicked, unclicked) pairs of the same page, and watch-time NDCG@10 within each user's impressions.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

from ytrec_lib import metrics
from ytrec_lib.data.splits import RankingSplit
from ytrec_lib.features import EventLog
from ytrec_lib.progress import tqdm
from ytrec_lib.threads import limit_threads

NEVER_DAYS = 10_000.0
"""``days_since_*`` of a user who never watched that creator / topic before (a mass at the top)."""

CONTINUOUS: tuple[str, ...] = (
    "days_since_creator", "days_since_topic", "prev_impressions", "video_age", "duration", "candidate_score",
)
"""Names of the continuous features, in column order."""

EMBEDDING_GROUPS: tuple[str, ...] = ("video", "watches", "language", "source")
"""Feature groups that are not continuous columns."""

ALL_GROUPS: tuple[str, ...] = EMBEDDING_GROUPS + CONTINUOUS
"""Every feature group, the unit of :class:`RankingSpec` and of the drop-one ablation."""

OBJECTIVES = ("weighted", "plain")


# ----------------------------------------------------------------------------------------------------
# Quantile normalisation
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantileNormalizer:
    """Maps each column to [0, 1] by its empirical CDF, from ``n_bins + 1`` quantiles (paper §4.1).

    ``quantiles`` (n_bins + 1, d) float64: column j's quantiles at levels ``0, 1/n_bins, ..., 1``.
    A value between two quantiles is interpolated linearly; a value equal to a run of tied quantiles
    (a point mass) maps to the middle of that run's levels (mid-rank, as ``scipy.stats.rankdata``'s
    ``"average"``); values below the minimum map to 0, above the maximum to 1. The map is monotone
    non-decreasing. With ``n_bins = n - 1`` on n training values it is exactly
    ``(average rank - 1) / (n - 1)`` on those values.
    """

    quantiles: np.ndarray
    names: tuple[str, ...] = ()

    @classmethod
    def fit(cls, x: Any, n_bins: int = 1000, names: Sequence[str] | None = None) -> QuantileNormalizer:
        """Fit on ``x`` (n,) or (n, d) finite floats in one pass (one sort a column; the quantiles of
        ``np.quantile``'s default linear method)."""
        x = _as_2d(x, "QuantileNormalizer.fit")
        if int(n_bins) < 1:
            raise ValueError(f"QuantileNormalizer.fit: n_bins must be >= 1, got {n_bins}")
        if x.shape[0] == 0:
            raise ValueError("QuantileNormalizer.fit: no rows to fit on; pass the training features")
        if not np.isfinite(x).all():
            raise ValueError("QuantileNormalizer.fit: x contains NaN or infinite values; fill them first")
        names = tuple(names) if names is not None else tuple(f"x{j}" for j in range(x.shape[1]))
        if len(names) != x.shape[1]:
            raise ValueError(f"QuantileNormalizer.fit: {len(names)} names for {x.shape[1]} columns")
        return cls(_quantiles(x, int(n_bins)), names)

    @property
    def n_bins(self) -> int:
        return self.quantiles.shape[0] - 1

    @property
    def n_columns(self) -> int:
        return self.quantiles.shape[1]

    def transform(self, x: Any) -> np.ndarray:
        """``x`` (n, d) (or (n,) when d = 1) -> x~ (n, d) float64 in [0, 1]."""
        x = _as_2d(x, "QuantileNormalizer.transform")
        if x.shape[1] != self.n_columns:
            raise ValueError(f"QuantileNormalizer.transform: x has {x.shape[1]} columns, the normaliser "
                             f"was fitted on {self.n_columns}")
        if np.isnan(x).any():
            raise ValueError("QuantileNormalizer.transform: x contains NaN; fill missing values first")
        out = np.empty(x.shape, dtype=np.float64)
        for j in range(x.shape[1]):  # loop over the few columns, vectorised over rows
            out[:, j] = _cdf_column(self.quantiles[:, j], x[:, j])
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"quantiles": self.quantiles.tolist(), "names": list(self.names)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantileNormalizer:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(d["quantiles"], dtype=np.float64), tuple(d["names"]))


def _as_2d(x: Any, where: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{where}: expected a (n,) or (n, d) array, got shape {x.shape}")
    return x


def _quantiles(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Quantiles of each column of ``x`` (n, d) at levels j / n_bins: (n_bins + 1, d) float64.

    NumPy's default (linear) definition, ``np.quantile(x, levels, axis=0)``, with the positions
    ``j (n - 1) / n_bins`` computed exactly, so that a position that is a whole number gives exactly an
    order statistic (``np.quantile`` can land a rounding error past it and split a run of ties).
    """
    xs = np.sort(x, axis=0)  # (n, d)
    n = xs.shape[0]
    pos = np.arange(n_bins + 1, dtype=np.float64) * (n - 1) / n_bins  # (B+1,)
    lo = np.minimum(np.floor(pos).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    frac = (pos - lo)[:, None]  # (B+1, 1)
    q = xs[lo] + frac * (xs[hi] - xs[lo])  # (B+1, d)
    return np.ascontiguousarray(np.where(frac == 0, xs[lo], q), dtype=np.float64)


def _cdf_column(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Empirical CDF level in [0, 1] of values ``x`` (n,) from sorted quantiles ``q`` (B+1,)."""
    n_bins = q.size - 1
    if n_bins == 0:
        return np.full(x.shape, 0.5)
    lo = np.searchsorted(q, x, side="left")  # (n,) quantiles < x
    hi = np.searchsorted(q, x, side="right")  # (n,) quantiles <= x
    tied = hi > lo
    level = np.empty(x.shape, dtype=np.float64)
    level[tied] = 0.5 * (lo[tied] + hi[tied] - 1)  # the middle of the tied run's levels
    inside = ~tied & (lo > 0) & (lo <= n_bins)
    j = lo[inside]  # q[j-1] < x < q[j]
    left, right = q[j - 1], q[j]
    level[inside] = (j - 1) + (x[inside] - left) / (right - left)
    level[~tied & (lo == 0)] = 0.0
    level[~tied & (lo > n_bins)] = n_bins
    return level / n_bins


def expand_powers(x_tilde: np.ndarray, powers: bool = True) -> np.ndarray:
    """x~ (n, d) in [0, 1] -> (n, 3d) float32 blocks ``[x~, x~^2, sqrt(x~)]``; (n, d) without powers."""
    x_tilde = np.asarray(x_tilde, dtype=np.float64)
    if not powers:
        return x_tilde.astype(np.float32)
    return np.concatenate([x_tilde, x_tilde**2, np.sqrt(x_tilde)], axis=1).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# Event lookups strictly before a time
# ----------------------------------------------------------------------------------------------------


def last_time_before(
    ev_keys: np.ndarray, ev_times: np.ndarray, q_keys: np.ndarray, q_times: np.ndarray
) -> np.ndarray:
    """For each query (key, time): the time of the last event with that key strictly before it.

    ``ev_keys`` (E,) int64, ``ev_times`` (E,) float64, ``q_keys`` (n,) int64, ``q_times`` (n,) float64
    -> (n,) float64, NaN where there is none. Exact (times compared by rank, as
    :meth:`ytrec_lib.features.EventLog.bag_bounds`).
    """
    log, q = _keyed_log(ev_keys, ev_times, q_keys)
    begin, length = log.bag_bounds(q, np.asarray(q_times, np.float64), 1)
    out = np.full(len(begin), np.nan)
    has = length > 0
    out[has] = log.time[begin[has]]
    return out


def count_before(
    ev_keys: np.ndarray, ev_times: np.ndarray, q_keys: np.ndarray, q_times: np.ndarray
) -> np.ndarray:
    """For each query (key, time): how many events with that key happened strictly before it. (n,) int64."""
    log, q = _keyed_log(ev_keys, ev_times, q_keys)
    _, length = log.bag_bounds(q, np.asarray(q_times, np.float64), max(len(log), 1))
    return length


def _keyed_log(ev_keys: Any, ev_times: Any, q_keys: Any) -> tuple[EventLog, np.ndarray]:
    """An EventLog over dense key ids (0..K-1, so key * time-rank cannot overflow) and the queries' ids
    (keys with no event get id K, which has none)."""
    ev_keys, q_keys = np.asarray(ev_keys, np.int64).ravel(), np.asarray(q_keys, np.int64).ravel()
    uniq, ev_ids = np.unique(ev_keys, return_inverse=True)
    pos = np.minimum(np.searchsorted(uniq, q_keys), max(len(uniq) - 1, 0))
    found = (uniq[pos] == q_keys) if len(uniq) else np.zeros(len(q_keys), bool)
    q_ids = np.where(found, pos, len(uniq))
    return EventLog.from_arrays(ev_ids, ev_times, np.zeros(len(ev_keys), np.int64), 1), q_ids


# ----------------------------------------------------------------------------------------------------
# Features of impressions
# ----------------------------------------------------------------------------------------------------


@dataclass
class ImpressionFeatures:
    """Features and labels of ``n`` impressions; bags kept as offsets into ``watch_log``.

    ``users``, ``videos`` (n,) int64; ``times`` (n,) float64 days; ``sessions`` (n,) int64 (the page);
    ``user_language``, ``video_language`` (n,) int64 (unknown = ``n_languages``); ``source`` (n,) float32
    (1 = search); ``continuous`` (n, len(CONTINUOUS)) float64 raw values, ``candidate_score`` NaN when
    absent; ``watch_begin`` / ``watch_len`` (n,) int64; ``clicked`` (n,) bool; ``watch_time`` (n,) float64 s.
    """

    users: np.ndarray
    videos: np.ndarray
    times: np.ndarray
    sessions: np.ndarray
    user_language: np.ndarray
    video_language: np.ndarray
    source: np.ndarray
    continuous: np.ndarray
    watch_begin: np.ndarray
    watch_len: np.ndarray
    clicked: np.ndarray
    watch_time: np.ndarray
    watch_log: EventLog = field(repr=False)
    n_videos: int = 0
    n_languages: int = 0

    def __len__(self) -> int:
        return len(self.users)

    @property
    def has_candidate_score(self) -> bool:
        """Whether every impression has a candidate-model score."""
        col = self.continuous[:, CONTINUOUS.index("candidate_score")]
        return bool(len(self)) and bool(np.isfinite(col).all())

    def subset(self, idx: Any) -> ImpressionFeatures:
        """The impressions ``idx`` (index array or boolean mask) as a new ImpressionFeatures."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        names = ("users", "videos", "times", "sessions", "user_language", "video_language", "source",
                 "continuous", "watch_begin", "watch_len", "clicked", "watch_time")
        return replace(self, **{k: getattr(self, k)[idx] for k in names})

    def with_candidate_scores(self, scores: Any) -> ImpressionFeatures:
        """A copy with the ``candidate_score`` column set to ``scores`` (n,) float."""
        scores = np.asarray(scores, dtype=np.float64).ravel()
        if scores.shape != (len(self),):
            raise ValueError(f"with_candidate_scores: need one score per impression ({len(self)}), "
                             f"got {scores.size}")
        if not np.isfinite(scores).all():
            raise ValueError("with_candidate_scores: scores contain NaN or infinite values")
        cont = self.continuous.copy()
        cont[:, CONTINUOUS.index("candidate_score")] = scores
        return replace(self, continuous=cont)

    def frame(self, rows: Any = None) -> pd.DataFrame:
        """The raw features of some impressions as a table (for showing real rows)."""
        rows = np.arange(min(len(self), 10)) if rows is None else np.asarray(rows)
        df = pd.DataFrame({"user_id": self.users[rows], "video_id": self.videos[rows],
                           "time": self.times[rows], "user_language": self.user_language[rows],
                           "video_language": self.video_language[rows], "source": self.source[rows],
                           "n_watched": self.watch_len[rows]})
        for j, name in enumerate(CONTINUOUS):
            df[name] = self.continuous[rows, j]
        df["clicked"] = self.clicked[rows]
        df["watch_time"] = self.watch_time[rows]
        return df


class RankingFeatureBuilder:
    """Builds :class:`ImpressionFeatures` from the log: every feature uses only events strictly before
    each impression's time. Build once per dataset (:meth:`from_dataset`, or the constructor with the
    ``users``, ``videos`` and ``impressions`` tables of ``docs/data_contract.md``), then :meth:`build`
    the features of any rows: logged impressions, or a user's candidates at serving time. Missing
    ``duration`` / ``upload_time`` values (real data) become 0 when the features are normalised."""

    def __init__(self, users: pd.DataFrame, videos: pd.DataFrame, impressions: pd.DataFrame,
                 n_languages: int, max_bag: int = 50):
        for name, df, cols in (
            ("users", users, ("user_id", "language")),
            ("videos", videos, ("video_id", "creator_id", "topic", "upload_time", "duration", "language")),
            ("impressions", impressions, ("user_id", "video_id", "time", "session_id", "source", "clicked",
                                          "watch_time")),
        ):
            missing = [c for c in cols if c not in df]
            if missing:
                raise KeyError(f"RankingFeatureBuilder: the {name} table lacks column(s) {missing}")
        if int(max_bag) < 1:
            raise ValueError(f"RankingFeatureBuilder: max_bag must be >= 1, got {max_bag}")
        self.max_bag = int(max_bag)
        self.n_languages = int(n_languages)
        self.n_videos = int(videos["video_id"].max()) + 1 if len(videos) else 0
        self.user_lang = _dense_lookup(users["user_id"], users["language"], -1)
        self.video_lang = _dense_lookup(videos["video_id"], videos["language"], -1)
        self.creator = _dense_lookup(videos["video_id"], videos["creator_id"], -1)
        self.topic = _dense_lookup(videos["video_id"], videos["topic"], -1)
        self.upload = _dense_lookup(videos["video_id"], videos["upload_time"], np.nan, np.float64)
        self.duration = _dense_lookup(videos["video_id"], videos["duration"], np.nan, np.float64)
        self.n_creators = int(self.creator.max(initial=-1)) + 1
        self.n_topics = int(self.topic.max(initial=-1)) + 1
        imp_u = impressions["user_id"].to_numpy(np.int64)
        imp_v = impressions["video_id"].to_numpy(np.int64)
        imp_t = impressions["time"].to_numpy(np.float64)
        if np.isnan(imp_t).any():
            raise ValueError("RankingFeatureBuilder: impression times contain NaN")
        self._check_videos(imp_v, "the impressions table")
        self.imp_key_t = (imp_u * self.n_videos + imp_v, imp_t)  # (user, video) pairs shown
        clicked = impressions["clicked"].to_numpy(bool)
        wu, wv, wt = imp_u[clicked], imp_v[clicked], imp_t[clicked]
        self.watch_log = EventLog.from_arrays(wu, wt, wv, self.n_videos)
        self.creator_key_t = (wu * max(self.n_creators, 1) + self.creator[wv], wt)
        self.topic_key_t = (wu * max(self.n_topics, 1) + self.topic[wv], wt)

    @classmethod
    def from_dataset(cls, ds: Any, max_bag: int = 50) -> RankingFeatureBuilder:
        """From a ``ytrec_lib.data`` Dataset (its users, videos and impressions)."""
        if ds.impressions is None or len(ds.impressions) == 0:
            raise ValueError("RankingFeatureBuilder: the dataset has no impression log; the ranker needs one")
        return cls(ds.users, ds.videos, ds.impressions, int(ds.meta["n_languages"]), max_bag)

    def _check_videos(self, v: np.ndarray, where: str) -> None:
        if len(v) and (v.min() < 0 or v.max() >= self.n_videos or (self.creator[v] < 0).any()):
            raise KeyError(f"RankingFeatureBuilder: {where} holds video ids not in the videos table")

    def build(self, impressions: pd.DataFrame, candidate_scores: Any = None,
              progress: bool = False) -> ImpressionFeatures:
        """Features of the rows of ``impressions`` (same columns as the log; labels may be absent:
        ``clicked`` False and ``watch_time`` 0 are assumed). ``candidate_scores`` (n,) or None."""
        u = impressions["user_id"].to_numpy(np.int64)
        v = impressions["video_id"].to_numpy(np.int64)
        t = impressions["time"].to_numpy(np.float64)
        if np.isnan(t).any():
            raise ValueError("RankingFeatureBuilder.build: impression times contain NaN")
        self._check_videos(v, "build()")
        steps = tqdm(total=4, desc="ranking features", disable=not progress)
        n_c, n_t = max(self.n_creators, 1), max(self.n_topics, 1)
        last_c = last_time_before(*self.creator_key_t, u * n_c + self.creator[v], t)
        last_tp = last_time_before(*self.topic_key_t, u * n_t + self.topic[v], t)
        steps.update(2)
        prev = count_before(*self.imp_key_t, u * self.n_videos + v, t)
        steps.update(1)
        wb, wl = self.watch_log.bag_bounds(u, t, self.max_bag)
        steps.update(1)
        steps.close()
        cand = np.full(len(u), np.nan)
        if candidate_scores is not None:
            cand = np.asarray(candidate_scores, dtype=np.float64).ravel()
            if cand.shape != u.shape or not np.isfinite(cand).all():
                raise ValueError(f"build: candidate_scores must be {len(u)} finite values, one a row")
        cont = np.column_stack([
            np.where(np.isnan(last_c), NEVER_DAYS, t - last_c),
            np.where(np.isnan(last_tp), NEVER_DAYS, t - last_tp),
            prev.astype(np.float64),
            np.maximum(t - self.upload[v], 0.0),
            self.duration[v],
            cand,
        ])  # (n, 6)
        known_u = (u >= 0) & (u < len(self.user_lang))
        ulang = np.where(known_u, self.user_lang[np.where(known_u, u, 0)], -1)
        source = impressions["source"].astype(str).to_numpy() if "source" in impressions else np.array("home")
        return ImpressionFeatures(
            users=u, videos=v, times=t,
            sessions=_column(impressions, "session_id", np.int64, -1),
            user_language=_lang(ulang, self.n_languages),
            video_language=_lang(self.video_lang[v], self.n_languages),
            source=np.broadcast_to(source == "search", u.shape).astype(np.float32),
            continuous=cont, watch_begin=wb, watch_len=wl,
            clicked=_column(impressions, "clicked", bool, False),
            watch_time=_column(impressions, "watch_time", np.float64, 0.0),
            watch_log=self.watch_log, n_videos=self.n_videos, n_languages=self.n_languages,
        )


def _dense_lookup(ids: pd.Series, values: pd.Series, fill: Any, dtype: Any = np.int64) -> np.ndarray:
    """Array indexed by id (ids need not be dense; missing ids get ``fill``)."""
    ids = ids.to_numpy(np.int64)
    if len(ids) and ids.min() < 0:
        raise ValueError("ids must be >= 0")
    out = np.full(int(ids.max()) + 1 if len(ids) else 0, fill, dtype=dtype)
    out[ids] = values.to_numpy(dtype)
    return out


def _lang(lang: np.ndarray, n_languages: int) -> np.ndarray:
    lang = np.asarray(lang, dtype=np.int64)
    return np.where((lang >= 0) & (lang < n_languages), lang, n_languages)


def _column(df: pd.DataFrame, name: str, dtype: Any, fill: Any) -> np.ndarray:
    if name in df:
        return df[name].to_numpy(dtype)
    return np.full(len(df), fill, dtype=dtype)


# ----------------------------------------------------------------------------------------------------
# Candidate-model score of (user, video, time) triples
# ----------------------------------------------------------------------------------------------------


def session_start_times(impressions: pd.DataFrame) -> np.ndarray:
    """The time of each impression's session's first impression, (n,) float64: when the page was
    requested, the moment the candidate model scores its candidates (history strictly before it)."""
    for col in ("session_id", "time"):
        if col not in impressions:
            raise KeyError(f"session_start_times: the impressions table lacks {col!r}")
    return impressions.groupby("session_id")["time"].transform("min").to_numpy(np.float64)


@torch.no_grad()
def candidate_scores(model: Any, builder: Any, users: Any, videos: Any, times: Any,
                     batch_size: int = 4096, progress: bool = False) -> np.ndarray:
    """The candidate model's logit of each video for its user at its time (serving view: example age 0).

    ``model`` a :class:`ytrec_lib.models.candidate.CandidateModel`, ``builder`` the
    :class:`ytrec_lib.features.FeatureBuilder` it was trained with; ``users``, ``videos`` (n,) int,
    ``times`` (n,) float days -> (n,) float64 ``u(user, time) . w_video + b_video``. The user embedding
    is computed once per distinct (user, time) pair (pass :func:`session_start_times` to score a page's
    candidates together).
    """
    users = np.asarray(users, np.int64).ravel()
    videos = np.asarray(videos, np.int64).ravel()
    times = np.asarray(times, np.float64).ravel()
    if not (users.shape == videos.shape == times.shape):
        raise ValueError("candidate_scores: users, videos and times must have the same length")
    if np.isnan(times).any():
        raise ValueError("candidate_scores: times contain NaN")
    if len(videos) and (videos.min() < 0 or videos.max() >= model.n_videos):
        raise KeyError(f"candidate_scores: video ids must be in [0, {model.n_videos})")
    pairs = pd.DataFrame({"u": users, "t": times})
    first = ~pairs.duplicated().to_numpy()
    key = pairs.groupby(["u", "t"], sort=False).ngroup().to_numpy()  # (n,) id of the distinct pair
    uniq_rows = np.flatnonzero(first)  # first row of each pair, in ngroup order
    feats = builder.examples(users[uniq_rows], times[uniq_rows])
    was_training = model.training
    model.eval()
    emb = np.empty((len(uniq_rows), model.m), dtype=np.float32)  # (P, m)
    starts = range(0, len(uniq_rows), batch_size)
    with limit_threads(1, blas=False):
        for s in tqdm(starts, desc="candidate scores", disable=not progress):
            idx = np.arange(s, min(s + batch_size, len(uniq_rows)))
            emb[idx] = model.user_embeddings(feats.batch(idx)).numpy()  # (B, m)
    model.train(was_training)
    w = model.output.weight.detach().numpy()  # (n_videos, m)
    b = model.output.bias.detach().numpy()  # (n_videos,)
    u = emb[key]  # (n, m)
    return np.einsum("nm,nm->n", u.astype(np.float64), w[videos].astype(np.float64)) + b[videos]


# ----------------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankingSpec:
    """Which feature groups the ranker sees (names from :data:`ALL_GROUPS`) and how continuous ones
    are fed: ``powers`` adds x~^2 and sqrt(x~) to x~."""

    groups: tuple[str, ...] = ALL_GROUPS
    powers: bool = True

    def __post_init__(self) -> None:
        groups = tuple(self.groups)
        unknown = [g for g in groups if g not in ALL_GROUPS]
        if unknown:
            raise ValueError(f"RankingSpec: unknown feature group(s) {unknown}; use {list(ALL_GROUPS)}")
        if not groups:
            raise ValueError("RankingSpec: no feature group selected; enable at least one")
        object.__setattr__(self, "groups", tuple(g for g in ALL_GROUPS if g in groups))

    @property
    def continuous(self) -> tuple[str, ...]:
        """The continuous features used, in :data:`CONTINUOUS` order."""
        return tuple(c for c in CONTINUOUS if c in self.groups)

    def without(self, group: str) -> RankingSpec:
        """The same spec with one group dropped (the drop-one ablation)."""
        if group not in self.groups:
            raise ValueError(f"RankingSpec.without: {group!r} is not in {list(self.groups)}")
        return replace(self, groups=tuple(g for g in self.groups if g != group))

    def to_dict(self) -> dict[str, Any]:
        return {"groups": list(self.groups), "powers": self.powers}


class RankingModel(nn.Module):
    """Impression features -> concat -> [Linear -> ReLU] x len(hidden) -> Linear(1): one logit.

    Args:
        n_videos, n_languages: vocabulary sizes (each table gets a zero padding row at index n).
        spec: which groups are fed; hidden: widths of the ReLU layers (empty = logistic regression on
            the inputs); dim: video embedding width; lang_dim: language embedding width;
        video_init: optional (n_videos, dim) array to start the shared video table from;
        seed: seeds the initialisation (the global torch RNG is left untouched).
    """

    def __init__(self, n_videos: int, n_languages: int, spec: RankingSpec | None = None,
                 hidden: Sequence[int] = (64, 32), dim: int = 16, lang_dim: int = 4,
                 video_init: np.ndarray | None = None, seed: int = 0):
        super().__init__()
        spec = spec or RankingSpec()
        hidden = tuple(int(h) for h in hidden)
        for name, value in (("n_videos", n_videos), ("n_languages", n_languages), ("dim", dim),
                            ("lang_dim", lang_dim)):
            if int(value) < 1:
                raise ValueError(f"RankingModel: {name} must be >= 1, got {value}")
        if any(h < 1 for h in hidden):
            raise ValueError(f"RankingModel: hidden widths must be >= 1, got {hidden}")
        self.spec, self.hidden = spec, hidden
        self.n_videos, self.n_languages = int(n_videos), int(n_languages)
        g = spec.groups
        n_cont = len(spec.continuous) * (3 if spec.powers else 1)
        d_in = (dim * ("video" in g) + dim * ("watches" in g) + 2 * lang_dim * ("language" in g)
                + ("source" in g) + n_cont)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # one table for the impression video and the watched videos (mean over the bag, padding left out)
            self.video_emb = nn.EmbeddingBag(n_videos + 1, dim, mode="mean", padding_idx=n_videos)
            nn.init.normal_(self.video_emb.weight, 0.0, 1.0 / np.sqrt(dim))
            self.lang_emb = nn.Embedding(n_languages + 1, lang_dim, padding_idx=n_languages)
            layers: list[nn.Module] = []
            widths = (d_in, *hidden)
            for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
                layers += [nn.Linear(w_in, w_out), nn.ReLU()]
            self.tower = nn.Sequential(*layers)
            self.head = nn.Linear(widths[-1], 1)
        with torch.no_grad():
            if video_init is not None:
                init = np.asarray(video_init, dtype=np.float32)
                if init.shape != (n_videos, dim) or not np.isfinite(init).all():
                    raise ValueError(f"RankingModel: video_init must be a finite ({n_videos}, {dim}) array")
                self.video_emb.weight[:n_videos] = torch.from_numpy(init)
            self.video_emb.weight[n_videos] = 0.0
        self.d_in = d_in

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits (B,) float32 from :meth:`RankingInputs.batch` tensors."""
        g, parts = self.spec.groups, []
        if "video" in g:
            parts.append(F.embedding(batch["video"], self.video_emb.weight))  # (B, dim)
        if "watches" in g:
            parts.append(self.video_emb(batch["watch_ids"]))  # (B, dim) mean of the watched videos, 0 if none
        if "language" in g:
            parts.append(self.lang_emb(batch["user_language"]))  # (B, lang_dim)
            parts.append(self.lang_emb(batch["video_language"]))  # (B, lang_dim)
        if "source" in g:
            parts.append(batch["source"].unsqueeze(1))  # (B, 1)
        if self.spec.continuous:
            parts.append(batch["continuous"])  # (B, n_cont)
        x = torch.cat(parts, dim=1)  # (B, d_in)
        if x.shape[1] != self.d_in:
            raise ValueError(f"RankingModel: inputs have {x.shape[1]} columns, the model expects "
                             f"{self.d_in}; build the inputs with the model's spec")
        return self.head(self.tower(x)).squeeze(1)  # (B,)


@dataclass
class RankingInputs:
    """Model-ready inputs: features, the fitted normaliser and the spec; :meth:`batch` makes tensors.

    ``continuous`` (n, n_cont) float32 = the normalised (and expanded) continuous columns of the spec.
    """

    features: ImpressionFeatures
    normalizer: QuantileNormalizer
    spec: RankingSpec
    continuous: np.ndarray

    @classmethod
    def make(cls, features: ImpressionFeatures, normalizer: QuantileNormalizer,
             spec: RankingSpec) -> RankingInputs:
        """Normalise ``features`` with ``normalizer`` (fitted on the training impressions) for ``spec``."""
        if "candidate_score" in spec.groups and not features.has_candidate_score:
            raise ValueError("RankingInputs: the spec uses candidate_score but the features have none; "
                             "pass candidate_scores to build() or drop the group with spec.without(...)")
        cols = [CONTINUOUS.index(c) for c in spec.continuous]
        raw = np.nan_to_num(features.continuous, nan=0.0)
        x_tilde = normalizer.transform(raw)[:, cols]  # (n, k)
        return cls(features, normalizer, spec, expand_powers(x_tilde, spec.powers))

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, idx: Any = None) -> dict[str, torch.Tensor]:
        """Tensors of impressions ``idx``: ``video`` (B,), ``watch_ids`` (B, L) (padded with n_videos),
        ``watch_len`` (B,) int64; ``user_language``, ``video_language`` (B,) int64; ``source`` (B,),
        ``continuous`` (B, n_cont) float32."""
        f = self.features
        idx = np.arange(len(f)) if idx is None else np.asarray(idx, dtype=np.int64).ravel()
        return {
            "video": torch.from_numpy(f.videos[idx]),
            "watch_ids": torch.from_numpy(f.watch_log.gather(f.watch_begin[idx], f.watch_len[idx])),
            "watch_len": torch.from_numpy(f.watch_len[idx]),
            "user_language": torch.from_numpy(f.user_language[idx]),
            "video_language": torch.from_numpy(f.video_language[idx]),
            "source": torch.from_numpy(f.source[idx]),
            "continuous": torch.from_numpy(self.continuous[idx]),
        }


def fit_normalizer(features: ImpressionFeatures, n_bins: int = 1000) -> QuantileNormalizer:
    """A :class:`QuantileNormalizer` over every continuous column of (training) ``features``; a
    missing candidate score column is fitted as zeros."""
    return QuantileNormalizer.fit(np.nan_to_num(features.continuous, nan=0.0), n_bins, CONTINUOUS)


# ----------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankTrainConfig:
    """``objective``: "weighted" (clicks weighted by watch time, non-clicks by 1) or "plain" (clicks).
    Weights are divided by their training mean (the optimum is unchanged, the step size comparable).
    ``weight_decay``: Adam's L2 penalty on every parameter (it steadies the weighted objective, whose
    few long watches otherwise dominate the per-video embeddings). ``threads``: torch threads while
    training (1 is fastest for these small layers, and on a shared, loaded machine; the setting is
    restored afterwards). ``patience``: 0 trains ``epochs`` epochs; k > 0 needs validation impressions
    (:func:`train_ranker`'s ``valid``), stops after k epochs without a lower validation loss and keeps
    the best epoch's weights (``epochs`` is then the cap)."""

    objective: str = "weighted"
    epochs: int = 3
    batch_size: int = 1024
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1
    patience: int = 0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"RankTrainConfig: objective must be in {OBJECTIVES}, not {self.objective!r}")
        if int(self.patience) < 0:
            raise ValueError(f"RankTrainConfig: patience must be >= 0 (0: none), got {self.patience}")
        for name in ("epochs", "batch_size", "threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"RankTrainConfig: {name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"RankTrainConfig: lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def example_weights(clicked: Any, watch_time: Any, objective: str) -> np.ndarray:
    """Per-impression loss weights (n,) float64: watch time for clicked impressions and 1 for the rest
    (``"weighted"``), or all 1 (``"plain"``)."""
    clicked = np.asarray(clicked, dtype=bool)
    watch_time = np.asarray(watch_time, dtype=np.float64)
    if clicked.shape != watch_time.shape:
        raise ValueError(f"example_weights: clicked {clicked.shape} and watch_time {watch_time.shape} differ")
    if objective == "plain":
        return np.ones(clicked.shape)
    if objective != "weighted":
        raise ValueError(f"example_weights: objective must be one of {OBJECTIVES}, got {objective!r}")
    if not np.isfinite(watch_time).all() or (watch_time < 0).any():
        raise ValueError("example_weights: watch_time must be finite and >= 0 (seconds)")
    return np.where(clicked, watch_time, 1.0)


def weighted_logistic_loss(
    logits: torch.Tensor, clicked: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``mean_i w_i * BCE(z_i, y_i)``, ``BCE(z, y) = -y log sigmoid(z) - (1 - y) log(1 - sigmoid(z))``.

    logits, clicked, weights (B,) -> scalar (an unbiased mini-batch estimate of the weighted loss).
    """
    if not (logits.shape == clicked.shape == weights.shape) or logits.ndim != 1:
        raise ValueError(f"weighted_logistic_loss: logits {tuple(logits.shape)}, clicked "
                         f"{tuple(clicked.shape)} and weights {tuple(weights.shape)} must be (B,) each")
    per = F.binary_cross_entropy_with_logits(logits, clicked.to(logits.dtype), reduction="none")  # (B,)
    return (weights * per).mean()


@dataclass
class RankHistory:
    """Per-epoch records (epoch, loss, seconds, examples_per_s, and ``val_loss`` with validation
    impressions); ``best_epoch``: the epoch whose weights the model kept (the last without early stopping)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1

    @property
    def best_val_loss(self) -> float:
        """The lowest validation loss of any epoch (NaN when there was no validation)."""
        losses = [e["val_loss"] for e in self.epochs if "val_loss" in e]
        return float(min(losses)) if losses else float("nan")


def train_ranker(model: RankingModel, inputs: RankingInputs, config: RankTrainConfig = RankTrainConfig(),
                 progress: bool = True, valid: RankingInputs | None = None) -> RankHistory:
    """Train ``model`` in place on the impressions of ``inputs`` with ``config.objective``.

    The output bias starts at the log of the weighted odds (sum of positive weights / sum of negative
    weights), the model's answer before it has learnt anything. Deterministic for ``config.seed``.
    ``valid``: impressions on which the objective's loss is measured after every epoch (weights divided
    by the training mean, as in training); with ``config.patience`` > 0 training stops early on it and
    the best epoch's weights are kept.
    """
    f = inputs.features
    if len(f) == 0:
        raise ValueError("train_ranker: no training impressions")
    if inputs.spec != model.spec:
        raise ValueError("train_ranker: the inputs were made with another RankingSpec than the model's")
    if not f.clicked.any() or f.clicked.all():
        raise ValueError("train_ranker: the training impressions need both clicked and unclicked ones")
    w = example_weights(f.clicked, f.watch_time, config.objective)
    if w[f.clicked].sum() <= 0:
        raise ValueError("train_ranker: the clicked impressions carry no watch time; use objective='plain'")
    if config.patience and (valid is None or len(valid) == 0):
        raise ValueError("train_ranker: early stopping (patience > 0) needs validation impressions (valid=)")
    if valid is not None and valid.spec != model.spec:
        raise ValueError("train_ranker: the validation inputs were made with another RankingSpec")
    with torch.no_grad():
        model.head.bias.fill_(float(np.log(w[f.clicked].sum() / w[~f.clicked].sum())))
    w_t = torch.from_numpy((w / w.mean()).astype(np.float32))
    y_t = torch.from_numpy(np.require(f.clicked, requirements="W"))  # a cached array is read-only
    opts = [torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)]
    rng = np.random.default_rng(config.seed)
    hist = RankHistory()
    model.train()
    bar = tqdm(range(config.epochs), desc=f"train ranker ({config.objective})", disable=not progress)
    best, best_epoch, best_state = np.inf, -1, None
    with limit_threads(config.threads, blas=False):
        for epoch in bar:
            record = _train_epoch(model, inputs, y_t, w_t, opts, rng, config, epoch)
            hist.epochs.append(record)
            if valid is not None:
                record["val_loss"] = validation_loss(model, valid, config.objective, float(w.mean()))
                model.train()
                if record["val_loss"] < best:  # keep this epoch's weights
                    best, best_epoch = record["val_loss"], epoch
                    best_state = copy.deepcopy(model.state_dict())
            bar.set_postfix({k: f"{record[k]:.4f}" for k in ("loss", "val_loss") if k in record})
            if config.patience and epoch - best_epoch >= config.patience:
                break
    keep_best = bool(config.patience) and best_state is not None
    if keep_best:
        model.load_state_dict(best_state)
    hist.best_epoch = best_epoch if keep_best else len(hist.epochs) - 1
    model.eval()
    return hist


def train_to_convergence(make_model: Callable[[], RankingModel], inputs: RankingInputs, valid: RankingInputs,
                         objective: str, lrs: Sequence[float], *, max_epochs: int = 30, patience: int = 3,
                         seed: int = 0) -> tuple[RankingModel, RankHistory, float, dict[float, float]]:
    """For each learning rate of ``lrs``, a fresh ``make_model()`` trained on ``inputs`` with ``objective``
    and early stopping on ``valid`` (:func:`train_ranker`: ``patience`` epochs, at most ``max_epochs``);
    the one with the lowest validation loss wins. Returns ``(model, its history, its rate, {rate: best
    validation loss})``."""
    if not lrs:
        raise ValueError("train_to_convergence: give at least one learning rate")
    if patience < 1:
        raise ValueError(f"train_to_convergence: patience must be >= 1, got {patience}")
    best: tuple[RankingModel, RankHistory, float] | None = None
    losses: dict[float, float] = {}
    for lr in lrs:
        model = make_model()
        config = RankTrainConfig(objective=objective, epochs=max_epochs, lr=float(lr), seed=seed,
                                 patience=patience)
        hist = train_ranker(model, inputs, config, progress=False, valid=valid)
        losses[float(lr)] = hist.best_val_loss
        if best is None or losses[float(lr)] < losses[best[2]]:
            best = (model, hist, float(lr))
    return (*best, losses)


@torch.no_grad()
def validation_loss(model: RankingModel, valid: RankingInputs, objective: str, weight_scale: float,
                    batch_size: int = 8192) -> float:
    """The ``objective``'s weighted logistic loss over the impressions of ``valid``, each weight divided by
    ``weight_scale`` (the training mean weight): a float, lower is better."""
    f = valid.features
    w = example_weights(f.clicked, f.watch_time, objective) / weight_scale  # (n,)
    z = torch.from_numpy(predict_logits(model, valid, batch_size).astype(np.float32))  # (n,)
    loss = weighted_logistic_loss(z, torch.from_numpy(np.asarray(f.clicked, dtype=bool).copy()),
                                  torch.from_numpy(w.astype(np.float32)))
    return float(loss)


def _train_epoch(model: RankingModel, inputs: RankingInputs, y_t: torch.Tensor, w_t: torch.Tensor,
                 opts: list[torch.optim.Optimizer], rng: np.random.Generator, config: RankTrainConfig,
                 epoch: int) -> dict[str, float]:
    """One pass over the shuffled impressions; returns the epoch's record."""
    t0, total, n_batches = time.perf_counter(), 0.0, 0
    order = rng.permutation(len(inputs))
    for start in range(0, len(order), config.batch_size):
        idx = order[start : start + config.batch_size]
        loss = weighted_logistic_loss(model(inputs.batch(idx)), y_t[idx], w_t[idx])
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in opts:
            opt.step()
        total, n_batches = total + loss.item(), n_batches + 1
    secs = time.perf_counter() - t0
    return {"epoch": epoch, "loss": total / n_batches, "seconds": secs, "examples_per_s": len(order) / secs}


@torch.no_grad()
def predict_logits(model: RankingModel, inputs: RankingInputs, batch_size: int = 8192,
                   threads: int = 1) -> np.ndarray:
    """The model's logit of every impression: (n,) float64. For the weighted model ``exp(logit)`` is the
    predicted expected watch time (s); for the plain model ``sigmoid(logit)`` is the click probability."""
    if inputs.spec != model.spec:
        raise ValueError("predict_logits: the inputs were made with another RankingSpec than the model's")
    was_training = model.training
    model.eval()
    out = np.empty(len(inputs), dtype=np.float64)
    with limit_threads(threads, blas=False):
        for s in range(0, len(inputs), batch_size):
            idx = np.arange(s, min(s + batch_size, len(inputs)))
            out[idx] = model(inputs.batch(idx)).double().numpy()
    model.train(was_training)
    return out


# ----------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------


def _rank_within_groups(groups: Any, scores: Any, gains: Any, where: str
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated (gid (n,), n_groups as uniq, order (n,), rank (n,), gains (n,)): ``order`` sorts by
    group then best score first (ties by input position), ``rank[i]`` is row ``order[i]``'s position."""
    groups, scores, gains = np.asarray(groups), np.asarray(scores, np.float64), np.asarray(gains, np.float64)
    if not (groups.shape == scores.shape == gains.shape) or groups.ndim != 1:
        raise ValueError(f"{where}: groups, scores and gains must be 1-D arrays of the same length")
    if not np.isfinite(scores).all() or not np.isfinite(gains).all() or (gains < 0).any():
        raise ValueError(f"{where}: scores must be finite and gains finite and >= 0")
    uniq, gid = np.unique(groups, return_inverse=True)
    order = np.lexsort((np.arange(len(scores)), -scores, gid))  # by group, best score first
    start = np.searchsorted(gid[order], np.arange(len(uniq)))
    rank = np.arange(len(order)) - start[gid[order]]  # (n,) position within the group
    if not (gains > 0).any():
        raise ValueError(f"{where}: no group has a positive gain")
    return gid, uniq, order, rank, gains


def ndcg_within_groups(groups: Any, scores: Any, gains: Any, k: int = 10) -> float:
    """Mean NDCG@k of ranking each group's impressions by ``scores``, with ``gains`` (e.g. watch time).

    groups (n,) ids (e.g. users), scores (n,) float, gains (n,) >= 0 -> float. Groups whose gains are
    all zero have no ideal ranking and are left out. Ties are broken by position in the input.
    Computed with :func:`ytrec_lib.metrics.ndcg_at_k` (impressions as items, gains as relevance).
    """
    gid, uniq, order, rank, gains = _rank_within_groups(groups, scores, gains, "ndcg_within_groups")
    top = rank < k
    ranked = np.full((len(uniq), k), -1, dtype=np.int64)
    ranked[gid[order][top], rank[top]] = order[top]  # impression indices as item ids
    positive = gains > 0
    has = np.bincount(gid, weights=positive, minlength=len(uniq)) > 0
    rel = sp.csr_matrix((gains[positive], (gid[positive], np.flatnonzero(positive))),
                        shape=(len(uniq), len(gains)))
    return float(metrics.ndcg_at_k(ranked[has], rel[has], k))


def dcg_within_groups(groups: Any, scores: Any, gains: Any, k: int = 10) -> float:
    """Mean (unnormalised) DCG@k = sum over the top k of ``gain / log2(rank + 2)``, over the groups with
    a positive gain (the groups of :func:`ndcg_within_groups`). Same shapes; linear in the gains, so its
    expectation is maximised by ranking on the expected gain."""
    gid, uniq, order, rank, gains = _rank_within_groups(groups, scores, gains, "dcg_within_groups")
    top = rank < k
    dcg = np.bincount(gid[order][top], weights=gains[order][top] / np.log2(rank[top] + 2.0),
                      minlength=len(uniq))  # (G,)
    has = np.bincount(gid, weights=gains > 0, minlength=len(uniq)) > 0
    return float(dcg[has].mean())


def evaluate_scores(features: ImpressionFeatures, scores: Any, expected_watch: Any = None,
                    k: int = 10) -> dict[str, float]:
    """Ranking quality of ``scores`` (n,) on the impressions of ``features`` (the test period):

    ``auc``; ``gauc`` (AUC within each user, impression-weighted); ``wpul`` (the paper's weighted
    per-user loss over (clicked, unclicked) pairs of the same user and page, lower is better);
    ``ndcg@k_realised_watch`` and ``dcg@k_realised_watch`` (within each user's impressions, gains =
    realised watch time); with ``expected_watch`` (n,) (the true expected watch time of each impression,
    simulator only) also ``ndcg@k_expected_watch`` (the same ranking scored on noise-free gains).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(features),):
        raise ValueError(f"evaluate_scores: need one score per impression ({len(features)}), "
                         f"got shape {scores.shape}")
    f = features
    out = {
        "auc": metrics.auc(f.clicked, scores),
        "gauc": metrics.grouped_auc(f.users, f.clicked, scores),
        "wpul": metrics.weighted_per_user_loss(f.users, f.sessions, f.clicked, f.watch_time, scores),
        f"ndcg@{k}_realised_watch": ndcg_within_groups(f.users, scores, f.watch_time, k),
        f"dcg@{k}_realised_watch": dcg_within_groups(f.users, scores, f.watch_time, k),
    }
    if expected_watch is not None:
        expected_watch = np.asarray(expected_watch, dtype=np.float64)
        if expected_watch.shape != scores.shape:
            raise ValueError(f"evaluate_scores: expected_watch needs one value per impression ({len(f)})")
        out[f"ndcg@{k}_expected_watch"] = ndcg_within_groups(f.users, scores, expected_watch, k)
    return out


def calibration_table(predicted: Any, truth: Any, n_bins: int = 10) -> pd.DataFrame:
    """Bins of equal count by ``predicted`` (n,): mean predicted and mean true value per bin (a
    reliability table; a calibrated model has the two equal)."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    if predicted.shape != truth.shape or predicted.ndim != 1 or len(predicted) < n_bins:
        raise ValueError(f"calibration_table: need two 1-D arrays of equal length >= n_bins ({n_bins})")
    order = np.argsort(predicted, kind="stable")
    bins = np.empty(len(order), dtype=np.int64)
    bins[order] = np.arange(len(order)) * n_bins // len(order)
    df = pd.DataFrame({"bin": bins, "predicted": predicted, "truth": truth})
    return df.groupby("bin").agg(predicted=("predicted", "mean"), truth=("truth", "mean"),
                                 n=("truth", "size")).reset_index()


# ----------------------------------------------------------------------------------------------------
# The whole pipeline: data, a trained ranker, the truth to compare with
# ----------------------------------------------------------------------------------------------------


def true_expected_watch(ds: Any, impressions: pd.DataFrame) -> np.ndarray:
    """The simulator's true expected watch time (s) of each impression as it was shown (its position
    and source): ``(n,) float64``, the noise-free version of its realised watch time."""
    return _truth_of_impressions(ds, impressions, "expected_watch_time")


def true_click_probability(ds: Any, impressions: pd.DataFrame) -> np.ndarray:
    """The simulator's true click probability of each impression as it was shown: ``(n,) float64``."""
    return _truth_of_impressions(ds, impressions, "click_probability")


def _truth_of_impressions(ds: Any, impressions: pd.DataFrame, quantity: str) -> np.ndarray:
    if getattr(ds, "truth", None) is None:
        raise ValueError(f"{quantity}: the dataset has no ground truth (real data); use the realised log")
    for column in ("user_id", "video_id", "time", "position", "source"):
        if column not in impressions:
            raise KeyError(f"{quantity}: the impressions table lacks {column!r}")
    out = np.empty(len(impressions), dtype=np.float64)
    source = impressions["source"].astype(str).to_numpy()
    fn = getattr(ds.truth, quantity)
    for name in np.unique(source):
        m = source == name
        rows = impressions[m]
        out[m] = fn(rows["user_id"].to_numpy(), rows["video_id"].to_numpy(), rows["time"].to_numpy(),
                    rows["position"].to_numpy(), str(name))
    return out


@dataclass
class RankingData:
    """Everything the experiments share: the split, the features of the training and test impressions,
    the normaliser fitted on the training ones, and (simulator only) the test impressions' true
    expected watch time ``test_truth`` (n_test,) float64 (None for real data)."""

    split: RankingSplit
    builder: RankingFeatureBuilder
    train: ImpressionFeatures
    test: ImpressionFeatures
    normalizer: QuantileNormalizer
    test_truth: np.ndarray | None
    candidate: tuple[Any, Any] | None = None

    def default_spec(self, powers: bool = True) -> RankingSpec:
        """Every feature group the data has (``candidate_score`` only when it was computed)."""
        spec = RankingSpec(powers=powers)
        return spec if self.train.has_candidate_score else spec.without("candidate_score")


def prepare_ranking_data(ds: Any, split: RankingSplit, candidate: tuple[Any, Any] | None = None, *,
                         n_bins: int = 1000, max_bag: int = 50, progress: bool = True) -> RankingData:
    """The features of ``split``'s training and test impressions, the normaliser fitted on the training
    ones (``n_bins`` quantiles) and, on a simulation, the test impressions' true expected watch time.

    ``split``: a :class:`ytrec_lib.data.splits.RankingSplit` (possibly a subset of its training rows);
    ``candidate``: ``(CandidateModel, FeatureBuilder)`` of the ``candidate_score`` feature, trained on
    watches before ``split.candidate_cutoff`` so its score is out-of-sample for every impression the
    ranker sees (:func:`ytrec_lib.pipeline.candidate_scorer`), or None (no such feature). Trains nothing:
    :func:`ytrec_lib.pipeline.ranking_data` splits the log and gets the scorer.
    """
    imp = ds.impressions
    rows = np.concatenate([split.train, split.test])
    frame = imp.iloc[rows]
    scores = None
    if candidate is not None:
        starts = session_start_times(imp)[rows]
        scores = candidate_scores(*candidate, frame["user_id"], frame["video_id"], starts, progress=progress)
    builder = RankingFeatureBuilder.from_dataset(ds, max_bag=max_bag)
    feats = builder.build(frame, scores, progress=progress)
    n_train = len(split.train)
    train, test = feats.subset(np.arange(n_train)), feats.subset(np.arange(n_train, len(rows)))
    truth = true_expected_watch(ds, imp.iloc[split.test]) if getattr(ds, "truth", None) is not None else None
    return RankingData(split, builder, train, test, fit_normalizer(train, n_bins), truth, candidate)


@dataclass
class Ranker:
    """A trained ranking model with the normaliser and the feature builder it needs at serving."""

    model: RankingModel
    normalizer: QuantileNormalizer
    builder: RankingFeatureBuilder
    objective: str
    history: RankHistory | None = None
    candidate: tuple[Any, Any] | None = None  # (CandidateModel, FeatureBuilder) of candidate_score
    lr: float | None = None  # the learning rate it was trained at

    @property
    def spec(self) -> RankingSpec:
        return self.model.spec

    def predict(self, features: ImpressionFeatures) -> np.ndarray:
        """Logits (n,) float64 of already built features."""
        return predict_logits(self.model, RankingInputs.make(features, self.normalizer, self.spec))

    def score(self, frame: pd.DataFrame, candidate_scores: Any = None) -> np.ndarray:
        """Logits (n,) float64 of (``user_id``, ``video_id``, ``time``[, ``source``]) rows, e.g. a user's
        candidates at request time. ``candidate_scores`` (n,): when the spec uses them and none are
        given, the candidate model the ranker was trained with scores the rows at their ``time``. For the
        weighted objective ``exp(logit)`` is the predicted expected watch time in seconds."""
        if candidate_scores is None and "candidate_score" in self.spec.groups:
            if self.candidate is None:
                raise ValueError("Ranker.score: the ranker uses candidate_score; pass candidate_scores")
            candidate_scores = candidate_scores_of(self.candidate, frame)
        return self.predict(self.builder.build(frame, candidate_scores))


def candidate_scores_of(candidate: tuple[Any, Any], frame: pd.DataFrame) -> np.ndarray:
    """:func:`candidate_scores` of the rows of ``frame`` (``user_id``, ``video_id``, ``time``)."""
    return candidate_scores(*candidate, frame["user_id"], frame["video_id"], frame["time"])


def split_by_time(features: ImpressionFeatures, valid_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(fit, valid)`` (int64) of ``features``: ``valid`` holds the latest ``valid_frac`` of
    the impressions in time (those at or after the time quantile 1 - ``valid_frac``), ``fit`` the rest:
    the validation period follows the fitting period, as the test period follows the training one."""
    if not 0.0 < valid_frac < 1.0:
        raise ValueError(f"split_by_time: valid_frac must be in (0, 1), got {valid_frac}")
    cut = np.quantile(features.times, 1.0 - valid_frac)
    valid = features.times >= cut  # (n,)
    if valid.all() or not valid.any():
        raise ValueError("split_by_time: the impressions' times do not split into two periods "
                         f"at valid_frac={valid_frac}")
    return np.flatnonzero(~valid), np.flatnonzero(valid)


def fit_ranker(data: RankingData, objective: str = "weighted", spec: RankingSpec | None = None,
               hidden: Sequence[int] = (64, 32), dim: int = 16, config: RankTrainConfig | None = None,
               progress: bool = True) -> Ranker:
    """Train a ranker on ``data.train`` (``spec`` default: :meth:`RankingData.default_spec`)."""
    spec = spec or data.default_spec()
    config = replace(config or RankTrainConfig(), objective=objective)
    tr = data.train
    model = RankingModel(tr.n_videos, tr.n_languages, spec, hidden=hidden, dim=dim, seed=config.seed)
    hist = train_ranker(model, RankingInputs.make(tr, data.normalizer, spec), config, progress=progress)
    return Ranker(model, data.normalizer, data.builder, objective, hist, data.candidate, config.lr)


def fit_converged(data: RankingData, objective: str = "weighted", spec: RankingSpec | None = None, *,
                  lrs: Sequence[float] = (1e-2, 3e-3, 1e-3), hidden: Sequence[int] = (64, 32), dim: int = 16,
                  max_epochs: int = 30, patience: int = 3, valid_frac: float = 0.1,
                  seed: int = 0) -> tuple[Ranker, dict[float, float]]:
    """A ranker trained to convergence on ``data.train``: it fits on all but the latest ``valid_frac`` of
    the training impressions (:func:`split_by_time`), which validate (:func:`train_to_convergence`: early
    stopping, the rate of ``lrs`` with the lowest validation loss). Returns ``(ranker, {rate: best
    validation loss})``. The test impressions are never looked at."""
    spec = spec or data.default_spec()
    fit_rows, valid_rows = split_by_time(data.train, valid_frac)
    fit_in = RankingInputs.make(data.train.subset(fit_rows), data.normalizer, spec)
    valid_in = RankingInputs.make(data.train.subset(valid_rows), data.normalizer, spec)
    tr = data.train
    model, hist, lr, losses = train_to_convergence(
        lambda: RankingModel(tr.n_videos, tr.n_languages, spec, hidden=hidden, dim=dim, seed=seed), fit_in,
        valid_in, objective, lrs, max_epochs=max_epochs, patience=patience, seed=seed)
    return Ranker(model, data.normalizer, data.builder, objective, hist, data.candidate, lr), losses


# ----------------------------------------------------------------------------------------------------
# The experiments of notebook 07: preset sizes, one trained-and-scored ranker, the leak demo
# ----------------------------------------------------------------------------------------------------

PRESET_LAYERS: dict[str, list[list[int]]] = {
    "tiny": [[], [16], [32, 16]],
    "ci": [[], [32], [128], [64, 32], [128, 64, 32]],
    "small": [[], [64], [256], [128, 64], [256, 128, 64]],
    "large": [[], [128], [512], [256, 128], [512, 256, 128]],
}
"""Hidden-layer sweep per preset (the paper's Table 1 in shape: 0 to 3 ReLU layers, widths scaled)."""

PRESET_MAX_TRAIN: dict[str, int | None] = {"tiny": None, "ci": None, "small": 400_000, "large": 400_000}
"""Training impressions per preset (a seeded random subset; None: all)."""

PRESET_CANDIDATE_LOSS: dict[str, str] = {"tiny": "full", "ci": "full", "small": "sampled", "large": "sampled"}
"""Softmax of the candidate model behind ``candidate_score`` per preset: a full softmax over 50,000
videos costs ~160 s an epoch at small, the sampled one ~8 s."""


def layer_name(hidden: Sequence[int]) -> str:
    """A hidden-layer configuration as a label: ``[64, 32]`` -> ``"64-32"``, ``[]`` -> ``"none"``."""
    return "-".join(str(h) for h in hidden) if hidden else "none"


def train_and_evaluate(data: RankingData, objective: str = "weighted", spec: RankingSpec | None = None, *,
                       hidden: Sequence[int] = (64, 32), dim: int = 16, epochs: int = 3, seed: int = 0,
                       lrs: Sequence[float] | None = None, patience: int = 3, valid_frac: float = 0.1
                       ) -> tuple[Ranker, np.ndarray, dict[str, float]]:
    """Train a ranker on ``data.train`` and score ``data.test``: ``epochs`` epochs at the default rate
    (:func:`fit_ranker`), or, with ``lrs``, to convergence with the rate chosen on validation
    (:func:`fit_converged`: ``epochs`` is then the cap; the chosen rate is ``ranker.lr``).

    Returns ``(ranker, logits, metrics)``: the test logits (n_test,) float64 and
    :func:`evaluate_scores` of them (with ``data.test_truth`` as the expected watch time when known).
    """
    if lrs is None:
        ranker = fit_ranker(data, objective, spec=spec, hidden=hidden, dim=dim,
                            config=RankTrainConfig(epochs=epochs, seed=seed), progress=False)
    else:
        ranker = fit_converged(data, objective, spec, lrs=lrs, hidden=hidden, dim=dim, max_epochs=epochs,
                               patience=patience, valid_frac=valid_frac, seed=seed)[0]
    logits = ranker.predict(data.test)  # (n_test,)
    return ranker, logits, evaluate_scores(data.test, logits, expected_watch=data.test_truth)


def with_leaky_candidate_score(ds: Any, data: RankingData, leaky_candidate: tuple[Any, Any],
                               n_bins: int = 1000, *, progress: bool = True) -> RankingData:
    """``data`` with a *leaky* ``candidate_score`` from ``leaky_candidate`` = ``(CandidateModel,
    FeatureBuilder)``: a candidate model trained on every watch before the test cutoff, the ranker's
    training period included (stacking leakage, for contrast; :func:`ytrec_lib.pipeline.leaky_ranking_data`).

    The training and test impressions and the truth are those of ``data``; their candidate-score column
    is replaced and the normaliser refitted on the new training features (``n_bins`` quantiles).
    """
    leaky_model = leaky_candidate
    imp = ds.impressions
    starts = session_start_times(imp)  # (n_log,)
    users, videos = imp["user_id"].to_numpy(), imp["video_id"].to_numpy()
    rows_tr, rows_te = data.split.train, data.split.test
    scores_tr = candidate_scores(*leaky_model, users[rows_tr], videos[rows_tr], starts[rows_tr],
                                 progress=progress)  # (n_train,)
    scores_te = candidate_scores(*leaky_model, users[rows_te], videos[rows_te], starts[rows_te],
                                 progress=progress)  # (n_test,)
    train, test = data.train.with_candidate_scores(scores_tr), data.test.with_candidate_scores(scores_te)
    return RankingData(data.split, data.builder, train, test, fit_normalizer(train, n_bins), data.test_truth,
                       leaky_model)


def top_rows_within_groups(groups: Any, scores: Any, k: int = 3) -> np.ndarray:
    """Row indices of the ``k`` best-scored rows of each group (e.g. each user's top impressions):
    ``groups``, ``scores`` (n,) -> (<= k * n_groups,) int64, groups ascending, best first within each."""
    groups, scores = np.asarray(groups), np.asarray(scores)
    if groups.shape != scores.shape or groups.ndim != 1:
        raise ValueError("top_rows_within_groups: groups and scores must be 1-D arrays of equal length")
    df = pd.DataFrame({"group": groups, "score": scores, "row": np.arange(len(scores))})
    ranked = df.sort_values(["group", "score"], ascending=[True, False])
    return ranked.groupby("group").head(k)["row"].to_numpy()


__all__ = [
    "NEVER_DAYS", "CONTINUOUS", "EMBEDDING_GROUPS", "ALL_GROUPS", "OBJECTIVES", "QuantileNormalizer",
    "expand_powers", "last_time_before", "count_before", "ImpressionFeatures", "RankingFeatureBuilder",
    "session_start_times", "candidate_scores", "RankingSpec", "RankingModel",
    "RankingInputs", "fit_normalizer", "RankTrainConfig", "example_weights", "weighted_logistic_loss",
    "RankHistory", "train_ranker", "validation_loss", "train_to_convergence", "split_by_time",
    "fit_converged", "predict_logits", "ndcg_within_groups", "dcg_within_groups", "evaluate_scores",
    "calibration_table",
    "true_expected_watch", "true_click_probability", "RankingData", "prepare_ranking_data", "Ranker",
    "candidate_scores_of", "fit_ranker", "PRESET_LAYERS", "PRESET_MAX_TRAIN", "PRESET_CANDIDATE_LOSS",
    "layer_name", "train_and_evaluate", "with_leaky_candidate_score", "top_rows_within_groups",
]
