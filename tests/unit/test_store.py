"""Tests of ytrec_lib.serving.store: exact round trip, versions, refusals,
and reads during a concurrent write."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ytrec_lib.serving import store as store_mod
from ytrec_lib.serving.store import EmbeddingStore


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.fixture
def db(tmp_path):
    with EmbeddingStore(tmp_path / "emb.sqlite") as s:
        yield s


def _random(rng, n, m):
    return rng.standard_normal((n, m)).astype(np.float32)


# ---------------------------------------------------------------- exact round trip

_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True)
_special = st.sampled_from([0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    users=hnp.arrays(np.float32, st.tuples(st.integers(0, 6), st.just(5)), elements=_f32 | _special),
    videos=hnp.arrays(np.float32, st.tuples(st.integers(1, 9), st.just(5)), elements=_f32 | _special),
    data=st.data(),
)
def test_round_trip_is_bit_exact(tmp_path_factory, users, videos, data):
    path = tmp_path_factory.mktemp("rt") / "s.sqlite"
    vids = data.draw(st.lists(st.integers(-(2**62), 2**62), min_size=len(videos), max_size=len(videos),
                              unique=True))
    with EmbeddingStore(path) as s:
        s.write_version("v", users, videos, video_ids=vids)
        got_u = s.get_users(np.arange(len(users)))
        ids, got_v = s.get_videos()
        got_v_by_id = s.get_videos(vids[::-1])[1]
    assert got_u.dtype == np.float32 and got_v.dtype == np.float32
    np.testing.assert_array_equal(_bits(got_u), _bits(users))
    order = np.argsort(vids)
    np.testing.assert_array_equal(ids, np.asarray(vids)[order])
    np.testing.assert_array_equal(_bits(got_v), _bits(videos[order]))
    np.testing.assert_array_equal(_bits(got_v_by_id), _bits(videos[::-1]))


def test_negative_zero_and_subnormal_survive(db):
    special = np.array([[-0.0, 1e-45, -1e-45, 1e-40]], dtype=np.float32)
    db.write_version("v", special, special)
    got = db.get_user(0)
    np.testing.assert_array_equal(_bits(got), _bits(special[0]))
    assert np.signbit(got[0]) and got[1] > 0 and got[1] < np.finfo(np.float32).tiny


def test_big_endian_float32_is_accepted_and_exact(db):
    a = np.array([[1.5, -2.25e-39, 3.0]], dtype=">f4")
    db.write_version("v", a, a)
    np.testing.assert_array_equal(_bits(db.get_videos()[1]), _bits(a.astype(np.float32)))


@pytest.mark.parametrize("n_ids", [3, 1500, 20000])  # small IN-batches, several chunks, bulk path
def test_batched_reads_match_numpy(db, n_ids, monkeypatch):
    rng = np.random.default_rng(1)
    users, videos = _random(rng, 25000, 7), _random(rng, 30000, 7)
    uid = rng.permutation(10**6)[:25000]
    monkeypatch.setattr(store_mod, "BLOCK_ROWS", 4096)  # several blocks
    db.write_version("v", users, videos, user_ids=uid)
    pick = rng.integers(0, 25000, n_ids)  # with repeats
    np.testing.assert_array_equal(db.get_users(uid[pick]), users[pick])
    ids, got = db.get_videos()
    np.testing.assert_array_equal(ids, np.arange(30000))
    np.testing.assert_array_equal(got, videos)


# ---------------------------------------------------------------- versions

def test_versions_active_and_meta(db):
    rng = np.random.default_rng(0)
    assert db.active_version() is None and db.versions() == []
    u1, v1 = _random(rng, 3, 4), _random(rng, 5, 4)
    u2, v2 = _random(rng, 3, 6), _random(rng, 5, 6)
    db.write_version("v1", u1, v1, meta={"epochs": np.int64(3), "note": "first"})
    db.write_version("v2", u2, v2)
    assert db.versions() == ["v1", "v2"] and db.active_version() == "v2"
    assert db.dim() == 6 and db.dim("v1") == 4
    np.testing.assert_array_equal(db.get_user(1), u2[1])
    np.testing.assert_array_equal(db.get_user(1, "v1"), u1[1])
    info = db.version_info("v1")
    assert info["meta"] == {"epochs": 3, "note": "first"}
    assert (info["n_users"], info["n_videos"], info["dim"]) == (3, 5, 4)
    db.set_active("v1")
    np.testing.assert_array_equal(db.get_videos()[1], v1)
    db.write_version("v3", u1, v1, activate=False)
    assert db.active_version() == "v1"
    db.delete_version("v2")
    assert db.versions() == ["v1", "v3"]
    with pytest.raises(KeyError, match="'v2'"):
        db.get_user(0, "v2")


def test_reopen_sees_committed_data(tmp_path):
    rng = np.random.default_rng(0)
    u, v = _random(rng, 4, 3), _random(rng, 6, 3)
    with EmbeddingStore(tmp_path / "s.sqlite") as s:
        s.write_version("v", u, v)
    with EmbeddingStore(tmp_path / "s.sqlite") as s:
        assert s.active_version() == "v"
        np.testing.assert_array_equal(s.get_users([3, 0]), u[[3, 0]])
        (mode,) = s._con.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


def test_replace_overwrites_whole_version(db):
    rng = np.random.default_rng(0)
    db.write_version("v", _random(rng, 10, 3), _random(rng, 10, 3))
    u, v = _random(rng, 4, 3), _random(rng, 2, 3)
    db.write_version("v", u, v, replace=True)
    ids, got = db.get_videos()
    np.testing.assert_array_equal(ids, [0, 1])
    np.testing.assert_array_equal(got, v)
    with pytest.raises(KeyError, match="user id 7"):
        db.get_user(7)


# ---------------------------------------------------------------- refusals

def test_existing_version_refused_and_nothing_written(db):
    rng = np.random.default_rng(0)
    u, v = _random(rng, 3, 4), _random(rng, 5, 4)
    db.write_version("v1", u, v)
    with pytest.raises(ValueError, match="'v1' already exists.*replace=True"):
        db.write_version("v1", u + 1, v + 1)
    np.testing.assert_array_equal(db.get_user(0), u[0])
    with pytest.raises(ValueError, match="dimension mismatch.*'v1' has dim 4"):
        db.write_version("v1", _random(rng, 3, 5), _random(rng, 5, 5), replace=True)
    np.testing.assert_array_equal(db.get_videos()[1], v)


def test_dimension_mismatches_refused(db):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="users have m=4 but videos have m=5"):
        db.write_version("v", _random(rng, 3, 4), _random(rng, 5, 5))
    assert db.versions() == []
    db.write_version("v", _random(rng, 3, 4), _random(rng, 5, 4))
    with pytest.raises(ValueError, match="'v' stores m=4 but the caller expects m=33"):
        db.get_videos(expect_dim=33)
    with pytest.raises(ValueError, match="expects m=5"):
        db.get_user(0, expect_dim=5)
    assert db.get_users([0], expect_dim=4).shape == (1, 4)


@pytest.mark.parametrize(
    ("users", "match"),
    [
        (np.zeros((3, 4), np.float64), "float32, got float64.*astype"),
        (np.zeros((3, 4), np.float16), "float32, got float16"),
        (np.zeros(4, np.float32), r"shape \(n, m\).*\(4,\)"),
        (np.zeros((3, 0), np.float32), r"m >= 1"),
        ([[0.0, 1.0]], "numpy array"),
        (np.array([[0, 1], [np.nan, 0]], np.float32), "row 1 has NaN"),
        (np.array([[np.inf, 1]], np.float32), "row 0 has NaN or infinite"),
    ],
)
def test_bad_arrays_refused(db, users, match):
    with pytest.raises(ValueError, match=match):
        db.write_version("v", users, np.zeros((2, 4 if np.ndim(users) == 2 else 1), np.float32))
    assert db.versions() == []


def test_bad_ids_and_names_refused(db):
    u, v = np.zeros((3, 2), np.float32), np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match=r"user_ids must have shape \(3,\)"):
        db.write_version("v", u, v, user_ids=[0, 1])
    with pytest.raises(ValueError, match="duplicates.*id 5"):
        db.write_version("v", u, v, user_ids=[5, 5, 1])
    with pytest.raises(ValueError, match="integers"):
        db.write_version("v", u, v, video_ids=[0.5, 1.5])
    with pytest.raises(ValueError, match="non-empty string"):
        db.write_version("", u, v)
    with pytest.raises(ValueError, match="JSON-able"):
        db.write_version("v", u, v, meta={"f": object()})
    assert db.versions() == []


def test_unknown_ids_and_versions(db):
    with pytest.raises(KeyError, match="no versions yet.*write_version"):
        db.get_user(0)
    db.write_version("v1", np.ones((3, 2), np.float32), np.ones((4, 2), np.float32))
    with pytest.raises(KeyError, match="user id 3 is not in version 'v1'"):
        db.get_user(3)
    with pytest.raises(KeyError, match="video id 9 .*2 ids missing"):
        db.get_videos([0, 9, 10])
    with pytest.raises(KeyError, match="'v9' is not in the store.*'v1'"):
        db.dim("v9")
    with pytest.raises(KeyError, match="'v9'"):
        db.set_active("v9")
    with pytest.raises(ValueError, match="active version"):
        db.delete_version("v1")


def test_not_a_database_refused(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="not a usable embedding store"):
        EmbeddingStore(bad)


def test_other_schema_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    EmbeddingStore(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE store_meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(ValueError, match="schema 99"):
        EmbeddingStore(path)


# ---------------------------------------------------------------- concurrency

N_USERS, N_VIDEOS, DIM = 300, 3000, 8


def _marked(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Version k: every value of every row equals k (so a mix of versions is visible)."""
    return np.full((N_USERS, DIM), k, np.float32), np.full((N_VIDEOS, DIM), k, np.float32)


def _check_snapshot(s: EmbeddingStore) -> tuple[int, str]:
    """Read the active version's videos and a batch of users; return (marker, version), raise on a mix."""
    ids, vids = s.get_videos()                          # one read transaction
    assert len(np.unique(vids)) == 1, f"mixed versions in one get_videos: {np.unique(vids)}"
    with s.snapshot():                                  # several reads, one snapshot
        version = s.active_version()
        ids, vids = s.get_videos()
        users = s.get_users(np.arange(0, 5 * 25, 5))    # 25 ids, several IN-chunks when CHUNK is small
    markers = np.unique(np.concatenate([vids.ravel(), users.ravel()]))
    assert len(markers) == 1, f"mixed versions in one read: markers {markers}"
    assert len(ids) == N_VIDEOS
    return int(markers[0]), version


def _writer(path, n_versions: int, started) -> None:
    with EmbeddingStore(path) as s:
        assert started.wait(60), "the reader never started"
        for k in range(1, n_versions + 1):
            # alternate: a brand-new active version, and replacing the active version in place
            s.write_version("live" if k % 2 else f"v{k}", *_marked(k), replace=True)


def test_reader_thread_never_sees_a_mix(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "CHUNK", 4)  # get_users runs 7 SELECTs, all in one snapshot
    path = tmp_path / "s.sqlite"
    with EmbeddingStore(path) as s:
        s.write_version("live", *_marked(0))
    started, done = threading.Event(), threading.Event()
    seen, errors = [], []

    def reader() -> None:
        try:
            with EmbeddingStore(path) as r:
                while True:
                    finished = done.is_set()
                    seen.append(_check_snapshot(r))
                    started.set()
                    if finished:
                        return
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
            started.set()

    t = threading.Thread(target=reader)
    t.start()
    _writer(path, 12, started)
    done.set()
    t.join(60)
    assert not errors, errors[0]
    markers = [m for m, _ in seen]
    assert markers[0] == 0 and markers[-1] == 12          # saw the version before and after
    assert markers == sorted(markers)                       # never went back in time
    for marker, version in seen:                            # marker k was written as that version
        assert version == ("live" if marker % 2 or marker == 0 else f"v{marker}")


def _reader_process(path: str, ready, stop, out) -> None:
    try:
        with EmbeddingStore(path) as r:
            markers = []
            while not stop.is_set():
                markers.append(_check_snapshot(r)[0])
                ready.set()
            markers.append(_check_snapshot(r)[0])
        out.put(("ok", markers))
    except BaseException as exc:
        out.put(("error", repr(exc)))


def test_reader_process_never_sees_a_mix(tmp_path):
    path = tmp_path / "s.sqlite"
    with EmbeddingStore(path) as s:
        s.write_version("live", *_marked(0))
    ctx = mp.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_reader_process, args=(str(path), ready, stop, out))
    proc.start()
    _writer(path, 20, ready)
    stop.set()
    status, markers = out.get(timeout=120)
    proc.join(30)
    assert status == "ok", markers
    assert markers[0] == 0 and markers[-1] == 20 and markers == sorted(markers)


def test_snapshot_isolates_from_a_concurrent_write(tmp_path):
    path = tmp_path / "s.sqlite"
    with EmbeddingStore(path) as reader, EmbeddingStore(path) as writer:
        writer.write_version("live", *_marked(1))
        with reader.snapshot():
            before = reader.get_user(0)
            writer.write_version("live", *_marked(2), replace=True)   # not blocked by the reader
            assert reader.get_videos()[1][0, 0] == 1 and before[0] == 1
            with pytest.raises(ValueError, match="cannot write inside store.snapshot"):
                reader.write_version("x", *_marked(3))
        assert reader.get_user(0)[0] == 2 and reader.get_videos()[1][-1, -1] == 2


# ---------------------------------------------------------------- reads_during_writes (notebook 04)


def test_reads_during_writes_sees_only_complete_versions(tmp_path):
    rng = np.random.default_rng(5)
    users, videos = _random(rng, 6, 3), _random(rng, 40, 3)
    known = {"plain": (users, videos), "negated": (-users, -videos)}
    path = tmp_path / "emb.sqlite"
    with EmbeddingStore(path) as s:
        s.write_version("v0", users, videos)

        def write():
            for i in range(1, 5):
                s.write_version(f"v{i}", *known["negated" if i % 2 else "plain"])

        reads = store_mod.reads_during_writes(path, write, np.arange(6), known)
    assert len(reads) >= 2 and reads[0] == ("v0", "plain")
    assert reads[-1] == ("v4", "plain")  # one last read after the writer finished
    expected = {"v0": "plain", "v1": "negated", "v2": "plain", "v3": "negated", "v4": "plain"}
    assert all(content == expected[version] for version, content in reads)


def test_reads_during_writes_classifies_unknown_content_as_mixed_and_reraises_reader_errors(tmp_path):
    rng = np.random.default_rng(6)
    users, videos = _random(rng, 4, 2), _random(rng, 10, 2)
    path = tmp_path / "emb.sqlite"
    with EmbeddingStore(path) as s:
        s.write_version("v0", users, videos)
    assert store_mod.reads_during_writes(path, lambda: None, np.arange(4), {})[-1] == ("v0", "mixed")
    with pytest.raises(KeyError):  # a user the store does not hold: the reader's error reaches the caller
        store_mod.reads_during_writes(path, lambda: None, np.array([99]), {})
