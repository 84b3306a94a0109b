"""Tests of studies.allreduce and studies.scale_out: all-reduce, Faiss memory, shards, the cluster model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ytrec_lib.studies import allreduce as A
from ytrec_lib.studies import scale_out as S


# ----------------------------------------------------------------------------- all-reduce
def test_fit_recovers_a_straight_line() -> None:
    x = np.array([4e3, 6.4e4, 1e6, 1.6e7])
    latency, per_byte = A.fit_latency_bandwidth(x, 2e-4 + x * 1e-9)
    assert latency == pytest.approx(2e-4, rel=1e-9) and per_byte == pytest.approx(1e-9, rel=1e-9)


def test_fit_clips_a_negative_latency_and_refuses_a_flat_line() -> None:
    x = np.array([1e3, 1e6])
    latency, per_byte = A.fit_latency_bandwidth(x, x * 1e-9 - 5e-7 + 1e-12)
    assert latency == 0.0 and per_byte > 0
    with pytest.raises(ValueError, match="does not grow"):
        A.fit_latency_bandwidth(x, np.array([2e-3, 1e-3]))
    with pytest.raises(ValueError, match="2 distinct sizes"):
        A.fit_latency_bandwidth(np.array([1e3, 1e3]), np.array([1e-3, 1e-3]))


def test_time_allreduce_runs_two_real_gloo_processes() -> None:
    # Timings are not compared here (a shared machine can time 4 KiB slower than 2 MiB); the fit is
    # tested on exact lines above. What must hold: real processes, correct sums, one time per repeat.
    r = A.time_allreduce(sizes=(2**21, 4096), nprocs=2, repeats=2, warmup=1)
    assert r["nprocs"] == 2 and r["sizes_bytes"] == [4096, 2**21]
    assert r["sums_correct"] is True
    assert [len(t) for t in r["times_s"]] == [2, 2] and all(x > 0 for t in r["times_s"] for x in t)
    assert r["median_s"] == [float(np.median(t)) for t in r["times_s"]]


def test_measure_allreduce_adds_the_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    line = {"nprocs": 2, "sizes_bytes": [4096, 2**20], "times_s": [[1e-4], [1.1e-3]],
            "median_s": [1e-4 + 4096 * 1e-9, 1e-4 + 2**20 * 1e-9], "sums_correct": True}
    monkeypatch.setattr(A, "time_allreduce", lambda *a, **k: line)
    r = A.measure_allreduce()
    assert r["latency_s"] == pytest.approx(1e-4) and r["bandwidth_GBps"] == pytest.approx(1.0)


def test_measure_allreduce_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError, match="multiples of 4"):
        A.measure_allreduce(sizes=(4096, 4097))
    with pytest.raises(ValueError, match="nprocs >= 2"):
        A.measure_allreduce(nprocs=1)


# ----------------------------------------------------------------------------- Faiss memory
def test_faiss_memory_per_vector_matches_the_layouts() -> None:
    d = 16
    kinds = {"flat": "Flat", "ivf": "IVF8,Flat", "ivfpq": "IVF8,PQ4x4", "hnsw": "HNSW8"}
    mem = S.faiss_memory(d, sizes=(1000, 2000), n_train=512, factories=kinds)
    assert mem["flat"]["bytes_per_vector"] == 4 * d  # the float32 vector
    assert mem["ivf"]["bytes_per_vector"] == 4 * d + 8  # vector + int64 id in its list
    assert mem["ivfpq"]["bytes_per_vector"] == 4 * 4 / 8 + 8  # m codes of nbits + the id
    assert mem["hnsw"]["bytes_per_vector"] > 4 * d  # the vector plus its graph links
    assert mem["ivfpq"]["fixed_bytes"] > 0  # codebooks and the coarse quantiser
    with pytest.raises(ValueError, match="cannot build"):
        S.faiss_memory(d, factories={"bad": "NoSuchIndex"})


def test_limits_table() -> None:
    mem = {"flat": {"bytes_per_vector": 100.0, "fixed_bytes": 0.0}}
    table = S.limits_table(mem, {"here": 1e6, "server": 1e7}, usable_fraction=1.0)
    assert table["flat"]["max_items_here"] == 10_000 and table["flat"]["max_items_server"] == 100_000


def test_catalogue_limit() -> None:
    assert S.catalogue_limit(100.0, 1000.0, 1e6, usable_fraction=0.5) == (500_000 - 1000) // 100
    assert S.catalogue_limit(100.0, 2e6, 1e6) == 0
    with pytest.raises(ValueError, match="usable_fraction"):
        S.catalogue_limit(100.0, 0.0, 1e6, usable_fraction=0.0)
    assert S.machine_ram_bytes() > 2**20


# ----------------------------------------------------------------------------- IndexShards
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_two_shards_answer_as_one_index(kind: str) -> None:
    rng = np.random.default_rng(0)
    x, q = rng.standard_normal((3001, 8), dtype=np.float32), rng.standard_normal((50, 8), dtype=np.float32)
    r = S.shards_vs_single(x, q, k=10, kind=kind, nlist=16, nprobe=4)
    assert r["ids_equal"] and r["max_abs_score_diff"] <= 1e-5, r
    assert r["shard_sizes"] == [1501, 1500]


def test_shards_refuse_bad_input() -> None:
    x = np.zeros((10, 4), np.float32)
    with pytest.raises(ValueError, match="queries"):
        S.shards_vs_single(x, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="kind"):
        S.shards_vs_single(x, np.zeros((2, 4), np.float32), k=2, kind="hnsw")


# ----------------------------------------------------------------------------- cluster model
def test_model_costs_by_hand() -> None:
    a = S.ClusterAssumptions(dim=4, side_width=2, tower=(3, 2), n_negatives=5, bag=1, batch_per_machine=2,
                             n_videos=10, n_tokens=6, n_users=100, examples_per_user=3)
    c = S.model_costs(a)
    assert c["flops_per_example"] == 6 * (10 * 3 + 3 * 2 + 6 * 2)  # tower 10->3->2, 5 negatives + 1 positive
    assert c["dense_params"] == 10 * 3 + 3 + 3 * 2 + 2
    assert c["dense_bytes"] == 4 * 41 and c["sparse_bytes"] == 4 * (2 * 3 + 5) * 4  # touched rows of width 4
    assert c["n_examples"] == 300


def test_cluster_hours_one_machine_does_not_communicate_and_many_pay_off() -> None:
    a = S.ClusterAssumptions()
    h = S.cluster_hours(a, seconds_per_flop=1e-10, latency_s=3e-4, s_per_byte=1e-9,
                        machines=(1, 2, 8, 64, 512))
    assert h[1]["comm_s_per_step"] == 0 and h[1]["comm_share"] == 0
    hours = [h[k]["hours"] for k in (2, 8, 64, 512)]
    assert all(b < a_ for a_, b in zip(hours, hours[1:], strict=False)), hours  # past 2: more is faster
    assert all(0 < h[k]["comm_share"] < 1 for k in (2, 8, 64, 512))
    assert h[2]["hours"] > h[1]["hours"] > h[512]["hours"]  # two machines lose to one: rows cross the wire
    assert S.breakeven_machines(h) == 8
    free = S.cluster_hours(replace(a, link_slowdown=1e-12), 1e-10, 0.0, 1e-9, machines=(1, 10))
    assert free[10]["hours"] == pytest.approx(free[1]["hours"] / 10, rel=1e-6)  # linear without communication
    assert S.breakeven_machines(free) == 10 and S.breakeven_machines({2: h[2]}) is None


def test_cluster_step_time_by_hand() -> None:
    a = S.ClusterAssumptions(batch_per_machine=10, cores_per_machine=2, overlap=0.5)
    c = S.model_costs(a)
    h = S.cluster_hours(a, seconds_per_flop=1e-9, latency_s=1e-3, s_per_byte=1e-9, machines=(4,))[4]
    compute = 10 * c["flops_per_example"] * 1e-9 / 2
    comm = 3 * 1e-3 + 2 * 0.75 * (c["dense_bytes"] + c["sparse_bytes"]) * 1e-9
    assert h["compute_s_per_step"] == pytest.approx(compute)
    assert h["comm_s_per_step"] == pytest.approx(comm / 2)
    assert h["hours"] == pytest.approx(c["n_examples"] / 40 * (compute + comm / 2) / 3600)


def test_describe_assumptions_and_errors() -> None:
    a = S.ClusterAssumptions()
    lines = S.describe_assumptions(a, {"seconds_per_flop": 1e-10})
    assert "assumed  n_users = 300000000.0" in lines and any(ln.startswith("measured") for ln in lines)
    with pytest.raises(ValueError, match="seconds_per_flop"):
        S.cluster_hours(a, 0.0, 0.0, 1e-9)
