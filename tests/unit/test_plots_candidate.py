"""The figures of notebook 03 (candidate generation) in ytrec_lib.plots: every axis says what it shows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from ytrec_lib import plots


def _check(fig: Figure, n_axes: int = 1) -> None:
    assert isinstance(fig, Figure) and len(fig.axes) == n_axes
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel()
    fig.canvas.draw()  # renders without error


def test_recall_at_k_curves():
    table = pd.DataFrame({"recall@10": [0.1, 0.2], "recall@100": [0.3, 0.5]}, index=["a", "b"])
    fig = plots.candidate_recall_at_k(table, [10, 100], 1234, "ci")
    _check(fig)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "recall@K" and "1,234 test users (ci)" in ax.get_title()
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]


def test_step_times_has_two_labelled_panels():
    steps = pd.DataFrame({"n_classes": [1000, 10000], "full_ms": [1.0, 9.0], "sampled_ms": [0.5, 0.6],
                          "speedup": [2.0, 15.0]})
    fig = plots.candidate_step_times(steps, 2000)
    _check(fig, 2)
    assert all(ax.get_ylabel() for ax in fig.axes)


def test_map_by_depth_and_freshness():
    fig = plots.candidate_map_by_depth({"watches": [0.1, 0.2, 0.3], "all": [0.2, 0.3, 0.4]}, [0, 1, 2])
    _check(fig)
    assert fig.axes[0].get_ylabel() == "MAP@100" and len(fig.axes[0].get_lines()) == 2
    curves = {"model": np.linspace(0.2, 0.1, 14), "empirical": np.linspace(0.3, 0.1, 14)}
    fig = plots.candidate_freshness(curves)
    _check(fig)
    assert fig.axes[0].get_ylabel() and fig.axes[0].get_lines()[1].get_color() == "k"


@pytest.mark.parametrize("draw", [plots.candidate_age_transforms, plots.candidate_fresh_share])
def test_bar_charts(draw):
    fig = draw({"one": 0.2, "two": 0.3})
    _check(fig)
    assert len(fig.axes[0].patches) == 2
