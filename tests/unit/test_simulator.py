"""The simulated UGC world: determinism, schema, invariants, and the ground truth against the log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ytrec_lib.data import datasets, presets, simulator
from ytrec_lib.data.presets import PLAIN_WORLD, SimConfig, preset_config
from ytrec_lib.data.simulator import first_unique, simulate

# a world big enough for statistics, still about a second to generate
MID = dict(n_users=1500, n_videos=1500, n_creators=200, n_topics=15, n_categories=5, n_days=20)


@pytest.fixture(scope="module")
def tiny():
    return simulate(preset_config("tiny"), 0, name="tiny", progress=False)


@pytest.fixture(scope="module")
def mid():
    """The plain world (presets.PLAIN_WORLD: interests stand still) at MID sizes: the click, watch and
    next-watch models checked against the log where no drift moves the user between two of its days."""
    config = preset_config("tiny", **MID, **PLAIN_WORLD)
    return datasets.from_simulation(simulate(config, 0, name="mid", progress=False))


def test_same_seed_same_tables_other_seed_differs(tiny):
    again = simulate(preset_config("tiny"), 0, name="tiny", progress=False)
    other = simulate(preset_config("tiny"), 1, name="tiny", progress=False)
    for table in ("users", "videos", "impressions", "searches"):
        pd.testing.assert_frame_equal(getattr(tiny, table), getattr(again, table))
    assert not tiny.impressions[["user_id", "video_id"]].equals(other.impressions[["user_id", "video_id"]])
    assert not np.array_equal(tiny.users["age"].to_numpy(), other.users["age"].to_numpy())


def test_schema_follows_the_data_contract(tiny):
    imp, v, u, s = tiny.impressions, tiny.videos, tiny.users, tiny.searches
    assert imp["user_id"].dtype == np.int64 and imp["video_id"].dtype == np.int64
    assert imp["time"].dtype == np.float64 and imp["position"].dtype == np.int16
    assert imp["clicked"].dtype == bool and imp["watch_time"].dtype == np.float32
    assert set(imp["source"].cat.categories) == {"home", "search"}
    assert u["region"].dtype == np.int16 and u["gender"].dtype == np.int8 and u["age"].dtype == np.float32
    assert v["upload_time"].dtype == np.float64 and v["topic"].dtype == np.int16
    assert np.array_equal(u["user_id"].to_numpy(), np.arange(len(u)))
    assert np.array_equal(v["video_id"].to_numpy(), np.arange(len(v)))
    key = imp[["time", "session_id", "position"]].to_numpy()
    assert (np.diff(imp["time"].to_numpy()) >= 0).all(), "impressions are sorted by time"
    assert len(np.unique(key, axis=0)) == len(imp)
    assert all(t.dtype == np.int32 and 1 <= t.size <= 3 for t in s["tokens"])
    assert tiny.meta["n_videos"] == len(v) and tiny.meta["n_users"] == len(u)


def test_log_invariants(tiny):
    imp, v = tiny.impressions, tiny.videos
    cfg = tiny.world.cfg
    up = v["upload_time"].to_numpy()[imp["video_id"].to_numpy()]
    assert (up < np.floor(imp["time"].to_numpy())).all(), "a video is shown only once it is uploaded"
    wt = imp["watch_time"].to_numpy()
    dur = v["duration"].to_numpy()[imp["video_id"].to_numpy()]
    clicked = imp["clicked"].to_numpy()
    assert (wt[~clicked] == 0).all() and (wt[clicked] > 0).all() and (wt <= dur + 1e-3).all()
    home = imp["source"].to_numpy() == "home"
    assert imp["position"][home].max() < cfg.feed_size and imp["position"][~home].max() < cfg.search_results
    # a slate never shows a video twice; with rewatch_factor 0 nobody watches a video twice
    assert not imp.duplicated(["session_id", "video_id"]).any()
    assert not imp[clicked].duplicated(["user_id", "video_id"]).any()
    assert imp["time"].max() < cfg.n_days and imp["time"].min() >= 0
    # catalogue: continuous uploads during the log and a back catalogue before it
    assert (up.min() < 0) and ((v["upload_time"] > 0) & (v["upload_time"] < cfg.n_days)).sum() > 0.3 * len(v)


def test_series_episodes_share_topic_and_are_in_upload_order(tiny):
    v, w = tiny.videos, tiny.world
    nxt = w.v_next_episode
    has = np.nonzero(nxt >= 0)[0]
    assert has.size > 0
    assert (w.v_upload[nxt[has]] >= w.v_upload[has]).all()
    assert (w.v_topic[nxt[has]] == w.v_topic[has]).all()
    assert (v["episode"].to_numpy()[nxt[has]] == v["episode"].to_numpy()[has] + 1).all()


@given(st.lists(st.lists(st.integers(-1, 6), min_size=1, max_size=8), min_size=1, max_size=6),
       st.integers(1, 5))
@settings(max_examples=60, deadline=None)
def test_first_unique_matches_a_python_reference(rows, k):
    m = max(len(r) for r in rows)
    mat = np.array([r + [-1] * (m - len(r)) for r in rows], dtype=np.int64)
    got = first_unique(mat, k)
    for r, g in zip(mat, got, strict=True):
        seen: list[int] = []
        for x in r:
            if x >= 0 and x not in seen:
                seen.append(int(x))
        expect = (seen[:k] + [-1] * k)[:k]
        assert g.tolist() == expect


def test_next_watch_probs_are_distributions_over_available_unwatched_videos(mid):
    truth, w = mid.truth, mid.watches()
    users = w["user_id"].to_numpy()[-50:]
    times = w["time"].to_numpy()[-50:]
    P = truth.next_watch_probs(users, times)
    assert P.shape == (50, mid.n_videos) and P.dtype == np.float32
    assert np.allclose(P.sum(axis=1), 1.0, atol=1e-4) and (P >= 0).all()
    not_out = mid.videos["upload_time"].to_numpy()[None, :] >= np.floor(times)[:, None]
    assert (P[not_out] == 0).all()
    for i in range(0, 50, 7):
        seen = w[(w["user_id"] == users[i]) & (w["time"] < times[i])]["video_id"].to_numpy()
        assert (P[i, seen] == 0).all()
    # batching does not change the answer
    assert np.allclose(P, truth.next_watch_probs(users, times, batch_size=7))


def test_next_watch_probs_are_calibrated_against_the_log(mid):
    """The truth describes what the simulator does: the actual next watches land where it puts mass."""
    w = mid.watches()
    rng = np.random.default_rng(0)
    idx = rng.choice(np.nonzero(w["time"].to_numpy() > 3)[0], 1500, replace=False)
    u, t, lab = (w[c].to_numpy()[idx] for c in ("user_id", "time", "video_id"))
    P = mid.truth.next_watch_probs(u, t)
    hit = np.zeros_like(P, dtype=bool)
    hit[np.arange(lab.size), lab] = True
    edges = np.array([1e-3, 3e-3, 1e-2, 3e-2, 1.0])
    b = np.digitize(P, edges)
    for k in range(1, edges.size):
        m = b == k
        assert hit[m].sum() >= 30, "enough labels per bin for the check"
        ratio = hit[m].mean() / P[m].mean()
        assert 0.7 < ratio < 1.4, f"bin {edges[k - 1]:.0e}..{edges[k]:.0e}: observed/predicted {ratio:.2f}"
    # and it is far better than popularity at predicting the next watch
    pop = np.bincount(w["video_id"].to_numpy(), minlength=mid.n_videos) + 1.0
    assert np.log(P[np.arange(lab.size), lab] + 1e-12).mean() > np.log(pop[lab] / pop.sum()).mean() + 1.0


def test_expected_watch_time_and_click_probability_match_the_log(mid):
    imp = mid.impressions.sample(40000, random_state=0)
    args = (imp["user_id"].to_numpy(), imp["video_id"].to_numpy(), imp["time"].to_numpy(),
            imp["position"].to_numpy())
    search = imp["source"].to_numpy() == "search"
    p = np.where(search, mid.truth.click_probability(*args, source="search"),
                 mid.truth.click_probability(*args))
    e = np.where(search, mid.truth.expected_watch_time(*args, source="search"),
                 mid.truth.expected_watch_time(*args))
    q = pd.qcut(p, 5, labels=False)
    for k in range(5):
        m = q == k
        assert abs(imp["clicked"].to_numpy()[m].mean() / p[m].mean() - 1) < 0.15
    q = pd.qcut(e, 5, labels=False)
    for k in range(2, 5):
        m = q == k
        assert abs(imp["watch_time"].to_numpy()[m].mean() / e[m].mean() - 1) < 0.2


def test_click_and_watch_models_differ_on_clickbait(mid):
    t = mid.truth
    n = 2000
    rng = np.random.default_rng(1)
    u, v = rng.integers(0, mid.n_users, n), rng.integers(0, mid.n_videos, n)
    times = np.full(n, 19.5)
    cb = mid.videos["clickbait"].to_numpy()[v]
    p = t.click_probability(u, v, times)
    new = p > 0                                         # not watched before (no rewatches)
    cb, u, v, p, times = cb[new], u[new], v[new], p[new], times[new]
    ratio = t.expected_watch_time(u, v, times) / p / mid.videos["duration"].to_numpy()[v]  # mean fraction
    assert np.corrcoef(cb, np.log(p))[0, 1] > 0.1       # clickbait raises clicks ...
    assert np.corrcoef(cb, ratio)[0, 1] < -0.1          # ... and lowers the share of the video watched


def test_studio_head_is_stronger_than_ugc():
    def top1(style):
        out = simulate(preset_config("tiny", style, **MID), 0, progress=False)
        w = out.impressions[out.impressions["clicked"]]
        c = np.sort(np.bincount(w["video_id"], minlength=len(out.videos)))[::-1]
        return c[: len(c) // 100].sum() / c.sum()
    assert top1("studio") > 1.3 * top1("ugc")


@pytest.mark.parametrize("changes, words", [
    (dict(n_users=0), "n_users"),
    (dict(n_videos=-5), "n_videos"),
    (dict(n_topics=50, n_videos=20, n_creators=5, n_categories=4), "more topics"),
    (dict(n_categories=20, n_topics=10), "more categories"),
    (dict(p_search=1.5), "p_search"),
    (dict(policy_mix=(0.5, 0.5, 0.5)), "policy_mix"),
    (dict(style="cinema"), "style"),
    (dict(n_days=2.5), "n_days"),
])
def test_bad_settings_raise_a_clear_error(changes, words):
    with pytest.raises(ValueError, match=words):
        SimConfig(**changes)


def test_preset_errors_and_names():
    assert presets.known_presets()[:4] == ["tiny", "ci", "small", "large"]
    assert preset_config("large").n_videos >= 1_000_000
    with pytest.raises(ValueError, match="known presets: tiny, ci"):
        preset_config("huge")
    with pytest.raises(ValueError, match="seed"):
        simulate(preset_config("tiny"), -1, progress=False)


def test_truth_rejects_bad_queries(mid):
    with pytest.raises(KeyError, match="user ids"):
        mid.truth.next_watch_probs([mid.n_users], [1.0])
    with pytest.raises(ValueError, match="same length"):
        mid.truth.next_watch_probs([0, 1], [1.0])
    with pytest.raises(ValueError, match="finite"):
        mid.truth.next_watch_probs([0], [np.nan])
    with pytest.raises(KeyError, match="video ids"):
        mid.truth.expected_watch_time([0], [-1], [1.0])


def test_generator_version_is_an_int():
    assert isinstance(simulator.GENERATOR_VERSION, int)


def test_without_drift_interests_do_not_move(mid):
    u = np.arange(10)
    assert np.allclose(mid.truth.interests_at(u, np.full(10, 0.5)), mid.truth.user_interests[u], atol=1e-6)
    assert np.allclose(mid.truth.interests_at(u, np.full(10, 19.5)), mid.truth.user_interests[u], atol=1e-6)


def test_interest_drift_moves_what_users_watch():
    ds = datasets.from_simulation(
        simulate(preset_config("tiny", **MID, interest_drift=2.0), 0, name="drift", progress=False))
    w, world = ds.watches(), ds.truth.world
    u = np.arange(ds.n_users)
    early = ds.truth.interests_at(u, np.zeros(ds.n_users))
    late = ds.truth.interests_at(u, np.full(ds.n_users, 19.0))
    assert np.allclose(early.sum(axis=1), 1, atol=1e-5) and np.abs(late - early).sum(axis=1).mean() > 0.3
    # the two code paths agree: interest_term == log(n_topics * interests_at)
    topics = np.arange(ds.meta["n_topics"])
    got = world.interest_term(u[:, None], topics[None, :], np.full((ds.n_users, 1), 19.0))
    assert np.allclose(got, np.log(ds.meta["n_topics"] * late), atol=1e-4)
    # users watch more of the topics their interest drifts towards, late in the log
    T = ds.meta["n_topics"]
    topic = world.v_topic[w["video_id"].to_numpy()]
    share = np.zeros((2, T))
    for i, m in enumerate((w["time"].to_numpy() < 6, w["time"].to_numpy() >= 14)):
        share[i] = np.bincount(topic[m], minlength=T) / m.sum()
    expected_change = (late - early).mean(axis=0)
    assert np.corrcoef(share[1] - share[0], expected_change)[0, 1] > 0.5
