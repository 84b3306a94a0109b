"""The statistics of notebook 01's "mechanisms behind the paper's lessons" (ytrec_lib.data.describe):
the tail statistics against hand counts, mechanism_statistics against the single functions on the tiny
preset, mechanism_strengths' means and standard errors against numpy, and the section's figure."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ytrec_lib import plots
from ytrec_lib.data import datasets, describe
from ytrec_lib.data.presets import MECHANISM_OFF, preset_config
from ytrec_lib.data.simulator import simulate


def counted(counts: list[int]) -> SimpleNamespace:
    """A stand-in dataset whose video ``i`` is watched ``counts[i]`` times."""
    watches = pd.DataFrame({"video_id": np.repeat(np.arange(len(counts)), counts)})
    return SimpleNamespace(n_videos=len(counts), watches=lambda: watches)


@pytest.fixture(scope="module")
def tiny():
    # 28 days: tiny's 14 leave no video uploaded in the log that lived 7 to 14 days in it (lift NaN)
    return datasets.from_simulation(simulate(preset_config("tiny", n_days=28), 0, name="tiny",
                                             progress=False))


def test_tail_watch_share_counts_the_least_watched_half():
    ds = counted([0, 1, 2, 3, 10, 20])  # 36 watches; the least-watched 3 videos hold 0 + 1 + 2
    assert describe.tail_watch_share(ds) == pytest.approx(3 / 36)
    assert describe.tail_watch_share(counted([4] * 6)) == pytest.approx(0.5)  # equal watches: the tail's size
    assert describe.tail_watch_share(ds, tail=1.0) == pytest.approx(1.0)


def test_sparse_and_top_shares_against_hand_counts():
    ds = counted([0, 1, 4, 5, 6, 9, 0, 2, 3, 70])  # 100 watches over 10 videos
    assert describe.sparse_video_share(ds) == pytest.approx(6 / 10)  # 0, 1, 4, 0, 2, 3 are under 5
    assert describe.sparse_video_share(ds, min_watches=1) == pytest.approx(2 / 10)
    assert describe.top_watch_share(ds, 0.1) == pytest.approx(0.70)  # one video of ten
    assert describe.top_watch_share(ds, 0.2) == pytest.approx(0.79)


@pytest.mark.parametrize("call, words", [
    (lambda ds: describe.tail_watch_share(ds, tail=0.0), "tail must be a fraction"),
    (lambda ds: describe.top_watch_share(ds, top=1.5), "top must be a fraction"),
    (lambda ds: describe.sparse_video_share(ds, min_watches=0), "min_watches must be >= 1"),
])
def test_bad_fractions_raise_a_clear_error(call, words):
    with pytest.raises(ValueError, match=words):
        call(counted([1, 2]))


def test_mechanism_statistics_are_the_single_functions(tiny):
    got = describe.mechanism_statistics(tiny)
    assert list(got) == [s for names in describe.MECHANISM_STATISTICS.values() for s in names]
    assert got["fresh_watch_lift"] == describe.fresh_watch_lift(tiny)
    assert got["young_watch_share"] == describe.young_shares(tiny, 7.0)[0]
    assert got["ring_flow_gender_gap"] == describe.ring_flow_gender_gap(tiny)
    assert got["top10pct_watch_share"] == describe.top_watch_share(tiny, 0.1)
    assert all(np.isfinite(v) for v in got.values()), got


def test_mechanism_strengths_means_and_standard_errors():
    rng = np.random.default_rng(0)
    worlds = ["plain", "default", *(f"{m} off" for m in MECHANISM_OFF)]
    names = [s for group in describe.MECHANISM_STATISTICS.values() for s in group]
    rows = pd.DataFrame([{"world": w, "seed": s, "statistic": n, "value": rng.normal()}
                         for w in worlds for s in range(3) for n in names])
    out = describe.mechanism_strengths(rows, {m: f"{m} off" for m in MECHANISM_OFF})
    assert list(out.index) == [(m, s) for m, group in describe.MECHANISM_STATISTICS.items() for s in group]
    one = rows[(rows["world"] == "freshness off") & (rows["statistic"] == "fresh_watch_lift")]["value"]
    assert out.loc[("freshness", "fresh_watch_lift"), "off"] == pytest.approx(one.mean())
    assert out.loc[("freshness", "fresh_watch_lift"), "off_se"] == pytest.approx(one.std(ddof=1) / np.sqrt(3))
    assert out.loc[("tails", "tail_watch_share"), ["off", "off_se"]].isna().all()  # no off world given
    assert out[["plain", "default", "plain_se", "default_se"]].notna().all().all()


def test_mechanism_strengths_names_a_world_that_was_not_measured():
    rows = pd.DataFrame({"world": ["plain"], "seed": [0], "statistic": ["fresh_watch_lift"],
                         "value": [1.0]})
    with pytest.raises(ValueError, match="no rows for statistic 'fresh_watch_lift' in world 'default'"):
        describe.mechanism_strengths(rows, {})
    with pytest.raises(ValueError, match="columns world, seed, statistic and value"):
        describe.mechanism_strengths(rows.drop(columns="seed"), {})


def test_world_mechanisms_figure_has_a_labelled_panel_per_mechanism():
    bars = {"freshness": {"plain": (3.0, 0.1), "default": (14.0, 0.5), "freshness off": (1.2, 0.05)},
            "tails": {"plain": (0.1, 0.01), "default": (0.05, 0.01)}}
    fig = plots.world_mechanisms_figure(bars, {"freshness": "lift", "tails": "share"},
                                        {"freshness": (1.0, "no effect"), "tails": None}, n_seeds=3)
    assert len(fig.axes) == 2
    for ax, mechanism in zip(fig.axes, bars, strict=True):
        assert ax.get_title() == mechanism and ax.get_xlabel() and ax.get_ylabel()
        assert len(ax.patches) == len(bars[mechanism])
    assert fig.axes[0].get_legend() is not None and fig.axes[1].get_legend() is None  # the reference line
