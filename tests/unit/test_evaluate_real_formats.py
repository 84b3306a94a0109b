"""The standard split on every real format: ``evaluate`` end to end, the held-out items, the cold-start guard.

Small files in the published formats of MovieLens-1M, MovieLens-100K and KuaiRand-Pure
(tests/fixtures/real_formats.py) under a temporary ``$YTREC_DATA_DIR``; movielens-small is covered in
test_evaluation.py. ``splits.default_split`` picks leave-last-out for them and the temporal next-watch
split for the simulator; :func:`splits.empty_history_share` shows why: under a global cutoff most
MovieLens test users have no history at all (they rated everything after the cutoff).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ytrec_lib import pipeline
from ytrec_lib.course import cli
from ytrec_lib.data import datasets, real, splits
from ytrec_lib.data.presets import preset_config
from ytrec_lib.data.realtables import impressions_table
from ytrec_lib.data.simulator import simulate
from ytrec_lib.models import baselines as B
from ytrec_lib.studies import evaluation as E

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import real_formats as rf  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

FORMATS = ["movielens-1m", "movielens-100k", "kuairand-pure"]
MODELS = ["popularity", "itemknn", "ease"]
METRICS = ["recall@10", "recall@50", "recall@100", "ndcg@10"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("realsplit")
    rf.write_movielens_1m(d / "movielens-1m", n_users=60, n_movies=80, per_user=15)
    rf.write_movielens_100k(d / "movielens-100k", n_users=60, n_movies=80, per_user=15)
    rf.write_kuairand(d / "kuairand-pure", n_users=40, n_videos=60, per_user=40)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YTREC_DATA_DIR", str(d))
        yield d


@pytest.fixture(scope="module")
def loaded(data_dir) -> dict[str, datasets.Dataset]:
    return {name: real.load_real(name, progress=False) for name in FORMATS}


@pytest.mark.parametrize("name", FORMATS)
def test_evaluate_cli_json_on_each_format(name: str, data_dir, capsys) -> None:
    assert cli.main(["evaluate", "--preset", name, "--models", ",".join(MODELS), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {*MODELS, "split"}
    for model in MODELS:
        entry = out[model]
        for m in METRICS:
            assert 0.0 <= entry[m] <= 1.0 and entry[f"{m}_se"] >= 0.0, (model, m)
        assert entry["recall@10"] <= entry["recall@50"] <= entry["recall@100"]
    assert out["popularity"]["params"] == {} and set(out["ease"]["params"]) == {"lam"}
    assert set(out["itemknn"]["params"]) == {"n_neighbors", "n_recent", "shrink"}
    s = out["split"]
    assert s["kind"] == "leave_last_out" and s["seeds"] == 1
    assert s["valid"] == s["test"] > 0 and s["train_watches"] == s["train"]
    assert s["empty_history_share"] == 0.0
    assert set(s) == {"kind", "users", "items", "train", "train_watches", "valid", "test", "short_users",
                      "empty_history_share", "seeds", "same_split_every_seed"}


@pytest.mark.parametrize("name", FORMATS)
def test_held_out_items_are_rankable_and_unseen(name: str, data_dir) -> None:
    ds = pipeline.dataset(name, progress=False)
    task = E.evaluation_task(ds)
    sp = task.split
    assert isinstance(sp, splits.LeaveLastOutSplit) and sp.kind == "leave_last_out"
    tu, tv = task.watches[0], task.watches[1]
    for u, h, y, yv in zip(task.test.users, task.test.histories, task.test.labels, task.valid.labels,
                           strict=True):
        mine = tv[tu == u]
        assert y not in mine and yv not in mine, (u, y)      # never among the user's training rows
        assert y not in h and h[-1] == yv                     # the ranking excludes history, not the label
        assert sorted(h[:-1].tolist()) == sorted(mine.tolist())
    # rank every video: each test label must be reachable (nothing it should not be excluded from)
    ranked = B.MostPopular().fit(task.watches, n_videos=task.n_videos).recommend(
        task.test.users, task.n_videos, histories=task.test.histories)
    assert all(y in row for y, row in zip(task.test.labels, ranked, strict=True))
    # the fitted log holds no valid / test watch and nothing of a user after their validation time
    rows = splits.training_watches(ds, sp)
    assert len(rows) == len(sp.train) == task.sizes["train_watches"]
    assert not rows.index.isin(sp.heldout_rows).any()
    valid_t = sp.valid.set_index("user_id")["time"]
    after = rows["time"].to_numpy() > valid_t.reindex(rows["user_id"]).to_numpy()
    assert not after.any()


def test_kuairand_repeat_watches_leave_the_split(loaded) -> None:
    ds = loaded["kuairand-pure"]
    w = ds.watches()
    n_repeats = int(w.duplicated(["user_id", "video_id"]).sum())
    assert n_repeats > 0, "the KuaiRand fixture should hold repeat watches"
    sp = splits.leave_last_out_split(ds)
    assert sp.repeat_rows.size == n_repeats
    assert len(sp.train) + len(sp.valid) + len(sp.test) + n_repeats == len(w)
    parts = pd.concat([sp.train, sp.valid, sp.test])
    assert not parts.duplicated(["user_id", "label"]).any()
    view = splits.training_view(ds, sp).watches()
    assert len(view) == len(sp.train) and not view.index.isin(sp.repeat_rows).any()


def test_repeat_of_the_last_watch_on_a_hand_made_log() -> None:
    # user 0 watches 1, 2, 3, then 1 again: the test item is 3 (the last new video), not the repeat
    events = [(0, 1, 1.0), (0, 2, 2.0), (0, 3, 3.0), (0, 1, 4.0), (1, 0, 1.0), (1, 2, 2.0), (1, 4, 3.0)]
    u, v, t = (np.array(x) for x in zip(*events, strict=True))
    imp = impressions_table(u, v, t, np.ones(len(u), bool), np.ones(len(u)))
    ds = datasets.Dataset(users=pd.DataFrame({"user_id": np.arange(2)}),
                          videos=pd.DataFrame({"video_id": np.arange(5)}), impressions=imp,
                          searches=pd.DataFrame({"user_id": np.zeros(0, np.int64), "time": np.zeros(0),
                                                 "session_id": np.zeros(0, np.int64),
                                                 "tokens": pd.Series([], dtype=object)}),
                          meta={"name": "hand-repeats", "source": "real", "n_users": 2, "n_videos": 5,
                                "n_tokens": 1, "n_regions": 1, "t_end": 5.0})
    sp = splits.default_split(ds)
    assert sp.kind == "leave_last_out"
    assert sp.test.set_index("user_id")["label"].to_dict() == {0: 3, 1: 4}
    assert sp.valid.set_index("user_id")["label"].to_dict() == {0: 2, 1: 2}
    assert sp.train["label"].tolist() == [1, 0] and sp.repeat_rows.size == 1
    assert not splits.training_view(ds, sp).watches()["time"].eq(4.0).any()


def test_default_split_simulator_unchanged() -> None:
    tiny = datasets.from_simulation(simulate(preset_config("tiny"), 0, name="tiny", progress=False))
    assert not splits.is_real_dataset(tiny)
    a, b = splits.default_split(tiny, seed=3), splits.next_watch_split(tiny, seed=3)
    assert type(a) is splits.Split and a.kind == b.kind == "next_watch"
    for part in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part))
    assert a.train_cutoff == b.train_cutoff and a.exclude_label == b.exclude_label
    w = tiny.watches()
    pd.testing.assert_frame_equal(splits.training_watches(tiny, a), w[w["time"] < a.train_cutoff])


@pytest.mark.parametrize("name", FORMATS)
def test_real_formats_pick_leave_last_out_and_keep_histories(name: str, loaded) -> None:
    ds = loaded[name]
    sp = splits.default_split(ds, seed=5)
    assert isinstance(sp, splits.LeaveLastOutSplit)
    assert splits.is_real_dataset(ds) and splits.is_real_dataset(splits.training_view(ds, sp))
    assert splits.empty_history_share(sp) == 0.0 and splits.empty_history_share(sp, "valid") == 0.0


@pytest.mark.parametrize("name", ["movielens-1m", "movielens-100k"])
def test_global_cutoff_leaves_most_movielens_test_users_without_history(name: str, loaded) -> None:
    """Why the protocol changed: MovieLens users rate in a burst, so those active after a global cutoff
    are mostly new; the next-watch split asks them for a 'next' watch with nothing before it."""
    old = splits.next_watch_split(loaded[name], seed=0)
    assert splits.empty_history_share(old) >= 0.5
    assert splits.empty_history_share(splits.default_split(loaded[name])) == 0.0


def test_empty_history_share_by_hand() -> None:
    train = pd.DataFrame({"user_id": [0, 0, 1], "time": [1.0, 2.0, 5.0], "label": [1, 2, 3]})
    test = pd.DataFrame({"user_id": [0, 1, 2], "time": [3.0, 4.0, 1.0], "label": [4, 4, 4],
                         "label_time": [3.0, 4.0, 1.0]})
    sp = splits.Split(train=train, valid=test.iloc[:0], test=test, train_cutoff=6.0, kind="next_watch")
    assert splits.empty_history_share(sp) == pytest.approx(2 / 3)  # user 1's only row is later; user 2 none
    assert np.isnan(splits.empty_history_share(sp, "valid"))
    with pytest.raises(ValueError, match="part must be"):
        splits.empty_history_share(sp, "train")


def test_table_prints_the_share(data_dir) -> None:
    result = E.evaluate("movielens-100k", ["popularity"], progress=False)
    assert "test users with no training history 0.0%" in E.format_table(result)
