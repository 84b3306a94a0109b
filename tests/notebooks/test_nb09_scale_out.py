"""Notebook 09 (scaling out) at the ci preset: its recorded keys and the sanity of their values."""

from __future__ import annotations

import pytest

STEM = "09_scale_out"
KEYS = ("cluster_model", "cluster_comm_share", "shards_equal_single", "allreduce_latency_s",
        "allreduce_s_per_byte", "trainer_examples_per_s", "faiss_bytes_per_vector",
        "catalogue_limit_this_machine", "catalogue_limit_server")

pytestmark = pytest.mark.notebook


def test_records_the_issue_keys(notebook_results) -> None:
    r = notebook_results(STEM)
    missing = [k for k in KEYS if k not in r]
    assert not missing, f"{STEM} did not record {missing}"


def test_two_shards_answer_as_one_index(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["shards_equal_single"] is True
    assert r["shards_max_abs_score_diff"] <= 1e-5, r["shards_max_abs_score_diff"]


def test_cluster_hours_fall_with_machines(notebook_results) -> None:
    r = notebook_results(STEM)
    hours = {int(k): v for k, v in r["cluster_model"].items()}
    ks = sorted(hours)
    assert len(ks) >= 3 and all(hours[a] > hours[b] > 0 for a, b in zip(ks, ks[1:], strict=False)), hours
    shares = {int(k): v for k, v in r["cluster_comm_share"].items()}
    assert shares[1] == 0 and all(0 < shares[k] < 1 for k in ks[1:]), shares


def test_measured_costs_are_physical(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["trainer_examples_per_s"] > 0 and r["allreduce_latency_s"] >= 0
    assert 1e-12 < r["allreduce_s_per_byte"] < 1e-6, r["allreduce_s_per_byte"]  # 1 MB/s .. 1 TB/s
    per_vector, dim = r["faiss_bytes_per_vector"], 256
    assert per_vector["flat"] == 4 * dim and per_vector["ivf"] == 4 * dim + 8, per_vector
    assert per_vector["ivfpq"] < per_vector["flat"] < per_vector["hnsw"], per_vector
    here, server = r["catalogue_limit_this_machine"], r["catalogue_limit_server"]
    assert all(0 < here[k] for k in here) and here["ivfpq"] > here["flat"], here
    assert (server["flat"] > here["flat"]) == (r["machine_ram_GiB"] < 256), (server, r["machine_ram_GiB"])
