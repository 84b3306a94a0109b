"""Tests of ytrec_lib.serving.system: the two-stage recommender against NumPy brute force
and the ranker itself."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

from ytrec_lib import pipeline
from ytrec_lib.models import candidate
from ytrec_lib.serving import system as S

CANDIDATE = {"epochs": 1, "tower": [16], "n_negatives": 50, "dim": 8}
RANKER = {"epochs": 1, "hidden": [8], "dim": 8, "max_train_impressions": 4000}


@pytest.fixture(scope="module")
def bundle(one_thread) -> pipeline.SystemBundle:
    return pipeline.system("tiny", 0, index_kind="exact", progress=False, candidate_config=CANDIDATE,
                           ranker_config=RANKER)


def _store_vectors(b: pipeline.SystemBundle) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    store = b.system.store
    n_users = b.system.n_users
    users = store.get_users(np.arange(n_users))  # (U, d)
    ids, videos = store.get_videos()  # (V,), (V, d)
    return users, ids, videos


def test_candidates_are_the_exact_top_inner_products_without_watched(bundle):
    sys_ = bundle.system
    users, ids, videos = _store_vectors(bundle)
    uploaded = set(sys_.index_ids.tolist())
    for uid in bundle.test_users[:5]:
        rec = sys_.recommend(int(uid), k=5, n_candidates=40)
        scores = videos.astype(np.float64) @ users[uid].astype(np.float64)  # (V,)
        allowed = np.array([v in uploaded for v in ids]) & ~np.isin(ids, sys_.watched(int(uid)))
        order = np.argsort(-np.where(allowed, scores, -np.inf), kind="stable")[:40]
        assert set(rec.candidate_ids.tolist()) == set(ids[order].tolist())
        np.testing.assert_allclose(rec.candidate_scores, scores[np.searchsorted(ids, rec.candidate_ids)],
                                   rtol=1e-5, atol=1e-5)
        assert not np.isin(rec.video_ids, sys_.watched(int(uid))).any()


def test_stage2_is_the_ranker_and_the_list_is_sorted_by_it(bundle):
    sys_ = bundle.system
    uid = int(bundle.test_users[0])
    rec = sys_.recommend(uid, k=7, n_candidates=30)
    frame = pd.DataFrame({"user_id": uid, "video_id": rec.candidate_ids, "time": sys_.serve_time,
                          "source": "home"})
    reference = bundle.ranker.score(frame)  # (c,) the ranker applied directly
    best = np.argsort(-reference, kind="stable")[:7]
    assert rec.video_ids.tolist() == rec.candidate_ids[best].tolist()
    np.testing.assert_allclose(rec.stage2_scores, reference[best], rtol=1e-6)
    assert (np.diff(rec.stage2_scores) <= 0).all()
    pos = {v: i for i, v in enumerate(rec.candidate_ids.tolist())}
    np.testing.assert_array_equal(rec.stage1_scores, rec.candidate_scores[[pos[v] for v in rec.video_ids]])
    assert set(rec.timings_ms) == set(S.STAGES) and all(v >= 0 for v in rec.timings_ms.values())
    frame = rec.frame()
    assert list(frame["rank"]) == list(range(1, 8)) and (frame["stage1_rank"] >= 1).all()


def test_serving_features_equal_the_batch_builder(bundle):
    sys_ = bundle.system
    rng = np.random.default_rng(0)
    for uid in [*bundle.test_users[:4].tolist(), 0]:
        videos = rng.choice(sys_.index_ids, 25, replace=False)
        frame = pd.DataFrame({"user_id": uid, "video_id": videos, "time": sys_.serve_time, "source": "home"})
        ref = bundle.ranker.builder.build(frame)
        got = sys_.features.build(uid, videos)
        np.testing.assert_array_equal(got.continuous[:, :5], ref.continuous[:, :5])
        for name in ("users", "videos", "times", "user_language", "video_language", "source", "watch_begin",
                     "watch_len"):
            np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=name)
        full = sys_.ranker.builder.watch_log
        b, n = full.bag_bounds(np.array([uid]), np.array([sys_.serve_time]), len(full))
        assert sys_.watched(uid).tolist() == full.item[b[0]: b[0] + n[0]].tolist()


def test_user_without_history_gets_the_demographic_embedding(bundle):
    sys_ = bundle.system
    empty = [u for u in range(sys_.n_users) if len(sys_.watched(u)) == 0]
    if not empty:
        pytest.skip("every tiny user has a history")
    uid = empty[0]
    rec = sys_.recommend(uid, k=5, n_candidates=20)
    assert len(rec.video_ids) == 5
    run = bundle.run
    expected = candidate.user_embeddings(run.model, run.builder, np.array([uid]), sys_.serve_time)[0]
    np.testing.assert_allclose(sys_.store.get_user(uid), expected, rtol=1e-5, atol=1e-6)  # batch rounding


@pytest.mark.parametrize("bad", [-1, "n_users", 10**9])
@pytest.mark.parametrize("method", ["check_user", "watched", "recommend"])
def test_out_of_range_user_is_a_value_error_naming_the_id_and_range(bundle, bad, method):
    sys_ = bundle.system
    n = sys_.n_users
    bad = n if bad == "n_users" else bad
    with pytest.raises(ValueError, match=f"user id {bad} is out of range: this system has users 0..{n - 1}$"):
        getattr(sys_, method)(bad)
    with pytest.raises(KeyError):  # unknown ids were KeyErrors before: callers catching that still work
        getattr(sys_, method)(bad)


@pytest.mark.parametrize("bad,kind", [(3.7, "float"), (3.0, "float"), (True, "bool"), ("3", "str"),
                                      (np.float64(3.0), "float64"), (None, "NoneType")])
@pytest.mark.parametrize("method", ["check_user", "watched", "recommend"])
def test_user_id_that_is_not_an_integer_is_refused(bundle, bad, kind, method):
    n = bundle.system.n_users
    match = (rf"user id {re.escape(repr(bad))} is not an integer \(it is a {kind}\); "
             rf"valid user ids are 0..{n - 1}$")
    with pytest.raises(ValueError, match=match):
        getattr(bundle.system, method)(bad)


def test_numpy_integer_user_ids_are_accepted(bundle):
    sys_ = bundle.system
    uid = int(bundle.test_users[0])
    for same in (np.int64(uid), np.int32(uid), np.uint16(uid)):
        assert sys_.check_user(same) == uid and type(sys_.check_user(same)) is int
        assert sys_.watched(same).tolist() == sys_.watched(uid).tolist()
    rec = sys_.recommend(np.int64(uid), 3, 10)
    assert rec.user_id == uid and rec.video_ids.tolist() == sys_.recommend(uid, 3, 10).video_ids.tolist()


@pytest.mark.parametrize("users,match", [
    ([3.7], r"position 0: user id 3\.7 is not an integer"),
    ([0, 1, True], r"position 2: user id True is not an integer \(it is a bool\)"),
    (["3"], r"position 0: user id '3' is not an integer"),
    (np.array([0, -1, 5, -2]), r"position 1 \(of 2 bad\): user id -1 is out of range"),
    (np.array([2.0, 3.0]), r"position 0: user id 2\.0 is not an integer"),
    (np.array([True]), r"position 0: user id True is not an integer"),
    ("3", r"must be a sequence of integer ids, got the string '3'"),
])
def test_recommend_many_checks_every_id_before_serving(bundle, users, match):
    sys_ = bundle.system
    with pytest.raises(ValueError, match=match):
        sys_.recommend_many(users, k=3, n_candidates=10, progress=False)
    n = sys_.n_users
    with pytest.raises(ValueError, match=f"position 1.*user id {n} is out of range.*users 0..{n - 1}"):
        sys_.recommend_many([0, n, 1], k=3, n_candidates=10, progress=False)


def test_serving_features_check_user_and_video_ids(bundle):
    feats = bundle.system.features
    n_videos = bundle.ranker.builder.n_videos
    with pytest.raises(ValueError, match="user id -1 is out of range"):
        feats.watched(-1)
    with pytest.raises(ValueError, match="user id 2.5 is not an integer"):
        feats.build(2.5, np.array([0, 1]))
    with pytest.raises(ValueError, match=f"position 1.*video id -1 is out of range.*0..{n_videos - 1}"):
        feats.build(0, np.array([0, -1]))
    with pytest.raises(ValueError, match=f"video id {n_videos} is out of range"):
        feats.build(0, [n_videos])
    with pytest.raises(ValueError, match="video id 1.5 is not an integer"):
        feats.build(0, np.array([1.5]))


def test_bad_sizes_are_refused(bundle):
    uid = int(bundle.test_users[0])
    with pytest.raises(ValueError, match="n_candidates"):
        bundle.system.recommend(uid, k=10, n_candidates=5)
    with pytest.raises(ValueError, match="k must be"):
        bundle.system.recommend(uid, k=0)


def test_hnsw_search_parameter_changes_and_large_ef_matches_exact(bundle):
    exact = bundle.system
    hnsw = S.TwoStageRecommender(exact.store, bundle.ranker, exact.serve_time, index_kind="hnsw",
                                 video_ids=exact.index_ids, efSearch=8)
    assert hnsw.search_param == "efSearch"
    hnsw.set_search_param(400)
    assert hnsw.index.params["efSearch"] == 400
    for uid in bundle.test_users[:5]:
        a = exact.recommend(int(uid), 5, 30).candidate_ids
        b = hnsw.recommend(int(uid), 5, 30).candidate_ids
        assert len(set(a) & set(b)) >= 28
    with pytest.raises(ValueError, match="no search parameter"):
        exact.set_search_param(3)


def test_recommend_many_equals_single_requests(bundle):
    sys_ = bundle.system
    users = bundle.test_users[:6]
    res = sys_.recommend_many(users, k=4, n_candidates=20, progress=False)
    for i, uid in enumerate(users):
        rec = sys_.recommend(int(uid), 4, 20)
        assert res.shown[i].tolist() == rec.video_ids.tolist()
        assert res.candidates_only[i].tolist() == rec.candidate_ids[:4].tolist()
    summary = res.latency_summary()
    assert set(summary) == set(S.STAGES) | {"total"} and summary["total"]["p99"] >= summary["total"]["p50"]
    np.testing.assert_allclose(res.total_ms(), sum(res.timings_ms[s] for s in S.STAGES))
    assert set(res.cpu_ms) == set(S.STAGES) and (res.total_ms(cpu=True) >= 0).all()
    assert set(res.latency_summary(cpu=True)) == set(S.STAGES) | {"total"}


def test_ideal_lists_and_ndcg_against_brute_force(bundle):
    ds, sys_ = bundle.dataset, bundle.system
    users = bundle.test_users[:4]
    exclude = [sys_.watched(int(u)) for u in users]
    ideal = S.ideal_lists(ds, users, sys_.index_ids, sys_.serve_time, 5, exclude, batch=3)
    for i, u in enumerate(users):
        g = S.true_gains(ds, np.array([u]), sys_.index_ids[None, :], sys_.serve_time)[0]
        g[np.isin(sys_.index_ids, exclude[i])] = -1.0
        assert sorted(g[np.isin(sys_.index_ids, ideal[i])]) == sorted(np.sort(g)[-5:])
    assert S.ndcg_true(ds, users, ideal, ideal, sys_.serve_time, 5) == pytest.approx(1.0)
    rev = ideal[:, ::-1]
    disc = 1.0 / np.log2(np.arange(2, 7))
    gi = S.true_gains(ds, users, ideal, sys_.serve_time)
    expected = np.mean((gi[:, ::-1] @ disc) / (gi @ disc))
    assert S.ndcg_true(ds, users, rev, ideal, sys_.serve_time, 5) == pytest.approx(expected)
    assert S.ndcg_true(ds, users, rev, ideal, sys_.serve_time, 5) < 1.0


def test_recall_realised_by_hand():
    ranked = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    watched = [np.array([2, 10]), np.array([], dtype=np.int64), np.array([9])]
    assert S.recall_realised(ranked, watched, 3) == pytest.approx((0.5 + 1.0) / 2)
    assert S.recall_realised(ranked, watched, 1) == pytest.approx(0.0)


def test_ranker_and_store_come_back_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    first = pipeline.system("tiny", 0, index_kind="exact", progress=False, candidate_config=CANDIDATE,
                            ranker_config=RANKER)
    again = pipeline.system("tiny", 0, index_kind="exact", progress=False, candidate_config=CANDIDATE,
                            ranker_config=RANKER)
    assert again.store_path == first.store_path and first.store_path.exists()
    for a, b in zip(first.ranker.model.state_dict().values(), again.ranker.model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    uid = int(first.test_users[0])
    assert first.system.recommend(uid).video_ids.tolist() == again.system.recommend(uid).video_ids.tolist()
    assert not list(tmp_path.rglob("*.tmp"))
    with pytest.raises(KeyError, match="unknown setting"):
        pipeline.ranker(first.dataset, "tiny", 0, epoch=3)


def test_without_a_ranker_the_first_candidates_are_shown_and_seen_is_excluded(bundle):
    sys_ = bundle.system
    uid = int(bundle.test_users[0])
    full = sys_.recommend(uid, k=5, n_candidates=40)
    drop = np.r_[sys_.watched(uid), full.candidate_ids[:3]]  # + the three best candidates: "watched"
    bare = S.TwoStageRecommender(sys_.store, None, sys_.serve_time, index_kind="exact",
                                 video_ids=sys_.index_ids, seen={uid: drop})
    rec = bare.recommend(uid, k=5, n_candidates=40)
    assert rec.video_ids.tolist() == full.candidate_ids[3:8].tolist()   # stage-1 order, seen skipped
    assert len(rec.candidate_ids) == 40 and rec.candidate_ids[:37].tolist() == full.candidate_ids[3:].tolist()
    assert np.isnan(rec.stage2_scores).all()
    np.testing.assert_array_equal(bare.watched(uid), drop)
    assert bare.watched(uid + 1).size == 0                               # a user seen= lacks: nothing
    many = bare.recommend_many([uid], k=5, n_candidates=40, progress=False)
    assert many.shown[0].tolist() == many.candidates_only[0].tolist() == rec.video_ids.tolist()


def test_without_a_ranker_seen_is_required(bundle):
    with pytest.raises(ValueError, match="seen="):
        S.TwoStageRecommender(bundle.system.store, None, bundle.system.serve_time, index_kind="exact")
