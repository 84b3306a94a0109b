"""Figures of notebook 02 (ytrec_lib.plots, item2vec section): they draw, with titles and labelled axes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ytrec_lib import plots


def assert_labelled(fig, n_axes: int) -> None:
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(axes) == n_axes
    for ax in axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    fig.canvas.draw()


@pytest.fixture()
def counts() -> np.ndarray:
    return np.random.default_rng(0).zipf(1.5, 200)


def test_noise_figure(counts: np.ndarray) -> None:
    noise = {a: counts ** a / (counts ** a).sum() for a in (0.0, 0.75)}
    keep = {t: np.minimum(1.0, np.sqrt(t / (counts / counts.sum()))) for t in (1e-3, 1e-4)}
    fig = plots.item2vec_noise_figure(noise, keep, counts)
    assert_labelled(fig, 2)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["alpha = 0.0", "alpha = 0.75"]


def test_loss_figure() -> None:
    history = [{"epoch": 0, "words": w, "loss": 4.0 / (1 + w)} for w in range(0, 5000, 500)]
    fig = plots.item2vec_loss_figure(history)
    assert_labelled(fig, 1)
    assert len(fig.axes[0].lines[0].get_xdata()) == 10


def test_purity_figure() -> None:
    table = pd.DataFrame({"overall": [0.6, 0.7], "head": [0.7, 0.9], "torso": [0.6, 0.8], "tail": [0.5, 0.5]},
                         index=["item2vec", "svd"])
    fig = plots.item2vec_purity_figure(table, chance=0.04, k=10)
    assert_labelled(fig, 1)
    assert "purity@10" in fig.axes[0].get_title()
    assert len(fig.axes[0].patches) == 8  # 2 methods x 4 bands


def test_map_figure() -> None:
    xy = np.random.default_rng(1).standard_normal((50, 2))
    fig = plots.item2vec_map_figure(xy, np.arange(50) % 4)
    assert_labelled(fig, 1)
    assert "50 most watched" in fig.axes[0].get_title()


def test_sweep_figure() -> None:
    fig = plots.item2vec_sweep_figure({0.0: 0.5, 0.75: 0.48}, {0.0: 0.48, 1e-4: 0.5}, k=10)
    assert_labelled(fig, 2)
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["t = 0", "t = 0.0001"]
