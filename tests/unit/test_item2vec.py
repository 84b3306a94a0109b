"""Tests of ytrec_lib.models.item2vec and ytrec_lib.models.cooccurrence_svd
on a seeded corpus with planted topics."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import NearestNeighbors

from ytrec_lib import pipeline
from ytrec_lib.models import item2vec as iv
from ytrec_lib.models.cooccurrence_svd import cooccurrence_matrix, cooccurrence_svd, normalise

# ---------------------------------------------------------------------------------------------
# a planted corpus: items have topics, a user's sequence mostly stays in one topic, Zipf popularity


def planted_corpus(n_items: int = 600, n_topics: int = 10, n_users: int = 1500, mean_len: int = 20,
                   p_stay: float = 0.8, zipf: float = 1.0,
                   seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Sequences (list of int64 arrays, ids offset by 1000 to test the id map) and topics indexed by id."""
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, n_topics, n_items)
    pop = 1.0 / np.arange(1, n_items + 1) ** zipf
    pop = pop[rng.permutation(n_items)]
    members = [np.flatnonzero(topics == t) for t in range(n_topics)]
    within = [pop[m] / pop[m].sum() for m in members]
    sequences = []
    for _ in range(n_users):
        length = max(2, rng.poisson(mean_len))
        topic = rng.integers(n_topics)
        stay = rng.random(length) < p_stay
        in_topic = rng.choice(members[topic], size=length, p=within[topic])
        anywhere = rng.choice(n_items, size=length, p=pop / pop.sum())
        sequences.append(np.where(stay, in_topic, anywhere).astype(np.int64) + 1000)
    topics_by_id = np.full(n_items + 1000, -1)
    topics_by_id[1000:] = topics
    return sequences, topics_by_id


@pytest.fixture(scope="module")
def corpus() -> tuple[list[np.ndarray], np.ndarray]:
    return planted_corpus()


@pytest.fixture(scope="module")
def trained(corpus: tuple[list[np.ndarray], np.ndarray]) -> iv.Item2Vec:
    sequences, _ = corpus
    return iv.Item2Vec(dim=32, epochs=5, seed=0).fit(sequences, progress=False)


# ---------------------------------------------------------------------------------------------
# naive references


def naive_window_pairs(seqs: list[list[int]], window: int, reduced: list[list[int]] | None) -> list[tuple]:
    pairs = []
    for s, seq in enumerate(seqs):
        for i, center in enumerate(seq):
            b = window if reduced is None else reduced[s][i]
            for j in range(max(0, i - b), min(len(seq), i + b + 1)):
                if j != i:
                    pairs.append((center, seq[j]))
    return sorted(pairs)


def naive_session_pairs(seqs: list[list[int]]) -> list[tuple]:
    return sorted((a, b) for seq in seqs for i, a in enumerate(seq) for j, b in enumerate(seq) if i != j)


def flat(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.array([t for s in seqs for t in s], dtype=np.int64)
    return tokens, np.array([len(s) for s in seqs], dtype=np.int64)


sequences_st = st.lists(st.lists(st.integers(0, 9), min_size=0, max_size=12), min_size=1, max_size=8)


# ---------------------------------------------------------------------------------------------
# pairs


@settings(max_examples=60, deadline=None)
@given(seqs=sequences_st, window=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_window_pairs_match_naive_reference(seqs: list[list[int]], window: int, seed: int) -> None:
    tokens, lengths = flat(seqs)
    reduced = np.random.default_rng(seed).integers(1, window + 1, len(tokens))
    per_seq = np.split(reduced, np.cumsum(lengths)[:-1]) if len(seqs) > 1 else [reduced]
    centers, contexts = iv.window_pairs(tokens, lengths, window, reduced)
    assert sorted(zip(centers.tolist(), contexts.tolist(), strict=True)) == naive_window_pairs(
        seqs, window, [r.tolist() for r in per_seq])
    centers, contexts = iv.window_pairs(tokens, lengths, window)
    pairs = sorted(zip(centers.tolist(), contexts.tolist(), strict=True))
    assert pairs == naive_window_pairs(seqs, window, None)


@settings(max_examples=60, deadline=None)
@given(seqs=sequences_st)
def test_session_pairs_match_naive_reference(seqs: list[list[int]]) -> None:
    tokens, lengths = flat(seqs)
    centers, contexts = iv.session_pairs(tokens, lengths)
    assert sorted(zip(centers.tolist(), contexts.tolist(), strict=True)) == naive_session_pairs(seqs)
    assert len(centers) == int((lengths * (lengths - 1)).sum())


def test_pairs_reject_bad_input() -> None:
    tokens, lengths = flat([[1, 2, 3]])
    with pytest.raises(ValueError, match="window must be >= 1"):
        iv.window_pairs(tokens, lengths, 0)
    with pytest.raises(ValueError, match="lengths sum"):
        iv.session_pairs(tokens, np.array([2]))


# ---------------------------------------------------------------------------------------------
# subsampling and noise


@settings(max_examples=50, deadline=None)
@given(counts=st.lists(st.integers(1, 10**6), min_size=1, max_size=50), t=st.floats(1e-6, 1e-1))
def test_keep_probability_is_word2vecs_formula(counts: list[int], t: float) -> None:
    c = np.array(counts, dtype=np.float64)
    keep = iv.keep_probability(c, t)
    expected = [min(1.0, (np.sqrt((x / c.sum()) / t) + 1) * t / (x / c.sum())) for x in c]
    np.testing.assert_allclose(keep, expected, rtol=1e-12)
    assert np.all((keep > 0) & (keep <= 1))
    # rarer items are never kept less often than frequent ones
    order = np.argsort(c)
    assert np.all(np.diff(keep[order]) <= 1e-12)


def test_keep_probability_off_and_bad_threshold() -> None:
    np.testing.assert_array_equal(iv.keep_probability(np.array([5, 1, 100]), 0.0), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="threshold"):
        iv.keep_probability(np.array([1, 2]), -1e-3)


def test_subsample_keeps_each_item_at_its_probability() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 5, 200_000)
    lengths = np.full(2000, 100)
    keep = np.array([1.0, 0.5, 0.2, 0.05, 0.0])
    kept, new_lengths = iv.subsample(tokens, lengths, keep, rng)
    assert new_lengths.sum() == len(kept)
    before, after = np.bincount(tokens, minlength=5), np.bincount(kept, minlength=5)
    for item in range(5):  # binomial: within 5 standard deviations
        sd = np.sqrt(before[item] * keep[item] * (1 - keep[item]))
        assert abs(after[item] - before[item] * keep[item]) <= 5 * sd + 1e-9


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.75, 1.0])
def test_negatives_follow_unigram_power_alpha(alpha: float) -> None:
    counts = np.array([1000, 300, 100, 30, 10, 3, 1, 1])
    probs = iv.noise_distribution(counts, alpha)
    np.testing.assert_allclose(probs, counts**alpha / (counts**alpha).sum())
    table = torch.from_numpy(iv.unigram_table(probs, 1_000_000))
    draws = iv.draw_negatives(table, 400_000, torch.Generator().manual_seed(1)).numpy()
    observed = np.bincount(draws, minlength=len(counts))
    p_value = scipy.stats.chisquare(observed, probs * observed.sum()).pvalue
    assert p_value > 1e-4, f"negatives do not follow count**{alpha} (chi-square p = {p_value:.2g})"


def test_unigram_table_is_within_one_slot_of_the_distribution() -> None:
    probs = iv.noise_distribution(np.random.default_rng(3).integers(1, 500, 97), 0.75)
    table = iv.unigram_table(probs, 10_007)
    assert len(table) == 10_007
    assert np.abs(np.bincount(table, minlength=97) - probs * 10_007).max() < 1.0


def test_noise_distribution_rejects_empty_or_zero_counts() -> None:
    with pytest.raises(ValueError):
        iv.noise_distribution(np.array([]))
    with pytest.raises(ValueError, match="all counts are zero"):
        iv.noise_distribution(np.zeros(3))


# ---------------------------------------------------------------------------------------------
# the SGD step against autograd


def autograd_step(w_in: torch.Tensor, w_out: torch.Tensor, centers: torch.Tensor, contexts: torch.Tensor,
                  negatives: torch.Tensor, lr: float,
                  weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: autograd on the summed SGNS loss, negatives shared per group, a negative equal to the
    context skipped."""
    a, b = w_in.clone().requires_grad_(), w_out.clone().requires_grad_()
    group = len(centers) // len(negatives)
    neg = negatives.repeat_interleave(group, 0)  # (B, K) each pair's negatives
    u, v, n = a[centers], b[contexts], b[neg]
    pos = torch.nn.functional.logsigmoid((u * v).sum(1))
    valid = (neg != contexts[:, None]).float()
    negl = (torch.nn.functional.logsigmoid(-(n * u[:, None, :]).sum(2)) * valid).sum(1)
    (-(pos + negl) * weight).sum().backward()
    return (w_in - lr * a.grad).detach(), (w_out - lr * b.grad).detach()


@pytest.mark.parametrize("group", [1, 4])
def test_sgns_step_equals_autograd_sgd(group: int) -> None:
    g = torch.Generator().manual_seed(0)
    n, d, batch, k = 12, 5, 16, 3
    w_in, w_out = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    centers, contexts = torch.randint(0, n, (batch,), generator=g), torch.randint(0, n, (batch,), generator=g)
    negatives = torch.randint(0, n, (batch // group, k), generator=g)
    negatives[0, 0] = contexts[0]  # one negative equal to its context: must be skipped
    weight = torch.ones(batch)
    weight[-2:] = 0.0  # padding
    ref_in, ref_out = autograd_step(w_in, w_out, centers, contexts, negatives, 0.1, weight)
    loss = iv.sgns_step(w_in, w_out, centers, contexts, negatives, 0.1, weight, with_loss=True)
    torch.testing.assert_close(w_in, ref_in)
    torch.testing.assert_close(w_out, ref_out)
    assert loss is not None and loss > 0


def test_scatter_rows_caps_rows_hit_too_often() -> None:
    table = torch.zeros(3, 2)
    rows = torch.tensor([0, 0, 0, 0, 1])
    values = torch.ones(5, 2)
    iv._scatter_rows(table, rows, values, max_hits=2)
    torch.testing.assert_close(table, torch.tensor([[2.0, 2.0], [1.0, 1.0], [0.0, 0.0]]))


# ---------------------------------------------------------------------------------------------
# training quality on the planted corpus


def test_training_recovers_planted_topics(trained: iv.Item2Vec, corpus: tuple) -> None:
    _, topics = corpus
    chance = iv.chance_purity(topics[trained.ids])
    purity = iv.topic_purity_at_k(trained.vectors, topics, k=10, item_ids=trained.ids,
                                  bands=iv.popularity_bands(trained.counts))
    rand = iv.topic_purity_at_k(np.random.default_rng(0).standard_normal(trained.vectors.shape), topics,
                                item_ids=trained.ids)
    assert chance < 0.15
    assert purity["overall"] > 0.8, purity
    assert purity["overall"] > rand["overall"] + 0.5
    assert abs(rand["overall"] - chance) < 0.05  # random vectors sit at chance
    assert set(purity) == {"overall", "head", "torso", "tail"}
    assert purity["tail"] > 3 * chance
    losses = [h["loss"] for h in trained.history]
    assert np.mean(losses[-3:]) < 0.7 * losses[0]  # training lowered the loss


def test_session_context_also_learns(corpus: tuple) -> None:
    sequences, topics = corpus
    model = iv.Item2Vec(dim=16, window=None, epochs=2, seed=0).fit(sequences[:600], progress=False)
    assert iv.topic_purity_at_k(model.vectors, topics, item_ids=model.ids)["overall"] > 0.5


def test_svd_beats_chance(corpus: tuple) -> None:
    sequences, topics = corpus
    emb = cooccurrence_svd(sequences, dim=16, window=5)
    assert emb.vectors.shape == (len(emb.ids), 16) and emb.vectors.dtype == np.float32
    chance = iv.chance_purity(topics[emb.ids])
    assert iv.topic_purity_at_k(emb.vectors, topics, item_ids=emb.ids)["overall"] > 4 * chance


def test_gensim_wrapper_trains_the_same_vocabulary(trained: iv.Item2Vec, corpus: tuple) -> None:
    sequences, topics = corpus
    emb = iv.train_gensim(sequences, trained.config, workers=2)
    np.testing.assert_array_equal(emb.ids, trained.ids)
    assert emb.vectors.shape == trained.vectors.shape
    ours = iv.topic_purity_at_k(trained.vectors, topics, item_ids=trained.ids)["overall"]
    theirs = iv.topic_purity_at_k(emb.vectors, topics, item_ids=emb.ids)["overall"]
    assert theirs > 0.6 and abs(ours - theirs) < 0.15, (ours, theirs)
    assert emb.words_per_second > 0 and trained.stats["words_per_second"] > 0


def test_fixed_seed_gives_identical_vectors(corpus: tuple) -> None:
    sequences, _ = corpus
    a = iv.Item2Vec(dim=8, epochs=1, seed=3).fit(sequences[:300], progress=False).vectors
    b = iv.Item2Vec(dim=8, epochs=1, seed=3).fit(sequences[:300], progress=False).vectors
    c = iv.Item2Vec(dim=8, epochs=1, seed=4).fit(sequences[:300], progress=False).vectors
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# ---------------------------------------------------------------------------------------------
# lookups, save / load


def test_most_similar_matches_brute_force(trained: iv.Item2Vec) -> None:
    item = int(trained.ids[5])
    ids, sims = trained.most_similar(item, k=7)
    unit = trained.vectors / np.linalg.norm(trained.vectors, axis=1, keepdims=True)
    cos = unit @ unit[5]
    cos[5] = -np.inf
    expected = np.argsort(-cos)[:7]
    np.testing.assert_array_equal(ids, trained.ids[expected])
    np.testing.assert_allclose(sims, cos[expected], rtol=1e-5)
    assert item not in ids and np.all(np.diff(sims) <= 0)


def test_unknown_ids_raise_keyerror(trained: iv.Item2Vec) -> None:
    with pytest.raises(KeyError, match="not in the vocabulary"):
        trained.most_similar(5)  # ids start at 1000
    with pytest.raises(KeyError):
        trained.vector([1000, -1])
    assert trained.id_map.rows([1000, 7], missing="mask")[1] == -1


def test_save_load_round_trip(trained: iv.Item2Vec, tmp_path) -> None:
    path = pipeline.save_item2vec(trained, tmp_path / "sub" / "model.npz")
    assert [p.name for p in path.parent.iterdir()] == ["model.npz"]  # no temp file left behind
    back = pipeline.load_item2vec(path)
    np.testing.assert_array_equal(back.vectors, trained.vectors)
    np.testing.assert_array_equal(back.context_vectors, trained.context_vectors)
    np.testing.assert_array_equal(back.ids, trained.ids)
    np.testing.assert_array_equal(back.counts, trained.counts)
    assert back.config == trained.config and back.history == trained.history
    item = int(trained.ids[0])
    np.testing.assert_array_equal(back.most_similar(item)[0], trained.most_similar(item)[0])


def test_load_rejects_missing_or_damaged_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        pipeline.load_item2vec(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"bad\.npz is not a readable Item2Vec model"):
        pipeline.load_item2vec(bad)
    np.savez(bad, ids=np.arange(3))  # arrays, but not a saved model
    with pytest.raises(ValueError, match=r"bad\.npz is not a saved Item2Vec model"):
        pipeline.load_item2vec(bad)


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("settings_, message", [
    ({"window": 0}, "window must be >= 1"),
    ({"negatives": 0}, "negatives must be >= 1"),
    ({"alpha": -1.0}, "alpha"),
    ({"dim": 0}, "dim"),
    ({"epochs": 0}, "epochs"),
])
def test_bad_settings_raise_valueerror(settings_: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        iv.Item2Vec(**settings_)


def test_unknown_setting_is_named() -> None:
    with pytest.raises(TypeError, match="windw"):
        iv.Item2Vec(windw=3)


def test_empty_and_one_item_corpora_raise_valueerror() -> None:
    model = iv.Item2Vec(dim=4, epochs=1)
    with pytest.raises(ValueError, match="empty"):
        model.fit([], progress=False)
    with pytest.raises(ValueError, match="two or more items"):
        model.fit([np.array([1]), np.array([], dtype=np.int64)], progress=False)
    with pytest.raises(ValueError, match="integer ids"):
        model.fit([np.array([0.5, 1.5])], progress=False)
    with pytest.raises(RuntimeError, match="not trained"):
        _ = iv.Item2Vec().vectors


def test_one_item_sequences_are_skipped_and_counted() -> None:
    seqs = [np.array([1, 2, 3]), np.array([9]), np.array([2, 3]), np.array([], dtype=np.int64)]
    model = iv.Item2Vec(dim=4, epochs=1).fit(seqs, progress=False)
    np.testing.assert_array_equal(model.ids, [1, 2, 3])  # 9 only appears alone: not in the vocabulary
    np.testing.assert_array_equal(model.counts, [1, 2, 2])
    assert model.stats["skipped_sequences"] == 2


def test_min_count_drops_rare_items_before_pairs() -> None:
    corpus = iv.encode_corpus([np.array([1, 2, 7, 2]), np.array([2, 1, 8]), np.array([8, 5])], min_count=2)
    np.testing.assert_array_equal(corpus.id_map.ids, [1, 2, 8])  # 7 and 5 are seen once
    np.testing.assert_array_equal(corpus.lengths, [3, 3])  # [1, 2, 2], [2, 1, 8]; [8] alone is skipped
    np.testing.assert_array_equal(corpus.id_map.counts, [2, 3, 1])  # counts of what is trained on
    assert corpus.skipped_sequences == 1


# ---------------------------------------------------------------------------------------------
# neighbours and purity


def test_nearest_neighbours_match_sklearn() -> None:
    x = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    ours = iv.nearest_neighbours(x, k=5)
    nn = NearestNeighbors(n_neighbors=6, metric="cosine", algorithm="brute").fit(x)
    theirs = nn.kneighbors(x, return_distance=False)[:, 1:]
    np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match="k must be"):
        iv.nearest_neighbours(x, k=300)


def test_nearest_neighbours_exclude_self_among_exact_duplicates() -> None:
    # rows 0-3 are one vector: the index may list any of them first, but never a row as its own neighbour
    rng = np.random.default_rng(3)
    x = np.vstack([np.tile(rng.standard_normal(6), (4, 1)), rng.standard_normal((40, 6))]).astype(np.float32)
    nn = iv.nearest_neighbours(x, k=3)
    assert nn.shape == (44, 3) and nn.dtype == np.int64
    for row in range(4):
        assert sorted(nn[row]) == sorted(set(range(4)) - {row})
    assert not (nn == np.arange(44)[:, None]).any()


def test_topic_purity_matches_naive_loop() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((80, 4))
    topics = rng.integers(0, 3, 80)
    bands = iv.popularity_bands(rng.integers(1, 100, 80))
    got = iv.topic_purity_at_k(x, topics, k=5, bands=bands)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    per_item = []
    for i in range(80):
        cos = unit @ unit[i]
        cos[i] = -np.inf
        per_item.append(np.mean(topics[np.argsort(-cos)[:5]] == topics[i]))
    per_item = np.array(per_item)
    assert got["overall"] == pytest.approx(per_item.mean())
    for band in ("head", "torso", "tail"):
        assert got[band] == pytest.approx(per_item[bands == band].mean())
    # item_ids index a topic table by id
    by_id = np.full(200, -1)
    ids = np.arange(80) * 2 + 30
    by_id[ids] = topics
    assert iv.topic_purity_at_k(x, by_id, k=5, item_ids=ids)["overall"] == pytest.approx(per_item.mean())
    with pytest.raises(ValueError, match="one entry per row"):
        iv.topic_purity_at_k(x, topics[:10])


def test_popularity_bands_split_by_views() -> None:
    counts = np.random.default_rng(2).zipf(1.5, 1000)
    bands = iv.popularity_bands(counts)
    sizes = Counter(bands.tolist())
    assert sizes == {"head": 100, "torso": 400, "tail": 500}
    assert counts[bands == "head"].min() >= counts[bands == "torso"].max()
    assert counts[bands == "torso"].min() >= counts[bands == "tail"].max()


def test_chance_purity_formula() -> None:
    topics = np.array([0, 0, 0, 1, 1, 2])
    # items of topic 0 have 2 of 5 others alike, topic 1: 1 of 5, topic 2: 0 of 5
    assert iv.chance_purity(topics) == pytest.approx((3 * 2 + 2 * 1 + 0) / 5 / 6)


def test_token_topics_take_the_majority_of_title_votes() -> None:
    # token 0: in titles of topics 5, 5, 7 -> 5; token 1: one vote each for 7 and 5 -> the smaller, 5;
    # token 2: topic 7 twice in one title -> 7; token 3: in no title -> -1
    titles = [np.array([0, 1]), np.array([0]), np.array([0, 1, 2, 2])]
    got = iv.token_topics(titles, np.array([5, 5, 7]), n_tokens=4)
    assert got.tolist() == [5, 5, 7, -1] and got.dtype == np.int64


def test_fit_sweep_trains_each_setting_once_and_reuses_a_matching_model(corpus: tuple,
                                                                        monkeypatch) -> None:
    sequences, _ = corpus
    config = iv.SGNSConfig(dim=8, epochs=1, seed=0)
    done = iv.Item2Vec(config).fit(sequences, progress=False)
    other = iv.Item2Vec(config, epochs=2).fit(sequences, progress=False)  # not the config wanted
    fitted = []
    real_fit = iv.Item2Vec.fit

    def counting_fit(self: iv.Item2Vec, *args, **kwargs) -> iv.Item2Vec:
        fitted.append(self.config)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(iv.Item2Vec, "fit", counting_fit)
    settings = [(0.0, 1e-3), (0.75, 1e-3), (0.75, 0.0), (0.75, 1e-3)]
    models = iv.fit_sweep(sequences, config, settings, reuse=[other, done])
    assert list(models) == [(0.0, 1e-3), (0.75, 1e-3), (0.75, 0.0)]
    assert models[0.75, 1e-3] is done
    assert [(c.alpha, c.subsample) for c in fitted] == [(0.0, 1e-3), (0.75, 0.0)]
    assert all(c.epochs == 1 and c.dim == 8 for c in fitted)
    again = iv.Item2Vec(config, alpha=0.0).fit(sequences, progress=False)
    np.testing.assert_array_equal(models[0.0, 1e-3].vectors, again.vectors)


# ---------------------------------------------------------------------------------------------
# co-occurrence SVD


def test_cooccurrence_counts_match_naive(corpus: tuple) -> None:
    seqs = [[0, 1, 2, 1], [2, 3], [4]]
    tokens, lengths = flat(seqs)
    matrix = cooccurrence_matrix(tokens, lengths, 5, window=None).toarray()
    expected = np.zeros((5, 5))
    for a, b in naive_session_pairs(seqs):
        expected[a, b] += 1
    np.testing.assert_array_equal(matrix, expected)
    windowed = cooccurrence_matrix(tokens, lengths, 5, window=1).toarray()
    expected = np.zeros((5, 5))
    for a, b in naive_window_pairs(seqs, 1, None):
        expected[a, b] += 1
    np.testing.assert_array_equal(windowed, expected)


def test_svd_vectors_are_u_sqrt_s_of_the_normalised_matrix(corpus: tuple) -> None:
    sequences, _ = corpus
    emb = cooccurrence_svd(sequences[:200], dim=6, window=3, seed=0)
    enc = iv.encode_corpus(sequences[:200])
    counts = cooccurrence_matrix(enc.tokens, enc.lengths, len(enc.id_map), 3).toarray()
    totals = counts.sum(1)
    m = counts / np.sqrt(np.outer(totals, totals))
    np.testing.assert_allclose(normalise(cooccurrence_matrix(enc.tokens, enc.lengths, len(enc.id_map), 3))
                               .toarray(), m, rtol=1e-10)
    u, s, _ = np.linalg.svd(m)
    np.testing.assert_allclose(emb.extra["singular_values"], s[:6], rtol=1e-6)
    # the Gram matrix is sign-free: (U S^1/2)(U S^1/2)^T = U S U^T
    ref = (u[:, :6] * s[:6]) @ u[:, :6].T
    np.testing.assert_allclose(emb.vectors @ emb.vectors.T, ref, atol=1e-4)


def test_svd_rejects_bad_dim_and_window(corpus: tuple) -> None:
    sequences, _ = corpus
    with pytest.raises(ValueError, match="dim must be"):
        cooccurrence_svd(sequences[:5], dim=10_000)
    with pytest.raises(ValueError, match="window"):
        cooccurrence_svd(sequences[:5], dim=2, window=0)


# ---------------------------------------------------------------------------------------------
# cached pretrained tables


class FakeDataset:
    """The bits of ytrec_lib.data.datasets.Dataset that pretrained_embeddings reads."""

    def __init__(self, sequences: list[np.ndarray], n_videos: int, has_searches: bool = True):
        self._seqs = sequences
        self.searches = [0] * (5 if has_searches else 0)
        self.meta = {"name": "fake", "seed": 0, "style": "ugc", "generator_version": 1, "n_videos": n_videos,
                     "n_tokens": 30, "has_searches": has_searches}

    def watch_sequences(self) -> list[np.ndarray]:
        return self._seqs

    def search_token_sequences(self) -> list[np.ndarray]:
        return [np.array([1, 2, 3], np.int32), np.array([2, 3], np.int32), np.array([4, 5], np.int32)]


def test_pretrained_embeddings_are_cached_tables_indexed_by_id(corpus: tuple, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    sequences, _ = corpus
    ds = FakeDataset([s - 1000 for s in sequences[:300]], n_videos=700)
    table = pipeline.pretrained_embeddings(ds, kind="videos", dim=8, seed=0, epochs=1)
    assert table.shape == (700, 8) and table.dtype == np.float32
    seen = np.unique(np.concatenate(ds.watch_sequences()))
    assert np.all(table[650:] == 0)  # ids 600.. never occur
    assert np.all(np.linalg.norm(table[seen], axis=1) > 0)
    files = list((tmp_path / "models").iterdir())
    assert len(files) == 1
    again = pipeline.pretrained_embeddings(ds, kind="videos", dim=8, seed=0, epochs=1)
    np.testing.assert_array_equal(again, table)
    assert len(list((tmp_path / "models").iterdir())) == 1  # loaded, not retrained under a new name
    files[0].write_bytes(b"damaged")  # a damaged cache is retrained, with a warning naming it
    with pytest.warns(UserWarning, match=re.escape(f"item2vec model {files[0]} is unusable")):
        rebuilt = pipeline.pretrained_embeddings(ds, kind="videos", dim=8, seed=0, epochs=1)
    np.testing.assert_array_equal(rebuilt, table)
    tokens = pipeline.pretrained_embeddings(ds, kind="tokens", dim=4, seed=0, epochs=1)
    assert tokens.shape == (30, 4) and np.all(tokens[6:] == 0)
    assert len(list((tmp_path / "models").iterdir())) == 2


def test_pretrained_embeddings_bad_kind_or_no_searches(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    ds = FakeDataset([np.array([0, 1, 2])], n_videos=3, has_searches=False)
    with pytest.raises(ValueError, match="kind must be"):
        pipeline.pretrained_embeddings(ds, kind="users")
    with pytest.raises(ValueError, match="no searches"):
        pipeline.pretrained_embeddings(ds, kind="tokens")
