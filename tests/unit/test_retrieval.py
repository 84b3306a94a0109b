"""ytrec_lib.serving.retrieval against NumPy brute force (in the style of Faiss's contrib tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ytrec_lib.serving import retrieval as rt

N, D, NQ, K = 1500, 12, 30, 10
# Small-but-real parameters so every kind builds in well under a second.
FAST = {"ivf": {"nlist": 16, "nprobe": 16, "niter": 5}, "ivfpq": {"nlist": 8, "nprobe": 8, "m": 6, "nbits": 5,
        "niter": 5}, "hnsw": {"M": 8, "efConstruction": 40, "efSearch": 64}, "lsh": {"nbits": 64}}


def _data(n: int = N, d: int = D, nq: int = NQ, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered items with uneven norms (like softmax output vectors) and queries near the clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, d))
    x = centres[rng.integers(8, size=n)] + 0.7 * rng.standard_normal((n, d))
    x *= rng.lognormal(0.0, 0.3, size=(n, 1))
    q = centres[rng.integers(8, size=nq)] + 0.7 * rng.standard_normal((nq, d))
    return x.astype(np.float32), q.astype(np.float32)


def _brute(x: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """The full score matrix (nq, N) in float64, larger = better (ip) or smaller = better (l2)."""
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if metric == "ip":
        return q64 @ x64.T
    return (q64**2).sum(1)[:, None] + (x64**2).sum(1)[None, :] - 2 * q64 @ x64.T


def _true_scores(x: np.ndarray, q: np.ndarray, ids: np.ndarray, metric: str) -> np.ndarray:
    return np.take_along_axis(_brute(x, q, metric), ids, axis=1)


def assert_valid(scores: np.ndarray, ids: np.ndarray, n: int, nq: int, k: int, metric: str) -> None:
    """Shapes, dtypes, ids in 0..n-1 without -1 or repeats, scores sorted best first."""
    assert scores.shape == ids.shape == (nq, k)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert ids.min() >= 0 and ids.max() < n
    assert all(len(set(row)) == k for row in ids.tolist())
    sign = 1 if metric == "ip" else -1
    assert np.all(np.diff(sign * scores.astype(np.float64), axis=1) <= 1e-4 * (1 + np.abs(scores[:, 1:])))


def assert_exact_topk(scores: np.ndarray, ids: np.ndarray, x: np.ndarray, q: np.ndarray, k: int,
                      metric: str, tol: float = 1e-4) -> None:
    """``ids`` are an exact top-k: their true scores equal the k best true scores (ties may permute
    ids), the returned scores are those true scores, and the ids are the reference ids wherever the
    k-th and (k+1)-th best scores are not tied."""
    assert_valid(scores, ids, len(x), len(q), k, metric)
    full = _brute(x, q, metric)
    sign = 1.0 if metric == "ip" else -1.0
    ref_sorted = sign * -np.sort(-sign * full, axis=1)  # best first
    got_true = _true_scores(x, q, ids, metric)
    scale = 1.0 + np.abs(ref_sorted[:, :1])
    np.testing.assert_allclose(got_true, ref_sorted[:, :k], atol=tol * scale.max(), rtol=0)
    np.testing.assert_allclose(scores, got_true, atol=tol * scale.max(), rtol=0)
    ref_ids = np.argsort(-sign * full, axis=1, kind="stable")[:, :k]
    untied = np.abs(ref_sorted[:, k - 1] - ref_sorted[:, k]) > tol * scale[:, 0]
    assert untied.mean() > 0.5  # the check below must bite
    for row in np.flatnonzero(untied):
        assert set(ids[row]) == set(ref_ids[row])


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return _data()


# ----------------------------------------------------------------------------- exact answers
@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("kind,params", [("exact", {}), ("flat", {}), ("kdtree", {}), ("balltree", {}),
                                         ("kdtree", {"leaf_size": 5}),
                                         ("ivf", {"nlist": 16, "nprobe": 16, "niter": 5})])
def test_exact_kinds_return_the_exact_topk(data, kind, params, metric):
    x, q = data
    scores, ids = rt.build_index(kind, x, metric, **params).search(q, K)
    assert_exact_topk(scores, ids, x, q, K, metric)


def test_ivf_with_all_lists_probed_after_set_params_is_exact(data):
    x, q = data
    index = rt.build_index("ivf", x, nlist=16, nprobe=1, niter=5)
    _, ids1 = index.search(q, K)
    index.set_params(nprobe=16)
    assert index.params["nprobe"] == 16
    scores, ids = index.search(q, K)
    assert_exact_topk(scores, ids, x, q, K, "ip")
    assert rt.recall_at_k(ids1, ids) < 1.0  # one list of sixteen misses some answers


@pytest.mark.parametrize("kind", ["exact", "flat", "kdtree", "balltree"])
def test_exact_ties_are_handled(kind):
    """Duplicated items give exactly tied scores: any of the tied ids is right, never the same id twice."""
    x, q = _data(n=300, nq=10, seed=3)
    x = np.concatenate([x, x[:150]])  # items 300.. duplicate items 0..149
    scores, ids = rt.build_index(kind, x).search(q, K)
    assert_valid(scores, ids, len(x), len(q), K, "ip")
    ref = -np.sort(-_brute(x, q, "ip"), axis=1)[:, :K]
    np.testing.assert_allclose(_true_scores(x, q, ids, "ip"), ref, atol=1e-4 * np.abs(ref).max())


def test_exact_single_query_gemv_path_equals_batch_gemm_path(data):
    x, q = data
    index = rt.build_index("exact", x)
    s_batch, i_batch = index.search(q, K)
    for row in range(3):
        s_one, i_one = index.search(q[row], K)  # 1-D query -> one row
        assert s_one.shape == (1, K)
        np.testing.assert_array_equal(i_one[0], i_batch[row])
        np.testing.assert_allclose(s_one[0], s_batch[row], rtol=1e-5)


def test_exact_batches_give_the_same_answer(data):
    x, q = data
    s_all, i_all = rt.build_index("exact", x).search(q, K)
    s_small, i_small = rt.build_index("exact", x, batch_size=7).search(q, K)
    np.testing.assert_array_equal(i_all, i_small)
    np.testing.assert_allclose(s_all, s_small, rtol=1e-5)


def test_k_equal_to_n_returns_every_item(data):
    x, q = data
    scores, ids = rt.build_index("exact", x[:20]).search(q, 20)
    assert all(sorted(row) == list(range(20)) for row in ids.tolist())
    np.testing.assert_allclose(scores, -np.sort(-_brute(x[:20], q, "ip"), axis=1), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- every index
@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("kind", rt.KINDS)
def test_every_index_returns_valid_ids_and_true_scores(data, kind, metric):
    x, q = data
    index = rt.build_index(kind, x, metric, **FAST.get(kind, {}))
    scores, ids = index.search(q, K)
    assert_valid(scores, ids, len(x), len(q), K, metric)
    true = _true_scores(x, q, ids, metric)
    if kind == "ivfpq":  # PQ scores are estimates: close to the truth, not equal
        assert np.corrcoef(true.ravel(), scores.ravel())[0, 1] > 0.8
    else:
        np.testing.assert_allclose(scores, true, atol=1e-4 * (1 + np.abs(true).max()))
    _, exact_ids = rt.exact_search(x, q, K, metric)
    assert rt.recall_at_k(ids, exact_ids) > (0.2 if kind in ("lsh", "ivfpq") else 0.8)


def test_approximate_indexes_trade_recall_for_work(data):
    x, q = data
    _, truth = rt.exact_search(x, q, K)
    ivf = rt.build_index("ivf", x, nlist=32, niter=5)
    recalls = [rt.recall_at_k(ivf.set_params(nprobe=p).search(q, K)[1], truth) for p in (1, 4, 32)]
    assert recalls[0] < recalls[1] <= recalls[2] == 1.0
    hnsw = rt.build_index("hnsw", x, M=8, efConstruction=40)
    assert rt.recall_at_k(hnsw.set_params(efSearch=10).search(q, K)[1], truth) <= rt.recall_at_k(
        hnsw.set_params(efSearch=200).search(q, K)[1], truth)
    assert hnsw.params["efSearch"] == 200


def test_shortlist_reranking_raises_recall(data):
    x, q = data
    _, truth = rt.exact_search(x, q, K)
    for kind in ("lsh", "ivfpq"):
        index = rt.build_index(kind, x, **FAST[kind])
        plain = rt.recall_at_k(index.search(q, K)[1], truth)
        reranked = rt.recall_at_k(index.set_params(shortlist=200).search(q, K)[1], truth)
        assert reranked > plain, kind
        assert index.params["shortlist"] == 200


def test_lsh_on_transformed_vectors_beats_plain_angles_for_inner_product(data):
    """With uneven norms the angle alone misses the long vectors; the transform puts norms in the angle."""
    x, q = data
    _, truth = rt.exact_search(x, q, K)
    with_t = rt.build_index("lsh", x, nbits=256, shortlist=100)
    without = rt.build_index("lsh", x, nbits=256, shortlist=100, transform=False)
    assert with_t.params["transform"] and not without.params["transform"]
    assert rt.recall_at_k(with_t.search(q, K)[1], truth) > rt.recall_at_k(without.search(q, K)[1], truth)


def test_missing_candidates_are_marked_not_invented():
    """IVF probing one tiny list cannot fill k slots: the rest is id -1 with score -inf."""
    x, q = _data(n=400, nq=5)
    index = rt.build_index("ivf", x, nlist=10, nprobe=1, niter=5)
    scores, ids = index.search(q, 100)
    assert (ids == -1).any()
    assert np.all(np.isneginf(scores[ids == -1]))
    assert np.all(ids[ids >= 0] < len(x))


def test_memory_bytes(data):
    x, _ = data
    assert rt.build_index("exact", x).memory_bytes() == x.nbytes
    flat = rt.build_index("flat", x).memory_bytes()
    assert x.nbytes <= flat < x.nbytes + 4096
    pq = rt.build_index("ivfpq", x, **FAST["ivfpq"])
    assert pq.memory_bytes() < flat / 2
    assert pq.set_params(shortlist=50).memory_bytes() > x.nbytes  # re-ranking keeps the vectors
    kd = rt.build_index("kdtree", x).memory_bytes()
    assert kd >= len(x) * (D + 1) * 8  # float64 copy of the transformed vectors
    assert rt.build_index("hnsw", x, M=8).memory_bytes() > flat  # vectors plus graph links


def test_describe_and_name(data):
    x, _ = data
    index = rt.build_index("hnsw", x, M=8, efSearch=20)
    assert index.name == "hnsw"
    assert "M=8" in index.describe() and "efSearch=20" in index.describe()
    assert index.n == len(x) and index.d == D and index.metric == "ip"


# ----------------------------------------------------------------------------- the MIPS -> L2 transform
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=hnp.arrays(np.float64, st.tuples(st.integers(2, 25), st.integers(1, 6)),
                        elements=st.floats(-10, 10, allow_subnormal=False)),
       query=st.lists(st.floats(-10, 10, allow_subnormal=False), min_size=6, max_size=6))
def test_transform_l2_order_equals_inner_product_order(items, query):
    q = np.asarray(query[: items.shape[1]])[None, :]  # (1, d)
    xt, qt = rt.mips_transform_items(items), rt.mips_transform_queries(q)
    m = rt.mips_max_norm(items)
    assert xt.shape == (len(items), items.shape[1] + 1) and qt.shape == (1, items.shape[1] + 1)
    np.testing.assert_allclose(np.linalg.norm(xt, axis=1), m, atol=1e-6 * (1 + m))  # all on one sphere
    ip = (items @ q[0])  # (N,)
    d2 = ((xt - qt) ** 2).sum(axis=1)  # (N,)
    np.testing.assert_allclose(d2, (q**2).sum() + m**2 - 2 * ip, atol=1e-6 * (1 + m * m + (q**2).sum()))
    tol = 1e-6 * (1 + m * m + (q**2).sum())
    better = ip[:, None] - ip[None, :] > tol  # i strictly better than j by inner product
    d2_i, d2_j = np.broadcast_to(d2[:, None], better.shape), np.broadcast_to(d2[None, :], better.shape)
    assert np.all(d2_i[better] < d2_j[better])


def test_transform_rejects_a_too_small_radius_and_accepts_a_larger_one():
    x = np.array([[3.0, 4.0], [1.0, 0.0]])
    assert rt.mips_max_norm(x) == pytest.approx(5.0)
    np.testing.assert_allclose(rt.mips_transform_items(x, 6.0)[:, 2], np.sqrt([11.0, 35.0]))
    with pytest.raises(ValueError, match="smaller than the largest item norm"):
        rt.mips_transform_items(x, 4.0)
    with pytest.raises(ValueError, match="shape"):
        rt.mips_transform_queries(np.ones(3))


# ----------------------------------------------------------------------------- recall
def _naive_recall(ids: np.ndarray, truth: np.ndarray, k: int) -> float:
    hits = [len({i for i in a[:k] if i >= 0} & set(t[:k])) for a, t in zip(ids, truth, strict=True)]
    return float(np.mean(hits)) / k


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 8), st.integers(0, 10_000))
def test_recall_matches_a_naive_set_count(n, k, seed):
    rng = np.random.default_rng(seed)
    truth = np.stack([rng.choice(20, size=k, replace=False) for _ in range(n)])
    ids = np.stack([rng.choice(np.arange(-1, 20), size=k, replace=False) for _ in range(n)])
    assert rt.recall_at_k(ids, truth) == pytest.approx(_naive_recall(ids, truth, k))
    assert 0.0 <= rt.recall_at_k(ids, truth) <= 1.0
    assert rt.recall_at_k(truth, truth) == 1.0


def test_recall_known_values_and_errors():
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    got = np.array([[4, 3, 9, 9], [-1, -1, 8, 5]])
    assert rt.recall_at_k(got, truth) == pytest.approx(4 / 8)
    assert rt.recall_at_k(got, truth, k=2) == pytest.approx(0 / 4)
    with pytest.raises(ValueError, match="same n"):
        rt.recall_at_k(got[:1], truth)
    with pytest.raises(ValueError, match="k=5"):
        rt.recall_at_k(got, truth, k=5)


# ----------------------------------------------------------------------------- errors and threads
@pytest.mark.parametrize("call,match", [
    (lambda x: rt.build_index("annoy", x), "unknown index kind 'annoy'"),
    (lambda x: rt.build_index("flat", x, metric="cosine"), "unknown metric"),
    (lambda x: rt.build_index("hnsw", x, nprobe=3), "unknown parameter"),
    (lambda x: rt.build_index("ivf", x, nlist=10**6), "nlist"),
    (lambda x: rt.build_index("ivf", x, nlist=0), "nlist"),
    (lambda x: rt.build_index("ivfpq", x, m=5), "must divide d"),
    (lambda x: rt.build_index("ivfpq", x[:100], nlist=2, nbits=8), "training"),
    (lambda x: rt.build_index("hnsw", x, M=1.5), "M=1.5"),
    (lambda x: rt.build_index("lsh", x, transform="yes"), "transform"),
    (lambda x: rt.build_index("flat", x[:, :, None]), "2-D"),
    (lambda x: rt.build_index("flat", np.where(x > 2, np.nan, x)), "NaN"),
    (lambda x: rt.build_index("flat", x[:0]), "empty"),
    (lambda x: rt.build_index("flat", x.astype(str)), "real numbers"),
    (lambda x: rt.build_index("flat", x).search(x[:2, :5], 3), "dimension 5"),
    (lambda x: rt.build_index("flat", x).search(x[:2], len(x) + 1), "k="),
    (lambda x: rt.build_index("flat", x).search(x[:2], 0), "k=0"),
    (lambda x: rt.build_index("hnsw", x, M=4).set_params(nprobe=4), "cannot set 'nprobe'"),
    (lambda x: rt.build_index("ivf", x, nlist=8, niter=2).set_params(nprobe=9), "nprobe=9"),
    (lambda x: rt.build_index("flat", x).set_params(efSearch=9), "settable: none"),
])
def test_bad_input_raises_a_clear_value_error(data, call, match):
    x, _ = data
    with pytest.raises(ValueError, match=match):
        call(x)


def test_default_nlist_follows_sqrt_n_and_keeps_enough_points_per_list():
    assert rt.default_nlist(1_000_000) == 4096
    assert rt.default_nlist(100_000) == 1024
    assert rt.default_nlist(2000) == 2000 // 39
    assert rt.default_nlist(10) == 1


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(40, 300), st.integers(1, 8), st.integers(0, 10_000))
def test_block_threshold_topk_equals_full_sort_even_with_ties(b, n, k, seed):
    """The block-maximum threshold never drops a top-k score (few distinct values: many ties)."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=(b, n)).astype(np.float32)  # (b, n)
    vals, ids = rt._topk_rows(scores, k, block=4)
    np.testing.assert_array_equal(vals, -np.sort(-scores, axis=1)[:, :k])
    np.testing.assert_array_equal(np.take_along_axis(scores, ids, axis=1), vals)
    assert all(len(set(row)) == k for row in ids.tolist())


def test_valid_answer_checks_ids_and_order():
    x = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    q = x[:3]
    assert rt.valid_answer(*rt.exact_search(x, q, 5), 50)
    assert rt.valid_answer(*rt.exact_search(x, q, 5, metric="l2"), 50, metric="l2")
    scores, ids = rt.exact_search(x, q, 5)
    assert not rt.valid_answer(scores[:, ::-1], ids, 50)  # worst first
    assert not rt.valid_answer(scores, np.where(ids == ids[0, 0], 50, ids), 50)  # out of range
    dup = ids.copy()
    dup[:, 1] = dup[:, 0]
    assert not rt.valid_answer(scores, dup, 50)
    assert not rt.valid_answer(np.full_like(scores, np.nan), ids, 50)
