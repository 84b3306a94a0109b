"""Tests of ytrec_lib.metrics: hand-worked cases, scikit-learn cross-checks, properties, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, ndcg_score, roc_auc_score

from ytrec_lib import metrics as m

RANKING = [m.hit_at_k, m.recall_at_k, m.precision_at_k, m.map_at_k, m.ndcg_at_k, m.mrr]


# ----------------------------------------------------------------------------------------------
# Ranking metrics: hand-worked cases
# ----------------------------------------------------------------------------------------------

RANKED = np.array([[3, 2, 1], [2, 0, 1], [4, 5, 6]])
REL = [np.array([1, 3]), np.array([0]), np.array([7, 8, 9])]


def test_hand_worked_per_row_values():
    # row 0: hits at ranks 1 and 3 of 2 relevant; row 1: hit at rank 2 of 1; row 2: no hit
    np.testing.assert_allclose(m.hit_at_k(RANKED, REL, average=False), [1, 1, 0])
    np.testing.assert_allclose(m.recall_at_k(RANKED, REL, average=False), [1, 1, 0])
    np.testing.assert_allclose(m.precision_at_k(RANKED, REL, average=False), [2 / 3, 1 / 3, 0])
    np.testing.assert_allclose(m.map_at_k(RANKED, REL, average=False), [(1 + 2 / 3) / 2, 1 / 2, 0])
    np.testing.assert_allclose(m.mrr(RANKED, REL, average=False), [1, 1 / 2, 0])
    dcg0 = 1 + 1 / math.log2(4)
    idcg0 = 1 + 1 / math.log2(3)
    np.testing.assert_allclose(m.ndcg_at_k(RANKED, REL, average=False), [dcg0 / idcg0, 1 / math.log2(3), 0])


def test_hand_worked_cutoff_k():
    # at k=1 row 0 has its first hit, row 1 none
    np.testing.assert_allclose(m.recall_at_k(RANKED, REL, k=1, average=False), [0.5, 0, 0])
    np.testing.assert_allclose(m.precision_at_k(RANKED, REL, k=1, average=False), [1, 0, 0])
    # MAP@1 of row 0 normalised by min(|R|=2, k=1) = 1
    np.testing.assert_allclose(m.map_at_k(RANKED, REL, k=1, average=False), [1, 0, 0])
    assert m.mrr(RANKED, REL, k=1) == pytest.approx(1 / 3)


def test_average_is_mean_of_rows():
    for fn in RANKING:
        assert fn(RANKED, REL) == pytest.approx(fn(RANKED, REL, average=False).mean())


def test_single_label_recall_equals_hit():
    labels = np.array([1, 0, 9])
    np.testing.assert_allclose(m.recall_at_k(RANKED, labels, average=False), [1, 1, 0])
    assert m.recall_at_k(RANKED, labels) == m.hit_at_k(RANKED, labels)
    assert m.recall_at_k(RANKED, [1, 0, 9]) == m.recall_at_k(RANKED, labels)  # a plain list of labels
    # with one label (here at ranks 3, 2, absent), NDCG is 1 / log2(rank + 1) and MAP is 1 / rank
    np.testing.assert_allclose(m.ndcg_at_k(RANKED, labels, average=False), [0.5, 1 / math.log2(3), 0])
    np.testing.assert_allclose(m.map_at_k(RANKED, labels, average=False), [1 / 3, 1 / 2, 0])
    np.testing.assert_allclose(m.mrr(RANKED, labels, average=False), [1 / 3, 1 / 2, 0])


def test_map_normalised_by_min_of_relevant_and_k():
    ranked = np.array([[0, 1, 5]])
    rel = [np.array([0, 1, 2, 3])]
    assert m.map_at_k(ranked, rel, k=2) == 1.0  # 4 relevant, k = 2: perfect top-2
    assert m.map_at_k(ranked, rel, k=3) == pytest.approx((1 + 1) / 3)


def test_graded_ndcg_hand_worked():
    ranked = np.array([[2, 0, 1]])
    rel = [np.array([0, 1])]
    gains = [np.array([3.0, 1.0])]
    dcg = 3 / math.log2(3) + 1 / math.log2(4)
    idcg = 3 + 1 / math.log2(3)
    assert m.ndcg_at_k(ranked, rel, gains=gains) == pytest.approx(dcg / idcg)
    # the same through a sparse matrix whose values are the gains
    mat = sp.csr_matrix((np.array([3.0, 1.0]), (np.array([0, 0]), np.array([0, 1]))), shape=(1, 5))
    assert m.ndcg_at_k(ranked, mat) == pytest.approx(dcg / idcg)
    # graded single labels: the gain cancels
    assert m.ndcg_at_k(ranked, np.array([0]), gains=np.array([7.0])) == pytest.approx(1 / math.log2(3))


def test_repeated_relevant_items_merge_and_sum_gains():
    ranked = np.array([[1, 0]])
    assert m.recall_at_k(ranked, [np.array([0, 0, 1])]) == 1.0  # the set is {0, 1}
    merged = m.ndcg_at_k(ranked, [np.array([0, 0, 1])], gains=[np.array([1.0, 1.0, 1.0])])
    assert merged == pytest.approx(m.ndcg_at_k(ranked, [np.array([0, 1])], gains=[np.array([2.0, 1.0])]))


def test_all_zero_gains_score_zero_like_sklearn():
    ranked = np.array([[0, 1]])
    assert m.ndcg_at_k(ranked, [np.array([0])], gains=[np.array([0.0])]) == 0.0


def test_padding_is_a_miss():
    ranked = np.array([[5, -1, -1], [-1, -1, -1]])
    rel = np.array([5, 0])
    np.testing.assert_allclose(m.hit_at_k(ranked, rel, average=False), [1, 0])
    np.testing.assert_allclose(m.precision_at_k(ranked, rel, average=False), [1 / 3, 0])


def test_forms_of_relevant_agree():
    rng = np.random.default_rng(0)
    ranked = np.stack([rng.permutation(20)[:6] for _ in range(8)])
    sets = [rng.choice(20, size=rng.integers(1, 5), replace=False) for _ in range(8)]
    rows = np.repeat(np.arange(8), [s.size for s in sets])
    mat = sp.csr_matrix((np.ones(rows.size), (rows, np.concatenate(sets))), shape=(8, 20))
    as_2d = np.array([s[:1] for s in sets])  # (n, 1) array of one-item sets
    for fn in RANKING:
        assert fn(ranked, sets) == pytest.approx(fn(ranked, mat))
        assert fn(ranked, as_2d) == pytest.approx(fn(ranked, as_2d[:, 0]))


# ----------------------------------------------------------------------------------------------
# Ranking metrics against scikit-learn
# ----------------------------------------------------------------------------------------------


def test_ndcg_matches_sklearn():
    rng = np.random.default_rng(1)
    n, v, k = 40, 30, 10
    y_true = rng.integers(0, 4, size=(n, v)).astype(float) * (rng.random((n, v)) < 0.3)
    y_true[:, 0] += 1.0  # every row has a relevant item
    y_score = rng.random((n, v))  # continuous: no ties
    ranked = m.top_k(y_score, k)
    ours = m.ndcg_at_k(ranked, sp.csr_matrix(y_true), average=False)
    theirs = np.array([ndcg_score(y_true[i : i + 1], y_score[i : i + 1], k=k) for i in range(n)])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert m.ndcg_at_k(ranked, sp.csr_matrix(y_true)) == pytest.approx(ndcg_score(y_true, y_score, k=k))


def test_full_ranking_map_matches_sklearn_average_precision():
    rng = np.random.default_rng(2)
    n, v = 30, 25
    y_true = rng.random((n, v)) < 0.2
    y_true[:, 3] = True
    y_score = rng.random((n, v))
    ranked = m.top_k(y_score, v)
    ours = m.map_at_k(ranked, sp.csr_matrix(y_true.astype(float)), average=False)
    theirs = [average_precision_score(y_true[i], y_score[i]) for i in range(n)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# Ranking metrics: properties
# ----------------------------------------------------------------------------------------------


@st.composite
def ranking_case(draw):
    n = draw(st.integers(1, 6))
    v = draw(st.integers(2, 15))
    k = draw(st.integers(1, v))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    ranked = np.stack([rng.permutation(v)[:k] for _ in range(n)])
    sets = [rng.choice(v, size=rng.integers(1, v + 1), replace=False) for _ in range(n)]
    gains = [rng.integers(0, 5, size=s.size).astype(float) for s in sets]
    return ranked, sets, gains, rng


@settings(max_examples=60, deadline=None)
@given(ranking_case())
def test_metrics_are_bounded(case):
    ranked, sets, gains, _ = case
    for fn in RANKING:
        vals = fn(ranked, sets, average=False)
        assert vals.shape == (ranked.shape[0],)
        assert np.all((vals >= 0) & (vals <= 1 + 1e-12))
    graded = m.ndcg_at_k(ranked, sets, gains=gains, average=False)
    assert np.all((graded >= 0) & (graded <= 1 + 1e-12))


@settings(max_examples=60, deadline=None)
@given(ranking_case())
def test_perfect_ranking_scores_one(case):
    ranked, sets, gains, rng = case
    k = ranked.shape[1]
    v = int(max(ranked.max(), max(s.max() for s in sets))) + 1
    # order each row's relevant items by gain (descending), then fill with irrelevant ones
    perfect = []
    for s, g in zip(sets, gains, strict=True):
        best = s[np.argsort(-g, kind="stable")]
        rest = np.setdiff1d(np.arange(v + k), s)
        perfect.append(np.concatenate([best, rest])[:k])
    perfect = np.array(perfect)
    sizes = np.array([s.size for s in sets])
    assert np.all(m.hit_at_k(perfect, sets, average=False) == 1)
    assert np.all(m.mrr(perfect, sets, average=False) == 1)
    np.testing.assert_allclose(m.map_at_k(perfect, sets, average=False), 1.0)
    np.testing.assert_allclose(m.ndcg_at_k(perfect, sets, average=False), 1.0)
    graded = m.ndcg_at_k(perfect, sets, gains=gains, average=False)
    has_gain = np.array([g.sum() > 0 for g in gains])
    np.testing.assert_allclose(graded[has_gain], 1.0)
    np.testing.assert_allclose(m.recall_at_k(perfect, sets, average=False), np.minimum(sizes, k) / sizes)
    np.testing.assert_allclose(m.precision_at_k(perfect, sets, average=False), np.minimum(sizes, k) / k)


@settings(max_examples=40, deadline=None)
@given(ranking_case())
def test_row_order_does_not_matter(case):
    ranked, sets, gains, rng = case
    perm = rng.permutation(ranked.shape[0])
    for fn in RANKING:
        assert fn(ranked[perm], [sets[i] for i in perm]) == pytest.approx(fn(ranked, sets))
    # nor does the order of items inside a relevant set
    shuffled = [rng.permutation(s) for s in sets]
    for fn in RANKING:
        assert fn(ranked, shuffled) == pytest.approx(fn(ranked, sets))


# ----------------------------------------------------------------------------------------------
# Ranking metrics: bad input
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", RANKING)
def test_ranking_bad_input(fn):
    with pytest.raises(ValueError, match="must match"):
        fn(RANKED, np.array([1, 2]))
    with pytest.raises(ValueError, match="must match"):
        fn(RANKED, REL[:2])
    with pytest.raises(ValueError, match="positive integer"):
        fn(RANKED, REL, k=0)
    with pytest.raises(ValueError, match="larger than"):
        fn(RANKED, REL, k=4)
    with pytest.raises(ValueError, match="empty"):
        fn(np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.int64))
    with pytest.raises(ValueError, match="2-D"):
        fn(np.array([1, 2, 3]), REL)
    with pytest.raises(ValueError, match="integer"):
        fn(RANKED.astype(float), REL)
    with pytest.raises(ValueError, match="repeats"):
        fn(np.array([[1, 1, 2]]), np.array([1]))
    with pytest.raises(ValueError, match="no relevant item"):
        fn(RANKED, [np.array([1]), np.array([], dtype=np.int64), np.array([2])])
    with pytest.raises(ValueError, match=">= 0"):
        fn(RANKED, np.array([1, -2, 3]))


def test_gains_bad_input():
    with pytest.raises(ValueError, match="gains"):
        m.ndcg_at_k(RANKED, REL, gains=[np.ones(2), np.ones(1), np.ones(2)])
    with pytest.raises(ValueError, match=">= 0"):
        m.ndcg_at_k(RANKED, np.array([1, 2, 3]), gains=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="gains=None"):
        m.ndcg_at_k(RANKED, sp.csr_matrix(np.eye(3, 10)), gains=np.ones(3))


# ----------------------------------------------------------------------------------------------
# top_k
# ----------------------------------------------------------------------------------------------


def naive_top_k(scores: np.ndarray, k: int, exclude=None) -> np.ndarray:
    """Per-row sort by (score desc, id asc), excluded items dropped, -1 padding."""
    out = np.full((scores.shape[0], k), -1, dtype=np.int64)
    for i, row in enumerate(scores):
        banned = set() if exclude is None else {int(x) for x in exclude[i]}
        ids = sorted((j for j in range(row.size) if j not in banned), key=lambda j: (-row[j], j))[:k]
        out[i, : len(ids)] = ids
    return out


def test_top_k_hand_worked_ties_and_exclusion():
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(m.top_k(scores, 3), [[1, 2, 4], [0, 1, 2]])
    np.testing.assert_array_equal(
        m.top_k(scores, 3, exclude=[np.array([2]), np.array([0, 1])]), [[1, 4, 3], [2, 3, 4]]
    )
    # exclusion leaves fewer than k: -1 padding
    np.testing.assert_array_equal(m.top_k(scores[:1], 4, exclude=[np.array([0, 1, 2])]), [[4, 3, -1, -1]])


def test_top_k_minus_inf_scores_beat_excluded_items():
    scores = np.array([[-np.inf, -np.inf, 5.0, -np.inf]])
    np.testing.assert_array_equal(m.top_k(scores, 4, exclude=[np.array([0])]), [[2, 1, 3, -1]])


def test_top_k_sparse_exclusion_and_int_scores():
    scores = np.array([[5, 4, 3], [1, 2, 3]])
    ex = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 1]]))
    np.testing.assert_array_equal(m.top_k(scores, 2, exclude=ex), [[1, 2], [1, 0]])


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 7),
    v=st.integers(1, 12),
    seed=st.integers(0, 2**31 - 1),
    levels=st.integers(1, 4),
    batch=st.integers(1, 4),
    use_exclude=st.booleans(),
)
def test_top_k_matches_naive_sort(n, v, seed, levels, batch, use_exclude):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=(n, v)).astype(np.float32)  # many ties
    scores[rng.random((n, v)) < 0.1] = -np.inf
    k = int(rng.integers(1, v + 1))
    exclude = (
        [rng.choice(v, size=rng.integers(0, v + 1), replace=True) for _ in range(n)] if use_exclude else None
    )
    got = m.top_k(scores, k, exclude=exclude, batch_size=batch)
    assert got.dtype == np.int64 and got.shape == (n, k)
    np.testing.assert_array_equal(got, naive_top_k(scores, k, exclude))


def test_top_k_continuous_scores_match_argsort():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((50, 200))
    np.testing.assert_array_equal(m.top_k(scores, 17), np.argsort(-scores, axis=1)[:, :17])


def test_top_k_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        m.top_k(np.ones(4), 2)
    with pytest.raises(ValueError, match="empty"):
        m.top_k(np.ones((0, 4)), 2)
    with pytest.raises(ValueError, match="positive integer"):
        m.top_k(np.ones((2, 4)), 0)
    with pytest.raises(ValueError, match="larger than"):
        m.top_k(np.ones((2, 4)), 5)
    with pytest.raises(ValueError, match="NaN"):
        m.top_k(np.array([[1.0, np.nan]]), 1)
    with pytest.raises(ValueError, match="must match"):
        m.top_k(np.ones((2, 4)), 2, exclude=[np.array([1])])
    with pytest.raises(ValueError, match="outside"):
        m.top_k(np.ones((1, 4)), 2, exclude=[np.array([4])])


# ----------------------------------------------------------------------------------------------
# AUC and grouped AUC
# ----------------------------------------------------------------------------------------------


def test_auc_hand_worked():
    # pairs (pos, neg): (0.9 > 0.1) win, (0.9 > 0.5) win, (0.5 = 0.5) half, (0.5 > 0.1) win -> 3.5 / 4
    assert m.auc([1, 0, 1, 0], [0.9, 0.1, 0.5, 0.5]) == pytest.approx(3.5 / 4)
    assert m.auc([True, False], [0.2, 0.8]) == 0.0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.integers(2, 60), levels=st.integers(1, 8))
def test_auc_matches_sklearn_with_ties(seed, size, levels):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size)
    y[0], y[1] = 0, 1
    s = rng.integers(0, levels, size).astype(float)
    assert m.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m.auc(y, -s) == pytest.approx(1 - m.auc(y, s), abs=1e-12)
    assert m.auc(y, np.exp(s)) == pytest.approx(m.auc(y, s), abs=1e-12)  # monotone invariance


def test_per_group_and_grouped_auc_match_sklearn_per_group():
    rng = np.random.default_rng(4)
    groups = rng.integers(0, 12, 400) * 7 + 100  # non-contiguous ids
    y = rng.random(400) < 0.3
    s = rng.integers(0, 5, 400).astype(float)
    ids, values, sizes = m.per_group_auc(groups, y, s)
    ref_ids, ref_vals, ref_sizes = [], [], []
    for g in np.unique(groups):
        sel = groups == g
        if 0 < y[sel].sum() < sel.sum():
            ref_ids.append(g)
            ref_vals.append(roc_auc_score(y[sel], s[sel]))
            ref_sizes.append(sel.sum())
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(values, ref_vals, atol=1e-12)
    np.testing.assert_array_equal(sizes, ref_sizes)
    assert m.grouped_auc(groups, y, s) == pytest.approx(np.average(ref_vals, weights=ref_sizes))
    assert m.grouped_auc(groups, y, s, weighting="uniform") == pytest.approx(np.mean(ref_vals))


def test_grouped_auc_skips_one_class_groups():
    groups = np.array([0, 0, 1, 1, 1, 2])
    y = np.array([1, 0, 1, 1, 1, 0])  # only group 0 has both classes
    s = np.array([0.9, 0.1, 0.0, 0.0, 0.0, 1.0])
    assert m.grouped_auc(groups, y, s) == 1.0
    with pytest.raises(ValueError, match="no group"):
        m.grouped_auc(groups[2:], y[2:], s[2:])


def test_auc_bad_input():
    with pytest.raises(ValueError, match="both positive and negative"):
        m.auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="must match"):
        m.auc([1, 0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        m.auc([], [])
    with pytest.raises(ValueError, match="binary"):
        m.auc([2, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        m.auc([1, 0], [np.nan, 0.2])
    with pytest.raises(ValueError, match="must match"):
        m.per_group_auc([0, 0, 1], [1, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="weighting"):
        m.grouped_auc([0, 0], [1, 0], [0.1, 0.2], weighting="clicks")


# ----------------------------------------------------------------------------------------------
# Weighted per-user loss (Covington et al. 2016, section 4.2)
# ----------------------------------------------------------------------------------------------


def naive_weighted_loss(users, pages, clicked, watch, scores, ties=0.5, average="pairs"):
    wrong, total = {}, {}
    for p in range(len(users)):
        for q in range(len(users)):
            if users[p] == users[q] and pages[p] == pages[q] and clicked[p] and not clicked[q]:
                bad = 1.0 if scores[q] > scores[p] else ties if scores[q] == scores[p] else 0.0
                wrong[users[p]] = wrong.get(users[p], 0.0) + watch[p] * bad
                total[users[p]] = total.get(users[p], 0.0) + watch[p]
    if average == "pairs":
        return sum(wrong.values()) / sum(total.values())
    return float(np.mean([wrong[u] / total[u] for u in total if total[u] > 0]))


def test_weighted_loss_hand_worked():
    # user 0, page 0: positive A (watch 10, score 0.2), positive B (watch 30, score 0.9),
    # negative C (score 0.5). Pairs: (A, C) wrong, (B, C) right -> 10 / 40.
    # user 0, page 1: positive D (watch 60, score 0.1) with no negative on its page -> no pair.
    users = np.array([0, 0, 0, 0])
    pages = np.array([0, 0, 0, 1])
    clicked = np.array([1, 1, 0, 1])
    watch = np.array([10.0, 30.0, 0.0, 60.0])
    scores = np.array([0.2, 0.9, 0.5, 0.1])
    assert m.weighted_per_user_loss(users, pages, clicked, watch, scores) == pytest.approx(10 / 40)
    # a perfect scorer loses nothing; a reversed one loses everything
    assert m.weighted_per_user_loss(users, pages, clicked, watch, clicked.astype(float)) == 0.0
    assert m.weighted_per_user_loss(users, pages, clicked, watch, -clicked.astype(float)) == 1.0
    # ties: half by default, as configured otherwise
    flat = np.zeros(4)
    assert m.weighted_per_user_loss(users, pages, clicked, watch, flat) == 0.5
    assert m.weighted_per_user_loss(users, pages, clicked, watch, flat, ties=0.0) == 0.0


def test_weighted_loss_pairs_only_within_user_and_page():
    # same page id for two users: no pair may cross users
    users = np.array([0, 0, 1, 1])
    pages = np.array([5, 5, 5, 5])
    clicked = np.array([1, 0, 1, 0])
    watch = np.array([10.0, 0.0, 90.0, 0.0])
    scores = np.array([0.1, 0.9, 0.9, 0.1])  # user 0 wrong, user 1 right
    assert m.weighted_per_user_loss(users, pages, clicked, watch, scores) == pytest.approx(0.1)
    per_user = m.weighted_per_user_loss(users, pages, clicked, watch, scores, average="users")
    assert per_user == pytest.approx(0.5)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.integers(2, 40), average=st.sampled_from(["pairs", "users"]))
def test_weighted_loss_matches_naive(seed, size, average):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 3, size)
    pages = rng.integers(0, 2, size)
    clicked = rng.integers(0, 2, size)
    users[:2], pages[:2], clicked[:2] = 0, 0, [1, 0]  # at least one pair
    watch = np.where(clicked == 1, rng.integers(1, 100, size), 0).astype(float)
    scores = rng.integers(0, 4, size).astype(float)
    got = m.weighted_per_user_loss(users, pages, clicked, watch, scores, average=average)
    ref = naive_weighted_loss(users, pages, clicked, watch, scores, average=average)
    assert got == pytest.approx(ref)
    assert 0.0 <= got <= 1.0


def test_weighted_loss_bad_input():
    u = np.zeros(2)
    with pytest.raises(ValueError, match="must match"):
        m.weighted_per_user_loss(u, np.zeros(3), [1, 0], [1.0, 0.0], [0.1, 0.2])
    with pytest.raises(ValueError, match=">= 0"):
        m.weighted_per_user_loss(u, u, [1, 0], [-1.0, 0.0], [0.1, 0.2])
    with pytest.raises(ValueError, match="undefined"):
        m.weighted_per_user_loss(u, np.array([0, 1]), [1, 0], [1.0, 0.0], [0.1, 0.2])
    with pytest.raises(ValueError, match="ties"):
        m.weighted_per_user_loss(u, u, [1, 0], [1.0, 0.0], [0.1, 0.2], ties=2.0)
    with pytest.raises(ValueError, match="average"):
        m.weighted_per_user_loss(u, u, [1, 0], [1.0, 0.0], [0.1, 0.2], average="mean")


# ----------------------------------------------------------------------------------------------
# Catalogue spread
# ----------------------------------------------------------------------------------------------


def test_coverage_hand_worked():
    rec = np.array([[0, 1, -1], [1, 2, -1]])
    assert m.coverage(rec, 10) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="n_items"):
        m.coverage(rec, 2)
    with pytest.raises(ValueError, match="positive integer"):
        m.coverage(rec, 0)
    with pytest.raises(ValueError, match="empty"):
        m.coverage(np.zeros((0, 3), dtype=np.int64), 5)


def test_gini_hand_worked():
    assert m.gini([3, 3, 3, 3]) == 0.0
    assert m.gini([0, 0, 0, 8]) == pytest.approx(3 / 4)  # (n - 1) / n
    # 1, 2, 3: mean absolute difference over all ordered pairs / (2 mean) = (8 / 9) / 4
    assert m.gini([3, 1, 2]) == pytest.approx(2 / 9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=40).filter(lambda c: sum(c) > 0))
def test_gini_matches_pairwise_formula_and_lorenz_area(counts):
    c = np.array(counts, dtype=float)
    pairwise = np.abs(c[:, None] - c[None, :]).sum() / (2 * c.size**2 * c.mean())
    assert m.gini(c) == pytest.approx(pairwise, abs=1e-12)
    x, y = m.lorenz_curve(c)
    assert x[0] == y[0] == 0.0 and x[-1] == pytest.approx(1.0) and y[-1] == pytest.approx(1.0)
    assert np.all(np.diff(y) >= 0) and np.all(y <= x + 1e-12)  # below the diagonal
    area = np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2)
    assert m.gini(c) == pytest.approx(1 - 2 * area, abs=1e-12)
    assert 0.0 <= m.gini(c) < 1.0
    assert m.gini(np.random.default_rng(0).permutation(c)) == pytest.approx(m.gini(c))


def test_top_share_hand_worked():
    counts = np.arange(1, 101)  # total 5050
    assert m.top_share(counts, 0.01) == pytest.approx(100 / 5050)
    assert m.top_share(counts, 0.02) == pytest.approx(199 / 5050)
    assert m.top_share(counts, 1.0) == 1.0
    assert m.top_share([5, 1], 0.01) == pytest.approx(5 / 6)  # at least one item


def test_spread_bad_input():
    for fn in (m.gini, m.lorenz_curve, lambda c: m.top_share(c, 0.1)):
        with pytest.raises(ValueError, match="non-empty"):
            fn([])
        with pytest.raises(ValueError, match=">= 0"):
            fn([1, -1])
        with pytest.raises(ValueError, match="sum to 0"):
            fn([0, 0])
    with pytest.raises(ValueError, match="frac"):
        m.top_share([1, 2], 0.0)


def test_long_tail_summary_hand_worked():
    counts = np.array([0, 0, 1, 2, 3, 94])  # total 100; top 1% = the one largest item
    lt = m.long_tail(counts)
    assert list(lt) == ["top1pct_view_share", "gini", "share_of_videos_never_watched"]
    assert lt["top1pct_view_share"] == pytest.approx(0.94)
    assert lt["gini"] == m.gini(counts)
    assert lt["share_of_videos_never_watched"] == pytest.approx(2 / 6)
    assert all(isinstance(v, float) for v in lt.values())
