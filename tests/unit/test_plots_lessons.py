"""The figure of notebook 03b (the paper's lessons) in ytrec_lib.plots."""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from ytrec_lib import plots


def test_map_by_depth_with_error_bars_and_the_ablation():
    fig = plots.lessons_map_by_depth([0, 1, 2, 3, 4], [0.02, 0.022, 0.024, 0.027, 0.025],
                                     [0.001, math.nan, math.nan, 0.002, math.nan],
                                     {0: (0.02, 0.001), 3: (0.019, 0.002)}, "interactions off")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() and "MAP@100" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lessons' world", "interactions off"]
    on_line = ax.get_lines()[0]
    assert list(on_line.get_xdata()) == [0, 1, 2, 3, 4]
    fig.canvas.draw()  # renders (the NaN standard errors draw no bar)
    without = plots.lessons_map_by_depth([0, 3], [0.02, 0.03], [0.001, 0.002])
    assert len(without.axes[0].get_legend().get_texts()) == 1
