"""The per-user temporal leave-last-out split: exact rows on a hand-made log, invariants on tiny."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ytrec_lib.data import datasets, splits
from ytrec_lib.data.presets import preset_config
from ytrec_lib.data.realtables import impressions_table
from ytrec_lib.data.simulator import simulate
from ytrec_lib.features import FeatureBuilder, feature_set
from ytrec_lib.models.candidate import split_examples

# (user, video, time, clicked): user 0 has 4 watches, user 1 three (two tied at t=1), user 2 two
# (short), user 3 three plus an unwatched impression after its validation time, user 4 none.
EVENTS = [
    (0, 3, 1.0, True), (0, 1, 2.0, True), (0, 4, 3.0, True), (0, 2, 5.0, True),
    (1, 0, 1.0, True), (1, 2, 1.0, True), (1, 1, 4.0, True),
    (2, 5, 2.0, True), (2, 0, 3.0, True),
    (3, 5, 0.5, True), (3, 2, 6.0, True), (3, 0, 7.0, False), (3, 3, 8.0, True),
    (4, 1, 2.5, False),
]


@pytest.fixture(scope="module")
def hand() -> datasets.Dataset:
    u, v, t, c = (np.array(x) for x in zip(*EVENTS, strict=True))
    imp = impressions_table(u, v, t, c, np.ones(len(u)))
    searches = pd.DataFrame({"user_id": np.array([0, 0], np.int64), "time": [0.5, 4.0],
                             "session_id": np.array([0, 1], np.int64),
                             "tokens": pd.Series([np.array([1], np.int32), np.array([2], np.int32)],
                                                 dtype=object)})
    meta = {"name": "hand", "n_users": 5, "n_videos": 6, "n_tokens": 3, "n_regions": 1, "t_end": 9.0}
    users = pd.DataFrame({"user_id": np.arange(5)})
    videos = pd.DataFrame({"video_id": np.arange(6)})
    return datasets.Dataset(users=users, videos=videos, impressions=imp, searches=searches, meta=meta)


@pytest.fixture(scope="module")
def tiny() -> datasets.Dataset:
    return datasets.from_simulation(simulate(preset_config("tiny"), 0, name="tiny", progress=False))


def _rows(df: pd.DataFrame) -> list[tuple]:
    return [tuple(r) for r in df[["user_id", "time", "label"]].itertuples(index=False, name=None)]


def test_exact_rows_on_a_hand_made_log(hand) -> None:
    sp = splits.leave_last_out_split(hand)
    tie_first, tie_second = hand.watches().query("user_id == 1 and time == 1.0")["video_id"].tolist()
    assert _rows(sp.train) == [(0, 1.0, 3), (0, 2.0, 1), (1, 1.0, tie_first), (2, 2.0, 5), (2, 3.0, 0),
                               (3, 0.5, 5)]
    assert _rows(sp.valid) == [(0, 3.0, 4), (1, 1.0, tie_second), (3, 6.0, 2)]
    assert _rows(sp.test) == [(0, 5.0, 2), (1, 4.0, 1), (3, 8.0, 3)]
    for part in (sp.valid, sp.test):
        assert (part["label_time"] == part["time"]).all()
    assert sp.short_users.tolist() == [2]
    assert sp.kind == "leave_last_out" and not sp.exclude_label
    assert sp.train_cutoff == np.nextafter(3.0, np.inf)
    assert "short users=1" in repr(sp)


def test_held_out_history_is_every_earlier_watch(hand) -> None:
    sp = splits.leave_last_out_split(hand)
    test = splits.history(hand, sp.test["user_id"], sp.test["time"])
    assert test.watch_ids[test.watch_offsets[0]:test.watch_offsets[1]].tolist() == [3, 1, 4]  # incl. valid
    valid = splits.history(hand, sp.valid["user_id"], sp.valid["time"])
    assert valid.watch_ids[valid.watch_offsets[0]:valid.watch_offsets[1]].tolist() == [3, 1]
    assert valid.watch_ids[valid.watch_offsets[2]:valid.watch_offsets[3]].tolist() == [5]


def test_training_view_holds_no_held_out_data(hand) -> None:
    sp = splits.leave_last_out_split(hand)
    view = splits.training_view(hand, sp)
    w = view.watches()
    assert sorted(zip(w["user_id"], w["video_id"], strict=True)) == sorted(
        zip(sp.train["user_id"], sp.train["label"], strict=True))
    assert not ((view.impressions["user_id"] == 3) & (view.impressions["time"] >= 6.0)).any()
    assert (view.impressions["user_id"] == 4).sum() == 1  # a user without valid/test keeps everything
    assert view.searches["time"].tolist() == [0.5]  # user 0's search at t=4 is after its valid time
    assert view.meta["name"] == "hand-train-lastout"


def test_tiny_partition_and_order(tiny) -> None:
    sp = splits.leave_last_out_split(tiny)
    w = tiny.watches()
    n = w.groupby("user_id").size()
    assert len(sp.train) + len(sp.valid) + len(sp.test) == len(w)
    assert sp.test["user_id"].tolist() == sorted(n[n >= 3].index) == sp.valid["user_id"].tolist()
    assert sp.short_users.tolist() == sorted(n[n < 3].index)
    last_train = sp.train.groupby("user_id")["time"].max()
    v, t = sp.valid.set_index("user_id")["time"], sp.test.set_index("user_id")["time"]
    assert (t >= v).all() and (v >= last_train.reindex(v.index)).all()
    assert (sp.train["time"] < sp.train_cutoff).all()
    assert splits.training_view(tiny, sp).watches().shape[0] == len(sp.train)


def test_tiny_features_use_only_the_past(tiny) -> None:
    sp = splits.leave_last_out_split(tiny)
    builder = FeatureBuilder.from_dataset(tiny, feature_set("all"), window=(0.0, sp.train_cutoff))
    train = split_examples(builder, sp, "train")
    ages = train.batch()["dense"].numpy()
    assert len(train) == len(sp.train) and np.isfinite(ages).all()
    test = split_examples(builder, sp, "test")
    seen = test.watched_before(np.arange(len(test)))
    valid_label = sp.valid.set_index("user_id")["label"]
    for i, (user, time) in enumerate(zip(sp.test["user_id"][:20], sp.test["time"][:20], strict=True)):
        before = w_before(tiny, user, time)
        assert set(seen[i]) == before and valid_label[user] in before


def w_before(ds, user: int, time: float) -> set[int]:
    w = ds.watches()
    return set(w[(w["user_id"] == user) & (w["time"] < time)]["video_id"].tolist())
