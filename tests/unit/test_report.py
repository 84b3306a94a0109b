"""The results protocol: record, atomic files, JSON conversion, reading back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ytrec_lib import report


@pytest.fixture(autouse=True)
def results_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("YTREC_RESULTS_DIR", str(tmp_path))
    monkeypatch.delenv("YTREC_NOTEBOOK", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(report, "_current_notebook", None)
    return tmp_path


def test_record_writes_the_notebook_file_and_returns_the_value(results_in_tmp):
    report.use_notebook("03_candidate_generation.ipynb")
    assert report.record("recall@100_model", np.float32(0.25)) == np.float32(0.25)
    report.record("map_by_depth", {"all": np.array([0.1, 0.2])})
    data = json.loads((results_in_tmp / "03_candidate_generation.json").read_text())
    assert data == {"recall@100_model": 0.25, "map_by_depth": {"all": [0.1, 0.2]}}
    assert report.load_all() == {"03_candidate_generation": data}


def test_notebook_name_from_runner_or_jupyterlab(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/u/notebooks/05_ann_serving.ipynb")
    assert report.current_notebook() == "05_ann_serving"
    monkeypatch.setenv("YTREC_NOTEBOOK", "01_ugc_data")
    assert report.current_notebook() == "01_ugc_data"


def test_without_a_notebook_name_the_error_says_what_to_do():
    with pytest.raises(RuntimeError, match="report.use_notebook"):
        report.record("x", 1)


def test_values_are_converted_to_plain_json():
    assert report.to_jsonable({0.5: np.int64(3), "t": (np.bool_(True), float("nan"))}) == {
        "0.5": 3, "t": [True, None]}
    with pytest.raises(TypeError, match="cannot store a value of type object"):
        report.to_jsonable(object())


@pytest.mark.parametrize("content", [b"{not json", b'{"a": 1', b"[]", b"null", b"3", b"\xff\xfe\x00garbage"],
                         ids=["not-json", "truncated", "list", "null", "number", "not-utf8"])
def test_corrupt_results_file_is_reported(results_in_tmp, content):
    path = results_in_tmp / "01_x.json"
    path.write_bytes(content)
    msg = r"01_x\.json is not a readable results file \(.+\); delete it and re-run the notebook 01_x$"
    with pytest.raises(ValueError, match=msg):
        report.load("01_x")
    with pytest.raises(ValueError, match=msg):
        report.load_all()
    with pytest.raises(ValueError, match=msg):      # record() neither crashes deep inside nor overwrites it
        report.record("k", 1, notebook="01_x")
    assert path.read_bytes() == content


def test_no_temporary_files_left_behind(results_in_tmp):
    for i in range(5):
        report.record(f"k{i}", i, notebook="02_y")
    assert sorted(p.name for p in results_in_tmp.iterdir()) == ["02_y.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(results_in_tmp):
    report.record("k", 1, notebook="02_y")
    with pytest.raises(TypeError):
        report._write_atomic(results_in_tmp / "02_y.json", {"k": object()})   # not JSON-able
    assert sorted(p.name for p in results_in_tmp.iterdir()) == ["02_y.json"]
    assert report.load("02_y") == {"k": 1}


def test_mappings_keep_their_order(results_in_tmp):
    report.record("by_set", {"watches": 1, "all": 2, "b": 3}, notebook="03_z")
    assert list(report.load("03_z")["by_set"]) == ["watches", "all", "b"]


def test_record_many_writes_every_key_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("YTREC_RESULTS_DIR", str(tmp_path))
    report.record("first", 1, notebook="09_x")
    values = {"b": np.float32(0.5), "a": {"k": np.int64(3)}}
    assert report.record_many(values, notebook="09_x") is values
    assert report.load("09_x", tmp_path) == {"first": 1, "b": 0.5, "a": {"k": 3}}
    assert list(report.load("09_x", tmp_path)) == ["first", "b", "a"]
    with pytest.raises(ValueError, match="non-empty string"):
        report.record_many({"": 1}, notebook="09_x")
