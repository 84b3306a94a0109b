"""The nearest-neighbour serving benchmark: ``python -m ytrec_lib bench-ann [--scale large]``.

What it measures, on synthetic embeddings shaped like the candidate model's video vectors
(:func:`synthetic_embeddings`: clustered directions, popular items with larger norms):

- **main table** at N = ``scale.n_main``, d = 64: for every kind of :mod:`ytrec_lib.serving.retrieval` its
  build time (all threads), memory, single-query latency p50/p95/p99 at one thread and at all threads,
  batch throughput (queries/s, all threads) and recall@10 against the exact answer. IVF, HNSW, IVF-PQ
  and LSH run at the operating point picked on a separate tuning query set (:func:`pick_operating_point`);
- **sweeps** (recall@10 against p50 latency: the Pareto plot, and LSH recall against its bits);
- **scaling** of p50 latency with N, and of the kd-tree against the exact scan with d;
- **the physical limit:** this machine's memory bandwidth (:func:`measure_bandwidth`) and arithmetic
  peak (:func:`measure_gflops`), the exact single-query scan against its bound N·d·4 bytes / bandwidth,
  and throughput against batch size (one GEMM per batch) with both limits. Faiss switches its flat
  search to BLAS when ``n_queries * d >= faiss.cvar.distance_compute_blas_threshold`` (128000 in Faiss
  1.15; before that release the test was ``n_queries >= 20``); the batch study runs Faiss with its
  default, with BLAS never used and with BLAS always used.

Results go to ``--out`` (default ``build/bench-ann``) as CSV/JSON tables and PNG plots, each file
written atomically; ``manifest.json`` is written last, so :func:`load_results` reads a complete study
or nothing. Latency is wall-clock time on a possibly shared machine: read it as an order of magnitude
and as ratios, and look at ``machine.json`` for the load during the run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import faiss
import numpy as np
import pandas as pd
from scipy.special import ndtri

from ytrec_lib import report
from ytrec_lib.data.cache import atomic_path, load_json
from ytrec_lib.progress import tqdm
from ytrec_lib.serving import retrieval
from ytrec_lib.threads import limit_threads

K = 10
NORM_PROFILES = ("softmax", "lognormal", "unit")
TABLES = ("main", "sweep", "scaling_n", "scaling_d", "batch", "blas_switch")
PLOTS = ("pareto", "latency_vs_n", "kdtree_vs_dim", "lsh_bits", "batch_roofline")


# ----------------------------------------------------------------------------- synthetic data
def _cluster_centres(n_clusters: int, d: int, seed: int) -> np.ndarray:
    """Unit cluster directions (n_clusters, d) float64, shared by items and queries of one seed."""
    rng = np.random.default_rng([seed, d, n_clusters, 0])
    c = rng.standard_normal((n_clusters, d))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def _check_sizes(n: int, d: int, n_clusters: int, what: str) -> None:
    for name, v in (("n", n), ("d", d), ("n_clusters", n_clusters)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{what}: {name}={v!r} must be a positive integer")


def synthetic_embeddings(n: int, d: int, seed: int = 0, n_clusters: int = 256,
                         norm_profile: str = "softmax", spread: float = 0.8) -> np.ndarray:
    """Video embeddings (n, d) float32 shaped like a softmax layer's output vectors; deterministic.

    Directions: each item picks a cluster (cluster sizes from a flat Dirichlet, so uneven) and is its
    unit centre plus Gaussian noise of norm about ``spread``, renormalised. Norms (``norm_profile``):
    ``"softmax"``: item ``i`` is the ``i``-th most popular, and its norm is
    ``exp(0.25 z_i + 0.1 eps)`` with ``z_i`` the normal score of its popularity rank, so popular items
    have larger norms (median 1, top 1% about 1.8, bottom 1% about 0.55) as trained softmax weights
    do (a popular video must score high for many users); ``"lognormal"``: the same spread independent
    of popularity; ``"unit"``: all norms 1 (then inner product = cosine).
    """
    _check_sizes(n, d, n_clusters, "synthetic_embeddings")
    if norm_profile not in NORM_PROFILES:
        raise ValueError(f"unknown norm_profile {norm_profile!r}; choose one of {', '.join(NORM_PROFILES)}")
    centres = _cluster_centres(n_clusters, d, seed)  # (C, d)
    rng = np.random.default_rng([seed, d, n_clusters, n, 1])
    weights = rng.dirichlet(np.ones(n_clusters))  # (C,)
    cluster = rng.choice(n_clusters, size=n, p=weights)  # (n,)
    x = rng.standard_normal((n, d), dtype=np.float32)  # (n, d) noise, float32 to keep 1e6 x 256 light
    x *= np.float32(spread / math.sqrt(d))
    x += centres.astype(np.float32)[cluster]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    noise = rng.standard_normal(n)
    if norm_profile == "softmax":
        z = ndtri(1.0 - (np.arange(n) + 0.5) / n)  # (n,) popularity rank -> normal score, item 0 highest
        norms = np.exp(0.25 * z + 0.1 * noise)
    elif norm_profile == "lognormal":
        norms = np.exp(math.sqrt(0.25**2 + 0.1**2) * noise)
    else:
        norms = np.ones(n)
    x *= norms.astype(np.float32)[:, None]
    return x


def synthetic_queries(n: int, d: int, seed: int = 0, n_clusters: int = 256, spread: float = 0.8,
                      stream: int = 0) -> np.ndarray:
    """User vectors (n, d) float32 of unit norm for :func:`synthetic_embeddings` of the same seed.

    Each query mixes two cluster centres (0.75 / 0.25: a main and a side interest) plus noise.
    ``stream`` picks an independent query set (0: evaluation, 1: tuning) over the same clusters.
    """
    _check_sizes(n, d, n_clusters, "synthetic_queries")
    centres = _cluster_centres(n_clusters, d, seed)  # (C, d)
    rng = np.random.default_rng([seed, d, n_clusters, n, 2, stream])
    a, b = rng.integers(n_clusters, size=n), rng.integers(n_clusters, size=n)
    q = 0.75 * centres[a] + 0.25 * centres[b] + spread * rng.standard_normal((n, d)) / math.sqrt(d)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def shaped_like(norms: np.ndarray, n: int, d: int, seed: int = 0) -> np.ndarray:
    """Items (n, d) float32: :func:`synthetic_embeddings` (clustered directions) whose norms are replaced,
    rank for rank, by the quantiles of ``norms`` (m,) (e.g. the trained model's video norms), so the
    items with the longest synthetic vectors get the longest real norms."""
    x = synthetic_embeddings(n, d, seed)
    cur = np.linalg.norm(x, axis=1)  # (n,)
    rank = np.argsort(np.argsort(cur, kind="stable"), kind="stable")  # (n,) rank of each norm
    target = np.quantile(np.sort(np.asarray(norms)), (rank + 0.5) / n)  # (n,) real-norm quantile at that rank
    return np.ascontiguousarray(x * (target / cur)[:, None].astype(np.float32))


# ----------------------------------------------------------------------------- the machine's limits
CLOCKS = ("wall", "cpu")


def _check_clock(clock: str) -> str:
    if clock not in CLOCKS:
        raise ValueError(f"clock must be 'cpu' or 'wall', got {clock!r}")
    return clock


def best_seconds(fn: Callable[[], Any], repeats: int, clock: str = "wall") -> float:
    """Best time (seconds) of ``repeats`` calls of ``fn`` at one thread, on ``clock``: ``"wall"`` (wall
    clock) or ``"cpu"`` (the calling thread's CPU time: it leaves out the time other jobs held the core)."""
    _check_clock(clock)
    with limit_threads(1):
        wall, cpu = _best_times(fn, repeats)
    return cpu if clock == "cpu" else wall


def _best_times(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Best wall-clock and best calling-thread CPU time (seconds) of ``repeats`` calls of ``fn``."""
    wall = cpu = math.inf
    for _ in range(repeats):
        c0, t0 = time.thread_time(), time.perf_counter()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.thread_time() - c0)
    return wall, cpu


def measure_bandwidth(n_bytes: int = 512 * 2**20, repeats: int = 7, threads: int = 1) -> dict[str, float]:
    """Streaming memory bandwidth (GB/s, 1e9 bytes) of this machine, best of ``repeats``.

    ``read_GBps``: the faster of two single-thread read-only kernels (NumPy ``sum`` and ``max`` of a
    float32 array much larger than the caches), timed by the wall clock; ``read_GBps_cpu``: the same
    timed by the thread's CPU time (on a shared machine the wall clock also counts the time other jobs
    had the core); ``copy_GBps``: ``np.copyto`` counted as bytes read + bytes written; ``gemv_GBps``:
    a BLAS matrix-vector product over the same bytes with ``threads`` threads.
    """
    n = max(64, int(n_bytes) // 4 // 64 * 64)
    a = np.ones(n, dtype=np.float32)
    b = np.empty_like(a)
    ones = np.ones(64, dtype=np.float32)
    mat = a.reshape(-1, 64)  # (n / 64, 64)
    with limit_threads(threads):
        t_sum = _best_times(lambda: a.sum(), repeats)
        t_max = _best_times(lambda: a.max(), repeats)
        t_copy = _best_times(lambda: np.copyto(b, a), repeats)
        t_gemv = _best_times(lambda: mat @ ones, repeats)
    gb = a.nbytes / 1e9
    return {"read_GBps": gb / min(t_sum[0], t_max[0]), "read_GBps_cpu": gb / min(t_sum[1], t_max[1]),
            "sum_GBps": gb / t_sum[0], "max_GBps": gb / t_max[0], "copy_GBps": 2 * gb / t_copy[0],
            "gemv_GBps": gb / t_gemv[0], "n_bytes": int(a.nbytes), "threads": int(threads)}


def read_bandwidth_GBps(n_bytes: int, repeats: int = 7, clock: str = "wall") -> float:
    """Streaming read bandwidth (GB/s, 1e9 bytes) at one thread over a float32 array of ``n_bytes``:
    the faster of NumPy ``sum`` and ``max``, each the best of ``repeats`` on ``clock`` ("wall" or "cpu").

    On an array much larger than the caches this is main-memory bandwidth; on a smaller one, the
    bandwidth of the cache level it fits in (the notebook's floor of an exact scan of that size).
    """
    a = np.ones(max(1, int(n_bytes) // 4), dtype=np.float32)  # (n_bytes / 4,)
    return a.nbytes / min(best_seconds(a.sum, repeats, clock), best_seconds(a.max, repeats, clock)) / 1e9


def measure_gflops(n: int = 1536, repeats: int = 3, threads: int = 1, clock: str = "wall") -> float:
    """Arithmetic peak seen through BLAS: GFLOP/s of a square float32 GEMM (n x n) @ (n x n), best of
    ``repeats``, on ``clock`` ("wall"; "cpu": the calling thread's CPU time)."""
    wall, cpu = _gflops(n, repeats, threads)
    return cpu if _check_clock(clock) == "cpu" else wall


def _gflops(n: int, repeats: int, threads: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    with limit_threads(threads):
        wall, cpu = _best_times(lambda: a @ b, repeats)
    return 2.0 * n**3 / wall / 1e9, 2.0 * n**3 / cpu / 1e9


def llc_bytes() -> int | None:
    """Size of the last-level cache from sysfs (None where it cannot be read)."""
    for index in ("index3", "index2"):
        try:
            text = Path(f"/sys/devices/system/cpu/cpu0/cache/{index}/size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        return int(text.rstrip("KMG")) * mult
    return None


# ----------------------------------------------------------------------------- timing one index
class Timed(NamedTuple):
    """Single-query timings: ``wall_s`` and ``cpu_s`` (m,) float64 seconds, ``ids`` (m, k) int64."""

    wall_s: np.ndarray
    cpu_s: np.ndarray
    ids: np.ndarray


def time_single_queries(index: retrieval.Index, queries: np.ndarray, k: int = K, budget_s: float = 10.0,
                        min_queries: int = 5, warmup: int = 2) -> Timed:
    """Search ``queries`` (n, d) one at a time and time each search (m <= n of them).

    ``wall_s`` is wall-clock time; ``cpu_s`` is the calling thread's CPU time, which leaves out the
    time the thread waited while other jobs had the cores (with one thread all the work runs in the
    calling thread, so on a shared machine ``cpu_s`` is the cleaner latency; stalls on memory still
    count). Stops after ``budget_s`` seconds once ``min_queries`` were timed; ``warmup`` extra
    searches run first, untimed.
    """
    for q in queries[:warmup]:
        index.search(q[None, :], k)
    wall, cpu, ids = [], [], []
    start = time.perf_counter()
    for i, q in enumerate(queries):
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        _, got = index.search(q[None, :], k)
        t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        wall.append((t1 - t0) / 1e9)
        cpu.append((c1 - c0) / 1e9)
        ids.append(got[0])
        if i + 1 >= min_queries and time.perf_counter() - start > budget_s:
            break
    return Timed(np.asarray(wall), np.asarray(cpu), np.stack(ids))


def single_query_p50(index: retrieval.Index, queries: np.ndarray, k: int = K, budget_s: float = 10.0,
                     min_queries: int = 10, clock: str = "wall") -> tuple[float, float, np.ndarray]:
    """Time ``queries`` (n, d) one at a time on one thread (:func:`time_single_queries`).

    Returns (p50 ms on ``clock``, p50 wall-clock ms, ids (m, k) int64 of the m timed queries).
    """
    _check_clock(clock)
    with limit_threads(1):
        t = time_single_queries(index, queries, k, budget_s=budget_s, min_queries=min_queries)
    wall, cpu = float(np.median(t.wall_s) * 1e3), float(np.median(t.cpu_s) * 1e3)
    return (cpu if clock == "cpu" else wall), wall, t.ids


def _percentiles_ms(timed: Timed, prefix: str = "", cpu: bool = True) -> dict[str, float]:
    """p50/p95/p99 of the wall-clock latencies in ms (and the CPU-time p50 when ``cpu``)."""
    p50, p95, p99 = np.percentile(timed.wall_s, [50, 95, 99]) * 1e3
    out = {f"{prefix}p50_ms": float(p50), f"{prefix}p95_ms": float(p95), f"{prefix}p99_ms": float(p99)}
    if cpu:
        out[f"{prefix}p50_cpu_ms"] = float(np.percentile(timed.cpu_s, 50) * 1e3)
    return out


def batch_throughput(index: retrieval.Index, queries: np.ndarray, k: int = K,
                     seconds_per_query: float | None = None, budget_s: float = 10.0) -> tuple[float, int]:
    """Queries per second when ``queries`` (n, d) go in one ``search`` call -> (qps, queries used).

    With ``seconds_per_query`` (a single-query estimate) the batch is cut to fit ``budget_s``.
    """
    n = len(queries)
    if seconds_per_query:
        n = int(min(n, max(2, budget_s / max(seconds_per_query, 1e-9))))
    t0 = time.perf_counter()
    index.search(queries[:n], k)
    return n / (time.perf_counter() - t0), n


def measure_index(index: retrieval.Index, queries: np.ndarray, true_ids: np.ndarray, threads: int,
                  budget_s: float, k: int = K) -> dict[str, Any]:
    """One row of the main table for a built ``index`` (see module doc); recall over the timed queries."""
    with limit_threads(1):
        one = time_single_queries(index, queries, k, budget_s)
    row: dict[str, Any] = {"kind": index.name, "label": index.describe(), "n": index.n, "d": index.d,
                           "memory_MB": index.memory_bytes() / 2**20, **_percentiles_ms(one)}
    row[f"recall@{k}"] = retrieval.recall_at_k(one.ids, true_ids[: len(one.ids)], k)
    row["n_timed"] = len(one.ids)
    with limit_threads(threads):
        alln = one if threads == 1 else time_single_queries(index, queries, k, budget_s)
        row.update(_percentiles_ms(alln, "all_threads_", cpu=False))
        row["qps_batch"], row["batch_size"] = batch_throughput(index, queries, k,
                                                               float(np.median(alln.wall_s)), budget_s)
    row["threads"] = threads
    return row


def pick_operating_point(rows: list[dict[str, Any]], target_recall: float = 0.95,
                         recall_key: str = f"recall@{K}", latency_key: str = "p50_ms") -> dict[str, Any]:
    """The fastest (lowest ``latency_key``) row reaching ``target_recall``, else the row with the highest
    recall (the faster one on a tie); ties in latency go to the earlier row."""
    if not rows:
        raise ValueError("pick_operating_point needs at least one measured row")
    ok = [r for r in rows if r[recall_key] >= target_recall]
    if ok:
        return min(ok, key=lambda r: r[latency_key])
    return max(rows, key=lambda r: (r[recall_key], -r[latency_key]))


def sweep(index: retrieval.Index, settings: Iterable[dict[str, Any]], queries: np.ndarray,
          true_ids: np.ndarray, budget_s: float, k: int = K, min_queries: int = 5) -> list[dict[str, Any]]:
    """Recall@k and one-thread latency of ``index`` at each search setting (dicts for ``set_params``).

    One row per setting: kind, label, n, d, metric, ``param_<name>`` (the index's parameters then),
    ``recall@k`` (over the timed queries), p50/p95/p99 wall-clock ms, ``p50_cpu_ms``, n_timed and
    ``setting`` (the setting as JSON). ``budget_s`` and ``min_queries`` go to :func:`time_single_queries`.
    """
    rows = []
    for setting in settings:
        index.set_params(**setting)
        with limit_threads(1):
            timed = time_single_queries(index, queries, k, budget_s, min_queries=min_queries)
        rows.append({"kind": index.name, "label": index.describe(), "n": index.n, "d": index.d,
                     "metric": index.metric,
                     **{f"param_{p}": v for p, v in index.params.items()},
                     f"recall@{k}": retrieval.recall_at_k(timed.ids, true_ids[: len(timed.ids)], k),
                     **_percentiles_ms(timed), "n_timed": len(timed.ids), "setting": json.dumps(setting)})
    return rows


# ----------------------------------------------------------------------------- building and tuning
@dataclass(frozen=True)
class SearchGrid:
    """The search settings a sweep tries for each kind (:meth:`settings`), and LSH's bit counts.

    ``nprobe``: IVF's lists scanned per query (values above the index's nlist are left out);
    ``pq_nprobe``: IVF-PQ's (None: ``nprobe``), each with and without an exact re-ranking of a
    ``shortlist``; ``ef_search``: HNSW's beam; ``lsh_bits``: the bits LSH is built with (a build
    parameter: one index per value), each searched with and without the shortlist.
    """

    nprobe: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256)
    ef_search: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    lsh_bits: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    shortlist: int = 100
    pq_nprobe: tuple[int, ...] | None = None

    def settings(self, index: retrieval.Index) -> list[dict[str, Any]]:
        """The settings (dicts for ``index.set_params``) to sweep on ``index``; ``[{}]`` when it has none."""
        if index.name == "ivf":
            return [{"nprobe": v} for v in self.nprobe if v <= index.params["nlist"]]
        if index.name == "hnsw":
            return [{"efSearch": v} for v in self.ef_search]
        if index.name == "ivfpq":
            return [{"nprobe": v, "shortlist": sl} for sl in (0, self.shortlist)
                    for v in (self.nprobe if self.pq_nprobe is None else self.pq_nprobe)
                    if v <= index.params["nlist"]]
        if index.name == "lsh":
            return [{"shortlist": sl} for sl in (0, self.shortlist)]
        return [{}]


def build_timed(kind: str, vectors: np.ndarray, metric: str = "ip", threads: int | None = 1,
                **params: Any) -> tuple[retrieval.Index, float]:
    """:func:`ytrec_lib.serving.retrieval.build_index` with ``threads`` threads
    -> (index, build wall seconds)."""
    with limit_threads(threads):
        t0 = time.perf_counter()
        index = retrieval.build_index(kind, vectors, metric, **params)
        return index, time.perf_counter() - t0


def build_params(kind: str, n: int, lists_per_sqrt_n: float = 4.0, hnsw: dict[str, Any] | None = None,
                 pq_nbits: int = 8, niter: int = 10) -> dict[str, Any]:
    """Build parameters of ``kind`` for ``n`` items (the notebook's; ``Scale.build_params`` is the study's).

    IVF and IVF-PQ: ``niter`` k-means iterations and ``nlist`` =
    :func:`ytrec_lib.serving.retrieval.default_nlist`
    (``lists_per_sqrt_n``); IVF-PQ codes of ``pq_nbits`` bits, fewer for a tiny catalogue (Faiss wants
    at least 39 training vectors per PQ centroid); HNSW: a copy of ``hnsw`` (M, efConstruction);
    every other kind: ``{}``.
    """
    if kind == "ivf":
        return {"niter": niter, "nlist": retrieval.default_nlist(n, lists_per_sqrt_n)}
    if kind == "ivfpq":
        return {"niter": niter, "nlist": retrieval.default_nlist(n, lists_per_sqrt_n),
                "nbits": min(pq_nbits, max(1, int(math.log2(n / 39))))}
    if kind == "hnsw":
        return dict(hnsw or {})
    return {}


class Tuned(NamedTuple):
    """An index at its operating point: ``index``, ``build_s`` (seconds), ``setting`` (its search
    parameters, plus ``nbits`` for LSH) and ``rows`` (the tuning sweep, :func:`sweep` rows)."""

    index: retrieval.Index
    build_s: float
    setting: dict[str, Any]
    rows: list[dict[str, Any]]


def tune(kind: str, x: np.ndarray, queries: np.ndarray, true_ids: np.ndarray, grid: SearchGrid,
         build: dict[str, Any] | None = None, target_recall: float = 0.95, budget_s: float = 1.0,
         threads: int | None = 1, latency_key: str = "p50_ms", min_queries: int = 5, k: int = K) -> Tuned:
    """Build ``kind`` over ``x`` (N, d) and set it to its operating point (:func:`pick_operating_point`
    over a :func:`sweep` of ``grid.settings`` on the tuning ``queries`` with their exact ``true_ids``).

    ``build``: the build parameters. LSH is built once per ``grid.lsh_bits`` value, swept, and rebuilt
    with the chosen bits (that last build's time is ``build_s``). Kinds without a search knob return
    no rows.
    """
    build = dict(build or {})
    if kind == "lsh":  # the bits are a build parameter: one build per value
        rows = []
        for nbits in grid.lsh_bits:
            index, _ = build_timed(kind, x, threads=threads, **build, nbits=nbits)
            rows.extend(sweep(index, grid.settings(index), queries, true_ids, budget_s, k, min_queries))
        best = pick_operating_point(rows, target_recall, f"recall@{k}", latency_key)
        index, build_s = build_timed(kind, x, threads=threads, **build, nbits=int(best["param_nbits"]))
        search = json.loads(best["setting"])
        index.set_params(**search)
        return Tuned(index, build_s, {"nbits": int(best["param_nbits"]), **search}, rows)
    index, build_s = build_timed(kind, x, threads=threads, **build)
    settings = grid.settings(index)
    if settings == [{}]:
        return Tuned(index, build_s, {}, [])
    rows = sweep(index, settings, queries, true_ids, budget_s, k, min_queries)
    setting = json.loads(pick_operating_point(rows, target_recall, f"recall@{k}", latency_key)["setting"])
    index.set_params(**setting)
    return Tuned(index, build_s, setting, rows)


def at_operating_point(kind: str, x: np.ndarray, setting: dict[str, Any], build: dict[str, Any] | None = None,
                       threads: int | None = 1) -> tuple[retrieval.Index, float]:
    """Build ``kind`` over ``x`` with ``build`` plus the build-time keys of ``setting`` (LSH's nbits) and
    set the search keys of ``setting`` (a :class:`Tuned` setting found at another N; ``nprobe`` is cut
    to the new index's nlist) -> (index, build seconds)."""
    search_keys = retrieval.SEARCH_PARAMS[kind]
    params = {**(build or {}), **{p: v for p, v in setting.items() if p not in search_keys}}
    index, build_s = build_timed(kind, x, threads=threads, **params)
    search = {p: v for p, v in setting.items() if p in search_keys}
    if "nprobe" in search:
        search["nprobe"] = min(search["nprobe"], index.params["nlist"])
    index.set_params(**search)
    return index, build_s


BLAS_METHODS: dict[str, tuple[str, int | None]] = {
    "exact (NumPy GEMM)": ("exact", None), "flat (Faiss default)": ("flat", None),
    "flat (never BLAS)": ("flat", 2**31 - 1), "flat (always BLAS)": ("flat", 1)}
"""The batch study's methods: name -> (index kind, Faiss BLAS threshold; None: Faiss's default)."""


def blas_switch_batch(d: int) -> int:
    """The first batch size that Faiss's flat search hands to BLAS at dimension ``d``
    (``n_queries * d >= faiss.cvar.distance_compute_blas_threshold``)."""
    return -(-int(faiss.cvar.distance_compute_blas_threshold) // d)


def batch_qps(x: np.ndarray, queries: np.ndarray, batches: Iterable[int], k: int = K, clock: str = "wall",
              budget_s: float = 2.4) -> list[dict[str, Any]]:
    """Throughput of exact top-k search over ``x`` (N, d) for each batch size, one thread, for each of
    :data:`BLAS_METHODS` -> rows {"method", "batch", "qps"}.

    A batch of b queries (the first b of ``queries``) is one ``search`` call, timed on ``clock``
    (best of 2 up to b = 256, else one, after one warm-up query). A method stops after the batch at
    which its times add up to more than ``budget_s``. Faiss's BLAS threshold is restored afterwards.
    """
    _check_clock(clock)
    threshold = int(faiss.cvar.distance_compute_blas_threshold)
    indexes = {kind: retrieval.build_index(kind, x) for kind in ("exact", "flat")}
    rows = []
    try:
        for method, (kind, thr) in BLAS_METHODS.items():
            faiss.cvar.distance_compute_blas_threshold = threshold if thr is None else thr
            spent = 0.0
            for b in batches:
                index, qb = indexes[kind], queries[:b]
                with limit_threads(1):
                    index.search(qb[:1], k)  # warm-up
                best_s = best_seconds(lambda i=index, qb=qb: i.search(qb, k), 2 if b <= 256 else 1, clock)
                spent += best_s
                rows.append({"method": method, "batch": b, "qps": b / best_s})
                if spent > budget_s:
                    break
    finally:
        faiss.cvar.distance_compute_blas_threshold = threshold
    return rows


# ----------------------------------------------------------------------------- the scales
@dataclass(frozen=True)
class Scale:
    """Sizes of one run of the study (``SCALES`` holds the presets; tests build tiny ones)."""

    name: str
    n_main: int  # items in the main table
    n_grid: tuple[int, ...]  # N for latency against N (n_main is reused, not rebuilt)
    d_grid: tuple[int, ...]  # d for the trees against the exact scan
    n_dim_study: int  # items in the d study (all of d_grid, ball tree included)
    n_queries: int = 500  # evaluation queries (latency, recall)
    n_tune: int = 200  # tuning queries (sweeps, operating points)
    d_main: int = 64
    n_batch_study: int | None = None  # items in the batch/roofline study (default n_main)
    batch_grid: tuple[int, ...] = (1, 4, 16, 64, 256, 1024, 4096)
    budget_s: float = 8.0  # seconds per timed measurement
    nprobe_grid: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256)
    ef_grid: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    lsh_bits: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    shortlist: int = 100  # exact re-ranking shortlist for lsh and ivfpq
    target_recall: float = 0.95
    lists_per_sqrt_n: float = 4.0  # IVF lists: the power of two nearest this times sqrt(N)
    build_params: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "hnsw": {"M": 16, "efConstruction": 80}, "ivf": {"niter": 10}, "ivfpq": {"niter": 10}})
    bandwidth_bytes: int = 512 * 2**20
    n_switch_probe: int = 100_000  # items for the Faiss BLAS-switch probe (at most n_main)
    # more d studies at other N as (N, largest d); kd-trees only (tree builds grow like N d log N)
    extra_dim_studies: tuple[tuple[int, int], ...] = ()


SCALES: dict[str, Scale] = {
    "ci": Scale("ci", n_main=100_000, n_grid=(10_000, 100_000), d_grid=(2, 8, 32, 128), n_dim_study=10_000,
                n_queries=200, n_tune=100, budget_s=3.0, batch_grid=(1, 4, 16, 64, 256, 1024),
                ef_grid=(16, 32, 64, 128, 256), lsh_bits=(32, 64, 128, 256), bandwidth_bytes=256 * 2**20),
    "small": Scale("small", n_main=100_000, n_grid=(10_000, 100_000), d_grid=(2, 4, 8, 16, 32, 64, 128, 256),
                   n_dim_study=100_000, n_batch_study=1_000_000),
    "large": Scale("large", n_main=1_000_000, n_grid=(10_000, 100_000, 1_000_000),
                   d_grid=(2, 4, 8, 16, 32, 64, 128, 256), n_dim_study=100_000, lists_per_sqrt_n=2.0,
                   extra_dim_studies=((1_000_000, 16),), budget_s=5.0),
}


# ----------------------------------------------------------------------------- the study
class _Study:
    """Runs the parts of the study in order, keeping the shared data (one instance per run)."""

    def __init__(self, scale: Scale, threads: int, seed: int, progress: bool) -> None:
        self.s, self.threads, self.seed, self.progress = scale, threads, seed, progress
        self.op: dict[str, dict[str, Any]] = {}  # kind -> search/build params of its operating point

    def _data(self, n: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        x = synthetic_embeddings(n, d, self.seed)
        q_eval = synthetic_queries(self.s.n_queries, d, self.seed, stream=0)
        q_tune = synthetic_queries(self.s.n_tune, d, self.seed, stream=1)
        with limit_threads(self.threads):
            _, t_eval = retrieval.exact_search(x, q_eval, K)
            _, t_tune = retrieval.exact_search(x, q_tune, K)
        return x, q_eval, t_eval, q_tune, t_tune

    def _grid(self) -> SearchGrid:
        return SearchGrid(self.s.nprobe_grid, self.s.ef_grid, self.s.lsh_bits, self.s.shortlist)

    def _params(self, kind: str, n: int) -> dict[str, Any]:
        """The scale's build parameters of ``kind`` for ``n`` items (IVF lists per sqrt(N) by default)."""
        p = dict(self.s.build_params.get(kind, {}))
        if kind in ("ivf", "ivfpq"):
            p.setdefault("nlist", retrieval.default_nlist(n, self.s.lists_per_sqrt_n))
        return p

    def main_table(self, bar: tqdm) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        s = self.s
        x, q_eval, t_eval, q_tune, t_tune = self._data(s.n_main, s.d_main)
        rows, sweeps, extra = [], [], {}
        for kind in retrieval.KINDS:
            bar.set_postfix_str(f"main: {kind} N={s.n_main:,}")
            index, build_s, setting = self._tuned(kind, x, q_tune, t_tune, sweeps)
            self.op[kind] = setting
            row = measure_index(index, q_eval, t_eval, self.threads, s.budget_s)
            row["build_s"] = build_s
            rows.append(row)
            if kind == "exact":
                extra["exact_min_ms"] = self._exact_min_ms(index, q_eval)
            del index
            bar.update(1)
        return rows, sweeps, extra

    def _tuned(self, kind: str, x: np.ndarray, q: np.ndarray, t: np.ndarray,
               sweeps: list[dict[str, Any]]) -> tuple[retrieval.Index, float, dict[str, Any]]:
        """Build ``kind`` over ``x`` at its operating point (swept on the tuning queries ``q``)."""
        tuned = tune(kind, x, q, t, self._grid(), self._params(kind, len(x)), self.s.target_recall,
                     self.s.budget_s, self.threads)
        sweeps.extend(tuned.rows)
        return tuned.index, tuned.build_s, tuned.setting

    def _exact_min_ms(self, index: retrieval.Index, queries: np.ndarray) -> float:
        with limit_threads(1):
            timed = time_single_queries(index, queries[:20], K, self.s.budget_s)
        return float(timed.wall_s.min() * 1e3)

    def scaling_n(self, main_rows: list[dict[str, Any]], bar: tqdm) -> list[dict[str, Any]]:
        keys = ("kind", "n", "d", "p50_ms", "p95_ms", "p99_ms", "p50_cpu_ms", f"recall@{K}", "build_s")
        rows = [{k: r[k] for k in keys} for r in main_rows]
        for n in (n for n in self.s.n_grid if n != self.s.n_main):
            x, q_eval, t_eval, _, _ = self._data(n, self.s.d_main)
            for kind in retrieval.KINDS:
                bar.set_postfix_str(f"scaling: {kind} N={n:,}")
                index, build_s = at_operating_point(kind, x, self.op[kind], self._params(kind, n),
                                                    self.threads)
                with limit_threads(1):
                    timed = time_single_queries(index, q_eval, K, self.s.budget_s)
                rows.append({"kind": kind, "n": n, "d": self.s.d_main, **_percentiles_ms(timed),
                             f"recall@{K}": retrieval.recall_at_k(timed.ids, t_eval[: len(timed.ids)]),
                             "build_s": build_s})
            bar.update(1)
        return sorted(rows, key=lambda r: (r["kind"], r["n"]))

    def scaling_d(self, bar: tqdm) -> list[dict[str, Any]]:
        """Trees against the exact scan for each d: on the inner-product problem (the trees search the
        MIPS-transformed vectors) and, for contrast, on plain Euclidean search (what trees are made for)."""
        studies = [(self.s.n_dim_study, max(self.s.d_grid), True), *((n, dm, False)
                                                                    for n, dm in self.s.extra_dim_studies)]
        rows = []
        for n, d_max, with_balltree in studies:
            for d in (d for d in self.s.d_grid if d <= d_max):
                bar.set_postfix_str(f"dimension: N={n:,} d={d}")
                rows.extend(self._dim_point(n, d, with_balltree))
                bar.update(1)
        return rows

    def _dim_point(self, n: int, d: int, with_balltree: bool) -> list[dict[str, Any]]:
        x = synthetic_embeddings(n, d, self.seed)
        q = synthetic_queries(self.s.n_queries, d, self.seed)
        rows = []
        for metric in ("ip", "l2"):
            kinds = ("exact", "kdtree") + (("balltree",) if metric == "ip" and with_balltree else ())
            group = []
            for kind in kinds:
                with limit_threads(self.threads):
                    t0 = time.perf_counter()
                    index = retrieval.build_index(kind, x, metric)
                    build_s = time.perf_counter() - t0
                with limit_threads(1):
                    timed = time_single_queries(index, q, K, self.s.budget_s / 2)
                group.append({"kind": kind, "metric": metric, "n": n, "d": d, **_percentiles_ms(timed),
                              "build_s": build_s, "n_timed": len(timed.ids)})
                del index
            for r in group:
                r["over_exact"] = r["p50_ms"] / group[0]["p50_ms"]
                r["over_exact_cpu"] = r["p50_cpu_ms"] / group[0]["p50_cpu_ms"]
            rows.extend(group)
        return rows

    def batch_study(self, bandwidth: dict[str, float], gflops: tuple[float, float],
                    bar: tqdm) -> list[dict[str, Any]]:
        """Exact-search throughput against batch size at one thread, with the bandwidth limit (the
        matrix is read once per batch) and the arithmetic limit (2 N d flops per query), each by the
        wall clock and by the thread's CPU time."""
        s = self.s
        n = s.n_batch_study or s.n_main
        x = synthetic_embeddings(n, s.d_main, self.seed)
        q = synthetic_queries(max(s.batch_grid), s.d_main, self.seed, stream=2)
        threshold = int(faiss.cvar.distance_compute_blas_threshold)
        switch = -(-threshold // s.d_main)  # first batch size that Faiss hands to BLAS
        grid = sorted(set(s.batch_grid) | ({switch - 1, switch} if switch <= max(s.batch_grid) else set()))
        methods = {"exact (NumPy GEMM)": ("exact", threshold), "flat (Faiss default)": ("flat", threshold),
                   "flat (never BLAS)": ("flat", 2**31 - 1), "flat (always BLAS)": ("flat", 1)}
        matrix_gb = n * s.d_main * 4 / 1e9  # one pass over the matrix
        flops = 2.0 * n * s.d_main  # per query
        rows = []
        indexes = {kind: retrieval.build_index(kind, x) for kind in ("exact", "flat")}
        try:
            for method, (kind, thr) in methods.items():
                bar.set_postfix_str(f"batch: {method}")
                faiss.cvar.distance_compute_blas_threshold = thr
                for b in grid:
                    with limit_threads(1):
                        index, qb = indexes[kind], q[:b]
                        index.search(q[:1], K)  # warm-up
                        wall, cpu = _best_times(lambda i=index, qb=qb: i.search(qb, K), 1 if b > 256 else 2)
                    rows.append({
                        "method": method, "batch": b, "n": n, "d": s.d_main,
                        "qps": b / wall, "qps_cpu": b / cpu,
                        "bandwidth_bound_qps": b * bandwidth["read_GBps"] / matrix_gb,
                        "bandwidth_bound_qps_cpu": b * bandwidth["read_GBps_cpu"] / matrix_gb,
                        "arithmetic_bound_qps": gflops[0] * 1e9 / flops,
                        "arithmetic_bound_qps_cpu": gflops[1] * 1e9 / flops,
                        "blas_threshold": thr, "uses_blas": kind == "flat" and b * s.d_main >= thr})
                    if wall > s.budget_s:
                        break
                bar.update(1)
        finally:
            faiss.cvar.distance_compute_blas_threshold = threshold
        return rows


def blas_switch_probe(n: int, d: int, seed: int = 0, k: int = K) -> list[dict[str, Any]]:
    """Faiss flat search at one thread just below and at the batch where it hands the work to BLAS.

    Faiss 1.15 uses BLAS when ``n_queries * d >= faiss.cvar.distance_compute_blas_threshold``
    (128000; releases before used ``n_queries >= 20``). Returns two rows (batch, uses_blas, qps,
    qps_cpu, ...): the throughput jump at the switch.
    """
    threshold = int(faiss.cvar.distance_compute_blas_threshold)
    switch = max(2, -(-threshold // d))
    x = synthetic_embeddings(n, d, seed)
    q = synthetic_queries(switch, d, seed, stream=3)
    index = retrieval.build_index("flat", x)
    rows = []
    with limit_threads(1):
        index.search(q[:1], k)  # warm-up
        for b in (switch - 1, switch):
            wall, cpu = _best_times(lambda b=b: index.search(q[:b], k), 1)
            rows.append({"n": n, "d": d, "batch": b, "threshold": threshold, "uses_blas": b * d >= threshold,
                         "qps": b / wall, "qps_cpu": b / cpu})
    return rows


def run_study(scale: Scale | str, out_dir: str | Path, threads: int | None = None, seed: int = 0,
              progress: bool = True) -> dict[str, Any]:
    """Run the whole study at ``scale`` and write it under ``out_dir``; returns :func:`load_results`."""
    s = SCALES[scale] if isinstance(scale, str) and scale in SCALES else scale
    if not isinstance(s, Scale):
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    threads = _check_threads(threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)  # a half-written study is never read back
    study = _Study(s, threads, seed, progress)
    t_start, cpu_start, load_start = time.perf_counter(), time.process_time(), loadavg()
    dim_points = len(s.d_grid) + sum(sum(d <= dm for d in s.d_grid) for _, dm in s.extra_dim_studies)
    steps = 1 + len(retrieval.KINDS) + sum(n != s.n_main for n in s.n_grid) + dim_points + 4 + 2
    with tqdm(total=steps, desc=f"bench-ann ({s.name})", disable=not progress) as bar:
        bar.set_postfix_str("memory bandwidth")
        bw1 = measure_bandwidth(s.bandwidth_bytes, threads=1)
        bwn = measure_bandwidth(s.bandwidth_bytes, threads=threads)
        gf1 = _gflops(1536, 3, 1)  # (wall, CPU time) GFLOP/s
        bar.update(1)
        main, sweeps, extra = study.main_table(bar)
        scaling_n = study.scaling_n(main, bar)
        scaling_d = study.scaling_d(bar)
        batch = study.batch_study(bw1, gf1, bar)
        bar.set_postfix_str("Faiss BLAS switch")
        switch = blas_switch_probe(min(s.n_switch_probe, s.n_main), s.d_main, seed)
        bar.update(1)
        bar.update(1)
    machine = _machine_info(s, threads, seed, bw1, bwn, gf1, main, extra)
    machine.update({"wall_s": time.perf_counter() - t_start, "cpu_s": time.process_time() - cpu_start,
                    "loadavg_start": load_start,
                    "loadavg_end": loadavg()})
    tables = {"main": main, "sweep": sweeps, "scaling_n": scaling_n, "scaling_d": scaling_d, "batch": batch,
              "blas_switch": switch}
    frames = {name: pd.DataFrame(rows) for name, rows in tables.items()}
    summary = summarize(frames, machine)
    for name, df in frames.items():
        _write_atomic(out / f"{name}.csv", lambda p, df=df: df.to_csv(p, index=False))
    _write_json(out / "machine.json", machine)
    _write_json(out / "summary.json", summary)
    written = write_plots(frames, machine, out)
    _write_atomic(out / "table.md", lambda p: Path(p).write_text(markdown_table(frames["main"], machine)))
    _write_json(out / "manifest.json", {"scale": s.name, "tables": list(TABLES), "plots": written,
                                        "files": sorted(p.name for p in out.iterdir() if p.is_file())})
    return load_results(out)


def _check_threads(threads: int | None) -> int:
    n = threads if threads is not None else len(os.sched_getaffinity(0))
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads={threads!r} must be a positive integer")
    return n


def loadavg() -> list[float] | None:
    """The 1, 5 and 15-minute load averages rounded to 2 decimals (None where the system has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _machine_info(s: Scale, threads: int, seed: int, bw1: dict[str, float], bwn: dict[str, float],
                  gf1: tuple[float, float], main: list[dict[str, Any]],
                  extra: dict[str, Any]) -> dict[str, Any]:
    exact = next(r for r in main if r["kind"] == "exact")
    bound_ms = s.n_main * s.d_main * 4 / (bw1["read_GBps"] * 1e9) * 1e3
    bound_cpu_ms = s.n_main * s.d_main * 4 / (bw1["read_GBps_cpu"] * 1e9) * 1e3
    llc = llc_bytes()
    return {
        "scale": asdict(s), "seed": seed, "threads": threads, "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
        "numpy": np.__version__, "faiss": faiss.__version__, "llc_bytes": llc,
        "bandwidth_1_thread": bw1, "bandwidth_all_threads": bwn, "gemm_gflops_1_thread": gf1[0],
        "gemm_gflops_1_thread_cpu": gf1[1],
        "distance_compute_blas_threshold": int(faiss.cvar.distance_compute_blas_threshold),
        "scan_bytes": s.n_main * s.d_main * 4, "scan_exceeds_llc": None if llc is None else
        s.n_main * s.d_main * 4 > 2 * llc,
        "bandwidth_bound_ms": bound_ms, "exact_p50_ms": exact["p50_ms"],
        "exact_p50_cpu_ms": exact["p50_cpu_ms"],
        "exact_min_ms": extra.get("exact_min_ms"), "exact_over_bound": exact["p50_ms"] / bound_ms,
        "bandwidth_bound_cpu_ms": bound_cpu_ms, "exact_cpu_over_bound": exact["p50_cpu_ms"] / bound_cpu_ms,
    }


def summarize(frames: dict[str, pd.DataFrame], machine: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers and the study's targets (met or not) from its tables."""
    main = frames["main"].set_index("kind")
    out: dict[str, Any] = {"n_items": int(main["n"].iloc[0]), "dim": int(main["d"].iloc[0])}
    for kind, r in main.iterrows():
        out[f"{kind}_recall@{K}"] = float(r[f"recall@{K}"])
        out[f"{kind}_p50_ms"] = float(r["p50_ms"])
        out[f"{kind}_p50_cpu_ms"] = float(r["p50_cpu_ms"])
        out[f"{kind}_build_s"] = float(r["build_s"])
    sd = frames["scaling_d"]
    out["dim_study_n"] = int(sd["n"].iloc[0])
    for n, g in sd.groupby("n"):
        suffix = "" if n == out["dim_study_n"] else f"_n{n}"
        for metric, key in (("ip", "kdtree_over_exact_by_dim"), ("l2", "kdtree_l2_over_exact_by_dim")):
            kd = g[(g["kind"] == "kdtree") & (g["metric"] == metric)]
            for col, tail in (("over_exact", ""), ("over_exact_cpu", "_cpu")):
                out[key + suffix + tail] = {int(d): float(v) for d, v in zip(kd["d"], kd[col], strict=True)}
    out["kdtree_over_exact"] = float(main.loc["kdtree", "p50_ms"] / main.loc["exact", "p50_ms"])
    out["exact_over_bandwidth_bound"] = machine["exact_over_bound"]
    out["exact_cpu_over_bandwidth_bound"] = machine["exact_cpu_over_bound"]
    out["targets"] = _targets(main, machine["exact_over_bound"], "p50_ms")
    out["targets_cpu_time"] = _targets(main, machine["exact_cpu_over_bound"], "p50_cpu_ms")
    out["lecture_10_20_ms"] = {kind: bool(10.0 <= r["p50_ms"] <= 20.0) for kind, r in main.iterrows()}
    out["lecture_10_20_ms_cpu"] = {kind: bool(10.0 <= r["p50_cpu_ms"] <= 20.0) for kind, r in main.iterrows()}
    sw = frames["blas_switch"].set_index("uses_blas")
    out["blas_switch"] = {"threshold": int(sw["threshold"].iloc[0]), "batch": int(sw.loc[True, "batch"]),
                          "n": int(sw["n"].iloc[0]), "speedup_cpu": float(sw.loc[True, "qps_cpu"] /
                                                                         sw.loc[False, "qps_cpu"])}
    return out


def _targets(main: pd.DataFrame, exact_over_bound: float, col: str) -> dict[str, bool]:
    """The study's three targets, on the latency column ``col`` (wall-clock or CPU time)."""
    rk = f"recall@{K}"
    hnsw, ivf = main.loc["hnsw"], main.loc["ivf"]
    return {
        "hnsw recall@10 >= 0.95 at p50 <= 1 ms": bool(hnsw[rk] >= 0.95 and hnsw[col] <= 1.0),
        "ivf recall@10 >= 0.95 at p50 <= 2 ms": bool(ivf[rk] >= 0.95 and ivf[col] <= 2.0),
        "exact scan p50 within 1.5x of the bandwidth bound": bool(exact_over_bound <= 1.5),
    }


# ----------------------------------------------------------------------------- output
def _write_atomic(path: Path, writer: Callable[[str], Any]) -> None:
    """Call ``writer(tmp_path)`` on a unique temporary file; move it onto ``path`` only if that succeeded."""
    with atomic_path(path) as tmp:
        writer(str(tmp))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(report.to_jsonable(data), indent=2, sort_keys=True)
    _write_atomic(path, lambda p: Path(p).write_text(text))


def load_results(out_dir: str | Path = "build/bench-ann") -> dict[str, Any] | None:
    """A finished study under ``out_dir`` as {"main", "sweep", "scaling_n", "scaling_d", "batch":
    DataFrames, "machine", "summary": dicts, "plots": {name: Path}}, or None when there is none."""
    out = Path(out_dir)
    manifest = out / "manifest.json"
    if not manifest.exists():
        return None
    try:
        files = load_json(manifest, "benchmark manifest")  # a JSON object, else DamagedArtifact (ValueError)
        res: dict[str, Any] = {name: pd.read_csv(out / f"{name}.csv") for name in files["tables"]}
        for name in ("machine", "summary"):
            res[name] = load_json(out / f"{name}.json", f"benchmark {name}")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{out} holds an incomplete or corrupt benchmark ({err}); "
                         "re-run `python -m ytrec_lib bench-ann`") from err
    res["plots"] = {name: out / f"{name}.png" for name in files.get("plots", [])}
    return res


def load_largest(folders: Iterable[str | Path]) -> tuple[dict[str, Any] | None, Path | None, list[str]]:
    """The finished study with the most items among ``folders`` -> (results, its folder, errors).

    ``results`` is :func:`load_results` of that folder (None and None when no folder holds one);
    ``errors`` has one line per damaged folder (skipped).
    """
    best, best_dir, errors = None, None, []
    for folder in folders:
        try:
            res = load_results(folder)
        except ValueError as err:
            errors.append(f"{folder}: {err}")
            continue
        if res is not None and (best is None or res["summary"]["n_items"] > best["summary"]["n_items"]):
            best, best_dir = res, Path(folder)
    return best, best_dir, errors


def markdown_table(main: pd.DataFrame, machine: dict[str, Any]) -> str:
    """The main table as GitHub markdown (one row per index kind)."""
    cols = [("label", "index (parameters)"), (f"recall@{K}", f"recall@{K}"), ("p50_ms", "p50 ms (1 thr)"),
            ("p95_ms", "p95 ms"), ("p99_ms", "p99 ms"), ("p50_cpu_ms", "p50 CPU ms"),
            ("all_threads_p50_ms", "p50 ms (all thr)"),
            ("qps_batch", "batch q/s (all thr)"), ("build_s", "build s"), ("memory_MB", "memory MB")]
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for _, r in main.iterrows():
        cells = [str(r[c]) if c == "label" else _fmt(r[c]) for c, _ in cols]
        lines.append("| " + " | ".join(cells) + " |")
    bw = machine["bandwidth_1_thread"]
    lines.append("")
    lines.append(f"N = {int(main['n'].iloc[0]):,}, d = {int(main['d'].iloc[0])}, all threads = "
                 f"{machine['threads']}. Read bandwidth (1 thread) {bw['read_GBps']:.1f} GB/s by the wall "
                 f"clock, {bw['read_GBps_cpu']:.1f} GB/s by CPU time -> one exact scan needs at least "
                 f"{machine['bandwidth_bound_ms']:.2f} ms ({machine['bandwidth_bound_cpu_ms']:.2f} ms CPU); "
                 f"exact p50 / bound = {machine['exact_over_bound']:.2f} (CPU time: "
                 f"{machine['exact_cpu_over_bound']:.2f}).")
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        if v == 0 or not math.isfinite(v):
            return str(v)
        return f"{v:.3f}" if abs(v) < 10 else f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.1f}"
    return str(v)


def write_plots(frames: dict[str, pd.DataFrame], machine: dict[str, Any], out: Path) -> list[str]:
    """Write the study's PNG plots (drawn by :func:`ytrec_lib.plots.ann_bench_figures`) into ``out``
    atomically; returns the names written."""
    from ytrec_lib import plots  # matplotlib only when plotting

    written = []
    for name, fig in plots.ann_bench_figures(frames, machine, k=K).items():
        _write_atomic(out / f"{name}.png", lambda p, fig=fig: fig.savefig(p, format="png", dpi=110))
        written.append(name)
    return written


# ----------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m ytrec_lib bench-ann``."""
    p = argparse.ArgumentParser(prog="python -m ytrec_lib bench-ann",
                                description="Benchmark exact, Faiss and tree nearest-neighbour search.")
    p.add_argument("--scale", choices=sorted(SCALES), default="small",
                   help="ci: N<=1e5, few d; small: N<=1e5, all d; large: N up to 1e6 (default small)")
    p.add_argument("--out", default="build/bench-ann", help="output folder (default build/bench-ann)")
    p.add_argument("--threads", type=int, default=None, help="'all threads' count (default: all CPUs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        res = run_study(args.scale, args.out, args.threads, args.seed, progress=not args.no_progress)
    except ValueError as err:
        print(f"bench-ann: error: {err}", file=sys.stderr)
        return 2
    assert res is not None
    print(markdown_table(res["main"], res["machine"]))
    for target, ok in res["summary"]["targets"].items():
        print(f"{'met    ' if ok else 'NOT met'}  {target}")
    print(f"results in {Path(args.out).resolve()}")
    return 0


__all__ = ["Scale", "SCALES", "synthetic_embeddings", "synthetic_queries", "shaped_like", "measure_bandwidth",
           "read_bandwidth_GBps", "best_seconds", "measure_gflops", "llc_bytes", "loadavg", "Timed",
           "time_single_queries", "single_query_p50", "batch_throughput", "measure_index", "sweep",
           "pick_operating_point", "SearchGrid", "build_timed", "build_params", "Tuned", "tune",
           "at_operating_point", "BLAS_METHODS", "blas_switch_batch", "batch_qps", "run_study",
           "load_results", "load_largest", "summarize", "markdown_table", "main"]
