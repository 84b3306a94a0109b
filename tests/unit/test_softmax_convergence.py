"""Tests of ytrec_lib.studies.softmax_convergence: full against sampled softmax trained to convergence
(learning rate chosen on validation, several seeds) and read off at equal training time.

The training tests use the planted task of tests/fixtures (60 videos, a tiny model: seconds), with
recall@5 so that the metric can move (recall@100 of 60 videos is always 1)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ytrec_lib.models.candidate import evaluate_recall
from ytrec_lib.studies import softmax_convergence as SC
from ytrec_lib.train import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from planted_task import model, planted  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = TrainConfig(epochs=12, batch_size=64, patience=2, eval_k=5, n_negatives=20, proposal="uniform")
LRS, SEEDS = (3e-2, 3e-3), (0, 1, 2)


@pytest.fixture(scope="module")
def splits():
    """Train, validation and test examples of the planted task (three independent draws of users)."""
    return [planted(n_users=n, seed=s)[:2] for n, s in ((240, 0), (60, 1), (60, 2))]


@pytest.fixture(scope="module")
def result(splits):
    return SC.compare_softmax(model, *splits, BASE, lrs=LRS, seeds=SEEDS, progress=False)


# ---------------------------------------------------------------------------- curves and summaries


def test_time_curve_accumulates_the_chosen_clock():
    epochs = [{"seconds": 2.0, "cpu_seconds": 1.0, "val_recall": 0.2},
              {"seconds": 3.0, "cpu_seconds": 0.5, "val_recall": 0.4}]
    assert SC.time_curve(epochs, 0.05) == [[0.0, 0.05], [1.0, 0.2], [1.5, 0.4]]
    assert SC.time_curve(epochs, 0.05, clock="wall") == [[0.0, 0.05], [2.0, 0.2], [5.0, 0.4]]
    with pytest.raises(ValueError, match="clock must be one of cpu, wall"):
        SC.time_curve(epochs, 0.05, clock="gpu")


def test_recall_by_time_is_the_best_epoch_finished_by_then():
    curve = [[0.0, 0.1], [1.0, 0.3], [2.0, 0.25], [3.0, 0.5]]
    got = [SC.recall_by_time(curve, t) for t in (0.0, 0.99, 1.0, 2.5, 3.0, 99.0)]
    assert got == [0.1, 0.1, 0.3, 0.3, 0.5, 0.5]
    with pytest.raises(ValueError, match="budget >= 0"):
        SC.recall_by_time(curve, -1.0)
    other = [[0.0, 0.2], [0.5, 0.4]]
    assert SC.mean_curve([curve, other], [0.0, 1.0, 3.0]).tolist() == pytest.approx([0.15, 0.35, 0.45])


def test_mean_se_and_two_standard_errors():
    assert SC.mean_se([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0 / np.sqrt(3)))
    assert SC.mean_se([0.4]) == (0.4, 0.0)
    with pytest.raises(ValueError, match="non-empty"):
        SC.mean_se([])
    d = SC.beyond_two_se(0.5, 0.03, 0.4, 0.04)
    assert d["diff"] == pytest.approx(0.1) and d["diff_se"] == pytest.approx(0.05) and not d["beyond_2se"]
    assert SC.beyond_two_se(0.5, 0.03, 0.35, 0.04)["beyond_2se"]


@pytest.mark.parametrize("kwargs, match", [({"seeds": (0, 0)}, "seeds must be distinct"),
                                           ({"seeds": ()}, "seeds must be distinct"),
                                           ({"lrs": (1e-3, -1.0)}, "lrs must be positive"),
                                           ({"losses": ("full", "hinge")}, "losses must be distinct"),
                                           ({"clock": "gpu"}, "clock must be one of")])
def test_bad_arguments_are_refused_before_training(splits, kwargs, match):
    def make(seed):
        raise AssertionError("no model may be built for bad arguments")
    with pytest.raises(ValueError, match=match):
        SC.compare_softmax(make, *splits, BASE, progress=False, **kwargs)


# ---------------------------------------------------------------------------- training


def test_the_protocol_is_the_same_for_both_losses(result, splits):
    assert result["clock"] == "cpu" and result["seeds"] == list(SEEDS) and result["lrs"] == list(LRS)
    for loss in ("full", "sampled"):
        r = result[loss]
        by_lr = r["val_recall_by_lr"]
        assert set(by_lr) == {"0.03", "0.003"} and by_lr[f"{r['lr']:g}"] == max(by_lr.values())
        assert [run["seed"] for run in r["runs"]] == list(SEEDS)
        assert {run["lr"] for run in r["runs"]} == {r["lr"]}
        for run in r["runs"]:
            curve = np.asarray(run["curve"])
            assert len(curve) == run["epochs_run"] + 1 and curve[0, 0] == 0.0
            assert (np.diff(curve[:, 0]) > 0).all()
            assert run["epochs_run"] <= BASE.epochs and 1 <= run["epochs"] <= run["epochs_run"]
            assert run["val_recall"] == curve[run["epochs"], 1] == curve[1:, 1].max()  # the restored epoch
            assert run["seconds"] == curve[run["epochs"], 0] <= run["seconds_run"] == run["cpu_seconds_run"]
            stopped_early = run["epochs_run"] < BASE.epochs
            assert not stopped_early or run["epochs_run"] - run["epochs"] == BASE.patience
    initial = {s: evaluate_recall(model(s), *splits[1], k=BASE.eval_k) for s in SEEDS}
    assert all(run["curve"][0][1] == initial[run["seed"]] for loss in ("full", "sampled")
               for run in result[loss]["runs"])  # the same untrained start for both losses


def test_training_learns_the_planted_task(result, splits):
    chance = BASE.eval_k / 60
    for loss in ("full", "sampled"):
        for run in result[loss]["runs"]:
            assert run["test_recall"] > 2 * chance and run["val_recall"] > run["curve"][0][1]


def test_summaries_at_convergence_and_at_equal_time(result):
    conv = SC.at_convergence(result)
    for loss in ("full", "sampled"):
        runs = result[loss]["runs"]
        assert conv[loss]["recall"] == pytest.approx(np.mean([r["test_recall"] for r in runs]))
        se = np.std([r["test_recall"] for r in runs], ddof=1) / np.sqrt(3)
        assert conv[loss]["se"] == pytest.approx(se)
        assert conv[loss]["epochs"] == pytest.approx(np.mean([r["epochs"] for r in runs]))
        assert conv[loss]["seeds"] == 3 and conv[loss]["lr"] == result[loss]["lr"]
    eq = SC.at_equal_time(result)
    assert eq["budget_s"] == min(conv["full"]["seconds"], conv["sampled"]["seconds"]) and eq["clock"] == "cpu"
    for loss in ("full", "sampled"):
        at_budget = [SC.recall_by_time(r["curve"], eq["budget_s"]) for r in result[loss]["runs"]]
        assert eq[loss] == pytest.approx(np.mean(at_budget))
        assert eq[loss] <= max(r["val_recall"] for r in result[loss]["runs"])
    late = SC.at_equal_time(result, budget_s=1e9)  # every run finished: each seed's best validation recall
    for loss in ("full", "sampled"):
        assert late[loss] == pytest.approx(np.mean([r["val_recall"] for r in result[loss]["runs"]]))
    start = SC.at_equal_time(result, budget_s=0.0)
    assert start["full"] == start["sampled"]  # nothing trained yet: the same untrained models


def test_deterministic_for_fixed_seeds(result, splits):
    for loss in ("full", "sampled"):  # seed 0 at the chosen rate, trained again: the same run
        again = SC.compare_softmax(model, *splits, BASE, lrs=[result[loss]["lr"]], seeds=[0], losses=[loss],
                                   progress=False)[loss]["runs"][0]
        first = result[loss]["runs"][0]
        keys = ("seed", "lr", "test_recall", "val_recall", "epochs", "epochs_run")
        assert {k: again[k] for k in keys} == {k: first[k] for k in keys}
        assert [p[1] for p in again["curve"]] == [p[1] for p in first["curve"]]


# ---------------------------------------------------------------------------- on the tiny preset


def test_on_the_tiny_preset_with_the_pipelines_models(tmp_path, monkeypatch):
    """What notebook 03 does, at tiny: fresh models of a pipeline run's configuration
    (pipeline.untrained_candidate: deterministic in the seed), trained by compare_softmax."""
    from ytrec_lib import pipeline

    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    run = pipeline.candidate_model("tiny", 0, progress=False, init="random", epochs=1, tower=[16], dim=8,
                                   n_negatives=50)
    a, b, c = (pipeline.untrained_candidate(run, s) for s in (3, 3, 4))
    assert a.spec == run.model.spec and a.n_videos == run.model.n_videos and a.m == run.model.m
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    assert all(torch.equal(x, y) for x, y in pairs)
    assert not torch.equal(a.output.weight, c.output.weight)
    base = replace(run.config.train_config(0), epochs=30, patience=1)
    res = SC.compare_softmax(lambda s: pipeline.untrained_candidate(run, s), (run.examples("train"),
                             run.labels("train")), (run.examples("valid"), run.labels("valid")),
                             (run.examples("test"), run.labels("test")), base, lrs=[1e-2], seeds=[0, 1],
                             progress=False)
    conv, eq = SC.at_convergence(res), SC.at_equal_time(res)
    for loss in ("full", "sampled"):
        assert conv[loss]["seeds"] == 2 and 0 <= conv[loss]["recall"] <= 1
        assert all(r["epochs_run"] - r["epochs"] == 1 for r in res[loss]["runs"])  # early stopping ended it
        assert 0 <= eq[loss] <= 1
