"""Notebook 08 (the two-stage system end to end) at the ci preset: the claims it teaches, on its results."""

import pytest

KEYS = ("ndcg@10_two_stage", "ndcg@10_candidates_only", "ndcg@10_popularity", "ndcg@10_oracle",
        "latency_ms_p50", "latency_ms_p99", "latency_ms_by_stage")
STAGES = ("lookup", "ann", "features", "ranking")


@pytest.fixture(scope="module")
def r(notebook_results):
    return notebook_results("08_two_stage_system")


def test_records_every_key_of_the_issue(r):
    missing = [k for k in KEYS if k not in r]
    assert not missing, f"08_two_stage_system did not record {missing}"
    assert set(r["latency_ms_by_stage"]) == set(STAGES)


def test_two_stage_beats_candidates_only_beats_popularity(r):
    assert r["ndcg@10_two_stage"] > r["ndcg@10_candidates_only"] > r["ndcg@10_popularity"]
    assert r["ordering_holds"] is True


def test_oracle_is_the_ceiling(r):
    assert r["ndcg@10_oracle"] == pytest.approx(1.0)
    assert all(r[f"ndcg@10_{n}"] <= r["ndcg@10_oracle"] + 1e-9
               for n in ("two_stage", "candidates_only", "popularity"))


def test_funnel_narrows_and_latencies_are_consistent(r):
    f = r["funnel"]
    assert f["catalogue"] >= f["indexed"] > f["candidates"] > f["shown"] == 10
    assert r["latency_ms_p99"] >= r["latency_ms_p50"] > 0
    assert all(v >= 0 for v in r["latency_ms_by_stage"].values())


def test_explorer_ran_headless(r):
    assert r["explorer_refreshes"] >= 2


def test_strong_baselines_sit_in_the_quality_table_below_the_oracle(r):
    assert r["split"] == "next_watch" and r["quality_metric"] == "true watch-time NDCG" and r["has_ranker"]
    table = r["quality_table"]
    strong = ("itemknn_tuned", "rp3b", "ease")   # EASE fits at ci
    assert set(table) == {"two_stage", "candidates_only", "popularity", "oracle", *strong}
    assert set(r["strong_baseline_params"]) == set(strong)
    assert set(r["strong_baseline_params"]["itemknn_tuned"]) == {"n_neighbors", "n_recent", "shrink"}
    for name in strong:
        assert 0.0 < r[f"ndcg@10_{name}"] <= r["ndcg@10_oracle"] + 1e-9, name
        assert r[f"ndcg@10_{name}"] == table[name]["ndcg@10"]
        assert 0.0 <= r[f"recall@10_{name}"] == table[name]["recall@10"] <= 1.0
