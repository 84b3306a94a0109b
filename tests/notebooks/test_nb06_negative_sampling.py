"""Notebook 06 (negative sampling) at the ci preset: the claims it teaches, asserted on its results."""

import pytest

STRATEGIES = ("uniform", "popularity", "inbatch", "inbatch_logq", "exposed", "mixed", "hard")
KEYS = tuple(f"recall@100_{s}" for s in STRATEGIES) + (
    "ranking_auc_exposed", "ranking_auc_global",
    "top100_popularity_pct_inbatch", "top100_popularity_pct_inbatch_logq",
)


@pytest.fixture(scope="module")
def r(notebook_results):
    return notebook_results("06_negative_sampling")


def test_records_every_key_of_the_issue(r):
    missing = [k for k in KEYS if k not in r]
    assert not missing, f"06_negative_sampling did not record {missing}"
    assert all(0.0 <= r[f"recall@100_{s}"] <= 1.0 for s in STRATEGIES)
    assert 0.5 <= r["ranking_auc_global"] <= 1.0 and 0.5 <= r["ranking_auc_exposed"] <= 1.0


def test_retrieval_wants_global_negatives(r):
    """At one budget (§1), and trained to convergence over three worlds (§1b), paired by world beyond two
    standard errors; the crossover's retrieval row is the converged pair of the first world."""
    assert r["recall@100_uniform"] > r["recall@100_exposed"]
    gap, se = r["retrieval_uniform_minus_exposed"], r["retrieval_uniform_minus_exposed_se"]
    assert r["retrieval_worlds"] == 3 and gap > 2 * se > 0, (gap, se)
    converged = r["retrieval_converged_recall"]
    assert gap == pytest.approx(converged["uniform"] - converged["exposed"])
    assert set(r["retrieval_lr"]) == {"uniform", "exposed"} and len(r["retrieval_epochs"]) == 3
    for epochs in r["retrieval_epochs"].values():
        assert all(1 <= e <= 30 for e in epochs.values()), epochs


def test_ranking_wants_exposed_not_clicked_negatives(r):
    """Both rankers trained to convergence; paired by world over three worlds, beyond two standard errors."""
    assert r["ranking_auc_exposed"] > r["ranking_auc_global"]
    gap, se = r["ranking_auc_exposed_minus_global"], r["ranking_auc_exposed_minus_global_se"]
    assert r["ranking_worlds"] == 3 and gap > 2 * se > 0, (gap, se)
    assert set(r["ranking_lr"]) == {"exposed", "global"}


def test_logq_correction_helps_in_batch_and_restores_popularity(r):
    assert r["recall@100_inbatch_logq"] >= r["recall@100_inbatch"]
    # without the correction in-batch negatives over-penalise popular videos: the top 100 is less popular
    assert r["top100_popularity_pct_inbatch"] < r["top100_popularity_pct_inbatch_logq"]
