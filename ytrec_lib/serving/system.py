"""The two-stage recommender of Covington et al. (RecSys 2016, Figure 2) as one working system.

One request for one user runs four timed stages:

1. **lookup** -- the user's embedding ``[u, 1]`` from the embedding store
   (:mod:`ytrec_lib.serving.store`) and the videos the user already watched (never recommended again);
2. **ann** -- the ``n_candidates`` videos with the largest inner product ``[u, 1] . [v, b]`` (the
   candidate model's logits, paper §3.2) from a retrieval index
   (:mod:`ytrec_lib.serving.retrieval`: exact, HNSW, IVF, ...; its search parameter ``efSearch`` / ``nprobe``
   can change at any time);
3. **features** -- the ranking features of every (user, candidate) pair (:mod:`ytrec_lib.models.ranking`);
4. **ranking** -- the ranker's logit of each candidate (weighted logistic regression: ``exp(logit)``
   ~ expected watch time, paper §4.2), sorted; the top ``k`` are shown.

Without a ranker (``ranker=None``: a dataset with no exposure log has no negatives to train one on)
stages 3 and 4 take no time and the first ``k`` candidates are shown, in stage-1 order.

The system serves at one moment, ``serve_time`` (days): the end of the training period. User
embeddings are computed from the history before it and written to the store; only videos uploaded
before it are in the index. A user with no history gets the embedding of their demographics alone.

:func:`ytrec_lib.pipeline.system` builds (or loads from the pipeline's caches) everything for a preset
and a seed: the candidate model, the store, the index and the ranker. Here: the recommender, the store
file it serves from (:func:`write_store`, :func:`check_store`) and the measures that score shown lists
against the simulator's true expected watch time (:func:`ndcg_true`, :func:`recall_realised`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ytrec_lib import metrics
from ytrec_lib.data.cache import (
    DamagedArtifact,
    atomic_path,
    atomic_write_text,
    file_sha256,
)
from ytrec_lib.progress import tqdm
from ytrec_lib.serving import retrieval
from ytrec_lib.serving.server import check_id, check_ids
from ytrec_lib.serving.store import EmbeddingStore

STAGES: tuple[str, ...] = ("lookup", "ann", "features", "ranking")
"""The timed stages of one request, in order (milliseconds each; ``total`` is their sum)."""

SEARCH_PARAM: dict[str, str | None] = {"hnsw": "efSearch", "ivf": "nprobe", "ivfpq": "nprobe", "exact": None,
                                       "flat": None}
"""The search-time parameter of each index kind the system supports (None: no knob)."""


# ----------------------------------------------------------------------------------------------------
# One request's answer
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    """The answer to one request.

    ``video_ids`` (k,) int64: the shown videos, best first; ``stage1_scores`` (k,) float64: their inner
    product with the user (candidate logit); ``stage2_scores`` (k,) float64: their ranker logit
    (NaN without a ranker);
    ``candidate_ids`` (c,) int64 and ``candidate_scores`` (c,) float64: every candidate in stage-1
    order; ``timings_ms``: wall-clock milliseconds per stage of :data:`STAGES`; ``cpu_ms``: the
    thread's CPU milliseconds per stage (what the request itself costs, without the waits of a CPU
    shared with other jobs).
    """

    user_id: int
    video_ids: np.ndarray
    stage1_scores: np.ndarray
    stage2_scores: np.ndarray
    candidate_ids: np.ndarray
    candidate_scores: np.ndarray
    timings_ms: dict[str, float]
    cpu_ms: dict[str, float] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        """All four stages, in milliseconds."""
        return float(sum(self.timings_ms.values()))

    def frame(self) -> pd.DataFrame:
        """The shown list as a table: ``rank``, ``video_id``, ``stage1_score``, ``stage2_score``,
        ``stage1_rank`` (the video's position in the candidate list, 1 = best)."""
        pos = {int(v): i + 1 for i, v in enumerate(self.candidate_ids)}
        return pd.DataFrame({
            "rank": np.arange(1, len(self.video_ids) + 1),
            "video_id": self.video_ids,
            "stage1_score": self.stage1_scores,
            "stage2_score": self.stage2_scores,
            "stage1_rank": [pos[int(v)] for v in self.video_ids],
        })


# ----------------------------------------------------------------------------------------------------
# The system
# ----------------------------------------------------------------------------------------------------


class TwoStageRecommender:
    """Embedding store -> ANN candidates -> ranker -> top ``k``.

    Args:
        store: the embedding store holding ``[u, 1]`` per user and ``[v, b]`` per video (active version).
        ranker: a trained :class:`ytrec_lib.models.ranking.Ranker` (its builder holds the watch log), or
            None: no second stage, the first ``k`` candidates are shown (then ``seen`` is required).
        serve_time: the moment of every request (days); features use events strictly before it.
        index_kind: a kind of :data:`SEARCH_PARAM` (``"hnsw"``, ``"ivf"``, ``"exact"``, ...).
        video_ids: the video ids the index may return (default: every stored video).
        seen: user id -> (w,) int64 videos never recommended to that user (e.g. a leave-last-out
            query's every earlier watch); default: every watch before ``serve_time`` in the ranker's log.
        index_params: build parameters for :func:`ytrec_lib.serving.retrieval.build_index`.
    """

    def __init__(self, store: EmbeddingStore, ranker: Any | None, serve_time: float, *,
                 index_kind: str = "hnsw", video_ids: Sequence[int] | np.ndarray | None = None,
                 seen: Mapping[int, np.ndarray] | None = None, **index_params: Any) -> None:
        if index_kind not in SEARCH_PARAM:
            raise ValueError(f"index_kind must be one of {sorted(SEARCH_PARAM)}, got {index_kind!r}")
        if ranker is None and seen is None:
            raise ValueError("TwoStageRecommender: without a ranker, give seen= (each user's watched "
                             "videos); the ranker's log is where they come from otherwise")
        self.store, self.ranker, self.serve_time = store, ranker, float(serve_time)
        with store.snapshot():
            self.version = store.active_version()
            if self.version is None:
                raise KeyError(f"the store {store.path!r} has no versions; write the embeddings first")
            self.n_users = int(store.version_info(self.version)["n_users"])
            ids, vectors = store.get_videos(None if video_ids is None else check_ids(video_ids, "video"),
                                            version=self.version)  # (N,), (N, m+1) float32
        self.index_ids = np.asarray(ids, dtype=np.int64)  # (N,) index row -> video id
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (N, m+1)
        self.index_kind = index_kind
        t0 = time.perf_counter()
        self.index = retrieval.build_index(index_kind, self.vectors, "ip", **index_params)
        self.build_ms = 1e3 * (time.perf_counter() - t0)
        self.features = ServingFeatures(ranker.builder, self.serve_time) if ranker is not None else None
        self.seen = None if seen is None else {int(u): np.asarray(v, np.int64) for u, v in seen.items()}

    # ------------------------------------------------------------------ settings

    @property
    def search_param(self) -> str | None:
        """The name of the index's search-time parameter (``efSearch``, ``nprobe``) or None."""
        return SEARCH_PARAM[self.index_kind]

    def set_search_param(self, value: int) -> None:
        """Set the index's search parameter (``efSearch`` for HNSW, ``nprobe`` for IVF)."""
        if self.search_param is None:
            raise ValueError(f"the {self.index_kind!r} index has no search parameter to set")
        self.index.set_params(**{self.search_param: int(value)})

    def check_user(self, user_id: Any) -> int:
        """``user_id`` as an int when it is an integer (``int`` or NumPy integer; not a bool, float or
        string) in ``0..n_users-1``; else :class:`ytrec_lib.serving.server.InvalidIdError`
        (a ValueError, and a
        KeyError) naming it and the valid range."""
        return check_id(user_id, "user", self.n_users, "this system")

    def check_users(self, user_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Many user ids checked as :meth:`check_user`, as a whole: (n,) int64; the error names the
        first bad id and its position."""
        return check_ids(user_ids, "user", self.n_users, "this system")

    def watched(self, user_id: int) -> np.ndarray:
        """Every video the user watched before ``serve_time`` (or ``seen[user_id]`` when ``seen`` was
        given; empty for a user it lacks): (w,) int64, oldest first.

        Raises :class:`ytrec_lib.serving.server.InvalidIdError` for a bad user id (see :meth:`check_user`)."""
        uid = self.check_user(user_id)
        if self.seen is not None:
            return self.seen.get(uid, np.zeros(0, np.int64))
        return self.features.watched(uid)

    # ------------------------------------------------------------------ serving

    def recommend(self, user_id: int, k: int = 10, n_candidates: int = 300) -> Recommendation:
        """The top ``k`` of ``n_candidates`` stage-1 candidates re-ranked by the ranker, each stage timed.

        Raises :class:`ytrec_lib.serving.server.InvalidIdError` (a ValueError and a KeyError)
        for a user id that
        is not an integer in ``0..n_users-1``, ValueError for k < 1 or n_candidates < k.
        """
        uid = self.check_user(user_id)
        _check_sizes(k, n_candidates)
        clock = [(time.perf_counter(), time.thread_time())]
        user = self.store.get_user(uid, self.version)  # (m+1,) float32
        seen = self.watched(uid)  # (w,)
        clock.append((time.perf_counter(), time.thread_time()))
        cand, s1 = self._candidates(user, seen, n_candidates)  # (c,), (c,)
        clock.append((time.perf_counter(), time.thread_time()))
        inputs = self._ranking_inputs(uid, cand) if self.ranker is not None else None
        clock.append((time.perf_counter(), time.thread_time()))
        s2 = self._rank(inputs) if inputs is not None else np.full(len(cand), np.nan)  # (c,)
        order = np.argsort(-s2, kind="stable")[:k] if inputs is not None else np.arange(min(k, len(cand)))
        clock.append((time.perf_counter(), time.thread_time()))
        wall = {s: 1e3 * (clock[i + 1][0] - clock[i][0]) for i, s in enumerate(STAGES)}
        cpu = {s: 1e3 * (clock[i + 1][1] - clock[i][1]) for i, s in enumerate(STAGES)}
        return Recommendation(uid, cand[order], s1[order], s2[order], cand, s1, wall, cpu)

    def _candidates(self, user: np.ndarray, seen: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` unwatched videos by inner product: ids (c,) int64, scores (c,) float64 (c <= n)."""
        want = min(n + len(seen), self.index.n)
        scores, rows = self.index.search(user[None, :], want)  # (1, want) each
        rows, scores = rows[0], scores[0].astype(np.float64)
        ok = rows >= 0
        ids = self.index_ids[np.where(ok, rows, 0)]
        keep = ok & ~np.isin(ids, seen)
        return ids[keep][:n], scores[keep][:n]

    def _ranking_inputs(self, uid: int, cand: np.ndarray) -> Any:
        from ytrec_lib.models.ranking import RankingInputs

        feats = self.features.build(uid, cand)
        return RankingInputs.make(feats, self.ranker.normalizer, self.ranker.spec)

    def _rank(self, inputs: Any) -> np.ndarray:
        from ytrec_lib.models.ranking import predict_logits

        if len(inputs) == 0:
            return np.zeros(0)
        return predict_logits(self.ranker.model, inputs)  # (c,) float64

    def recommend_many(self, user_ids: Sequence[int] | np.ndarray, k: int = 10, n_candidates: int = 300,
                       progress: bool = True) -> BatchResult:
        """Serve each user as its own request (one at a time, as a server would); see :class:`BatchResult`.

        Every id is checked before the first request (:meth:`check_users`)."""
        users = self.check_users(user_ids)
        _check_sizes(k, n_candidates)
        shown = np.full((len(users), k), -1, dtype=np.int64)  # (n, k)
        first = np.full((len(users), k), -1, dtype=np.int64)  # (n, k) stage-1 order
        n_cand = np.zeros(len(users), dtype=np.int64)
        ms = {s: np.zeros(len(users)) for s in STAGES}
        cpu = {s: np.zeros(len(users)) for s in STAGES}
        for i in tqdm(range(len(users)), desc="two-stage", disable=not progress or len(users) < 200):
            rec = self.recommend(int(users[i]), k, n_candidates)
            shown[i, : len(rec.video_ids)] = rec.video_ids
            first[i, : min(k, len(rec.candidate_ids))] = rec.candidate_ids[:k]
            n_cand[i] = len(rec.candidate_ids)
            for s in STAGES:
                ms[s][i], cpu[s][i] = rec.timings_ms[s], rec.cpu_ms[s]
        return BatchResult(users, shown, first, n_cand, ms, cpu)


class ServingFeatures:
    """The ranking features of (user, video) pairs at one moment ``serve_time``, per request in
    microseconds: :meth:`ytrec_lib.models.ranking.RankingFeatureBuilder.build` re-sorts the whole log on each
    call (right for millions of training impressions, far too slow for one request of 300), so here
    the per-key state at ``serve_time`` is computed once (sorted keys + last time / count) and each
    request only binary-searches its keys. :meth:`build` equals ``builder.build`` on the same rows.

    Args:
        builder: the ranker's :class:`ytrec_lib.models.ranking.RankingFeatureBuilder`.
        serve_time: the moment of every request (days); only events strictly before it count.
    """

    def __init__(self, builder: Any, serve_time: float) -> None:
        self.b, self.t = builder, float(serve_time)
        self.n_c, self.n_t = max(builder.n_creators, 1), max(builder.n_topics, 1)
        self._creator = _last_time_by_key(*builder.creator_key_t, self.t)
        self._topic = _last_time_by_key(*builder.topic_key_t, self.t)
        keys, times = builder.imp_key_t
        self._shown = _count_by_key(keys[times < self.t])
        log, n_users = builder.watch_log, len(builder.user_lang)
        users, at = np.arange(n_users, dtype=np.int64), np.full(n_users, self.t)
        self._bag = log.bag_bounds(users, at, builder.max_bag)  # (U,), (U,) the ranker's watch bag
        self._all = log.bag_bounds(users, at, max(len(log), 1))  # (U,), (U,) every watch before t

    def watched(self, user_id: int) -> np.ndarray:
        """Every video ``user_id`` watched before ``serve_time``: (w,) int64, oldest first.

        Raises :class:`ytrec_lib.serving.server.InvalidIdError` for an id that is not an integer user id."""
        user_id = check_id(user_id, "user", len(self._all[0]), "this log")
        log = self.b.watch_log
        b, n = int(self._all[0][user_id]), int(self._all[1][user_id])
        items = log.item[b: b + n]
        return items[items != log.pad]

    def build(self, user_id: int, videos: np.ndarray) -> Any:
        """:class:`ytrec_lib.models.ranking.ImpressionFeatures` of showing ``videos`` (c,) int64
        to ``user_id``
        on the home feed at ``serve_time`` (labels: not clicked). Raises
        :class:`ytrec_lib.serving.server.InvalidIdError` for a user or video id that is not a known
        integer id."""
        from ytrec_lib.models.ranking import NEVER_DAYS, ImpressionFeatures

        b, t = self.b, self.t
        user_id = check_id(user_id, "user", len(self._all[0]), "this log")
        v = check_ids(videos, "video", b.n_videos, "this catalogue")  # (c,)
        c = len(v)
        u = np.full(c, int(user_id), dtype=np.int64)
        last_c = _lookup(self._creator, u * self.n_c + b.creator[v], np.nan)
        last_t = _lookup(self._topic, u * self.n_t + b.topic[v], np.nan)
        prev = _lookup(self._shown, u * b.n_videos + v, 0.0)
        cont = np.column_stack([
            np.where(np.isnan(last_c), NEVER_DAYS, t - last_c),
            np.where(np.isnan(last_t), NEVER_DAYS, t - last_t),
            prev,
            np.maximum(t - b.upload[v], 0.0),
            b.duration[v],
            np.full(c, np.nan),
        ])  # (c, 6)
        n_lang = b.n_languages
        ulang, vlang = np.full(c, b.user_lang[user_id]), b.video_lang[v]
        return ImpressionFeatures(
            users=u, videos=v, times=np.full(c, t), sessions=np.full(c, -1, np.int64),
            user_language=np.where((ulang >= 0) & (ulang < n_lang), ulang, n_lang).astype(np.int64),
            video_language=np.where((vlang >= 0) & (vlang < n_lang), vlang, n_lang).astype(np.int64),
            source=np.zeros(c, np.float32), continuous=cont,
            watch_begin=np.full(c, self._bag[0][user_id]), watch_len=np.full(c, self._bag[1][user_id]),
            clicked=np.zeros(c, bool), watch_time=np.zeros(c), watch_log=b.watch_log, n_videos=b.n_videos,
            n_languages=n_lang,
        )


def _last_time_by_key(keys: np.ndarray, times: np.ndarray, before: float) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys (K,) int64 and the latest event time of each strictly before ``before``."""
    m = times < before
    keys, times = keys[m], times[m]
    order = np.lexsort((times, keys))
    keys, times = keys[order], times[order]
    last = np.r_[keys[1:] != keys[:-1], True] if len(keys) else np.zeros(0, bool)
    return keys[last], times[last]


def _count_by_key(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys (K,) int64 and how often each occurs, (K,) float64."""
    s = np.sort(keys)
    if not len(s):
        return s, np.zeros(0)
    start = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    return s[start], np.diff(np.r_[start, len(s)]).astype(np.float64)


def _lookup(table: tuple[np.ndarray, np.ndarray], q: np.ndarray, missing: float) -> np.ndarray:
    """Values of the keys ``q`` (n,) in a (sorted keys, values) table; ``missing`` where absent."""
    keys, values = table
    if not len(keys):
        return np.full(len(q), missing)
    pos = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
    return np.where(keys[pos] == q, values[pos], missing)


def _check_sizes(k: int, n_candidates: int) -> None:
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if int(n_candidates) < int(k):
        raise ValueError(f"n_candidates ({n_candidates}) must be >= k ({k}); ask for more candidates")


@dataclass
class BatchResult:
    """Many requests: ``users`` (n,) int64; ``shown`` (n, k) int64 (the two-stage lists);
    ``candidates_only`` (n, k) int64 (the first k candidates in stage-1 order); ``n_candidates`` (n,)
    int64; ``timings_ms`` stage -> (n,) float64 wall-clock ms (``total`` via :meth:`total_ms`);
    ``cpu_ms`` the same in thread CPU time."""

    users: np.ndarray
    shown: np.ndarray
    candidates_only: np.ndarray
    n_candidates: np.ndarray
    timings_ms: dict[str, np.ndarray] = field(repr=False)
    cpu_ms: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def total_ms(self, cpu: bool = False) -> np.ndarray:
        """(n,) float64 milliseconds per request (all stages; thread CPU time with ``cpu``)."""
        src = self.cpu_ms if cpu else self.timings_ms
        return np.sum([src[s] for s in STAGES], axis=0)

    def latency_summary(self, percentiles: Sequence[float] = (50, 99),
                        cpu: bool = False) -> dict[str, dict[str, float]]:
        """``{stage or "total": {"p50": ms, "p99": ms}}`` (wall clock, or thread CPU time with ``cpu``)."""
        parts = {**(self.cpu_ms if cpu else self.timings_ms), "total": self.total_ms(cpu)}
        return {s: {f"p{p:g}": float(np.percentile(v, p)) for p in percentiles} for s, v in parts.items()}


# ----------------------------------------------------------------------------------------------------
# Evaluation against the simulator's truth
# ----------------------------------------------------------------------------------------------------


def true_gains(ds: Any, users: np.ndarray, videos: np.ndarray, serve_time: float) -> np.ndarray:
    """True expected watch time (s) of showing each video to its row's user at ``serve_time``, examined
    on the home feed: users (n,), videos (n, k) int64 (-1 = nothing) -> (n, k) float64 (0 for -1)."""
    if getattr(ds, "truth", None) is None:
        raise ValueError("true_gains: the dataset has no ground truth (real data); use realised watches")
    videos = np.asarray(videos, dtype=np.int64)
    rows = np.repeat(np.asarray(users, np.int64), videos.shape[1])
    flat = videos.ravel()
    ok = flat >= 0
    out = np.zeros(flat.shape, dtype=np.float64)
    if ok.any():
        out[ok] = ds.truth.expected_watch_time(rows[ok], flat[ok], np.full(int(ok.sum()), float(serve_time)))
    return out.reshape(videos.shape)


def ideal_lists(ds: Any, users: np.ndarray, catalogue: np.ndarray, serve_time: float, k: int,
                exclude: Sequence[np.ndarray], batch: int = 64, progress: bool = False) -> np.ndarray:
    """The oracle: for each user the ``k`` catalogue videos of largest true expected watch time, never
    a watched one (``exclude``): (n, k) int64."""
    users = np.asarray(users, np.int64)
    catalogue = np.asarray(catalogue, np.int64)
    out = np.empty((len(users), k), dtype=np.int64)
    pos = np.full(int(catalogue.max()) + 1, -1, dtype=np.int64)
    pos[catalogue] = np.arange(len(catalogue))
    starts = range(0, len(users), batch)
    for s in tqdm(starts, desc="oracle", disable=not progress or len(starts) < 5):
        u = users[s: s + batch]
        g = true_gains(ds, u, np.broadcast_to(catalogue, (len(u), len(catalogue))), serve_time)  # (b, N)
        ex = [pos[e[(e < len(pos))]] for e in exclude[s: s + batch]]
        ex = [e[e >= 0] for e in ex]
        cols = metrics.top_k(g, k, exclude=ex)
        out[s: s + batch] = np.where(cols >= 0, catalogue[np.maximum(cols, 0)], -1)
    return out


def ndcg_true(ds: Any, users: np.ndarray, ranked: np.ndarray, ideal: np.ndarray, serve_time: float,
              k: int = 10) -> float:
    """Mean NDCG@k with the true expected watch time as gain: DCG of ``ranked`` (n, k) over the DCG of
    the oracle's ``ideal`` (n, k) lists (users whose ideal gain is 0 are left out)."""
    disc = 1.0 / np.log2(np.arange(2, k + 2))  # (k,)
    dcg = true_gains(ds, users, ranked[:, :k], serve_time) @ disc  # (n,)
    idcg = true_gains(ds, users, ideal[:, :k], serve_time) @ disc  # (n,)
    ok = idcg > 0
    return float(np.mean(dcg[ok] / idcg[ok])) if ok.any() else float("nan")


def realised_watches(ds: Any, users: np.ndarray, start: float) -> list[np.ndarray]:
    """The videos each user watched from ``start`` on (the test period): a list of (w_i,) int64 arrays."""
    w = ds.watches()
    w = w[w["time"].to_numpy() >= start]
    groups = w.groupby("user_id")["video_id"].apply(lambda s: np.unique(s.to_numpy(np.int64)))
    return [groups.get(int(u), np.zeros(0, np.int64)) for u in users]


def recall_realised(ranked: np.ndarray, watched: Sequence[np.ndarray], k: int = 10) -> float:
    """Mean recall@k of ``ranked`` (n, K) against each user's test-period watches (users without any
    are left out)."""
    has = np.array([len(w) > 0 for w in watched])
    if not has.any():
        return float("nan")
    rel = [w for w, h in zip(watched, has, strict=True) if h]
    return float(metrics.recall_at_k(ranked[has], rel, k))


# ----------------------------------------------------------------------------------------------------
# The embedding-store file the system serves from (ytrec_lib.pipeline builds it)
# ----------------------------------------------------------------------------------------------------


def write_store(path: Path, users: np.ndarray, videos: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write ``users`` (U, d) and ``videos`` (V, d) float32 as version ``"candidate"`` of a new store
    file at ``path``, atomically (a unique temporary file renamed into place), then its SHA-256 beside
    it (``<path>.sha256``): SQLite's own checks do not see bytes flipped inside the vectors."""
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            with EmbeddingStore(tmp) as store:  # SQLite takes the empty temporary file as a new database
                store.write_version("candidate", users, videos, meta=meta)  # closing checkpoints the WAL
        finally:
            for extra in ("-wal", "-shm"):
                Path(f"{tmp}{extra}").unlink(missing_ok=True)
    atomic_write_text(_digest_path(path), file_sha256(path))
    return path


def _digest_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".sha256")


def check_store(path: Path) -> Path:
    """``path`` when it is the store :func:`write_store` wrote (same SHA-256) and its active version is
    ``"candidate"``; ``DamagedArtifact`` if not."""
    path = Path(path)
    digest = _digest_path(path)
    if not digest.exists() or digest.read_text().strip() != file_sha256(path):
        raise DamagedArtifact(f"{path} does not match its checksum {digest.name} (altered, or cut short)")
    try:
        with EmbeddingStore(path) as store:
            active = store.active_version()
    except (ValueError, KeyError, OSError, sqlite3.Error) as err:
        first = (str(err).splitlines() or [""])[0][:200]
        why = f"{type(err).__name__}: {first}"
        raise DamagedArtifact(f"{path} is not a usable embedding store ({why})") from err
    if active != "candidate":
        raise DamagedArtifact(f"{path} has active version {active!r}, not 'candidate'")
    return path


__all__ = ["STAGES", "SEARCH_PARAM", "Recommendation", "TwoStageRecommender", "BatchResult",
           "ServingFeatures", "true_gains", "ideal_lists", "ndcg_true", "realised_watches", "recall_realised",
           "write_store", "check_store"]
