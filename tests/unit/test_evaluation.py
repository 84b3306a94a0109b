"""``python -m ytrec_lib evaluate``: the protocol on tiny and on MovieLens-format files, the JSON, the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ytrec_lib.course import cli
from ytrec_lib.studies import evaluation as E

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import real_formats as rf  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

BASELINES = ["popularity", "itemknn", "rp3b", "ease", "item2vec_avg"]
METRICS = ["recall@10", "recall@50", "recall@100", "ndcg@10"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("evaldata")
    rf.write_movielens_small(d / "movielens-small", n_users=30, n_movies=50, per_user=12)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YTREC_DATA_DIR", str(d))
        yield d


@pytest.fixture(scope="module")
def tiny_result(data_dir) -> dict:
    return E.evaluate("tiny", BASELINES, progress=False)


def _check_metrics(entry: dict) -> None:
    for m in METRICS:
        assert 0.0 <= entry[m] <= 1.0 and entry[f"{m}_se"] >= 0.0
    assert entry["recall@10"] <= entry["recall@50"] <= entry["recall@100"]
    assert entry["seconds"] >= 0.0


def test_tiny_json_shape(tiny_result) -> None:
    assert set(tiny_result) == {*BASELINES, "split"}
    for name in BASELINES:
        _check_metrics(tiny_result[name])
    s = tiny_result["split"]
    assert s["kind"] == "next_watch" and s["items"] == 600 and s["seeds"] == 1
    assert s["test"] > 0 and s["valid"] > 0 and s["short_users"] == 0
    assert set(tiny_result["ease"]["params"]) == {"lam"}
    assert set(tiny_result["rp3b"]["params"]) == {"alpha", "beta", "n_neighbors"}
    json.dumps(tiny_result)  # serialisable


def test_tiny_models_beat_nothing_and_table_prints(tiny_result) -> None:
    assert max(tiny_result[m]["recall@100"] for m in BASELINES) > 100 / 600  # above random
    table = E.format_table(tiny_result)
    assert "split next_watch" in table and all(m in table for m in BASELINES)


def test_queries_exclude_and_hold_out_correctly(data_dir) -> None:
    from ytrec_lib import pipeline

    task = E.evaluation_task(pipeline.dataset("movielens-small", progress=False))
    assert task.split.kind == "leave_last_out"
    for u, h, y, hv in zip(task.test.users, task.test.histories, task.valid.labels, task.valid.histories,
                           strict=True):
        assert h[-1] == y and h[:-1].tolist() == hv.tolist()
        mine = task.watches[1][task.watches[0] == u]
        assert sorted(hv.tolist()) == sorted(mine.tolist())


def test_real_format_files(data_dir) -> None:
    params = E.parse_params(["candidate.epochs=2"])
    result = E.evaluate("movielens-small", [*BASELINES, "candidate"], params=params, progress=False)
    for name in [*BASELINES, "candidate"]:
        _check_metrics(result[name])
    assert result["candidate"]["params"]["epochs"] == 2
    s = result["split"]
    assert s["kind"] == "leave_last_out" and s["valid"] == s["test"] > 0
    assert s["train"] + s["valid"] + s["test"] == s["train_watches"] + 2 * s["test"]
    assert "candidate" in E.format_table(result)


def test_cli_json_is_one_object(data_dir, capsys) -> None:
    assert cli.main(["evaluate", "--preset", "tiny", "--models", "popularity,ease", "--param",
                     "ease.lam=50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"popularity", "ease", "split"} and out["ease"]["params"] == {"lam": 50}


@pytest.mark.parametrize(("argv", "says"), [
    (["--models", "popularity,bogus"], "valid: popularity, itemknn, rp3b, ease, item2vec_avg, candidate"),
    (["--param", "ease.lambda=3"], "valid names: itemknn.n_neighbors"),
    (["--param", "ease.lam"], "NAME=VALUE"),
])
def test_cli_errors_are_one_line(argv, says, capsys) -> None:
    assert cli.main(["evaluate", "--preset", "tiny", *argv]) == 1
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


def test_parse_params_values() -> None:
    p = E.parse_params(["itemknn.n_recent=none,10", "rp3b.beta=0.25", "candidate.epochs=2"])
    assert p["itemknn.n_recent"] == (None, 10) and p["rp3b.beta"] == (0.25,) and p["candidate.epochs"] == (2,)
    assert p["ease.lam"] == E.GRIDS["ease.lam"]


def test_seeds_combine_mean_of_means_and_se_across_seeds() -> None:
    runs = [{"recall@10": 0.2, "recall@10_se": 0.05, "seconds": 1.0, "params": {"a": 1}},
            {"recall@10": 0.4, "recall@10_se": 0.05, "seconds": 3.0, "params": {"a": 2}}]
    out = E._combine(runs)
    assert out["recall@10"] == pytest.approx(0.3)
    assert out["recall@10_se"] == pytest.approx(np.std([0.2, 0.4], ddof=1) / np.sqrt(2))
    assert out["seconds"] == 2.0 and out["params"] == [{"a": 1}, {"a": 2}]
    assert E._combine([{"skipped": "x"}, {"skipped": "x"}]) == {"skipped": "x"}
    once = E._combine([{"ndcg@10": 0.1, "seconds": 1.0, "params": {}}] * 3)  # 0.1 * 3 / 3 != 0.1
    assert once["ndcg@10"] == 0.1 and once["ndcg@10_se"] == 0.0


def test_candidate_on_a_simulator_preset(data_dir) -> None:
    params = E.parse_params(["candidate.epochs=1", "candidate.max_train_examples=300"])
    result = E.evaluate("tiny", ["candidate"], params=params, progress=False)
    _check_metrics(result["candidate"])
    assert result["candidate"]["params"]["epochs"] == 1


def test_difference_by_hand() -> None:
    a = [np.array([1.0, 0.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.0, 0.0])]
    b = [np.array([0.0, 0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0, 0.0])]
    d = E._difference(a, b)
    assert d["difference"] == pytest.approx(0.5)  # seed means 0.75 - 0.25 and 0.75 - 0.25
    assert d["se_seeds"] == 0.0  # the same difference on both seeds
    per_user = np.std([1.0, 0.0, 0.0, 1.0], ddof=1) / 2  # the paired differences of either seed
    assert d["se_users"] == pytest.approx(per_user) and d["se"] == pytest.approx(per_user)
    assert d["z"] == pytest.approx(0.5 / per_user)
    same = E._difference([np.ones(3)], [np.ones(3)])
    assert same["difference"] == 0.0 and same["z"] is None


def _result(**models: dict) -> dict:
    split = {"kind": "leave_last_out", "users": 10, "items": 50, "train": 30, "train_watches": 30,
             "valid": 8, "test": 8, "short_users": 2, "empty_history_share": 0.0, "seeds": 3}
    return {**models, "split": split}


def _entry(r100: float, se: float = 0.01) -> dict:
    out = {"recall@10": r100 / 4, "recall@50": r100 / 2, "recall@100": r100, "ndcg@10": r100 / 8,
           "seconds": 1.0, "params": {}}
    return {**out, **{f"{m}_se": se for m in METRICS}}


def test_summary_sentence_is_generated_from_the_values() -> None:
    result = _result(candidate=_entry(0.554, 0.012), itemknn=_entry(0.505, 0.0), ease=_entry(0.553, 0.0))
    result["summary"] = {"metric": "recall@100", "candidate_vs": {
        "itemknn": {"difference": 0.049, "se": 0.02, "z": 2.45}, "ease": {"difference": 0.001, "se": 0.02,
                                                                          "z": 0.05}}}
    text = E.summary_sentence(result)
    assert text.startswith("The candidate model's recall@100 is 0.5540 ± 0.0120 (mean ± SE over 3 seeds)")
    assert "+0.0490 against tuned item-kNN's 0.5050 ± 0.0000 (+2.5 SEs: above)" in text
    assert "+0.0010 against tuned EASE's 0.5530 ± 0.0000 (+0.1 SEs: within 2 SEs" in text
    result["summary"]["candidate_vs"]["itemknn"]["z"] = -2.0
    assert "(-2.0 SEs: below)" in E.summary_sentence(result)


def test_table_reports_short_users_empty_histories_and_zeros() -> None:
    result = _result(item2vec_avg=_entry(0.0, 0.0), popularity=_entry(0.2))
    table = E.format_table(result)
    assert "Short histories: 2 of 10 users have fewer than 3 different videos" in table
    zeros = "item2vec_avg: recall@10, recall@50, recall@100, ndcg@10 = 0 because none of its top lists"
    assert zeros in table
    assert "popularity:" not in table.split("\n", 2)[2] and "Empty histories" not in table
    result["split"].update(kind="next_watch", empty_history_share=1.0)
    table = E.format_table(result)
    assert "Short histories" not in table
    assert "Empty histories: 100.0% of test users" in table
    assert "the item2vec average by item id order" in table
    assert "= 0 because every test user's history is empty and it ranks from the history" in table


def test_evaluate_summary_on_real_format_files(data_dir) -> None:
    params = E.parse_params(["candidate.epochs=1"])
    result = E.evaluate("movielens-small", ["popularity", "candidate"], params=params, progress=False)
    d = result["summary"]["candidate_vs"]["popularity"]
    c, p = result["candidate"]["recall@100"], result["popularity"]["recall@100"]
    assert d["difference"] == pytest.approx(c - p) and d["se_seeds"] == 0.0  # one seed
    assert d["se"] == pytest.approx(d["se_users"]) and (d["z"] is None) == (d["se"] == 0)
    assert result["summary"]["sentence"] in E.format_table(result)
    assert "summary" not in E.evaluate("movielens-small", ["popularity"], progress=False)



def test_seedless_models_are_fitted_once_on_a_seed_independent_split(data_dir) -> None:
    from ytrec_lib import pipeline

    two = E.evaluate("movielens-small", ["itemknn", "item2vec_avg"], seeds=2, progress=False)
    one = E.evaluate("movielens-small", ["itemknn"], progress=False)
    assert two["split"]["same_split_every_seed"] and "fitted once" in E.format_table(two)
    knn = two["itemknn"]
    assert knn["recall@100"] == one["itemknn"]["recall@100"] and knn["recall@100_se"] == 0
    assert knn["params"] == [one["itemknn"]["params"]] * 2
    task = E.evaluation_task(pipeline.dataset("movielens-small", progress=False))
    assert E._same_task(task, task) and not E._same_task(None, task)
    other = E.Task(**{**task.__dict__, "test": E.Queries(task.test.users, task.test.labels[::-1],
                                                         task.test.histories)})
    assert not E._same_task(task, other)


def test_rank_model_on_a_subset_matches_run_model(data_dir) -> None:
    """`rank_model` on a subset of the test queries at a deeper cut-off ranks each query as the full run
    does (rows of the same model); `score_ranking` of it gives `run_model`'s numbers on those rows."""
    from ytrec_lib import pipeline

    task = E.evaluation_task(pipeline.dataset("tiny", 0, progress=False), 0)
    full, _ = E.rank_model("itemknn", task)
    idx = np.arange(0, len(task.test.labels), 3)
    sub = E.Task(**{**task.__dict__, "test": task.test.take(idx), "depth": 200})
    deep, chosen = E.rank_model("itemknn", sub)
    assert deep.shape == (idx.size, 200) and np.array_equal(deep[:, :100], full[idx])
    assert np.array_equal(sub.test.users, task.test.users[idx])
    pairs = zip(sub.test.histories, idx, strict=True)
    assert all(np.array_equal(h, task.test.histories[i]) for h, i in pairs)
    scores = E.score_ranking(deep, sub.test.labels)
    by_hand = np.mean([lab in row[:100] for row, lab in zip(deep, sub.test.labels, strict=True)])
    assert scores["recall@100"] == pytest.approx(by_hand) and scores["recall@100_se"] > 0
    assert chosen == E.run_model("itemknn", task, dict(E.GRIDS))["params"]
    with pytest.raises(ValueError, match="unknown model 'knn'"):
        E.rank_model("knn", task)


def test_standing_calls_a_difference_only_beyond_two_standard_errors() -> None:
    rows = {"candidate": {"recall@100": 0.50, "recall@100_se": 0.01},
            "ease": {"recall@100": 0.46, "recall@100_se": 0.01},
            "popularity": {"recall@100": 0.30, "recall@100_se": 0.01}, "split": {"kind": "x"}}
    s = E.standing(rows)
    assert s["best"] == "ease" and s["diff"] == pytest.approx(0.04)
    assert s["diff_se"] == pytest.approx(np.hypot(0.01, 0.01)) and s["verdict"] == "beats"  # 0.04 > 0.028
    rows["ease"]["recall@100"] = 0.48                                                       # 0.02 < 0.028
    assert E.standing(rows)["verdict"] == "level with"
    rows["ease"]["recall@100"] = 0.55
    assert E.standing(rows)["verdict"] == "below"
    assert E.standing(rows, others=["popularity"])["verdict"] == "beats"
    with pytest.raises(ValueError, match="at least one of"):
        E.standing(rows, others=["rp3b"])


def test_evaluate_first_seed_shifts_the_seeds(monkeypatch) -> None:
    """Seeds first_seed .. first_seed + seeds - 1 each load their dataset and run each model (stubbed)."""
    from types import SimpleNamespace

    from ytrec_lib import pipeline

    loaded, ran = [], []
    monkeypatch.setattr(pipeline, "dataset", lambda preset, seed, progress: loaded.append(seed) or seed)
    monkeypatch.setattr(E, "evaluation_task", lambda ds, seed: SimpleNamespace(
        split=SimpleNamespace(kind="next_watch"), sizes={"test": 1}, n_videos=seed))  # a task per seed
    monkeypatch.setattr(E, "_run", lambda name, task, params, seed, preset, progress: ran.append(seed)
                        or ({"recall@10": 0.1 * seed, "recall@10_se": 0.0, "seconds": 0.0, "params": {}}, {}))
    out = E.evaluate("tiny", ["popularity"], seeds=2, progress=False, first_seed=3)
    assert loaded == ran == [3, 4] and out["popularity"]["recall@10"] == pytest.approx(0.35)


def test_tuned_baselines_equal_tune_by_hand_and_skip_ease_past_its_cap(data_dir, monkeypatch) -> None:
    import re

    from ytrec_lib import pipeline
    from ytrec_lib.models import baselines as B

    task = E.evaluation_task(pipeline.dataset("tiny", 0, progress=False), 0)
    grids = {"itemknn.n_neighbors": (5, 50), "itemknn.n_recent": (None,), "rp3b.alpha": (1.0,),
             "rp3b.beta": (0.0, 0.5), "ease.lam": (10.0,), "tune.k": (20,)}
    users = task.test.users[:30]
    lists, params, skipped = E.tuned_baselines(task, users, 10, grids)
    assert set(lists) == set(params) == set(E.STRONG_BASELINES) and not skipped
    assert all(ranked.shape == (30, 10) for ranked in lists.values())
    v = task.valid
    by_hand = B.tune(B.RP3beta, {"alpha": (1.0,), "beta": (0.0, 0.5)}, task.watches, task.n_videos, v.users,
                     v.histories, v.labels, k=20)
    assert params["rp3b"] == by_hand.params
    np.testing.assert_array_equal(lists["rp3b"], by_hand.model.recommend(users, 10))
    monkeypatch.setattr(B.EASE.__init__, "__defaults__", (100.0, 5))     # a cap below the catalogue
    lists, params, skipped = E.tuned_baselines(task, users, 10, grids)
    assert "ease" not in lists and "ease" not in params
    assert re.search(r"dense [\d,]+ x [\d,]+ float64 matrix .*cap is 5 videos", skipped["ease"])


def test_a_tuned_choice_is_cached_once_per_split_and_grid(data_dir, monkeypatch) -> None:
    from ytrec_lib import pipeline
    from ytrec_lib.models import baselines as B

    task = E.evaluation_task(pipeline.dataset("tiny", 0, progress=False), 0)
    grid = {"itemknn.n_neighbors": (5, 20, 50), "itemknn.n_recent": (None,), "tune.k": (20,)}
    first = E.tuned_model("itemknn", task, grid)
    files = sorted((data_dir / "models").glob("tuned-itemknn-*.json"))
    calls = []
    monkeypatch.setattr(B, "tune", lambda *a, **k: calls.append(a) or first)   # a second tuning would show
    pipeline.clear_memo()
    again = E.tuned_model("itemknn", task, grid)                              # read from the file
    assert not calls and again.params == first.params and again.scores == first.scores
    users = task.test.users[:20]
    np.testing.assert_array_equal(again.model.recommend(users, 10), first.model.recommend(users, 10))
    assert sorted((data_dir / "models").glob("tuned-itemknn-*.json")) == files and len(files) >= 1
    E.tuned_model("itemknn", task, {**grid, "itemknn.n_neighbors": (5, 20)})  # another grid: tuned anew
    assert len(calls) == 1
    other = E.evaluation_task(pipeline.dataset("tiny", 1, progress=False), 1)  # another split: tuned anew
    E.tuned_model("itemknn", other, grid)
    assert len(calls) == 2
