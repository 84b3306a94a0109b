"""Notebook 03 (candidate generation) at the ci preset: the claims it teaches, asserted on its results."""

import pytest

KEYS = ("recall@100_model", "recall@100_popularity", "recall@100_itemknn", "recall@100_item2vec_avg",
        "recall@100_oracle", "map_watches_only", "map_all_features", "map_by_depth",
        "sampled_speedup_at_100k", "recall@100_next_watch_label", "recall@100_heldout_label")
FEATURE_SETS = ("watches", "watches+searches", "watches+searches+example_age", "all")


@pytest.fixture(scope="module")
def r(notebook_results):
    return notebook_results("03_candidate_generation")


def test_records_every_key_of_the_issue(r):
    missing = [k for k in KEYS if k not in r]
    assert not missing, f"03_candidate_generation did not record {missing}"
    assert list(r["map_by_depth"]) == list(FEATURE_SETS)
    assert all(len(v) == 5 for v in r["map_by_depth"].values())  # depth 0..4
    assert r["map_watches_only"] == r["map_by_depth"]["watches"][3]
    assert r["map_all_features"] == r["map_by_depth"]["all"][3]


def test_model_beats_every_baseline_on_recall_at_100(r):
    for baseline in ("popularity", "itemknn", "item2vec_avg"):
        assert r["recall@100_model"] > r[f"recall@100_{baseline}"], baseline
    assert r["recall@100_model"] < r["recall@100_oracle"]


def test_all_features_beat_watches_only(r):
    assert r["map_all_features"] > r["map_watches_only"]


def test_sampled_softmax_is_at_least_ten_times_faster_at_100k(r):
    assert r["sampled_speedup_at_100k"] >= 10


def test_values_are_in_range(r):
    for k in KEYS:
        if k.startswith("recall@") or k.startswith("map_") and k != "map_by_depth":
            assert 0.0 <= r[k] <= 1.0, k
    assert all(0.0 <= v <= 1.0 for values in r["map_by_depth"].values() for v in values)
