"""Tests of ytrec_lib.data.titles: readable video titles and formats for ages, durations, regions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ytrec_lib.data import titles as T


def _videos(**extra) -> pd.DataFrame:
    base = {"video_id": np.arange(5), "creator_id": [541, 7, 541, 541, 7], "topic": [2, 0, 2, 1, 0],
            "episode": [-1, -1, 0, 2, -1]}
    return pd.DataFrame({**base, **extra})


def test_simulated_titles_name_topic_creator_and_episode_or_upload_number():
    t = T.video_titles(_videos(), {})
    assert t.loc[0] == "Topic 2 · Creator 541 · Video 1"
    assert t.loc[2] == "Topic 2 · Creator 541 · Ep. 1"
    assert t.loc[3] == "Topic 1 · Creator 541 · Ep. 3"
    assert t.loc[4] == "Topic 0 · Creator 7 · Video 2"  # the creator's second upload


def test_topic_names_are_used_when_the_dataset_has_them():
    t = T.video_titles(_videos(), {"topic_names": ["Cooking", "Music", "Travel"]})
    assert t.loc[0] == "Travel · Creator 541 · Video 1" and t.loc[1].startswith("Cooking · ")


def test_a_real_title_column_wins_where_it_is_not_empty():
    t = T.video_titles(_videos(title=["Toy Story (1995)", "", "Heat (1995)", None, "Up"]), {})
    assert t.tolist()[:3] == ["Toy Story (1995)", "Topic 0 · Creator 7 · Video 1", "Heat (1995)"]
    assert t.loc[3] == "Topic 1 · Creator 541 · Ep. 3"


def test_titles_need_the_id_columns():
    with pytest.raises(ValueError, match="creator_id"):
        T.video_titles(pd.DataFrame({"video_id": [0], "topic": [1]}), {})


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00"), (59.6, "1:00"), (754.3, "12:34"),
                                               (3725, "1:02:05"), (float("nan"), "unknown")])
def test_durations_are_minutes_and_seconds(seconds, text):
    assert T.format_duration(seconds) == text


def test_ages_are_whole_years_and_regions_are_named():
    assert T.format_age(30.693681716918945) == "30 years" and T.format_age(np.float32("nan")) == "unknown"
    assert T.region_name(4.0, {}) == "Region 4"
    assert T.region_name(1, {"region_names": ["zip 0xxxx", "zip 1xxxx"]}) == "zip 1xxxx"
    user = pd.Series({"region": np.int16(4), "age": np.float32(30.69), "gender": np.int8(-1), "language": 2})
    assert T.describe_user(user, {}) == {"region": "Region 4", "age": "30 years", "gender": "unknown",
                                         "language": "Language 2"}


def test_simulator_dataset_gets_a_title_per_video():
    from ytrec_lib.data import datasets

    ds = datasets.load("tiny", 0, progress=False)
    t = T.dataset_video_titles(ds)
    assert len(t) == ds.n_videos and t.index.is_unique
    assert all(" · Creator " in s for s in t.iloc[:50])
