"""ytrec_lib.data.cache: the one cache-key formula every cached artefact is named by."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from ytrec_lib.data.cache import cache_key


def test_cache_key_is_pinned_to_sorted_json_sha256() -> None:
    # keys name files already on users' disks: a changed formula would silently orphan them all
    assert cache_key({"b": 1j + 1, "a": [1, 2]}) == "04887c0b1d7b"
    assert cache_key({"a": [1, 2], "b": 1 + 1j}) == cache_key({"b": 1 + 1j, "a": [1, 2]})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_every_cache_uses_the_shared_key() -> None:
    from ytrec_lib import pipeline
    from ytrec_lib.data import real

    config = pipeline.CandidateConfig(tower=(256, 128))
    upstream, data = {"preset": "ci", "seed": "0"}, "0123456789ab"
    assert pipeline.stage_key("candidate", config, upstream, data) == cache_key(
        {"stage": "candidate", "config": asdict(config), "upstream": upstream, "data": data})
    assert pipeline.stage_key("candidate", replace(config, epochs=3), upstream, data) != pipeline.stage_key(
        "candidate", config, upstream, data)
    assert real.files_fingerprint(Path(__file__).parent / "no-such-folder") == cache_key({"files": [],
                                                                                         "options": {}})


# ----------------------------------------------------------------------------------------------------
# atomic writes and safe loads


def test_atomic_write_leaves_no_temp_and_keeps_old_file_on_error(tmp_path: Path) -> None:
    import pytest

    from ytrec_lib.data.cache import atomic_path, atomic_write_text

    target = tmp_path / "r.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer died")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_two_writers_get_distinct_temp_names(tmp_path: Path) -> None:
    from ytrec_lib.data.cache import atomic_path

    target = tmp_path / "a.bin"
    with atomic_path(target) as t1, atomic_path(target) as t2:
        assert t1 != t2 and t1.parent == t2.parent == tmp_path
        t1.write_bytes(b"1")
        t2.write_bytes(b"2")
    assert target.read_bytes() == b"1"  # the outer block finishes last


def test_load_torch_refuses_a_pickle_that_runs_code(tmp_path: Path) -> None:
    import pickle

    import pytest

    from ytrec_lib.data.cache import DamagedArtifact, load_torch

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):  # noqa: ANN204 - the classic pickle exploit shape
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": Payload()}))
    with pytest.raises(DamagedArtifact, match="evil.pt"):
        load_torch(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"PK\x03\x04truncated"])
def test_safe_loads_call_damaged_files_damaged(tmp_path: Path, content: bytes) -> None:
    from ytrec_lib.data.cache import DamagedArtifact, load_json, load_npz, load_torch

    for load in (load_torch, load_npz, load_json):
        path = tmp_path / "x"
        path.write_bytes(content)
        with pytest.raises(DamagedArtifact):
            load(path)


def test_load_json_checks_the_type(tmp_path: Path) -> None:
    from ytrec_lib.data.cache import DamagedArtifact, load_json

    for text in ("[]", "null", "3"):
        (tmp_path / "m.json").write_text(text)
        with pytest.raises(DamagedArtifact, match="expected dict"):
            load_json(tmp_path / "m.json")


def test_load_or_build_rebuilds_a_damaged_file_with_one_warning(tmp_path: Path) -> None:
    import warnings

    from ytrec_lib.data.cache import atomic_write_text, load_json, load_or_build

    path = tmp_path / "v.json"
    path.write_text("{not json")
    calls = []

    def build() -> dict:
        calls.append(1)
        return {"v": 1}

    def save(v: dict, p: Path) -> None:
        atomic_write_text(p, json.dumps(v))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value, cached = load_or_build(path, load_json, build, save, what="thing")
    assert value == {"v": 1} and not cached and len(calls) == 1
    assert len(caught) == 1 and "v.json" in str(caught[0].message) and "\n" not in str(caught[0].message)
    value, cached = load_or_build(path, load_json, build, save, what="thing")
    assert value == {"v": 1} and cached and len(calls) == 1


def test_sweep_removes_only_old_project_temps(tmp_path: Path) -> None:
    import os

    from ytrec_lib.data.cache import sweep_stale_temps

    old_file = tmp_path / ".small-seed0-v1.abc.tmp"
    old_dir = tmp_path / ".small-seed0-v1.tmpxyz"
    fresh = tmp_path / ".x.json.123.tmp"
    keep = tmp_path / "small-seed0-v1"
    old_file.write_text("x")
    old_dir.mkdir()
    (old_dir / "users.npz").write_bytes(b"1" * 100)
    fresh.write_text("y")
    keep.mkdir()
    for p in (old_file, old_dir):
        os.utime(p, (0, 0))
    removed = sweep_stale_temps(tmp_path, older_than=60)
    assert sorted(p.name for p in removed) == sorted([old_file.name, old_dir.name])
    assert fresh.exists() and keep.exists() and not old_dir.exists()
