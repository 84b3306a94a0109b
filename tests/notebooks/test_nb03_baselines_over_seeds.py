"""Notebook 03 §2c at the ci preset over three seeds: the deep model beats the best tuned classical model
(item-kNN, RP3β, EASE) by 1.3× or more; with freshness switched off in the world the lead goes."""

import math

import numpy as np
import pytest

from ytrec_lib.stats import mean_se
from ytrec_lib.studies.lessons import CLASSICAL, verdict

STEM = "03_candidate_generation"
WORLDS = ("world on", "world off")


@pytest.fixture(scope="module")
def r(notebook_results):
    return notebook_results(STEM)



def test_the_ratio_is_recomputed_from_the_seeds(r):
    """Each world: three seeds, each with every tuned classical model, most popular, the oracle and the
    model; the recorded ratio is the mean and SE over seeds of the model over that seed's best classical
    model, and the recorded recalls are the seeds' means."""
    for world in WORLDS:
        rows = r["model_over_best_classical_rows"][world]
        assert [row["seed"] for row in rows] == [0, 1, 2]
        ratios = []
        for row in rows:
            classical = {m: row[f"recall100_{m}"] for m in CLASSICAL}
            assert row["best_classical"] == max(classical, key=classical.get)
            ratios.append(row["recall100_model"] / max(classical.values()))
            assert 0.0 < row["recall100_model"] < row["recall100_oracle"] <= 1.0, (world, row)
            assert row["lr"]["model"] == r["model_over_best_classical_lr"]["model"]  # the world on's, reused
        mean, se = mean_se(ratios)
        assert math.isclose(r["model_over_best_classical"][world], mean, rel_tol=1e-12)
        assert math.isclose(r["model_over_best_classical_se"][world], se, rel_tol=1e-12) and se > 0
        for name in ("model", "oracle", "popularity", *CLASSICAL):
            values = [row[f"recall100_{name}"] for row in rows]
            assert math.isclose(r["recall@100_by_world"][world][name], float(np.mean(values)))


def test_the_world_has_fresh_videos_and_the_ablation_takes_them_away(r):
    """The property the lead is credited to, as notebook 01 measures it (first two days over second week
    of a video's life): strong with every mechanism on, near none with freshness switched off."""
    lift = r["fresh_watch_lift_by_world"]
    assert lift["world on"] > 3.0 * lift["world off"], lift


def test_the_model_beats_the_best_classical_model_by_1_3x(r):
    m, se = r["model_over_best_classical"]["world on"], r["model_over_best_classical_se"]["world on"]
    assert m >= 1.3, (m, se)
    assert m - 1.0 > 2 * se, (m, se)


def test_without_freshness_the_lead_goes(r):
    """The ablation: with freshness off the ratio is within two standard errors of 1, and it fell from
    the world on by more than two standard errors of the difference."""
    on, off = (r["model_over_best_classical"][w] for w in WORLDS)
    on_se, off_se = (r["model_over_best_classical_se"][w] for w in WORLDS)
    assert abs(off - 1.0) <= 2 * off_se, (off, off_se)
    assert on - off > 2 * math.hypot(on_se, off_se), (on, on_se, off, off_se)


@pytest.mark.xfail(strict=True, reason=(
    "measured at ci over 3 seeds: the depth-3 model's recall@100 is 0.171 +- 0.019 against the oracle's "
    "0.576 +- 0.029 at the serving moment (0.297x; per seed 0.33, 0.27, 0.29): just short of 0.3x. Against "
    "the oracle at each label's time (0.927 +- 0.011) it is 0.18x: 36% of the next watches are videos "
    "uploaded after the cutoff, which that oracle knows and no model served at the cutoff has seen. Over the "
    "same 3 seeds neither the inputs nor the rates move the model: the example age also one-hot by day (as "
    "03c's Figure 4 model) 0.170 +- 0.025; the item2vec start of 03's default model 0.170 +- 0.020; rates "
    "chosen from 1e-2, 3e-3, 1e-3 (`lessons --lesson baselines --lrs 1e-2 3e-3 1e-3`) 1e-2, 0.171; a rate "
    "chosen at every seed 0.170"))
def test_the_model_reaches_three_tenths_of_the_oracle(r):
    """Against the oracle at the serving moment, the ceiling of a model served at the cutoff."""
    recall = r["recall@100_by_world"]["world on"]
    assert recall["model"] >= 0.3 * recall["oracle"], recall


def test_the_trending_list_is_recorded_paired_by_seed(r, notebook_printed):
    """Most popular over the last 7 days, beside the model at each seed: the recorded difference is the
    mean and SE over seeds of model minus it, and the printed verdict is the one those imply."""
    rows = r["model_over_best_classical_rows"]["world on"]
    mean, se = mean_se([row["recall100_model"] - row["recall100_popularity_recent"] for row in rows])
    assert math.isclose(r["model_minus_popularity_recent"], mean, rel_tol=1e-12, abs_tol=1e-15)
    assert math.isclose(r["model_minus_popularity_recent_se"], se, rel_tol=1e-12) and se > 0
    lines = [line for line in notebook_printed(STEM) if line.startswith("Most popular over the last 7 days")]
    assert len(lines) == 1 and verdict(mean, se, 0.0) in lines[0], lines


def test_the_sentences_state_the_measured_verdicts(r, notebook_printed):
    printed = notebook_printed(STEM)
    starts = {"With every mechanism on (fresh videos": "world on",
              "With freshness switched off (": "world off"}
    for start, world in starts.items():
        lines = [line for line in printed if line.startswith(start)]
        words = verdict(r["model_over_best_classical"][world], r["model_over_best_classical_se"][world], 1.0)
        assert len(lines) == 1 and words in lines[0], (start, lines, words)
        assert f"{r['model_over_best_classical'][world]:.2f} ± " in lines[0]
