"""The candidate-generation model of Covington et al. (RecSys 2016, §3): a softmax over every video.

Architecture (paper Figure 3)::

    bag of watched videos -> EmbeddingBag(mean) (dim) --+
    bag of search tokens  -> EmbeddingBag(mean) (dim) --+
    region                -> Embedding (region_dim)  --+
    occupation (optional) -> Embedding (occupation_dim) +-> concat (d_in) -> [Linear -> ReLU] x depth -> u (m)
    dense: age transforms, missing flag, gender, example age --+
    logits = u @ W.T + b,  W (n_videos, m), b (n_videos,)   -- softmax over every video

Serving view (paper §3.2, lecture "the m x n matrix"): the user embedding is ``u``, the last ReLU
layer's output (m values); the video embeddings are the rows of ``W`` (= the columns of the m x n
softmax matrix). Folding the bias in as one extra coordinate, user ``[u, 1]`` and video ``[v, b]``,
makes the inner product equal the logit, so top-k by softmax probability = top-k by inner product.

Training objectives: the full softmax (cross-entropy over all videos) and the sampled softmax with
``k`` shared negatives from a uniform or popularity proposal and the logQ correction (Jean et al. 2015;
Yi et al. 2019). In sampled mode only the rows of ``W`` that were sampled receive (sparse) gradients,
which is what makes a million-class catalogue train fast. Training lives in :mod:`ytrec_lib.train`
(one trainer for every retrieval model); this module holds the model, ranking, evaluation and
checkpoints.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ytrec_lib.features import ExampleFeatures, FeatureSpec
from ytrec_lib.metrics import top_k
from ytrec_lib.progress import tqdm

CHECKPOINT_FORMAT = "ytrec-candidate-v1"
DEFAULT_TOWER: tuple[int, ...] = (256, 128, 64)


# ----------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------


class CandidateModel(nn.Module):
    """Bags + demographics + example age -> concat -> ReLU tower -> ``Linear(m, n_videos)`` -> softmax.

    Args:
        n_videos, n_tokens, n_regions: vocabulary sizes; each table gets one extra zero row, the
            padding index (``n_videos``, ``n_tokens``, ``n_regions``) that unknown ids map to.
        dim: width of the video and token embeddings.
        tower: widths of the ReLU layers, 0 to any number of layers (default three: 256, 128, 64).
            With no layers the user embedding is the concatenated input itself.
        spec: which feature groups are fed (:class:`ytrec_lib.features.FeatureSpec`).
        region_dim: width of the region embedding.
        video_init, token_init: optional pretrained (n_videos, dim) / (n_tokens, dim) arrays (item2vec)
            for the input tables; random N(0, 1/dim) otherwise.
        freeze_embeddings: keep the (pretrained or random) input video and token tables fixed.
        tie_output: use the input video table as the output weight (weight tying): ``W`` is the first
            ``n_videos`` rows of the watch table, so the last tower width must equal ``dim``. The shared
            table then gets dense gradients (see :class:`TiedOutput`).
        seed: seeds the parameter initialisation (the global torch RNG is left untouched).
        n_occupations, occupation_dim: the occupation vocabulary and embedding width, used when
            ``spec.occupation`` is on (its table is created after every other parameter, so a model
            without it initialises exactly as before).
    """

    def __init__(
        self,
        n_videos: int,
        n_tokens: int,
        n_regions: int,
        dim: int = 32,
        tower: Sequence[int] = DEFAULT_TOWER,
        spec: FeatureSpec | None = None,
        region_dim: int = 8,
        video_init: np.ndarray | None = None,
        token_init: np.ndarray | None = None,
        freeze_embeddings: bool = False,
        tie_output: bool = False,
        seed: int = 0,
        n_occupations: int = 0,
        occupation_dim: int = 4,
    ):
        super().__init__()
        spec = spec or FeatureSpec()
        tower = tuple(int(w) for w in tower)
        _check_sizes(n_videos=n_videos, n_tokens=n_tokens, n_regions=n_regions, dim=dim,
                     region_dim=region_dim)
        if any(w < 1 for w in tower):
            raise ValueError(f"CandidateModel: tower widths must be >= 1, got {tower}")
        self.spec = spec
        self.hparams: dict[str, Any] = {
            "n_videos": int(n_videos), "n_tokens": int(n_tokens), "n_regions": int(n_regions),
            "dim": int(dim), "tower": list(tower), "spec": spec.to_dict(), "region_dim": int(region_dim),
            "freeze_embeddings": bool(freeze_embeddings), "tie_output": bool(tie_output), "seed": int(seed),
        }
        if spec.occupation:
            _check_sizes(n_occupations=n_occupations, occupation_dim=occupation_dim)
            self.hparams.update(n_occupations=int(n_occupations), occupation_dim=int(occupation_dim))
        d_in = dim * spec.watches + dim * spec.searches + region_dim * spec.demographics + spec.n_dense
        d_in += occupation_dim * spec.occupation
        if d_in == 0:
            raise ValueError("CandidateModel: the feature spec turns every feature group off; enable one")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.watch_emb = _bag(n_videos, dim, video_init, "video_init")
            self.search_emb = _bag(n_tokens, dim, token_init, "token_init")
            self.region_emb = nn.Embedding(n_regions + 1, region_dim, padding_idx=n_regions, sparse=True)
            layers: list[nn.Module] = []
            widths = (d_in, *tower)
            for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
                layers += [nn.Linear(w_in, w_out), nn.ReLU()]
            self.tower = nn.Sequential(*layers)
            self.m = tower[-1] if tower else d_in
            _check_tie(tie_output, self.m, dim, freeze_embeddings)
            self.output = TiedOutput(self.watch_emb, n_videos) if tie_output else nn.Linear(self.m, n_videos)
            nn.init.zeros_(self.output.bias)
            if spec.occupation:  # last: the other parameters draw exactly what they drew without it
                self.occupation_emb = nn.Embedding(n_occupations + 1, occupation_dim,
                                                   padding_idx=n_occupations)
        for table in (self.watch_emb, self.search_emb):
            table.weight.requires_grad_(not freeze_embeddings)
        self.d_in = d_in

    @property
    def n_videos(self) -> int:
        return self.output.out_features

    def user_embeddings(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The last ReLU layer's output: (B, m) float32 (the concatenated input when the tower is empty)."""
        return self.tower(self.inputs(batch))  # (B, m)

    def inputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The concatenated input layer: (B, d_in) float32."""
        parts = []
        self._check_ids(batch)
        if self.spec.watches:
            parts.append(self.watch_emb(batch["watch_ids"]))  # (B, dim)
        if self.spec.searches:
            parts.append(self.search_emb(batch["search_ids"]))  # (B, dim)
        if self.spec.demographics:
            parts.append(self.region_emb(batch["region"]))  # (B, region_dim)
        if self.spec.occupation:
            parts.append(self.occupation_emb(batch["occupation"]))  # (B, occupation_dim)
        if self.spec.n_dense:
            dense = batch["dense"]
            if dense.shape[1] != self.spec.n_dense:
                raise ValueError(
                    f"CandidateModel: batch has {dense.shape[1]} dense columns but the model's feature spec "
                    f"needs {self.spec.n_dense}; build the features with the model's spec"
                )
            parts.append(dense)  # (B, n_dense)
        return torch.cat(parts, dim=1)  # (B, d_in)

    def _check_ids(self, batch: dict[str, torch.Tensor]) -> None:
        """Refuse ids outside [0, padding index]: map unknown ids with ``features.map_unknown`` first."""
        tables = (("watch_ids", self.watch_emb, self.spec.watches), ("search_ids", self.search_emb,
                  self.spec.searches), ("region", self.region_emb, self.spec.demographics))
        if self.spec.occupation:
            tables += (("occupation", self.occupation_emb, True),)
        for key, table, used in tables:
            if not used:
                continue
            if key not in batch:
                raise KeyError(f"CandidateModel: the batch has no {key!r}; use ExampleFeatures.batch")
            ids = batch[key]
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= table.weight.shape[0]):
                raise ValueError(
                    f"CandidateModel: {key} holds ids outside [0, {table.weight.shape[0] - 1}]; map unknown "
                    "ids to the padding index with ytrec_lib.features.map_unknown"
                )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits over every video: (B, n_videos) float32."""
        return self.output(self.user_embeddings(batch))  # (B, n)

    def video_embeddings(self) -> torch.Tensor:
        """The columns of the m x n softmax matrix: (n_videos, m) float32 (a detached copy)."""
        return self.output.weight.detach().clone()  # (n, m)

    def augmented_video_embeddings(self) -> torch.Tensor:
        """Videos with the bias folded in, ``[v, b]``: (n_videos, m + 1) float32."""
        return torch.cat([self.video_embeddings(), self.output.bias.detach()[:, None]], dim=1)  # (n, m+1)

    @torch.no_grad()
    def augmented_user_embeddings(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Users with a constant 1 appended, ``[u, 1]``: (B, m + 1) float32."""
        return augment_users(self.user_embeddings(batch))

    def augmented_embeddings(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``([u, 1] (B, m+1), [v, b] (n, m+1))``: their inner products are the logits."""
        return self.augmented_user_embeddings(batch), self.augmented_video_embeddings()

    @torch.no_grad()
    def logits64(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits in float64 from the float32 parameters, summed in a fixed order: (B, n) float64.

        ``sum_i u_i * W[j, i]`` is accumulated left to right over i, then ``b_j`` is added: the same
        operations, in the same order, as :func:`inner_product_scores` on ``[u, 1]`` and ``[v, b]``, so
        the two agree bit for bit and identical videos get identical scores (no BLAS blocking effects).
        """
        u = self.user_embeddings(batch).double().numpy()  # (B, m)
        scores = sequential_dot(u, self.output.weight.detach().double().numpy())  # (B, n)
        scores += self.output.bias.detach().double().numpy()[None, :]
        return torch.from_numpy(scores)

    @torch.no_grad()
    def probabilities(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Softmax over every video, float64: (B, n_videos), rows sum to 1."""
        return torch.softmax(self.logits64(batch), dim=1)

    @torch.no_grad()
    def recommend(self, batch: dict[str, torch.Tensor], k: int, exclude: Any = None) -> np.ndarray:
        """Top-``k`` videos by softmax probability: (B, k) int64, best first, ties to the lower id.

        ``exclude``: per example, video ids never to recommend (a list of arrays, a scipy.sparse
        (B, n_videos) matrix, or a (B, L) int array padded with -1), e.g. the already-watched videos.
        Ranking and ties follow :func:`ytrec_lib.metrics.top_k`; rows run out of videos end in -1.
        """
        was_training = self.training
        self.eval()
        try:
            return top_k(self.probabilities(batch).numpy(), k, exclude=_exclusions(exclude, self.n_videos))
        finally:
            self.train(was_training)


class TiedOutput(nn.Module):
    """The output layer of a tied model: ``logits = u @ table[:n].T + b`` with the input video table.

    ``weight`` is a view (n, m) of the watch table's first ``n`` rows (its padding row left out), so
    every reader of ``model.output.weight`` sees the shared table. The table is switched to dense
    gradients: a view cannot carry the sparse gradient of an ``EmbeddingBag(sparse=True)``.
    """

    def __init__(self, table: nn.EmbeddingBag, n_videos: int):
        super().__init__()
        table.sparse = False
        self._table = (table,)  # a tuple: not registered twice as a submodule
        self.in_features, self.out_features = table.weight.shape[1], int(n_videos)
        self.bias = nn.Parameter(torch.zeros(n_videos))

    @property
    def weight(self) -> torch.Tensor:
        return self._table[0].weight[: self.out_features]  # (n, m) view of the input table

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return F.linear(u, self.weight, self.bias)  # (B, n)


def _check_tie(tie_output: bool, m: int, dim: int, freeze_embeddings: bool) -> None:
    if not tie_output:
        return
    if m != dim:
        raise ValueError(f"CandidateModel: tie_output needs the last tower width ({m}) to equal the video "
                         f"embedding dim ({dim}); end the tower in {dim} or change dim")
    if freeze_embeddings:
        raise ValueError("CandidateModel: tie_output with freeze_embeddings would freeze the output layer; "
                         "pass one of them")


def _exclusions(exclude: Any, n: int) -> Any:
    """A (B, L) padded id array -> list of B arrays of the in-range ids; other forms pass through."""
    if isinstance(exclude, np.ndarray | torch.Tensor) and np.ndim(exclude) == 2:
        ex = np.asarray(exclude, dtype=np.int64)
        return [row[(row >= 0) & (row < n)] for row in ex]
    return exclude


def _bag(n: int, dim: int, init: np.ndarray | None, name: str) -> nn.EmbeddingBag:
    """Mean EmbeddingBag of ``n`` rows plus a zero padding row ``n`` that the mean leaves out."""
    bag = nn.EmbeddingBag(n + 1, dim, mode="mean", padding_idx=n, sparse=True)
    with torch.no_grad():
        if init is None:
            bag.weight.normal_(0.0, 1.0 / math.sqrt(dim))
        else:
            init = np.asarray(init, dtype=np.float32)
            if init.shape != (n, dim):
                raise ValueError(f"CandidateModel: {name} has shape {init.shape}, expected ({n}, {dim})")
            if not np.isfinite(init).all():
                raise ValueError(f"CandidateModel: {name} contains NaN or infinite values")
            bag.weight[:n] = torch.from_numpy(init)
        bag.weight[n] = 0.0
    return bag


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if int(value) < 1:
            raise ValueError(f"CandidateModel: {name} must be >= 1, got {value}")


def augment_users(u: torch.Tensor) -> torch.Tensor:
    """(B, m) -> (B, m + 1): append the constant 1 that multiplies the folded-in bias."""
    return torch.cat([u, torch.ones(u.shape[0], 1, dtype=u.dtype)], dim=1)


def inner_product_scores(users_aug: Any, videos_aug: Any) -> np.ndarray:
    """Inner products of augmented users (B, m+1) and videos (n, m+1): (B, n) float64.

    Exact serving scores without the network: float32 inputs are widened to float64 (their products
    are then exact) and summed in coordinate order (:func:`sequential_dot`). NumPy only.
    """
    u, v = np.asarray(users_aug, dtype=np.float64), np.asarray(videos_aug, dtype=np.float64)
    if u.ndim != 2 or v.ndim != 2 or u.shape[1] != v.shape[1]:
        raise ValueError(f"inner_product_scores: need (B, d) and (n, d) arrays, got {u.shape} and {v.shape}")
    return sequential_dot(u, v)


def sequential_dot(a: np.ndarray, b: np.ndarray, chunk: int = 64, col_chunk: int = 4096) -> np.ndarray:
    """``a @ b.T`` for (B, d) and (n, d) float64, accumulated over d in index order: (B, n) float64.

    Each score is ``((a0 b0 + a1 b1) + a2 b2) + ...``: the same sequence of IEEE operations for every
    (row, column) pair, independent of its position and of the BLAS library, so equal inputs give
    bit-identical scores. The scores are built in tiles of ``chunk`` rows x ``col_chunk`` columns
    (2 MiB of float64: the d passes over a tile stay in the cache) with in-place products and sums.
    """
    bt = np.ascontiguousarray(b.T)  # (d, n)
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float64)
    tmp = np.empty((min(chunk, a.shape[0]), min(col_chunk, b.shape[0])), dtype=np.float64)
    for r0 in range(0, a.shape[0], chunk):
        rows = a[r0 : r0 + chunk]  # (c, d)
        for c0 in range(0, b.shape[0], col_chunk):
            acc = out[r0 : r0 + chunk, c0 : c0 + col_chunk]  # (c, w) a view, filled in place
            prod = tmp[: acc.shape[0], : acc.shape[1]]
            acc.fill(0.0)
            for i in range(a.shape[1]):
                np.multiply(rows[:, i, None], bt[None, i, c0 : c0 + col_chunk], out=prod)
                acc += prod
    return out


# ----------------------------------------------------------------------------------------------------
# Ranking and evaluation (training: ytrec_lib.train)
# ----------------------------------------------------------------------------------------------------


def _labels_tensor(labels: Any, n_videos: int, n_examples: int) -> torch.Tensor:
    labels = torch.as_tensor(np.array(labels, dtype=np.int64))
    if labels.ndim != 1 or len(labels) != n_examples:
        raise ValueError(f"labels must be a (n,) int array with one label per example ({n_examples})")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_videos):
        raise ValueError(f"labels must be video ids in [0, {n_videos}); drop examples with unknown labels")
    return labels


@torch.no_grad()
def rank_videos(
    model: CandidateModel,
    feats: ExampleFeatures,
    k: int = 100,
    exclude_watched: bool = True,
    batch_size: int = 1024,
    progress: bool = False,
) -> np.ndarray:
    """The model's top-``k`` videos for every example: (n, k) int64, best first (ties to the lower id).

    With ``exclude_watched`` every video watched before the example's time is skipped (rows that run
    out of videos end in -1). Scores are the float32 logits (ranking them equals ranking the softmax).
    """
    was_training = model.training
    model.eval()
    out = np.empty((len(feats), min(k, model.n_videos)), dtype=np.int64)
    starts = range(0, len(feats), batch_size)
    for start in tqdm(starts, desc="rank", disable=not progress or len(starts) < 5):
        idx = np.arange(start, min(start + batch_size, len(feats)))
        scores = model(feats.batch(idx)).numpy()  # (B, n)
        out[idx] = top_k(scores, out.shape[1], exclude=feats.watched_before(idx) if exclude_watched else None)
    model.train(was_training)
    return out


@torch.no_grad()
def evaluate_recall(
    model: CandidateModel,
    feats: ExampleFeatures,
    labels: Any,
    k: int = 100,
    exclude_watched: bool = True,
    batch_size: int = 1024,
) -> float:
    """Fraction of examples whose label is among the model's top-``k`` (recall@k with one label each).

    The same number as ranking with :func:`rank_videos` and looking for the label, without the ranking:
    the logits of ``batch_size`` examples at a time (the batches :func:`rank_videos` scores, so the
    float32 logits are the same) and :func:`label_in_top_k` on them.
    """
    y = _labels_tensor(labels, model.n_videos, len(feats))
    if not len(y):
        return float("nan")
    was_training = model.training
    model.eval()
    hits = 0
    for start in range(0, len(feats), batch_size):
        idx = np.arange(start, min(start + batch_size, len(feats)))
        scores = model(feats.batch(idx))  # (B, n) float32
        exclude = feats.watched_pairs(idx) if exclude_watched else None
        hits += int(label_in_top_k(scores, y[idx].numpy(), min(k, model.n_videos), exclude).sum())
    model.train(was_training)
    return hits / len(y)


def label_in_top_k(scores: Any, labels: Any, k: int, exclude: tuple[np.ndarray, np.ndarray] | None = None,
                   block: int = 1 << 24) -> np.ndarray:
    """Whether each row's label is in its top-``k`` as :func:`ytrec_lib.metrics.top_k` ranks (score
    descending, ties to the lower id, ``exclude``d videos skipped): (B,) bool.

    ``scores`` (B, n) float (array or tensor), ``labels`` (B,) int, ``exclude`` = (rows (m,), videos
    (m,)) distinct pairs or None. The label is in the top ``k`` when it is not excluded and fewer than
    ``k`` videos that are not excluded beat it (a higher score, or the same score and a lower id): two
    comparisons per score, no sort. Rows are taken ``block // n`` at a time to bound memory.
    """
    s = scores.detach().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    y = np.asarray(labels, dtype=np.int64)
    if not np.max(s) < np.inf:  # one pass: NaN or +inf
        raise ValueError("scores contain NaN or +inf; fix the model output before ranking")
    s_y = s[np.arange(len(y)), y][:, None]  # (B, 1)
    beaten_by = np.empty(len(y), dtype=np.int64)  # (B,) videos above the label
    step = max(1, block // max(s.shape[1], 1))
    for a in range(0, len(y), step):
        rows, t = s[a:a + step], s_y[a:a + step]
        beaten_by[a:a + step] = np.count_nonzero(rows > t, axis=1)
        tied = np.flatnonzero(np.count_nonzero(rows == t, axis=1) > 1)  # rows where another video ties
        lower = np.arange(s.shape[1]) < y[a + tied, None]  # (t, n)
        beaten_by[a + tied] += np.count_nonzero((rows[tied] == t[tied]) & lower, axis=1)
    ok = np.ones(len(y), dtype=bool)
    if exclude is not None and len(exclude[0]):
        r, v = (np.asarray(e, dtype=np.int64) for e in exclude)  # (m,) each
        s_ex, t = s[r, v], s_y[r, 0]
        beats = (s_ex > t) | ((s_ex == t) & (v < y[r]))  # (m,) an excluded video above the label
        beaten_by -= np.bincount(r[beats], minlength=len(y))
        ok[r[v == y[r]]] = False  # a watched label is never recommended
    return ok & (beaten_by < k)


def average_embedding_rank(
    vectors: np.ndarray, feats: ExampleFeatures, k: int = 100, exclude_watched: bool = True,
    batch_size: int = 1024,
) -> np.ndarray:
    """The "average of watched embeddings" baseline: (n, k) int64 top-k video ids per example.

    The user is the mean of the unit-normalised ``vectors`` (n_videos, d) of the videos in the
    example's watch bag (the model's own input); videos are scored by cosine to it. A user with an
    empty bag scores every video 0 (ties to the lower id).
    """
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] != feats.encoder.n_videos:
        raise ValueError(f"vectors must be ({feats.encoder.n_videos}, d), got {v.shape}")
    unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)  # (V, d)
    unit = np.vstack([unit, np.zeros((1, v.shape[1]))])  # padding row: zero
    out = np.empty((len(feats), k), dtype=np.int64)
    for start in range(0, len(feats), batch_size):
        idx = np.arange(start, min(start + batch_size, len(feats)))
        b = feats.batch(idx)
        bags, n = b["watch_ids"].numpy(), np.maximum(b["watch_len"].numpy(), 1)
        users = unit[bags].sum(axis=1) / n[:, None]  # (B, d)
        scores = users @ unit[:-1].T  # (B, V)
        out[idx] = top_k(scores, k, exclude=feats.watched_before(idx) if exclude_watched else None)
    return out


# ----------------------------------------------------------------------------------------------------
# Checkpoints (the payload; ytrec_lib.pipeline writes and reads the files)
# ----------------------------------------------------------------------------------------------------


def checkpoint_payload(model: CandidateModel, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a checkpoint of ``model`` holds: its weights, constructor arguments and ``extra``
    (JSON-able): tensors, dicts, lists, numbers and strings only, so a weights-only load reads it."""
    return {"format": CHECKPOINT_FORMAT, "hparams": model.hparams, "state_dict": model.state_dict(),
            "extra": json.loads(json.dumps(extra or {}))}


def model_from_payload(payload: Any, where: str = "checkpoint") -> tuple[CandidateModel, dict[str, Any]]:
    """Inverse of :func:`checkpoint_payload`: ``(model, extra)``. ``ValueError`` naming ``where`` when
    the payload is foreign or does not fit the model it describes."""
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{where} is not a {CHECKPOINT_FORMAT} checkpoint; delete it and retrain")
    try:
        hp = dict(payload["hparams"])
        hp["spec"] = FeatureSpec.from_dict(hp["spec"])
        model = CandidateModel(**hp)
        model.load_state_dict(payload["state_dict"])
        extra = dict(payload["extra"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        first = (str(err).splitlines() or [""])[0][:200]
        raise ValueError(f"{where} is not a usable {CHECKPOINT_FORMAT} checkpoint ({type(err).__name__}: "
                         f"{first}); delete it and retrain") from err
    return model, extra


def split_examples(builder: Any, split: Any, part: str) -> ExampleFeatures:
    """Features of one part of a ``ytrec_lib.data.splits.Split``: training examples get example age
    ``train_cutoff - time`` (and, in a held-out split, their label left out of the bag, the bag cut to the
    next-watch example's length when the split matches the context); evaluation examples are served
    (example age 0)."""
    if part not in ("train", "valid", "test"):
        raise ValueError(f"part must be 'train', 'valid' or 'test', got {part!r}")
    df = getattr(split, part)
    if part != "train":
        return builder.examples(df["user_id"], df["time"])
    exclude = df["label"].to_numpy() if split.exclude_label else None
    context = df["label_time"].to_numpy() if getattr(split, "match_context", False) else None
    return builder.examples(df["user_id"], df["time"], window_end=split.train_cutoff, exclude=exclude,
                            context_times=context)


@torch.no_grad()
def user_embeddings(model: CandidateModel, builder: Any, user_ids: np.ndarray, serve_time: float,
                    batch_size: int = 2048) -> np.ndarray:
    """``[u, 1]`` of each user from their history before ``serve_time`` (demographics alone for a user
    with none): (n, m+1) float32. ``builder``: the model's :class:`ytrec_lib.features.FeatureBuilder`."""
    feats = builder.examples(user_ids, np.full(len(user_ids), float(serve_time)))
    was_training = model.training
    model.eval()
    out = []
    for s in range(0, len(user_ids), batch_size):
        idx = np.arange(s, min(s + batch_size, len(user_ids)))
        out.append(model.augmented_user_embeddings(feats.batch(idx)).numpy())  # (B, m+1)
    model.train(was_training)
    return np.concatenate(out).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# A synthetic batch (timing and tests; no dataset needed; the step timing: ytrec_lib.studies.softmax_timing)
# ----------------------------------------------------------------------------------------------------


def synthetic_batch(
    n_videos: int, n_tokens: int, n_regions: int, spec: FeatureSpec, batch_size: int, seed: int = 0
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """A random batch (bags of 20 ids) and labels (B,) for timing."""
    g = torch.Generator().manual_seed(seed)
    batch = {
        "watch_ids": torch.randint(0, n_videos, (batch_size, 20), generator=g),
        "search_ids": torch.randint(0, n_tokens, (batch_size, 20), generator=g),
        "region": torch.randint(0, n_regions, (batch_size,), generator=g),
        "dense": torch.rand(batch_size, spec.n_dense, generator=g),
    }
    return batch, torch.randint(0, n_videos, (batch_size,), generator=g)


# ----------------------------------------------------------------------------------------------------
# Experiments of notebook 03: small-run budgets, evaluation subset, ranking quality, freshness by age
# ----------------------------------------------------------------------------------------------------

SMALL_RUN_BUDGETS: dict[str, tuple[int, int]] = {
    "tiny": (3, 5_000), "ci": (5, 15_000), "small": (3, 40_000), "large": (2, 60_000),
}
"""(epochs, max_train_examples) of notebook 03's small experiments per simulator preset."""
DEFAULT_SMALL_RUN_BUDGET: tuple[int, int] = (4, 80_000)
"""The small-run budget of a dataset that is not a simulator preset (a real dataset)."""


def small_run_budget(preset: str) -> tuple[int, int]:
    """(epochs, max_train_examples) of a cheap version of the default model on dataset ``preset``."""
    return SMALL_RUN_BUDGETS.get(preset, DEFAULT_SMALL_RUN_BUDGET)


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())


def evaluation_subset(n: int, max_users: int, seed: int = 0) -> np.ndarray:
    """Sorted indices (m,) int64 of the examples to evaluate: all ``n`` of them, or a seeded random
    subset of ``max_users`` when there are more."""
    if n > max_users:
        return np.sort(np.random.default_rng(seed).choice(n, max_users, replace=False))
    return np.arange(n)


def ranking_quality(
    ranked: np.ndarray, labels: Any, k_list: Sequence[int] = (10, 50, 100, 200)
) -> dict[str, float]:
    """recall@K for each K of ``k_list``, MAP@100 and NDCG@100 of a ranking ``ranked`` (n, >= max K)
    against one label per row ``labels`` (n,)."""
    from ytrec_lib import metrics

    out = {f"recall@{k}": metrics.recall_at_k(ranked, labels, k) for k in k_list}
    out["MAP@100"] = metrics.map_at_k(ranked, labels, 100)
    out["NDCG@100"] = metrics.ndcg_at_k(ranked, labels, 100)
    return out


@torch.no_grad()
def probability_by_age(
    run: Any, users: np.ndarray, times: np.ndarray, upload: np.ndarray, eligible: np.ndarray,
    window_end: float, age_days: int = 14, batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean class probability the model gives a video of age a (whole days since upload) at the
    example's time, over the examples (``users``, ``times``: (n,)) and the ``eligible`` videos
    ((n_videos,) bool) of age 0 .. ``age_days`` - 1; features as in training (example age
    ``window_end - time``). ``upload``: (n_videos,) upload day of each video.

    Returns (mean probability (age_days,) float64, number of (example, video) pairs (age_days,)).
    """
    feats = run.builder.examples(users, times, window_end=window_end)
    num, den = np.zeros(age_days), np.zeros(age_days)
    for start in range(0, len(feats), batch_size):
        idx = np.arange(start, min(start + batch_size, len(feats)))
        p = run.model.probabilities(feats.batch(idx)).numpy()  # (b, V)
        age = times[idx, None] - upload[None, :]  # (b, V) days since upload
        ok = (age >= 0) & (age < age_days) & eligible[None, :]
        bins = age[ok].astype(int)
        num += np.bincount(bins, weights=p[ok], minlength=age_days)
        den += np.bincount(bins, minlength=age_days)
    return num / np.maximum(den, 1), den


def fresh_lift(curve: np.ndarray) -> float:
    """How much more likely a video is in its first two days than in its second week: the mean of
    ``curve`` (a probability by age in days, at least 8 values) over days 0-1 over its mean from day 7."""
    return curve[:2].mean() / max(curve[7:].mean(), 1e-12)


def young_share(videos: Any, times: Any, upload: np.ndarray, young_days: float = 7.0) -> float:
    """Share of the videos in ``videos`` that are younger than ``young_days`` at their row's time.

    ``videos``: (n, k) int64 ids, one row per query (a served list, -1 padding left out), or (n,) one id
    per query (e.g. the video each user watched next); ``times``: (n,) float days, each row's moment;
    ``upload``: (n_videos,) float days. Video ``v`` in row ``i`` is young when
    ``0 <= times[i] - upload[v] < young_days`` (a video not uploaded yet at ``times[i]`` is not).
    Returns a float in [0, 1]; NaN when ``videos`` holds no id at all.
    """
    ids = np.asarray(videos)
    ids = ids[:, None] if ids.ndim == 1 else ids  # (n, k)
    t = np.asarray(times, dtype=np.float64)
    up = np.asarray(upload, dtype=np.float64)
    if ids.ndim != 2 or t.shape != (ids.shape[0],):
        raise ValueError(f"videos must be (n, k) or (n,) ids with times (n,), got {np.shape(videos)} and "
                         f"{np.shape(times)}")
    if not np.issubdtype(ids.dtype, np.integer) or (ids.size and (ids.min() < -1 or ids.max() >= up.size)):
        raise ValueError(f"videos must be integer ids in [0, {up.size}) or -1 padding (upload covers "
                         f"{up.size} videos)")
    if not young_days > 0:
        raise ValueError(f"young_days must be a positive number of days, got {young_days!r}")
    served = ids >= 0  # (n, k)
    age = t[:, None] - up[np.where(served, ids, 0)]  # (n, k) days since upload at the row's time
    young = served & (age >= 0) & (age < young_days)
    n = int(served.sum())
    return float(young.sum() / n) if n else float("nan")


def served_young_share(run: Any, users: np.ndarray, times: np.ndarray, upload: np.ndarray, k: int = 100,
                       young_days: float = 7.0) -> float:
    """Serve ``users`` (n,) int64 at ``times`` (n,) float days as at serving time, example age 0 (the
    features of ``run.builder.examples`` without a window end), every video each user watched before
    excluded, top ``k`` of ``run.model`` (:func:`rank_videos`); the :func:`young_share` of those lists
    (``upload``: (n_videos,) float days)."""
    ranked = rank_videos(run.model, run.builder.examples(users, times), k)  # (n, k) int64
    return young_share(ranked, times, upload, young_days)


__all__ = [
    "CandidateModel", "TiedOutput", "augment_users", "inner_product_scores", "sequential_dot",
    "evaluate_recall", "label_in_top_k", "rank_videos", "average_embedding_rank", "checkpoint_payload",
    "model_from_payload",
    "user_embeddings", "synthetic_batch", "split_examples",
    "SMALL_RUN_BUDGETS", "small_run_budget", "count_parameters", "evaluation_subset", "ranking_quality",
    "probability_by_age", "fresh_lift", "young_share", "served_young_share",
]
