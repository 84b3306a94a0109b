"""Tests of the tied output layer of ytrec_lib.models.candidate (output weight = the input video table)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ytrec_lib import pipeline
from ytrec_lib.features import FeatureSpec
from ytrec_lib.metrics import top_k
from ytrec_lib.models.candidate import (
    CandidateModel,
    inner_product_scores,
    synthetic_batch,
)
from ytrec_lib.train import TrainConfig, batch_loss, fit

N_VIDEOS, N_TOKENS, N_REGIONS, DIM = 30, 7, 3, 8


def tied_model(**kw) -> CandidateModel:
    args = {"n_videos": N_VIDEOS, "n_tokens": N_TOKENS, "n_regions": N_REGIONS, "dim": DIM,
            "tower": (16, DIM), "tie_output": True}
    return CandidateModel(**(args | kw))


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class _Examples:
    """A stand-in for ExampleFeatures over one fixed synthetic batch (enough for ytrec_lib.train.fit)."""

    def __init__(self, n: int, seed: int = 0):
        self.spec = FeatureSpec()
        self._batch, labels = synthetic_batch(N_VIDEOS, N_TOKENS, N_REGIONS, self.spec, n, seed=seed)
        # a learnable task: the bag holds one video and the label is that video
        self._batch["watch_ids"] = self._batch["watch_ids"][:, :1].clone()
        self.labels = self._batch["watch_ids"][:, 0].clone()
        self.n = n

    def __len__(self) -> int:
        return self.n

    def batch(self, idx=None):
        idx = np.arange(self.n) if idx is None else np.asarray(idx)
        return {k: v[torch.as_tensor(idx)] for k, v in self._batch.items()}


def test_output_weight_is_the_input_video_table():
    model = tied_model()
    table = model.watch_emb.weight
    assert model.output.weight.shape == (N_VIDEOS, DIM)
    assert model.output.weight.data_ptr() == table.data_ptr()  # shared storage, not a copy
    torch.testing.assert_close(model.video_embeddings(), table.detach()[:N_VIDEOS], rtol=0, atol=0)
    batch, _ = synthetic_batch(N_VIDEOS, N_TOKENS, N_REGIONS, model.spec, 5)
    with torch.no_grad():
        model.output.bias.normal_()
        u = model.user_embeddings(batch)  # (5, DIM)
        expected = u @ table[:N_VIDEOS].T + model.output.bias  # (5, n)
        torch.testing.assert_close(model(batch), expected)


def test_tying_removes_exactly_the_output_matrix_from_the_parameters():
    tied, untied = tied_model(), tied_model(tie_output=False)
    count = lambda mdl: sum(p.numel() for p in mdl.parameters())  # noqa: E731
    assert count(untied) - count(tied) == N_VIDEOS * DIM
    assert "output.weight" not in tied.state_dict() and "output.bias" in tied.state_dict()


def test_bad_tying_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match=r"last tower width \(16\) to equal the video embedding dim \(8\)"):
        tied_model(tower=(32, 16))
    with pytest.raises(ValueError, match="tie_output with freeze_embeddings"):
        tied_model(freeze_embeddings=True)


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_training_updates_the_shared_table_and_learns(loss):
    torch.manual_seed(0)
    feats = _Examples(256)
    model = tied_model(seed=1)
    cfg = TrainConfig(loss=loss, n_negatives=10, proposal="uniform", epochs=15, batch_size=64, lr=3e-2,
                      seed=0)
    before = model.watch_emb.weight.detach().clone()
    with torch.no_grad():
        first = batch_loss(model, feats.batch(), feats.labels, TrainConfig(loss="full")).item()
    fit(model, feats, feats.labels.numpy(), cfg, progress=False)
    with torch.no_grad():
        last = batch_loss(model, feats.batch(), feats.labels, TrainConfig(loss="full")).item()
        accuracy = (model(feats.batch()).argmax(dim=1) == feats.labels).float().mean().item()
    assert not torch.equal(model.watch_emb.weight[:N_VIDEOS], before[:N_VIDEOS])
    assert model.output.weight.data_ptr() == model.watch_emb.weight.data_ptr()  # still one table
    assert torch.equal(model.watch_emb.weight[N_VIDEOS], torch.zeros(DIM))  # padding row untouched
    assert last < 0.5 * first and accuracy > 10 / N_VIDEOS  # chance: 1 / N_VIDEOS


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, N_VIDEOS))
def test_tied_top_k_by_softmax_equals_top_k_by_inner_product(seed, k):
    model = tied_model(seed=seed)
    with torch.no_grad():
        model.output.bias.copy_(torch.randn(N_VIDEOS, generator=torch.Generator().manual_seed(seed)))
    batch, _ = synthetic_batch(N_VIDEOS, N_TOKENS, N_REGIONS, model.spec, 6, seed=seed)
    u, v = model.augmented_embeddings(batch)
    np.testing.assert_array_equal(model.recommend(batch, k), top_k(inner_product_scores(u, v), k))


def test_tied_checkpoint_round_trip(tmp_path):
    model = tied_model(seed=3)
    with torch.no_grad():
        model.watch_emb.weight[:N_VIDEOS].normal_()
        model.output.bias.normal_()
    path = pipeline.save_candidate_checkpoint(tmp_path / "tied.pt", model)
    loaded, _ = pipeline.load_candidate_checkpoint(path)
    assert loaded.hparams["tie_output"] is True
    assert loaded.output.weight.data_ptr() == loaded.watch_emb.weight.data_ptr()
    batch, _ = synthetic_batch(N_VIDEOS, N_TOKENS, N_REGIONS, model.spec, 4)
    torch.testing.assert_close(loaded.logits64(batch), model.logits64(batch), rtol=0, atol=0)
