"""Tests of ytrec_lib.models.ranking: quantile normaliser, features strictly before each impression,
the weighted logistic loss, training on a planted task, evaluation helpers and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import ndcg_score

from ytrec_lib import pipeline
from ytrec_lib.features import FeatureBuilder, FeatureSpec
from ytrec_lib.models import ranking as R
from ytrec_lib.models.candidate import CandidateModel

# ----------------------------------------------------------------------------------------------------
# QuantileNormalizer
# ----------------------------------------------------------------------------------------------------

values = st.lists(st.integers(-5, 5), min_size=2, max_size=40)  # small ints: many ties


@settings(max_examples=60, deadline=None)
@given(values)
def test_normalizer_with_n_minus_1_bins_is_scipy_mid_rank(xs):
    x = np.array(xs, dtype=np.float64)
    norm = R.QuantileNormalizer.fit(x, n_bins=len(x) - 1)
    expected = (scipy.stats.rankdata(x, method="average") - 1) / (len(x) - 1)
    np.testing.assert_allclose(norm.transform(x)[:, 0], expected, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(values, st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=30),
       st.integers(1, 50))
def test_normalizer_is_monotone_and_bounded(xs, queries, n_bins):
    norm = R.QuantileNormalizer.fit(np.array(xs, float), n_bins=n_bins)
    q = np.sort(np.array(queries + [-100.0, 100.0]))
    out = norm.transform(q)[:, 0]
    assert np.all(np.diff(out) >= -1e-12)
    assert out.min() >= 0.0 and out.max() <= 1.0
    if np.ptp(xs) > 0:  # outside the training range: 0 below, 1 above
        assert out[0] == 0.0 and out[-1] == 1.0


def test_normalizer_approximates_the_empirical_cdf_and_stores_numpy_quantiles():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.lognormal(size=5000), rng.integers(0, 4, 5000)])  # skewed, and a tied column
    norm = R.QuantileNormalizer.fit(x, n_bins=100, names=["a", "b"])
    np.testing.assert_allclose(norm.quantiles, np.quantile(x, np.linspace(0, 1, 101), axis=0))
    q = np.column_stack([np.quantile(x[:, 0], rng.random(300)), rng.integers(0, 4, 300)])
    out = norm.transform(q)
    for j in range(2):
        mid_cdf = np.array([scipy.stats.percentileofscore(x[:, j], v, kind="mean") / 100 for v in q[:, j]])
        assert np.abs(out[:, j] - mid_cdf).max() <= 1.0 / 100 + 1.0 / 5000
    assert norm.names == ("a", "b")


def test_normalizer_round_trip_and_constant_column():
    x = np.column_stack([np.arange(10.0), np.full(10, 3.0)])
    norm = R.QuantileNormalizer.fit(x, n_bins=9)
    again = R.QuantileNormalizer.from_dict(norm.to_dict())
    np.testing.assert_array_equal(again.transform(x), norm.transform(x))
    np.testing.assert_allclose(norm.transform(x)[:, 1], 0.5)  # a point mass maps to its middle


@pytest.mark.parametrize("bad, match", [
    (np.array([1.0, np.nan]), "NaN"),
    (np.zeros((0, 2)), "no rows"),
    (np.zeros((2, 2, 2)), "shape"),
])
def test_normalizer_fit_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        R.QuantileNormalizer.fit(bad)


def test_normalizer_transform_errors():
    norm = R.QuantileNormalizer.fit(np.zeros((5, 2)) + np.arange(5)[:, None])
    with pytest.raises(ValueError, match="columns"):
        norm.transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        norm.transform(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="n_bins"):
        R.QuantileNormalizer.fit(np.arange(5.0), n_bins=0)


def test_expand_powers():
    x = np.array([[0.25, 1.0], [0.0, 0.5]])
    out = R.expand_powers(x)
    assert out.shape == (2, 6) and out.dtype == np.float32
    np.testing.assert_allclose(out, np.concatenate([x, x**2, np.sqrt(x)], axis=1), rtol=1e-6)
    np.testing.assert_allclose(R.expand_powers(x, powers=False), x)


# ----------------------------------------------------------------------------------------------------
# Lookups strictly before a time
# ----------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), max_size=25),
       st.lists(st.tuples(st.integers(0, 4), st.integers(0, 7)), min_size=1, max_size=15))
def test_lookups_match_naive_loops(events, queries):
    ek = np.array([e[0] for e in events], np.int64)
    et = np.array([e[1] for e in events], np.float64)  # integer times: many exact ties
    qk = np.array([q[0] for q in queries], np.int64)
    qt = np.array([q[1] for q in queries], np.float64)
    last = R.last_time_before(ek, et, qk, qt)
    count = R.count_before(ek, et, qk, qt)
    for i, (k, t) in enumerate(zip(qk, qt, strict=True)):
        before = et[(ek == k) & (et < t)]
        assert count[i] == len(before)
        if len(before):
            assert last[i] == before.max()
        else:
            assert np.isnan(last[i])


# ----------------------------------------------------------------------------------------------------
# Features: a hand-made log
# ----------------------------------------------------------------------------------------------------


def tiny_log() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Two users, five videos (creators 0/0/1/1/2, topics 0/1/0/1/1), impressions at known times."""
    users = pd.DataFrame({"user_id": [0, 1], "language": [0, 1]})
    videos = pd.DataFrame({
        "video_id": np.arange(5), "creator_id": [0, 0, 1, 1, 2], "topic": [0, 1, 0, 1, 1],
        "upload_time": [-3.0, 0.5, 1.0, 2.0, 4.5], "duration": [60.0, 120.0, 300.0, 30.0, 600.0],
        "language": [0, 1, 0, 0, 1],
    })
    imp = pd.DataFrame({
        "user_id": [0, 0, 0, 0, 1, 0, 0],
        "video_id": [2, 0, 2, 1, 0, 3, 2],
        "time": [1.5, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0],
        "session_id": [0, 1, 2, 3, 4, 5, 5],
        "position": [0, 0, 0, 0, 0, 0, 1],
        "source": pd.Categorical(["home", "home", "search", "home", "home", "home", "home"]),
        "clicked": [False, True, False, True, True, False, False],
        "watch_time": [0.0, 50.0, 0.0, 100.0, 30.0, 0.0, 0.0],
    })
    return users, videos, imp


def col(feats: R.ImpressionFeatures, name: str) -> np.ndarray:
    return feats.continuous[:, R.CONTINUOUS.index(name)]


def test_features_have_the_expected_values():
    users, videos, imp = tiny_log()
    b = R.RankingFeatureBuilder(users, videos, imp, n_languages=2, max_bag=10)
    f = b.build(imp)
    # impression 5: user 0, video 3 (creator 1, topic 1) at t=5; watches before: v0 @2 (c0,t0), v1 @4 (c0,t1)
    assert col(f, "days_since_creator")[5] == R.NEVER_DAYS  # never watched creator 1
    assert col(f, "days_since_topic")[5] == 1.0  # topic 1 watched at t=4
    assert col(f, "video_age")[5] == 3.0
    assert col(f, "duration")[5] == 30.0
    # impression 6: video 2 shown before at 1.5 and 3.0 -> 2 previous impressions
    np.testing.assert_array_equal(col(f, "prev_impressions"), [0, 0, 1, 0, 0, 0, 2])
    bag = f.watch_log.gather(f.watch_begin, f.watch_len)
    assert list(bag[6][: f.watch_len[6]]) == [0, 1]  # the watched videos, oldest first
    assert f.watch_len[1] == 0  # its own click is not history
    np.testing.assert_array_equal(f.source, [0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(f.user_language, [0, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(f.video_language, [0, 0, 0, 1, 0, 0, 0])
    assert not f.has_candidate_score
    assert list(f.frame([5]).columns[:2]) == ["user_id", "video_id"]


def test_features_use_nothing_at_or_after_the_impression_time():
    """Events at the impression's own time or later (and its own label) must not change its features."""
    users, videos, imp = tiny_log()
    target = 5  # user 0, video 3 at t=5
    base = R.RankingFeatureBuilder(users, videos, imp, 2).build(imp.iloc[[target]])
    future = pd.DataFrame({  # same user: a click on creator 1 / topic 1 / video 3 exactly at t=5 and later
        "user_id": [0, 0, 0], "video_id": [3, 2, 3], "time": [5.0, 5.0, 7.0], "session_id": [9, 9, 10],
        "position": [0, 1, 0], "source": pd.Categorical(["home"] * 3, categories=["home", "search"]),
        "clicked": [True, True, True], "watch_time": [10.0, 10.0, 10.0],
    })
    leaky = pd.concat([imp.assign(clicked=np.where(np.arange(len(imp)) == target, True, imp["clicked"])),
                       future], ignore_index=True)
    after = R.RankingFeatureBuilder(users, videos, leaky, 2).build(imp.iloc[[target]])
    np.testing.assert_array_equal(after.continuous, base.continuous)
    np.testing.assert_array_equal(after.watch_len, base.watch_len)
    got = after.watch_log.gather(after.watch_begin, after.watch_len)
    np.testing.assert_array_equal(got, base.watch_log.gather(base.watch_begin, base.watch_len))
    # and one event a moment before does change them (the check can fail)
    earlier = future.iloc[[0]].assign(time=4.999)
    moved = R.RankingFeatureBuilder(users, videos, pd.concat([imp, earlier], ignore_index=True), 2)
    changed = moved.build(imp.iloc[[target]])
    assert col(changed, "prev_impressions")[0] == 1
    assert col(changed, "days_since_creator")[0] == pytest.approx(0.001)


def test_builder_errors():
    users, videos, imp = tiny_log()
    with pytest.raises(KeyError, match="lacks column"):
        R.RankingFeatureBuilder(users, videos.drop(columns="duration"), imp, 2)
    b = R.RankingFeatureBuilder(users, videos, imp, 2)
    with pytest.raises(KeyError, match="video ids"):
        b.build(imp.assign(video_id=99))
    with pytest.raises(ValueError, match="NaN"):
        b.build(imp.assign(time=np.nan))
    with pytest.raises(ValueError, match="candidate_scores"):
        b.build(imp, candidate_scores=np.zeros(3))
    with pytest.raises(ValueError, match="max_bag"):
        R.RankingFeatureBuilder(users, videos, imp, 2, max_bag=0)


def test_serving_rows_without_labels_and_candidate_scores():
    users, videos, imp = tiny_log()
    b = R.RankingFeatureBuilder(users, videos, imp, 2)
    rows = pd.DataFrame({"user_id": [0, 0], "video_id": [4, 3], "time": [10.0, 10.0]})
    f = b.build(rows, candidate_scores=[1.5, -2.0])
    assert f.has_candidate_score and not f.clicked.any() and (f.source == 0).all()
    np.testing.assert_array_equal(col(f, "candidate_score"), [1.5, -2.0])
    assert f.watch_len[0] == 2  # both of user 0's watches are history at t=10
    np.testing.assert_array_equal(col(f.with_candidate_scores([0.0, 1.0]), "candidate_score"), [0.0, 1.0])


def test_session_start_times():
    _, _, imp = tiny_log()
    np.testing.assert_array_equal(R.session_start_times(imp), [1.5, 2.0, 3.0, 4.0, 4.0, 5.0, 5.0])


def test_candidate_scores_equal_the_models_logits():
    users, videos, imp = tiny_log()
    users = users.assign(region=[0, 1], age=[20.0, 30.0], gender=[0, 1])
    watches = imp[imp["clicked"]]
    spec = FeatureSpec(searches=False)
    from ytrec_lib.features import FeatureEncoder

    enc = FeatureEncoder.fit(users, 5, 1, 2, spec, (0.0, 6.0))
    fb = FeatureBuilder.from_tables(enc, watches, users)
    model = CandidateModel(5, 1, 2, dim=4, tower=(8,), spec=spec, seed=0)
    u, v, t = np.array([0, 0, 1, 0]), np.array([3, 4, 2, 1]), np.array([5.0, 5.0, 4.5, 5.0])
    got = R.candidate_scores(model, fb, u, v, t, batch_size=2)
    with torch.no_grad():
        full = model(fb.examples(u, t).batch()).double().numpy()  # (4, n_videos)
    np.testing.assert_allclose(got, full[np.arange(4), v], rtol=1e-5, atol=1e-6)
    with pytest.raises(KeyError, match="video ids"):
        R.candidate_scores(model, fb, u, v + 10, t)


# ----------------------------------------------------------------------------------------------------
# Loss and weights
# ----------------------------------------------------------------------------------------------------


def test_weighted_loss_matches_a_naive_implementation():
    rng = np.random.default_rng(1)
    z = rng.normal(size=50) * 3
    y = rng.random(50) < 0.3
    wt = np.where(y, rng.exponential(200.0, 50), 0.0)
    w = R.example_weights(y, wt, "weighted")
    naive = 0.0
    for zi, yi, wi in zip(z, y, w, strict=True):
        p = 1.0 / (1.0 + np.exp(-zi))
        naive += -wi * (np.log(p) if yi else np.log(1.0 - p))
    got = R.weighted_logistic_loss(torch.tensor(z), torch.tensor(y), torch.tensor(w))
    assert float(got) == pytest.approx(naive / len(z), rel=1e-6)
    np.testing.assert_array_equal(w, np.where(y, wt, 1.0))
    np.testing.assert_array_equal(R.example_weights(y, wt, "plain"), np.ones(50))


def test_weighted_odds_estimate_expected_watch_time():
    """The weighted-LR optimum for a constant: odds = sum of watch time / number of non-clicks."""
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], bool)
    wt = np.where(y, [30.0, 0, 0, 0, 90.0, 0, 0, 0, 0, 0], 0.0)
    w = torch.tensor(R.example_weights(y, wt, "weighted"))

    def grad_at(odds: float) -> float:
        z = torch.tensor(np.log(odds), requires_grad=True, dtype=torch.float64)
        R.weighted_logistic_loss(z.expand(10), torch.tensor(y), w).backward()
        return float(z.grad)

    assert abs(grad_at(120.0 / 8)) < 1e-12  # stationary at E[T] / P(no click) = 12 / 0.8
    assert grad_at(10.0) < -0.1 and grad_at(20.0) > 0.1  # and a minimum (the loss is convex in z)


def test_loss_and_weight_errors():
    with pytest.raises(ValueError, match="objective"):
        R.example_weights([True], [1.0], "clicks")
    with pytest.raises(ValueError, match=">= 0"):
        R.example_weights([True], [-1.0], "weighted")
    with pytest.raises(ValueError, match="must be \\(B,\\)"):
        R.weighted_logistic_loss(torch.zeros(3), torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="objective"):
        R.RankTrainConfig(objective="ranknet")
    with pytest.raises(ValueError, match="epochs"):
        R.RankTrainConfig(epochs=0)


# ----------------------------------------------------------------------------------------------------
# A planted task: clicks depend on language, watch time on duration
# ----------------------------------------------------------------------------------------------------


def planted(n_imp: int = 6000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Users of 2 languages, 40 videos; P(click) = 0.3 when languages match else 0.05, watch time =
    half the duration. Returns the tables and the true expected watch time of every impression."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"user_id": np.arange(50), "language": np.arange(50) % 2})
    videos = pd.DataFrame({
        "video_id": np.arange(40), "creator_id": np.arange(40) // 4, "topic": np.arange(40) % 5,
        "upload_time": -rng.random(40) * 10, "duration": rng.uniform(20, 1000, 40),
        "language": (np.arange(40) // 2) % 2,
    })
    u, v = rng.integers(0, 50, n_imp), rng.integers(0, 40, n_imp)
    p = np.where(users["language"].to_numpy()[u] == videos["language"].to_numpy()[v], 0.3, 0.05)
    clicked = rng.random(n_imp) < p
    half = videos["duration"].to_numpy()[v] / 2
    imp = pd.DataFrame({
        "user_id": u, "video_id": v, "time": np.sort(rng.random(n_imp) * 20),
        "session_id": np.arange(n_imp) // 4,
        "position": np.arange(n_imp) % 4, "source": pd.Categorical(["home"] * n_imp),
        "clicked": clicked, "watch_time": np.where(clicked, half, 0.0),
    })
    return users, videos, imp, p * half


def fit_planted(objective: str, spec: R.RankingSpec, epochs: int = 4):
    users, videos, imp, truth = planted()
    b = R.RankingFeatureBuilder(users, videos, imp, 2)
    f = b.build(imp)
    tr, te = f.subset(np.arange(4000)), f.subset(np.arange(4000, 6000))
    norm = R.fit_normalizer(tr, n_bins=100)
    model = R.RankingModel(40, 2, spec, hidden=(16,), dim=4, seed=0)
    cfg = R.RankTrainConfig(objective=objective, epochs=epochs, batch_size=256, lr=1e-2, weight_decay=0.0)
    R.train_ranker(model, R.RankingInputs.make(tr, norm, spec), cfg, progress=False)
    return R.predict_logits(model, R.RankingInputs.make(te, norm, spec)), te, truth[4000:]


SPEC = R.RankingSpec(groups=("language", "duration", "video_age"))


def test_weighted_ranker_learns_expected_watch_time_and_beats_trivial():
    z, te, truth = fit_planted("weighted", SPEC)
    assert scipy.stats.spearmanr(np.exp(z), truth)[0] > 0.8
    ours = R.evaluate_scores(te, z)
    trivial = R.evaluate_scores(te, np.zeros(len(te)))
    assert ours["wpul"] < trivial["wpul"] - 0.1
    assert ours["auc"] > 0.6 and trivial["auc"] == 0.5


def test_plain_ranker_learns_clicks_not_duration():
    z, te, truth = fit_planted("plain", SPEC)
    match = te.user_language == te.video_language
    p = 1 / (1 + np.exp(-z))
    assert p[match].mean() == pytest.approx(0.3, abs=0.06)
    assert p[~match].mean() == pytest.approx(0.05, abs=0.03)
    zw, _, _ = fit_planted("weighted", SPEC)
    dur = col(te, "duration")
    assert scipy.stats.spearmanr(zw, dur)[0] > scipy.stats.spearmanr(z, dur)[0] + 0.3


def test_training_is_deterministic():
    spec = R.RankingSpec(groups=("video", "watches", "duration"))
    a, _, _ = fit_planted("weighted", spec, epochs=1)
    b, _, _ = fit_planted("weighted", spec, epochs=1)
    np.testing.assert_array_equal(a, b)


def test_model_and_inputs_errors():
    users, videos, imp, _ = planted(200)
    f = R.RankingFeatureBuilder(users, videos, imp, 2).build(imp)
    norm = R.fit_normalizer(f)
    with pytest.raises(ValueError, match="candidate_score"):
        R.RankingInputs.make(f, norm, R.RankingSpec())
    with pytest.raises(ValueError, match="unknown feature group"):
        R.RankingSpec(groups=("video", "colour"))
    with pytest.raises(ValueError, match="no feature group"):
        R.RankingSpec(groups=())
    spec = R.RankingSpec(groups=("video",))
    model = R.RankingModel(40, 2, spec)
    with pytest.raises(ValueError, match="another RankingSpec"):
        R.train_ranker(model, R.RankingInputs.make(f, norm, R.RankingSpec(groups=("duration",))))
    none_clicked = f.subset(np.flatnonzero(~f.clicked))
    with pytest.raises(ValueError, match="both clicked and unclicked"):
        R.train_ranker(model, R.RankingInputs.make(none_clicked, norm, spec), progress=False)
    with pytest.raises(ValueError, match="hidden"):
        R.RankingModel(40, 2, spec, hidden=(0,))
    with pytest.raises(ValueError, match="video_init"):
        R.RankingModel(40, 2, spec, dim=4, video_init=np.zeros((3, 4)))
    assert R.RankingSpec().without("video").groups == tuple(g for g in R.ALL_GROUPS if g != "video")


# ----------------------------------------------------------------------------------------------------
# Evaluation helpers
# ----------------------------------------------------------------------------------------------------


def test_ndcg_within_groups_matches_sklearn_per_group():
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 12, 300)
    scores = rng.normal(size=300)  # distinct: no tie conventions involved
    gains = np.where(rng.random(300) < 0.2, rng.exponential(100.0, 300), 0.0)
    expected = []
    for g in np.unique(groups):
        m = groups == g
        if gains[m].sum() > 0 and m.sum() > 1:
            expected.append(ndcg_score(gains[m][None, :], scores[m][None, :], k=10))
    assert R.ndcg_within_groups(groups, scores, gains, k=10) == pytest.approx(np.mean(expected))
    with pytest.raises(ValueError, match="no group"):
        R.ndcg_within_groups(groups, scores, np.zeros(300))
    with pytest.raises(ValueError, match="same length"):
        R.ndcg_within_groups(groups, scores[:3], gains)


def test_calibration_table_bins():
    pred = np.arange(100.0)
    table = R.calibration_table(pred, 2 * pred, n_bins=4)
    assert list(table["n"]) == [25] * 4
    np.testing.assert_allclose(table["truth"], 2 * table["predicted"])
    with pytest.raises(ValueError, match="equal length"):
        R.calibration_table(pred, pred[:5])


def test_evaluate_scores_shape_error():
    users, videos, imp, _ = planted(200)
    f = R.RankingFeatureBuilder(users, videos, imp, 2).build(imp)
    with pytest.raises(ValueError, match="one score per impression"):
        R.evaluate_scores(f, np.zeros(3))


def test_dcg_within_groups_matches_a_naive_loop():
    rng = np.random.default_rng(4)
    groups = rng.integers(0, 8, 120)
    scores = rng.normal(size=120)
    gains = np.where(rng.random(120) < 0.3, rng.exponential(50.0, 120), 0.0)
    per_group = []
    for g in np.unique(groups):
        m = groups == g
        if gains[m].sum() > 0:
            top = gains[m][np.argsort(-scores[m])][:10]
            per_group.append(np.sum(top / np.log2(np.arange(len(top)) + 2)))
    assert R.dcg_within_groups(groups, scores, gains) == pytest.approx(np.mean(per_group))


def test_evaluate_scores_with_expected_watch():
    users, videos, imp, truth = planted(400)
    f = R.RankingFeatureBuilder(users, videos, imp, 2).build(imp)
    ev = R.evaluate_scores(f, truth, expected_watch=truth)
    assert ev["ndcg@10_expected_watch"] == pytest.approx(1.0)  # the truth ranks itself perfectly
    assert set(ev) == {"auc", "gauc", "wpul", "ndcg@10_realised_watch", "dcg@10_realised_watch",
                       "ndcg@10_expected_watch"}
    with pytest.raises(ValueError, match="expected_watch"):
        R.evaluate_scores(f, truth, expected_watch=truth[:3])


def test_truth_of_impressions_on_a_tiny_simulation():
    from ytrec_lib.data import datasets

    ds = datasets.load("tiny", seed=0, progress=False)
    imp = ds.impressions.iloc[:200]
    ewt = R.true_expected_watch(ds, imp)
    p = R.true_click_probability(ds, imp)
    assert ewt.shape == p.shape == (200,) and (ewt >= 0).all() and ((p >= 0) & (p <= 1)).all()
    home = (imp["source"].astype(str) == "home").to_numpy()
    h = imp[home]
    direct = ds.truth.expected_watch_time(h["user_id"].to_numpy(), h["video_id"].to_numpy(),
                                          h["time"].to_numpy(), h["position"].to_numpy(), "home")
    np.testing.assert_allclose(ewt[home], direct, rtol=1e-6)
    with pytest.raises(KeyError, match="position"):
        R.true_expected_watch(ds, imp.drop(columns="position"))
    no_truth = type("NoTruth", (), {"truth": None})()
    with pytest.raises(ValueError, match="no ground truth"):
        R.true_click_probability(no_truth, imp)


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_candidate_scorer_trains_with_either_softmax_on_a_tiny_simulation(loss):
    from ytrec_lib.data import datasets

    ds = datasets.load("tiny", seed=0, progress=False)
    model, builder = pipeline.candidate_scorer(ds, 7.0, epochs=1, loss=loss, seed=0, progress=False,
                                               cache=False)
    imp = ds.impressions.iloc[:50]
    scores = R.candidate_scores(model, builder, imp["user_id"], imp["video_id"], imp["time"], progress=False)
    assert scores.shape == (50,) and np.isfinite(scores).all()
    again = pipeline.candidate_scorer(ds, 7.0, epochs=1, loss=loss, seed=0, progress=False, cache=False)
    np.testing.assert_array_equal(
        scores, R.candidate_scores(*again, imp["user_id"], imp["video_id"], imp["time"], progress=False))


def test_candidate_scorer_rejects_an_unknown_softmax():
    from ytrec_lib.data import datasets

    ds = datasets.load("tiny", seed=0, progress=False)
    with pytest.raises(ValueError, match="loss must be 'full' or 'sampled'"):
        pipeline.candidate_scorer(ds, 7.0, epochs=1, loss="hierarchical", progress=False, cache=False)


# ----------------------------------------------------------------------------------------------------
# The experiments of notebook 07
# ----------------------------------------------------------------------------------------------------


def test_preset_defaults_and_layer_names():
    for table in (R.PRESET_LAYERS, R.PRESET_MAX_TRAIN, R.PRESET_CANDIDATE_LOSS):
        assert {"tiny", "ci", "small", "large"} <= set(table)
    assert all(configs[0] == [] for configs in R.PRESET_LAYERS.values())  # the sweep starts at no layer
    assert set(R.PRESET_CANDIDATE_LOSS.values()) <= {"full", "sampled"}
    assert R.layer_name([]) == "none" and R.layer_name((64, 32)) == "64-32" and R.layer_name([7]) == "7"


def test_top_rows_within_groups_match_a_naive_loop():
    rng = np.random.default_rng(3)
    groups, scores = rng.integers(0, 6, 80), rng.normal(size=80)
    got = R.top_rows_within_groups(groups, scores, k=3)
    want = []
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        want += list(rows[np.argsort(-scores[rows], kind="stable")][:3])
    np.testing.assert_array_equal(got, want)
    assert len(R.top_rows_within_groups([1, 1, 2], [0.5, 0.7, 0.1], k=5)) == 3  # a group smaller than k
    with pytest.raises(ValueError, match="equal length"):
        R.top_rows_within_groups([1, 2], [0.5])


@pytest.fixture(scope="module")
def tiny_ranking_data():
    from ytrec_lib.data import datasets

    ds = datasets.load("tiny", seed=0, progress=False)
    data = pipeline.ranking_data(ds, candidate_epochs=1, n_bins=50, seed=0, progress=False, cache=False)
    return ds, data


def test_train_and_evaluate_scores_the_test_impressions(tiny_ranking_data):
    _, data = tiny_ranking_data
    ranker, logits, ev = R.train_and_evaluate(data, "weighted", hidden=[8], dim=4, epochs=1, seed=0)
    assert ranker.objective == "weighted" and logits.shape == (len(data.test),) and np.isfinite(logits).all()
    np.testing.assert_array_equal(logits, ranker.predict(data.test))
    assert ev == R.evaluate_scores(data.test, logits, expected_watch=data.test_truth)
    assert "ndcg@10_expected_watch" in ev and 0.0 <= ev["wpul"] <= 1.0
    again = R.train_and_evaluate(data, "weighted", hidden=[8], dim=4, epochs=1, seed=0)[1]
    np.testing.assert_array_equal(logits, again)  # seeded: the same logits
    no_video = data.default_spec().without("video")
    plain = R.train_and_evaluate(data, "plain", no_video, hidden=[], dim=4, epochs=1)[0]
    assert plain.objective == "plain" and "video" not in plain.spec.groups


def test_leaky_candidate_score_replaces_only_the_score(tiny_ranking_data):
    ds, data = tiny_ranking_data
    leaky = pipeline.leaky_ranking_data(ds, data, epochs=1, n_bins=50, seed=0, cache=False, progress=False)
    cs = R.CONTINUOUS.index("candidate_score")
    for new, old in ((leaky.train, data.train), (leaky.test, data.test)):
        np.testing.assert_array_equal(new.clicked, old.clicked)
        np.testing.assert_array_equal(np.delete(new.continuous, cs, 1), np.delete(old.continuous, cs, 1))
        assert np.isfinite(new.continuous[:, cs]).all()
        assert not np.array_equal(new.continuous[:, cs], old.continuous[:, cs])
    assert leaky.split is data.split and leaky.test_truth is data.test_truth
    rows = data.split.train[:20]
    frame = ds.impressions.iloc[rows]
    starts = R.session_start_times(ds.impressions)[rows]
    want = R.candidate_scores(*leaky.candidate, frame["user_id"], frame["video_id"], starts)
    np.testing.assert_allclose(leaky.train.continuous[:20, cs], want, rtol=1e-5)  # batches differ
    x = np.nan_to_num(leaky.train.continuous[:5])
    refit = R.fit_normalizer(leaky.train, 50)
    np.testing.assert_array_equal(leaky.normalizer.transform(x), refit.transform(x))


# ----------------------------------------------------------------------------------------------------
# Training to convergence: the validation period, early stopping, the learning rate chosen on validation
# ----------------------------------------------------------------------------------------------------


def planted_inputs(n_fit: int = 3000, n_valid: int = 1000):
    """The planted task's first ``n_fit`` impressions to fit on and the next ``n_valid`` to validate on."""
    users, videos, imp, _ = planted()
    f = R.RankingFeatureBuilder(users, videos, imp, 2).build(imp)
    tr, va = f.subset(np.arange(n_fit)), f.subset(np.arange(n_fit, n_fit + n_valid))
    norm = R.fit_normalizer(tr, n_bins=100)
    return R.RankingInputs.make(tr, norm, SPEC), R.RankingInputs.make(va, norm, SPEC)


def test_split_by_time_holds_out_the_latest_impressions(tiny_ranking_data):
    _, data = tiny_ranking_data
    fit, valid = R.split_by_time(data.train, 0.1)
    assert len(fit) + len(valid) == len(data.train) and not set(fit) & set(valid)
    assert data.train.times[fit].max() <= data.train.times[valid].min()  # validation follows fitting
    assert len(valid) == pytest.approx(0.1 * len(data.train), rel=0.2)
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="valid_frac must be in"):
            R.split_by_time(data.train, bad)
    same_time = data.train.subset(np.arange(10))
    same_time.times = np.zeros(10)
    with pytest.raises(ValueError, match="do not split"):
        R.split_by_time(same_time, 0.5)


def test_validation_loss_is_the_weighted_loss_of_the_logits():
    train, valid = planted_inputs()
    model = R.RankingModel(40, 2, SPEC, hidden=(8,), dim=4, seed=0)
    z = R.predict_logits(model, valid)  # (n,)
    f = valid.features
    w = np.where(f.clicked, f.watch_time, 1.0) / 7.0
    p = 1 / (1 + np.exp(-z))
    naive = np.mean(w * -(f.clicked * np.log(p) + (~f.clicked) * np.log(1 - p)))
    assert R.validation_loss(model, valid, "weighted", 7.0) == pytest.approx(naive, rel=1e-5)
    plain = np.mean(-(f.clicked * np.log(p) + (~f.clicked) * np.log(1 - p)))
    assert R.validation_loss(model, valid, "plain", 1.0) == pytest.approx(plain, rel=1e-5)


def test_early_stopping_keeps_the_best_epoch():
    """A high rate without weight decay overfits the 300 fitting impressions: validation loss rises,
    training stops ``patience`` epochs after its lowest point, and the kept weights give that loss."""
    train, valid = planted_inputs(n_fit=300)
    model = R.RankingModel(40, 2, SPEC, hidden=(64,), dim=4, seed=0)
    cfg = R.RankTrainConfig(epochs=60, batch_size=32, lr=3e-2, weight_decay=0.0, patience=2)
    hist = R.train_ranker(model, train, cfg, progress=False, valid=valid)
    losses = [e["val_loss"] for e in hist.epochs]
    assert hist.best_epoch == int(np.argmin(losses)) and hist.best_val_loss == min(losses)
    assert len(losses) == hist.best_epoch + 3 < 60  # stopped two epochs after the best one
    w_mean = float(np.where(train.features.clicked, train.features.watch_time, 1.0).mean())
    assert R.validation_loss(model, valid, "weighted", w_mean) == pytest.approx(min(losses), rel=1e-6)


def test_without_patience_every_epoch_runs_and_the_last_weights_stay():
    train, valid = planted_inputs(n_fit=300)
    model = R.RankingModel(40, 2, SPEC, hidden=(8,), dim=4, seed=0)
    hist = R.train_ranker(model, train, R.RankTrainConfig(epochs=4), progress=False, valid=valid)
    assert len(hist.epochs) == 4 and hist.best_epoch == 3 and all("val_loss" in e for e in hist.epochs)
    assert np.isnan(R.RankHistory().best_val_loss)


def test_early_stopping_needs_validation_impressions():
    train, valid = planted_inputs(n_fit=300)
    model = R.RankingModel(40, 2, SPEC, hidden=(8,), dim=4, seed=0)
    with pytest.raises(ValueError, match="needs validation impressions"):
        R.train_ranker(model, train, R.RankTrainConfig(patience=2), progress=False)
    other = R.RankingInputs.make(valid.features, valid.normalizer, R.RankingSpec(groups=("duration",)))
    with pytest.raises(ValueError, match="validation inputs were made with another"):
        R.train_ranker(model, train, R.RankTrainConfig(patience=2), progress=False, valid=other)
    with pytest.raises(ValueError, match="patience must be >= 0"):
        R.RankTrainConfig(patience=-1)


def test_fit_converged_chooses_the_rate_with_the_lowest_validation_loss(tiny_ranking_data):
    _, data = tiny_ranking_data
    ranker, losses = R.fit_converged(data, "weighted", lrs=(1e-1, 1e-3), hidden=(8,), dim=4, max_epochs=6,
                                     patience=2, seed=0)
    assert set(losses) == {1e-1, 1e-3} and ranker.lr == min(losses, key=losses.get)
    assert ranker.history.best_val_loss == losses[ranker.lr] and len(ranker.history.epochs) <= 6
    again = R.train_and_evaluate(data, "weighted", hidden=(8,), dim=4, epochs=6, lrs=(1e-1, 1e-3), patience=2)
    assert again[0].lr == ranker.lr
    np.testing.assert_array_equal(again[1], ranker.predict(data.test))  # seeded: the same ranker
    with pytest.raises(ValueError, match="at least one learning rate"):
        R.fit_converged(data, lrs=())
    with pytest.raises(ValueError, match="patience must be >= 1"):
        R.fit_converged(data, patience=0)
