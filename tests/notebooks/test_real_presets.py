"""Notebooks 01-05 and 08 on real-data formats, through the ``PRESET`` parameter of the simulator presets.

The test writes small files in the published MovieLens-1M / ml-latest-small / KuaiRand-Pure formats
(tests/fixtures/real_formats.py) into a temporary data folder (``$YTREC_DATA_DIR``) and runs the
notebook with ``--preset <dataset>`` through the real runner (notebook 03 with fewer epochs and a
smaller step-time table, to stay cheap). A notebook that does not exist yet is skipped with the reason
printed. Each notebook must guard the sections that need what a real dataset lacks (``real.skip_reason``
/ ``real.require`` / ``real.has``); the results must hold only what was measured: no oracle, nothing
from searches, exposures or demographics the dataset does not have (docs/real_datasets.md).
Notebook 03 also runs on the real MovieLens-100K (the shared copy; skipped when it is absent).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from ytrec_lib import report
from ytrec_lib.course import runner
from ytrec_lib.data import datasets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import real_formats as rf  # noqa: E402

N_USERS, N_MOVIES, PER_USER = 300, 400, 30
CASES = [
    ("movielens-1m", "01_ugc_data"),
    ("movielens-small", "01_ugc_data"),
    ("kuairand-pure", "01_ugc_data"),
    ("movielens-1m", "02_item2vec"),
    ("movielens-1m", "03_candidate_generation"),
    ("movielens-1m", "04_video_embeddings"),
    ("movielens-1m", "05_ann_serving"),
    ("movielens-1m", "08_two_stage_system"),
    ("kuairand-pure", "08_two_stage_system"),
    ("movielens-small", "03_candidate_generation"),
    ("kuairand-pure", "03_candidate_generation"),
]
GUARDS = ("skipped(", "skip_reason(", "require(", "real.has(")   # the forms of a real-data guard
NEEDS_NO_GUARD = {"05_ann_serving"}   # uses only the model's video vectors and synthetic catalogues
# notebook 03's long parts made short: the test checks that every section runs or skips, not the numbers
PARAMS = {"03_candidate_generation": ["EPOCHS=2", "COMPARE_EPOCHS=1", "GRID_EPOCHS=1", "STEP_TIME_STEPS=1",
                                      "STEP_TIME_SIZES=[1000, 100000]"],
          # 05: the synthetic studies small (the real-vector sections are what this test is about)
          "05_ann_serving": ["N_QUERIES=50", "N_MAIN=5000", "N_GRID=[1000, 5000]", "D_GRID=[2, 8, 64]",
                             "N_DIM=5000", "N_BATCH=2000", "BATCH_GRID=[1, 16, 64]", "BUDGET_S=0.05"],
          "08_two_stage_system": ["N_CANDIDATES=100", "N_EVAL_USERS=200", "N_SWEEP_USERS=50",
                                  "SWEEP=[4, 64]"]}
KUAIRAND_LOGS = ("log_standard_4_08_to_4_21_pure.csv", "log_standard_4_22_to_5_08_pure.csv")


@pytest.fixture(scope="module")
def real_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("real-data")
    rf.write_movielens_1m(d / "movielens-1m", n_users=N_USERS, n_movies=N_MOVIES, per_user=PER_USER)
    rf.write_movielens_small(d / "movielens-small", n_users=N_USERS, n_movies=N_MOVIES, per_user=PER_USER)
    rf.write_kuairand(d / "kuairand-pure", n_users=200, n_videos=300, per_user=60)
    return d


def skip(reason: str) -> None:
    print(f"SKIPPED: {reason}")
    pytest.skip(reason)


def n_ratings(folder: Path) -> int:
    """Ratings in ratings.dat (ml-1m) or ratings.csv (ml-latest-small), counted by a naive parser: every
    rating is a watch by default (implicit feedback)."""
    if (folder / "ratings.dat").exists():
        lines = (folder / "ratings.dat").read_bytes().decode("latin-1").splitlines()
        return sum(1 for ln in lines if ln.strip())
    lines = (folder / "ratings.csv").read_text(encoding="utf-8").splitlines()[1:]
    return sum(1 for ln in lines if ln.strip())


def kuairand_rows(folder: Path) -> tuple[int, int]:
    """(rows, rows with is_click = 1) of the two standard logs, counted by a naive parser."""
    rows = clicks = 0
    for name in KUAIRAND_LOGS:
        lines = (folder / name).read_text(encoding="utf-8").splitlines()
        col = lines[0].split(",").index("is_click")
        rows += len(lines) - 1
        clicks += sum(ln.split(",")[col] == "1" for ln in lines[1:])
    return rows, clicks


def check_ugc_data(r: dict, preset: str, folder: Path) -> None:
    """Notebook 01: the table sizes against a naive count, and only the sections the dataset allows."""
    if preset.startswith("movielens"):
        assert r["n_users"] == N_USERS and r["n_videos"] == N_MOVIES
        assert r["n_watches"] == r["n_impressions"] == n_ratings(folder)
    else:
        assert (r["n_impressions"], r["n_watches"]) == kuairand_rows(folder)
    never = ("recall@100_oracle", "same_seed_identical", "studio_gini", "ugc_gini",
             "search_share_of_sessions", "search_tokens_in_top3_interests",
             "top_category_acc_demographics", "next_episode_share",
             "exposed_not_clicked_popularity_pct", "ctr_by_position_home", "world_mechanisms")
    assert not [k for k in never if k in r], f"{preset}: recorded a section it cannot measure"
    assert ("recall@100_popularity_region" in r) == (preset == "movielens-1m")   # needs demographics
    assert 0.0 <= r["gini"] <= 1.0 and 0.0 < r["top1pct_view_share"] <= 1.0
    for key in ("recall@100_popularity", "recall@100_popularity_recent", "recall@100_itemknn"):
        assert 0.0 <= r[key] <= 1.0, key


CLASSICAL_ROWS = {"popularity": "most popular", "itemknn_tuned": "item-kNN (tuned)", "rp3b": "RP3β",
                  "ease": "EASE", "item2vec_avg": "item2vec average"}
VERBS = {"beats": "beats", "level with": "is level with", "below": "is below"}


def expected_verdict(r: dict) -> tuple[str, str]:
    """(best classical model's key, verdict) recomputed from the recorded recall@100 values and SEs."""
    best = max(CLASSICAL_ROWS, key=lambda k: r[f"recall@100_{k}"])
    diff = r["recall@100_model"] - r[f"recall@100_{best}"]
    se = (r["recall@100_model_se"] ** 2 + r[f"recall@100_{best}_se"] ** 2) ** 0.5
    return best, "beats" if diff > 2 * se else "below" if diff < -2 * se else "level with"


def check_candidate_generation(r: dict, preset: str) -> None:
    """Notebook 03 on the leave-last-out split: the `evaluate` table of all six models (no oracle), in
    range with standard errors, a verdict the numbers imply, and no section that needs a global cutoff,
    searches or the truth."""
    assert r["split_kind"] == "leave_last_out" and r["evaluate_table"]["split"]["kind"] == "leave_last_out"
    table = r["quality_table"]
    assert set(table) == {"candidate model", *CLASSICAL_ROWS.values()}   # no oracle
    assert "recall@100_oracle" not in r and "recall@100_itemknn" not in r
    for name, row in table.items():
        recalls = [row[f"recall@{k}"] for k in (10, 50, 100)]
        assert all(0.0 <= x <= 1.0 for x in recalls) and recalls == sorted(recalls), (name, recalls)
        assert 0.0 <= row["ndcg@10"] <= row["recall@10"] + 1e-12, name
        assert all(row[f"{m}_se"] >= 0.0 for m in ("recall@10", "recall@50", "recall@100", "ndcg@10")), name
    assert r["recall@100_model"] == table["candidate model"]["recall@100"]
    # the notebook's own ranking of the default model is evaluate's (same split, users and exclusions)
    assert r["init_comparison"]["item2vec (default)"]["recall@100"] == pytest.approx(r["recall@100_model"])
    best, verdict = expected_verdict(r)
    assert (r["model_vs_classical"]["best"], r["model_vs_classical"]["verdict"]) == (best, verdict)
    assert ("map_by_age_transforms" in r) == (preset in ("movielens-1m", "movielens-100k"))   # users' ages
    assert "recall@100_next_watch_label" not in r   # §3.4 needs the simulator's global cutoff
    assert "fresh_share_next_watch" not in r   # so does §5's share of young videos served at example age 0
    assert r["n_parameters"] > 0 and r["sampled_speedup_at_100k"] > 0


def check_video_embeddings(r: dict) -> None:
    """Notebook 04: the leave-last-out model with the real-data settings (dim 64), every section measured."""
    assert r["split"] == "leave_last_out"
    assert r["matrix_shape"] == {"m": 64, "n": N_MOVIES}   # REAL_CANDIDATE_DEFAULTS: tower (128, 64), dim 64
    assert r["topk_equal_fraction"] == 1.0 and r["served_equals_model_fraction"] == 1.0
    assert r["store_roundtrip_exact"] is True and r["concurrent_reads"]["mixed_or_inconsistent"] == 0
    for key in ("recall@100_untied", "recall@100_tied"):       # the tied pair trains at dim 64 too
        assert 0.0 < r[key] <= 1.0, key
    assert r["tying_parameters"]["tied"] < r["tying_parameters"]["untied"]


def check_ann_serving(r: dict) -> None:
    """Notebook 05: the real vectors are the leave-last-out model's [v, b] (64 + 1), the transform exact."""
    assert r["split"] == "leave_last_out"
    assert (r["real_n_items"], r["real_dim"]) == (N_MOVIES, 65) and r["dim"] == 65
    assert r["transform_recall@10"] == 1.0 and r["real_ivf_nprobe_nlist_recall@10"] == 1.0
    assert r["n_items"] == 5000 and all(r[f"{k}_recall@10"] == 1.0 for k in ("exact", "flat", "kdtree"))


def check_two_stage_system(r: dict, preset: str) -> None:
    """Notebook 08: leave-last-out quality of the held-out last watch; no oracle, no true watch time; the
    ranker only where the dataset has an exposure log (KuaiRand), the strong baselines beside it."""
    assert r["split"] == "leave_last_out" and r["quality_metric"] == "held-out last watch"
    assert r["has_ranker"] is (preset == "kuairand-pure")
    table = r["quality_table"]
    systems = {"two_stage", "candidates_only"} if r["has_ranker"] else {"candidates_only"}
    assert set(table) == systems | {"popularity", "itemknn_tuned", "rp3b", "ease"}
    assert not [k for k in r if k.startswith("ndcg@10_") or "oracle" in k or k == "ordering_holds"]
    for name, row in table.items():
        assert 0.0 <= row["ndcg@10"] <= row["recall@10"] <= 1.0, (name, row)
        assert r[f"recall@10_{name}"] == row["recall@10"]
    assert r["n_eval_users"] == 200 and r["funnel"]["candidates"] == 100 and r["funnel"]["shown"] == 10
    assert set(r["strong_baseline_params"]) == {"itemknn_tuned", "rp3b", "ease"}


def printed_standing(notebook: Path) -> str:
    """The executed notebook's sentence on where the candidate model stands ("The candidate model ...")."""
    import nbformat

    for cell in nbformat.read(notebook, as_version=4).cells:
        for out in cell.get("outputs", []):
            for line in out.get("text", "").splitlines():
                if line.startswith("The candidate model "):
                    return line
    raise AssertionError(f"{notebook.name} printed no 'The candidate model ...' sentence")


@pytest.mark.notebook
@pytest.mark.parametrize("preset,stem", CASES)
def test_notebook_runs_on_real_format(preset: str, stem: str, real_data_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = runner.NOTEBOOK_DIR / f"{stem}.ipynb"
    if not path.exists():
        skip(f"notebooks/{stem}.ipynb does not exist yet")
    assert preset in datasets.known_presets(), f"datasets.known_presets() does not list {preset!r}"
    assert stem in NEEDS_NO_GUARD or any(g in path.read_text(encoding="utf-8") for g in GUARDS), (
        f"{stem} has no real-data guard (real.skipped / real.skip_reason / real.require / real.has); "
        "see docs/real_datasets.md for the sections to guard")
    monkeypatch.setenv("YTREC_DATA_DIR", str(real_data_dir))
    build = tmp_path / "build"
    status = runner.run_notebooks(preset, only=[stem], params=PARAMS.get(stem), build=build, html=False)
    assert status == 0, f"{stem} failed on the {preset} test files (see the error above)"
    results = report.load(stem, build / "results")
    assert results, f"{stem} recorded nothing on {preset}"
    if stem == "01_ugc_data":
        check_ugc_data(results, preset, real_data_dir / preset)
    elif stem == "03_candidate_generation":
        check_candidate_generation(results, preset)
    elif stem == "04_video_embeddings":
        check_video_embeddings(results)
    elif stem == "05_ann_serving":
        check_ann_serving(results)
    elif stem == "08_two_stage_system":
        check_two_stage_system(results, preset)


# notebook 03 on the real MovieLens-100K, kept to about 3 minutes: 2 epochs of the default model (instead of
# up to 25 with early stopping), 1 epoch on 20,000 examples per small run, a short step-time table
ML100K_PARAMS = ["EPOCHS=2", "COMPARE_EPOCHS=1", "GRID_EPOCHS=1", "GRID_MAX_TRAIN=20000", "STEP_TIME_STEPS=1",
                 "STEP_TIME_SIZES=[1000, 100000]"]


@pytest.mark.notebook
def test_notebook_03_on_the_real_movielens_100k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """03 on the shared copy of the published MovieLens-100K files: the standard split (leave-last-out,
    943 test users, none without history), the table of all six models, and the printed sentence's claim
    the one the numbers imply."""
    shared = rf.SHARED_ML100K
    if not (shared / "u.data").exists():
        skip(f"the shared MovieLens-100K copy is absent ({shared})")
    shutil.copytree(shared, tmp_path / "data" / "movielens-100k")
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path / "data"))
    build = tmp_path / "build"
    stem = "03_candidate_generation"
    status = runner.run_notebooks("movielens-100k", only=[stem], params=ML100K_PARAMS, build=build,
                                  html=False)
    assert status == 0, f"{stem} failed on movielens-100k (see the error above)"
    r = report.load(stem, build / "results")
    check_candidate_generation(r, "movielens-100k")
    split = r["evaluate_table"]["split"]
    assert (split["test"], split["users"], split["items"]) == (943, 943, 1682) and split["seeds"] == 1
    assert r["empty_history_share"] == 0.0
    for key in ("model", *CLASSICAL_ROWS):
        assert 0.0 < r[f"recall@100_{key}"] < 1.0 and r[f"recall@100_{key}_se"] > 0.0, key
    best, verdict = expected_verdict(r)
    sentence = printed_standing(build / "notebooks" / f"{stem}.ipynb")
    claim = f"The candidate model {VERBS[verdict]} the best classical model, {CLASSICAL_ROWS[best]}: "
    assert sentence.startswith(claim), (sentence, claim)
    assert f"{r['recall@100_model']:.3f} ±" in sentence and f"{r[f'recall@100_{best}']:.3f} ±" in sentence
