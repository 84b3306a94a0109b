"""ytrec_lib.data.cache: the one cache-key formula every cached artefact is named by."""

from __future__ import annotations

from pathlib import Path

from ytrec_lib.data.cache import cache_key


def test_cache_key_is_pinned_to_sorted_json_sha256() -> None:
    # keys name files already on users' disks: a changed formula would silently orphan them all
    assert cache_key({"b": 1j + 1, "a": [1, 2]}) == "04887c0b1d7b"
    assert cache_key({"a": [1, 2], "b": 1 + 1j}) == cache_key({"b": 1 + 1j, "a": [1, 2]})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_every_cache_uses_the_shared_key() -> None:
    from ytrec_lib import candidate
    from ytrec_lib.data import real

    config = {"preset": "ci", "seed": 0, "tower": [256, 128], "path": Path("x")}
    assert candidate.config_key(**config) == cache_key(config)
    assert real.files_fingerprint(Path(__file__).parent / "no-such-folder") == cache_key({"files": [],
                                                                                         "options": {}})
