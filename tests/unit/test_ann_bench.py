"""ytrec_lib.studies.ann_bench: the synthetic data, the measuring helpers and a tiny end-to-end study."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from ytrec_lib import plots
from ytrec_lib.serving import retrieval as rt
from ytrec_lib.studies import ann_bench as ab

TINY = ab.Scale("tiny", n_main=2000, n_grid=(500, 2000), d_grid=(4, 16), n_dim_study=600, n_queries=30,
                n_tune=20, d_main=16, n_batch_study=2000, batch_grid=(1, 8, 64), budget_s=0.2,
                nprobe_grid=(1, 4, 16), ef_grid=(8, 32), lsh_bits=(16, 64), shortlist=30,
                bandwidth_bytes=4 * 2**20, extra_dim_studies=((1200, 4),), n_switch_probe=1000,
                build_params={"hnsw": {"M": 8, "efConstruction": 40}, "ivf": {"niter": 5},
                              "ivfpq": {"niter": 5, "nbits": 5}})


# ----------------------------------------------------------------------------- synthetic data
def test_synthetic_embeddings_are_deterministic_float32_and_seeded():
    a = ab.synthetic_embeddings(500, 8, seed=1)
    assert a.shape == (500, 8) and a.dtype == np.float32 and a.flags.c_contiguous
    np.testing.assert_array_equal(a, ab.synthetic_embeddings(500, 8, seed=1))
    assert not np.allclose(a, ab.synthetic_embeddings(500, 8, seed=2))
    q = ab.synthetic_queries(50, 8, seed=1)
    assert q.shape == (50, 8) and q.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(q, ab.synthetic_queries(50, 8, seed=1))
    assert not np.allclose(q, ab.synthetic_queries(50, 8, seed=1, stream=1))


def test_softmax_norm_profile_gives_popular_items_larger_norms():
    x = ab.synthetic_embeddings(5000, 16, seed=0)
    norms = np.linalg.norm(x, axis=1)
    rho = spearmanr(np.arange(len(x)), norms).statistic  # item id = popularity rank
    assert rho < -0.8
    assert 0.9 < np.median(norms) < 1.1
    assert norms[:50].mean() > 1.6 * norms[-50:].mean()  # the head is much longer than the tail
    unit = np.linalg.norm(ab.synthetic_embeddings(500, 16, norm_profile="unit"), axis=1)
    np.testing.assert_allclose(unit, 1.0, rtol=1e-5)
    logn = np.linalg.norm(ab.synthetic_embeddings(5000, 16, norm_profile="lognormal"), axis=1)
    assert abs(spearmanr(np.arange(5000), logn).statistic) < 0.1 and logn.std() > 0.1


def test_synthetic_embeddings_are_clustered():
    """Items sit near their cluster centres: the nearest other item is far closer than a random one."""
    x = ab.synthetic_embeddings(2000, 32, seed=0, n_clusters=16, norm_profile="unit")
    cos = x[:200] @ x.T  # (200, 2000), unit rows
    np.fill_diagonal(cos[:, :200], -1)
    assert np.median(cos.max(axis=1)) > 0.5
    assert abs(np.median(cos)) < 0.2


@pytest.mark.parametrize("kwargs,match", [({"n": 0, "d": 4}, "n=0"), ({"n": 10, "d": 2.5}, "d=2.5"),
                                          ({"n": 10, "d": 4, "norm_profile": "zipf"}, "norm_profile")])
def test_synthetic_embeddings_reject_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ab.synthetic_embeddings(**kwargs)


# ----------------------------------------------------------------------------- measuring helpers
def test_bandwidth_and_gflops_are_positive_and_consistent():
    bw = ab.measure_bandwidth(4 * 2**20, repeats=2)
    assert bw["read_GBps"] == max(bw["sum_GBps"], bw["max_GBps"]) > 0
    assert bw["copy_GBps"] > 0 and bw["gemv_GBps"] > 0 and bw["n_bytes"] == 4 * 2**20
    assert bw["read_GBps_cpu"] >= 0.9 * bw["read_GBps"]  # CPU time never exceeds the wall clock
    assert ab.measure_gflops(n=128, repeats=2) > 0


def test_time_single_queries_returns_the_index_answers():
    x = ab.synthetic_embeddings(800, 8)
    q = ab.synthetic_queries(12, 8)
    index = rt.build_index("exact", x)
    timed = ab.time_single_queries(index, q, k=5, budget_s=100.0)
    assert timed.wall_s.shape == timed.cpu_s.shape == (12,) and np.all(timed.wall_s > 0)
    assert np.all(timed.cpu_s >= 0) and timed.cpu_s.sum() <= timed.wall_s.sum() * 1.5 + 1e-3
    np.testing.assert_array_equal(timed.ids, index.search(q, 5)[1])
    cut = ab.time_single_queries(index, q, k=5, budget_s=0.0, min_queries=3)
    assert len(cut.wall_s) == len(cut.ids) == 3  # the budget stops it after the minimum


def test_batch_throughput_cuts_the_batch_to_the_budget():
    x = ab.synthetic_embeddings(800, 8)
    q = ab.synthetic_queries(100, 8)
    index = rt.build_index("flat", x)
    qps, used = ab.batch_throughput(index, q, seconds_per_query=0.01, budget_s=0.2)
    assert used == 20 and qps > 0
    assert ab.batch_throughput(index, q)[1] == 100


def test_pick_operating_point():
    rows = [{"recall@10": 0.90, "p50_ms": 0.1}, {"recall@10": 0.96, "p50_ms": 0.5},
            {"recall@10": 0.99, "p50_ms": 0.9}, {"recall@10": 0.97, "p50_ms": 0.4}]
    assert ab.pick_operating_point(rows, 0.95) == rows[3]  # fastest that reaches the target
    assert ab.pick_operating_point(rows, 0.999) == rows[2]  # none does: the most accurate
    with pytest.raises(ValueError, match="at least one"):
        ab.pick_operating_point([], 0.9)


def test_sweep_reports_recall_rising_with_nprobe():
    x = ab.synthetic_embeddings(2000, 8)
    q = ab.synthetic_queries(30, 8)
    _, truth = rt.exact_search(x, q, 10)
    index = rt.build_index("ivf", x, nlist=32, niter=5)
    rows = ab.sweep(index, [{"nprobe": 1}, {"nprobe": 32}], q, truth, budget_s=10.0)
    assert [r["param_nprobe"] for r in rows] == [1, 32]
    assert rows[0]["recall@10"] < rows[1]["recall@10"] == 1.0
    assert all(r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] for r in rows)


# ----------------------------------------------------------------------------- the whole study, tiny
@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The tiny study, run once through the command line: (out folder, results, printed text)."""
    out = tmp_path_factory.mktemp("bench")
    ab.SCALES["_tiny"] = TINY
    try:
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            status = ab.main(["--scale", "_tiny", "--out", str(out), "--threads", "1", "--no-progress"])
    finally:
        del ab.SCALES["_tiny"]
    assert status == 0
    return out, ab.load_results(out), printed.getvalue()


def test_study_writes_every_table_plot_and_manifest(study):
    out, res, _ = study
    for name in ab.TABLES:
        assert (out / f"{name}.csv").exists()
        assert isinstance(res[name], pd.DataFrame) and len(res[name]) > 0
    for name in ab.PLOTS:
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert json.loads((out / "manifest.json").read_text())["scale"] == "tiny"
    assert not list(out.glob(".*.tmp"))  # no temporary file left behind
    assert "| index (parameters) |" in (out / "table.md").read_text()


def test_study_main_table_is_complete_and_sane(study):
    _, res, _ = study
    main = res["main"].set_index("kind")
    assert list(main.index) == list(rt.KINDS)
    for kind in ("exact", "flat", "kdtree", "balltree"):
        assert main.loc[kind, "recall@10"] == 1.0
    assert (main["recall@10"] > 0).all() and (main["recall@10"] <= 1).all()
    assert (main["p50_ms"] <= main["p95_ms"]).all() and (main["p95_ms"] <= main["p99_ms"]).all()
    assert (main["memory_MB"] > 0).all() and (main["qps_batch"] > 0).all()
    assert main.loc["exact", "memory_MB"] == pytest.approx(2000 * 16 * 4 / 2**20)


def test_study_summary_has_the_notebook_keys(study):
    _, res, _ = study
    summary = res["summary"]
    assert summary["n_items"] == 2000 and summary["dim"] == 16
    for kind in rt.KINDS:
        for key in (f"{kind}_recall@10", f"{kind}_p50_ms", f"{kind}_build_s", f"{kind}_p50_cpu_ms"):
            assert np.isfinite(summary[key])
    for key in ("kdtree_over_exact_by_dim", "kdtree_l2_over_exact_by_dim"):
        assert set(summary[key]) == {"4", "16"}
        assert set(summary[key + "_n1200"]) == set(summary[key + "_n1200_cpu"]) == {"4"}
        assert set(summary[key + "_cpu"]) == {"4", "16"}
    assert summary["dim_study_n"] == 600
    for targets in (summary["targets"], summary["targets_cpu_time"]):
        assert len(targets) == 3 and all(isinstance(v, bool) for v in targets.values())


def test_study_scaling_and_batch_tables(study):
    _, res, _ = study
    sn = res["scaling_n"]
    assert set(sn["n"]) == {500, 2000} and set(sn["kind"]) == set(rt.KINDS)
    sd = res["scaling_d"]
    assert set(sd["d"]) == {4, 16}
    pairs = {("exact", "ip"), ("kdtree", "ip"), ("balltree", "ip"), ("exact", "l2"), ("kdtree", "l2")}
    first = sd[sd["n"] == 600]
    assert set(zip(first["kind"], first["metric"], strict=True)) == pairs
    extra = sd[sd["n"] == 1200]  # the extra study: kd-tree only, d up to 4
    assert set(extra["d"]) == {4} and set(extra["kind"]) == {"exact", "kdtree"}
    np.testing.assert_allclose(sd[sd["kind"] == "exact"]["over_exact"], 1.0)
    batch = res["batch"]
    assert {"exact (NumPy GEMM)", "flat (Faiss default)", "flat (never BLAS)", "flat (always BLAS)"} == set(
        batch["method"])
    assert not batch[batch["method"] == "flat (never BLAS)"]["uses_blas"].any()
    assert batch[batch["method"] == "flat (always BLAS)"]["uses_blas"].all()
    # the bandwidth limit grows with the batch (one read of the matrix serves the whole batch)
    g = batch[batch["method"] == "exact (NumPy GEMM)"].sort_values("batch")
    for col in ("bandwidth_bound_qps", "bandwidth_bound_qps_cpu"):
        np.testing.assert_allclose(g[col] / g["batch"], g[col].iloc[0])
    assert (batch["qps_cpu"] > 0).all() and (batch["arithmetic_bound_qps_cpu"] > 0).all()
    assert rt.faiss.cvar.distance_compute_blas_threshold == res["machine"]["distance_compute_blas_threshold"]


def test_study_probes_the_faiss_blas_switch(study):
    _, res, _ = study
    sw = res["blas_switch"]
    threshold = rt.faiss.cvar.distance_compute_blas_threshold
    assert list(sw["uses_blas"]) == [False, True]
    assert list(sw["batch"]) == [-(-threshold // 16) - 1, -(-threshold // 16)]  # first batch with b * d >= T
    assert (sw["n"] == 1000).all() and (sw["qps_cpu"] > 0).all()
    summary = res["summary"]["blas_switch"]
    assert summary["batch"] == sw["batch"].iloc[1] and summary["speedup_cpu"] > 0
    assert res["machine"]["cpu_s"] > 0


def test_load_results_round_trip_and_missing(study, tmp_path):
    out, res, _ = study
    again = ab.load_results(out)
    pd.testing.assert_frame_equal(again["main"], res["main"])
    assert again["machine"]["bandwidth_1_thread"]["read_GBps"] > 0
    assert ab.load_results(tmp_path / "nothing-here") is None
    (tmp_path / "manifest.json").write_text(json.dumps({"tables": ["main"], "plots": []}))
    with pytest.raises(ValueError, match="incomplete or corrupt"):
        ab.load_results(tmp_path)
    for text in ("[]", "null", "{not json"):  # a manifest that is not an object: the same clear error
        (tmp_path / "manifest.json").write_text(text)
        with pytest.raises(ValueError, match="incomplete or corrupt.*re-run"):
            ab.load_results(tmp_path)


def test_main_command_line(study, tmp_path):
    out, _, printed = study
    assert "| index (parameters) |" in printed and "bandwidth" in printed and str(out) in printed
    assert ab.main(["--scale", "ci", "--out", str(tmp_path), "--threads", "0"]) == 2
    assert not (tmp_path / "manifest.json").exists()
    with pytest.raises(SystemExit):
        ab.main(["--scale", "huge"])


def test_plots_have_titles_and_labelled_axes(study):
    """The figures come from ytrec_lib.plots; every axis says what it shows."""
    out, res, _ = study
    machine = json.loads((out / "machine.json").read_text())
    figures = plots.ann_bench_figures({name: res[name] for name in ab.TABLES}, machine, k=ab.K)
    assert list(figures) == list(ab.PLOTS)
    for name, fig in figures.items():
        (ax,) = fig.axes
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), name


# ----------------------------------------------------------------------------- the pieces notebook 05 calls
NB_GRID = ab.SearchGrid(nprobe=(1, 4, 64), ef_search=(8, 32), lsh_bits=(16, 64), shortlist=30,
                        pq_nprobe=(2, 8))


def test_search_grid_settings_per_kind():
    x = ab.synthetic_embeddings(2000, 16, seed=0)
    ivf = rt.build_index("ivf", x, nlist=16, niter=5)
    assert NB_GRID.settings(ivf) == [{"nprobe": 1}, {"nprobe": 4}]  # 64 > nlist is left out
    pq = rt.build_index("ivfpq", x, nlist=16, niter=5, nbits=5)
    assert NB_GRID.settings(pq) == [{"nprobe": p, "shortlist": s} for s in (0, 30) for p in (2, 8)]
    assert NB_GRID.settings(rt.build_index("hnsw", x, M=8)) == [{"efSearch": 8}, {"efSearch": 32}]
    assert NB_GRID.settings(rt.build_index("lsh", x)) == [{"shortlist": 0}, {"shortlist": 30}]
    assert NB_GRID.settings(rt.build_index("exact", x)) == [{}]


def test_build_params_follow_n():
    assert ab.build_params("ivf", 100_000, 1.0) == {"niter": 10, "nlist": 256}
    assert ab.build_params("ivfpq", 100_000, 1.0, pq_nbits=6)["nbits"] == 6
    assert ab.build_params("ivfpq", 2000, 1.0, pq_nbits=6)["nbits"] == 5  # 2000 / 39 < 2^6
    hnsw = {"M": 16}
    got = ab.build_params("hnsw", 10, hnsw=hnsw)
    assert got == hnsw and got is not hnsw
    assert ab.build_params("exact", 10) == {} and ab.build_params("lsh", 10) == {}


def test_tune_picks_the_fastest_setting_reaching_the_target_and_reuses_it():
    x, q = ab.synthetic_embeddings(2000, 16, seed=0), ab.synthetic_queries(30, 16, seed=0, stream=1)
    _, truth = rt.exact_search(x, q, ab.K)
    t = ab.tune("ivf", x, q, truth, NB_GRID, {"nlist": 16, "niter": 5}, target_recall=0.5, budget_s=0.05,
                latency_key="p50_cpu_ms")
    assert [r["setting"] for r in t.rows] == [json.dumps(s) for s in NB_GRID.settings(t.index)]
    ok = [r for r in t.rows if r[f"recall@{ab.K}"] >= 0.5]
    assert ok and t.setting == json.loads(min(ok, key=lambda r: r["p50_cpu_ms"])["setting"])
    assert t.index.params["nprobe"] == t.setting["nprobe"] and t.build_s >= 0
    lsh = ab.tune("lsh", x, q, truth, NB_GRID, target_recall=2.0, budget_s=0.05)  # unreachable: best recall
    assert len(lsh.rows) == 4 and set(lsh.setting) == {"nbits", "shortlist"}
    assert lsh.index.params["nbits"] == lsh.setting["nbits"]
    assert ab.tune("exact", x, q, truth, NB_GRID).rows == []
    small = ab.synthetic_embeddings(500, 16, seed=0)
    index, _ = ab.at_operating_point("ivf", small, {"nprobe": 64}, {"nlist": 8, "niter": 5})
    assert index.params["nprobe"] == 8  # cut to nlist
    index, _ = ab.at_operating_point("lsh", small, lsh.setting)
    assert {p: index.params[p] for p in ("nbits", "shortlist")} == lsh.setting


def test_shaped_like_takes_the_given_norm_distribution():
    norms = np.random.default_rng(0).lognormal(size=300)
    x = ab.shaped_like(norms, 1000, 8, seed=0)
    assert x.shape == (1000, 8) and x.dtype == np.float32
    got = np.linalg.norm(x, axis=1)
    qs = [0.1, 0.5, 0.9]
    np.testing.assert_allclose(np.quantile(got, qs), np.quantile(norms, qs), rtol=0.05)
    base = np.linalg.norm(ab.synthetic_embeddings(1000, 8, seed=0), axis=1)
    assert spearmanr(base, got).statistic > 0.999  # rank for rank


def test_single_query_p50_clocks_and_measuring_helpers():
    x, q = ab.synthetic_embeddings(500, 8, seed=0), ab.synthetic_queries(20, 8, seed=0)
    index = rt.build_index("exact", x)
    p50, wall, ids = ab.single_query_p50(index, q, budget_s=0.01, min_queries=5, clock="cpu")
    assert p50 > 0 and wall > 0 and ids.shape[1] == ab.K and len(ids) >= 5
    with pytest.raises(ValueError, match="clock"):
        ab.single_query_p50(index, q, clock="sundial")
    assert ab.best_seconds(lambda: None, 2, "cpu") >= 0
    assert ab.read_bandwidth_GBps(2**20, repeats=1, clock="wall") > 0
    assert ab.measure_gflops(64, repeats=1, clock="cpu") > 0
    rows = ab.batch_qps(x, q, [1, 4], clock="cpu", budget_s=10)
    assert {r["method"] for r in rows} == set(ab.BLAS_METHODS) and all(r["qps"] > 0 for r in rows)
    assert ab.blas_switch_batch(64) * 64 >= int(ab.faiss.cvar.distance_compute_blas_threshold)


def test_load_largest_picks_the_most_items_and_reports_damage(study, tmp_path):
    res, folder, errors = ab.load_largest([tmp_path / "none"])
    assert res is None and folder is None and errors == []
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    res, folder, errors = ab.load_largest([bad, study[0]])
    assert folder == study[0] and res["summary"]["n_items"] == TINY.n_main
    assert len(errors) == 1 and str(bad) in errors[0]


def test_notebook_05_figures_have_titles_and_labelled_axes():
    x = ab.synthetic_embeddings(1000, 8, seed=0)
    q = ab.synthetic_queries(20, 8, seed=0)
    _, truth = rt.exact_search(x, q, ab.K)
    rows = []
    for kind, params in (("exact", {}), ("hnsw", {"M": 8}), ("ivfpq", {"nlist": 8, "niter": 5, "nbits": 4})):
        index = rt.build_index(kind, x, **params)
        rows += ab.sweep(index, NB_GRID.settings(index), q, truth, 0.01)
    for bits in (16, 64):
        index = rt.build_index("lsh", x, nbits=bits)
        rows += ab.sweep(index, NB_GRID.settings(index), q, truth, 0.01)
    sw = pd.DataFrame(rows)
    scaling = pd.DataFrame({"index": ["exact", "exact"], "N": [10, 100], "p50_ms": [0.1, 1.0]})
    dims = pd.DataFrame({"d": [2, 2, 8, 8], "index": ["exact", "kdtree"] * 2, "p50_ms": [1.0, 0.5, 1.0, 3.0],
                         "over_exact": [1.0, 0.5, 1.0, 3.0]})
    qps = pd.DataFrame({"exact (NumPy GEMM)": [10.0, 30.0]}, index=pd.Index([1, 4], name="batch"))
    figures = [plots.nb05_norms(np.linalg.norm(x, axis=1), 2.0, 8),
               plots.nb05_real_pareto(sw, "p50_cpu_ms", ab.K, 1000, 8),
               plots.nb05_latency_vs_n(scaling, {"exact": 1.0}, 8), plots.nb05_trees_vs_dim(dims, 1000),
               plots.nb05_lsh(sw[sw["kind"] == "lsh"], "p50_cpu_ms", ab.K, 1000, 8),
               plots.nb05_batch(qps, 0.01, 100.0, 2000, 1000, 8, ab.K)]
    for fig in figures:
        for ax in fig.axes:
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
