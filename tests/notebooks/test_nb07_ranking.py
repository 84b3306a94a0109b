"""Notebook 07 (ranking) at the ci preset: the claims it teaches, asserted on its recorded results."""

from __future__ import annotations

import math

import pytest

STEM = "07_ranking"
KEYS = ("wpul_weighted_lr", "wpul_plain_lr", "ndcg@10_watch_weighted_lr", "ndcg@10_watch_plain_lr",
        "wpul_by_layers", "wpul_no_powers", "spearman_expected_watch")

pytestmark = pytest.mark.notebook


def test_records_the_issue_keys(notebook_results) -> None:
    r = notebook_results(STEM)
    missing = [k for k in KEYS if k not in r]
    assert not missing, f"07_ranking did not record {missing}"
    assert isinstance(r["wpul_by_layers"], dict) and len(r["wpul_by_layers"]) >= 3
    assert "none" in r["wpul_by_layers"]
    for key in ("wpul_weighted_lr", "wpul_plain_lr", "wpul_no_powers", *r["wpul_by_layers"]):
        value = r[key] if key in r else r["wpul_by_layers"][key]
        assert 0.0 <= value <= 1.0 and math.isfinite(value), (key, value)
    assert r["ndcg_gain"] == "true expected watch time"


def test_weighted_beats_plain_on_weighted_per_user_loss(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["wpul_weighted_lr"] < r["wpul_plain_lr"], (r["wpul_weighted_lr"], r["wpul_plain_lr"])


def test_weighted_beats_plain_on_watch_time_ndcg(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["ndcg@10_watch_weighted_lr"] > r["ndcg@10_watch_plain_lr"], (
        r["ndcg@10_watch_weighted_lr"], r["ndcg@10_watch_plain_lr"])


PROGRESSION_XFAIL = (
    "measured at ci, seed 0 (07 run with each world as the default): Spearman's rho of the true expected "
    "watch time with the weighted model's exp(logit) / the plain click LR's logit is 0.386 / 0.389 in the "
    "default world, 0.598 / 0.530 in the plain world (presets.PLAIN_WORLD), 0.576 / 0.513 with only the "
    "progression of interests off, 0.446 / 0.450 with only freshness back at 1: the interests moving round "
    "the topic ring (in a direction set by gender) take it: the ranker has no gender feature and none of "
    "when the impression happened to follow them. The weighted model still beats plain click LR on the "
    "weighted per-user loss and on watch-time NDCG@10 in every one of these worlds")


@pytest.mark.xfail(strict=True, reason=PROGRESSION_XFAIL)
def test_odds_order_impressions_by_true_expected_watch_time(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["spearman_expected_watch"] >= 0.5, r["spearman_expected_watch"]


@pytest.mark.xfail(strict=True, reason=PROGRESSION_XFAIL)
def test_weighted_model_is_the_better_watch_time_estimator_than_plain_odds(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["spearman_expected_watch"] > r["spearman_expected_watch_plain_lr"]


def test_hidden_layers_beat_no_hidden_layer(notebook_results) -> None:
    r = notebook_results(STEM)
    layers = r["wpul_by_layers"]
    assert min(v for k, v in layers.items() if k != "none") < layers["none"], layers


def test_the_leaky_candidate_score_shows_its_leak(notebook_results) -> None:
    leak = notebook_results(STEM)["candidate_score_leak"]
    assert leak["auc_in_sample_train"] > leak["auc_in_sample_test"] + 0.1, leak
