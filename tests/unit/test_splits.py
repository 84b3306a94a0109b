"""Splits and history: checked against plain pandas on the tiny preset."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ytrec_lib.data import datasets, splits
from ytrec_lib.data.presets import preset_config
from ytrec_lib.data.simulator import simulate


@pytest.fixture(scope="module")
def ds():
    return datasets.from_simulation(simulate(preset_config("tiny"), 0, name="tiny", progress=False))


def _ref_history(ds, user, time, k_w, k_t, exclude=-1):
    w = ds.watches()
    w = w[(w["user_id"] == user) & (w["time"] < time)].sort_values(["time", "session_id", "position"])
    vids = w["video_id"].to_numpy()
    vids = vids[vids != exclude][-k_w:] if k_w else vids[:0]
    s = ds.searches[(ds.searches["user_id"] == user) & (ds.searches["time"] < time)].sort_values("time")
    toks = np.concatenate([np.zeros(0, np.int32), *s["tokens"]])
    return vids, (toks[-k_t:] if k_t else toks[:0])


def test_next_watch_split_is_temporal_and_capped(ds):
    sp = splits.next_watch_split(ds, max_examples_per_user=5, valid_frac=0.25)
    w = ds.watches()
    assert sp.train_cutoff == pytest.approx(0.8 * ds.meta["t_end"])
    assert (sp.train["time"] < sp.train_cutoff).all()
    assert sp.train.groupby("user_id").size().max() <= 5
    assert (sp.test["label_time"] >= sp.train_cutoff).all() and (sp.valid["time"] >= sp.train_cutoff).all()
    assert not set(sp.test_users) & set(sp.valid_users)
    after = w[w["time"] >= sp.train_cutoff]
    assert set(sp.test_users) | set(sp.valid_users) == set(after["user_id"])
    first = after.sort_values("time").groupby("user_id").head(1).set_index("user_id")
    t = sp.test.set_index("user_id")
    assert (t["label"] == first.loc[t.index, "video_id"]).all()
    assert (t["time"] == first.loc[t.index, "time"]).all()
    # every training label really is a watch of that user at that time
    key = set(zip(w["user_id"], w["time"], w["video_id"], strict=True))
    assert all(k in key for k in zip(sp.train["user_id"], sp.train["time"], sp.train["label"], strict=True))
    # deterministic
    again = splits.next_watch_split(ds, max_examples_per_user=5, valid_frac=0.25)
    assert again.train.equals(sp.train) and again.test.equals(sp.test)


def test_uncapped_train_keeps_every_watch_before_the_cutoff(ds):
    sp = splits.next_watch_split(ds, max_examples_per_user=None, train_cutoff=9.0)
    w = ds.watches()
    assert len(sp.train) == int((w["time"] < 9.0).sum())


def test_several_next_watches(ds):
    sp = splits.next_watch_split(ds, n_next=3)
    g = sp.test.groupby("user_id")
    assert g.size().max() <= 3
    assert (g["time"].nunique() == 1).all(), "all labels of a user share the query time"
    assert (sp.test["label_time"] >= sp.test["time"]).all()


def test_heldout_split_has_the_same_labels_but_the_cutoff_as_time(ds):
    nw = splits.next_watch_split(ds)
    ho = splits.heldout_watch_split(ds)
    assert ho.exclude_label and not nw.exclude_label
    assert np.array_equal(ho.train["label"], nw.train["label"])
    assert (ho.train["time"] == ho.train_cutoff).all()
    assert ho.test.equals(nw.test)
    h = splits.history(ds, ho.train["user_id"], ho.train["time"], exclude=ho.train["label"])
    rows = np.repeat(np.arange(len(ho.train)), h.n_watches)
    assert not (h.watch_ids == ho.train["label"].to_numpy()[rows]).any()


def test_matched_heldout_bags_hold_as_many_watches_as_the_next_watch_ones(ds):
    """The §3.4 control: each matched held-out example sees exactly as many watches as its next-watch twin
    (same label), never the label, and those are the user's latest watches before the cutoff."""
    from ytrec_lib.features import FeatureBuilder, FeatureSpec
    from ytrec_lib.models.candidate import split_examples

    nw, ho = splits.next_watch_split(ds), splits.heldout_watch_split(ds, match_context=True)
    assert ho.kind == "heldout_matched" and ho.match_context and ho.exclude_label
    assert np.array_equal(ho.train["label_time"], nw.train["time"])
    spec = FeatureSpec(max_bag=6)  # small, so that many bags are cut at the cap too
    builder = FeatureBuilder.from_dataset(ds, spec, window=(0.0, ho.train_cutoff))
    b_nw, b_ho = (split_examples(builder, s, "train").batch() for s in (nw, ho))
    np.testing.assert_array_equal(b_ho["watch_len"].numpy(), b_nw["watch_len"].numpy())
    labels, pad = ho.train["label"].to_numpy(), builder.watch_log.pad
    w = ds.watches()
    for i in np.random.default_rng(0).choice(len(labels), 80, replace=False):
        bag = b_ho["watch_ids"][i, : int(b_ho["watch_len"][i])].numpy()
        assert labels[i] not in bag and pad not in bag
        u = ho.train["user_id"].iloc[i]
        before = w[(w["user_id"] == u) & (w["time"] < ho.train_cutoff)].sort_values("time")["video_id"]
        others = [v for v in before.to_numpy() if v != labels[i]]
        latest = others[len(others) - len(bag):] if len(bag) else []
        assert bag.tolist() == latest, (i, bag, latest)
    with pytest.raises(ValueError, match="context_times needs exclude"):
        builder.examples(ho.train["user_id"], ho.train["time"], context_times=ho.train["label_time"])


def test_history_matches_pandas(ds):
    rng = np.random.default_rng(0)
    n = 60
    u = rng.integers(0, ds.n_users, n)
    t = rng.uniform(0, ds.meta["t_end"], n)
    ex = np.where(rng.random(n) < 0.5, rng.integers(0, ds.n_videos, n), -1)
    h = splits.history(ds, u, t, max_watches=4, max_tokens=3, exclude=ex)
    for i in range(n):
        vids, toks = _ref_history(ds, u[i], t[i], 4, 3, ex[i])
        assert h.watch_ids[h.watch_offsets[i]:h.watch_offsets[i + 1]].tolist() == vids.tolist()
        assert h.tokens[h.token_offsets[i]:h.token_offsets[i + 1]].tolist() == toks.tolist()


@given(st.integers(0, 299), st.floats(0, 14), st.integers(0, 6), st.integers(0, 6))
@settings(max_examples=40, deadline=None)
def test_history_property(ds, user, time, k_w, k_t):
    h = splits.history(ds, [user], [time], max_watches=k_w, max_tokens=k_t)
    vids, toks = _ref_history(ds, user, time, k_w, k_t)
    assert h.watch_ids.tolist() == vids.tolist() and h.tokens.tolist() == toks.tolist()
    assert h.padded_watches(k_w).shape == (1, k_w)


def test_history_is_strictly_before_the_time(ds):
    w = ds.watches()
    row = w.iloc[len(w) // 2]
    h = splits.history(ds, [row["user_id"]], [row["time"]], max_watches=1000)
    assert row["video_id"] not in h.watch_ids.tolist()
    assert (h.watch_times < row["time"]).all()
    h2 = splits.history(ds, [row["user_id"]], [np.nextafter(row["time"], np.inf)], max_watches=1000)
    assert h2.watch_ids[-1] == row["video_id"]


def test_padded_keeps_the_most_recent(ds):
    h = splits.history(ds, [0, 1, 2], [14.0, 14.0, 0.0], max_watches=20)
    P = h.padded_watches(3)
    for i in range(3):
        ids = h.watch_ids[h.watch_offsets[i]:h.watch_offsets[i + 1]][-3:]
        assert P[i, : ids.size].tolist() == ids.tolist() and (P[i, ids.size:] == -1).all()
    assert h.n_watches[2] == 0 and len(h) == 3


def test_bad_inputs(ds):
    with pytest.raises(ValueError, match="same length"):
        splits.history(ds, [0, 1], [1.0])
    with pytest.raises(KeyError, match="user ids"):
        splits.history(ds, [10**6], [1.0])
    with pytest.raises(ValueError, match="finite"):
        splits.history(ds, [0], [np.nan])
    with pytest.raises(ValueError, match="max_examples_per_user"):
        splits.next_watch_split(ds, max_examples_per_user=0)
    with pytest.raises(ValueError, match="cutoff_frac"):
        splits.next_watch_split(ds, cutoff_frac=1.5)
    with pytest.raises(ValueError, match="no watches at or after"):
        splits.next_watch_split(ds, train_cutoff=1e6)
