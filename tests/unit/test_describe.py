"""ytrec_lib.data.describe (the statistics of notebook 01) against plain pandas on the tiny preset, and
the smoke test of notebook 01's figures (titles and labelled axes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ytrec_lib import metrics, plots
from ytrec_lib.data import datasets, describe, splits
from ytrec_lib.data.presets import preset_config
from ytrec_lib.data.simulator import simulate


@pytest.fixture(scope="module")
def ds():
    return datasets.from_simulation(simulate(preset_config("tiny"), 0, name="tiny", progress=False))


def test_tables_fingerprint_sees_one_changed_value(ds):
    fp = describe.tables_fingerprint(ds)
    assert len(fp) == 64 and fp == describe.tables_fingerprint(ds)
    again = datasets.from_simulation(simulate(preset_config("tiny"), 0, name="tiny", progress=False))
    assert describe.tables_fingerprint(again) == fp
    changed = datasets.from_simulation(simulate(preset_config("tiny"), 0, name="tiny", progress=False))
    changed.impressions.loc[0, "watch_time"] += 1.0
    assert describe.tables_fingerprint(changed) != fp


def test_view_counts_are_watches_per_video(ds):
    views = describe.view_counts(ds)
    assert views.shape == (ds.n_videos,) and views.dtype == np.int64
    ref = ds.watches().groupby("video_id").size()
    assert views.sum() == len(ds.watches())
    assert (views[ref.index.to_numpy()] == ref.to_numpy()).all()


def test_category_interest_sums_topic_interest_per_category(ds):
    ci = describe.category_interest(ds)
    assert ci.shape == (ds.n_users, ds.meta["n_categories"]) and ci.dtype == np.float64
    interest = ds.truth.user_interests                                       # (n_users, n_topics)
    cat_of_topic = ds.videos.groupby("topic")["category"].first()
    cats = np.array([cat_of_topic.get(t, 0) for t in range(ds.meta["n_topics"])])
    for c in range(ds.meta["n_categories"]):
        np.testing.assert_allclose(ci[:, c], interest[:, cats == c].sum(axis=1), rtol=1e-5, atol=1e-6)


def test_age_bands_are_right_closed():
    bands = describe.age_bands(pd.Series([1, 18, 19, 25, 34, 35, 50, 51, 99]))
    # (0, 18], (18, 25], ...: an age on an edge falls in the band below it
    assert bands.astype(str).tolist() == ["<18", "<18", "18-24", "18-24", "25-34", "25-34", "35-49",
                                          "50+", "50+"]


def test_consecutive_pairs_stay_within_a_user():
    seq = pd.DataFrame({"user_id": [0, 0, 0, 1, 2, 2], "video_id": [5, 6, 7, 8, 9, 3]})
    prev, nxt = describe.consecutive_pairs(seq)
    assert prev.tolist() == [5, 6, 9] and nxt.tolist() == [6, 7, 3]


def test_young_shares_against_a_loop(ds):
    young_watch, young_catalogue = describe.young_shares(ds, days=7)
    w = ds.watches()
    up = ds.videos["upload_time"].to_numpy()
    ages = w["time"].to_numpy() - up[w["video_id"]]
    assert young_watch == pytest.approx(float((ages < 7).mean()))
    shares = []
    for t in w["time"].to_numpy()[:200]:
        avail = up < np.floor(t)
        shares.append((avail & (up >= t - 7)).sum() / max(avail.sum(), 1))
    sub = datasets.Dataset(users=ds.users, videos=ds.videos, impressions=w.iloc[:200], searches=ds.searches,
                           meta=ds.meta)
    assert describe.young_shares(sub, days=7)[1] == pytest.approx(np.mean(shares))
    assert 0.0 <= young_catalogue <= 1.0


def test_by_clickbait_quintile(ds):
    by_cb = describe.by_clickbait_quintile(ds)
    assert list(by_cb.columns) == ["click-through", "watched fraction"]
    assert list(by_cb.index) == [0, 1, 2, 3, 4]
    imp = ds.impressions
    quintile = pd.qcut(imp["video_id"].map(ds.videos["clickbait"]), 5, labels=False)
    clicks = (by_cb["click-through"] * imp.groupby(quintile).size()).sum()
    assert clicks == pytest.approx(imp["clicked"].sum())
    assert ((by_cb["watched fraction"] > 0) & (by_cb["watched fraction"] <= 1.0 + 1e-6)).all()


def _labelled(fig):
    """Every panel has a title and both axis labels; a colour bar or a second y axis its own label."""
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    for ax in panels:
        twin = any(ax is not other and ax.get_position().bounds == other.get_position().bounds
                   and other.get_title() for other in panels)
        assert ax.get_ylabel(), ax
        if not twin:
            assert ax.get_title() and ax.get_xlabel(), ax


def test_notebook_01_figures_have_titles_and_labelled_axes(ds):
    v = ds.videos
    days = np.arange(0, 10)
    available = np.searchsorted(np.sort(v["upload_time"].to_numpy()), days)
    per_creator = v.groupby("creator_id").size().sort_values(ascending=False)
    views = {"UGC": describe.view_counts(ds)}
    head = {"UGC": metrics.long_tail(views["UGC"])}
    seq = ds.watches().sort_values(["user_id", "time"])
    by_age = pd.DataFrame(describe.category_interest(ds)).groupby(
        describe.age_bands(ds.users["age"]).to_numpy(), observed=True).mean()
    ctr = ds.impressions.groupby(["source", "position"], observed=True)["clicked"].mean().unstack(0)
    tokens = np.concatenate(ds.searches["tokens"].to_numpy())
    figures = [
        plots.catalogue_growth_figure(days, available, per_creator),
        plots.long_tail_figure(views, {"UGC": metrics.lorenz_curve(views["UGC"])}, head),
        plots.interest_by_age_figure(by_age),
        plots.search_figure(ds.searches["tokens"].map(len), tokens),
        plots.impression_log_figure(ctr, describe.by_clickbait_quintile(ds)),
        plots.split_timeline_figure(splits.next_watch_split(ds, seed=0)),
        plots.recall_bars_figure({"popularity": 0.1, "oracle": 0.5}, 100, 1234),
    ]
    for fig in figures:
        _labelled(fig)
    timelines = plots.watch_timelines_figure(seq, v["topic"].to_numpy(), seq["user_id"].unique()[:2])
    assert len(timelines.axes) == 2 and all(ax.get_title() and ax.get_ylabel() for ax in timelines.axes)
    assert timelines.axes[-1].get_xlabel() == "time (days)"


def test_share_uploaded_after_counts_labels_the_model_never_saw(ds):
    upload = ds.videos["upload_time"].to_numpy()
    cutoff = float(np.median(upload))
    ids = np.array([int(np.argmin(upload)), int(np.argmax(upload)), int(np.argmax(upload))])
    assert describe.share_uploaded_after(ds, ids, cutoff) == pytest.approx(2 / 3)
    assert np.isnan(describe.share_uploaded_after(ds, np.zeros(0, np.int64), cutoff))
    with pytest.raises(ValueError, match="video ids must lie in"):
        describe.share_uploaded_after(ds, np.array([len(upload)]), cutoff)
