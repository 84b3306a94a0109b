"""The figures of notebook 09 (scaling out) in ytrec_lib.plots: titled, labelled, drawable."""

from __future__ import annotations

from matplotlib.figure import Figure

from ytrec_lib import plots
from ytrec_lib.studies import scale_out as S


def assert_labelled(fig: Figure, n_axes: int) -> None:
    assert isinstance(fig, Figure) and len(fig.axes) == n_axes
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    fig.canvas.draw()  # draws without error


def test_allreduce_figure() -> None:
    fig = plots.nb09_allreduce([4096, 2**20, 2**24], [3e-4, 1.5e-3, 1.7e-2], 3e-4, 1e-9, 2)
    assert_labelled(fig, 1)
    assert "1.00 GB/s" in fig.axes[0].get_legend().get_texts()[1].get_text()


def test_cluster_figure() -> None:
    hours = S.cluster_hours(S.ClusterAssumptions(), 1e-10, 3e-4, 1e-9, machines=(1, 10, 100))
    fig = plots.nb09_cluster(hours)
    assert_labelled(fig, 2)
    assert len(fig.axes[0].lines[0].get_xdata()) == 3
