"""Tests of ytrec_lib.features: bags strictly before the label, truncation, unknown ids, ages, example age."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ytrec_lib.features import (
    AGE_TRANSFORMS,
    FEATURE_SETS,
    EventLog,
    FeatureBuilder,
    FeatureEncoder,
    FeatureSpec,
    feature_set,
    flatten_search_tokens,
    map_unknown,
)

N_VIDEOS, N_TOKENS, N_REGIONS = 20, 10, 3


def tiny_tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Users 0..3 (user 3 has no history, user 2 a NaN age), watches and searches."""
    users = pd.DataFrame({
        "user_id": [0, 1, 2, 3],
        "region": [0, 1, 2, 7],  # 7: unknown region
        "age": [20.0, 60.0, np.nan, 40.0],
        "gender": [0, 1, -1, 1],
    })
    watches = pd.DataFrame({
        "user_id": [0, 0, 0, 1, 1, 2],
        "time": [1.0, 2.0, 3.0, 1.5, 2.5, 0.5],
        "video_id": [5, 6, 7, 8, 99, 4],  # 99 is outside the catalogue
    })
    searches = pd.DataFrame({
        "user_id": [0, 1],
        "time": [1.5, 2.0],
        "tokens": [np.array([1, 2, 3], np.int32), np.array([4, 42], np.int32)],  # 42 unknown
    })
    return users, watches, searches


def builder(spec: FeatureSpec | None = None) -> FeatureBuilder:
    users, watches, searches = tiny_tables()
    enc = FeatureEncoder.fit(users, N_VIDEOS, N_TOKENS, N_REGIONS, spec, window=(0.0, 4.0))
    return FeatureBuilder.from_tables(enc, watches, users, searches)


def bag_list(feats, idx: int, kind: str = "watch") -> list[int]:
    b = feats.batch([idx])
    n = int(b[f"{kind}_len"][0])
    return b[f"{kind}_ids"][0, :n].tolist()


def test_bags_use_only_history_strictly_before_the_time():
    f = builder().examples([0, 0, 0, 0], [0.5, 2.0, 3.0, 10.0])
    assert bag_list(f, 0) == []  # nothing before t=0.5
    assert bag_list(f, 1) == [5]  # the watch at exactly t=2.0 is the label, not history
    assert bag_list(f, 2) == [5, 6]
    assert bag_list(f, 3) == [5, 6, 7]
    assert bag_list(f, 3, "search") == [1, 2, 3]
    assert bag_list(f, 0, "search") == []


def test_unknown_ids_become_the_padding_index():
    f = builder().examples([1, 1], [3.0, 3.0])
    b = f.batch()
    assert b["watch_ids"][0].tolist() == [8, N_VIDEOS]  # 99 -> pad
    assert bag_list(f, 0, "search") == [4, N_TOKENS]  # 42 -> pad
    assert f.watched_before([0])[0].tolist() == [8]
    assert map_unknown(np.array([-1, 0, 19, 20, 1000]), 20).tolist() == [20, 0, 19, 20, 20]


def test_history_longer_than_the_bag_limit_keeps_the_most_recent():
    n = 130
    users = pd.DataFrame({"user_id": [0], "region": [0], "age": [30.0], "gender": [0]})
    watches = pd.DataFrame({"user_id": np.zeros(n, int), "time": np.arange(n, dtype=float),
                            "video_id": np.arange(n) % N_VIDEOS})
    enc = FeatureEncoder.fit(users, N_VIDEOS, N_TOKENS, N_REGIONS, window=(0.0, n))
    f = FeatureBuilder.from_tables(enc, watches, users).examples([0], [float(n)])
    b = f.batch()
    assert b["watch_ids"].shape == (1, 50)
    assert int(b["watch_len"][0]) == 50
    assert b["watch_ids"][0].tolist() == (np.arange(n - 50, n) % N_VIDEOS).tolist()
    b10 = FeatureBuilder.from_tables(enc.with_spec(FeatureSpec(max_bag=10)), watches, users)
    f10 = b10.examples([0], [100.0])
    assert f10.batch()["watch_ids"][0].tolist() == (np.arange(90, 100) % N_VIDEOS).tolist()


def test_cold_start_user_gets_empty_bags_and_demographics():
    f = builder().examples([3, 77], [5.0, 5.0])  # 3: no history; 77: not even in the users table
    b = f.batch()
    assert b["watch_len"].tolist() == [0, 0] and b["search_len"].tolist() == [0, 0]
    assert b["watch_ids"].shape == (2, 1) and (b["watch_ids"] == N_VIDEOS).all()
    assert b["region"].tolist() == [N_REGIONS, N_REGIONS]  # region 7 unknown; user 77 unknown
    names = f.spec.dense_names()
    assert b["dense"][1, names.index("age_missing")] == 1.0
    assert b["dense"][1, names.index("gender:unknown")] == 1.0
    assert torch.isfinite(b["dense"]).all()


def test_nan_age_is_imputed_with_the_median_and_flagged():
    spec = FeatureSpec(age_transforms=("age", "age2", "sqrt", "log", "exp"))
    f = builder(spec).examples([0, 1, 2], [9, 9, 9])
    names = f.spec.dense_names()
    d = f.batch()["dense"].numpy()
    assert d.shape == (3, f.spec.n_dense) and np.isfinite(d).all()
    assert d[:, names.index("age_missing")].tolist() == [0.0, 0.0, 1.0]
    ages = np.array([20.0, 60.0, 40.0])  # known ages; scaled over [20, 60]
    expected_fill = (np.median(ages) - 20) / 40
    assert d[2, names.index("age:age")] == pytest.approx(expected_fill)
    assert d[0, names.index("age:age")] == 0.0 and d[1, names.index("age:age")] == 1.0
    x = d[:, names.index("age:age")].astype(np.float64)
    for t in ("age2", "sqrt", "log", "exp"):
        np.testing.assert_allclose(d[:, names.index(f"age:{t}")], AGE_TRANSFORMS[t](x), rtol=1e-6)
    assert ((d >= 0) & (d <= 1)).all()
    assert d[:, names.index("gender:female")].tolist() == [1.0, 0.0, 0.0]


def test_example_age_in_training_and_zero_at_serving():
    b = builder()
    train = b.examples([0, 0], [1.0, 3.0], window_end=4.0).batch()["dense"][:, -1]
    serve = b.examples([0, 0], [1.0, 3.0]).batch()["dense"][:, -1]
    np.testing.assert_allclose(train.numpy(), [3.0 / 4.0, 1.0 / 4.0])
    assert serve.tolist() == [0.0, 0.0]


def test_feature_sets_switch_groups_off():
    assert list(FEATURE_SETS) == ["watches", "watches+searches", "watches+searches+example_age", "all"]
    w = builder(feature_set("watches")).examples([0], [10.0])
    assert w.spec.n_dense == 0 and w.batch()["dense"].shape == (1, 0)
    assert int(w.batch()["search_len"][0]) == 0  # searches off: empty bag
    assert feature_set("watches+searches+example_age").n_dense == 1
    assert FeatureSpec().n_dense == 3 + 1 + 3 + 1
    with pytest.raises(KeyError, match="unknown feature set"):
        feature_set("nope")
    with pytest.raises(ValueError, match="unknown age transform"):
        FeatureSpec(age_transforms=("age", "cube"))
    with pytest.raises(ValueError, match="max_bag"):
        FeatureSpec(max_bag=0)


def test_spec_and_encoder_round_trip_through_dicts():
    spec = FeatureSpec(searches=False, age_transforms=("log",), max_bag=7)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    enc = builder(spec).encoder
    assert FeatureEncoder.from_dict(enc.to_dict()) == enc


def test_bad_example_input_gives_clear_errors():
    b = builder()
    with pytest.raises(ValueError, match="one per user"):
        b.examples([0, 1], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        b.examples([0], [np.nan])
    with pytest.raises(ValueError, match="n_videos"):
        FeatureEncoder.fit(tiny_tables()[0], 0, 1, 1)


@pytest.mark.parametrize("bad", [200.0, -5.0, np.inf])
def test_implausible_age_is_refused_naming_the_user(bad):
    users, watches, searches = tiny_tables()
    users.loc[1, "age"] = bad  # user 1; the others are 20, NaN and 40
    who = rf"user 1 \(row 1\) has age {bad:g}, outside the plausible 0..120 years"
    with pytest.raises(ValueError, match=rf"FeatureEncoder.fit: users table: {who}"):
        FeatureEncoder.fit(users, N_VIDEOS, N_TOKENS, N_REGIONS, window=(0.0, 4.0))
    enc = FeatureEncoder.fit(tiny_tables()[0], N_VIDEOS, N_TOKENS, N_REGIONS, window=(0.0, 4.0))
    with pytest.raises(ValueError, match=rf"UserTable: users table: {who}.*NaN \(missing\)"):
        FeatureBuilder.from_tables(enc, watches, users, searches)
    with pytest.raises(ValueError, match=rf"row 2 has age {bad:g}"):
        enc.dense_demographics(np.array([30.0, np.nan, bad]), np.array([0, 1, 0]))


def test_plausible_ages_keep_their_spread():
    users = pd.DataFrame({"user_id": [0, 1, 2, 3], "region": [0, 0, 0, 0], "age": [0.0, 30.0, np.nan, 120.0],
                          "gender": [0, 1, 0, 1]})
    enc = FeatureEncoder.fit(users, N_VIDEOS, N_TOKENS, N_REGIONS)
    assert (enc.age_lo, enc.age_hi) == (0.0, 120.0)
    scaled = enc.dense_demographics(users["age"].to_numpy(), users["gender"].to_numpy())[:, 0]
    np.testing.assert_allclose(scaled, [0.0, 0.25, 0.25, 1.0])  # NaN -> the median (30) scaled


def test_search_tokens_flatten_in_order():
    _, _, searches = tiny_tables()
    u, t, tok = flatten_search_tokens(searches)
    assert u.tolist() == [0, 0, 0, 1, 1] and t.tolist() == [1.5, 1.5, 1.5, 2.0, 2.0]
    assert tok.tolist() == [1, 2, 3, 4, 42]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 6), st.integers(-2, 12)), max_size=60),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7)), min_size=1, max_size=20),
    st.integers(1, 6),
)
def test_bags_match_a_naive_reference(events, queries, max_len):
    """The vectorised lookup equals a per-query Python scan (the last max_len items strictly before t)."""
    ev = np.array(events, dtype=np.int64).reshape(-1, 3)
    log = EventLog.from_arrays(ev[:, 0], ev[:, 1].astype(float), ev[:, 2], n_items=10)
    q = np.array(queries, dtype=np.int64)
    begin, length = log.bag_bounds(q[:, 0], q[:, 1].astype(float), max_len)
    got = log.gather(begin, length)
    for i, (user, t) in enumerate(q):
        order = sorted((e for e in range(len(ev)) if ev[e, 0] == user and ev[e, 1] < t),
                       key=lambda e: (ev[e, 1], e))
        items = [int(ev[e, 2]) if 0 <= ev[e, 2] < 10 else 10 for e in order][-max_len:] if order else []
        assert got[i, : length[i]].tolist() == items
        assert (got[i, length[i]:] == 10).all()


def test_held_out_label_is_dropped_from_the_bag_and_the_limit_still_holds():
    n = 12
    users = pd.DataFrame({"user_id": [0], "region": [0], "age": [30.0], "gender": [0]})
    watches = pd.DataFrame({"user_id": np.zeros(n, int), "time": np.arange(n, dtype=float),
                            "video_id": np.arange(n)})
    enc = FeatureEncoder.fit(users, N_VIDEOS, N_TOKENS, N_REGIONS, FeatureSpec(max_bag=5), window=(0.0, n))
    fb = FeatureBuilder.from_tables(enc, watches, users)
    f = fb.examples([0, 0, 0], [float(n)] * 3, exclude=[10, 3, -1])
    b = f.batch()
    assert b["watch_len"].tolist() == [5, 5, 5]
    assert b["watch_ids"].tolist() == [[6, 7, 8, 9, 11], [7, 8, 9, 10, 11], [7, 8, 9, 10, 11]]
    assert f.watched_before()[0].tolist() == list(range(n))  # the full history, not cut at max_bag
    sub = f.subset([1])
    assert sub.batch()["watch_ids"].tolist() == [[7, 8, 9, 10, 11]] and len(sub) == 1
    with pytest.raises(ValueError, match="one id per example"):
        fb.examples([0], [1.0], exclude=[1, 2])


def test_watched_pairs_are_the_watched_before_sets_flattened_once_each():
    """A user who watched the same video twice, an unknown id and an empty history: the pairs hold each
    (row, known video) once, for any subset of rows."""
    users = pd.DataFrame({"user_id": [0, 1], "region": [0, 1], "age": [30.0, 40.0], "gender": [0, 1]})
    watches = pd.DataFrame({"user_id": [0, 0, 0, 0, 1], "time": [1.0, 2.0, 3.0, 4.0, 1.0],
                            "video_id": [5, 7, 5, 99, 3]})
    enc = FeatureEncoder.fit(users, N_VIDEOS, N_TOKENS, N_REGIONS, FeatureSpec(max_bag=2), window=(0.0, 5.0))
    f = FeatureBuilder.from_tables(enc, watches, users).examples([0, 1, 0, 1], [5.0, 0.5, 3.5, 2.0])
    for idx in (None, [2, 0], [1]):
        sets = f.watched_before(idx)
        rows, vids = f.watched_pairs(idx)
        assert [sorted(vids[rows == i].tolist()) for i in range(len(sets))] == \
            [sorted(set(s.tolist())) for s in sets]
    rows, vids = f.watched_pairs()
    assert rows.tolist() == [0, 0, 2, 2, 3] and vids.tolist() == [5, 7, 5, 7, 3]
