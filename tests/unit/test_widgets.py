"""Tests of ytrec_lib.widgets: the explorer is built headless and driven through its widgets."""

from __future__ import annotations

import numpy as np
import pytest

from ytrec_lib import pipeline
from ytrec_lib.widgets import SystemExplorer

CANDIDATE = {"epochs": 1, "tower": [16], "n_negatives": 50, "dim": 8}
RANKER = {"epochs": 1, "hidden": [8], "dim": 8, "max_train_impressions": 4000}


@pytest.fixture(scope="module")
def explorer(one_thread) -> SystemExplorer:
    b = pipeline.system("tiny", 0, index_kind="hnsw", progress=False, candidate_config=CANDIDATE,
                        ranker_config=RANKER, efSearch=16)
    return SystemExplorer(b.system, b.dataset, b.test_users[:20], eval_users=b.test_users[:8], k=5,
                          n_candidates=40)


def _rows(html: str) -> int:
    return html.count("<tr") - 1  # minus the header row


def test_initial_state_shows_user_lists_and_quality(explorer):
    st = explorer.state
    assert st["user"] == explorer.user.value and st["k"] == 5
    assert len(st["recommendation"].video_ids) == 5
    assert _rows(explorer.ranked_html.value) == 5
    assert f"user {st['user']}" in explorer.user_html.value
    assert 0.0 <= st["ndcg_two_stage"] <= 1.0 and 0.0 <= st["ndcg_candidates_only"] <= 1.0
    assert st["latency_p99_ms"] >= st["latency_p50_ms"] > 0
    assert "topic" in explorer.ranked_html.value and "stage2" in explorer.ranked_html.value


def test_changing_k_redraws_longer_lists(explorer):
    n = explorer.n_refreshes
    explorer.k.value = 8
    assert explorer.n_refreshes == n + 1
    assert explorer.state["k"] == 8 and _rows(explorer.ranked_html.value) == 8
    assert _rows(explorer.candidates_html.value) == 8
    assert "NDCG@8" in explorer.stats_html.value


def test_changing_user_shows_that_user(explorer):
    other = explorer.user.options[3]
    explorer.user.value = other
    assert explorer.state["user"] == other and f"user {other}" in explorer.user_html.value
    watched = explorer.system.watched(other)
    assert f"{len(watched)} watched" in explorer.history_html.value
    assert explorer.state["recommendation"].user_id == other


def test_changing_candidates_and_search_parameter_reach_the_index(explorer):
    explorer.n_candidates.value = 20
    assert len(explorer.state["recommendation"].candidate_ids) <= 20
    assert explorer.state["n_candidates"] == 20
    explorer.search.value = 3
    assert explorer.system.index.params["efSearch"] == 3 and explorer.state["search"] == 3
    explorer.search.value = 200
    assert explorer.system.index.params["efSearch"] == 200


def test_ideal_lists_are_cached_and_valid(explorer):
    users = np.asarray(explorer.eval_users)
    ideal = explorer._ideal_for(users, 5)
    assert ideal.shape == (len(users), 5)
    again = explorer._ideal_for(users, 5)
    np.testing.assert_array_equal(ideal, again)


def test_needs_users():
    with pytest.raises(ValueError, match="at least one user"):
        SystemExplorer(None, None, [])
