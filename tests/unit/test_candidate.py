"""Tests of ytrec_lib.models.candidate: shapes, softmax = inner product, cold start, training (with
ytrec_lib.train.fit), checkpoints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ytrec_lib import pipeline
from ytrec_lib.features import FeatureBuilder, FeatureEncoder, FeatureSpec, feature_set
from ytrec_lib.metrics import top_k
from ytrec_lib.models.candidate import (
    CandidateModel,
    average_embedding_rank,
    evaluate_recall,
    inner_product_scores,
    label_in_top_k,
    rank_videos,
    synthetic_batch,
)
from ytrec_lib.train import TrainConfig, batch_loss, fit, make_sampler

N_CLUSTERS, PER_CLUSTER = 6, 10
N_VIDEOS, N_TOKENS, N_REGIONS = N_CLUSTERS * PER_CLUSTER, 12, 4


def planted_task(n_users: int = 240, seed: int = 0):
    """Users belong to a cluster of 10 videos and watch 8 of them in random order; each watch after the
    first is a training example (label = that watch, history = the watches before it)."""
    rng = np.random.default_rng(seed)
    cluster = np.arange(n_users) % N_CLUSTERS
    vids = np.stack([rng.permutation(PER_CLUSTER)[:8] + PER_CLUSTER * c for c in cluster])  # (U, 8)
    watches = pd.DataFrame({
        "user_id": np.repeat(np.arange(n_users), 8),
        "time": np.tile(np.arange(8, dtype=float), n_users),
        "video_id": vids.ravel(),
    })
    users = pd.DataFrame({"user_id": np.arange(n_users), "region": cluster % N_REGIONS,
                          "age": rng.uniform(15, 70, n_users), "gender": rng.integers(0, 2, n_users)})
    searches = pd.DataFrame({"user_id": np.arange(n_users), "time": np.full(n_users, 0.5),
                             "tokens": [np.array([c % N_TOKENS, 2 * c % N_TOKENS]) for c in cluster]})
    ex = watches[watches["time"] >= 1]
    return users, watches, searches, ex


def planted_features(spec: FeatureSpec | None = None, seed: int = 0):
    users, watches, searches, ex = planted_task(seed=seed)
    enc = FeatureEncoder.fit(users, N_VIDEOS, N_TOKENS, N_REGIONS, spec, window=(0.0, 8.0))
    fb = FeatureBuilder.from_tables(enc, watches, users, searches)
    feats = fb.examples(ex["user_id"], ex["time"], window_end=8.0)
    return fb, feats, ex["video_id"].to_numpy()


def small_model(**kw) -> CandidateModel:
    args = {"n_videos": N_VIDEOS, "n_tokens": N_TOKENS, "n_regions": N_REGIONS, "dim": 8, "tower": (32, 16)}
    return CandidateModel(**(args | kw))


QUICK = TrainConfig(epochs=6, batch_size=64, lr=1e-2, seed=0)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("tower", [(), (16,), (32, 16), (64, 32, 16), (64, 32, 16, 8)])
def test_shapes_for_depth_0_to_4(tower):
    _, feats, _ = planted_features()
    model = small_model(tower=tower)
    batch = feats.batch(np.arange(5))
    m = tower[-1] if tower else 8 + 8 + 8 + FeatureSpec().n_dense
    assert model.m == m
    assert model.user_embeddings(batch).shape == (5, m)
    assert model(batch).shape == (5, N_VIDEOS)
    assert model.video_embeddings().shape == (N_VIDEOS, m)
    u, v = model.augmented_embeddings(batch)
    assert u.shape == (5, m + 1) and v.shape == (N_VIDEOS, m + 1)
    assert (u[:, -1] == 1).all()
    assert torch.equal(v[:, -1], model.output.bias.detach())
    if tower:
        assert (model.user_embeddings(batch) >= 0).all()  # the last layer is a ReLU


def test_augmented_inner_products_reproduce_the_logits():
    _, feats, _ = planted_features()
    model = small_model()
    with torch.no_grad():
        model.output.bias.normal_()
    batch = feats.batch(np.arange(50))
    u, v = model.augmented_embeddings(batch)
    np.testing.assert_allclose(inner_product_scores(u, v), model.logits64(batch).numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(model(batch).detach().numpy(), model.logits64(batch).numpy(), atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_videos=st.integers(2, 40),
    depth=st.integers(0, 3),
    k=st.integers(1, 40),
    n_dupes=st.integers(0, 5),
)
def test_top_k_by_softmax_equals_top_k_by_inner_product(seed, n_videos, depth, k, n_dupes):
    """On random small models (with some duplicated video columns, i.e. exact ties), the top-k by
    softmax probability equals the top-k by inner product over the augmented embeddings, in order."""
    k = min(k, n_videos)
    model = CandidateModel(n_videos, 5, 3, dim=4, tower=(8,) * depth, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.output.bias.copy_(torch.randn(n_videos, generator=g))
        for _ in range(n_dupes):  # video j becomes an exact copy of video i: a tie
            i, j = torch.randint(0, n_videos, (2,), generator=g).tolist()
            model.output.weight[j] = model.output.weight[i]
            model.output.bias[j] = model.output.bias[i]
    batch, _ = synthetic_batch(n_videos, 5, 3, model.spec, 7, seed=seed)
    by_softmax = top_k(model.probabilities(batch).numpy(), k)
    u, v = model.augmented_embeddings(batch)
    by_inner = top_k(inner_product_scores(u, v), k)
    np.testing.assert_array_equal(by_softmax, by_inner)
    np.testing.assert_array_equal(model.recommend(batch, k), by_inner)


def test_recommend_excludes_and_breaks_ties_like_metrics_top_k():
    model = small_model(tower=(4,))
    with torch.no_grad():
        model.output.weight.zero_()
        model.output.bias.zero_()
        model.output.bias[[7, 3, 9]] = 1.0  # three tied leaders, then everything else tied
    batch, _ = synthetic_batch(N_VIDEOS, N_TOKENS, N_REGIONS, model.spec, 2)
    assert model.recommend(batch, 4).tolist() == [[3, 7, 9, 0]] * 2
    padded = np.array([[3, -1], [9, 0]])
    assert model.recommend(batch, 4, exclude=padded).tolist() == [[7, 9, 0, 1], [3, 7, 1, 2]]
    assert model.recommend(batch, 2, exclude=[np.array([7]), np.array([], np.int64)]).tolist() == [
        [3, 9], [3, 7]]


def test_cold_start_and_unknown_user_still_get_a_valid_prediction():
    fb, _, _ = planted_features()
    model = small_model()
    feats = fb.examples([0, 10_000], [0.0, 3.0])  # user 0 before any watch; user 10000 unknown
    probs = model.probabilities(feats.batch())
    assert probs.shape == (2, N_VIDEOS)
    assert torch.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(1).numpy(), 1.0, rtol=1e-12)
    rec = model.recommend(feats.batch(), 5)
    assert rec.shape == (2, 5) and len(set(rec[0].tolist())) == 5


def test_watches_only_model_with_empty_history_still_predicts():
    fb, _, _ = planted_features(feature_set("watches"))
    model = small_model(spec=feature_set("watches"))
    probs = model.probabilities(fb.examples([0], [0.0]).batch())  # no history, no demographics
    assert torch.isfinite(probs).all() and probs.sum().item() == pytest.approx(1.0)


def test_raw_out_of_range_ids_are_refused_with_a_clear_error():
    model = small_model()
    batch, _ = synthetic_batch(N_VIDEOS, N_TOKENS, N_REGIONS, model.spec, 3)
    batch["watch_ids"][0, 0] = N_VIDEOS + 5
    with pytest.raises(ValueError, match="map_unknown"):
        model(batch)
    batch["watch_ids"][0, 0] = N_VIDEOS  # the padding index itself is fine
    assert torch.isfinite(model(batch)).all()


def test_padding_row_is_zero_and_left_out_of_the_mean():
    model = small_model()
    w = model.watch_emb.weight.detach()
    assert (w[N_VIDEOS] == 0).all()
    bag = model.watch_emb(torch.tensor([[3, 4, N_VIDEOS, N_VIDEOS]])).detach()
    np.testing.assert_allclose(bag[0].numpy(), ((w[3] + w[4]) / 2).numpy(), rtol=1e-6)


def test_training_beats_random_on_a_planted_task():
    _, feats, labels = planted_features()
    model = small_model()
    before = evaluate_recall(model, feats, labels, k=10, exclude_watched=False)
    fit(model, feats, labels, QUICK, progress=False)
    after = evaluate_recall(model, feats, labels, k=10, exclude_watched=False)
    assert after > 0.8 > 3 * (10 / N_VIDEOS)  # each cluster's 10 videos fill the top 10; random gets 1/6
    assert after > before + 0.3


def test_sampled_softmax_loss_decreases_and_learns():
    _, feats, labels = planted_features()
    model = small_model()
    cfg = TrainConfig(loss="sampled", n_negatives=15, proposal="popularity", epochs=6, batch_size=64,
                      lr=1e-2, seed=1)
    hist = fit(model, feats, labels, cfg, progress=False)
    losses = [e["loss"] for e in hist.epochs]
    assert losses[-1] < 0.6 * losses[0]
    assert evaluate_recall(model, feats, labels, k=10, exclude_watched=False) > 0.6


def test_sampled_softmax_gives_gradients_only_to_sampled_rows():
    model = small_model()
    batch, labels = synthetic_batch(N_VIDEOS, N_TOKENS, N_REGIONS, model.spec, 8)
    cfg = TrainConfig(loss="sampled", n_negatives=5, proposal="uniform")
    sampler = make_sampler(N_VIDEOS, "uniform")
    batch_loss(model, batch, labels, cfg, sampler, np.random.default_rng(0)).backward()
    grad = model.output.weight.grad
    assert grad.is_sparse
    touched = set(grad.coalesce().indices()[0].tolist())
    negatives = sampler.sample(labels.numpy(), 5, np.random.default_rng(0)).tolist()
    assert touched == set(labels.tolist()) | set(negatives)


def test_sampled_loss_approaches_the_full_loss_with_many_negatives():
    """With a uniform proposal and the logQ correction, the sampled loss estimates the full softmax."""
    model = small_model()
    batch, labels = synthetic_batch(N_VIDEOS, N_TOKENS, N_REGIONS, model.spec, 32)
    with torch.no_grad():
        model.output.weight.normal_(0, 0.5)
    full = batch_loss(model, batch, labels, TrainConfig(loss="full")).item()
    cfg = TrainConfig(loss="sampled", n_negatives=20_000, proposal="uniform", remove_accidental_hits=False)
    sampled = batch_loss(model, batch, labels, cfg, make_sampler(N_VIDEOS, "uniform"),
                         np.random.default_rng(0)).item()
    assert sampled == pytest.approx(full, rel=0.05)
    with pytest.raises(ValueError, match="counts"):
        make_sampler(N_VIDEOS, "popularity")


def test_training_is_deterministic_for_a_seed():
    _, feats, labels = planted_features()
    cfg = TrainConfig(loss="sampled", n_negatives=10, epochs=2, batch_size=64, seed=3)
    states = []
    for seed in (0, 0, 1):
        model = small_model(seed=seed)
        fit(model, feats, labels, cfg, progress=False)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not torch.equal(states[0]["output.weight"], states[2]["output.weight"])


def test_early_stopping_restores_the_best_epoch():
    _, feats, labels = planted_features()
    model = small_model()
    cfg = TrainConfig(epochs=8, batch_size=64, lr=3e-2, patience=1, eval_k=5, exclude_watched=False)
    hist = fit(model, feats, labels, cfg, val=(feats, labels), progress=False)
    recalls = [e["val_recall"] for e in hist.epochs]
    assert hist.best_val_recall == max(recalls)
    assert recalls[hist.best_epoch] == max(recalls)
    assert evaluate_recall(model, feats, labels, k=5, exclude_watched=False) == pytest.approx(max(recalls))
    assert len(hist.epochs) == 8 or recalls[-1] <= max(recalls)


def test_frozen_pretrained_embeddings_stay_fixed():
    _, feats, labels = planted_features()
    init = np.random.default_rng(0).normal(size=(N_VIDEOS, 8)).astype(np.float32)
    model = small_model(video_init=init, freeze_embeddings=True)
    fit(model, feats, labels, TrainConfig(epochs=1, batch_size=64), progress=False)
    np.testing.assert_array_equal(model.watch_emb.weight[:N_VIDEOS].detach().numpy(), init)
    tuned = small_model(video_init=init)
    fit(tuned, feats, labels, TrainConfig(epochs=1, batch_size=64), progress=False)
    assert not np.array_equal(tuned.watch_emb.weight[:N_VIDEOS].detach().numpy(), init)
    with pytest.raises(ValueError, match="video_init has shape"):
        small_model(video_init=init[:, :3])


def test_checkpoint_round_trip(tmp_path):
    _, feats, _ = planted_features(feature_set("watches+searches"))
    model = small_model(spec=feature_set("watches+searches"), tower=(16,), seed=4)
    path = pipeline.save_candidate_checkpoint(tmp_path / "m.pt", model, {"preset": "tiny", "epochs": 3})
    loaded, extra = pipeline.load_candidate_checkpoint(path)
    assert extra == {"preset": "tiny", "epochs": 3}
    assert loaded.spec == model.spec and loaded.hparams == model.hparams
    batch = feats.batch(np.arange(10))
    assert torch.equal(loaded(batch), model(batch))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp file left behind
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        pipeline.load_candidate_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        pipeline.load_candidate_checkpoint(tmp_path / "missing.pt")


def test_bad_configuration_gives_clear_errors():
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="hinge")
    with pytest.raises(ValueError, match="every feature group off"):
        small_model(spec=FeatureSpec(watches=False, searches=False, example_age=False, demographics=False))
    with pytest.raises(ValueError, match="tower widths"):
        small_model(tower=(8, 0))
    _, feats, labels = planted_features()
    with pytest.raises(ValueError, match="video ids"):
        fit(small_model(), feats, labels + N_VIDEOS, QUICK, progress=False)
    with pytest.raises(ValueError, match="FeatureSpec"):
        fit(small_model(spec=feature_set("watches")), feats, labels, QUICK, progress=False)


def test_rank_videos_excludes_everything_watched_before_the_example():
    fb, feats, labels = planted_features()
    model = small_model()
    ranked = rank_videos(model, feats, k=N_VIDEOS)
    watched = feats.watched_before()
    for i in range(0, len(feats), 97):
        row = ranked[i]
        assert not set(row[row >= 0].tolist()) & set(watched[i].tolist())
        assert (row == -1).sum() == len(set(watched[i].tolist()))
    plain = rank_videos(model, feats, k=5, exclude_watched=False)
    np.testing.assert_array_equal(plain, top_k(model(feats.batch()).detach().numpy(), 5))


def test_average_embedding_baseline_matches_a_direct_computation():
    _, feats, _ = planted_features()
    vecs = np.random.default_rng(0).normal(size=(N_VIDEOS, 5))
    ranked = average_embedding_rank(vecs, feats, k=3, exclude_watched=False)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    for i in (0, 17, 400):
        bag = feats.batch([i])
        ids = bag["watch_ids"][0, : int(bag["watch_len"][0])].numpy()
        scores = unit @ unit[ids].mean(0)
        assert ranked[i].tolist() == np.argsort(-scores, kind="stable")[:3].tolist()
    with pytest.raises(ValueError, match="vectors must be"):
        average_embedding_rank(vecs[:5], feats)


def test_trained_candidate_model_is_cached_by_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    settings_ = {"epochs": 1, "tower": [16], "n_negatives": 50, "dim": 8}
    first = pipeline.candidate_model("tiny", 0, progress=False, **settings_)
    assert not first.from_cache and first.path.exists() and len(first.history) == 1
    again = pipeline.candidate_model("tiny", 0, progress=False, **settings_)
    assert again.from_cache and again.path == first.path
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(),
                                                  again.model.state_dict().values(), strict=True))
    other = pipeline.candidate_model("tiny", 0, progress=False, **(settings_ | {"features": "watches"}))
    assert other.path != first.path and other.model.spec.n_dense == 0
    test = again.examples("test")
    assert len(test) == len(again.labels("test")) and (test.dense[:, -1] == 0).all()  # example age 0
    assert (again.examples("train").dense[:, -1] > 0).any()
    reseeded = pipeline.candidate_model("tiny", 0, progress=False, **(settings_ | {"train_seed": 5}))
    assert reseeded.path != first.path and len(reseeded.split.train) == len(first.split.train)
    assert not torch.equal(reseeded.model.output.weight, first.model.output.weight)
    with pytest.raises(KeyError, match="unknown setting"):
        pipeline.candidate_model("tiny", 0, progress=False, epoch=3)


# ----------------------------------------------------------------------------- notebook 03's experiments
def test_small_run_budget_per_preset_and_a_default_for_real_datasets():
    from ytrec_lib.models.candidate import DEFAULT_SMALL_RUN_BUDGET, small_run_budget

    assert small_run_budget("ci") == (5, 15_000) and small_run_budget("tiny") == (3, 5_000)
    assert small_run_budget("movielens-1m") == DEFAULT_SMALL_RUN_BUDGET


def test_count_parameters_counts_every_scalar():
    from ytrec_lib.models.candidate import count_parameters

    assert count_parameters(torch.nn.Linear(3, 4)) == 3 * 4 + 4
    model = small_model()
    assert count_parameters(model) == sum(p.numel() for p in model.parameters()) > 0


def test_evaluation_subset_is_all_or_a_sorted_seeded_sample():
    from ytrec_lib.models.candidate import evaluation_subset

    np.testing.assert_array_equal(evaluation_subset(7, 10), np.arange(7))
    sub = evaluation_subset(1000, 50, seed=3)
    assert len(sub) == 50 == len(set(sub.tolist())) and (np.diff(sub) > 0).all() and sub.max() < 1000
    np.testing.assert_array_equal(sub, evaluation_subset(1000, 50, seed=3))
    np.testing.assert_array_equal(sub, np.sort(np.random.default_rng(3).choice(1000, 50, replace=False)))


def test_ranking_quality_gives_recall_map_and_ndcg():
    from ytrec_lib.models.candidate import ranking_quality

    ranked = np.tile(np.arange(100), (3, 1))  # (3, 100): every row ranks video 0 first, 3 fourth
    q = ranking_quality(ranked, np.array([0, 3, 500]), k_list=[1, 4])
    assert list(q) == ["recall@1", "recall@4", "MAP@100", "NDCG@100"]
    assert q["recall@1"] == pytest.approx(1 / 3) and q["recall@4"] == pytest.approx(2 / 3)
    assert q["MAP@100"] == pytest.approx((1 + 1 / 4) / 3)


def test_probability_by_age_matches_a_direct_computation():
    from types import SimpleNamespace

    from ytrec_lib.models.candidate import probability_by_age

    fb, feats, _ = planted_features()
    run = SimpleNamespace(model=small_model(), builder=fb)
    users, times = feats.users[:50], feats.times[:50]
    upload = np.random.default_rng(0).uniform(-2, 8, N_VIDEOS)
    eligible = upload >= 0
    curve, pairs = probability_by_age(run, users, times, upload, eligible, window_end=8.0, age_days=5,
                                      batch_size=16)
    with torch.no_grad():
        p = run.model.probabilities(fb.examples(users, times, window_end=8.0).batch()).numpy()  # (50, V)
    age = times[:, None] - upload[None, :]
    for a in range(5):
        mask = (age >= 0) & (age < 5) & eligible[None, :] & (age.astype(int) == a)
        assert pairs[a] == mask.sum()
        assert curve[a] == pytest.approx(p[mask].mean() if mask.any() else 0.0)


def test_fresh_lift_compares_the_first_two_days_with_the_second_week():
    from ytrec_lib.models.candidate import fresh_lift

    curve = np.array([4.0, 2.0] + [1.0] * 5 + [0.5] * 7)
    assert fresh_lift(curve) == pytest.approx(3.0 / 0.5)
    assert fresh_lift(np.array([1.0, 1.0] + [0.0] * 12)) == pytest.approx(1e12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_in_top_k_agrees_with_metrics_top_k_on_ties_and_exclusions(seed):
    """Integer scores tie often; exclusions hit labels, tied videos and nothing: the label is found in
    top_k's ranking exactly when label_in_top_k says so, for every k."""
    rng = np.random.default_rng(seed)
    b, n = 40, 30
    scores = rng.integers(0, 4, (b, n)).astype(np.float32)
    scores[0] = -np.inf  # a row of -inf only: ties among everything
    labels = rng.integers(0, n, b)
    rows, vids = np.nonzero(rng.random((b, n)) < 0.2)  # distinct pairs, sorted
    exclude = [vids[rows == i] for i in range(b)]
    for k in (1, 3, 10, n):
        ranked = top_k(scores, k, exclude=exclude)
        expected = (ranked == labels[:, None]).any(axis=1)
        found = label_in_top_k(torch.from_numpy(scores), labels, k, (rows, vids), block=64)
        np.testing.assert_array_equal(found, expected)
        plain = (top_k(scores, k) == labels[:, None]).any(axis=1)
        np.testing.assert_array_equal(label_in_top_k(scores, labels, k), plain)


def test_label_in_top_k_refuses_nan_scores():
    with pytest.raises(ValueError, match="NaN"):
        label_in_top_k(torch.tensor([[0.0, float("nan")]]), torch.tensor([0]), 1)


def test_evaluate_recall_equals_the_recall_of_the_ranking():
    """The counting evaluation gives the recall of rank_videos' ranking, with and without exclusion,
    before and after training (early stopping compares these numbers)."""
    fb, feats, labels = planted_features()
    model = small_model()
    for trained in (False, True):
        if trained:
            fit(model, feats, labels, QUICK, progress=False)
        for k, exclude in ((1, True), (5, True), (5, False), (N_VIDEOS, True)):
            ranked = rank_videos(model, feats, k, exclude_watched=exclude)
            expected = float((ranked == labels[:, None]).any(axis=1).mean())
            found = evaluate_recall(model, feats, labels, k=k, exclude_watched=exclude, batch_size=100)
            assert found == expected


def test_young_share_counts_videos_under_seven_days_at_each_rows_time():
    from ytrec_lib.models.candidate import young_share

    upload = np.array([0.0, 10.0, 18.0, 25.0, 19.0])
    times = np.array([20.0, 26.0])
    # row 0 at day 20: ages 20, 10, 2 (young), -5 (not uploaded yet: not young)
    # row 1 at day 26: ages 1 (young), 8, padding, 16, 7 (not under 7)
    served = np.array([[0, 1, 2, 3, -1], [3, 2, -1, 1, 4]])
    assert young_share(served, times, upload) == pytest.approx(2 / 8)
    assert young_share(np.array([2, 1]), times, upload) == pytest.approx(1 / 2)  # one id per row
    assert young_share(np.array([2, 1]), times, upload, young_days=20.0) == 1.0
    assert np.isnan(young_share(np.full((2, 3), -1), times, upload))
    with pytest.raises(ValueError, match="ids in"):
        young_share(np.array([[5]]), times[:1], upload)
    with pytest.raises(ValueError, match="times"):
        young_share(served, times[:1], upload)


def test_served_young_share_serves_at_example_age_zero_without_watched_videos():
    from types import SimpleNamespace

    from ytrec_lib.models.candidate import served_young_share, young_share

    fb, feats, _ = planted_features()
    run = SimpleNamespace(model=small_model(), builder=fb)
    users, times = feats.users[:40], feats.times[:40]
    upload = np.random.default_rng(1).uniform(-10, 8, N_VIDEOS)
    ranked = rank_videos(run.model, fb.examples(users, times), k=5)  # no window end: example age 0
    assert served_young_share(run, users, times, upload, k=5) == young_share(ranked, times, upload)
    # planted: one user served at day 8 (after all 8 of their watches); uploaded on day 5 every video is
    # 3 days old (share 1), on day -22 30 days old (share 0); when only the watched videos are young, the
    # served share is 0, for watched videos are never served
    user, at = users[:1], np.array([8.0])
    assert served_young_share(run, user, at, np.full(N_VIDEOS, 5.0), k=5) == 1.0
    assert served_young_share(run, user, at, np.full(N_VIDEOS, -22.0), k=5) == 0.0
    watched = fb.examples(user, at).watched_before()[0]
    only_watched_young = np.where(np.isin(np.arange(N_VIDEOS), watched), 5.0, -22.0)
    # k = 53 > the 52 unwatched videos: served without exclusion, at least one watched video would be in it
    assert watched.size == 8 and served_young_share(run, user, at, only_watched_young, k=53) == 0.0
