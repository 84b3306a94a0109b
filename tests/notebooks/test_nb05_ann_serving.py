"""Notebook 05 (ANN serving) at the ci preset: its recorded keys and the claims it teaches, on its results."""

from __future__ import annotations

import pytest

STEM = "05_ann_serving"
KINDS = ("exact", "flat", "ivf", "hnsw", "ivfpq", "lsh", "kdtree", "balltree")
KEYS = ("n_items", "dim", "kdtree_over_exact_by_dim",
        *(f"{kind}_{what}" for kind in KINDS for what in ("recall@10", "p50_ms", "build_s")))

pytestmark = pytest.mark.notebook


def test_records_the_issue_keys(notebook_results) -> None:
    r = notebook_results(STEM)
    missing = [k for k in KEYS if k not in r]
    assert not missing, f"{STEM} did not record {missing}"
    assert 0 < r["n_items"] <= 100_000, r["n_items"]  # ci: N <= 1e5
    assert r["dim"] == r["real_dim"], (r["dim"], r["real_dim"])  # synthetic sets shaped like the real vectors
    for kind in KINDS:
        assert r[f"{kind}_p50_ms"] > 0 and r[f"{kind}_build_s"] >= 0, kind


def test_recalls_are_fractions(notebook_results) -> None:
    r = notebook_results(STEM)
    recalls = {k: v for k, v in r.items() if k.endswith("recall@10")}
    recalls.update({f"lsh_{b}": v for b, v in r["lsh_recall@10_by_bits"].items()})
    recalls.update({f"lsh_rerank_{b}": v for b, v in r["lsh_rerank_recall@10_by_bits"].items()})
    assert len(recalls) >= len(KINDS)
    bad = {k: v for k, v in recalls.items() if not 0.0 <= v <= 1.0}
    assert not bad, bad


def test_exact_indexes_return_the_exact_top_k(notebook_results) -> None:
    r = notebook_results(STEM)
    for kind in ("exact", "flat", "kdtree", "balltree"):
        assert r[f"{kind}_recall@10"] == 1.0, (kind, r[f"{kind}_recall@10"])
    assert r["ivf_nprobe_nlist_recall@10"] == 1.0  # IVF scanning every list is exact
    assert r["real_ivf_nprobe_nlist_recall@10"] == 1.0
    assert all(v == 1.0 for v in r["tree_recall@10_by_dim"].values()), r["tree_recall@10_by_dim"]


def test_every_index_returns_valid_answers(notebook_results) -> None:
    r = notebook_results(STEM)
    assert set(r["valid_answers"]) == set(KINDS)
    assert all(r["valid_answers"].values()), r["valid_answers"]


def test_transform_turns_l2_into_inner_product(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["transform_recall@10"] == 1.0
    assert r["transform_identity_max_abs_err"] < 1e-6 * max(1.0, r["real_dim"])
    assert r["plain_l2_recall@10"] < 1.0  # without the transform L2 answers another question


def test_kdtree_loses_to_the_scan_at_high_d(notebook_results) -> None:
    ratios = {int(d): v for d, v in notebook_results(STEM)["kdtree_over_exact_by_dim"].items()}
    lo, hi = min(ratios), max(ratios)
    assert len(ratios) >= 3 and hi >= 64, ratios
    assert ratios[hi] > 1.0, ratios  # slower than the exact scan at the largest d
    assert ratios[lo] <= 1.5, ratios  # faster than, or close to, the exact scan at the smallest d
    assert ratios[hi] > 3 * ratios[lo], ratios


def test_approximate_indexes_beat_the_scan_and_scale_sublinearly(notebook_results) -> None:
    r = notebook_results(STEM)
    for kind in ("ivf", "hnsw"):
        assert r[f"{kind}_recall@10"] >= 0.9, (kind, r[f"{kind}_recall@10"])
        assert r[f"{kind}_p50_ms"] < r["exact_p50_ms"], (kind, r[f"{kind}_p50_ms"], r["exact_p50_ms"])
    slopes = r["latency_vs_n_slope"]
    assert slopes["hnsw"] < slopes["exact"] and slopes["ivf"] < slopes["exact"], slopes


def test_lsh_recall_grows_with_bits_and_reranking_helps(notebook_results) -> None:
    r = notebook_results(STEM)
    plain = {int(b): v for b, v in r["lsh_recall@10_by_bits"].items()}
    rerank = {int(b): v for b, v in r["lsh_rerank_recall@10_by_bits"].items()}
    lo, hi = min(plain), max(plain)
    assert plain[hi] > plain[lo], plain
    assert all(rerank[b] >= plain[b] for b in plain), (plain, rerank)


def test_bandwidth_and_batching_are_measured(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["bandwidth_GBps"] > 0 and r["gemm_gflops"] > 0
    assert r["exact_scan_over_cache_bound"] > 0
    assert r["faiss_blas_switch_batch"] * r["dim"] >= r["faiss_blas_threshold"]
    numpy_qps = {int(b): v for b, v in r["batch_qps"]["exact (NumPy GEMM)"].items()}
    assert max(numpy_qps.values()) > 2 * numpy_qps[1], numpy_qps  # one GEMM for many queries pays
    assert r["numpy_batch_speedup"] == pytest.approx(max(numpy_qps.values()) / numpy_qps[1])


def test_million_item_numbers_are_never_faked(notebook_results) -> None:
    r = notebook_results(STEM)
    assert "bench_n_items" in r
    if r["bench_n_items"] is None:
        assert "bench_summary" not in r
    else:
        assert r["bench_summary"]["n_items"] == r["bench_n_items"]


def test_the_simulator_keeps_its_next_watch_split(notebook_results) -> None:
    assert notebook_results(STEM)["split"] == "next_watch"
