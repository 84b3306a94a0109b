"""Tests of ytrec_lib.serving.server and the bit-exact side of its index
(:class:`ytrec_lib.serving.retrieval.ExactIndex`): exact search against NumPy, served top-k = model
top-k, no torch imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ytrec_lib.models.candidate import CandidateModel, sequential_dot, synthetic_batch
from ytrec_lib.serving.server import (
    ExactIndex,
    StoreServer,
    check_id,
    check_ids,
    ordered_inner_products,
    same_sets,
    serve_in_fresh_process,
    timing_summary,
)
from ytrec_lib.serving.store import EmbeddingStore


def brute_force_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Reference: full sort of each row by (score descending, column ascending)."""
    cols = np.arange(scores.shape[1])
    return np.stack([np.lexsort((cols, -row))[:k] for row in scores])


def random_embeddings(n_users: int, n_videos: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(n_users, d)).astype(np.float32)  # (U, d)
    return users, rng.normal(size=(n_videos, d)).astype(np.float32)  # (V, d)


# ---------------------------------------------------------------- exact scores


def test_ordered_inner_products_match_numpy_and_the_models_order():
    users, videos = random_embeddings(7, 50, 9)
    got = ordered_inner_products(users, np.ascontiguousarray(videos.astype(np.float64).T))
    np.testing.assert_allclose(got, users.astype(np.float64) @ videos.astype(np.float64).T, rtol=1e-12)
    # bit for bit the same operations as the candidate model's logits64 path
    np.testing.assert_array_equal(got, sequential_dot(users.astype(np.float64), videos.astype(np.float64)))


def test_ordered_inner_products_are_exactly_a_left_to_right_sum():
    users, videos = random_embeddings(3, 4, 5, seed=1)
    u, v = users.astype(np.float64), videos.astype(np.float64)
    naive = np.zeros((3, 4))
    for a in range(3):
        for b in range(4):
            s = 0.0
            for i in range(5):
                s += u[a, i] * v[b, i]
            naive[a, b] = s
    np.testing.assert_array_equal(ordered_inner_products(u, np.ascontiguousarray(v.T), chunk=2), naive)


def test_equal_vectors_get_equal_scores_wherever_they_sit():
    users, videos = random_embeddings(5, 300, 33, seed=2)
    videos[250] = videos[3]
    s = ExactIndex(videos).scores(users)
    np.testing.assert_array_equal(s[:, 250], s[:, 3])


# ---------------------------------------------------------------- exact index


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), d=st.integers(1, 8), k=st.integers(1, 70),
       n_dupes=st.integers(0, 5))
def test_search_equals_brute_force_with_ties_to_the_lower_id(seed, n, d, k, n_dupes):
    rng = np.random.default_rng(seed)
    users, videos = random_embeddings(4, n, d, seed)
    for _ in range(n_dupes):  # exact copies: ties that must go to the lower id
        i, j = rng.integers(0, n, 2)
        videos[j] = videos[i]
    k_eff = min(k, n)
    expected = brute_force_top_k(users.astype(np.float64) @ videos.astype(np.float64).T, k_eff)
    got = ExactIndex(videos).top_ids(users, k)
    assert got.shape == (4, k_eff)
    np.testing.assert_array_equal(got, expected)


def test_search_returns_the_callers_ids_and_excludes_by_id():
    users, videos = random_embeddings(3, 40, 6, seed=3)
    ids = np.arange(40)[::-1] * 10 + 7  # descending, non-contiguous ids
    index = ExactIndex(videos, ids)
    order = np.argsort(ids)
    expected = ids[order][brute_force_top_k(users @ videos[order].T, 40)]  # rows in ascending id order
    np.testing.assert_array_equal(index.top_ids(users, 40), expected)
    banned = [expected[0, :5], np.array([-3, 999_999]), expected[2, [0]]]  # unknown ids ignored
    got = index.top_ids(users, 10, exclude=banned)
    np.testing.assert_array_equal(got[0], expected[0, 5:15])
    np.testing.assert_array_equal(got[1], expected[1, :10])
    np.testing.assert_array_equal(got[2], expected[2, 1:11])


def test_both_ways_of_searching_agree_and_return_the_callers_ids():
    """The Index interface (float32 GEMM, ``search``) and the bit-exact path (``top_ids``) of the one
    exact index give the same ids when there are no near-ties, both as the caller's ids."""
    users, videos = random_embeddings(6, 50, 8, seed=4)
    ids = np.arange(50)[::-1] * 3 + 100
    index = ExactIndex(videos, ids)
    scores, found = index.search(users, 10)
    np.testing.assert_array_equal(found, index.top_ids(users, 10))
    exact = np.take_along_axis(index.scores(users), np.searchsorted(index.ids, found), axis=1)  # (6, 10)
    np.testing.assert_allclose(scores, exact, rtol=1e-5)


def test_exclusion_can_exhaust_a_row_which_is_padded_with_minus_one():
    users, videos = random_embeddings(1, 5, 3)
    got = ExactIndex(videos).top_ids(users, 5, exclude=[np.array([0, 1, 2])])
    assert sorted(got[0, :2].tolist()) == [3, 4] and (got[0, 2:] == -1).all()


def test_bad_index_input_gives_clear_errors():
    with pytest.raises(ValueError, match="non-empty"):
        ExactIndex(np.zeros((0, 3), np.float32))
    with pytest.raises(ValueError, match="finite"):
        ExactIndex(np.array([[np.nan, 1.0]], np.float32))
    with pytest.raises(ValueError, match="distinct"):
        ExactIndex(np.ones((2, 2), np.float32), ids=[4, 4])
    with pytest.raises(ValueError, match="d=3"):
        ExactIndex(np.ones((2, 3), np.float32)).scores(np.ones((1, 4)))
    with pytest.raises(ValueError, match="one id array per query"):
        ExactIndex(np.ones((2, 3), np.float32)).top_ids(np.ones((2, 3)), 1, exclude=[[0]])


# ---------------------------------------------------------------- serving from the store


@pytest.fixture
def store(tmp_path):
    with EmbeddingStore(tmp_path / "store.sqlite") as s:
        yield s


def test_served_top_k_equals_search_over_the_written_arrays(store):
    users, videos = random_embeddings(20, 200, 9, seed=4)
    store.write_version("v1", users, videos, user_ids=np.arange(100, 120))
    server = StoreServer(store)
    assert server.version == "v1" and server.dim == 9 and server.load_ms >= 0
    served, timings = server.recommend_many(np.arange(100, 120), 25, progress=False)
    np.testing.assert_array_equal(served, ExactIndex(videos).top_ids(users, 25))
    one = server.recommend(105, 25)
    np.testing.assert_array_equal(one.video_ids, served[5])
    assert one.total_ms == pytest.approx(one.lookup_ms + one.score_ms + one.select_ms)
    assert set(timings) == {"lookup_ms", "score_ms", "select_ms", "total_ms"}
    np.testing.assert_allclose(timings["total_ms"],
                               timings["lookup_ms"] + timings["score_ms"] + timings["select_ms"])
    watched = [np.array(served[i, :3]) for i in range(20)]
    again, _ = server.recommend_many(np.arange(100, 120), 22, exclude=watched, progress=False)
    np.testing.assert_array_equal(again, served[:, 3:])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_videos=st.integers(2, 40), depth=st.integers(0, 3),
       k=st.integers(1, 40), n_dupes=st.integers(0, 4))
def test_served_top_k_equals_the_models_softmax_top_k(tmp_path_factory, seed, n_videos, depth, k, n_dupes):
    """Random small candidate models (duplicated output columns make exact ties): written to a store
    as [u, 1] and [v, b], served without torch code, the top-k equals the model's softmax top-k."""
    model = CandidateModel(n_videos, 5, 3, dim=4, tower=(8,) * depth, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.output.bias.copy_(torch.randn(n_videos, generator=g))
        for _ in range(n_dupes):
            i, j = torch.randint(0, n_videos, (2,), generator=g).tolist()
            model.output.weight[j] = model.output.weight[i]
            model.output.bias[j] = model.output.bias[i]
    batch, _ = synthetic_batch(n_videos, 5, 3, model.spec, 9, seed=seed)
    users, videos = (t.numpy() for t in model.augmented_embeddings(batch))
    with EmbeddingStore(tmp_path_factory.mktemp("s") / "s.sqlite") as s:
        s.write_version("cand", users, videos)
        served, _ = StoreServer(s).recommend_many(np.arange(9), k, progress=False)
    np.testing.assert_array_equal(served, model.recommend(batch, min(k, n_videos)))


def test_server_stays_on_its_version_while_a_new_one_is_activated(tmp_path):
    path = tmp_path / "s.sqlite"
    u1, v1 = random_embeddings(5, 50, 4, seed=5)
    u2, v2 = random_embeddings(6, 60, 7, seed=6)
    with EmbeddingStore(path) as reader, EmbeddingStore(path) as writer:
        writer.write_version("v1", u1, v1)
        server = StoreServer(reader)
        writer.write_version("v2", u2, v2)  # activated; another dimension
        assert reader.active_version() == "v2"
        got, _ = server.recommend_many(np.arange(5), 10, progress=False)
        np.testing.assert_array_equal(got, ExactIndex(v1).top_ids(u1, 10))
        with pytest.raises(KeyError, match="user id 5"):
            server.recommend(5, 10)  # only in v2
        np.testing.assert_array_equal(StoreServer(reader).recommend(5, 10).video_ids,
                                      ExactIndex(v2).top_ids(u2[5], 10)[0])


@pytest.mark.parametrize("bad,match", [
    (-1, "user id -1 is not in version 'v1'"),
    (120, "user id 120 is not in version 'v1'"),
    (99, "user id 99 is not in version 'v1'"),
    (3.7, r"user id 3\.7 is not an integer \(it is a float\)"),
    (105.0, r"user id 105\.0 is not an integer \(it is a float\)"),
    (True, r"user id True is not an integer \(it is a bool\)"),
    ("105", r"user id '105' is not an integer \(it is a str\)"),
])
def test_store_server_refuses_bad_user_ids(store, bad, match):
    users, videos = random_embeddings(20, 30, 4, seed=8)
    store.write_version("v1", users, videos, user_ids=np.arange(100, 120))
    server = StoreServer(store)
    for call in (lambda: server.recommend(bad, 5), lambda: server.user_vector(bad)):
        with pytest.raises(ValueError, match=match) as err:
            call()
        assert isinstance(err.value, KeyError)  # unknown ids were KeyErrors before
    with pytest.raises(ValueError, match=match):
        server.recommend_many([100, 101, bad], 5, progress=False)
    same = server.recommend(np.int64(105), 5).video_ids
    assert same.tolist() == server.recommend(105, 5).video_ids.tolist()


def test_store_server_checks_all_ids_before_the_first_request(store):
    users, videos = random_embeddings(4, 30, 4, seed=9)
    store.write_version("v1", users, videos)
    server = StoreServer(store)
    with pytest.raises(ValueError, match=r"position 2: user id 2\.5 is not an integer"):
        server.recommend_many([0, 1, 2.5], 5, progress=False)
    with pytest.raises(ValueError, match=r"position 0 \(of 2 bad\): user id -1 is out of range"):
        check_ids(np.array([-1, 0, 7]), "user", 4, "this store")
    with pytest.raises(ValueError, match="user id 4 is not in version 'v1'"):
        server.recommend_many(np.array([0, 4, 1]), 5, progress=False)
    with pytest.raises(ValueError, match="excluded video ids must be integers, got dtype float64"):
        server.recommend(0, 5, exclude=[1.5, 2.0])
    with pytest.raises(ValueError, match="excluded video ids must be integers, got dtype bool"):
        server.recommend(0, 5, exclude=np.array([True, False]))
    kept = server.recommend(0, 5, exclude=[]).video_ids
    assert server.recommend(0, 5, exclude=[kept[0], 999]).video_ids[0] == kept[1]  # unknown id: ignored
    assert check_id(np.uint8(3), "video", 4) == 3
    assert check_ids(pd.Series([3, 0]), "user", 4).tolist() == [3, 0]
    with pytest.raises(ValueError, match="position 0: user id False is not an integer"):
        check_ids(pd.Series([False, True]), "user", 4)
    with pytest.raises(ValueError, match=r"position 0: user id nan is not an integer \(it is a float\)"):
        check_ids(pd.Series([None, 1], dtype="Int64"), "user", 4)
    with pytest.raises(ValueError, match="video id 4 is out of range: the store has videos 0..3"):
        check_id(4, "video", 4)


def test_empty_store_and_unknown_version_are_refused(store):
    with pytest.raises(KeyError, match="no versions"):
        StoreServer(store)
    store.write_version("v1", *random_embeddings(2, 3, 2))
    with pytest.raises(KeyError, match="'nope' is not in the store"):
        StoreServer(store, version="nope")


def test_serving_imports_no_torch(tmp_path):
    """The serving path runs in a fresh interpreter without torch ever being imported."""
    users, videos = random_embeddings(4, 30, 5, seed=7)
    path = tmp_path / "s.sqlite"
    with EmbeddingStore(path) as s:
        s.write_version("v1", users, videos)
    expected = ExactIndex(videos).top_ids(users, 7)
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from ytrec_lib.serving.server import StoreServer
        from ytrec_lib.serving.store import EmbeddingStore
        with EmbeddingStore({str(path)!r}) as s:
            ids, _ = StoreServer(s).recommend_many(np.arange(4), 7, progress=False)
        print("torch" in sys.modules)
        print(ids.tolist())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    torch_loaded, ids = out.stdout.strip().splitlines()
    assert torch_loaded == "False"
    assert ids == str(expected.tolist())


# ---------------------------------------------------------------- helpers


def test_timing_summary_matches_numpy_percentiles():
    ms = {"lookup_ms": np.arange(101, dtype=float), "total_ms": np.linspace(1, 2, 11)}
    summary = timing_summary(ms)
    assert summary["lookup_ms"] == {"p50": 50.0, "p90": 90.0, "p99": 99.0}
    assert summary["total_ms"]["p50"] == pytest.approx(np.percentile(ms["total_ms"], 50))
    with pytest.raises(ValueError, match="no timings"):
        timing_summary({})


def test_same_sets_ignores_order_only():
    a = np.array([[1, 2, 3], [4, 5, 6]])
    b = np.array([[3, 1, 2], [4, 5, 7]])
    np.testing.assert_array_equal(same_sets(a, b), [True, False])
    with pytest.raises(ValueError, match="same shape"):
        same_sets(a, b[:, :2])


def test_serve_in_fresh_process_answers_like_the_index_without_torch(tmp_path):
    users, videos = random_embeddings(5, 25, 4, seed=11)
    path = tmp_path / "s.sqlite"
    with EmbeddingStore(path) as s:
        s.write_version("v1", users, videos)
        s.write_version("v2", -users, -videos)  # the active one; v1 is served by name
    ids, info = serve_in_fresh_process(path, "v1", np.arange(5), 6)
    np.testing.assert_array_equal(ids, ExactIndex(videos).top_ids(users, 6))
    assert info["torch_imported"] is False and info["p50_ms"] > 0


def test_serve_in_fresh_process_reports_the_childs_error(tmp_path):
    users, videos = random_embeddings(2, 5, 3)
    path = tmp_path / "s.sqlite"
    with EmbeddingStore(path) as s:
        s.write_version("v1", users, videos)
    with pytest.raises(RuntimeError, match="serving process failed"):
        serve_in_fresh_process(path, "nope", np.arange(2), 3)
