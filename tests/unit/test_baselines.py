"""Tests of ytrec_lib.models.baselines on small hand-built logs with known answers, against brute force."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ytrec_lib.metrics import top_k
from ytrec_lib.models.baselines import (
    ORACLE_MOMENTS,
    ItemKNN,
    MostPopular,
    Oracle,
    as_watch_log,
    cooccurrence_similarity,
    oracle_rankings,
)

# user 0 watches 0, 1; user 1 watches 0, 1; user 2 watches 1, 2, 3; user 3 watches 3
LOG = pd.DataFrame(
    {
        "user_id": [0, 0, 1, 1, 2, 2, 2, 3],
        "video_id": [0, 1, 0, 1, 1, 2, 3, 3],
        "time": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    }
)
V = 5


class FakeTruth:
    """Next-watch probabilities that depend on user and time, recording each call."""

    def __init__(self, n_videos: int = V) -> None:
        self.n_videos = n_videos
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def next_watch_probs(self, user_ids: np.ndarray, times: np.ndarray) -> np.ndarray:
        self.calls.append((np.array(user_ids), np.array(times)))
        ids = np.arange(self.n_videos)
        peak = (user_ids[:, None] + np.floor(times[:, None])).astype(np.int64) % self.n_videos  # (n, 1)
        logits = -((ids[None, :] - peak) % self.n_videos).astype(np.float64)  # 0 at the peak
        p = np.exp(logits).astype(np.float32)  # (n, V)
        return p / p.sum(axis=1, keepdims=True)


def fake_dataset(truth=None):
    users = pd.DataFrame({"user_id": np.arange(5), "region": np.array([0, 0, 1, 1, 1], dtype=np.int16)})
    return SimpleNamespace(
        watches=lambda: LOG, meta={"n_videos": V, "name": "fake"}, users=users, truth=truth
    )


# ----------------------------------------------------------------------------------------------
# MostPopular
# ----------------------------------------------------------------------------------------------


def test_most_popular_hand_worked():
    # counts: video 1 -> 3, video 0 -> 2, video 3 -> 2, video 2 -> 1, video 4 -> 0
    rec = MostPopular().fit(LOG, n_videos=V)
    got = rec.recommend(np.array([0, 3, 9]), 3)
    np.testing.assert_array_equal(got, [[3, 2, 4], [1, 0, 2], [1, 0, 3]])  # watched videos excluded
    np.testing.assert_array_equal(rec.recommend([9], 5, exclude_watched=False), [[1, 0, 3, 2, 4]])
    assert got.dtype == np.int64


def test_most_popular_uses_only_the_past_of_each_query():
    rec = MostPopular().fit(LOG, n_videos=V)
    got = rec.recommend(np.array([0, 3, 9, 9]), 3, times=np.array([3.5, 6.5, 0.0, 5.0]))
    # t=3.5: counts {0: 2, 1: 1}, user 0 has watched 0 and 1 -> zeros by id
    # t=6.5: counts {1: 3, 0: 2, 2: 1}, user 3 has not watched yet
    # t=0.0: nothing watched yet; t=5.0: exactly at a watch, which does not count
    np.testing.assert_array_equal(got, [[2, 3, 4], [1, 0, 2], [0, 1, 2], [0, 1, 2]])


def test_most_popular_cutoff_equals_filtered_log():
    cut = MostPopular().fit(LOG, n_videos=V, cutoff=5.0).recommend([9, 2], 4)
    filtered = MostPopular().fit(LOG[LOG["time"] < 5.0], n_videos=V).recommend([9, 2], 4)
    np.testing.assert_array_equal(cut, filtered)
    np.testing.assert_array_equal(cut, [[0, 1, 2, 3], [0, 1, 2, 3]])  # user 2's watches are after


def test_most_popular_window():
    rec = MostPopular(window=2.0).fit(LOG, n_videos=V)
    got = rec.recommend([9, 9, 9], 3, times=[4.5, 6.5, 8.5])
    # windows [2.5, 4.5) -> {0, 1}; [4.5, 6.5) -> {1, 2}; [6.5, 8.5) -> {3: 2}
    np.testing.assert_array_equal(got, [[0, 1, 2], [1, 2, 0], [3, 0, 1]])


def test_most_popular_window_ends_at_the_cutoff():
    rec = MostPopular(window=2.0).fit(LOG, n_videos=V, cutoff=7.0)
    # a query after the cutoff sees the window [5, 7): videos 1 and 2 once each;
    # one before it sees its own window [3.5, 5.5): video 1 twice, then zeros by id
    got = rec.recommend([9, 9], 2, times=[100.0, 5.5])
    np.testing.assert_array_equal(got, [[1, 2], [1, 0]])


def test_most_popular_by_region_with_global_tie_break():
    rec = MostPopular(by_region=True).fit(LOG, n_videos=V, user_region=np.array([0, 0, 1, 1, 1]))
    got = rec.recommend([0, 3, 4], 3, exclude_watched=False)
    # region 0 (users 0, 1): {0: 2, 1: 2}, tie -> globally more popular 1 first; then 3 (global 2)
    # region 1 (users 2, 3): {3: 2, 1: 1, 2: 1}, tie 1 vs 2 -> 1 (global 3)
    np.testing.assert_array_equal(got, [[1, 0, 3], [3, 1, 2], [3, 1, 2]])
    with pytest.raises(ValueError, match="user_region"):
        MostPopular(by_region=True).fit(LOG, n_videos=V)
    with pytest.raises(ValueError, match="no region"):
        rec.recommend([7], 2)


def naive_popularity(log, n_videos, users, times, region=None, window=None, exclude=True):
    """Per-query counts by brute force, ranked by (count, global share, -id)."""
    u, v, t = (log[c].to_numpy() for c in ("user_id", "video_id", "time"))
    out = []
    for user, time in zip(users, times, strict=True):
        live = (t < time) & ((t + window >= time) if window is not None else True)
        glob = np.bincount(v[live], minlength=n_videos).astype(float)
        score = glob
        if region is not None:
            mine = live & (region[u] == region[user])
            score = np.bincount(v[mine], minlength=n_videos) + glob / (glob.sum() + 1)
        banned = set(v[(u == user) & (t < time)]) if exclude else set()
        ids = sorted((j for j in range(n_videos) if j not in banned), key=lambda j: (-score[j], j))
        out.append(ids)
    return out


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    by_region=st.booleans(),
    window=st.sampled_from([None, 1.0, 3.5]),
    batch=st.integers(1, 5),
)
def test_most_popular_matches_brute_force(seed, by_region, window, batch):
    rng = np.random.default_rng(seed)
    m, n_users, n_videos = 60, 6, 8
    log = pd.DataFrame(
        {
            "user_id": rng.integers(0, n_users, m),
            "video_id": rng.zipf(1.5, m) % n_videos,
            "time": rng.integers(0, 20, m) / 2.0,  # repeated times on purpose
        }
    )
    region = rng.integers(0, 3, n_users)
    rec = MostPopular(by_region=by_region, window=window)
    rec.fit(log, n_videos=n_videos, user_region=region if by_region else None)
    users = rng.integers(0, n_users, 12)
    times = rng.integers(0, 22, 12) / 2.0
    k = 3
    got = rec.recommend(users, k, times=times, batch_size=batch)
    ref = naive_popularity(log, n_videos, users, times, region if by_region else None, window)
    for row, ids in zip(got, ref, strict=True):
        expect = (ids + [-1] * k)[:k]
        np.testing.assert_array_equal(row, expect)


# ----------------------------------------------------------------------------------------------
# ItemKNN
# ----------------------------------------------------------------------------------------------


def dense_cosine(user, video, n_videos):
    x = np.zeros((int(user.max()) + 1, n_videos))
    x[user, video] = 1.0
    co = x.T @ x
    n = np.diag(co).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        sim = np.where(np.outer(n, n) > 0, co / np.sqrt(np.outer(n, n)), 0.0)
    np.fill_diagonal(sim, 0.0)
    return sim


def test_itemknn_similarity_hand_worked():
    knn = ItemKNN().fit(LOG, n_videos=V)
    s = knn.similarity.toarray()
    # |U_0| = 2, |U_1| = 3, |U_2| = 1, |U_3| = 2
    assert s[0, 1] == pytest.approx(2 / np.sqrt(6))
    assert s[1, 2] == pytest.approx(1 / np.sqrt(3))
    assert s[1, 3] == pytest.approx(1 / np.sqrt(6))
    assert s[2, 3] == pytest.approx(1 / np.sqrt(2))
    assert s[0, 2] == 0.0 and np.all(np.diag(s) == 0) and np.all(s[4] == 0)
    np.testing.assert_allclose(s, s.T)


def test_itemknn_recommend_hand_worked():
    knn = ItemKNN().fit(LOG, n_videos=V)
    # user 0 (0, 1): 2 -> .577, 3 -> .408; user 3 (3): 2 -> .707, 1 -> .408
    np.testing.assert_array_equal(knn.recommend([0, 3], 2), [[2, 3], [2, 1]])
    # an explicit history; videos without similarity follow by popularity (0 has 2 watches, 4 none)
    np.testing.assert_array_equal(knn.recommend([4], 3, histories=[np.array([2])]), [[3, 1, 0]])
    # only the last n_recent watches count: user 2's last one is 3 -> 2 (.707) before 1 (.408)
    recent1 = ItemKNN(n_recent=1).fit(LOG, n_videos=V)
    np.testing.assert_array_equal(recent1.recommend([2], 2, exclude_watched=False), [[2, 1]])


def test_itemknn_pruning_keeps_top_neighbours():
    knn = ItemKNN(n_neighbors=1).fit(LOG, n_videos=V)
    s = knn.similarity.toarray()
    assert np.all((s > 0).sum(axis=1) <= 1)
    assert s[1, 0] == pytest.approx(2 / np.sqrt(6)) and s[1, 2] == 0.0  # 1's best neighbour is 0


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), budget=st.sampled_from([1.0, 30.0, 1e9]))
def test_itemknn_matches_dense_brute_force(seed, budget):
    rng = np.random.default_rng(seed)
    m, n_users, n_videos = 80, 10, 12
    user = rng.integers(0, n_users, m)
    video = rng.integers(0, n_videos, m)
    sim = cooccurrence_similarity(user, video, n_videos, n_neighbors=n_videos, budget=budget)
    np.testing.assert_allclose(sim.toarray(), dense_cosine(user, video, n_videos), atol=1e-12)
    # recommendations are the top-k of (summed similarity, else popularity - 1)
    log = pd.DataFrame({"user_id": user, "video_id": video, "time": np.arange(m, dtype=float)})
    knn = ItemKNN(n_neighbors=n_videos, n_recent=None).fit(log, n_videos=n_videos)
    hist = [video[user == u] for u in range(n_users)]
    q = np.zeros((n_users, n_videos))
    for u, h in enumerate(hist):
        q[u, np.unique(h)] = 1.0
    summed = q @ dense_cosine(user, video, n_videos)
    pop = np.bincount(video, minlength=n_videos) / (np.bincount(video, minlength=n_videos).max() + 1)
    scores = np.where(summed > 1e-12, summed, pop[None, :] - 1.0)
    got = knn.recommend(np.arange(n_users), 4, batch_size=3)
    expected = top_k(scores, 4, exclude=hist)
    # same padding and the same score at every rank (exact float ties may be ordered differently)
    np.testing.assert_array_equal(got < 0, expected < 0)
    rows = np.arange(n_users)[:, None]
    valid = expected >= 0
    np.testing.assert_allclose(scores[rows, got][valid], scores[rows, expected][valid], atol=1e-12)
    assert not any(np.isin(got[u], hist[u]).any() for u in range(n_users))


def _plain_cosine_pruned(user, video, n_videos, n_keep):
    """Item-kNN's similarity before it had a shrink term, densely: ``co * (1/sqrt n_i) * (1/sqrt n_j)``
    (the same float operations, in the same order), each row's ``n_keep`` largest kept, ties to the lower
    column. (n_videos, n_videos) float64."""
    x = np.zeros((int(user.max()) + 1, n_videos))
    x[user, video] = 1.0
    co = x.T @ x  # (V, V) exact integer counts
    n = np.diag(co).copy()
    inv = np.divide(1.0, np.sqrt(n), out=np.zeros(n_videos), where=n > 0)
    sim = co * inv[:, None] * inv[None, :]
    np.fill_diagonal(sim, 0.0)
    out = np.zeros_like(sim)
    for i, row in enumerate(sim):
        keep = np.lexsort((np.arange(n_videos), -row))[:n_keep]
        keep = keep[row[keep] > 0]
        out[i, keep] = row[keep]
    return out


@pytest.mark.parametrize("seed", range(4))
def test_itemknn_shrink_zero_is_the_plain_cosine_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    m, n_users, n_videos = 120, 15, 12  # few users: many equal cosines, so the tie rule is exercised
    user, video = rng.integers(0, n_users, m), rng.integers(0, n_videos, m)
    log = pd.DataFrame({"user_id": user, "video_id": video, "time": np.arange(m, dtype=float)})
    for n_keep in (3, n_videos):
        want = _plain_cosine_pruned(user, video, n_videos, n_keep)
        for shrink in (0, 0.0):
            got = ItemKNN(n_neighbors=n_keep, shrink=shrink).fit(log, n_videos=n_videos).similarity
            assert np.array_equal(got.toarray(), want)  # exactly, not approximately
        blocked = cooccurrence_similarity(user, video, n_videos, n_keep, budget=30.0)  # many row blocks
        assert np.array_equal(blocked.toarray(), want)


def test_itemknn_shrink_ranks_a_frequent_pair_above_a_rare_one():
    # video 0 (a) has 4 watchers (users 0-3); video 1 (r, rare) only user 0, who also watched a;
    # video 2 (f, frequent) 16 watchers, 3 of whom (users 1-3) watched a
    pairs = [(u, 0) for u in range(4)] + [(0, 1)] + [(u, 2) for u in range(1, 17)]
    user, video = (np.array(c) for c in zip(*pairs, strict=True))
    log = pd.DataFrame({"user_id": user, "video_id": video, "time": np.arange(user.size, dtype=float)})
    plain, shrunk = (ItemKNN(shrink=s).fit(log, n_videos=3) for s in (0, 10))
    # plain cosine: a-r 1 / sqrt(4 * 1) = 1/2 beats a-f 3 / sqrt(4 * 16) = 3/8
    assert plain.similarity[0, 1] == pytest.approx(1 / 2) and plain.similarity[0, 2] == pytest.approx(3 / 8)
    # shrink 10: a-r 1 / (2 + 10) = 1/12 loses to a-f 3 / (8 + 10) = 1/6
    assert shrunk.similarity[0, 1] == pytest.approx(1 / 12)
    assert shrunk.similarity[0, 2] == pytest.approx(1 / 6)
    # a new user who watched a: plain item-kNN recommends r first, shrunk item-kNN f first
    np.testing.assert_array_equal(plain.recommend([20], 2, histories=[np.array([0])]), [[1, 2]])
    np.testing.assert_array_equal(shrunk.recommend([20], 2, histories=[np.array([0])]), [[2, 1]])


def test_itemknn_variant_equals_a_fresh_fit():
    rng = np.random.default_rng(7)
    m, n_videos = 150, 14
    log = pd.DataFrame({"user_id": rng.integers(0, 12, m), "video_id": rng.integers(0, n_videos, m),
                        "time": np.arange(m, dtype=float)})
    wide = ItemKNN(n_neighbors=8, n_recent=None, shrink=5).fit(log, n_videos=n_videos)
    narrow = wide.variant(n_neighbors=4, n_recent=2, shrink=5)
    narrower = narrow.variant(n_neighbors=2, n_recent=2, shrink=5)  # pruned from the pruned one
    for derived, (n, recent) in ((narrow, (4, 2)), (narrower, (2, 2))):
        fresh = ItemKNN(n_neighbors=n, n_recent=recent, shrink=5).fit(log, n_videos=n_videos)
        for attr in ("data", "indices", "indptr"):
            assert np.array_equal(getattr(derived.similarity, attr), getattr(fresh.similarity, attr))
        assert (derived.n_neighbors, derived.n_recent) == (n, recent)
        np.testing.assert_array_equal(derived.recommend(np.arange(12), 5), fresh.recommend(np.arange(12), 5))
    assert wide.n_neighbors == 8 and wide.similarity.nnz > narrow.similarity.nnz  # the base is unchanged
    assert wide.variant(n_neighbors=4, shrink=0) is None  # another similarity: a fit is needed
    assert narrow.variant(n_neighbors=8, shrink=5) is None  # wider than what was kept
    assert ItemKNN().variant(n_neighbors=5) is None  # nothing fitted yet


# ----------------------------------------------------------------------------------------------
# Oracle
# ----------------------------------------------------------------------------------------------


def test_oracle_ranks_by_truth_and_batches():
    truth = FakeTruth()
    users = np.array([0, 1, 2, 3, 4, 0, 2])
    times = np.array([0.5, 1.5, 2.0, 3.2, 4.9, 7.0, 0.1])
    oracle = Oracle(truth, n_videos=V)
    got = oracle.recommend(users, 3, times=times, exclude_watched=False)
    expected = top_k(truth.next_watch_probs(users, times), 3)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got[:, 0], (users + np.floor(times)).astype(int) % V)  # the peak
    batched = oracle.recommend(users, 3, times=times, exclude_watched=False, batch_size=2)
    np.testing.assert_array_equal(batched, got)
    # every (user, time) pair reached the truth, and nothing else
    asked = sorted((int(u), float(t)) for c in truth.calls[-4:] for u, t in zip(*c, strict=True))
    assert asked == sorted(zip(users.tolist(), times.tolist(), strict=True))


def test_oracle_excludes_watched_from_log_or_histories():
    truth = FakeTruth()
    oracle = Oracle(truth).fit(LOG, n_videos=V)
    times = np.array([9.0, 9.0])
    got = oracle.recommend([0, 3], 2, times=times)
    probs = truth.next_watch_probs(np.array([0, 3]), times)
    np.testing.assert_array_equal(got, top_k(probs, 2, exclude=[np.array([0, 1]), np.array([3])]))
    own = oracle.recommend([0, 3], 2, times=times, histories=[np.array([4]), np.array([], dtype=np.int64)])
    np.testing.assert_array_equal(own, top_k(probs, 2, exclude=[np.array([4]), np.array([], dtype=np.int64)]))
    history_like = SimpleNamespace(watch_offsets=np.array([0, 1, 1]), watch_ids=np.array([4]))
    np.testing.assert_array_equal(oracle.recommend([0, 3], 2, times=times, histories=history_like), own)


def test_oracle_needs_times_or_log():
    oracle = Oracle(FakeTruth(), n_videos=V)
    with pytest.raises(ValueError, match="times"):
        oracle.recommend([0], 2, exclude_watched=False)
    with pytest.raises(ValueError, match="no watch log"):
        oracle.recommend([0], 2, times=[1.0])
    with pytest.raises(ValueError, match="truth"):
        Oracle(None)


def test_oracle_rejects_wrong_truth_shape():
    oracle = Oracle(FakeTruth(n_videos=4), n_videos=V)
    with pytest.raises(ValueError, match="expected"):
        oracle.recommend([0], 2, times=[1.0], exclude_watched=False)


def test_oracle_rankings_ask_at_the_cutoff_and_at_each_label_time():
    """``oracle`` is the truth asked at the cutoff (the serving moment), ``oracle_label_time`` at each
    label's own time; both exclude what the user watched before the cutoff."""
    truth = FakeTruth()
    ds = fake_dataset(truth=truth)
    users, times = np.array([0, 2, 3]), np.array([6.5, 8.0, 9.2])
    got = oracle_rankings(ds, users, times, 6.0, 2)
    assert set(got) == set(ORACLE_MOMENTS) == {"oracle", "oracle_label_time"}
    watched = [LOG["video_id"][(LOG["user_id"] == u) & (LOG["time"] < 6.0)] for u in users]
    for name, at in (("oracle", np.full(3, 6.0)), ("oracle_label_time", times)):
        np.testing.assert_array_equal(got[name], top_k(truth.next_watch_probs(users, at), 2, exclude=watched))
    assert not np.array_equal(got["oracle"], got["oracle_label_time"])  # the fake's peak moves by the day


# ----------------------------------------------------------------------------------------------
# Shared interface and bad input
# ----------------------------------------------------------------------------------------------


def test_fit_dataset_matches_fit():
    ds = fake_dataset(truth=FakeTruth())
    for make in (MostPopular, lambda: MostPopular(by_region=True), ItemKNN):
        a = make().fit_dataset(ds, cutoff=6.0).recommend([0, 2, 3], 3, times=[6.0, 6.0, 6.0])
        kw = {"user_region": np.array([0, 0, 1, 1, 1])} if getattr(make(), "by_region", False) else {}
        b = make().fit(LOG, n_videos=V, cutoff=6.0, **kw).recommend([0, 2, 3], 3)
        np.testing.assert_array_equal(a, b)
    oracle = Oracle.from_dataset(ds, cutoff=6.0)
    assert oracle.recommend([0, 2], 2).shape == (2, 2)
    with pytest.raises(ValueError, match="no ground truth"):
        Oracle.from_dataset(fake_dataset(truth=None))


def test_watch_log_forms_agree():
    arrays = tuple(LOG[c].to_numpy() for c in ("user_id", "video_id", "time"))
    mapping = {c: LOG[c].to_numpy() for c in ("user_id", "video_id", "time")}
    ref = MostPopular().fit(LOG, n_videos=V).recommend([0, 2], 3)
    np.testing.assert_array_equal(MostPopular().fit(arrays, n_videos=V).recommend([0, 2], 3), ref)
    np.testing.assert_array_equal(MostPopular().fit(mapping, n_videos=V).recommend([0, 2], 3), ref)
    u, v, t = as_watch_log(LOG, cutoff=3.0)
    np.testing.assert_array_equal(v, [0, 1])


def test_exhausted_rows_are_padded():
    rec = MostPopular().fit(LOG, n_videos=4)  # user 2 watched 1, 2, 3: only 0 is left
    np.testing.assert_array_equal(rec.recommend([2], 3), [[0, -1, -1]])


@pytest.mark.parametrize("make", [MostPopular, ItemKNN])
def test_bad_input(make):
    with pytest.raises(RuntimeError, match="not fitted"):
        make().recommend([0], 2)
    rec = make().fit(LOG, n_videos=V)
    with pytest.raises(ValueError, match="positive integer"):
        rec.recommend([0], 0)
    with pytest.raises(ValueError, match="larger than"):
        rec.recommend([0], V + 1)
    with pytest.raises(ValueError, match=">= 0"):
        rec.recommend([-1], 2)
    with pytest.raises(ValueError, match="non-empty"):
        rec.recommend([], 2)
    with pytest.raises(ValueError, match="shape"):
        rec.recommend([0, 1], 2, times=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="must match"):
        rec.recommend([0, 1], 2, histories=[np.array([1])])
    with pytest.raises(KeyError, match="video_id"):
        make().fit(LOG.drop(columns="video_id"))
    with pytest.raises(ValueError, match="n_videos"):
        make().fit(LOG, n_videos=2)
    with pytest.raises(ValueError, match="NaN"):
        make().fit(LOG.assign(time=np.nan), n_videos=V)


def test_constructor_bad_input():
    with pytest.raises(ValueError, match="window"):
        MostPopular(window=0.0)
    with pytest.raises(ValueError, match="n_neighbors"):
        ItemKNN(n_neighbors=0)
    with pytest.raises(ValueError, match="n_recent"):
        ItemKNN(n_recent=-3)
    for bad in (-1.0, float("nan"), float("inf"), True, "10"):
        with pytest.raises(ValueError, match="shrink"):
            ItemKNN(shrink=bad)
