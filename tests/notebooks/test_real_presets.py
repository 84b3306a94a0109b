"""Notebooks 01-04 on real-data formats, through the same ``PRESET`` parameter as the simulator presets.

The test writes small files in the published MovieLens-1M / ml-latest-small / KuaiRand-Pure formats
(tests/fixtures/real_formats.py) into a temporary data folder (``$YTREC_DATA_DIR``) and runs the
notebook with ``--preset <dataset>`` through the real runner. A notebook is skipped, with the reason
printed, when it does not exist yet, when ``datasets.known_presets()`` does not list the real datasets
yet, or when it has no real-data guard yet (no ``real.skip_reason`` / ``real.require`` / ``real.has``
call: it would fail on the sections that need searches, exposures or the ground truth).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ytrec_lib import report, runner
from ytrec_lib.data import datasets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import real_formats as rf  # noqa: E402

N_USERS, N_MOVIES, PER_USER = 300, 400, 30
CASES = [
    ("movielens-1m", "01_ugc_data"),
    ("movielens-1m", "02_item2vec"),
    ("movielens-1m", "03_candidate_generation"),
    ("movielens-1m", "04_video_embeddings"),
    ("movielens-small", "03_candidate_generation"),
    ("kuairand-pure", "03_candidate_generation"),
]
GUARDS = ("skip_reason(", "require(", "real.has(")


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


def n_positive_ratings(folder: Path) -> int:
    """Ratings >= 4 in ratings.dat, counted by a naive parser."""
    lines = (folder / "ratings.dat").read_bytes().decode("latin-1").splitlines()
    return sum(int(ln.split("::")[2]) >= 4 for ln in lines)


@pytest.mark.notebook
@pytest.mark.parametrize("preset,stem", CASES)
def test_notebook_runs_on_real_format(preset: str, stem: str, real_data_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = runner.NOTEBOOK_DIR / f"{stem}.ipynb"
    if not path.exists():
        skip(f"notebooks/{stem}.ipynb does not exist yet")
    if preset not in datasets.known_presets():
        skip(f"datasets.known_presets() does not list {preset!r} yet: add the real-data hook to "
             "ytrec_lib/data/datasets.py (docs/real_datasets.md, 'Wiring')")
    if not any(g in path.read_text(encoding="utf-8") for g in GUARDS):
        skip(f"{stem} has no real-data guard yet (real.skip_reason / real.require / real.has); "
             "see docs/real_datasets.md for the sections to guard")
    monkeypatch.setenv("YTREC_DATA_DIR", str(real_data_dir))
    build = tmp_path / "build"
    status = runner.run_notebooks(preset, only=[stem], build=build, html=False)
    assert status == 0, f"{stem} failed on the {preset} test files (see the error above)"
    results = report.load(stem, build / "results")
    assert results, f"{stem} recorded nothing on {preset}"
    if stem == "01_ugc_data" and preset == "movielens-1m":
        assert results["n_users"] == N_USERS and results["n_videos"] == N_MOVIES
        assert results["n_watches"] == results["n_impressions"] == n_positive_ratings(real_data_dir / preset)
        assert "recall@100_oracle" not in results            # no ground truth: the oracle is skipped
        assert 0.0 <= results["recall@100_popularity"] <= 1.0
