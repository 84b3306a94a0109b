"""The equal-time figure of notebook 03 §3b (ytrec_lib.plots.softmax_time_curves)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ytrec_lib import plots


def test_time_curves_show_each_seed_the_means_and_the_budget():
    curves = {"full": [[[0.0, 0.01], [1.0, 0.1], [2.0, 0.2]], [[0.0, 0.02], [1.2, 0.12]]],
              "sampled": [[[0.0, 0.01], [0.5, 0.05], [1.0, 0.15]], [[0.0, 0.02], [0.6, 0.1]]]}
    grid = np.linspace(0, 2, 5)
    means = {loss: (grid, np.full(5, 0.1)) for loss in curves}
    fig = plots.softmax_time_curves(curves, means, budget_s=1.1)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert "CPU" in ax.get_title() and "CPU seconds" in ax.get_xlabel() and ax.get_ylabel()
    lines = ax.get_lines()
    assert len(lines) == 2 * 2 + 2 + 1  # a line per seed and loss, a mean per loss, the budget
    assert list(lines[-1].get_xdata()) == [1.1, 1.1]  # the budget's vertical line
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"{loss} softmax, {what}" for loss in ("full", "sampled")
                      for what in ("each seed (per epoch)", "best so far (mean over seeds)")] + \
        ["equal-time budget (1.1 s)"]
    wall = plots.softmax_time_curves(curves, means, budget_s=1.1, clock="wall")
    assert "wall-clock seconds" in wall.axes[0].get_xlabel()
    fig.canvas.draw()
