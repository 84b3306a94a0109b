"""Tests of ytrec_lib.models.embeddings: the model's top-k and the inner-product top-k, chunk by chunk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ytrec_lib.metrics import top_k
from ytrec_lib.models.candidate import CandidateModel, inner_product_scores, synthetic_batch
from ytrec_lib.models.embeddings import inner_product_top, users_and_model_top

N_VIDEOS, N_TOKENS, N_REGIONS = 40, 5, 3


class RandomExamples:
    """``len`` and ``batch(idx)`` over one fixed random batch, like an ``ExampleFeatures``."""

    def __init__(self, model: CandidateModel, n: int, seed: int = 0) -> None:
        self.full, _ = synthetic_batch(N_VIDEOS, N_TOKENS, N_REGIONS, model.spec, n, seed=seed)
        self.n = n

    def __len__(self) -> int:
        return self.n

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        return {name: t[torch.as_tensor(idx)] for name, t in self.full.items()}


@pytest.fixture
def model() -> CandidateModel:
    m = CandidateModel(N_VIDEOS, N_TOKENS, N_REGIONS, dim=4, tower=(8, 6), seed=3)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        m.output.bias.copy_(torch.randn(N_VIDEOS, generator=g))
        m.output.weight[7] = m.output.weight[2]  # video 7 ties with video 2
        m.output.bias[7] = m.output.bias[2]
    return m.eval()


@pytest.mark.parametrize("chunk", [1, 4, 512])
def test_model_top_equals_inner_product_top_in_order_whatever_the_chunk(model, chunk):
    feats = RandomExamples(model, 11)
    users_aug, model_top = users_and_model_top(model, feats, k=10, chunk=chunk)
    assert users_aug.shape == (11, 6 + 1) and users_aug.dtype == np.float32
    assert model_top.shape == (11, 10) and model_top.dtype == np.int64
    np.testing.assert_array_equal(users_aug[:, -1], 1.0)  # [u, 1]
    np.testing.assert_array_equal(model_top, model.recommend(feats.batch(np.arange(11)), 10))
    v_aug = model.augmented_video_embeddings().numpy()
    ip_top = inner_product_top(users_aug, v_aug, k=10, chunk=chunk)
    np.testing.assert_array_equal(ip_top, model_top)


def test_inner_product_top_is_top_k_of_the_inner_products():
    rng = np.random.default_rng(0)
    users, videos = rng.standard_normal((9, 5)), rng.standard_normal((30, 5))
    np.testing.assert_array_equal(inner_product_top(users, videos, k=4, chunk=2),
                                  top_k(inner_product_scores(users, videos), 4))
