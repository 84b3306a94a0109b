"""Tests of ytrec_lib.studies.train_speed: the FLOP count, the step breakdown and the measurement."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ytrec_lib.course import cli
from ytrec_lib.models.candidate import CandidateModel
from ytrec_lib.studies import train_speed as TS
from ytrec_lib.train import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from planted_task import model, planted  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_flops_per_example_counts_tower_and_softmax_forward_and_backward():
    m = CandidateModel(1000, 10, 4, dim=8, tower=(32, 16))  # input 8 + 8 + 4 + 8 dense = 28 wide
    tower = m.d_in * 32 + 32 * 16
    assert TS.flops_per_example(m, "full", 50) == 6 * (tower + 1000 * 16)
    assert TS.flops_per_example(m, "sampled", 50) == 6 * (tower + 50 * 16)
    flat = CandidateModel(1000, 10, 4, dim=8, tower=())  # no layers: u is the input itself
    assert TS.flops_per_example(flat, "sampled", 50) == 6 * 50 * flat.d_in


def test_step_breakdown_times_every_part_and_their_sum():
    feats, labels, _ = planted()
    config = TrainConfig(loss="sampled", n_negatives=8, batch_size=32)
    parts = TS.step_breakdown(model(), feats, labels, config, n_steps=4, warmup=1)
    assert set(parts) == {*TS.STEP_PARTS, "step"}
    assert all(parts[p] > 0 for p in TS.STEP_PARTS)
    assert parts["step"] >= max(parts[p] for p in TS.STEP_PARTS)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    import os

    old = os.environ.get("YTREC_DATA_DIR")
    os.environ["YTREC_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    try:
        yield TS.train_speed("tiny", epochs=1, n_steps=3, gemm_n=128, batch_size=128)
    finally:
        if old is None:
            os.environ.pop("YTREC_DATA_DIR")
        else:
            os.environ["YTREC_DATA_DIR"] = old


def test_train_speed_reports_throughput_against_the_gemm_rate(measured):
    r = measured
    assert r["preset"] == "tiny" and r["epochs"] == 1 and r["batch_size"] == 128 and r["loss"] == "sampled"
    assert r["n_train"] > 0 and r["n_valid"] > 0 and r["examples_per_s"] > 0 and r["gemm_gflops"] > 0
    assert r["gflops"] == pytest.approx(r["flops_per_example"] * r["examples_per_s"] / 1e9)
    assert r["fraction_of_gemm"] == pytest.approx(r["gflops"] / r["gemm_gflops"])
    assert r["epoch_s"] == pytest.approx(r["n_train"] / r["examples_per_s"])
    json.dumps(r)  # JSON-able
    text = TS.format_report(r)
    assert "of the GEMM rate" in text and "examples/s" in text


def test_training_data_keeps_a_seeded_subset(measured):
    from ytrec_lib import pipeline

    cfg = pipeline.CandidateConfig(split="next_watch", max_train_examples=100)
    a, b = TS.training_data("tiny", 0, cfg), TS.training_data("tiny", 0, cfg)
    assert len(a["train"]) == 100 and np.array_equal(a["train"].users, b["train"].users)
    assert np.array_equal(a["train_labels"], b["train_labels"])
    assert a["model"].n_videos > a["train_labels"].max()


def test_cli_prints_the_measurement(measured, monkeypatch, capsys):
    monkeypatch.setattr(TS, "train_speed", lambda *a, **k: measured)
    assert cli.main(["train-speed", "--preset", "tiny", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["preset"] == "tiny"
    assert cli.main(["train-speed", "--preset", "tiny"]) == 0
    assert "GFLOP/s" in capsys.readouterr().out
