"""ytrec_lib.distributed: the candidate model trained by DistributedDataParallel on several processes.

* shards: the ranks' rows partition each global batch, which is the batch one process trains on;
* one rank in a process group trains bit for bit as :func:`ytrec_lib.train.fit` (sampled softmax,
  early stopping): the DDP path adds nothing of its own to the arithmetic;
* two processes at ``tiny`` give the weights one process gives on the same global batches, within
  float tolerance (full softmax; :func:`compare_single`);
* a rank killed mid-training makes the whole job fail, with a message naming it, instead of hanging;
* the several-machines form: ``torchrun ... -m ytrec_lib train-candidate`` (here on one machine, two
  ranks), whose checkpoint rank 0 writes through the pipeline.

The spawned and torchrun-started processes each import torch and load the data: most of this module's
time is their start-up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from ytrec_lib import distributed as D
from ytrec_lib import pipeline
from ytrec_lib.data import datasets
from ytrec_lib.models.candidate import CandidateModel
from ytrec_lib.train import TrainConfig, fit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from ddp_workers import train_until_killed  # noqa: E402
from planted_task import N_REGIONS, N_TOKENS, N_VIDEOS, model, planted  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

GUARD_S = 240
"""A job that has not ended after this many seconds counts as hung (its usual time here: under 30 s)."""


def test_shards_partition_each_global_batch():
    for size in (1, 2, 3):
        worlds = [D.World(r, size) for r in range(size)]
        per_rank = [D.global_batches(103, 16, np.random.default_rng(5), w) for w in worlds]
        one = [np.random.default_rng(5).permutation(103)[s : s + 16] for s in range(0, 103, 16)]
        assert all(len(b) == len(one) for b in per_rank)  # 103 = 6 * 16 + 7: the last batch kept
        for step, idx in enumerate(one):
            shards = [D.shard(per_rank[w.rank][step], w) for w in worlds]
            assert sorted(np.concatenate(shards).tolist()) == sorted(idx.tolist())
    last_small = D.global_batches(33, 16, np.random.default_rng(0), D.World(0, 2))
    assert [len(b) for b in last_small] == [16, 16]  # 1 row left for 2 ranks: skipped
    with pytest.raises(ValueError, match="rank must be in"):
        D.World(2, 2)


@pytest.fixture
def group_of_one(tmp_path):
    dist.init_process_group(D.BACKEND, store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    yield D.World(0, 1)
    dist.destroy_process_group()


@pytest.mark.parametrize("case", ["sampled", "full, tied output"])
def test_one_rank_is_the_trainer_bit_for_bit(group_of_one, case):
    """Sampled: sparse output rows (declared sparse to DDP); tied: the watch table's gradient is dense."""
    feats, labels, _ = planted()
    cfg = TrainConfig(loss=case.split(",")[0], n_negatives=20, epochs=3, batch_size=64, patience=1)
    val = (feats.subset(np.arange(60)), labels[:60])

    def make() -> CandidateModel:
        return model() if case == "sampled" else CandidateModel(N_VIDEOS, N_TOKENS, N_REGIONS, dim=8,
                                                                 tower=(8,), tie_output=True)

    ref, got = make(), make()
    h_ref = fit(ref, feats, labels, cfg, val=val, progress=False)
    h_got = D.fit_ddp(got, feats, labels, cfg, world=group_of_one, val=val, progress=False)
    assert h_got.losses == h_ref.losses and h_got.best_epoch == h_ref.best_epoch
    for name, w in ref.state_dict().items():
        assert torch.equal(w, got.state_dict()[name]), name


@pytest.fixture
def in_process(group_of_one, monkeypatch):
    """``launch`` of one rank run in this process (the notebook helpers' plumbing without a spawn)."""
    def launch(fn, nproc, *args, **kw):
        assert nproc == 1
        return fn(group_of_one, *args)

    monkeypatch.setattr(D, "launch", launch)


def test_compare_single_and_scaling_on_one_rank(in_process):
    out = D.compare_single("tiny", nproc=1, seed=0, epochs=1)
    assert out["equal"] and out["max_abs_diff"] == 0.0 and out["max_abs_update"] > 0  # one rank: bit for bit
    assert out["loss_single"] == out["loss_ddp"] and out["nproc"] == 1 and out["atol"] == D.COMPARE_ATOL
    speed = D.scaling("tiny", [1], max_train=None, steps=2, warmup=1)[1]
    assert speed["steps"] == 2 and speed["examples_per_s"] > 0 and 0 <= speed["comm_share"] < 1
    assert 0 < speed["allreduce_busy_share"] <= 1 and speed["seconds_without_sync"] > 0
    with pytest.raises(ValueError, match="timed steps"):
        D.scaling("tiny", [1], max_train=None, steps=1000)


def _alarm(signum, frame):
    raise TimeoutError(f"the distributed job did not end within {GUARD_S} s: it hangs")


def test_a_killed_rank_fails_the_whole_job_with_a_clear_message():
    before = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(GUARD_S)
    try:
        with pytest.raises(D.DistributedJobFailed) as err:
            D.launch(train_until_killed, 2, 1, 3, timeout_s=30)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)
    msg = str(err.value)
    assert "rank 1 was killed by SIGKILL" in msg, msg
    assert "rerun" in msg and "2 processes" in msg


def test_two_processes_equal_one_process_on_the_same_global_batches(tmp_path, monkeypatch):
    """The several-machines command with a local rendezvous (``torchrun --standalone``): two ranks train
    the tiny candidate model (full softmax) through the pipeline, rank 0 writes the checkpoint under a
    key of its own; its weights equal the one-process model's, trained here on the same global batches."""
    src = datasets.cache_path("tiny")
    pipeline.dataset("tiny", 0, progress=False)  # generated once in the shared data folder
    shutil.copytree(src, tmp_path / src.name)
    settings = {"loss": "full", "init": "random", "epochs": 2}
    params = [a for k, v in settings.items() for a in ("--param", f"{k}={v}")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "ytrec_lib", "train-candidate", "--preset", "tiny", "--json", *params]
    env = {**os.environ, "YTREC_DATA_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=GUARD_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])  # printed by rank 0 only
    assert summary["processes"] == 2 and not summary["from_cache"] and summary["epochs"] == 2
    path = Path(summary["path"])
    assert path.parent == tmp_path / "models" and path.stem.endswith(summary["key"])
    assert not list(path.parent.glob(".*.tmp"))  # written atomically: no temporary left
    two, extra = pipeline.load_candidate_checkpoint(path)

    monkeypatch.setenv("YTREC_DATA_DIR", str(tmp_path))
    one = pipeline.candidate_model("tiny", 0, cache=False, progress=False, **settings)
    assert one.key != summary["key"]  # a model trained on two processes is not the one-process model
    assert [e["loss"] for e in extra["history"]] == pytest.approx([e["loss"] for e in one.history], rel=1e-5)
    diff = max(float((w - two.state_dict()[k]).abs().max()) for k, w in one.model.state_dict().items())
    assert diff <= D.COMPARE_ATOL, diff
