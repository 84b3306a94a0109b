"""MovieLens 100K (``movielens-100k``): the adapter against a naive parser on files written in the
published format (tests/fixtures/real_formats.py), every malformed-file error, the download with a
locally built zip, and -- when it is there -- the real copy in ``../shared/data/ml-100k`` (read in
place or copied to a temporary data folder; never into the repository).

The data contract and the other loaders are tested in test_real_datasets.py (which also runs its
contract test on movielens-100k).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ytrec_lib.course import cli
from ytrec_lib.data import datasets, download, real
from ytrec_lib.data.rawio import DataFileError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import real_formats as rf  # noqa: E402

NAME = "movielens-100k"
SHARED = rf.SHARED_ML100K
PUBLISHED_MD5 = "0e33842e24a9c977be4e0107933c0723"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pristine100k")
    rf.write_movielens_100k(d / NAME)
    return d


@pytest.fixture
def data_dir(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the files for one test (which may damage them)."""
    return Path(shutil.copytree(pristine, tmp_path / "data"))


@pytest.fixture
def shared() -> Path:
    if not (SHARED / "u.data").is_file():
        pytest.skip(f"the real ml-100k copy is not at {SHARED} (a copy outside the repository, "
                    "never committed); the format tests above cover the adapter without it")
    return SHARED


def naive(folder: Path) -> dict:
    def lines(f: str, sep: str) -> list[list[str]]:
        return [ln.split(sep) for ln in (folder / f).read_bytes().decode("latin-1").splitlines()]
    ratings = [tuple(int(x) for x in p) for p in lines("u.data", "\t")]
    users = {int(p[0]): p for p in lines("u.user", "|")}
    items = {int(p[0]): p for p in lines("u.item", "|")}
    return {"ratings": ratings, "users": users, "items": items}



def day(ds, date: str) -> float:
    return (pd.Timestamp(date, tz="UTC").timestamp() - ds.meta["t0_unix"]) / 86400.0


# --------------------------------------------------------------------------------------------
# the mapping, against a naive parser
# --------------------------------------------------------------------------------------------
def test_every_rating_is_a_watch_by_default(data_dir: Path) -> None:
    ds = real.load_real(NAME, data_dir)
    ref = naive(data_dir / NAME)
    assert rf.watch_keys(ds) == Counter((u, m, t) for u, m, r, t in ref["ratings"])
    imp = ds.impressions
    np.testing.assert_allclose(imp["watch_time"], 6000.0 * imp["rating"] / 5.0, rtol=1e-6)
    liked = real.load_real(NAME, data_dir, threshold=4)
    assert rf.watch_keys(liked) == Counter((u, m, t) for u, m, r, t in ref["ratings"] if r >= 4)
    assert ds.meta["threshold"] is None and liked.meta["threshold"] == 4.0
    with pytest.raises(ValueError, match="threshold"):
        real.load_real(NAME, data_dir, threshold=0)


def test_users_age_gender_occupation_region(data_dir: Path) -> None:
    ds = real.load_real(NAME, data_dir)
    ref = naive(data_dir / NAME)
    users = ds.users.set_index("source_id")
    assert sorted(users.index) == sorted(ref["users"])
    names = ds.meta["occupation_names"]
    for uid, (_, age, gender, occupation, zipcode) in ref["users"].items():
        assert users.loc[uid, "age"] == float(age)                        # years, as published
        assert users.loc[uid, "gender"] == (1 if gender == "M" else 0)
        assert names[users.loc[uid, "occupation"]] == occupation
        assert users.loc[uid, "region"] == (int(zipcode[0]) if zipcode.isdigit() else 10)   # T8H1N -> 10
        assert users.loc[uid, "zip_code"] == zipcode
    assert len(names) == 21 and ds.meta["n_regions"] == 11
    assert ds.meta["has_demographics"] is True and real.skip_reason(ds, "demographics") is None
    assert real.skip_reason(ds, "searches") is not None and ds.truth is None


def test_items_titles_genres_and_upload_times(data_dir: Path) -> None:
    ds = real.load_real(NAME, data_dir)
    ref = naive(data_dir / NAME)
    videos = ds.videos.set_index("source_id")
    assert sorted(videos.index) == sorted(ref["items"])
    assert videos.loc[3, "title"] == "Misérables, Les (1995)"             # Latin-1 decoded
    assert videos.loc[7, "title"] == "Cérémonie, La (1995)"
    topic_names = ds.meta["topic_names"]
    assert topic_names[videos.loc[2, "topic"]] == "(no genres listed)"   # the 'unknown' genre flag
    assert videos.loc[1, "genres"] == "Animation|Children's|Comedy"
    first = {}
    for _, m, _, t in ref["ratings"]:
        first[m] = min(first.get(m, t), t)

    def first_day(m: int) -> float:
        return (first[m] - ds.meta["t0_unix"]) / 86400.0 if m in first else np.inf
    # the release date, where given (a re-release after the title year counts; a one-digit day too) ...
    assert videos.loc[5, "upload_time"] == pytest.approx(min(day(ds, "1997-06-27"), first_day(5)))
    assert videos.loc[6, "upload_time"] == pytest.approx(min(day(ds, "1971-02-04"), first_day(6)))
    # ... else 1 January of the title's year; a title ending in "(V)" has a date
    assert videos.loc[7, "upload_time"] == pytest.approx(min(day(ds, "1995-01-01"), first_day(7)))
    assert videos.loc[4, "upload_time"] == pytest.approx(min(day(ds, "1995-01-01"), first_day(4)))
    # ... else (no date, no year: 'unknown') the first rating
    assert videos.loc[2, "upload_time"] == pytest.approx(first_day(2) if 2 in first else 0.0)


def test_crlf_line_ends_read_the_same(tmp_path: Path) -> None:
    a = real.load_real(NAME, rf.write_movielens_100k(tmp_path / "a" / NAME).parent)
    b = real.load_real(NAME, rf.write_movielens_100k(tmp_path / "b" / NAME, crlf=True).parent)
    pd.testing.assert_frame_equal(a.impressions, b.impressions)
    pd.testing.assert_frame_equal(a.users, b.users)
    assert a.videos["title"].tolist() == b.videos["title"].tolist()


# --------------------------------------------------------------------------------------------
# malformed files: one line naming the file, the line and what to do; nothing written
# --------------------------------------------------------------------------------------------
def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


def edit_line(path: Path, lineno: int, new: str) -> None:
    lines = path.read_bytes().decode("latin-1").split("\n")
    lines[lineno - 1] = new
    path.write_bytes("\n".join(lines).encode("latin-1"))


def expect_error(data_dir: Path, file: str, line: int | None, match: str) -> DataFileError:
    before = snapshot(data_dir)
    with pytest.raises(DataFileError, match=match) as info:
        real.load_real(NAME, data_dir)
    msg = str(info.value)
    assert info.value.path.name == file and info.value.line == line
    assert (f"{file}, line {line}: " if line else f"{file}: ") in msg
    assert f"python -m ytrec_lib download {NAME}" in msg and "\n" not in msg       # what to do, one line
    assert snapshot(data_dir) == before
    return info.value


ITEM3 = "3|Misérables, Les (1995)|01-Jan-1995||http://x|" + "|".join("0" * 19)
USER3 = "3|{age}|{gender}|{occupation}|55455"


@pytest.mark.parametrize("file,line,new,match", [
    ("u.item", 3, "3|Misérables, Les (1995)|01-Jan-1995", r"3 fields, expected 24 .*truncated"),
    ("u.item", 3, ITEM3 + "|0", "25 fields, expected 24.*extra field"),
    ("u.item", 3, ITEM3.replace("01-Jan-1995", "1995-01-01"), "release date '1995-01-01' is not a date like"),
    ("u.item", 3, ITEM3.replace("01-Jan-1995", "31-Feb-1995"), "release date '31-Feb-1995' is not a date"),
    ("u.item", 3, ITEM3[:-1] + "2", "genre flag 2 is not 0 or 1"),
    ("u.item", 3, ITEM3.replace("3|", "1|", 1), "movie id 1 appears twice"),
    ("u.item", 3, ITEM3.replace("3|", "three|", 1), "column 'movie id': 'three' is not an integer"),
    ("u.user", 3, "3|23|M|writer", r"4 fields, expected 5"),
    ("u.user", 3, USER3.format(age=200, gender="M", occupation="writer"),
     "user 3 has age 200, outside the plausible 0..120 years"),
    ("u.user", 3, USER3.format(age=-5, gender="M", occupation="writer"), "user 3 has age -5, outside"),
    ("u.user", 3, USER3.format(age="twenty", gender="M", occupation="writer"), "'twenty' is not an integer"),
    ("u.user", 3, USER3.format(age=23, gender="X", occupation="writer"), "gender 'X' is not F or M"),
    ("u.user", 3, USER3.format(age=23, gender="M", occupation="astronaut"),
     "occupation 'astronaut' is not one of the 21 of u.occupation"),
    ("u.user", 3, USER3.format(age=23, gender="M", occupation="writer").replace("3|", "1|", 1),
     "user id 1 appears twice"),
    ("u.data", 5, "999\t1\t3\t881250949", "user 999 is not in the users file"),
    ("u.data", 5, "1\t9999\t3\t881250949", "movie 9999 is not in u.item"),
    ("u.data", 5, "1\t1\t6\t881250949", r"rating 6.0 is outside \(0, 5\]"),
    ("u.data", 5, "1 1 3 881250949", r"1 fields, expected 4"),
    ("u.data", 5, "", "empty line"),
])
def test_malformed_line(data_dir: Path, file: str, line: int, new: str, match: str) -> None:
    edit_line(data_dir / NAME / file, line, new)
    expect_error(data_dir, file, line, match)


def test_utf8_resaved_file_is_refused(data_dir: Path) -> None:
    """Every byte is valid Latin-1, so a u.item re-saved as UTF-8 would load as 'MisÃ©rables'."""
    path = data_dir / NAME / "u.item"
    path.write_bytes(path.read_bytes().decode("latin-1").encode("utf-8"))
    expect_error(data_dir, "u.item", 3,
                 r"bytes c3 a9 are UTF-8 \('é'\), but the file is published as latin-1")


def test_control_byte_is_refused(data_dir: Path) -> None:
    path = data_dir / NAME / "u.user"
    lines = path.read_bytes().split(b"\n")
    lines[6] = lines[6].replace(b"|", b"\x00|", 1)
    path.write_bytes(b"\n".join(lines))
    expect_error(data_dir, "u.user", 7, "byte 0x00 is a control character, not latin-1 text")


@pytest.mark.parametrize("file", ["u.data", "u.user", "u.item"])
def test_empty_file(data_dir: Path, file: str) -> None:
    (data_dir / NAME / file).write_bytes(b"")
    expect_error(data_dir, file, None, r"the file is empty \(no data rows\) — the download is probably")


def test_missing_file_says_where_to_put_it(data_dir: Path) -> None:
    (data_dir / NAME / "u.user").unlink()
    with pytest.raises(real.MissingDataError, match=r"lacks u.user.*download movielens-100k.*ml-100k.zip"):
        real.load_real(NAME, data_dir)


# --------------------------------------------------------------------------------------------
# download: a locally built zip, the md5 check
# --------------------------------------------------------------------------------------------
@pytest.fixture
def ml100k_zip(tmp_path: Path) -> Path:
    src = rf.write_movielens_100k(tmp_path / "src")
    return rf.make_archive(src, tmp_path / "ml-100k.zip", "ml-100k")


def pin_md5(monkeypatch: pytest.MonkeyPatch, archive: Path) -> None:
    """Make the registry expect ``archive``'s md5 (the only checksum it has for ml-100k)."""
    s = real.REAL_DATASETS[NAME]
    md5 = download._digests(archive)[2]
    monkeypatch.setitem(real.REAL_DATASETS, NAME, dataclasses.replace(
        s, archive=dataclasses.replace(s.archive, md5=md5)))


def test_registry_entry() -> None:
    s = real.REAL_DATASETS[NAME]
    assert s.archive.url == "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    assert (s.archive.root, s.archive.md5, s.archive.sha256, s.archive.size) == ("ml-100k", PUBLISHED_MD5,
                                                                                None, None)
    assert s.files == ("u.data", "u.user", "u.item") and NAME in datasets.known_presets()


def test_wrong_md5_installs_nothing(tmp_path: Path, ml100k_zip: Path) -> None:
    data = tmp_path / "data"
    with pytest.raises(download.ChecksumError, match=f"md5 is [0-9a-f]{{32}}, expected {PUBLISHED_MD5}"):
        download.download(NAME, data, archive=ml100k_zip, progress=False)
    with pytest.raises(download.ChecksumError, match=rf"file://.*ml-100k.zip: md5 .*{PUBLISHED_MD5}"):
        download.download(NAME, data, url=ml100k_zip.as_uri(), progress=False)
    assert not data.exists() or snapshot(data) == {}


def test_download_from_local_zip_then_load(tmp_path: Path, ml100k_zip: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    pin_md5(monkeypatch, ml100k_zip)
    data = tmp_path / "data"
    assert cli.main(["download", NAME, "--data-dir", str(data), "--archive", str(ml100k_zip)]) == 0
    assert f"--preset {NAME}" in capsys.readouterr().out
    folder = data / NAME
    assert sorted(p.name for p in folder.iterdir()) == ["u.data", "u.item", "u.user"]   # only what is read
    for f in ("u.data", "u.user", "u.item"):
        assert (folder / f).read_bytes() == (tmp_path / "src" / f).read_bytes()
    assert sorted(p.name for p in data.iterdir()) == [NAME]                          # no staging folder left
    ds = real.load_real(NAME, data)
    assert len(ds.impressions) == len(naive(tmp_path / "src")["ratings"])
    again = download.download(NAME, data, url=ml100k_zip.as_uri(), progress=False)   # kept, not re-fetched
    assert again == folder


# --------------------------------------------------------------------------------------------
# the real copy (../shared/data/ml-100k), when present
# --------------------------------------------------------------------------------------------
def test_the_published_files(shared: Path) -> None:
    fields = real.REAL_DATASETS[NAME].loader(shared, NAME)
    ds = datasets.Dataset(**fields)
    m = ds.meta
    assert m["n_ratings"] == 100_000 and len(ds.impressions) == 100_000
    assert (m["n_users"], m["n_videos"]) == (943, 1682) and len(ds.users) == 943 and len(ds.videos) == 1682
    users = ds.users
    assert users["age"].between(1, 120).all() and users["age"].min() == 7 and users["age"].max() == 73
    assert users["gender"].isin([0, 1]).all() and users["region"].between(0, 10).all()
    assert users["zip_code"].str.len().eq(5).all()
    assert set(users["occupation"]) == set(range(21))
    videos = ds.videos.set_index("source_id")
    assert videos.loc[1, "title"] == "Toy Story (1995)"
    assert videos.loc[543, "title"] == "Misérables, Les (1995)"                    # Latin-1 0xE9
    assert videos.loc[1633, "title"] == "Á köldum klaka (Cold Fever) (1994)"
    assert not videos["title"].str.contains("Ã").any()
    # upload times: the stated release (1922 .. 1998) or the first rating, never after the log ends
    up = ds.videos["upload_time"].to_numpy()
    assert up.min() >= day(ds, "1922-01-01") and (up < m["t_end"]).all()
    assert videos.loc[1, "upload_time"] == pytest.approx(day(ds, "1995-01-01"))
    assert videos.loc[1373, "upload_time"] == pytest.approx(day(ds, "1971-02-04"))
    assert pd.Timestamp(m["t0_unix"], unit="s") == pd.Timestamp("1997-09-20")
    assert ds.meta["topic_names"][videos.loc[267, "topic"]] == "(no genres listed)"


def test_datasets_load_from_the_data_dir(shared: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "data" / NAME
    folder.mkdir(parents=True)
    for f in ("u.data", "u.user", "u.item", "u.genre", "u.occupation", "u.info"):
        shutil.copy(shared / f, folder / f)                                   # a temporary copy only
    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path / "data"))
    ds = datasets.load(NAME)
    assert len(ds.impressions) == 100_000 and ds.meta["data_dir"] == str(folder)
    assert len(real.load_real(NAME, threshold=4).impressions) < 100_000
