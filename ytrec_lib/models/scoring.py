"""Score a trained candidate model's users in the dataset's own ids: raw scores and top-k with history
excluded (``pipeline.CandidateRun.scorer()`` builds one; ``docs/real_datasets.md``, "Scoring your own
users").

What a user is scored with, exactly: the model's feature builder (the watches of the run's training
view) at ``serve_time`` = the split's training cutoff, with example age 0 (served at the end of the
training window, as in the paper). The user's history is every watch of that builder strictly before
``serve_time``: under leave-last-out every training watch (the held-out valid and test watches are not
history), under the temporal splits every watch before the cutoff. ``exclude_seen`` removes exactly
those videos (all of them, not only the last ``max_bag`` the watch bag holds).

Ids: users and items are named by the dataset's own ids, ``users.source_id`` / ``videos.source_id``
(MovieLens ``userId`` / ``movieId``, KuaiRand ``user_id`` / ``video_id``, the caller's ids for
``datasets.from_interactions``) where the tables have them, else by the internal ids 0..n-1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ytrec_lib.features import ExampleFeatures, FeatureBuilder
from ytrec_lib.metrics import top_k
from ytrec_lib.models.candidate import CandidateModel

__all__ = ["CandidateScorer", "own_ids"]


def own_ids(table: pd.DataFrame) -> np.ndarray:
    """A table's own ids by internal id (row): its ``source_id`` column where present, else 0..n-1 (n,)."""
    if "source_id" in table:
        return table["source_id"].to_numpy()
    return np.arange(len(table), dtype=np.int64)


@dataclass
class CandidateScorer:
    """Raw scores and top-k recommendations of ``model`` for users given by their own ids.

    ``builder``: the model's :class:`ytrec_lib.features.FeatureBuilder`; ``serve_time``: days, the
    time every user is scored at (example age 0); ``user_ids`` (n_users,) and ``item_ids`` (n_items,):
    the own id of each internal user / video id (unique; ints or strings); ``batch_size``: users per
    forward pass.
    """

    model: CandidateModel
    builder: FeatureBuilder
    serve_time: float
    user_ids: np.ndarray
    item_ids: np.ndarray
    batch_size: int = 1024
    _index: pd.Index = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = pd.Index(self.user_ids)
        if not self._index.is_unique:
            raise ValueError("CandidateScorer: user ids repeat; each user needs one id")
        if len(self.item_ids) != self.model.n_videos:
            raise ValueError(f"CandidateScorer: {len(self.item_ids)} item ids for a model over "
                             f"{self.model.n_videos} videos; pass the ids of the model's own dataset")

    @classmethod
    def from_dataset(cls, model: CandidateModel, builder: FeatureBuilder, ds: Any,
                     serve_time: float) -> CandidateScorer:
        """For a ``ytrec_lib.data`` Dataset: own ids from its ``users`` and ``videos`` tables."""
        return cls(model, builder, float(serve_time), own_ids(ds.users), own_ids(ds.videos))

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def internal_users(self, user_ids: Any) -> np.ndarray:
        """Own user ids (a list or 1-D array) -> internal ids (n,) int64. ValueError for a scalar, a
        2-D or an empty input; KeyError naming the ids the dataset does not have."""
        asked = np.asarray(user_ids)
        if asked.ndim != 1:
            raise ValueError(f"user_ids must be a list or 1-D array of user ids, got shape {asked.shape} "
                             "(wrap one id in a list: [user_id])")
        if asked.size == 0:
            raise ValueError("user_ids is empty; pass at least one user id")
        internal = self._index.get_indexer(asked)  # (n,) -1 where unknown
        if (internal < 0).any():
            bad = list(dict.fromkeys(asked[internal < 0].tolist()))
            raise KeyError(f"unknown user id(s) {bad[:5]} ({len(bad)} in all); the dataset's users are "
                           f"named by their own ids (users.source_id), e.g. {self.user_ids[:3].tolist()}")
        return internal.astype(np.int64)

    def features(self, user_ids: Any) -> ExampleFeatures:
        """The model's inputs for these users at ``serve_time`` (example age 0)."""
        internal = self.internal_users(user_ids)
        return self.builder.examples(internal, np.full(internal.size, self.serve_time))

    @torch.no_grad()
    def _logits(self, feats: ExampleFeatures, idx: np.ndarray) -> np.ndarray:
        """Logits of examples ``idx``: (b, n_items) float32."""
        was_training = self.model.training
        self.model.eval()
        try:
            return self.model(feats.batch(idx)).numpy().astype(np.float32, copy=False)  # (b, V)
        finally:
            self.model.train(was_training)

    def _blocks(self, n: int) -> list[np.ndarray]:
        return [np.arange(s, min(s + self.batch_size, n)) for s in range(0, n, self.batch_size)]

    def scores(self, user_ids: Any) -> np.ndarray:
        """Raw model scores (logits; their softmax is the model's probability) of every item for each
        user: (n_users, n_items) float32, columns in internal item order (``item_ids`` names them)."""
        feats = self.features(user_ids)
        out = np.empty((len(feats), self.n_items), np.float32)
        for idx in self._blocks(len(feats)):
            out[idx] = self._logits(feats, idx)
        return out

    def seen(self, user_ids: Any) -> list[np.ndarray]:
        """Each user's history as own item ids (what ``exclude_seen`` removes): a list of (h_i,) arrays."""
        return [self.item_ids[w] for w in self.features(user_ids).watched_before()]

    def recommend(self, user_ids: Any, k: int, exclude_seen: bool = True) -> np.ndarray:
        """The ``k`` best items of each user, best first, as own item ids: (n_users, k).

        Ties go to the lower internal item id. ``exclude_seen`` removes exactly the user's history
        (:meth:`seen`); a row that runs out of unseen items ends in -1 (integer ids) or None (other ids).
        ValueError when ``k`` is not an integer in 1..n_items.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self.n_items:
            raise ValueError(f"k must be an integer from 1 to the {self.n_items} items of the dataset, "
                             f"got {k!r}")
        feats = self.features(user_ids)
        ranked = np.empty((len(feats), int(k)), np.int64)
        for idx in self._blocks(len(feats)):
            exclude = feats.watched_before(idx) if exclude_seen else None
            ranked[idx] = top_k(self._logits(feats, idx), int(k), exclude=exclude)
        return self._to_own(ranked)

    def _to_own(self, ranked: np.ndarray) -> np.ndarray:
        """Internal item ids (n, k) int64 (-1 = none) -> own ids, -1 / None where there is none."""
        found = ranked >= 0
        own = self.item_ids[np.where(found, ranked, 0)]
        if np.issubdtype(own.dtype, np.integer):
            return np.where(found, own, -1).astype(np.int64)
        out = own.astype(object)
        out[~found] = None
        return out
