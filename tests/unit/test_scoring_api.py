"""The scoring API: a candidate model trained on given interactions (a Dataset, no preset name needed),
``scores`` and ``recommend`` in the dataset's own ids, with the history they exclude, and their errors."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ytrec_lib import pipeline
from ytrec_lib.data import datasets, real
from ytrec_lib.models.candidate import user_embeddings
from ytrec_lib.models.scoring import CandidateScorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import real_formats as rf  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"epochs": 2, "dim": 8, "tower": (16,), "progress": False}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "real_datasets.md"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("scoring")
    rf.write_movielens_small(d / "movielens-small", n_users=40, n_movies=60, per_user=15)
    with rf.data_dir_env(d):
        yield d


@pytest.fixture(scope="module")
def run(data_dir) -> pipeline.CandidateRun:
    return pipeline.candidate_model("movielens-small", 0, **TINY)


@pytest.fixture(scope="module")
def scorer(run) -> CandidateScorer:
    return run.scorer()


def ratings_by_user(folder: Path) -> dict[int, set[int]]:
    """userId -> the movieIds they rated, read from ratings.csv by the csv module (not the adapter)."""
    out: dict[int, set[int]] = {}
    with open(folder / "ratings.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(int(row["userId"]), set()).add(int(row["movieId"]))
    return out


def top_k_by_sort(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-k column indices of each row by a full stable sort (ties to the lower index): (n, k)."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def all_users(run) -> np.ndarray:
    return run.dataset.users["source_id"].to_numpy()


# ----------------------------------------------------------------------------------------------------
# scores and recommend
# ----------------------------------------------------------------------------------------------------


def test_scores_are_float32_logits_and_recommend_is_their_top_k(run, scorer) -> None:
    users = all_users(run)
    s = scorer.scores(users)
    assert s.shape == (len(users), run.dataset.n_videos) and s.dtype == np.float32 and np.isfinite(s).all()
    movie_ids = run.dataset.videos["source_id"].to_numpy()
    got = scorer.recommend(users, 10, exclude_seen=False)
    np.testing.assert_array_equal(got, movie_ids[top_k_by_sort(s, 10)])
    # the same logits as the model's own forward pass on the store's serving view ([u, 1] . [v, b])
    u = user_embeddings(run.model, run.builder, np.arange(len(users)), run.split.train_cutoff)
    v = run.model.augmented_video_embeddings().numpy()
    np.testing.assert_allclose(s, u @ v.T, rtol=1e-4, atol=1e-4)


def test_exclude_seen_removes_exactly_the_training_watches(run, scorer) -> None:
    """History = every training watch (leave-last-out): never recommended; the held-out valid and test
    watches are not history. exclude_seen equals masking those scores."""
    users = all_users(run)
    movie_ids = run.dataset.videos["source_id"].to_numpy()
    train = run.split.train
    expected = {int(u): set(movie_ids[train["label"].to_numpy()[train["user_id"].to_numpy() == i]].tolist())
                for i, u in enumerate(users)}
    seen = scorer.seen(users)
    assert [set(x.tolist()) for x in seen] == [expected[int(u)] for u in users]
    for part in (run.split.valid, run.split.test):   # held-out watches are targets, not history
        for i, label in zip(part["user_id"], part["label"], strict=True):
            assert movie_ids[label] not in expected[int(users[i])]
    k = 20
    got = scorer.recommend(users, k)
    assert not any(set(row.tolist()) & expected[int(u)] for u, row in zip(users, got, strict=True))
    masked = scorer.scores(users)
    for i, u in enumerate(users):
        masked[i, np.isin(movie_ids, list(expected[int(u)]))] = -np.inf
    np.testing.assert_array_equal(got, movie_ids[top_k_by_sort(masked, k)])


def test_own_ids_round_trip_through_the_files(run, scorer, data_dir) -> None:
    """The files' movieIds are sparse (not 0..n-1) and userIds start at 1: what comes back are the
    files' ids, and each user's history plus held-out watches are exactly what they rated."""
    rated = ratings_by_user(data_dir / "movielens-small")
    movie_ids = run.dataset.videos["source_id"].to_numpy()
    assert set(movie_ids.tolist()) != set(range(len(movie_ids)))        # not already 0..n-1
    users = np.array(sorted(rated))
    np.testing.assert_array_equal(scorer.user_ids[scorer.internal_users(users)], users)
    held = {}
    for part in (run.split.valid, run.split.test):
        for i, label in zip(part["user_id"], part["label"], strict=True):
            held.setdefault(int(scorer.user_ids[i]), set()).add(int(movie_ids[label]))
    for u, seen in zip(users, scorer.seen(users), strict=True):
        assert set(seen.tolist()) | held.get(int(u), set()) == rated[int(u)]
    every_movie = set().union(*rated.values())
    assert set(scorer.recommend(users, 5).ravel().tolist()) <= set(movie_ids.tolist())
    assert set(scorer.recommend(users[:3], 60, exclude_seen=False)[0].tolist()) == set(movie_ids.tolist())
    assert every_movie <= set(movie_ids.tolist())


def test_a_row_that_runs_out_of_unseen_items_ends_in_minus_one(run, scorer) -> None:
    users = all_users(run)
    got = scorer.recommend(users, run.dataset.n_videos)
    n_seen = np.array([len(x) for x in scorer.seen(users)])
    np.testing.assert_array_equal((got == -1).sum(axis=1), n_seen)


# ----------------------------------------------------------------------------------------------------
# training on given interactions
# ----------------------------------------------------------------------------------------------------


def test_a_dataset_object_gives_the_model_its_preset_name_gives(run, data_dir) -> None:
    ds = real.load_real("movielens-small")
    again = pipeline.candidate_model(ds, **TINY)
    assert again.key == run.key and again.from_cache and again.path == run.path
    assert again.config == run.config and again.split.kind == "leave_last_out"
    for name, tensor in run.model.state_dict().items():
        assert bool((again.model.state_dict()[name] == tensor).all()), name
    named = pipeline.candidate_model("movielens-small", 1, **TINY)     # a real preset's seed seeds training
    given = pipeline.candidate_model(ds, 1, **TINY)
    assert given.key == named.key != run.key and given.from_cache


def test_a_simulated_dataset_keeps_its_seed_in_the_key(data_dir) -> None:
    """The simulator's fingerprint (its settings) does not hold the seed: seed 1's world trained with
    seed 0 must not share the key of seed 0's world trained with seed 0."""
    fast = {**TINY, "epochs": 1, "max_train_examples": 200, "init": "random", "cache": False}
    world1 = datasets.load("tiny", seed=1, progress=False)
    assert pipeline.candidate_model(world1, **fast).key == pipeline.candidate_model("tiny", 1, **fast).key
    assert pipeline.candidate_model(world1, 0, **fast).key != pipeline.candidate_model("tiny", 0, **fast).key


def two_taste_frame() -> pd.DataFrame:
    """16 users with string ids; users u0..u7 watch items 1001..1010, u8..u15 items 2001..2010."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(16):
        items = (1001 if u < 8 else 2001) + rng.permutation(10)[:7]
        rows += [(f"u{u}", int(item), 1_600_000_000 + 3600 * (24 * u + j)) for j, item in enumerate(items)]
    return pd.DataFrame(rows, columns=["user", "item", "when"])


def test_from_interactions_trains_and_recommends_in_the_callers_ids(data_dir) -> None:
    frame = two_taste_frame()
    ds = datasets.from_interactions(frame, user="user", item="item", time="when", name="two-tastes")
    assert ds.meta["source"] == "real" and ds.n_users == 16 and ds.n_videos == 20
    assert sorted(ds.users["source_id"]) == sorted(frame["user"].unique())
    assert sorted(ds.videos["source_id"]) == sorted(frame["item"].unique())
    run = pipeline.candidate_model(ds, **TINY)
    assert run.split.kind == "leave_last_out" and run.path.name.startswith("candidate-two-tastes-seed0-")
    sc = run.scorer()
    got = sc.recommend(["u0", "u9"], 3)
    assert got.shape == (2, 3) and got.dtype == np.int64
    assert set(got.ravel().tolist()) <= set(frame["item"].tolist())
    for u, row, seen in zip(["u0", "u9"], got, sc.seen(["u0", "u9"]), strict=True):
        assert not set(row.tolist()) & set(seen.tolist())
        assert set(seen.tolist()) < set(frame.loc[frame["user"] == u, "item"].tolist())   # 2 held out
    assert sc.scores(["u3"]).shape == (1, 20)


def test_from_interactions_string_items_ratings_threshold_and_datetimes() -> None:
    frame = two_taste_frame().assign(item=lambda f: "m" + f["item"].astype(str),
                                     stars=lambda f: np.arange(len(f)) % 5 + 1.0)
    as_dates = frame.assign(when=pd.to_datetime(frame["when"], unit="s"))
    a = datasets.from_interactions(frame, user="user", item="item", time="when")
    b = datasets.from_interactions(as_dates, user="user", item="item", time="when")
    pd.testing.assert_frame_equal(a.impressions, b.impressions)
    liked = datasets.from_interactions(frame, "user", "item", "when", rating="stars", threshold=4)
    assert len(liked.impressions) == int((frame["stars"] >= 4).sum()) and liked.meta["threshold"] == 4.0
    assert liked.n_videos == a.n_videos          # items whose rows were all dropped stay in the catalogue
    assert (liked.impressions["rating"] >= 4).all()
    own = liked.videos["source_id"].to_numpy()[liked.impressions["video_id"].to_numpy()]
    kept = frame[frame["stars"] >= 4]
    assert sorted(own.tolist()) == sorted(kept["item"].tolist())


def test_from_interactions_is_keyed_by_its_content() -> None:
    frame = two_taste_frame()
    key = datasets.from_interactions(frame, "user", "item", "when").meta["generator_version"]
    assert datasets.from_interactions(frame.copy(), "user", "item", "when").meta["generator_version"] == key
    changed = frame.copy()
    changed.loc[5, "item"] = 2001
    assert datasets.from_interactions(changed, "user", "item", "when").meta["generator_version"] != key


# ----------------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call,error,message", [
    (lambda s: s.scores([10_000]), KeyError, r"unknown user id\(s\) \[10000\].*users.source_id"),
    (lambda s: s.recommend(["1"], 5), KeyError, r"unknown user id\(s\) \['1'\]"),
    (lambda s: s.scores([]), ValueError, "user_ids is empty; pass at least one user id"),
    (lambda s: s.scores(1), ValueError, r"1-D array.*wrap one id in a list"),
    (lambda s: s.recommend([1], 0), ValueError, "k must be an integer from 1 to the 60 items"),
    (lambda s: s.recommend([1], 61), ValueError, "k must be an integer from 1 to the 60 items"),
    (lambda s: s.recommend([1], True), ValueError, "k must be an integer"),
])
def test_scorer_errors_say_what_is_wrong(scorer, call, error, message) -> None:
    with pytest.raises(error, match=message):
        call(scorer)


@pytest.mark.parametrize("edit,kwargs,error,message", [
    (lambda f: f, {"user": "userId"}, ValueError,
     r"no column for user='userId'; its columns are \['user', 'item', 'when'\]"),
    (lambda f: f.iloc[:0], {}, ValueError, "the frame has no rows"),
    (lambda f: f.assign(when="yesterday"), {}, ValueError,
     r"'when' \(time\) holds .* not times.*pd.to_datetime"),
    (lambda f: f.assign(when=f["when"].where(f.index != 3)), {}, ValueError,
     r"'when' \(time\) has 1 missing value\(s\), the first in row 3; drop or fill.*dropna"),
    (lambda f: f.assign(item=f["item"].astype(object).where(f.index != 0)), {}, ValueError,
     r"'item' \(item\) has 1 missing value"),
    (lambda f: f, {"threshold": 4}, ValueError, "threshold=4 needs a rating column"),
    (lambda f: f.assign(r=1.0), {"rating": "r", "threshold": 4}, ValueError,
     r"none of the 112 ratings is >= the threshold 4 \(the highest is 1\)"),
    (lambda f: f, {"name": "my data/1"}, ValueError, "name must be letters, digits"),
    (lambda f: f.to_dict(), {}, TypeError, "expected a pandas DataFrame"),
])
def test_from_interactions_errors_say_what_to_do(edit, kwargs, error, message) -> None:
    args = {"user": "user", "item": "item", "time": "when", **kwargs}
    with pytest.raises(error, match=message):
        datasets.from_interactions(edit(two_taste_frame()), **args)


def test_candidate_model_refuses_what_is_not_a_dataset() -> None:
    with pytest.raises(TypeError, match="preset name or a ytrec_lib.data Dataset.*from_interactions"):
        pipeline.candidate_model(two_taste_frame(), epochs=1)


# ----------------------------------------------------------------------------------------------------
# the docs' example runs
# ----------------------------------------------------------------------------------------------------


def test_the_docs_scoring_example_runs(data_dir, capsys) -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Scoring your own users", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, str(DOCS), "exec"), {})
    out = capsys.readouterr().out
    assert "(3, 8) float32" in out and "recommend" in out
