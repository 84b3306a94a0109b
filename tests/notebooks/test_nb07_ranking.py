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


def test_every_ranker_is_trained_to_convergence_over_three_worlds(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["ranking_seeds"] == 3
    assert set(r["ranker_lr"]) == {"weighted", "plain"} and all(v > 0 for v in r["ranker_lr"].values())
    assert all(1 <= e < 30 for e in r["ranker_epochs"].values()), r["ranker_epochs"]  # stopped early


def test_weighted_beats_plain_on_weighted_per_user_loss(notebook_results) -> None:
    """Paired by world, beyond two standard errors."""
    r = notebook_results(STEM)
    gap, se = r["wpul_plain_minus_weighted"], r["wpul_plain_minus_weighted_se"]
    assert gap > 2 * se > 0, (gap, se)
    assert r["wpul_weighted_lr"] < r["wpul_plain_lr"]


def test_weighted_beats_plain_on_watch_time_ndcg(notebook_results) -> None:
    """Paired by world, beyond two standard errors."""
    r = notebook_results(STEM)
    gap, se = r["ndcg@10_weighted_minus_plain"], r["ndcg@10_weighted_minus_plain_se"]
    assert gap > 2 * se > 0, (gap, se)
    assert r["ndcg@10_watch_weighted_lr"] > r["ndcg@10_watch_plain_lr"]


PROGRESSION_XFAIL = (
    "measured at ci, seed 0: Spearman's rho of the true expected watch time with the weighted model's "
    "exp(logit) / the plain click LR's logit is 0.388 / 0.411 with every ranker early-stopped on validation "
    "(0.386 / 0.389 after a fixed 3 epochs). After 3 epochs, with each world as the default: 0.598 / 0.530 "
    "in the plain world (presets.PLAIN_WORLD), 0.576 / 0.513 with only the progression of interests off, "
    "0.446 / 0.450 with only freshness back at 1: the interests moving round the topic ring (in a direction "
    "set by gender) take it. Tried in the default world, not enough (3 epochs): a gender embedding in the "
    "ranker 0.392 / 0.371; the watch bag cut to the last 5 watches 0.390 / 0.378; 8 epochs 0.356 / 0.360; "
    "without both video-embedding groups (video, watches) rho stays 0.381: the ranker orders by the "
    "continuous features and the candidate score, not by matching the history to the video. The weighted "
    "model still beats plain click LR on the weighted per-user loss and on watch-time NDCG@10 in every one "
    "of these worlds")


@pytest.mark.xfail(strict=True, reason=PROGRESSION_XFAIL)
def test_odds_order_impressions_by_true_expected_watch_time(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["spearman_expected_watch"] >= 0.5, r["spearman_expected_watch"]


@pytest.mark.xfail(strict=True, reason=PROGRESSION_XFAIL)
def test_weighted_model_is_the_better_watch_time_estimator_than_plain_odds(notebook_results) -> None:
    r = notebook_results(STEM)
    assert r["spearman_expected_watch"] > r["spearman_expected_watch_plain_lr"]


def test_hidden_layers_beat_no_hidden_layer(notebook_results) -> None:
    """By more than the training noise: 2 sqrt(2) standard deviations of the default ranker's loss over
    training seeds (two single runs of one ranker differ by more than that less than 5% of the time)."""
    r = notebook_results(STEM)
    layers = r["wpul_by_layers"]
    assert r["wpul_noise"] == pytest.approx(2 * math.sqrt(2) * r["wpul_train_seed_sd"])
    assert r["wpul_noise"] > 0
    gain = layers["none"] - min(v for k, v in layers.items() if k != "none")
    assert gain > r["wpul_noise"], (layers, r["wpul_noise"])


def test_the_leaky_candidate_score_shows_its_leak(notebook_results) -> None:
    leak = notebook_results(STEM)["candidate_score_leak"]
    assert leak["auc_in_sample_train"] > leak["auc_in_sample_test"] + 0.1, leak
