"""The pipeline's one cache: stage keys, the in-process memo checked against the file, its size bound."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ytrec_lib import pipeline


@pytest.fixture(autouse=True)
def empty_memo():
    pipeline.clear_memo()
    yield
    pipeline.clear_memo()


class Stage:
    """A stage whose value is a dict written as JSON; counts builds and loads."""

    def __init__(self, tmp_path: Path):
        self.tmp_path, self.builds, self.loads = tmp_path, 0, 0

    def get(self, name: str, *, cache: bool = True) -> tuple[dict, bool]:
        path = self.tmp_path / f"{name}.json"

        def load(p: Path) -> dict:
            self.loads += 1
            return json.loads(p.read_text())

        def build() -> dict:
            self.builds += 1
            return {"name": name, "build": self.builds}

        def save(value: dict, p: Path) -> None:
            p.write_text(json.dumps(value))

        return pipeline._cached(name, path, load, build, save, cache=cache, what="test stage")


def test_a_stage_is_built_once_then_shared_in_memory(tmp_path: Path) -> None:
    stage = Stage(tmp_path)
    first, from_cache = stage.get("a")
    assert not from_cache and stage.builds == 1 and stage.loads == 0
    again, from_cache = stage.get("a")
    assert from_cache and again is first and stage.loads == 0  # the memo: not even read back
    pipeline.clear_memo()
    loaded, from_cache = stage.get("a")
    assert from_cache and loaded == first and loaded is not first and stage.loads == 1


def test_the_memo_is_dropped_when_the_file_changes_or_goes(tmp_path: Path) -> None:
    stage = Stage(tmp_path)
    stage.get("a")
    (tmp_path / "a.json").write_text(json.dumps({"name": "a", "build": 99, "edited": True}))
    value, from_cache = stage.get("a")
    assert from_cache and value["edited"] and stage.loads == 1
    (tmp_path / "a.json").unlink()
    value, from_cache = stage.get("a")
    assert not from_cache and stage.builds == 2 and value == {"name": "a", "build": 2}


def test_cache_false_always_builds_and_keeps_nothing(tmp_path: Path) -> None:
    stage = Stage(tmp_path)
    stage.get("a", cache=False)
    stage.get("a", cache=False)
    assert stage.builds == 2 and not list(tmp_path.iterdir()) and not pipeline._MEMO


def test_the_memo_keeps_the_most_recently_used_stages(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "MEMO_SIZE", 2)
    stage = Stage(tmp_path)
    stage.get("a")
    stage.get("b")
    stage.get("a")          # a is now the most recent
    stage.get("c")          # evicts b
    assert list(pipeline._MEMO) == ["a", "c"]
    stage.get("b")          # read back from its file, not rebuilt
    assert stage.builds == 3 and stage.loads == 1


def test_stage_keys_follow_config_upstream_and_data() -> None:
    config = pipeline.CandidateConfig()
    key = pipeline.stage_key("candidate", config, {"preset": "ci"}, "d0")
    assert key == pipeline.stage_key("candidate", pipeline.CandidateConfig(), {"preset": "ci"}, "d0")
    assert key != pipeline.stage_key("candidate", replace(config, lr=1e-3), {"preset": "ci"}, "d0")
    assert key != pipeline.stage_key("candidate", config, {"preset": "ci", "item2vec_videos": "k"}, "d0")
    assert key != pipeline.stage_key("candidate", config, {"preset": "ci"}, "d1")
    assert key != pipeline.stage_key("ranker", config, {"preset": "ci"}, "d0")


def test_configs_are_frozen_and_overrides_are_checked() -> None:
    config = pipeline.CandidateConfig(tower=[64, 32])
    assert config.tower == (64, 32)
    with pytest.raises(AttributeError):
        config.lr = 1.0  # type: ignore[misc]
    with pytest.raises(KeyError, match=r"unknown setting\(s\) \['epoch'\]"):
        pipeline._override(config, {"epoch": 3}, "candidate_model")
    with pytest.raises(ValueError, match="split must be"):
        pipeline.CandidateConfig(split="random")
