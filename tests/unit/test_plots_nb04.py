"""Smoke tests of notebook 04's figures in ytrec_lib.plots: each has a title and labelled axes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ytrec_lib import plots


def _labelled(fig) -> None:
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_softmax_matrix_figure():
    rng = np.random.default_rng(0)
    W, topics = rng.standard_normal((50, 8)), np.repeat(np.arange(5), 10)
    fig = plots.softmax_matrix_figure(W, np.array([0, 3, 12, 40]), topics, rng.integers(0, 9, 50),
                                      rng.standard_normal(50))
    _labelled(fig)
    assert fig.axes[1].get_title() and fig.axes[1].get_xlabel() and fig.axes[1].get_ylabel()
    assert "8 × 4 of its 50 columns" in fig.axes[0].get_title()


def test_serve_steps_figure():
    timings = {s: np.linspace(0.1, 1.0, 20) for s in ("lookup_ms", "score_ms", "select_ms", "total_ms")}
    fig = plots.serve_steps_figure(timings, n_videos=6000, k=100)
    _labelled(fig)
    assert "20 users" in fig.axes[0].get_title()


def test_purity_figure():
    table = pd.DataFrame({"softmax columns": [0.5, 0.6, 0.5, 0.4], "item2vec": [0.8, 0.9, 0.8, 0.7]},
                         index=["overall", "head", "torso", "tail"])
    fig = plots.purity_figure(table, chance=0.05, k=10, n_videos=1234)
    _labelled(fig)
    assert "1,234 videos" in fig.axes[0].get_title()
