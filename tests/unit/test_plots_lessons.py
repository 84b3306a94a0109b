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
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["every mechanism on", "interactions off"]
    on_line = ax.get_lines()[0]
    assert list(on_line.get_xdata()) == [0, 1, 2, 3, 4]
    fig.canvas.draw()  # renders (the NaN standard errors draw no bar)
    without = plots.lessons_map_by_depth([0, 3], [0.02, 0.03], [0.001, 0.002])
    assert len(without.axes[0].get_legend().get_texts()) == 1


def test_recall_by_world_draws_a_bar_per_model_and_world():
    worlds = {"world on": {"model": (0.17, 0.02), "itemknn": (0.10, 0.02), "ease": (0.09, 0.01)},
              "world off": {"model": (0.16, 0.03), "itemknn": (0.14, 0.01)}}
    labels = {"itemknn": "item-kNN", "ease": "EASE", "model": "model"}
    fig = plots.recall_by_world(worlds, labels, 3, "Against the baselines")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["item-kNN", "model"]  # EASE: one world only
    assert len(ax.patches) == 4 and [t.get_text() for t in ax.get_legend().get_texts()] == list(worlds)
    assert ax.get_title().startswith("Against the baselines\n") and "3 seeds" in ax.get_title()
    assert "recall@100" in ax.get_ylabel()
    fig.canvas.draw()
    long = plots.recall_by_world(worlds, {"model": "most popular, last 7 days"}, 3, "t")
    assert long.axes[0].get_xticklabels()[0].get_text() == "most popular,\nlast 7 days"  # wrapped
