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
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["AGE_BANDS", "AGE_EDGES", "tables_fingerprint", "view_counts", "category_interest",
           "age_bands", "consecutive_pairs", "young_shares", "by_clickbait_quintile"]

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
