"""The figures of notebook 07 (ranking) in ytrec_lib.plots: every axis has a title and labelled axes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from ytrec_lib import plots


def assert_labelled(fig: Figure, n_axes: int) -> None:
    assert isinstance(fig, Figure) and len(fig.axes) == n_axes
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    fig.canvas.draw()  # draws without error


def test_quantile_normalisation_figure():
    rng = np.random.default_rng(0)
    raw = {"video_age": (rng.exponential(5, 300), "days"), "duration": (rng.exponential(300, 300), "s")}
    fig = plots.quantile_normalisation_figure(raw, {name: rng.random(300) for name in raw})
    assert_labelled(fig, 4)
    assert fig.axes[0].get_xlabel() == "video_age (days)"


def test_calibration_figure():
    calib = pd.DataFrame({"predicted": [1.0, 5.0, 20.0], "truth": [0.8, 4.0, 15.0],
                          "truth_odds": [1.0, 6.0, 30.0]})
    fig = plots.calibration_figure(calib, "realised")
    assert_labelled(fig, 1)
    ax = fig.axes[0]
    assert "realised" in ax.get_ylabel() and ax.get_xscale() == ax.get_yscale() == "log"
    assert len(ax.get_legend().get_texts()) == 3


def test_hidden_layers_and_drop_one_figures():
    layers = pd.Series({"none": 0.3, "32": 0.28, "64-32": 0.27})
    assert_labelled(plots.hidden_layers_figure(layers), 1)
    ax = plots.hidden_layers_figure(layers, noise=0.02).axes[0]
    assert ax.get_ylim()[0] == 0.0  # bars from zero
    band = ax.patches[-1]  # the noise band: from the best loss up by the noise
    assert band.get_y() == pytest.approx(0.27) and band.get_height() == pytest.approx(0.02)
    assert "training noise" in ax.get_legend().get_texts()[0].get_text()
    delta = pd.Series({"video": 0.05, "duration": 0.01, "source": -0.002})
    fig = plots.drop_one_figure(delta)
    assert_labelled(fig, 1)
    bars = fig.axes[0].patches
    assert len(bars) == 3 and bars[0].get_width() == -0.002  # smallest at the bottom
