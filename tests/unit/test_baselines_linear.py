"""RP3beta, EASE and validation tuning, checked against direct dense NumPy computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ytrec_lib.models import baselines as B

RNG = np.random.default_rng(3)
X = (RNG.random((9, 7)) < 0.4).astype(np.float64)  # (users, videos) binary
X[0, :3] = 1.0
X[:, 6] = 0.0  # video 6 is never watched
USER, VIDEO = np.nonzero(X)
LOG = (USER.astype(np.int64), VIDEO.astype(np.int64), np.arange(USER.size, dtype=np.float64))


def _rp3beta_dense(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    du, di = x.sum(axis=1, keepdims=True), x.sum(axis=0)
    pui = np.divide(x, du, out=np.zeros_like(x), where=du > 0) ** alpha
    piu = np.divide(x.T, di[:, None], out=np.zeros_like(x.T), where=di[:, None] > 0) ** alpha
    w = piu @ pui * np.where(di > 0, np.maximum(di, 1) ** -beta, 0.0)[None, :]
    np.fill_diagonal(w, 0.0)
    return w


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.0), (0.5, 0.3), (1.5, 0.8)])
def test_rp3beta_similarity_matches_dense(alpha, beta) -> None:
    got = B.rp3beta_similarity(*LOG[:2], 7, alpha, beta, n_neighbors=7).toarray()
    np.testing.assert_allclose(got, _rp3beta_dense(X, alpha, beta), rtol=1e-12, atol=1e-15)


def test_rp3beta_keeps_the_top_neighbours() -> None:
    full = _rp3beta_dense(X, 0.8, 0.4)
    got = B.rp3beta_similarity(*LOG[:2], 7, 0.8, 0.4, n_neighbors=2).toarray()
    for row_full, row in zip(full, got, strict=True):
        keep = np.lexsort((np.arange(7), -row_full))[:2]
        keep = keep[row_full[keep] > 0]
        np.testing.assert_allclose(row[keep], row_full[keep])
        assert np.count_nonzero(row) == keep.size


def test_ease_weights_match_the_closed_form() -> None:
    lam = 2.5
    p = np.linalg.inv(X.T @ X + lam * np.eye(7))
    ref = np.eye(7) - p / np.diag(p)[None, :]
    np.fill_diagonal(ref, 0.0)
    np.testing.assert_allclose(B.ease_weights(sp.csr_matrix(X), lam), ref, atol=1e-12)


def _ranked(scores: np.ndarray, exclude: np.ndarray, k: int) -> list[int]:
    s = scores.astype(np.float64).copy()
    s[exclude] = -np.inf
    order = np.lexsort((np.arange(s.size), -s))
    return [int(i) for i in order[:k]]


def test_ease_recommend_scores_history_times_b() -> None:
    rec = B.EASE(lam=1.0).fit(LOG, n_videos=7)
    assert rec.items.tolist() == list(np.flatnonzero(X.sum(axis=0)))
    hist = [np.array([0, 1]), np.array([4])]
    got = rec.recommend(np.array([0, 1]), k=4, histories=hist)
    p = np.linalg.inv(X[:, :6].T @ X[:, :6] + np.eye(6))
    b = np.eye(6) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    for row, h in zip(got, hist, strict=True):
        scores = np.r_[np.isin(np.arange(6), h) @ b, -np.inf]
        assert row.tolist() == _ranked(scores, h, 4)


def test_rp3beta_recommend_scores_history_times_w() -> None:
    rec = B.RP3beta(alpha=0.7, beta=0.2).fit(LOG, n_videos=7)
    w = _rp3beta_dense(X, 0.7, 0.2)
    h = np.array([2, 3])
    got = rec.recommend(np.array([5]), k=3, histories=[h])
    assert got[0].tolist() == _ranked(np.isin(np.arange(7), h) @ w, h, 3)  # every score > 0 here
    assert (np.isin(np.arange(7), h) @ w)[got[0]].min() > 0


def test_bad_hyperparameters_are_refused() -> None:
    with pytest.raises(ValueError, match="lam"):
        B.EASE(lam=0.0)
    with pytest.raises(ValueError, match="alpha"):
        B.RP3beta(alpha=-1.0)
    with pytest.raises(ValueError, match="max_items"):
        B.EASE(max_items=3).fit(LOG, n_videos=7)


def test_tune_picks_the_best_grid_point() -> None:
    users = np.arange(9)
    hist = [np.flatnonzero(X[u])[:-1] for u in users]
    labels = np.array([np.flatnonzero(X[u])[-1] if X[u].any() else 0 for u in users])
    ok = np.array([h.size > 0 for h in hist])
    grid = {"lam": [0.1, 10.0, 1000.0]}
    tuned = B.tune(B.EASE, grid, LOG, 7, users[ok], [h for h, o in zip(hist, ok, strict=True) if o],
                   labels[ok], k=2)
    assert [p for p, _ in tuned.scores] == [{"lam": v} for v in grid["lam"]]
    best = max(s for _, s in tuned.scores)
    assert tuned.params == next(p for p, s in tuned.scores if s == best)
    assert isinstance(tuned.model, B.EASE) and tuned.model.lam == tuned.params["lam"]


def test_grid_points_cover_every_combination() -> None:
    points = B._grid_points({"a": [1, 2], "b": [None, 3]})
    assert points == [{"a": 1, "b": None}, {"a": 1, "b": 3}, {"a": 2, "b": None}, {"a": 2, "b": 3}]


def test_tune_derives_item_knn_variants_and_matches_fitting_every_point(monkeypatch) -> None:
    users = np.arange(9)
    hist = [np.flatnonzero(X[u])[:-1] for u in users]
    labels = np.array([np.flatnonzero(X[u])[-1] if X[u].any() else 0 for u in users])
    ok = np.array([h.size > 0 for h in hist])
    v_users, v_hist, v_labels = users[ok], [h for h, o in zip(hist, ok, strict=True) if o], labels[ok]
    grid = {"n_neighbors": [1, 3, 6], "n_recent": [1, None], "shrink": [0, 2.0]}
    by_hand = []
    for params in B._grid_points(grid):
        ranked = B.ItemKNN(**params).fit(LOG, n_videos=7).recommend(v_users, 3, histories=v_hist)
        by_hand.append((params, float(B.recall_at_k(ranked, v_labels))))
    fits = []
    real_fit = B.ItemKNN.fit
    monkeypatch.setattr(B.ItemKNN, "fit", lambda self, *a, **kw: fits.append(self.n_neighbors)
                        or real_fit(self, *a, **kw))
    tuned = B.tune(B.ItemKNN, grid, LOG, 7, v_users, v_hist, v_labels, k=3)
    assert tuned.scores == by_hand  # grid order, the same recall at every point
    assert fits == [6, 6]  # one fit per shrink, at the widest neighbourhood; the other 10 points derived
    best = max(s for _, s in by_hand)
    assert tuned.params == next(p for p, s in by_hand if s == best)  # ties to the earlier point
    fresh = B.ItemKNN(**tuned.params).fit(LOG, n_videos=7)
    assert (tuned.model.similarity != fresh.similarity).nnz == 0
    assert (tuned.model.n_neighbors, tuned.model.n_recent, tuned.model.shrink) == (
        fresh.n_neighbors, fresh.n_recent, fresh.shrink)
