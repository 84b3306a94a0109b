"""Readable names for what the tables hold as numbers: video titles, topics, regions, ages, durations.

A real dataset that publishes titles (MovieLens's ``title`` column) shows them as they are. The
simulator's videos have no text, so each gets a title built from what it is: its topic, its creator and
its place in the creator's uploads, e.g. ``"Topic 7 · Creator 541 · Ep. 3"`` (episode 3 of a series) or
``"Topic 7 · Creator 541 · Video 12"`` (the creator's 12th upload). Topic and region names come from
``meta["topic_names"]`` / ``meta["region_names"]`` when the dataset has them, else ``"Topic 7"`` /
``"Region 4"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

SEP = " · "


def _name(names: Any, i: Any, fallback: str) -> str:
    """``names[i]`` when ``i`` is a valid index of the list ``names``, else ``f"{fallback} {i}"``."""
    if i is None or (isinstance(i, float) and math.isnan(i)):
        return "unknown"
    j = int(i)
    if names is not None and 0 <= j < len(names):
        return str(names[j])
    return f"{fallback} {j}"


def topic_name(topic: Any, meta: Mapping[str, Any]) -> str:
    """The name of topic id ``topic``: ``meta["topic_names"][topic]`` or ``"Topic 7"``."""
    return _name(meta.get("topic_names"), topic, "Topic")


def region_name(region: Any, meta: Mapping[str, Any]) -> str:
    """The name of region id ``region``: ``meta["region_names"][region]`` or ``"Region 4"``."""
    return _name(meta.get("region_names"), region, "Region")


def format_age(age: Any) -> str:
    """Whole years (``30.69`` -> ``"30 years"``); ``"unknown"`` for a missing age."""
    if age is None or not np.isfinite(float(age)):
        return "unknown"
    return f"{int(float(age))} years"


def format_duration(seconds: Any) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on), rounded to the second: 754.3 -> ``"12:34"``."""
    if seconds is None or not np.isfinite(float(seconds)) or float(seconds) < 0:
        return "unknown"
    total = int(round(float(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def video_titles(videos: pd.DataFrame, meta: Mapping[str, Any]) -> pd.Series:
    """A title per video, indexed by ``video_id``.

    Args:
        videos: the ``videos`` table (``video_id``, ``creator_id``, ``topic``; optional ``title``,
            ``episode``); meta: the dataset's metadata (optional ``topic_names``).
    Returns:
        A string Series: the dataset's own ``title`` where it has a non-empty one, else the title built
        from topic, creator and episode (or the creator's upload number; video ids are in upload order).
    """
    missing = {"video_id", "creator_id", "topic"} - set(videos.columns)
    if missing:
        raise ValueError(f"video_titles: the videos table lacks the columns {sorted(missing)}")
    ids = videos["video_id"].to_numpy(np.int64)
    creators = videos["creator_id"].to_numpy(np.int64)
    order = np.argsort(ids, kind="stable")  # upload order
    upload_no = np.empty(len(ids), np.int64)
    upload_no[order] = pd.Series(creators[order]).groupby(creators[order]).cumcount().to_numpy() + 1
    episode = videos["episode"].to_numpy(np.int64) if "episode" in videos else np.full(len(ids), -1)
    topics = videos["topic"].to_numpy()
    built = [
        f"{topic_name(t, meta)}{SEP}Creator {c}{SEP}" + (f"Ep. {e + 1}" if e >= 0 else f"Video {n}")
        for t, c, e, n in zip(topics, creators, episode, upload_no, strict=True)
    ]
    titles = pd.Series(built, index=pd.Index(ids, name="video_id"), dtype=object)
    if "title" in videos:
        own = videos["title"].astype(object).to_numpy()
        has = np.array([isinstance(t, str) and t.strip() != "" for t in own], dtype=bool)
        titles[has] = own[has]
    return titles


def dataset_video_titles(dataset: Any) -> pd.Series:
    """:func:`video_titles` of a :class:`ytrec_lib.data.datasets.Dataset` (its ``videos`` and ``meta``)."""
    return video_titles(dataset.videos, dataset.meta)


def describe_user(row: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, str]:
    """A user's demographics for people: region by name, age in whole years, gender and language."""
    out: dict[str, str] = {}
    if "region" in row:
        out["region"] = region_name(row["region"], meta)
    if "age" in row:
        out["age"] = format_age(row["age"])
    if "gender" in row:
        g = int(row["gender"])
        out["gender"] = "unknown" if g < 0 else f"group {g}"
    if "language" in row:
        out["language"] = _name(meta.get("language_names"), row["language"], "Language")
    return out


__all__ = ["describe_user", "dataset_video_titles", "format_age", "format_duration", "region_name",
           "topic_name", "video_titles"]
