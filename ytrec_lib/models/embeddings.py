"""Top-k by softmax equals top-k by inner product: the check of notebook 04, over many users.

The candidate model's output layer is an m x n matrix whose columns are the video embeddings ``v_j``;
its last ReLU layer is the user embedding ``u``. With the bias folded in (user ``[u, 1]``, video
``[v, b]``) the inner product is the logit, so ranking by softmax probability and ranking by inner
product agree. The two functions here compute both sides for a whole set of examples, chunk by chunk:
the model's own top-k (network + softmax) and the top-k over the two extracted arrays alone (no network).
Both use float64 sums in coordinate order and :func:`ytrec_lib.metrics.top_k` (ties to the lower id),
so they agree exactly, order included.

Example::

    users_aug, model_top = users_and_model_top(model, run.examples("test"), k=100)  # (n, m+1), (n, 100)
    ip_top = inner_product_top(users_aug, model.augmented_video_embeddings().numpy(), k=100)
    assert (ip_top == model_top).all()
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ytrec_lib.metrics import top_k
from ytrec_lib.models.candidate import CandidateModel, inner_product_scores

CHUNK = 512
"""Examples per chunk: bounds the (chunk, n_videos) float64 score matrices held at once."""


def users_and_model_top(model: CandidateModel, feats: Any, k: int,
                        chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """The augmented user embeddings and the model's own top-``k`` for every example of ``feats``.

    ``feats``: an ``ExampleFeatures`` (``len`` and ``batch(idx)``). Returns ``(users_aug, top)``:
    ``[u, 1]`` (n, m+1) float32 and the top-``k`` video ids by softmax probability
    (:meth:`CandidateModel.recommend`, nothing excluded) (n, k) int64, best first.
    """
    users, top = [], []
    for start in range(0, len(feats), chunk):
        b = feats.batch(np.arange(start, min(start + chunk, len(feats))))
        users.append(model.augmented_user_embeddings(b).numpy())  # (c, m+1) float32
        top.append(model.recommend(b, k))  # (c, k) int64
    return np.vstack(users), np.vstack(top)


def inner_product_top(users_aug: np.ndarray, videos_aug: np.ndarray, k: int,
                      chunk: int = CHUNK) -> np.ndarray:
    """Top-``k`` videos by ``[u, 1]·[v, b]`` over the extracted arrays only (no network): (n, k) int64.

    users_aug: (n, m+1) float; videos_aug: (n_videos, m+1) float. Scores are
    :func:`ytrec_lib.models.candidate.inner_product_scores` (float64, coordinate order), ties to the lower id.
    """
    return np.vstack([top_k(inner_product_scores(users_aug[s:s + chunk], videos_aug), k)  # (c, k) each
                      for s in range(0, len(users_aug), chunk)])


__all__ = ["CHUNK", "users_and_model_top", "inner_product_top"]
