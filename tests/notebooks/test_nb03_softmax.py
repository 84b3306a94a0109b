"""Notebook 03 §3 at the ci preset: full against sampled softmax at convergence and at equal CPU time.

The assertions read 03's recorded results: the protocol was the same for both losses (one learning-rate
grid, the rate chosen on validation, three seeds, every run ended by early stopping), the equal-time
budget is one number for both and the recalls read at it agree with the recorded curves, and the
verdicts printed under the figure follow from the values. No winner is asserted: the notebook reports
which loss is ahead and whether by more than two standard errors; the test checks that report.
"""

import nbformat
import numpy as np
import pytest

from ytrec_lib.pipeline import CandidateConfig
from ytrec_lib.studies.softmax_convergence import recall_by_time

LOSSES = ("full", "sampled")
PATIENCE = CandidateConfig().patience  # the trainer's patience of 03's models at ci


@pytest.fixture(scope="module")
def r(notebook_results):
    return notebook_results("03_candidate_generation")


def test_records_both_comparisons_and_keeps_the_per_epoch_one(r):
    for key in ("softmax_at_convergence", "softmax_at_equal_time", "softmax_runs", "full_vs_sampled",
                "throughput_ratio_sampled_full"):
        assert key in r, key
    conv, eq = r["softmax_at_convergence"], r["softmax_at_equal_time"]
    for loss in LOSSES:
        c = conv[loss]
        assert 0 < c["recall"] <= 1 and c["se"] >= 0 and c["seeds"] == 3, loss
        assert 1 <= c["epochs"] and c["seconds"] > 0, loss
        assert 0 < eq[loss] <= 1 and eq[f"{loss}_se"] >= 0, loss
    assert eq["clock"] == "cpu" == r["softmax_runs"]["clock"]


def test_the_same_protocol_trained_both_to_convergence(r):
    runs = r["softmax_runs"]
    assert len(runs["lrs"]) >= 2 and len(runs["seeds"]) == 3
    for loss in LOSSES:
        by_lr = runs[loss]["val_recall_by_lr"]
        assert sorted(by_lr) == sorted(f"{lr:g}" for lr in runs["lrs"]), loss  # the one grid
        assert by_lr[f"{runs[loss]['lr']:g}"] == max(by_lr.values()), loss   # chosen on validation
        assert [x["seed"] for x in runs[loss]["runs"]] == runs["seeds"], loss
        for x in runs[loss]["runs"]:
            assert x["lr"] == runs[loss]["lr"]
            assert x["epochs_run"] - x["epochs"] == PATIENCE, (loss, x["seed"])  # early stopping ended it
            assert x["val_recall"] == max(p[1] for p in x["curve"][1:])


def test_equal_time_budget_is_one_number_read_off_the_curves(r):
    conv, eq, runs = r["softmax_at_convergence"], r["softmax_at_equal_time"], r["softmax_runs"]
    assert eq["budget_s"] == min(conv[loss]["seconds"] for loss in LOSSES)  # the faster one's convergence
    for loss in LOSSES:
        at_budget = [recall_by_time(x["curve"], eq["budget_s"]) for x in runs[loss]["runs"]]
        assert eq[loss] == pytest.approx(np.mean(at_budget)), loss
        seconds = [x["seconds"] for x in runs[loss]["runs"]]
        assert conv[loss]["seconds"] == pytest.approx(np.mean(seconds)), loss
        assert eq[loss] <= np.mean([x["val_recall"] for x in runs[loss]["runs"]]) + 1e-12, loss


def test_verdicts_follow_from_the_values(r, notebook_build):
    conv, eq = r["softmax_at_convergence"], r["softmax_at_equal_time"]
    for key, (a, sa, b, sb) in {
        "softmax_convergence_difference": (conv["sampled"]["recall"], conv["sampled"]["se"],
                                           conv["full"]["recall"], conv["full"]["se"]),
        "softmax_equal_time_difference": (eq["sampled"], eq["sampled_se"], eq["full"], eq["full_se"]),
        "softmax_convergence_seconds_difference": (conv["sampled"]["seconds"], conv["sampled"]["seconds_se"],
                                                   conv["full"]["seconds"], conv["full"]["seconds_se"]),
    }.items():
        d = r[key]
        assert d["diff"] == pytest.approx(a - b) and d["diff_se"] == pytest.approx(np.hypot(sa, sb)), key
        assert d["beyond_2se"] == (abs(d["diff"]) > 2 * d["diff_se"]), key
    nb = nbformat.read(notebook_build / "notebooks" / "03_candidate_generation.ipynb", as_version=4)
    said = [o.get("text", "") for c in nb.cells if c.get("id") == "sm3b-say" for o in c.get("outputs", [])]
    lines = "".join(said).splitlines()
    for start, key in (("Trained to convergence", "softmax_convergence_difference"),
                       ("It gets there in", "softmax_convergence_seconds_difference"),
                       ("Given only the CPU time", "softmax_equal_time_difference")):
        line = next(ln for ln in lines if ln.startswith(start))
        verdict = "beyond two standard errors" if r[key]["beyond_2se"] else "within two standard errors"
        assert verdict in line, line
