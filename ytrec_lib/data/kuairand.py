"""KuaiRand (Kuaishou short videos, Gao et al., CIKM 2022) in its published layout, mapped onto the tables.

KuaiRand-Pure and KuaiRand-1K ship the same files with a suffix (``_pure`` / ``_1k``) in ``data/``:

* ``log_standard_4_08_to_4_21_<s>.csv`` and ``log_standard_4_22_to_5_08_<s>.csv`` -- the feed log of
  the platform's own policies, one row per *exposure*: ``user_id, video_id, date, hourmin, time_ms,
  is_click, is_like, is_follow, is_comment, is_forward, is_hate, long_view, play_time_ms,
  duration_ms, profile_stay_time, comment_stay_time, is_profile_enter, is_rand, tab``;
* ``log_random_4_22_to_5_08_<s>.csv`` -- the randomly exposed videos (same columns; optional here);
* ``user_features_<s>.csv`` -- ``user_id, user_active_degree, is_lowactive_period, is_live_streamer,
  is_video_author, follow_user_num, follow_user_num_range, fans_user_num, fans_user_num_range,
  friend_user_num, friend_user_num_range, register_days, register_days_range, onehot_feat0..17``;
* ``video_features_basic_<s>.csv`` -- ``video_id, author_id, video_type, upload_dt, upload_type,
  visible_status, video_duration, server_width, server_height, music_id, music_type, tag``.

Mapping (also in ``docs/real_datasets.md``): every log row is an impression; ``is_click = 1`` is a
click and ``play_time_ms / 1000`` its watch time, so ``is_click = 0`` rows are genuine
exposed-but-not-clicked impressions. Sessions are a user's rows less than 30 minutes apart. topic =
the first tag of ``tag`` (category = topic: KuaiRand publishes no tag hierarchy), creator =
``author_id``, upload time = ``upload_dt`` (videos are numbered in upload order), duration =
``video_duration``. Users have no age, gender or location (their encrypted one-hot features are kept
as extra columns).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .rawio import FileFormat, check_unique, fail_at, read_table
from .realtables import (
    day_origin,
    empty_searches,
    impressions_table,
    in_upload_order,
    observed_activity,
    real_meta,
    reindex,
)

__all__ = ["LOG_COLUMNS", "USER_COLUMNS", "VIDEO_COLUMNS", "VARIANTS", "kuairand_files", "file_formats",
           "load_kuairand"]

LOG_COLUMNS = ("user_id", "video_id", "date", "hourmin", "time_ms", "is_click", "is_like", "is_follow",
               "is_comment", "is_forward", "is_hate", "long_view", "play_time_ms", "duration_ms",
               "profile_stay_time", "comment_stay_time", "is_profile_enter", "is_rand", "tab")
USER_COLUMNS = ("user_id", "user_active_degree", "is_lowactive_period", "is_live_streamer", "is_video_author",
                "follow_user_num", "follow_user_num_range", "fans_user_num", "fans_user_num_range",
                "friend_user_num", "friend_user_num_range", "register_days", "register_days_range",
                *(f"onehot_feat{i}" for i in range(18)))
VIDEO_COLUMNS = ("video_id", "author_id", "video_type", "upload_dt", "upload_type", "visible_status",
                 "video_duration", "server_width", "server_height", "music_id", "music_type", "tag")
VARIANTS = ("pure", "1k")
_FLAGS = ("is_like", "is_follow", "is_comment", "is_forward", "is_hate", "long_view", "is_rand")
_LOG_USE = ("user_id", "video_id", "time_ms", "is_click", *_FLAGS, "play_time_ms", "duration_ms", "tab")
_USER_INT8 = ("is_lowactive_period", "is_live_streamer", "is_video_author")
_USER_FLOAT = ("follow_user_num", "fans_user_num", "friend_user_num", "register_days")
_HINT = "re-download with `python -m ytrec_lib download {name}` or restore the published file"


def kuairand_files(variant: str, include_random: bool = False) -> dict[str, str]:
    """Role -> file name of a variant (``"pure"`` or ``"1k"``): ``log_a``, ``log_b``, [``log_random``],
    ``users``, ``videos``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown KuaiRand variant {variant!r}; use one of {', '.join(VARIANTS)}")
    files = {"log_a": f"log_standard_4_08_to_4_21_{variant}.csv",
             "log_b": f"log_standard_4_22_to_5_08_{variant}.csv",
             "users": f"user_features_{variant}.csv", "videos": f"video_features_basic_{variant}.csv"}
    if include_random:
        files["log_random"] = f"log_random_4_22_to_5_08_{variant}.csv"
    return files


def file_formats(name: str) -> dict[str, FileFormat]:
    """Role (``log``, ``users``, ``videos``) -> :class:`FileFormat`."""
    hint = _HINT.format(name=name)
    required_log = {"user_id", "video_id", "time_ms", "is_click", "play_time_ms", "duration_ms"}
    log = FileFormat(LOG_COLUMNS, nullable=frozenset(set(LOG_COLUMNS) - required_log), usecols=_LOG_USE,
                     hint=hint)
    users = FileFormat(USER_COLUMNS, {c: "str" for c in USER_COLUMNS if c.endswith("_range")}
                       | {"user_active_degree": "str"},
                       nullable=frozenset(USER_COLUMNS[1:]), hint=hint)
    videos = FileFormat(VIDEO_COLUMNS, {"video_type": "str", "upload_dt": "str", "upload_type": "str",
                                        "tag": "str", **{c: "float" for c in VIDEO_COLUMNS[5:11]}},
                        nullable=frozenset(VIDEO_COLUMNS[2:]), hint=hint)
    return {"log": log, "users": users, "videos": videos}


def _read_log(path: Path, fmt: FileFormat) -> pd.DataFrame:
    """One log file, with its binary columns checked (errors name the line)."""
    log = read_table(path, fmt)
    for col in ("is_click", *_FLAGS):
        x = log[col].to_numpy(np.float64)
        fail_at(~(np.isnan(x) | (x == 0) | (x == 1)) if col != "is_click" else ~((x == 0) | (x == 1)),
                 path, fmt, f"{col} is {{value}}, expected 0 or 1", x)
    play = log["play_time_ms"].to_numpy(np.int64)
    fail_at(play < 0, path, fmt, "negative play_time_ms {value}", play)
    return log


def _first_tag(tags: pd.Series) -> np.ndarray:
    """The first tag of each ``"12,65"`` string (n,) int64, -1 when empty."""
    first = tags.fillna("").astype(str).str.split(",").str[0].str.strip()
    return pd.to_numeric(first, errors="coerce").fillna(-1).to_numpy(np.int64)


def _users(feats: pd.DataFrame, path: Path, fmt: FileFormat, log_users: np.ndarray) -> pd.DataFrame:
    """The ``users`` table: every user of the features file or the logs, by user id."""
    fid = feats["user_id"].to_numpy(np.int64)
    check_unique(fid, path, fmt, "user_id")
    uid, source = reindex(np.r_[fid, log_users])
    n = source.size
    row = np.full(n, -1, np.int64)
    row[uid[: fid.size]] = np.arange(fid.size)
    has = row >= 0
    out = pd.DataFrame({
        "user_id": np.arange(n, dtype=np.int64), "region": np.zeros(n, np.int16),
        "age": np.full(n, np.nan, np.float32), "gender": np.full(n, -1, np.int8),
        "language": np.zeros(n, np.int16), "activity": np.zeros(n, np.float32), "source_id": source,
        "has_features": has,
    })
    degree = np.full(n, "UNKNOWN", dtype=object)
    degree[has] = feats["user_active_degree"].fillna("UNKNOWN").astype(str).to_numpy()[row[has]]
    out["user_active_degree"] = pd.Categorical(degree)
    for col in (*_USER_INT8, *(f"onehot_feat{i}" for i in range(18))):
        vals = np.full(n, -1, np.int64)
        vals[has] = np.nan_to_num(feats[col].to_numpy(np.float64)[row[has]], nan=-1).astype(np.int64)
        out[col] = vals.astype(np.int8 if col in _USER_INT8 else np.int16)
    for col in _USER_FLOAT:
        vals = np.full(n, np.nan)
        vals[has] = feats[col].to_numpy(np.float64)[row[has]]
        out[col] = vals.astype(np.float32)
    return out


def _videos(feats: pd.DataFrame, path: Path, fmt: FileFormat, log_videos: np.ndarray,
            log_first_seen: np.ndarray, log_duration_s: np.ndarray, origin: float
            ) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """The ``videos`` table (every video of the features file or the logs) and the log's video ids in it."""
    fid = feats["video_id"].to_numpy(np.int64)
    check_unique(fid, path, fmt, "video_id")
    vid, source = reindex(np.r_[fid, log_videos])
    n = source.size
    row = np.full(n, -1, np.int64)
    row[vid[: fid.size]] = np.arange(fid.size)
    has = row >= 0
    log_vid = vid[fid.size:]
    # upload time: upload_dt (a date) as days since the log's origin; else the first exposure
    upload_raw = feats["upload_dt"]
    parsed = pd.to_datetime(upload_raw, format="%Y-%m-%d", errors="coerce", utc=True)
    bad = parsed.isna().to_numpy() & upload_raw.notna().to_numpy()
    fail_at(bad, path, fmt, "upload_dt {value!r} is not a date YYYY-MM-DD", upload_raw.to_numpy())
    first_seen = np.full(n, np.inf)
    np.minimum.at(first_seen, log_vid, log_first_seen)
    upload = np.where(np.isinf(first_seen), 0.0, first_seen)
    seconds = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(np.float64)   # NaN for NaT
    feat_upload = (seconds - origin) / 86400.0
    upload[has] = np.where(np.isnan(feat_upload[row[has]]), upload[has], feat_upload[row[has]])
    # duration: video_duration (ms), else the log's duration_ms, else the median
    dur_sum = np.bincount(log_vid, weights=log_duration_s, minlength=n)
    dur_n = np.bincount(log_vid, minlength=n)
    dur = np.where(dur_n > 0, dur_sum / np.maximum(dur_n, 1), np.nan)
    feat_dur = feats["video_duration"].to_numpy(np.float64) / 1000.0
    dur[has] = np.where(np.isnan(feat_dur[row[has]]), dur[has], feat_dur[row[has]])
    dur = np.where(np.isnan(dur), np.nanmedian(dur) if np.isfinite(dur).any() else 0.0, dur)
    # creator: author_id; a video without one is its own creator
    author = np.full(n, -1, np.int64)
    author[has] = np.nan_to_num(feats["author_id"].to_numpy(np.float64), nan=-1).astype(np.int64)[row[has]]
    known = author >= 0
    creator = np.empty(n, np.int64)
    creator[known], authors = reindex(author[known])
    creator[~known] = authors.size + np.arange(int((~known).sum()))
    # topic: the first tag (category = topic)
    tag = np.full(n, -1, np.int64)
    tag[has] = _first_tag(feats["tag"])[row[has]]
    topic, tag_values = reindex(tag)
    topic_names = [f"tag {t}" if t >= 0 else "no tag" for t in tag_values]

    def text(col: str) -> np.ndarray:
        vals = np.full(n, "", dtype=object)
        vals[has] = feats[col].fillna("").astype(str).to_numpy()[row[has]]
        return vals

    videos = pd.DataFrame({
        "video_id": np.arange(n, dtype=np.int64), "creator_id": creator.astype(np.int32),
        "topic": topic.astype(np.int16), "category": topic.astype(np.int16), "upload_time": upload,
        "duration": dur.astype(np.float32), "language": np.zeros(n, np.int16),
        "quality": np.full(n, np.nan, np.float32), "clickbait": np.full(n, np.nan, np.float32),
        "series_id": np.full(n, -1, np.int32), "episode": np.full(n, -1, np.int16),
        "title_tokens": _empty_token_lists(n), "source_id": source, "has_features": has,
        "video_type": pd.Categorical(text("video_type")), "upload_type": pd.Categorical(text("upload_type")),
        "tags": text("tag"),
    })
    meta = dict(n_topics=len(topic_names), n_categories=len(topic_names), topic_names=topic_names,
                category_names=topic_names, n_videos_without_features=int((~has).sum()))
    return videos, log_vid, meta


def _empty_token_lists(n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = [np.zeros(0, np.int32) for _ in range(n)]
    return out


def load_kuairand(folder: str | Path, name: str = "kuairand-pure", *, variant: str = "pure",
                  include_random: bool = False, progress: bool = True) -> dict[str, Any]:
    """Read a KuaiRand ``data/`` folder -> the fields of a ``Dataset`` (impressions with real exposures).

    ``include_random`` adds the randomly exposed rows of ``log_random_4_22_to_5_08_<variant>.csv``
    (marked ``is_rand``); by default only the two standard logs are read.
    """
    from ytrec_lib.progress import tqdm

    folder = Path(folder)
    files = kuairand_files(variant, include_random)
    fmts = file_formats(name)
    log_roles = [r for r in ("log_a", "log_b", "log_random") if r in files]
    logs = [_read_log(folder / files[r], fmts["log"])
            for r in tqdm(log_roles, desc=f"reading {name} logs", disable=not progress, leave=False)]
    log = pd.concat(logs, ignore_index=True)
    ms = log["time_ms"].to_numpy(np.int64)
    origin = day_origin(ms / 1000.0)
    t = (ms / 1000.0 - origin) / 86400.0                                 # (n,) days
    user_feats = read_table(folder / files["users"], fmts["users"])
    video_feats = read_table(folder / files["videos"], fmts["videos"])
    users = _users(user_feats, folder / files["users"], fmts["users"], log["user_id"].to_numpy(np.int64))
    u, _ = reindex(log["user_id"].to_numpy(np.int64), users["source_id"].to_numpy())
    videos, v, vmeta = _videos(video_feats, folder / files["videos"], fmts["videos"],
                               log["video_id"].to_numpy(np.int64), t,
                               log["duration_ms"].to_numpy(np.float64) / 1000.0, origin)
    videos, new_id = in_upload_order(videos)
    v = new_id[v]
    clicked = log["is_click"].to_numpy(np.int64) == 1
    play = log["play_time_ms"].to_numpy(np.float64) / 1000.0
    extra = {"play_time": play.astype(np.float32),
             **{c: np.nan_to_num(log[c].to_numpy(np.float64)) == 1 for c in _FLAGS},
             "tab": np.nan_to_num(log["tab"].to_numpy(np.float64), nan=-1).astype(np.int8)}
    imp = impressions_table(u, v, t, clicked, play, extra=extra)
    users["activity"] = observed_activity(imp["user_id"].to_numpy(), imp["clicked"].to_numpy(), len(users))
    reasons = {
        "searches": f"{name} (KuaiRand) has no search log",
        "truth": f"{name} is real data: there is no ground truth (no oracle)",
        "demographics": f"{name} (KuaiRand) publishes no age, gender or location (its user features are "
                        "encrypted one-hot codes, kept as the extra columns onehot_feat0..17)",
    }
    meta = real_meta(
        name, n_users=len(users), n_videos=len(videos), n_topics=vmeta["n_topics"],
        n_categories=vmeta["n_categories"], n_regions=1, n_languages=1, n_tokens=0,
        t_end=float(np.floor(t.max()) + 1.0) if t.size else 1.0, origin=origin, has_impressions=True,
        has_demographics=False, skip_reasons=reasons, release=f"KuaiRand-{variant}",
        include_random=bool(include_random), topic_names=vmeta["topic_names"],
        category_names=vmeta["category_names"], region_names=["unknown"],
        n_users_without_features=int((~users["has_features"]).sum()),
        n_videos_without_features=vmeta["n_videos_without_features"],
        watch_time_rule="watch_time = play_time_ms / 1000 on rows with is_click = 1 (else 0; the raw play "
                        "time of every row is in the extra column play_time)",
    )
    return dict(users=users, videos=videos, impressions=imp, searches=empty_searches(), meta=meta, truth=None)
