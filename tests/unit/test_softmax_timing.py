"""Tests of ytrec_lib.studies.softmax_timing: the full against sampled softmax step-time benchmark."""

from __future__ import annotations

import numpy as np

from ytrec_lib.studies.softmax_timing import softmax_step_time, step_time_table


def test_step_time_function_runs_for_both_objectives():
    for loss in ("full", "sampled"):
        t = softmax_step_time(500, loss, batch_size=16, tower=(8,), n_negatives=20, n_steps=1)
        assert np.isfinite(t) and t > 0


def test_step_time_table_rows():
    rows = step_time_table([300], progress=False, batch_size=8, tower=(8,), n_negatives=10, n_steps=1)
    assert len(rows) == 1 and rows[0]["n_classes"] == 300
    assert rows[0]["full_ms"] > 0 and rows[0]["sampled_ms"] > 0 and rows[0]["speedup"] > 0
