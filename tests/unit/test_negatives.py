"""Tests of ytrec_lib.studies.negatives and of the study's use of ytrec_lib.train: pooled sampler, training
with any sampler (one batch's loss, the loop), evaluation helpers, global negatives for the ranker, and
the shifting stream for the frequency estimator."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ytrec_lib.models.sampling import (
    ExposedSampler,
    HardNegativeSampler,
    InBatchSampler,
    MixedSampler,
    PooledSampler,
    PopularitySampler,
    StreamingFrequencyEstimator,
    UniformSampler,
    full_softmax_loss,
    positive_in_draws,
    sampled_softmax_loss,
)
from ytrec_lib.studies import negatives as N
from ytrec_lib.train import batch_loss, fit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from planted_task import N_CLUSTERS, N_VIDEOS, PER_CLUSTER, model, planted  # noqa: E402


@pytest.fixture(scope="module")
def task():
    return planted()


# ---------------------------------------------------------------------------- PooledSampler


def test_pooled_sampler_shapes_and_mixture_log_q():
    rng = np.random.default_rng(0)
    uni = UniformSampler(20, shared=True)
    pop = PopularitySampler(np.arange(20.0), 1.0, smoothing=1.0)
    pooled = PooledSampler([(uni, 3), (pop, 5)])
    pos = np.array([1, 2, 3, 4])
    neg = pooled.sample(pos, None, rng)
    assert neg.shape == (4, 8) and neg.dtype == np.int64
    assert (neg[:, :3] == neg[0, :3]).all()  # the shared part is the same for every row
    ids = np.arange(20)
    expected = (3 * (1 / 20) + 5 * pop.q) / 8
    np.testing.assert_allclose(np.exp(pooled.log_q(ids)), expected, rtol=1e-12)
    assert np.isclose(np.exp(pooled.log_q(ids)).sum(), 1.0)


def test_pooled_sampler_empirical_distribution_matches_its_proposal():
    rng = np.random.default_rng(1)
    pop = PopularitySampler(np.arange(10.0) ** 2, 1.0, smoothing=1.0)
    pooled = PooledSampler([(UniformSampler(10), 2), (pop, 2)])
    draws = pooled.sample(np.zeros(5000, np.int64), None, rng).ravel()
    observed = np.bincount(draws, minlength=10)
    expected = np.exp(pooled.log_q(np.arange(10))) * len(draws)
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-3


def test_pooled_sampler_with_hard_negatives_uses_the_users_band():
    ranked = np.tile(np.arange(30), (3, 1))  # every user: 0, 1, ..., 29
    ranked[1] = ranked[1][::-1]
    hard = HardNegativeSampler(ranked, 30, lo=5, hi=10)
    pooled = PooledSampler([(hard, 4)])
    neg = pooled.sample(np.array([0, 0]), None, 0, user_ids=np.array([0, 1]))
    assert set(neg[0]) <= set(range(5, 10)) and set(neg[1]) <= set(range(20, 25))
    lq = pooled.log_q(neg, pos_ids=np.array([0, 0]), user_ids=np.array([0, 1]))
    np.testing.assert_allclose(lq, np.log(1 / 5))


def test_pooled_sampler_refuses_bad_parts():
    with pytest.raises(ValueError, match="at least one"):
        PooledSampler([])
    with pytest.raises(ValueError, match="catalogue"):
        PooledSampler([(UniformSampler(10), 1), (UniformSampler(11), 1)])
    with pytest.raises(ValueError, match="per row"):
        PooledSampler([(UniformSampler(10), 2)]).sample(np.array([1]), 3, 0)


# ---------------------------------------------------------------------------- the loss of one batch


def retrieval_loss(m, batch, pos, users, sampler, n_negatives, rng, *, logq_correction=True):
    """The study's loss of one batch (sampler None: the full softmax), through ytrec_lib.train.batch_loss."""
    cfg = N.strategy_config(N.study_config(n_negatives=max(n_negatives, 1)), sampler, logq_correction)
    return batch_loss(m, batch, pos, cfg, sampler, rng, users=users)


def train_retrieval(m, feats, labels, sampler, budget=None, *, logq_correction=True):
    """The study's training of one strategy (sampler None: the full softmax); per-epoch records."""
    cfg = N.strategy_config(budget or N.study_config(), sampler, logq_correction)
    return fit(m, feats, labels, cfg, sampler=sampler).epochs


def _batch(task, n=32):
    feats, labels, _ = task
    idx = np.arange(n)
    return feats.batch(idx), labels[idx], feats.users[idx]


def test_retrieval_loss_matches_a_direct_sampled_softmax(task):
    batch, pos, users = _batch(task)
    m = model()
    sampler = PopularitySampler(np.arange(N_VIDEOS, dtype=float), 0.5, smoothing=1.0, shared=True)
    got = retrieval_loss(m, batch, pos, users, sampler, 7, np.random.default_rng(3))
    neg = sampler.sample(pos, 7, np.random.default_rng(3))
    u = m.user_embeddings(batch)
    want = sampled_softmax_loss(u, m.output.weight, m.output.bias, pos, neg, log_q_neg=sampler.log_q(neg))
    assert torch.isclose(got, want)


def test_retrieval_loss_in_batch_corrects_the_positive_too(task):
    batch, pos, users = _batch(task)
    m = model()
    probs = np.bincount(task[1], minlength=N_VIDEOS) / len(task[1])
    sampler = InBatchSampler(N_VIDEOS, item_probs=probs)
    got = retrieval_loss(m, batch, pos, users, sampler, 0, np.random.default_rng(0))
    # naive reference: the batch's positives' logits minus log(B q); own positive kept, other hits masked
    with torch.no_grad():
        s = (m.user_embeddings(batch) @ m.output.weight[pos].T + m.output.bias[pos]).double()  # (B, B)
    s = s - torch.from_numpy(np.log(len(pos) * probs[pos]))[None, :]
    mask = torch.from_numpy(pos[None, :] == pos[:, None]) & ~torch.eye(len(pos), dtype=torch.bool)
    s = s.masked_fill(mask, float("-inf"))
    want = (torch.logsumexp(s, 1) - s.diagonal()).mean()
    assert abs(got.item() - want.item()) < 1e-4
    plain = retrieval_loss(m, batch, pos, users, sampler, 0, np.random.default_rng(0),
                             logq_correction=False)
    assert abs(plain.item() - got.item()) > 1e-3  # the correction changes the loss


def test_retrieval_loss_with_no_sampler_is_the_full_softmax(task):
    batch, pos, users = _batch(task)
    m = model()
    got = retrieval_loss(m, batch, pos, users, None, 0, np.random.default_rng(0))
    want = full_softmax_loss(m.user_embeddings(batch), m.output.weight, m.output.bias, pos)
    assert torch.isclose(got, want)


def test_retrieval_loss_per_row_samplers_need_and_use_users(task):
    batch, pos, users = _batch(task)
    m = model()
    n_users = int(users.max()) + 1
    exposed = ExposedSampler(N_VIDEOS, np.array([users[0]] * 3), np.array([5, 6, 7]), np.zeros(3, bool),
                             n_users=n_users)
    loss = retrieval_loss(m, batch, pos, users, exposed, 4, np.random.default_rng(0))
    assert torch.isfinite(loss) and loss.item() > 0
    mixed = MixedSampler(InBatchSampler(N_VIDEOS, item_probs=np.full(N_VIDEOS, 1 / N_VIDEOS)))
    assert torch.isfinite(retrieval_loss(m, batch, pos, users, mixed, 5, np.random.default_rng(0)))


# ---------------------------------------------------------------------------- training


def _full_loss(m, feats, labels) -> float:
    with torch.no_grad():
        loss = retrieval_loss(m, feats.batch(), labels, feats.users, None, 0, np.random.default_rng(0))
    return loss.item()


BUDGET = N.study_config(epochs=6, batch_size=64, n_negatives=20)


@pytest.mark.parametrize("kind", ["uniform", "inbatch_logq", "full"])
def test_training_learns_the_planted_clusters(task, kind):
    feats, labels, cluster = task
    probs = np.bincount(labels, minlength=N_VIDEOS) / len(labels)
    samplers = {"uniform": UniformSampler(N_VIDEOS, shared=True),
                "inbatch_logq": InBatchSampler(N_VIDEOS, item_probs=probs), "full": None}
    m = model()
    before = _full_loss(m, feats, labels)
    hist = train_retrieval(m, feats, labels, samplers[kind], BUDGET)
    assert len(hist) == BUDGET.epochs and all(np.isfinite(h["loss"]) for h in hist)
    assert _full_loss(m, feats, labels) < before - 0.5
    with torch.no_grad():
        top = m(feats.batch()).argmax(1).numpy()
    assert ((top // PER_CLUSTER) == cluster[feats.users]).mean() > 0.6  # random: 1 / 6


def test_exposed_negatives_leave_unshown_videos_unpunished(task):
    """The notebook's lesson in miniature: users were shown (and skipped) only the first video of every
    other cluster; trained on those negatives, the model never learns to push the rest down, so its
    full-softmax loss stays worse than with uniform negatives."""
    feats, labels, cluster = task
    n = len(cluster)
    exposed = ExposedSampler(N_VIDEOS, np.repeat(np.arange(n), N_CLUSTERS),
                             np.tile(np.arange(N_CLUSTERS) * PER_CLUSTER, n), np.zeros(n * N_CLUSTERS, bool))
    losses = {}
    for name, sampler in (("exposed", exposed), ("uniform", UniformSampler(N_VIDEOS, shared=True))):
        m = model()
        train_retrieval(m, feats, labels, sampler, BUDGET)
        losses[name] = _full_loss(m, feats, labels)
    assert losses["exposed"] > losses["uniform"] + 0.5


def test_training_is_deterministic_for_a_seed(task):
    feats, labels, _ = task
    weights = []
    for _ in range(2):
        m = model(seed=3)
        train_retrieval(m, feats, labels, UniformSampler(N_VIDEOS, shared=True),
                          N.study_config(epochs=1, batch_size=64, n_negatives=10, seed=5))
        weights.append(m.output.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


def test_training_refuses_bad_input(task):
    feats, labels, _ = task
    m = model()
    with pytest.raises(ValueError, match="one label per example"):
        train_retrieval(m, feats, labels[:-1], None)
    with pytest.raises(ValueError, match="video ids"):
        train_retrieval(m, feats, labels + N_VIDEOS, None)
    with pytest.raises(ValueError, match="draws from"):
        train_retrieval(m, feats, labels, UniformSampler(N_VIDEOS + 1))
    with pytest.raises(ValueError, match="n_negatives"):
        N.study_config(n_negatives=0)


def test_positive_in_draws_only_for_in_batch_and_mixed():
    ib = InBatchSampler(10, item_probs=np.full(10, 0.1))
    assert positive_in_draws(ib) and positive_in_draws(MixedSampler(ib))
    assert not positive_in_draws(UniformSampler(10))


# ---------------------------------------------------------------------------- evaluation helpers


@given(st.lists(st.integers(0, 5), min_size=1, max_size=40))
@settings(max_examples=50, deadline=None)
def test_popularity_percentile_matches_a_naive_definition(counts):
    counts = np.array(counts)
    pct = N.popularity_percentile(counts)
    # naive: (number strictly below + (number equal + 1) / 2) / n * 100
    naive = [100 * ((counts < c).sum() + ((counts == c).sum() + 1) / 2) / len(counts) for c in counts]
    np.testing.assert_allclose(pct, naive)
    assert pct.min() > 0 and pct.max() <= 100


def test_recall_and_popularity_against_a_loop():
    rng = np.random.default_rng(0)
    ranked = rng.integers(-1, 20, size=(30, 5))
    labels = rng.integers(0, 20, size=30)
    pct = rng.uniform(0, 100, size=20)
    recall, pop = N.recall_and_popularity(ranked, labels, pct)
    hits = [labels[i] in ranked[i] for i in range(30)]
    vals = [pct[v] for row in ranked for v in row if v >= 0]
    assert recall == pytest.approx(np.mean(hits)) and pop == pytest.approx(np.mean(vals))
    with pytest.raises(ValueError):
        N.recall_and_popularity(ranked[:, 0], labels, pct)


def test_evaluate_retrieval_and_previous_model_ranking(task):
    feats, labels, _ = task
    m = model()
    res = N.evaluate_retrieval(m, feats, labels, np.linspace(1, 100, N_VIDEOS), k=10)
    assert 0 <= res["recall"] <= 1 and 1 <= res["popularity_pct"] <= 100
    users = np.arange(int(feats.users.max()) + 1)
    first = np.unique(feats.users, return_index=True)[1]
    per_user = feats.subset(first)
    ranked = N.previous_model_ranking(m, per_user, len(users), hi=20)
    assert ranked.shape == (len(users), 20)
    watched = per_user.watched_before()
    assert all(not np.isin(ranked[i], watched[i]).any() for i in range(len(users)))
    with pytest.raises(ValueError, match="one example per user"):
        N.previous_model_ranking(m, feats, len(users), hi=20)


# ---------------------------------------------------------------------------- global negatives for ranking


def _log(seed=0):
    rng = np.random.default_rng(seed)
    n = 400
    return pd.DataFrame({"user_id": rng.integers(0, 20, n), "video_id": rng.integers(0, 50, n),
                         "time": np.sort(rng.uniform(5, 10, n)), "session_id": np.arange(n) // 4,
                         "position": np.arange(n) % 4, "clicked": rng.random(n) < 0.3,
                         "watch_time": rng.uniform(0, 100, n).astype(np.float32)})


def test_global_negatives_keep_positives_and_draw_unwatched_uploaded_videos():
    imp = _log()
    upload = np.linspace(0, 9, 50)  # video j out at upload[j]
    out = N.global_negative_impressions(imp, upload, seed=1)
    clicked = imp["clicked"].to_numpy()
    pd.testing.assert_frame_equal(out[clicked], imp[clicked])
    keep = ["user_id", "time", "session_id", "position", "clicked"]
    pd.testing.assert_frame_equal(out[keep], imp[keep])
    neg = out[~clicked]
    assert (upload[neg["video_id"]] < neg["time"]).all()
    watched = set(zip(imp.loc[clicked, "user_id"], imp.loc[clicked, "video_id"], strict=True))
    assert not any((u, v) in watched for u, v in zip(neg["user_id"], neg["video_id"], strict=True))
    assert (neg["watch_time"] == 0).all()
    again = N.global_negative_impressions(imp, upload, seed=1)
    pd.testing.assert_frame_equal(out, again)
    assert not N.global_negative_impressions(imp, upload, seed=2).equals(out)


def test_global_negatives_are_roughly_uniform_over_what_is_out():
    imp = pd.DataFrame({"user_id": np.zeros(20000, np.int64), "video_id": np.zeros(20000, np.int64),
                        "time": np.full(20000, 100.0), "clicked": np.zeros(20000, bool)})
    out = N.global_negative_impressions(imp, np.arange(10.0), seed=0)
    counts = np.bincount(out["video_id"], minlength=10)
    assert scipy.stats.chisquare(counts).pvalue > 1e-3


def test_global_negatives_refuse_bad_input():
    imp = _log()
    with pytest.raises(ValueError, match="non-decreasing"):
        N.global_negative_impressions(imp, np.linspace(9, 0, 50))
    with pytest.raises(KeyError, match="clicked"):
        N.global_negative_impressions(imp.drop(columns="clicked"), np.linspace(0, 9, 50))
    with pytest.raises(ValueError, match="before any video"):
        N.global_negative_impressions(imp, np.linspace(20, 30, 50))


# ---------------------------------------------------------------------------- the shifting stream


def test_shifting_stream_draws_from_each_phase_distribution():
    s = N.shifting_stream(n_items=50, n_steps=400, batch_size=50, shift_at=100, seed=0)
    assert s.batches.shape == (400, 50) and s.shift_at == 100
    np.testing.assert_allclose(s.probs.sum(axis=1), 1.0)
    for rows, p in ((slice(0, 100), s.probs[0]), (slice(100, 400), s.probs[1])):
        counts = np.bincount(s.batches[rows].ravel(), minlength=50)
        assert scipy.stats.chisquare(counts, p * counts.sum()).pvalue > 1e-3
    assert np.argmax(s.probs[0]) != np.argmax(s.probs[1]) or not np.allclose(s.probs[0], s.probs[1])
    truth = s.true_probability([3, 4])
    np.testing.assert_array_equal(truth[99], s.probs[0, [3, 4]])
    np.testing.assert_array_equal(truth[100], s.probs[1, [3, 4]])
    with pytest.raises(ValueError, match="shift_at"):
        N.shifting_stream(n_steps=10, shift_at=10)


def test_the_estimator_converges_then_tracks_a_shift_faster_with_a_larger_alpha():
    s = N.shifting_stream(n_items=300, n_steps=1200, batch_size=16, zipf_s=1.0, seed=0)
    per_batch = 1 - (1 - s.probs) ** 16                                   # (2, V) P(id in a batch)
    band = (per_batch > 0.05) & (per_batch < 0.5)                         # resolvable ids per phase
    before = np.flatnonzero(band[0])
    moved = np.flatnonzero(band[1] & (np.abs(np.log(s.probs[1] / s.probs[0])) > np.log(4)))
    assert len(before) >= 20 and len(moved) >= 10

    def error(alpha, ids):
        est = N.track_estimates(StreamingFrequencyEstimator(4096, n_hashes=2, alpha=alpha, seed=0), s, ids)
        assert est.shape == (len(s.batches), len(ids))
        return np.median(np.abs(np.log(est / s.true_probability(ids))), axis=1)  # (steps,)

    assert error(0.05, before)[s.shift_at - 1] < 0.25                    # converged on the first phase
    slow, fast = error(0.01, moved), error(0.2, moved)
    assert slow[s.shift_at + 10] > 1.0 and fast[s.shift_at + 10] > 0.5   # the shift throws both off
    assert fast[s.shift_at + 150] < 0.5 < slow[s.shift_at + 150]         # the larger alpha recovers first


# ---------------------------------------------------------------------------- helpers of notebook 06


def test_subsample_examples_is_seeded_and_keeps_the_order(task):
    feats, labels, _ = task
    same_f, same_y = N.subsample_examples(feats, labels, None, seed=0)
    assert same_f is feats and np.array_equal(same_y, labels)
    assert N.subsample_examples(feats, labels, len(labels), seed=0)[0] is feats
    sub_f, sub_y = N.subsample_examples(feats, labels, 50, seed=3)
    keep = np.sort(np.random.default_rng(3).choice(len(labels), 50, replace=False))
    assert len(sub_f) == 50 and np.array_equal(sub_y, labels[keep])
    assert np.array_equal(sub_f.users, feats.users[keep])
    again_f, again_y = N.subsample_examples(feats, labels, 50, seed=3)
    assert np.array_equal(again_y, sub_y) and np.array_equal(again_f.users, sub_f.users)


def test_recall_by_popularity_band_against_a_loop():
    rng = np.random.default_rng(1)
    pct = rng.uniform(0, 100, size=40)
    labels = rng.integers(0, 40, size=300)
    ranked = rng.integers(-1, 40, size=(300, 8))
    got = N.recall_by_popularity_band(ranked, labels, pct)
    assert list(got) == ["tail", "torso", "head"]
    lo, hi = np.quantile(pct[labels], [1 / 3, 2 / 3])
    for name, keep in (("tail", pct[labels] < lo), ("torso", (pct[labels] >= lo) & (pct[labels] < hi)),
                       ("head", pct[labels] >= hi)):
        hits = [labels[i] in ranked[i] for i in np.flatnonzero(keep)]
        assert got[name] == pytest.approx(np.mean(hits)), name
    halves = N.recall_by_popularity_band(ranked, labels, pct, bands=("low", "high"))
    assert list(halves) == ["low", "high"]
    with pytest.raises(ValueError, match="ranked"):
        N.recall_by_popularity_band(ranked[:, 0], labels, pct)
    tied = np.where(pct < 60, 0.0, pct)  # over a third of the labels at the lowest percentile
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice"
        got = N.recall_by_popularity_band(ranked, labels, tied)
    assert np.isnan(got["tail"]) and np.isfinite(got["torso"]) and np.isfinite(got["head"]), got


def _click_log(n_imp: int = 4000, seed: int = 0):
    """Users and videos of 2 languages; P(click) = 0.35 when the languages match, else 0.05."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"user_id": np.arange(40), "language": np.arange(40) % 2})
    videos = pd.DataFrame({"video_id": np.arange(30), "creator_id": np.arange(30) // 3,
                           "topic": np.arange(30) % 5, "upload_time": -rng.random(30) * 10,
                           "duration": rng.uniform(20, 600, 30), "language": (np.arange(30) // 3) % 2})
    u, v = rng.integers(0, 40, n_imp), rng.integers(0, 30, n_imp)
    match = users["language"].to_numpy()[u] == videos["language"].to_numpy()[v]
    clicked = rng.random(n_imp) < np.where(match, 0.35, 0.05)
    imp = pd.DataFrame({"user_id": u, "video_id": v, "time": np.sort(rng.random(n_imp) * 20),
                        "session_id": np.arange(n_imp) // 4, "position": np.arange(n_imp) % 4,
                        "source": pd.Categorical(["home"] * n_imp), "clicked": clicked,
                        "watch_time": np.where(clicked, 60.0, 0.0)})
    return users, videos, imp


def test_fit_click_ranker_learns_the_clicks_and_is_deterministic():
    from ytrec_lib.models import ranking

    users, videos, imp = _click_log()
    feats = ranking.RankingFeatureBuilder(users, videos, imp, 2).build(imp)
    train, test = feats.subset(np.arange(3000)), feats.subset(np.arange(3000, 4000))
    spec = ranking.RankingSpec(groups=("language", "duration", "video_age"))
    model, res = N.fit_click_ranker(train, test, 30, 2, spec, hidden=(8,), epochs=25, seed=0)
    assert isinstance(model, ranking.RankingModel)
    assert res["auc"] > 0.65 and 0.5 < res["gauc"] <= 1.0     # chance 0.5; knowing the languages ~0.73
    _, again = N.fit_click_ranker(train, test, 30, 2, spec, hidden=(8,), epochs=25, seed=0)
    assert again["auc"] == res["auc"] and again["gauc"] == res["gauc"]


def test_fit_click_ranker_converged_chooses_its_rate_on_validation():
    from ytrec_lib.models import ranking

    users, videos, imp = _click_log()
    feats = ranking.RankingFeatureBuilder(users, videos, imp, 2).build(imp)
    train, valid, test = (feats.subset(np.arange(a, b)) for a, b in ((0, 2500), (2500, 3000), (3000, 4000)))
    spec = ranking.RankingSpec(groups=("language", "duration", "video_age"))
    model, res, lr = N.fit_click_ranker_converged(train, valid, test, 30, 2, spec, lrs=(3e-2, 1e-4),
                                                  hidden=(8,), max_epochs=20, patience=2, seed=0)
    assert lr == 3e-2  # 1e-4 barely moves in 20 epochs: its validation loss stays higher
    assert res["auc"] > 0.65 and 0.5 < res["gauc"] <= 1.0
    again = N.fit_click_ranker_converged(train, valid, test, 30, 2, spec, lrs=(3e-2, 1e-4), hidden=(8,),
                                         max_epochs=20, patience=2, seed=0)
    assert again[1] == res and again[2] == lr  # seeded
    with pytest.raises(ValueError, match="at least one learning rate"):
        N.fit_click_ranker_converged(train, valid, test, 30, 2, spec, lrs=())


def test_ranking_negatives_on_a_tiny_world():
    """Both rankers fit on the same rows, validate on the same logged impressions of a later period, and
    the global set differs from the logged one only in its unclicked videos."""
    from ytrec_lib.data import datasets, splits
    from ytrec_lib.models import ranking

    ds = datasets.load("tiny", seed=0, progress=False)
    split = splits.default_split(ds, seed=0)
    spec = ranking.RankingSpec().without("candidate_score")
    lrs = {"exposed": [1e-2], "global": [1e-2, 1e-3]}
    out = N.ranking_negatives(ds, split, splits.training_watches(ds, split), lrs=lrs, spec=spec, hidden=(8,),
                              max_epochs=3, patience=1, seed=0)
    exp, glob = out.train_sets["exposed"], out.train_sets["global"]
    np.testing.assert_array_equal(exp.clicked, glob.clicked)
    np.testing.assert_array_equal(exp.videos[exp.clicked], glob.videos[glob.clicked])
    assert (exp.videos[~exp.clicked] != glob.videos[~glob.clicked]).mean() > 0.9
    assert exp.times.max() <= out.valid.times.min() and out.valid.times.max() < out.test.times.min()
    assert out.lr["exposed"] == 1e-2 and out.lr["global"] in (1e-2, 1e-3)
    assert set(out.results) == {"exposed", "global"}
    assert all(0 <= r["gauc"] <= 1 for r in out.results.values())
    assert len(out.test) == len(out.test_impressions)
    with pytest.raises(ValueError, match="needs rates for"):
        N.ranking_negatives(ds, split, splits.training_watches(ds, split), lrs={"exposed": [1e-2]}, spec=spec)


def test_retrieval_negatives_on_a_tiny_world():
    """Uniform and exposed negatives, each at the rate with the best validation recall; a rate given
    alone is the one used; the best epoch lies within the cap; test recall is a recall."""
    from ytrec_lib.data import datasets, splits

    ds = datasets.load("tiny", seed=0, progress=False)
    split = splits.default_split(ds, seed=0)
    lrs = {"uniform": [1e-2, 1e-3], "exposed": [3e-3]}
    out = N.retrieval_negatives(ds, split, lrs=lrs, max_epochs=3, patience=1, n_negatives=32, dim=8,
                                tower=(8,), k=20, seed=0)
    assert set(out) == set(N.RETRIEVAL_CROSSOVER) == {"uniform", "exposed"}
    assert out["exposed"]["lr"] == 3e-3 and out["uniform"]["lr"] in (1e-2, 1e-3)
    for r in out.values():
        assert 0.0 <= r["recall"] <= 1.0 and 0.0 <= r["val_recall"] <= 1.0 and 1 <= r["epochs"] <= 3
    again = N.retrieval_negatives(ds, split, lrs=lrs, max_epochs=3, patience=1, n_negatives=32, dim=8,
                                  tower=(8,), k=20, seed=0)
    assert again == out  # deterministic for a seed
    few = N.retrieval_negatives(ds, split, lrs=lrs, max_epochs=1, n_negatives=32, dim=8, tower=(8,), k=20,
                                max_train=40, seed=0)  # a seeded subset of 40 training examples
    assert all(r["epochs"] == 1 for r in few.values())
    with pytest.raises(ValueError, match="needs rates for"):
        N.retrieval_negatives(ds, split, lrs={"uniform": [1e-2]})
    with pytest.raises(ValueError, match="next-watch split"):
        N.retrieval_negatives(ds, splits.leave_last_out_split(ds), lrs=lrs)


def test_stream_recovery_table():
    errors = {0.1: np.array([3.0, 0.3, 0.2, 2.0, 0.5, 0.1]), 0.01: np.array([3.0, 1.0, 0.9, 2.5, 1.2, 1.1])}
    t = N.stream_recovery_table(errors, shift_at=3, within=1.5)
    assert list(t.index) == [0.1, 0.01] and t.index.name == "alpha"
    assert t.loc[0.1, "error before the shift"] == 0.2 and t.loc[0.1, "peak error after"] == 2.0
    assert t.loc[0.1, "error at the end"] == 0.1
    assert t.loc[0.1, "steps to get back within x1.5"] == 2         # 0.1 < log(1.5) two steps after the shift
    assert pd.isna(t.loc[0.01, "steps to get back within x1.5"])     # never back within x1.5
    assert "steps to get back within x2" in N.stream_recovery_table(errors, 3, within=2.0)


def test_negative_sampling_figures_have_titles_and_labelled_axes():
    from ytrec_lib import plots

    names = ["uniform", "inbatch", "exposed", "full_softmax"]
    table = pd.DataFrame({"recall@10": [0.2, 0.15, 0.03, 0.22], "top10 popularity pct": [90.0, 60, 30, 88]},
                         index=pd.Index(names, name="strategy"))
    rng = np.random.default_rng(0)
    figures = [
        plots.strategy_figure(table, 10, 500),
        plots.popularity_histogram_figure({n: rng.uniform(0, 100, 50) for n in names},
                                          {"inbatch": "tab:orange", "uniform": "tab:gray"}, 10),
        plots.crossover_figure([0.17, 0.04], [0.70, 0.75], [0.56, 0.62], 10),
        plots.stream_figure({0.01: rng.random(20), 0.1: rng.random(20)}, 10,
                            [("rising video", "tab:green", rng.random(20), rng.random(20))], 0.1),
    ]
    for fig in figures:
        for ax in fig.axes:
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), fig.axes.index(ax)
    assert figures[2]._suptitle.get_text().startswith("The 2 x 2 crossover")
