"""Notebook 09 (scaling out) at the ci preset: its recorded keys and the sanity of their values.

The Spark section needs pyspark and Java; where either is missing the notebook records why
(``spark_skipped_reason``) and none of the Spark keys, and the Spark test checks exactly that.
"""

from __future__ import annotations

import pytest

STEM = "09_scale_out"
KEYS = ("ddp_examples_per_s", "ddp_equals_single", "ddp_comm_share", "cluster_model", "shards_equal_single",
        "allreduce_latency_s", "allreduce_s_per_byte", "trainer_examples_per_s", "faiss_bytes_per_vector",
        "catalogue_limit_this_machine", "catalogue_limit_server", "spark_skipped_reason")
SPARK_KEYS = ("spark_item2vec_purity@10", "spark_item2vec_words_per_s", "gensim_words_per_s")

pytestmark = pytest.mark.notebook


def test_records_the_issue_keys(notebook_results) -> None:
    r = notebook_results(STEM)
    missing = [k for k in KEYS if k not in r]
    assert not missing, f"{STEM} did not record {missing}"


def test_ddp_matches_one_process_and_reports_its_communication(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["ddp_equals_single"] is True, r["ddp_max_abs_diff"]
    rates = {int(p): v for p, v in r["ddp_examples_per_s"].items()}
    shares = {int(p): v for p, v in r["ddp_comm_share"].items()}
    assert {1, 2} <= set(rates) == set(shares), (rates, shares)
    assert all(v > 0 for v in rates.values()), rates
    assert all(0 <= v < 1 for v in shares.values()), shares  # the share a step's all-reduce adds


def test_spark_runs_or_is_skipped_cleanly(notebook_results) -> None:
    r = notebook_results(STEM)
    if r["spark_skipped_reason"] is not None:
        assert isinstance(r["spark_skipped_reason"], str) and not any(k in r for k in SPARK_KEYS)
        return
    assert r["spark_item2vec_words_per_s"] > 0 and r["gensim_words_per_s"] > 0
    assert r["spark_item2vec_purity@10"] > 2 * r["i2v_purity@10_chance"], r  # it learned the topics
    assert len(r["spark_gensim_by_sequences"]) >= 2
    assert r["gensim_more_epochs"] > 0 and r["gensim_more_epochs_seconds"] > 0
    assert 0 <= r["gensim_item2vec_purity@10_more_epochs"] <= 1


def test_two_shards_answer_as_one_index(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["shards_equal_single"] is True
    assert r["shards_max_abs_score_diff"] <= 1e-5, r["shards_max_abs_score_diff"]


def test_cluster_hours_fall_with_machines_past_two(notebook_results) -> None:
    r = notebook_results(STEM)
    hours = {int(k): v for k, v in r["cluster_model"].items()}
    shares = {int(k): v for k, v in r["cluster_comm_share"].items()}
    ks = sorted(k for k in hours if k >= 2)
    assert 1 in hours and len(ks) >= 3, hours
    assert all(hours[a] > hours[b] > 0 for a, b in zip(ks, ks[1:], strict=False)), hours
    assert hours[max(ks)] < hours[1], hours  # the largest cluster beats one machine
    assert shares[1] == 0 and all(0 < shares[k] < 1 for k in ks), shares


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
