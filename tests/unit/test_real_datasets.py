"""Real-data adapters (MovieLens ml-latest-small / ml-1m, KuaiRand) and the download command.

The tests write small files in each published format (tests/fixtures/real_formats.py) and compare the
adapters against naive line-by-line parsers written here; bad input must name the file and line and
leave the data folder as it was.
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
import sys
import urllib.error
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ytrec_lib.course import cli
from ytrec_lib.data import datasets, download, rawio, real
from ytrec_lib.data.rawio import DataFileError, MissingDataError
from ytrec_lib.data.realtables import reindex, sessionize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import real_formats as rf  # noqa: E402


# --------------------------------------------------------------------------------------------
# fixtures and naive reference parsers
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published-format files, written once per session."""
    d = tmp_path_factory.mktemp("pristine")
    rf.write_movielens_1m(d / "movielens-1m")
    rf.write_movielens_100k(d / "movielens-100k")
    rf.write_movielens_small(d / "movielens-small")
    rf.write_kuairand(d / "kuairand-pure")
    return d


@pytest.fixture
def data_dir(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the files for one test (which may damage them)."""
    return Path(shutil.copytree(pristine, tmp_path / "data"))


def snapshot(folder: Path) -> dict[str, int]:
    """Every path under ``folder`` (hidden ones too) with its size: to prove nothing was written."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


def naive_1m(folder: Path) -> dict:
    files = real.REAL_DATASETS["movielens-1m"].files
    lines = {f: (folder / f).read_bytes().decode("latin-1").splitlines() for f in files}
    ratings = [tuple(int(x) for x in ln.split("::")) for ln in lines["ratings.dat"]]
    users = {int(p[0]): p for p in (ln.split("::") for ln in lines["users.dat"])}
    movies = {int(p[0]): p for p in (ln.split("::") for ln in lines["movies.dat"])}
    return {"ratings": ratings, "users": users, "movies": movies}


def naive_small(folder: Path) -> dict:
    with open(folder / "ratings.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ratings = [(int(r["userId"]), int(r["movieId"]), float(r["rating"]), int(r["timestamp"])) for r in rows]
    with open(folder / "movies.csv", newline="", encoding="utf-8") as fh:
        movies = {int(r["movieId"]): r for r in csv.DictReader(fh)}
    return {"ratings": ratings, "movies": movies}



# --------------------------------------------------------------------------------------------
# MovieLens against the naive parsers
# --------------------------------------------------------------------------------------------
def test_ml1m_matches_a_naive_parser(data_dir: Path) -> None:
    ds = real.load_real("movielens-1m", data_dir)
    ref = naive_1m(data_dir / "movielens-1m")
    expected = Counter((u, m, t) for u, m, r, t in ref["ratings"])   # every rating is a watch
    assert rf.watch_keys(ds) == expected
    assert ds.impressions["clicked"].all()
    rating = ds.impressions["rating"].to_numpy()
    np.testing.assert_allclose(ds.impressions["watch_time"].to_numpy(), 6000.0 * rating / 5.0, rtol=1e-6)
    # demographics: every user of users.dat, gender F -> 0 / M -> 1, age code -> middle of the band
    users = ds.users.set_index("source_id")
    assert sorted(users.index) == sorted(ref["users"])
    for uid, (_, gender, age, _, zipcode) in ref["users"].items():
        assert users.loc[uid, "gender"] == (1 if gender == "M" else 0)
        assert users.loc[uid, "age"] == real_age(int(age))
        first = zipcode[0]
        assert users.loc[uid, "region"] == (int(first) if zipcode[:5].isdigit() else 10)
    titles = set(ds.videos["title"])
    assert "Misérables, Les (1995)" in titles                                 # Latin-1 decoded
    assert "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1963)" in titles
    assert '"Great Performances" Cats (1998)' in titles
    assert ds.meta["has_impressions"] is False and ds.meta["has_searches"] is False
    assert ds.truth is None and ds.meta["has_truth"] is False


def real_age(code: int) -> float:
    return {1: 15.0, 18: 21.0, 25: 29.5, 35: 39.5, 45: 47.0, 50: 52.5, 56: 60.0}[code]


def test_ml1m_reads_crlf_line_ends(tmp_path: Path) -> None:
    rf.write_movielens_1m(tmp_path / "a" / "movielens-1m", crlf=False)
    rf.write_movielens_1m(tmp_path / "b" / "movielens-1m", crlf=True)
    a = real.load_real("movielens-1m", tmp_path / "a")
    b = real.load_real("movielens-1m", tmp_path / "b")
    pd.testing.assert_frame_equal(a.impressions, b.impressions)
    pd.testing.assert_frame_equal(a.videos.drop(columns="title_tokens"),
                                  b.videos.drop(columns="title_tokens"))
    tokens = zip(a.videos["title_tokens"], b.videos["title_tokens"], strict=True)
    assert all((x == y).all() for x, y in tokens)


def test_ml_latest_small_matches_a_naive_parser(data_dir: Path) -> None:
    ds = real.load_real("movielens-small", data_dir)
    ref = naive_small(data_dir / "movielens-small")
    assert rf.watch_keys(ds) == Counter((u, m, t) for u, m, r, t in ref["ratings"])
    assert sorted(ds.users["source_id"]) == sorted({u for u, *_ in ref["ratings"]})
    assert len(ds.videos) == len(ref["movies"])
    videos = ds.videos.set_index("title")
    # quoted titles with commas and doubled quotes come back intact
    assert "American President, The (1995)" in videos.index
    assert '"Great Performances" Cats (1998)' in videos.index
    # '(no genres listed)' is a topic of its own; IMAX is a genre
    topic_names = ds.meta["topic_names"]
    assert topic_names[videos.loc["Death Note: Desu nôto (2006–2007)", "topic"]] == "(no genres listed)"
    # upload time: 1 January of the title's year (an en-dash range counts from its first year) ...
    t0 = ds.meta["t0_unix"]
    jan2006 = (pd.Timestamp("2006-01-01", tz="UTC").timestamp() - t0) / 86400.0
    assert videos.loc["Death Note: Desu nôto (2006–2007)", "upload_time"] == pytest.approx(
        min(jan2006, first_rating_day(ds, ref, "Death Note: Desu nôto (2006–2007)")))
    # ... or the first rating when the title has no year
    assert videos.loc["Babylon 5", "upload_time"] == pytest.approx(first_rating_day(ds, ref, "Babylon 5"))
    assert ds.users["age"].isna().all() and (ds.users["gender"] == -1).all()
    assert real.skip_reason(ds, "demographics") is not None


def first_rating_day(ds, ref: dict, title: str) -> float:
    mid = next(m for m, row in ref["movies"].items() if row["title"] == title)
    stamps = [t for u, m, r, t in ref["ratings"] if m == mid]
    return (min(stamps) - ds.meta["t0_unix"]) / 86400.0 if stamps else 0.0


@pytest.mark.parametrize("threshold", [0.5, 3.5, 5.0])
def test_threshold_selects_the_watches(data_dir: Path, threshold: float) -> None:
    ds = real.load_real("movielens-small", data_dir, threshold=threshold)
    ref = naive_small(data_dir / "movielens-small")
    assert len(ds.impressions) == sum(r >= threshold for _, _, r, _ in ref["ratings"])
    assert ds.meta["threshold"] == threshold


@pytest.mark.parametrize("name", ["movielens-small", "movielens-1m"])
def test_every_rating_is_a_watch_by_default(data_dir: Path, name: str) -> None:
    """Implicit feedback by default on every MovieLens release; 4 is an option, not the default."""
    ds = real.load_real(name, data_dir)
    n_ratings = ds.meta["n_ratings"]
    assert ds.meta["threshold"] is None and len(ds.impressions) == n_ratings
    liked = real.load_real(name, data_dir, threshold=4)
    assert len(liked.impressions) == int((ds.impressions["rating"] >= 4).sum()) < n_ratings
    assert real.load_real(name, data_dir, threshold=None).meta["generator_version"] == \
        ds.meta["generator_version"] != liked.meta["generator_version"]


def test_models_are_keyed_by_the_threshold_used_not_the_one_passed(data_dir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed default threshold changes the data fingerprint, so no model cached under the old
    default is reloaded (the fingerprint holds the options the loader used, not those passed)."""
    from ytrec_lib.data import movielens
    from ytrec_lib.data.cache import data_fingerprint

    before = data_fingerprint(real.load_real("movielens-1m", data_dir))
    monkeypatch.setattr(movielens.load_ml_1m, "__kwdefaults__", {"threshold": 4.0})
    moved = real.load_real("movielens-1m", data_dir)
    assert moved.meta["threshold"] == 4.0 and data_fingerprint(moved) != before
    assert data_fingerprint(moved) == data_fingerprint(real.load_real("movielens-1m", data_dir, threshold=4))


@pytest.mark.parametrize("bad", [0, -1, 6, "4", True])
def test_bad_threshold_is_refused(data_dir: Path, bad) -> None:
    with pytest.raises(ValueError, match="threshold"):
        real.load_real("movielens-1m", data_dir, threshold=bad)


def test_topic_is_the_rarest_genre(data_dir: Path) -> None:
    ds = real.load_real("movielens-1m", data_dir)
    ref = naive_1m(data_dir / "movielens-1m")
    genre_lists = {m: p[2].replace("Children's", "Children").split("|") for m, p in ref["movies"].items()}
    counts = Counter(g for gs in genre_lists.values() for g in gs)
    order = list(real_genres())
    names = ds.meta["topic_names"]
    for _, row in ds.videos.iterrows():
        gs = genre_lists[row["source_id"]]
        assert names[row["topic"]] == min(gs, key=lambda g: (counts[g], order.index(g)))


def real_genres():
    from ytrec_lib.data.movielens import GENRES

    return GENRES


# --------------------------------------------------------------------------------------------
# KuaiRand against a naive parser
# --------------------------------------------------------------------------------------------
STANDARD_LOGS = ["log_standard_4_08_to_4_21_pure.csv", "log_standard_4_22_to_5_08_pure.csv"]


def naive_kuairand_log(folder: Path, files: list[str]) -> list[dict]:
    rows = []
    for f in files:
        with open(folder / f, newline="", encoding="utf-8") as fh:
            rows += list(csv.DictReader(fh))
    return rows


def test_kuairand_exposures_clicks_and_watch_time(data_dir: Path) -> None:
    folder = data_dir / "kuairand-pure"
    ds = real.load_real("kuairand-pure", data_dir, progress=False)
    rows = naive_kuairand_log(folder, STANDARD_LOGS)
    imp = ds.impressions
    assert len(imp) == len(rows)
    assert int(imp["clicked"].sum()) == sum(r["is_click"] == "1" for r in rows)
    assert (~imp["clicked"]).sum() > 0 and ds.meta["has_impressions"] is True     # real exposed-not-clicked
    u = ds.users["source_id"].to_numpy()[imp["user_id"].to_numpy()]
    v = ds.videos["source_id"].to_numpy()[imp["video_id"].to_numpy()]
    ms = np.rint(imp["time"].to_numpy() * 86400e3 + ds.meta["t0_unix"] * 1e3).astype(np.int64)
    got = Counter(zip(u.tolist(), v.tolist(), ms.tolist(), imp["clicked"].tolist(),
                      np.round(imp["watch_time"].to_numpy(np.float64), 3).tolist(), strict=True))
    want = Counter((int(r["user_id"]), int(r["video_id"]), int(r["time_ms"]), r["is_click"] == "1",
                    round(int(r["play_time_ms"]) / 1000.0 if r["is_click"] == "1" else 0.0, 3)) for r in rows)
    assert got == want
    assert not imp["is_rand"].any()


def test_kuairand_random_log_is_optional(data_dir: Path) -> None:
    base = real.load_real("kuairand-pure", data_dir, progress=False)
    full = real.load_real("kuairand-pure", data_dir, progress=False, include_random=True)
    n_random = len(naive_kuairand_log(data_dir / "kuairand-pure", ["log_random_4_22_to_5_08_pure.csv"]))
    assert len(full.impressions) == len(base.impressions) + n_random
    assert int(full.impressions["is_rand"].sum()) == n_random


def test_kuairand_video_and_user_features(data_dir: Path) -> None:
    folder = data_dir / "kuairand-pure"
    ds = real.load_real("kuairand-pure", data_dir, progress=False)
    with open(folder / "video_features_basic_pure.csv", newline="", encoding="utf-8") as fh:
        feats = {int(r["video_id"]): r for r in csv.DictReader(fh)}
    vids = ds.videos.set_index("source_id")
    names = ds.meta["topic_names"]
    for vid, r in feats.items():
        first_tag = r["tag"].split(",")[0] if r["tag"] else None
        assert names[vids.loc[vid, "topic"]] == (f"tag {first_tag}" if first_tag else "no tag")
        if r["video_duration"]:
            assert vids.loc[vid, "duration"] == pytest.approx(float(r["video_duration"]) / 1000.0)
    assert (ds.videos["topic"] == ds.videos["category"]).all()
    # a video without video_duration takes the mean duration_ms of its log rows
    rows = naive_kuairand_log(folder, STANDARD_LOGS)
    no_dur = next(vid for vid, r in feats.items() if not r["video_duration"])
    log_dur = [int(r["duration_ms"]) / 1000.0 for r in rows if int(r["video_id"]) == no_dur]
    assert vids.loc[no_dur, "duration"] == pytest.approx(np.mean(log_dur), rel=1e-5)
    # a missing one-hot feature is -1; an existing one is kept
    with open(folder / "user_features_pure.csv", newline="", encoding="utf-8") as fh:
        ufeats = {int(r["user_id"]): r for r in csv.DictReader(fh)}
    users = ds.users.set_index("source_id")
    for uid, r in ufeats.items():
        assert users.loc[uid, "onehot_feat4"] == (int(r["onehot_feat4"]) if r["onehot_feat4"] else -1)
        assert users.loc[uid, "user_active_degree"] == r["user_active_degree"]
    assert ds.users["age"].isna().all() and ds.meta["has_demographics"] is False


# --------------------------------------------------------------------------------------------
# the data contract, for every adapter
# --------------------------------------------------------------------------------------------
CONTRACT = {
    "users": {"user_id": "int64", "region": "int16", "age": "float32", "gender": "int8", "language": "int16",
              "activity": "float32"},
    "videos": {"video_id": "int64", "creator_id": "int32", "topic": "int16", "category": "int16",
               "upload_time": "float64", "duration": "float32", "language": "int16", "quality": "float32",
               "clickbait": "float32"},
    "impressions": {"user_id": "int64", "video_id": "int64", "time": "float64", "session_id": "int64",
                    "position": "int16", "source": "category", "clicked": "bool", "watch_time": "float32"},
    "searches": {"user_id": "int64", "time": "float64", "session_id": "int64", "tokens": "object"},
}


@pytest.mark.parametrize("name", ["movielens-1m", "movielens-100k", "movielens-small", "kuairand-pure"])
def test_tables_follow_the_data_contract(data_dir: Path, name: str) -> None:
    ds = real.load_real(name, data_dir, progress=False)
    assert isinstance(ds, datasets.Dataset)
    for table, cols in CONTRACT.items():
        df = getattr(ds, table)
        for col, dtype in cols.items():
            assert str(df[col].dtype) == dtype, f"{name}.{table}.{col}: {df[col].dtype} != {dtype}"
    m = ds.meta
    assert m["n_users"] == len(ds.users) and m["n_videos"] == len(ds.videos)
    assert (ds.users["user_id"].to_numpy() == np.arange(m["n_users"])).all()
    assert (ds.videos["video_id"].to_numpy() == np.arange(m["n_videos"])).all()
    imp = ds.impressions
    assert imp["user_id"].between(0, m["n_users"] - 1).all()
    assert imp["video_id"].between(0, m["n_videos"] - 1).all()
    assert ds.videos["topic"].between(0, m["n_topics"] - 1).all()
    assert (np.diff(ds.videos["upload_time"].to_numpy()) >= 0).all(), "video ids not in upload order"
    assert ds.videos["category"].between(0, m["n_categories"] - 1).all()
    assert ds.users["region"].between(0, m["n_regions"] - 1).all()
    assert imp["time"].min() >= 0 and imp["time"].max() < m["t_end"]
    key = imp[["time", "session_id", "position"]].to_numpy()
    assert (np.lexsort(key.T[::-1]) == np.arange(len(imp))).all(), "impressions not sorted"
    assert (imp.loc[~imp["clicked"], "watch_time"] == 0).all()
    # a session is one user's; its positions are 0..k-1; session ids follow session start times
    g = imp.groupby("session_id")
    assert (g["user_id"].nunique() == 1).all()
    assert (g["position"].max() + 1 == g.size()).all() and (g["position"].nunique() == g.size()).all()
    starts = g["time"].min().to_numpy()
    assert (np.diff(starts) >= 0).all()
    assert sorted(g.groups) == list(range(len(g)))
    seqs = ds.watch_sequences()
    assert len(seqs) == m["n_users"] and sum(map(len, seqs)) == int(imp["clicked"].sum())
    assert np.isclose(ds.users["activity"].mean(), 1.0)
    assert m["has_searches"] is False and len(ds.searches) == 0


# --------------------------------------------------------------------------------------------
# helpers: sessions and ids
# --------------------------------------------------------------------------------------------
def naive_sessions(user, time, gap):
    order = sorted(range(len(user)), key=lambda i: (user[i], time[i], i))
    sessions, cur = [], None
    for i in order:
        if cur is None or user[i] != user[cur[-1]] or time[i] - time[cur[-1]] > gap:
            cur = [i]
            sessions.append(cur)
        else:
            cur.append(i)
    sessions.sort(key=lambda s: (time[s[0]], user[s[0]]))
    sid, pos = [0] * len(user), [0] * len(user)
    for k, s in enumerate(sessions):
        for p, i in enumerate(s):
            sid[i], pos[i] = k, p
    return sid, pos


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 40)), min_size=0, max_size=60))
def test_sessionize_matches_a_naive_loop(events) -> None:
    user = np.array([u for u, _ in events], dtype=np.int64)
    time = np.array([t / 10.0 for _, t in events], dtype=np.float64)
    sid, pos = sessionize(user, time, gap=0.25)
    want_sid, want_pos = naive_sessions(user.tolist(), time.tolist(), 0.25)
    assert sid.tolist() == want_sid and pos.tolist() == want_pos


@given(st.lists(st.integers(-50, 50), max_size=40), st.lists(st.integers(-50, 50), max_size=40))
def test_reindex_round_trips(values, extra) -> None:
    vals = np.array(values, dtype=np.int64)
    known = np.array(values + extra, dtype=np.int64)
    ids, originals = reindex(vals, known)
    assert (originals == np.unique(known)).all()
    assert (originals[ids] == vals).all() if vals.size else ids.size == 0
    ids2, _ = reindex(np.array([1000], np.int64), known)
    assert ids2.tolist() == [-1]


# --------------------------------------------------------------------------------------------
# bad input: a clear error naming the file and line; nothing written
# --------------------------------------------------------------------------------------------
def edit_line(path: Path, lineno: int, new: str | None, encoding: str = "utf-8") -> None:
    lines = path.read_bytes().decode(encoding).split("\n")
    if new is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = new
    path.write_bytes("\n".join(lines).encode(encoding))


def expect_error(data_dir: Path, name: str, file: str, line: int | None, match: str, **opts) -> None:
    before = snapshot(data_dir)
    with pytest.raises(DataFileError, match=match) as info:
        real.load_real(name, data_dir, **opts)
    assert info.value.path.name == file and info.value.line == line
    assert f"{file}, line {line}" in str(info.value) if line else file in str(info.value)
    assert snapshot(data_dir) == before


def test_missing_file_says_where_to_put_it(data_dir: Path) -> None:
    (data_dir / "movielens-1m" / "movies.dat").unlink()
    before = snapshot(data_dir)
    with pytest.raises(MissingDataError) as info:
        real.load_real("movielens-1m", data_dir)
    msg = str(info.value)
    assert "movies.dat" in msg and str(data_dir / "movielens-1m") in msg
    assert "python -m ytrec_lib download movielens-1m" in msg and "ml-1m.zip" in msg
    assert snapshot(data_dir) == before


def test_missing_folder_is_not_downloaded(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match="Nothing is downloaded automatically"):
        real.load_real("kuairand-pure", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_truncated_last_row(data_dir: Path) -> None:
    path = data_dir / "movielens-1m" / "ratings.dat"
    raw = path.read_bytes()
    cut = raw[: raw.rstrip(b"\n").rfind(b"::")]                       # the last row loses its timestamp
    path.write_bytes(cut)
    expect_error(data_dir, "movielens-1m", "ratings.dat", cut.count(b"\n") + 1, "truncated")


def test_row_with_an_extra_field(data_dir: Path) -> None:
    edit_line(data_dir / "movielens-small" / "ratings.csv", 7, "1,2,3.0,964982703,9")
    expect_error(data_dir, "movielens-small", "ratings.csv", 7, "extra field")


def test_unexpected_column(data_dir: Path) -> None:
    path = data_dir / "kuairand-pure" / "log_standard_4_22_to_5_08_pure.csv"
    lines = path.read_text().splitlines()
    lines = [lines[0] + ",is_surprise"] + [ln + ",0" for ln in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    expect_error(data_dir, "kuairand-pure", path.name, 1, "unexpected column.*is_surprise", progress=False)


def test_missing_column(data_dir: Path) -> None:
    path = data_dir / "movielens-small" / "movies.csv"
    edit_line(path, 1, "movieId,title")
    expect_error(data_dir, "movielens-small", "movies.csv", 1, "missing column.*genres")


def test_value_that_is_not_a_number(data_dir: Path) -> None:
    edit_line(data_dir / "movielens-1m" / "users.dat", 5, "5::M::twenty::3::55455", "latin-1")
    expect_error(data_dir, "movielens-1m", "users.dat", 5, "'twenty' is not an integer")


def test_empty_line_in_the_middle(data_dir: Path) -> None:
    edit_line(data_dir / "movielens-small" / "ratings.csv", 4, "")
    expect_error(data_dir, "movielens-small", "ratings.csv", 4, "empty line")


def test_invalid_utf8(data_dir: Path) -> None:
    path = data_dir / "movielens-small" / "movies.csv"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b",", b"\xff,", 1)
    path.write_bytes(b"\n".join(lines))
    expect_error(data_dir, "movielens-small", "movies.csv", 4, "not valid utf-8")


@pytest.mark.parametrize("name,file,line,new,match", [
    ("movielens-1m", "movies.dat", 3, "9999::Bad Movie (1999)::Comedy|Cartoon", "unknown genre 'Cartoon'"),
    ("movielens-1m", "ratings.dat", 6, "1::9999::5::978300760", "movie 9999 is not in movies.dat"),
    ("movielens-1m", "ratings.dat", 2, "1::{movie}::7::978300760", "rating 7.0 is outside"),
    ("movielens-1m", "ratings.dat", 4, "99999::{movie}::5::978300760", "user 99999 is not in the users file"),
    ("movielens-1m", "users.dat", 3, "3::X::25::3::55455", "gender 'X' is not F or M"),
    ("movielens-1m", "users.dat", 3, "3::F::30::3::55455", "age code 30"),
    ("movielens-1m", "users.dat", 5, "1::F::25::3::55455", "user id 1 appears twice"),
    ("movielens-small", "movies.csv", 8, '{movie},"Again, The (1990)",Drama',
     "movie id {movie} appears twice"),
])
def test_inconsistent_rows_name_their_line(data_dir: Path, name, file, line, new, match) -> None:
    path = data_dir / name / file
    enc = "latin-1" if file.endswith(".dat") else "utf-8"
    movies_file = path.parent / ("movies.dat" if enc == "latin-1" else "movies.csv")
    first_movie = movies_file.read_bytes().decode(enc)
    movie = first_movie.splitlines()[0 if enc == "latin-1" else 1].split("::" if enc == "latin-1" else ",")[0]
    edit_line(path, line, new.format(movie=movie), enc)
    expect_error(data_dir, name, file, line, match.format(movie=movie))


@pytest.mark.parametrize("age", [200, -5])
def test_implausible_ml1m_age_names_the_file_line_user_and_value(data_dir: Path, age: int) -> None:
    """An age in years (not one of the published band codes) is refused, never scaled."""
    edit_line(data_dir / "movielens-1m" / "users.dat", 3, f"3::F::{age}::3::55455", "latin-1")
    expect_error(data_dir, "movielens-1m", "users.dat", 3,
                 rf"user 3 has age code {age}, not one of \[1, 18, 25, 35, 45, 50, 56\]")


@pytest.mark.parametrize("name,file,progress", [
    ("movielens-small", "ratings.csv", True),
    ("movielens-small", "movies.csv", True),
    ("kuairand-pure", "log_standard_4_22_to_5_08_pure.csv", False),
    ("kuairand-pure", "user_features_pure.csv", False),
])
def test_header_only_file_says_it_has_no_rows(data_dir: Path, name: str, file: str, progress: bool) -> None:
    path = data_dir / name / file
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    opts = {} if progress else {"progress": False}
    expect_error(data_dir, name, file, None, "the file has no data rows, only its header line — "
                 "the download is probably incomplete", **opts)
    with pytest.raises(DataFileError) as info:
        real.load_real(name, data_dir, **opts)
    assert "threshold" not in str(info.value) and f"python -m ytrec_lib download {name}" in str(info.value)


@pytest.mark.parametrize("file", ["ratings.dat", "users.dat", "movies.dat"])
def test_empty_headerless_file_says_it_has_no_rows(data_dir: Path, file: str) -> None:
    (data_dir / "movielens-1m" / file).write_bytes(b"")
    expect_error(data_dir, "movielens-1m", file, None, r"the file is empty \(no data rows\) — the download")


def test_empty_file_with_a_header_format_says_it_is_empty(data_dir: Path) -> None:
    (data_dir / "movielens-small" / "ratings.csv").write_bytes(b"")
    expect_error(data_dir, "movielens-small", "ratings.csv", 1, "the file is empty")


def test_every_rating_below_the_threshold_says_lower_the_threshold(data_dir: Path) -> None:
    path = data_dir / "movielens-small" / "ratings.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [ln.split(",") for ln in lines[1:]]
    path.write_text("\n".join([lines[0], *(",".join([u, m, "2.5", ts]) for u, m, _, ts in rows)]) + "\n",
                    encoding="utf-8")
    with pytest.raises(ValueError, match=rf"none of the {len(rows):,} ratings in .*ratings.csv is >= the "
                                         r"threshold 4 \(the highest is 2.5\); lower the threshold") as info:
        real.load_real("movielens-small", data_dir, threshold=4)
    assert "no data rows" not in str(info.value)
    assert len(real.load_real("movielens-small", data_dir, threshold=2.5).impressions) == len(rows)
    assert len(real.load_real("movielens-small", data_dir).impressions) == len(rows)   # default: every rating


def test_kuairand_non_binary_click(data_dir: Path) -> None:
    path = data_dir / "kuairand-pure" / "log_standard_4_08_to_4_21_pure.csv"
    fields = path.read_text().splitlines()[9].split(",")
    fields[5] = "2"
    edit_line(path, 10, ",".join(fields))
    expect_error(data_dir, "kuairand-pure", path.name, 10, "is_click is 2", progress=False)


@pytest.mark.parametrize("change,match", [(lambda f: f + ["0"], "extra field"),
                                          (lambda f: f[:-1], "truncated")], ids=["extra", "missing"])
def test_kuairand_log_row_with_the_wrong_number_of_fields(data_dir: Path, change, match) -> None:
    # The log is read with usecols, which on its own would let pandas ignore the unused columns' fields.
    path = data_dir / "kuairand-pure" / "log_standard_4_08_to_4_21_pure.csv"
    fields = path.read_text().splitlines()[6].split(",")
    edit_line(path, 7, ",".join(change(fields)))
    expect_error(data_dir, "kuairand-pure", path.name, 7, match, progress=False)


def test_separators_per_line_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    for text in ("a,b\n1,2\n3,4,5\n", "a,b\n1,2\n3", "", "\n\n1,,\n"):
        path.write_text(text)
        want = [ln.count(",") for ln in text.split("\n")][: text.count("\n") + (not text.endswith("\n"))]
        for chunk in (1, 2, 3, 1 << 20):
            assert rawio._separators_per_line(path, ",", chunk).tolist() == (want if text else [])


def test_kuairand_bad_upload_date(data_dir: Path) -> None:
    path = data_dir / "kuairand-pure" / "video_features_basic_pure.csv"
    fields = path.read_text().splitlines()[5].split(",")
    fields[3] = "08/07/2020"
    edit_line(path, 6, ",".join(fields))
    expect_error(data_dir, "kuairand-pure", path.name, 6, "not a date", progress=False)


# --------------------------------------------------------------------------------------------
# what a dataset has: flags, skip reasons, require
# --------------------------------------------------------------------------------------------
def test_require_and_skip_reason(data_dir: Path) -> None:
    ml = real.load_real("movielens-1m", data_dir)
    kr = real.load_real("kuairand-pure", data_dir, progress=False)
    for what in ("impressions", "searches", "truth"):
        assert not real.has(ml, what)
        with pytest.raises(real.MissingTableError, match=f"needs {what} and is skipped"):
            real.require(ml, what)
    assert real.has(ml, "demographics") and real.skip_reason(ml, "demographics") is None
    assert "no search log" in real.skip_reason(ml, "searches")
    real.require(kr, "impressions")                       # KuaiRand has real exposures
    with pytest.raises(real.MissingTableError, match="demographics"):
        real.require(kr, "impressions", "demographics")
    sim_like = datasets.Dataset(ml.users, ml.videos, ml.impressions, ml.searches,
                                meta={"name": "tiny", "has_impressions": True, "has_searches": True,
                                      "has_truth": True})
    real.require(sim_like, "impressions", "searches", "truth", "demographics")   # absent flag = present
    with pytest.raises(KeyError, match="choose from"):
        real.has(ml, "watches")


def test_skipped_prints_each_reason_once_and_says_whether_to_skip(data_dir: Path, capsys) -> None:
    ml = real.load_real("movielens-1m", data_dir)
    assert real.skipped(ml, "demographics") is False and capsys.readouterr().out == ""
    assert real.skipped(ml, "searches", "truth", "demographics") is True
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(ln.startswith("Skipped: ") for ln in lines)
    assert "needs searches" in lines[0] and "needs truth" in lines[1]


def test_load_real_arguments(data_dir: Path) -> None:
    with pytest.raises(KeyError, match="known: movielens-small"):
        real.load_real("movielens-10m", data_dir)
    with pytest.raises(ValueError, match="unknown option.*include_random.*threshold"):
        real.load_real("movielens-1m", data_dir, include_random=True)
    with pytest.raises(ValueError, match="simulator setting"):
        real.load_real("movielens-1m", data_dir, style="studio")


def test_data_dir_from_environment_and_nested_archive_folder(data_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    nested = tmp_path / "other"
    (nested / "movielens-1m").mkdir(parents=True)
    (data_dir / "movielens-1m").rename(nested / "movielens-1m" / "ml-1m")   # as unzipped by hand
    monkeypatch.setenv("YTREC_DATA_DIR", str(nested))
    ds = real.load_real("movielens-1m")
    assert ds.meta["data_dir"] == str(nested / "movielens-1m" / "ml-1m")
    assert len(ds.users) == 40


def test_datasets_load_accepts_real_names(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if "movielens-1m" not in datasets.known_presets():
        pytest.skip("datasets.known_presets() does not list the real datasets yet (hook not added)")
    monkeypatch.setenv("YTREC_DATA_DIR", str(data_dir))
    a, b = datasets.load("movielens-1m", seed=0), real.load_real("movielens-1m")
    pd.testing.assert_frame_equal(a.impressions, b.impressions)


# --------------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------------
def pin(monkeypatch: pytest.MonkeyPatch, name: str, archive: Path) -> None:
    """Make the registry expect ``archive`` (as if it were the published file)."""
    size, sha, md5 = download._digests(archive)
    s = real.REAL_DATASETS[name]
    monkeypatch.setitem(real.REAL_DATASETS, name, dataclasses.replace(
        s, archive=dataclasses.replace(s.archive, sha256=sha, md5=md5, size=size)))


@pytest.fixture
def ml1m_zip(tmp_path: Path) -> Path:
    src = rf.write_movielens_1m(tmp_path / "src-ml1m")
    return rf.make_archive(src, tmp_path / "ml-1m.zip", "ml-1m")


def test_offline_download_fails_at_once_with_instructions(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def offline(url, timeout=None):
        calls.append((url, timeout))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    data = tmp_path / "data"
    with pytest.raises(download.DownloadError) as info:
        download.download("movielens-1m", data, progress=False)
    msg = str(info.value)
    assert calls == [("https://files.grouplens.org/datasets/movielens/ml-1m.zip", download.DEFAULT_TIMEOUT_S)]
    assert download.DEFAULT_TIMEOUT_S <= 10
    assert f"put ratings.dat, users.dat, movies.dat into {data / 'movielens-1m'}/" in msg
    assert "--archive" in msg
    assert snapshot(data) == {}


def test_unresolvable_url(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with pytest.raises(download.DownloadError, match="could not download http://ytrec-test.invalid/"):
        download.download("kuairand-pure", data, url="http://ytrec-test.invalid/KuaiRand-Pure.tar.gz",
                          timeout=2.0, progress=False)
    assert snapshot(data) == {}


def test_checksum_mismatch_installs_nothing(tmp_path: Path, ml1m_zip: Path) -> None:
    data = tmp_path / "data"
    with pytest.raises(download.ChecksumError, match=r"file://.*ml-1m.zip: size is \d+, expected 5917549"):
        download.download("movielens-1m", data, url=ml1m_zip.as_uri(), progress=False)
    assert snapshot(data) == {}
    s = real.REAL_DATASETS["movielens-1m"]
    wrong = dataclasses.replace(s.archive, size=None)          # only the SHA-256 left to catch it
    with pytest.raises(download.ChecksumError, match="SHA-256 is [0-9a-f]{64}, expected a6898adb"):
        download.verify_archive(ml1m_zip, dataclasses.replace(s, archive=wrong))


def test_download_zip_then_load(tmp_path: Path, ml1m_zip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "movielens-1m", ml1m_zip)
    data = tmp_path / "data"
    folder = download.download("movielens-1m", data, url=ml1m_zip.as_uri(), progress=False)
    assert folder == data / "movielens-1m"
    assert sorted(p.name for p in data.iterdir()) == ["movielens-1m"]          # no staging folder left
    for f in real.REAL_DATASETS["movielens-1m"].files:                          # byte-identical files
        assert (folder / f).read_bytes() == (tmp_path / "src-ml1m" / f).read_bytes()
    got = real.load_real("movielens-1m", data)
    ref = naive_1m(tmp_path / "src-ml1m")
    assert len(got.impressions) == len(ref["ratings"])


def test_download_tar_gz_from_local_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = rf.write_kuairand(tmp_path / "src-kr")
    (src / "load_data_pure.py").write_text("# the publisher's loader script\n")
    archive = rf.make_archive(src, tmp_path / "KuaiRand-Pure.tar.gz", "KuaiRand-Pure/data")
    pin(monkeypatch, "kuairand-pure", archive)
    data = tmp_path / "data"
    folder = download.download("kuairand-pure", data, archive=archive, progress=False)
    names = sorted(p.name for p in folder.iterdir())
    s = real.REAL_DATASETS["kuairand-pure"]
    assert names == sorted(s.files + s.optional_files)                # only what the adapter reads
    a = real.load_real("kuairand-pure", data, progress=False, include_random=True)
    assert int(a.impressions["is_rand"].sum()) > 0


def test_damaged_archive_installs_nothing(tmp_path: Path, ml1m_zip: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    raw = bytearray(ml1m_zip.read_bytes())
    with zipfile.ZipFile(ml1m_zip) as zf:
        info = zf.getinfo("ml-1m/ratings.dat")
    raw[info.header_offset + 60] ^= 0xFF                           # corrupt compressed data of ratings.dat
    bad = tmp_path / "bad" / "ml-1m.zip"
    bad.parent.mkdir()
    bad.write_bytes(bytes(raw))
    pin(monkeypatch, "movielens-1m", bad)              # checksum "right": only the zip CRC catches it
    data = tmp_path / "data"
    with pytest.raises(download.DownloadError, match="damaged"):
        download.download("movielens-1m", data, archive=bad, progress=False)
    assert snapshot(data) == {}


def test_archive_without_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = rf.write_movielens_small(tmp_path / "src")
    (src / "movies.csv").unlink()
    archive = rf.make_archive(src, tmp_path / "ml-latest-small.zip", "ml-latest-small")
    pin(monkeypatch, "movielens-small", archive)
    data = tmp_path / "data"
    with pytest.raises(download.DownloadError, match="has no movies.csv under ml-latest-small/"):
        download.download("movielens-small", data, archive=archive, progress=False)
    assert snapshot(data) == {}


def test_existing_folder_is_kept_unless_forced(tmp_path: Path, ml1m_zip: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "movielens-1m", ml1m_zip)
    data = tmp_path / "data"
    download.download("movielens-1m", data, archive=ml1m_zip, progress=False)
    (data / "movielens-1m" / "users.dat").write_text("")          # damage it
    with pytest.raises(download.DownloadError, match="--force"):
        download.download("movielens-1m", data, archive=ml1m_zip, progress=False)
    download.download("movielens-1m", data, archive=ml1m_zip, force=True, progress=False)
    assert (data / "movielens-1m" / "users.dat").stat().st_size > 0
    assert sorted(p.name for p in data.iterdir()) == ["movielens-1m"]          # no staging folder left


def test_cli_download(tmp_path: Path, ml1m_zip: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    assert cli.main(["download", "movielens-1m", "--data-dir", str(data), "--url", "http://ytrec-test.invalid/x.zip",
                     "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: could not download") and "movielens-1m/" in err
    pin(monkeypatch, "movielens-1m", ml1m_zip)
    assert cli.main(["download", "movielens-1m", "--data-dir", str(data), "--archive", str(ml1m_zip)]) == 0
    assert "--preset movielens-1m" in capsys.readouterr().out
    assert (data / "movielens-1m" / "ratings.dat").is_file()


def test_version_changes_when_the_files_or_options_change(data_dir: Path) -> None:
    """Models cached on a real dataset are keyed by ``meta['generator_version']``: replacing a file or
    loading with other options must change it, loading the same files again must not."""
    first = real.load_real("movielens-1m", data_dir).meta["generator_version"]
    assert real.load_real("movielens-1m", data_dir).meta["generator_version"] == first
    assert real.load_real("movielens-1m", data_dir, threshold=3).meta["generator_version"] != first
    ratings = data_dir / "movielens-1m" / "ratings.dat"
    lines = ratings.read_bytes().splitlines(keepends=True)
    ratings.write_bytes(b"".join(lines[:-1]))                       # one rating fewer
    assert real.load_real("movielens-1m", data_dir).meta["generator_version"] != first
