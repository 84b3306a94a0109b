"""What a dataset looks like: the statistics notebook 01 measures on the UGC world.

>>> from ytrec_lib import metrics
>>> from ytrec_lib.data import datasets, describe
>>> ds = datasets.load("tiny", seed=0, progress=False)       # doctest: +SKIP
>>> metrics.long_tail(describe.view_counts(ds))["gini"]     # doctest: +SKIP
0.57...

Every function reads the tables of a :class:`~ytrec_lib.data.datasets.Dataset` (or one of them) and
returns arrays or frames; nothing here draws (figures: :mod:`ytrec_lib.plots`) or records results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["AGE_BANDS", "AGE_EDGES", "tables_fingerprint", "view_counts", "category_interest",
           "age_bands", "consecutive_pairs", "young_shares", "by_clickbait_quintile", "fresh_watch_lift",
           "topic_flow_asymmetry", "ring_flow", "ring_flow_gender_gap", "demographic_interaction_gain",
           "tail_watch_share", "sparse_video_share", "top_watch_share", "share_uploaded_after",
           "MECHANISM_STATISTICS",
           "mechanism_statistics", "mechanism_strengths"]

AGE_EDGES = (0, 18, 25, 35, 50, 100)
"""Edges of the age bands, right-closed: (0, 18], (18, 25], ..."""
AGE_BANDS = ("<18", "18-24", "25-34", "35-49", "50+")
"""The labels of the bands between :data:`AGE_EDGES`."""


def tables_fingerprint(ds: Any) -> str:
    """SHA-256 (64 hex digits) over the contents of the four tables (users, videos, impressions,
    searches), row order included; object columns (token lists, titles) are left out. Two datasets
    with the same fingerprint hold the same numbers."""
    h = hashlib.sha256()
    for t in (ds.users, ds.videos, ds.impressions, ds.searches):
        h.update(pd.util.hash_pandas_object(t.drop(columns=[c for c in t if t[c].dtype == object]),
                                            index=False).to_numpy().tobytes())
    return h.hexdigest()


def view_counts(ds: Any) -> np.ndarray:
    """Watches per video, (n_videos,) int64, indexed by video id (0 for a video nobody watched)."""
    return np.bincount(ds.watches()["video_id"], minlength=ds.n_videos)


def category_interest(ds: Any) -> np.ndarray:
    """Each user's true interest summed per category, (n_users, n_categories) float64, from the
    truth's ``user_interests`` (n_users, n_topics) and each topic's category (a topic no video has
    counts towards category 0). Needs the simulator's ground truth."""
    cat_of_topic = (ds.videos.groupby("topic")["category"].first()
                    .reindex(range(ds.meta["n_topics"])).fillna(0))         # (n_topics,)
    interest = ds.truth.user_interests                                      # (n_users, n_topics)
    cat_interest = np.zeros((ds.n_users, ds.meta["n_categories"]))
    np.add.at(cat_interest.T, cat_of_topic.to_numpy().astype(int), interest.T)
    return cat_interest


def age_bands(age: pd.Series) -> pd.Series:
    """Ages cut into the bands :data:`AGE_BANDS` (a categorical Series, same index)."""
    return pd.cut(age, list(AGE_EDGES), labels=list(AGE_BANDS))


def consecutive_pairs(seq: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) video ids, each (n_pairs,) int, of consecutive rows of the same user in
    ``seq`` (watches sorted by ``user_id``, then in the order to pair them, e.g. by time)."""
    uu, vv = seq["user_id"].to_numpy(), seq["video_id"].to_numpy()
    same_user = uu[1:] == uu[:-1]
    return vv[:-1][same_user], vv[1:][same_user]


def young_shares(ds: Any, days: float = 7.0) -> tuple[float, float]:
    """Freshness: (share of watches that go to videos under ``days`` old, mean share of the catalogue
    under ``days`` old at the moments of those watches). The catalogue at time ``t`` is every video
    uploaded before day ``floor(t)``."""
    w = ds.watches()
    wt = w["time"].to_numpy()
    age = wt - ds.videos["upload_time"].to_numpy()[w["video_id"]]
    up_sorted = np.sort(ds.videos["upload_time"].to_numpy())
    n_avail = np.searchsorted(up_sorted, np.floor(wt), side="left")
    n_young = n_avail - np.searchsorted(up_sorted, wt - days, side="left")
    return float((age < days).mean()), float(np.mean(n_young / np.maximum(n_avail, 1)))


def by_clickbait_quintile(ds: Any) -> pd.DataFrame:
    """Per clickbait quintile of the impressed video (index 0 = least clickbait .. 4), the columns
    ``click-through`` (share of impressions clicked) and ``watched fraction`` (mean watch time over
    duration, among clicked impressions). Needs the impression log and the videos' ``clickbait``."""
    imp = ds.impressions
    q = pd.qcut(imp["video_id"].map(ds.videos["clickbait"]), 5, labels=False)
    fraction = (imp["watch_time"] / imp["video_id"].map(ds.videos["duration"])).where(imp["clicked"])
    return pd.DataFrame({"click-through": imp.groupby(q)["clicked"].mean(),
                         "watched fraction": fraction.groupby(q).mean()})


def fresh_watch_lift(ds: Any, fresh_days: float = 2.0, old_days: tuple[float, float] = (7.0, 14.0)) -> float:
    """Freshness of the watches (the world property behind the paper's Figure 4): watches a video gets
    per day in its first ``fresh_days`` days over per day between ``old_days`` (7 to 14 days old), pooled
    over the videos uploaded inside the log early enough to have lived both windows in it. 1: age does
    not matter; NaN when no video qualifies or none is watched in the later window."""
    up = ds.videos["upload_time"].to_numpy()
    t_end = float(ds.meta["t_end"])
    ok = (up >= 0) & (up <= t_end - old_days[1])                             # (n_videos,) bool
    w = ds.watches()
    v = w["video_id"].to_numpy()
    age = w["time"].to_numpy() - up[v]                                       # (n_watches,) days
    keep = ok[v]
    fresh = np.count_nonzero(keep & (age >= 0) & (age < fresh_days)) / fresh_days
    old = np.count_nonzero(keep & (age >= old_days[0]) & (age < old_days[1])) / (old_days[1] - old_days[0])
    return float(fresh / old) if old > 0 else float("nan")


def _half_flow(ds: Any, users: np.ndarray | None = None) -> np.ndarray:
    """Counts ``M[a, b]`` (n_topics, n_topics) float64 of (topic of a watch in the first half of the log,
    topic of a watch by the same user in the second half), over ``users`` (ids; None: everyone)."""
    w = ds.watches()
    if users is not None:
        w = w[w["user_id"].isin(users)]
    u, t = w["user_id"].to_numpy(), w["time"].to_numpy()
    topic = ds.videos["topic"].to_numpy()[w["video_id"].to_numpy()]
    n_t = int(ds.meta["n_topics"])
    late = t >= float(ds.meta["t_end"]) / 2
    counts = [np.zeros((ds.n_users, n_t)) for _ in range(2)]                 # (n_users, n_topics) x 2
    for half, m in zip(counts, (~late, late), strict=True):
        np.add.at(half, (u[m], topic[m]), 1.0)
    return counts[0].T @ counts[1]                                           # (n_topics, n_topics)


def topic_flow_asymmetry(ds: Any) -> float:
    """How much users' topics move one way over time (the asymmetric sequences of the paper's §3.4):
    from the counts ``M[a, b]`` of (topic of a watch in the first half of the log, topic of a watch by
    the same user in the second half), the share ``sum |M - M.T| / (2 sum M)`` of the flow that is not
    matched by a flow back. It is near 0 (finite-sample noise) when interests stand still and grows
    when they move in a shared direction. Needs a ``topic`` per video."""
    flow = _half_flow(ds)
    total = flow.sum()
    return float(np.abs(flow - flow.T).sum() / (2 * total)) if total > 0 else float("nan")


def ring_flow(ds: Any, users: np.ndarray | None = None) -> float:
    """Net flow of ``users``' (ids; None: everyone) watches one step forward round the simulator's topic
    ring, ``sum_a (M[a, a+1] - M[a+1, a]) / sum M`` with ``M`` the first-half x second-half topic counts
    of :func:`topic_flow_asymmetry`: positive when interests progress from topic ``a`` to ``a + 1``
    (``interest_progression``), about 0 when they stand still. NaN without watches in both halves."""
    flow = _half_flow(ds, users)
    total = flow.sum()
    return float((np.trace(np.roll(flow, -1, axis=1)) - np.trace(np.roll(flow, -1, axis=0))) / total) \
        if total > 0 else float("nan")


def ring_flow_gender_gap(ds: Any) -> float:
    """How much the direction of users' progression depends on their gender (the history x context
    interaction behind the paper's Figure 6 in this world, ``progression_by_gender``): :func:`ring_flow`
    of gender-1 users minus that of gender-0 users. About 0 when both genders move alike (or not at all)."""
    g = ds.users.set_index("user_id")["gender"]
    return ring_flow(ds, g.index[g == 1].to_numpy()) - ring_flow(ds, g.index[g == 0].to_numpy())


def _one_hot(codes: np.ndarray) -> np.ndarray:
    """(n,) non-negative ints -> (n, max + 1) float64 indicator columns."""
    out = np.zeros((codes.size, int(codes.max()) + 1))
    out[np.arange(codes.size), codes] = 1.0
    return out


def _heldout_r2(x: np.ndarray, y: np.ndarray, folds: np.ndarray, ridge: float = 1.0) -> float:
    """Out-of-fold R^2 of a ridge regression of ``y`` (n, k) on ``x`` (n, p), two folds (``folds`` (n,)
    bool)."""
    resid = tot = 0.0
    for test in (folds, ~folds):
        xa, ya = x[~test], y[~test]
        coef = np.linalg.solve(xa.T @ xa + ridge * np.eye(x.shape[1]), xa.T @ (ya - ya.mean(axis=0)))
        pred = ya.mean(axis=0) + x[test] @ coef
        resid += float(((y[test] - pred) ** 2).sum())
        tot += float(((y[test] - ya.mean(axis=0)) ** 2).sum())
    return 1.0 - resid / tot


def demographic_interaction_gain(ds: Any, seed: int = 0) -> dict[str, float]:
    """How much of users' tastes only interactions of demographics explain (the world property behind
    the paper's Figure 6): each user's share of watches per topic, predicted from demographics by a ridge
    regression on two random folds of the users, additive (region + age band + gender indicators)
    against with interactions (region x gender and age band x gender indicators). Returns the held-out
    ``{"r2_additive", "r2_interaction", "gain"}`` (gain = difference; about 0 or below when the tastes
    are additive). Users with a watch and a known age and gender only."""
    w = ds.watches()
    users = ds.users.set_index("user_id").loc[np.unique(w["user_id"].to_numpy())]
    users = users[users["age"].notna() & users["gender"].isin([0, 1])]
    idx = {u: i for i, u in enumerate(users.index)}
    row = w["user_id"].map(idx)
    m = row.notna().to_numpy()
    topic = ds.videos["topic"].to_numpy()[w["video_id"].to_numpy()[m]]
    y = np.zeros((len(users), int(ds.meta["n_topics"])))                  # (n_users, n_topics)
    np.add.at(y, (row.to_numpy()[m].astype(int), topic), 1.0)
    y /= y.sum(axis=1, keepdims=True)
    region = users["region"].to_numpy().astype(int)
    band = age_bands(users["age"]).cat.codes.to_numpy().astype(int)
    g = users["gender"].to_numpy().astype(int)
    additive = np.hstack([_one_hot(region), _one_hot(band), _one_hot(g)])
    n_r, n_b = int(region.max()) + 1, int(band.max()) + 1
    joint = np.hstack([_one_hot(region + n_r * g), _one_hot(band + n_b * g)])
    folds = np.random.default_rng(seed).random(len(users)) < 0.5
    r2_add, r2_int = _heldout_r2(additive, y, folds), _heldout_r2(joint, y, folds)
    return {"r2_additive": r2_add, "r2_interaction": r2_int, "gain": r2_int - r2_add}


def tail_watch_share(ds: Any, tail: float = 0.5) -> float:
    """Share of all watches that go to the ``tail`` least-watched fraction of the catalogue (the tail
    band of notebook 02, ``item2vec.popularity_bands``: the bottom ``round(tail * n_videos)`` videos by
    watch count, default 50 %). ``tail`` itself when every video is watched equally, near 0 for a
    sparse tail."""
    if not 0.0 < tail <= 1.0:
        raise ValueError(f"tail must be a fraction of the catalogue in (0, 1], got {tail!r}")
    counts = np.sort(view_counts(ds))                                        # (n_videos,) ascending
    return float(counts[: round(tail * counts.size)].sum() / max(counts.sum(), 1))


def share_uploaded_after(ds: Any, video_ids: np.ndarray, cutoff: float) -> float:
    """The share of ``video_ids`` ((n,) int64, e.g. the test labels) uploaded at or after ``cutoff`` (days):
    videos no model trained on the log before the cutoff has seen. NaN for no ids."""
    ids = np.asarray(video_ids, np.int64)
    if ids.size == 0:
        return float("nan")
    upload = ds.videos["upload_time"].to_numpy()  # (n_videos,) float64, days; row i is video i
    if ids.min() < 0 or ids.max() >= upload.size:
        raise ValueError(f"video ids must lie in [0, {upload.size}), got {ids.min()}..{ids.max()}")
    return float((upload[ids] >= cutoff).mean())


def sparse_video_share(ds: Any, min_watches: int = 5) -> float:
    """Share of the catalogue's videos watched fewer than ``min_watches`` times (default 5, word2vec's
    default ``min_count``, under which it leaves a word out): the videos a co-watch model sees too
    rarely to place well."""
    if min_watches < 1:
        raise ValueError(f"min_watches must be >= 1, got {min_watches!r}")
    return float(np.mean(view_counts(ds) < min_watches))


def top_watch_share(ds: Any, top: float = 0.1) -> float:
    """Share of all watches that go to the ``top`` most-watched fraction of the catalogue (the
    ``round(top * n_videos)`` most watched videos, at least one; default the top 10 %)."""
    if not 0.0 < top <= 1.0:
        raise ValueError(f"top must be a fraction of the catalogue in (0, 1], got {top!r}")
    counts = np.sort(view_counts(ds))[::-1]                                  # (n_videos,) descending
    return float(counts[: max(1, round(top * counts.size))].sum() / max(counts.sum(), 1))


MECHANISM_STATISTICS: dict[str, tuple[str, ...]] = {
    "freshness": ("fresh_watch_lift", "young_watch_share"),
    "sequences": ("topic_flow_asymmetry", "ring_flow"),
    "interactions": ("ring_flow_gender_gap",),
    "tails": ("tail_watch_share", "sparse_video_share", "top10pct_watch_share"),
}
"""The statistics that measure each world mechanism behind the paper's lessons, its main one first
(the keys of :func:`mechanism_statistics`): freshness (Figure 4), asymmetric sequences (§3.4), the
history x demographics interaction (Figure 6) and the sparse tail (item2vec against SVD)."""


def mechanism_statistics(ds: Any) -> dict[str, float]:
    """Every statistic of :data:`MECHANISM_STATISTICS` for one simulated world, ``{name: float}``:
    :func:`fresh_watch_lift`, ``young_watch_share`` (the watch share of :func:`young_shares` at 7 days),
    :func:`topic_flow_asymmetry`, :func:`ring_flow` (everyone), :func:`ring_flow_gender_gap`,
    :func:`tail_watch_share`, :func:`sparse_video_share` and ``top10pct_watch_share``
    (:func:`top_watch_share` at 10 %). Needs the videos' upload times and topics and the users' gender."""
    return {"fresh_watch_lift": fresh_watch_lift(ds), "young_watch_share": young_shares(ds, 7.0)[0],
            "topic_flow_asymmetry": topic_flow_asymmetry(ds), "ring_flow": ring_flow(ds),
            "ring_flow_gender_gap": ring_flow_gender_gap(ds), "tail_watch_share": tail_watch_share(ds),
            "sparse_video_share": sparse_video_share(ds), "top10pct_watch_share": top_watch_share(ds, 0.1)}


def mechanism_strengths(per_world: pd.DataFrame, off_world: Mapping[str, str]) -> pd.DataFrame:
    """Mean and standard error over seeds of every statistic of :data:`MECHANISM_STATISTICS`, in the
    worlds ``"plain"`` (:data:`~ytrec_lib.data.presets.PLAIN_WORLD`), ``"default"`` (the preset's own) and
    each mechanism's own ``off_world[mechanism]``.

    ``per_world``: one row per (world, seed, statistic) with columns ``world``, ``seed``, ``statistic``
    (a name of :func:`mechanism_statistics`) and ``value`` (float). Returns a frame indexed by
    (mechanism, statistic), in the order of :data:`MECHANISM_STATISTICS`, with float64 columns
    ``plain``, ``default``, ``off`` and their standard errors ``plain_se``, ``default_se``, ``off_se``
    (NaN with one seed; ``off`` NaN for a mechanism missing from ``off_world``)."""
    missing = sorted({"world", "seed", "statistic", "value"} - set(per_world.columns))
    if missing:
        raise ValueError(f"per_world needs the columns world, seed, statistic and value; {missing} missing")
    agg = per_world.groupby(["statistic", "world"])["value"].agg(["mean", "sem"])  # (statistic, world)
    rows = {}
    for mechanism, names in MECHANISM_STATISTICS.items():
        worlds = {"plain": "plain", "default": "default", "off": off_world.get(mechanism)}
        for name in names:
            row = {}
            for column, world in worlds.items():
                if world is not None and (name, world) not in agg.index:
                    raise ValueError(f"no rows for statistic {name!r} in world {world!r}: measure every "
                                     "world with mechanism_statistics before summarising")
                mean, se = agg.loc[(name, world)] if world is not None else (np.nan, np.nan)
                row[column], row[f"{column}_se"] = float(mean), float(se)
            rows[(mechanism, name)] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.names = ["mechanism", "statistic"]
    return out[["plain", "default", "off", "plain_se", "default_se", "off_se"]]
