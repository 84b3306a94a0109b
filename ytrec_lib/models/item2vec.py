"""Item2vec: skip-gram with negative sampling (SGNS) over sequences of item ids, in PyTorch.

The lecture's candidate model averages *pretrained* watch and search embeddings; this module
pretrains them the word2vec way (Mikolov et al. 2013) on watch sequences (videos) and on search
sequences (tokens), as item2vec does for items (Barkan & Koenigstein 2016).

Pieces, each usable on its own (the notebook shows them one at a time):

- :class:`IdMap` maps arbitrary integer ids to contiguous rows and back.
- :func:`window_pairs` / :func:`session_pairs` make the (center, context) training pairs: a window of
  ``window`` positions on each side (word2vec's random shrinking of the window per center included),
  or the whole session as context (item2vec's set form, ``window=None``).
- :func:`keep_probability` is word2vec's frequent-item subsampling with threshold ``t``;
  :func:`noise_distribution` is the negative-sampling distribution ``count ** alpha``.
- :class:`Item2Vec` trains the two embedding tables with hand-written SGNS gradients and plain SGD
  under word2vec's linear learning-rate decay, on large shuffled batches of pairs. To keep the
  negatives cheap, each group of ``neg_share`` consecutive pairs (after shuffling) shares its
  ``negatives`` noise samples: every pair still gets ``negatives`` independent draws from the
  noise distribution, so the objective is word2vec's, but the scoring becomes a batched matrix
  product. ``neg_share=1`` gives one set of negatives per pair.
- :func:`train_gensim` trains gensim's ``Word2Vec`` (sg=1, negative sampling) on the same
  sequences with the same settings, for the side-by-side comparison.
- :func:`fit_sweep` trains one model per (alpha, subsample) setting, each once, for the sweeps.
- :func:`topic_purity_at_k` scores any embedding by the fraction of its nearest neighbours that
  share the item's topic, overall and per popularity band (:func:`popularity_bands`);
  :func:`token_topics` gives search tokens a topic (the majority topic of the titles they occur in).

Sequences shorter than two items are skipped (they make no pairs) and are not counted in the
vocabulary; how many were skipped is in ``model.stats["skipped_sequences"]``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from ytrec_lib.progress import tqdm
from ytrec_lib.threads import limit_threads

BANDS = ("head", "torso", "tail")


# ----------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class SGNSConfig:
    """Settings of an SGNS run (word2vec's defaults where it has one).

    ``window=None`` takes the whole sequence as context (item2vec's set form; the number of pairs
    grows as the square of the sequence length). ``shrink_window`` draws, per center, a window
    uniformly in ``1..window`` as word2vec and gensim do. ``subsample`` is the threshold ``t`` of
    frequent-item subsampling (0 switches it off). ``alpha`` is the noise exponent.
    ``batch_size`` counts positive pairs per SGD step; ``lr`` decays linearly to ``min_lr`` over
    the corpus words, as in word2vec. ``neg_share`` pairs share one draw of ``negatives`` noise items
    (1: a draw per pair). ``max_row_hits`` caps how many of a row's updates one batch sums (see
    :func:`sgns_step`; None: no cap). Pairs are made and shuffled ``chunk_pairs`` at a time.
    ``threads`` is torch's thread count while training: 1 by default, because the step is a few
    small memory-bound kernels whose thread hand-offs cost more than they give on 2 busy cores
    (None leaves torch's setting).
    """

    dim: int = 64
    window: int | None = 5
    shrink_window: bool = True
    negatives: int = 5
    alpha: float = 0.75
    subsample: float = 1e-3
    min_count: int = 1
    epochs: int = 5
    batch_size: int = 4096
    neg_share: int = 16
    max_row_hits: int | None = 64
    lr: float = 0.025
    min_lr: float = 1e-4
    chunk_pairs: int = 1_000_000
    table_size: int = 10_000_000
    seed: int = 0
    threads: int | None = 1

    def validate(self) -> None:
        """Raise ValueError with a one-line fix for any setting that cannot train."""
        checks = [
            (self.dim >= 1, f"dim must be >= 1, got {self.dim}"),
            (self.window is None or self.window >= 1,
             f"window must be >= 1 (or None for the whole session), got {self.window}"),
            (self.negatives >= 1, f"negatives must be >= 1 (word2vec uses 5-20), got {self.negatives}"),
            (math.isfinite(self.alpha) and self.alpha >= 0,
             f"alpha must be a finite number >= 0, got {self.alpha}"),
            (self.subsample >= 0, f"subsample must be >= 0 (0 switches it off), got {self.subsample}"),
            (self.min_count >= 1, f"min_count must be >= 1, got {self.min_count}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.neg_share >= 1, f"neg_share must be >= 1, got {self.neg_share}"),
            (self.batch_size >= self.neg_share,
             f"batch_size ({self.batch_size}) must be >= neg_share ({self.neg_share})"),
            (self.lr > 0 and 0 <= self.min_lr <= self.lr,
             f"need lr > 0 and 0 <= min_lr <= lr, got lr={self.lr}, min_lr={self.min_lr}"),
            (self.max_row_hits is None or self.max_row_hits >= 1,
             f"max_row_hits must be >= 1 or None, got {self.max_row_hits}"),
            (self.chunk_pairs >= 1 and self.table_size >= 1, "chunk_pairs and table_size must be >= 1"),
            (self.threads is None or self.threads >= 1, f"threads must be >= 1 or None, got {self.threads}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"SGNSConfig: {message}")


# ----------------------------------------------------------------------------------------------
# id map and corpus


class IdMap:
    """Arbitrary integer ids <-> contiguous rows 0..n-1 (rows follow the sorted ids).

    ``ids`` is (n,) int64, sorted and unique; ``counts`` is (n,) int64, occurrences in the corpus.
    """

    def __init__(self, ids: np.ndarray, counts: np.ndarray | None = None):
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or (ids.size > 1 and np.any(np.diff(ids) <= 0)):
            raise ValueError("IdMap: ids must be a 1-D array of sorted, unique integers")
        self.ids = ids
        self.counts = np.ones(len(ids), np.int64) if counts is None else np.asarray(counts, np.int64)
        if self.counts.shape != ids.shape:
            raise ValueError("IdMap: counts must have the same length as ids")

    def __len__(self) -> int:
        return len(self.ids)

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """(m,) bool: which of ``ids`` are in the vocabulary."""
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(self.ids, ids).clip(0, max(len(self.ids) - 1, 0))
        return (len(self.ids) > 0) & (self.ids[pos] == ids)

    def rows(self, ids: np.ndarray | int, missing: str = "raise") -> np.ndarray:
        """Rows of ``ids`` ((m,) int64). ``missing``: "raise" (KeyError) or "mask" (-1 for unknown ids)."""
        ids = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        found = self.contains(ids)
        if missing == "raise" and not found.all():
            bad = ids[~found][:5].tolist()
            raise KeyError(f"ids {bad} are not in the vocabulary ({len(self)} ids; items seen fewer than "
                           f"min_count times or only in one-item sequences are left out)")
        rows = np.searchsorted(self.ids, ids).astype(np.int64)
        return np.where(found, rows, -1)


@dataclass
class Corpus:
    """A corpus encoded as rows: ``tokens`` (N,) int64 rows in sequence order, ``lengths`` (S,) int64."""

    tokens: np.ndarray
    lengths: np.ndarray
    id_map: IdMap
    skipped_sequences: int = 0


def _as_int_array(seq: Any, i: int) -> np.ndarray:
    arr = np.asarray(seq)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"sequence {i} is not a 1-D array of integer ids (got dtype {arr.dtype}, "
                         f"shape {arr.shape}); pass a list of integer arrays")
    return arr.astype(np.int64, copy=False)


def encode_corpus(sequences: Sequence[Any], min_count: int = 1) -> Corpus:
    """Build the vocabulary of ``sequences`` and encode them as rows.

    Items seen fewer than ``min_count`` times are dropped from the sequences (word2vec's rule); then
    sequences with fewer than two items are skipped (they make no pairs). The vocabulary and its
    counts are those of what is left, so the noise distribution matches the training corpus.
    Raises ValueError when nothing is left to train on.
    """
    arrays = [_as_int_array(s, i) for i, s in enumerate(sequences)]
    if not arrays:
        raise ValueError("the corpus is empty: pass a non-empty list of id sequences")
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    flat = np.concatenate(arrays) if lengths.sum() else np.zeros(0, np.int64)
    if min_count > 1 and len(flat):
        ids, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
        keep = counts[inverse] >= min_count
        seq_of = np.repeat(np.arange(len(lengths)), lengths)
        flat, lengths = flat[keep], np.bincount(seq_of[keep], minlength=len(lengths))
    flat, lengths = _drop_short(flat, lengths)
    if len(flat) == 0:
        raise ValueError(f"no sequence has two or more items (after min_count={min_count}); item2vec "
                         "learns from items that occur together, so pass longer sequences")
    ids, tokens, counts = np.unique(flat, return_inverse=True, return_counts=True)
    return Corpus(tokens.astype(np.int64), lengths.astype(np.int64), IdMap(ids, counts),
                  skipped_sequences=len(arrays) - len(lengths))


def _drop_short(tokens: np.ndarray, lengths: np.ndarray, min_len: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Remove sequences shorter than ``min_len``: tokens (N,) and lengths (S,) -> kept tokens, lengths."""
    short = lengths < min_len
    if not short.any():
        return tokens, lengths
    seq_of = np.repeat(np.arange(len(lengths)), lengths)
    return tokens[~short[seq_of]], lengths[~short]


# ----------------------------------------------------------------------------------------------
# training pairs, subsampling, noise


def window_pairs(tokens: np.ndarray, lengths: np.ndarray, window: int,
                 reduced: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(center, context) pairs within ``window`` positions on either side, inside each sequence.

    ``tokens`` (N,) int: the sequences laid end to end; ``lengths`` (S,) int, summing to N.
    ``reduced`` (N,) int in 1..window: word2vec's shrunk window per center (None: the full window).
    Returns two (P,) int64 arrays of token values (not positions). One NumPy pass per offset.
    """
    if window is None or window < 1:
        raise ValueError(f"window must be >= 1, got {window}; use session_pairs for the whole session")
    tokens = np.asarray(tokens, np.int64)
    seq_of = np.repeat(np.arange(len(lengths)), lengths)  # (N,)
    if len(seq_of) != len(tokens):
        raise ValueError(f"lengths sum to {len(seq_of)} but there are {len(tokens)} tokens")
    centers, contexts = [], []
    longest = int(np.max(lengths, initial=0))
    for off in range(1, min(window, longest - 1) + 1):
        same = seq_of[off:] == seq_of[:-off]  # (N-off,) positions i and i+off in one sequence
        left_ok = same if reduced is None else same & (reduced[:-off] >= off)  # center i, context i+off
        right_ok = same if reduced is None else same & (reduced[off:] >= off)  # center i+off, context i
        i = np.flatnonzero(left_ok)
        centers.append(tokens[i])
        contexts.append(tokens[i + off])
        j = np.flatnonzero(right_ok)
        centers.append(tokens[j + off])
        contexts.append(tokens[j])
    if not centers:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(centers), np.concatenate(contexts)


def session_pairs(tokens: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ordered (center, context) pairs of distinct positions inside each sequence (item2vec's set form).

    ``tokens`` (N,) int, ``lengths`` (S,) int. Returns two (P,) int64 arrays, P = sum(L * (L - 1)).
    """
    tokens = np.asarray(tokens, np.int64)
    lengths = np.asarray(lengths, np.int64)
    seq_of = np.repeat(np.arange(len(lengths)), lengths)  # (N,)
    if len(seq_of) != len(tokens):
        raise ValueError(f"lengths sum to {len(seq_of)} but there are {len(tokens)} tokens")
    starts = np.cumsum(lengths) - lengths  # (S,)
    copies = lengths[seq_of]  # (N,) each position pairs with every position of its sequence
    center_pos = np.repeat(np.arange(len(tokens)), copies)  # (N2,)
    offsets = np.arange(len(center_pos)) - np.repeat(np.cumsum(copies) - copies, copies)
    context_pos = np.repeat(starts[seq_of], copies) + offsets  # (N2,)
    distinct = context_pos != center_pos
    return tokens[center_pos[distinct]], tokens[context_pos[distinct]]


def keep_probability(counts: np.ndarray, t: float) -> np.ndarray:
    """word2vec's subsampling: the chance (n,) float64 of keeping one occurrence of each item.

    With f = count / total, keep = min(1, (sqrt(f / t) + 1) * t / f) (the formula of word2vec's C
    code and gensim); ``t = 0`` keeps everything.
    """
    counts = np.asarray(counts, np.float64)
    if t < 0:
        raise ValueError(f"subsampling threshold t must be >= 0, got {t}")
    if t == 0 or counts.sum() == 0:
        return np.ones(len(counts))
    f = np.maximum(counts / counts.sum(), 1e-300)
    return np.minimum(1.0, (np.sqrt(f / t) + 1.0) * t / f)


def subsample(tokens: np.ndarray, lengths: np.ndarray, keep: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Drop each occurrence with probability 1 - keep[token]; tokens (N,), lengths (S,) -> the kept ones."""
    kept = rng.random(len(tokens)) < keep[tokens]  # (N,) bool
    seq_of = np.repeat(np.arange(len(lengths)), lengths)
    return tokens[kept], np.bincount(seq_of[kept], minlength=len(lengths))


def noise_distribution(counts: np.ndarray, alpha: float = 0.75) -> np.ndarray:
    """The negative-sampling distribution (n,) float64: count ** alpha, normalised (alpha = 0: uniform)."""
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 1 or len(counts) == 0 or np.any(counts < 0):
        raise ValueError("counts must be a non-empty 1-D array of non-negative numbers")
    weights = np.where(counts > 0, counts, 0.0) ** alpha
    if weights.sum() == 0:
        raise ValueError("all counts are zero: there is nothing to sample negatives from")
    return weights / weights.sum()


def unigram_table(probs: np.ndarray, size: int) -> np.ndarray:
    """word2vec's sampling table (size,) int64: row r fills round(probs[r] * size) slots.

    Largest-remainder rounding, so the table's frequencies are within 1 / size of ``probs``;
    a uniform draw of a slot is then a draw from ``probs``.
    """
    quota = np.asarray(probs, np.float64) * size  # (n,)
    base = np.floor(quota).astype(np.int64)
    short = size - int(base.sum())
    if short > 0:
        base[np.argsort(-(quota - base), kind="stable")[:short]] += 1
    return np.repeat(np.arange(len(quota), dtype=np.int64), base)


def draw_negatives(table: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
    """``count`` iid noise rows (count,) int64: uniform slots of a :func:`unigram_table` (size,) int64."""
    slots = torch.randint(0, len(table), (count,), generator=gen)
    return table.index_select(0, slots)


def _chunks(lengths: np.ndarray, cost: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Split sequences into consecutive (first, stop) ranges whose summed ``cost`` is about ``budget``."""
    edges = np.searchsorted(np.cumsum(cost), np.arange(budget, int(cost.sum()), budget), side="left") + 1
    bounds = np.unique(np.concatenate([[0], edges.clip(0, len(lengths)), [len(lengths)]]))
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


# ----------------------------------------------------------------------------------------------
# the SGD step


def sgns_step(w_in: torch.Tensor, w_out: torch.Tensor, centers: torch.Tensor, contexts: torch.Tensor,
              negatives: torch.Tensor, lr: float, weight: torch.Tensor | None = None,
              with_loss: bool = False, max_hits: int | None = None) -> float | None:
    """One SGD step of skip-gram with negative sampling, in place on ``w_in`` and ``w_out``.

    ``w_in``, ``w_out``: (n, d) float32 input (center) and output (context) tables.
    ``centers``, ``contexts``: (B,) int64 rows; ``negatives``: (B / G, K) int64 rows, shared by each
    group of G consecutive pairs. ``weight``: (B,) float32 pair weights (0 for padding) or None.
    The loss of a pair is -log s(u.v) - sum_k log s(-u.n_k) (s the sigmoid), a negative equal to the
    pair's context skipped as in word2vec; the step is -lr times the gradient of the summed loss,
    except that a row hit more than ``max_hits`` times in one index list (centers, contexts or
    negatives) has its summed step scaled to ``max_hits`` hits' worth (see :func:`_scatter_rows`).
    Returns the mean loss per pair when ``with_loss``.
    """
    n_groups, k = negatives.shape
    batch, d = centers.shape[0], w_in.shape[1]
    group = batch // n_groups
    u = w_in.index_select(0, centers)  # (B, d)
    v = w_out.index_select(0, contexts)  # (B, d)
    neg = w_out.index_select(0, negatives.reshape(-1)).view(n_groups, k, d)  # (M, K, d)
    ug = u.view(n_groups, group, d)  # (M, G, d)
    pos_score = torch.linalg.vecdot(u, v)  # (B,)
    neg_score = torch.bmm(ug, neg.transpose(1, 2))  # (M, G, K)
    valid = contexts.view(n_groups, group, 1) != negatives.view(n_groups, 1, k)  # (M, G, K)
    g_pos = torch.sigmoid(pos_score).sub_(1.0)  # (B,) d loss / d pos_score
    g_neg = torch.sigmoid(neg_score).mul_(valid)  # (M, G, K) d loss / d neg_score
    if weight is not None:
        g_pos.mul_(weight)
        g_neg.mul_(weight.view(n_groups, group, 1))
    loss = None
    if with_loss:
        pos_loss = -torch.nn.functional.logsigmoid(pos_score)
        neg_loss = -(torch.nn.functional.logsigmoid(-neg_score) * valid).sum(2).view(-1)
        w = torch.ones_like(pos_loss) if weight is None else weight
        loss = float(((pos_loss + neg_loss) * w).sum() / w.sum().clamp(min=1.0))
    g_pos.mul_(-lr)  # fold the step size into the (B,) and (M, G, K) scalars: cheaper than alpha=
    g_neg.mul_(-lr)
    step_u = torch.baddbmm(g_pos.view(n_groups, group, 1) * v.view(n_groups, group, d), g_neg, neg)  # (M,G,d)
    step_neg = torch.bmm(g_neg.transpose(1, 2), ug)  # (M, K, d)
    _scatter_rows(w_in, centers, step_u.view(batch, d), max_hits)
    _scatter_rows(w_out, contexts, g_pos.unsqueeze(1) * u, max_hits)
    _scatter_rows(w_out, negatives.reshape(-1), step_neg.view(-1, d), max_hits)
    return loss


def _scatter_rows(table: torch.Tensor, rows: torch.Tensor, values: torch.Tensor,
                  max_hits: int | None = None) -> None:
    """table[rows[i]] += values[i] for every i, repeats summed; table (n, d), rows (m,), values (m, d).

    With ``max_hits``, a row that occurs more than ``max_hits`` times in ``rows`` has its summed step
    scaled down to ``max_hits`` occurrences' worth: a batch computes all of a popular item's updates
    from one stale vector, and summing hundreds of them overshoots where sequential SGD would not
    (without it, batches of 16k pairs diverge on a Zipf corpus).
    ``scatter_add_`` with an expanded index is the fastest CPU form (faster than ``index_add_``).
    """
    if max_hits is not None:
        hits = torch.bincount(rows, minlength=table.shape[0])  # (n,)
        if int(hits.max()) > max_hits:
            scale = (max_hits / hits.clamp(min=1).float()).clamp_(max=1.0)  # (n,)
            values = values * scale.index_select(0, rows).unsqueeze(1)
    table.scatter_add_(0, rows.view(-1, 1).expand(-1, table.shape[1]), values)


# ----------------------------------------------------------------------------------------------
# the model


@dataclass
class Embedding:
    """Item vectors from any method: ``ids`` (n,) int64, ``vectors`` (n, d) float32, and how long it took.

    ``words_per_second`` is corpus tokens times epochs over training seconds (the unit gensim logs).
    """

    name: str
    ids: np.ndarray
    vectors: np.ndarray
    seconds: float
    words_per_second: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)


class Item2Vec:
    """Skip-gram with negative sampling over id sequences (see the module docstring).

    >>> model = Item2Vec(dim=32, epochs=3).fit([[1, 2, 3], [2, 3, 4]], progress=False)
    >>> model.vectors.shape
    (4, 32)

    After :meth:`fit`: ``vectors`` (n, d) float32 (the input table, the usual word2vec output),
    ``context_vectors`` (n, d) float32, ``ids`` (n,) int64, ``counts`` (n,) int64, ``history``
    (list of dicts: epoch, words, pairs, lr, loss), ``stats`` (dict: seconds, pairs, words,
    pairs_per_second, words_per_second, skipped_sequences).
    """

    def __init__(self, config: SGNSConfig | None = None, **overrides: Any):
        config = config or SGNSConfig()
        unknown = set(overrides) - set(asdict(config))
        if unknown:
            raise TypeError(f"unknown Item2Vec settings {sorted(unknown)}; see SGNSConfig for the names")
        self.config = replace(config, **overrides)
        self.config.validate()
        self.id_map: IdMap | None = None
        self._w_in: torch.Tensor | None = None
        self._w_out: torch.Tensor | None = None
        self.history: list[dict[str, float]] = []
        self.stats: dict[str, float] = {}

    # -- training ---------------------------------------------------------------------------

    def fit(self, sequences: Sequence[Any], progress: bool = True, log_every: int = 50) -> Item2Vec:
        """Train on ``sequences`` (a list of 1-D integer id arrays). Returns ``self``."""
        cfg = self.config
        corpus = encode_corpus(sequences, cfg.min_count)
        n, d = len(corpus.id_map), cfg.dim
        gen = torch.Generator().manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        self.id_map = corpus.id_map
        self._w_in = (torch.rand(n, d, generator=gen) - 0.5) / d  # (n, d) word2vec's init
        self._w_out = torch.zeros(n, d)  # (n, d)
        keep = keep_probability(corpus.id_map.counts, cfg.subsample)  # (n,)
        table = torch.from_numpy(unigram_table(noise_distribution(corpus.id_map.counts, cfg.alpha),
                                               cfg.table_size))
        L = corpus.lengths
        cost = L * (L - 1) if cfg.window is None else L * 2 * min(cfg.window, 64)
        chunks = _chunks(L, cost, cfg.chunk_pairs)
        starts = np.concatenate([[0], np.cumsum(L)])
        total_words = int(L.sum()) * cfg.epochs
        self.history, n_pairs, words_done, step = [], 0, 0, 0
        bar = tqdm(total=total_words, unit="word", unit_scale=True, disable=not progress, desc="item2vec")
        t0 = time.perf_counter()
        with limit_threads(cfg.threads, blas=False), torch.no_grad():
            for epoch in range(cfg.epochs):
                for first, stop in chunks:
                    toks = corpus.tokens[starts[first]:starts[stop]]
                    centers, contexts = self._pairs(toks, L[first:stop], keep, rng)
                    chunk_words = len(toks)
                    for lo in range(0, len(centers), cfg.batch_size):
                        frac = (words_done + chunk_words * lo / max(len(centers), 1)) / total_words
                        lr = max(cfg.min_lr, cfg.lr * (1.0 - frac))
                        loss = self._step(centers[lo:lo + cfg.batch_size], contexts[lo:lo + cfg.batch_size],
                                          table, gen, lr, with_loss=step % log_every == 0)
                        if loss is not None:
                            self.history.append({"epoch": epoch, "words": words_done + chunk_words * lo
                                                 / max(len(centers), 1), "pairs": n_pairs + lo, "lr": lr,
                                                 "loss": loss})
                        step += 1
                    n_pairs += len(centers)
                    words_done += chunk_words
                    bar.update(chunk_words)
        bar.close()
        seconds = time.perf_counter() - t0
        self.stats = {"seconds": seconds, "pairs": n_pairs, "words": total_words,
                      "pairs_per_second": n_pairs / seconds, "words_per_second": total_words / seconds,
                      "skipped_sequences": corpus.skipped_sequences}
        return self

    def _pairs(self, toks: np.ndarray, lengths: np.ndarray, keep: np.ndarray,
               rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Subsample one chunk, make its pairs and shuffle them: two (P,) int64 tensors."""
        cfg = self.config
        toks, lengths = subsample(toks, lengths, keep, rng)
        if cfg.window is None:
            centers, contexts = session_pairs(toks, lengths)
        else:
            reduced = rng.integers(1, cfg.window + 1, len(toks)) if cfg.shrink_window else None
            centers, contexts = window_pairs(toks, lengths, cfg.window, reduced)
        order = rng.permutation(len(centers))
        return torch.from_numpy(centers[order]), torch.from_numpy(contexts[order])

    def _step(self, centers: torch.Tensor, contexts: torch.Tensor, table: torch.Tensor,
              gen: torch.Generator, lr: float, with_loss: bool) -> float | None:
        """Pad the batch to a multiple of ``neg_share``, draw its negatives, run :func:`sgns_step`."""
        cfg = self.config
        batch = len(centers)
        groups = -(-batch // cfg.neg_share)
        pad = groups * cfg.neg_share - batch
        weight = None
        if pad:
            centers = torch.cat([centers, centers[:1].expand(pad)])
            contexts = torch.cat([contexts, contexts[:1].expand(pad)])
            weight = torch.cat([torch.ones(batch), torch.zeros(pad)])
        negatives = draw_negatives(table, groups * cfg.negatives, gen).view(groups, cfg.negatives)  # (M, K)
        return sgns_step(self._w_in, self._w_out, centers, contexts, negatives, lr, weight, with_loss,
                         cfg.max_row_hits)

    # -- lookups -----------------------------------------------------------------------------

    def _require_fit(self) -> IdMap:
        if self.id_map is None or self._w_in is None:
            raise RuntimeError("this Item2Vec model is not trained yet: call fit(sequences) or "
                               "Item2Vec.from_arrays(arrays)")
        return self.id_map

    @property
    def ids(self) -> np.ndarray:
        """(n,) int64 item ids, row order of :attr:`vectors`."""
        return self._require_fit().ids

    @property
    def counts(self) -> np.ndarray:
        """(n,) int64 occurrences of each item in the training corpus."""
        return self._require_fit().counts

    @property
    def vectors(self) -> np.ndarray:
        """(n, d) float32 item vectors (the input / center table)."""
        self._require_fit()
        return self._w_in.numpy().copy()

    @property
    def context_vectors(self) -> np.ndarray:
        """(n, d) float32 output / context table."""
        self._require_fit()
        return self._w_out.numpy().copy()

    def vector(self, item_ids: np.ndarray | int) -> np.ndarray:
        """(m, d) float32 vectors of ``item_ids``; KeyError naming the ids not in the vocabulary."""
        rows = self._require_fit().rows(item_ids)
        return self._w_in.numpy()[rows]

    def most_similar(self, item_id: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items closest to ``item_id`` by cosine, itself excluded.

        Returns ids (k,) int64 and cosines (k,) float32, closest first; KeyError for an unknown id.
        """
        id_map = self._require_fit()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        row = int(id_map.rows(item_id)[0])
        unit = _unit_rows(self._w_in.numpy())  # (n, d)
        sims = unit @ unit[row]  # (n,)
        sims[row] = -np.inf
        k = min(k, len(sims) - 1)
        top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
        top = top[np.argsort(-sims[top], kind="stable")]
        return id_map.ids[top], sims[top].astype(np.float32)

    def embedding(self, name: str = "item2vec") -> Embedding:
        """The trained vectors as an :class:`Embedding` (for side-by-side comparisons)."""
        self._require_fit()
        return Embedding(name, self.ids.copy(), self.vectors, float(self.stats.get("seconds", float("nan"))),
                         float(self.stats.get("words_per_second", float("nan"))), dict(self.stats))

    # -- persistence -------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted model as arrays only (ids, counts, w_in, w_out and a JSON ``meta``), for
        ``np.savez``; :meth:`from_arrays` is its inverse. ``ytrec_lib.pipeline`` writes the files."""
        id_map = self._require_fit()
        meta = {"config": asdict(self.config), "history": self.history, "stats": self.stats, "format": 1}
        return {"ids": id_map.ids, "counts": id_map.counts, "w_in": self._w_in.numpy(),
                "w_out": self._w_out.numpy(), "meta": np.array(json.dumps(meta))}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Item2Vec:
        """The model :meth:`to_arrays` gave (``KeyError`` / ``ValueError`` when an array is missing
        or malformed)."""
        meta = json.loads(str(arrays["meta"]))
        model = cls(SGNSConfig(**meta["config"]))
        model.id_map = IdMap(arrays["ids"], arrays["counts"])
        model._w_in = torch.from_numpy(np.asarray(arrays["w_in"], dtype=np.float32))  # (n, dim)
        model._w_out = torch.from_numpy(np.asarray(arrays["w_out"], dtype=np.float32))  # (n, dim)
        if model._w_in.shape != model._w_out.shape or len(model.id_map) != model._w_in.shape[0]:
            raise ValueError(f"w_in {tuple(model._w_in.shape)}, w_out {tuple(model._w_out.shape)} and "
                             f"{len(model.id_map)} ids do not match")
        model.history, model.stats = meta["history"], meta["stats"]
        return model


def fit_sweep(sequences: Sequence[Any], config: SGNSConfig, settings: Sequence[tuple[float, float]],
              reuse: Sequence[Item2Vec] = (), progress: bool = False) -> dict[tuple[float, float], Item2Vec]:
    """One model per ``(alpha, subsample)`` of ``settings``, all else from ``config``, each trained once.

    A setting listed twice (the default one in both an alpha and a subsampling sweep) is trained
    once; a model of ``reuse`` (fitted on the same ``sequences``) whose config is exactly the one
    wanted is taken as it is instead of being retrained. Models train in the order of ``settings``.
    Returns ``{(alpha, subsample): model}`` in that order, one entry per distinct setting.
    """
    models: dict[tuple[float, float], Item2Vec] = {}
    for alpha, t in settings:
        if (alpha, t) in models:
            continue
        wanted = replace(config, alpha=alpha, subsample=t)
        done = [m for m in reuse if m.config == wanted and m.id_map is not None]
        models[alpha, t] = done[0] if done else Item2Vec(wanted).fit(sequences, progress=progress)
    return models


# ----------------------------------------------------------------------------------------------
# gensim, the reference peer


def train_gensim(sequences: Sequence[Any], config: SGNSConfig | None = None, workers: int = 2,
                 **overrides: Any) -> Embedding:
    """Train gensim's ``Word2Vec`` (sg=1, negative sampling) with the same settings as :class:`Item2Vec`.

    The corpus is filtered exactly as :func:`encode_corpus` does, so both see the same sequences.
    ``window=None`` becomes gensim's whole-session trick (window = longest sequence, no shrinking).
    Only ``train`` is timed; ``words_per_second`` is corpus tokens times epochs over that time.
    Vectors come back in the row order of sorted ids, like :class:`Item2Vec`.
    """
    from gensim.models import Word2Vec

    cfg = replace(config or SGNSConfig(), **overrides)
    cfg.validate()
    corpus = encode_corpus(sequences, cfg.min_count)
    ids = corpus.id_map.ids
    bounds = np.cumsum(corpus.lengths)[:-1]
    sentences = [s.tolist() for s in np.split(ids[corpus.tokens], bounds)]
    longest = int(corpus.lengths.max())
    if longest > 10_000:
        raise ValueError(f"a sequence has {longest} items; gensim truncates sentences at 10,000 - split it")
    model = Word2Vec(vector_size=cfg.dim, window=cfg.window or longest,
                     shrink_windows=cfg.shrink_window and cfg.window is not None, sg=1, hs=0,
                     negative=cfg.negatives, ns_exponent=cfg.alpha, sample=cfg.subsample, min_count=1,
                     alpha=cfg.lr, min_alpha=cfg.min_lr, seed=cfg.seed, workers=workers)
    model.build_vocab(sentences)
    t0 = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=cfg.epochs)
    seconds = time.perf_counter() - t0
    keys = np.asarray(model.wv.index_to_key, dtype=np.int64)  # gensim row -> id
    order = np.argsort(keys)
    if not np.array_equal(keys[order], ids):
        raise RuntimeError("gensim's vocabulary differs from ours; this is a bug in train_gensim")
    words = int(corpus.lengths.sum()) * cfg.epochs
    return Embedding("gensim", ids.copy(), model.wv.vectors[order].astype(np.float32), seconds,
                     words / seconds, {"workers": workers, "words": words})


# ----------------------------------------------------------------------------------------------
# quality: topic purity of nearest neighbours


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """(n, d) rows scaled to unit length (zero rows stay zero), float32."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def nearest_neighbours(vectors: np.ndarray, k: int = 10) -> np.ndarray:
    """(n, k) int64 rows of each row's ``k`` nearest rows by cosine, itself excluded, closest first.

    Exact search: a Faiss flat inner-product index over the unit-length rows (float32), queried for
    k + 1 neighbours; the row itself is dropped from its list (or, when ties push it out, the farthest).
    """
    import faiss  # exact k-selection in C++, ~8x NumPy's argpartition at n = 50,000

    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be a 2-D (n, d) array, got shape {vectors.shape}")
    n = len(vectors)
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and n - 1 = {n - 1}, got {k}")
    unit = np.ascontiguousarray(_unit_rows(vectors))  # (n, d) float32
    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(unit)
    _, found = index.search(unit, k + 1)  # (n, k + 1) closest first
    is_self = found == np.arange(n)[:, None]
    keep = ~is_self
    keep[~is_self.any(axis=1), k] = False  # self not among the k + 1: drop the farthest instead
    return found[keep].reshape(n, k).astype(np.int64)


def popularity_bands(counts: np.ndarray, head: float = 0.1, tail: float = 0.5) -> np.ndarray:
    """Popularity band (n,) of each item by its view count: "head", "torso" or "tail".

    Items are ranked by count, most viewed first (ties in index order): the top ``head`` fraction
    is the head, the bottom ``tail`` fraction the tail, the rest the torso. Defaults: top 10 %,
    bottom 50 %.
    """
    counts = np.asarray(counts)
    if counts.ndim != 1 or not (0 <= head and 0 <= tail and head + tail <= 1):
        raise ValueError("counts must be 1-D, and head, tail fractions >= 0 with head + tail <= 1")
    n = len(counts)
    rank = np.empty(n, np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(n)
    bands = np.full(n, "torso", dtype=object)
    bands[rank < round(head * n)] = "head"
    bands[rank >= n - round(tail * n)] = "tail"
    return bands


def topic_purity_at_k(vectors: np.ndarray, topics: np.ndarray, k: int = 10,
                      item_ids: np.ndarray | None = None,
                      bands: np.ndarray | None = None) -> dict[str, float]:
    """Fraction of the ``k`` nearest neighbours (cosine, self excluded) that share the item's topic.

    ``vectors`` (n, d). ``topics``: (n,) topic per row when ``item_ids`` is None, else a topic per
    item id (indexed by id, e.g. ``ds.videos.topic``) and ``item_ids`` (n,) says each row's id.
    ``bands`` (n,) labels per row (e.g. :func:`popularity_bands`) adds one entry per band.
    Returns ``{"overall": p, "head": p_head, ...}`` (bands in head, torso, tail order, then others).
    """
    vectors = np.asarray(vectors)
    topics = np.asarray(topics)
    n = len(vectors)
    if item_ids is not None:
        item_ids = np.asarray(item_ids, np.int64)
        if item_ids.shape != (n,):
            raise ValueError(f"item_ids must have one id per row of vectors ({n}), got {item_ids.shape}")
        if item_ids.size and (item_ids.min() < 0 or item_ids.max() >= len(topics)):
            raise ValueError(f"item_ids run outside the {len(topics)} topics given; "
                             "pass topics indexed by id")
        topics = topics[item_ids]
    if topics.shape != (n,):
        raise ValueError(f"topics must have one entry per row of vectors ({n}), got {topics.shape}")
    same = (topics[nearest_neighbours(vectors, k)] == topics[:, None]).mean(axis=1)  # (n,)
    result = {"overall": float(same.mean())}
    if bands is not None:
        bands = np.asarray(bands, dtype=object)
        if bands.shape != (n,):
            raise ValueError(f"bands must have one label per row of vectors ({n}), got {bands.shape}")
        labels = [b for b in BANDS if b in set(bands)] + sorted(set(bands) - set(BANDS), key=str)
        result.update({str(b): float(same[bands == b].mean()) for b in labels})
    return result


def chance_purity(topics: np.ndarray) -> float:
    """Expected purity of random neighbours: mean over items of (items sharing its topic - 1) / (n - 1)."""
    topics = np.asarray(topics)
    _, inverse, sizes = np.unique(topics, return_inverse=True, return_counts=True)
    return float(((sizes[inverse] - 1) / max(len(topics) - 1, 1)).mean())


def token_topics(title_tokens: Sequence[np.ndarray], topics: np.ndarray, n_tokens: int) -> np.ndarray:
    """The topic (n_tokens,) int64 of each search token: the topic of most of the titles it occurs in.

    ``title_tokens``: one int array of token ids per video (e.g. ``ds.videos.title_tokens``);
    ``topics`` (n_videos,) the videos' topics. Each occurrence of a token in a title is one vote
    for that video's topic; ties go to the smallest topic; a token in no title gets -1.
    """
    title_tokens = list(title_tokens)
    title_tok = np.concatenate(title_tokens)  # (total title tokens,)
    title_topic = np.repeat(np.asarray(topics), [len(t) for t in title_tokens])  # (total title tokens,)
    votes = pd.crosstab(title_tok, title_topic)  # (tokens in a title, topics) counts, both sorted
    token_topic = np.full(int(n_tokens), -1)
    token_topic[votes.index.to_numpy()] = votes.columns.to_numpy()[votes.to_numpy().argmax(1)]
    return token_topic


def as_mapping(result: Embedding) -> Mapping[str, Any]:
    """A JSON-able summary of an :class:`Embedding` (no vectors): name, n, dim, seconds, words/s."""
    return {"name": result.name, "n": int(len(result.ids)), "dim": int(result.vectors.shape[1]),
            "seconds": result.seconds, "words_per_second": result.words_per_second}


# ----------------------------------------------------------------------------------------------
# the sequences of a dataset, and an id-indexed table of a fitted model


def dataset_sequences(ds: Any, kind: str) -> tuple[list[np.ndarray], int]:
    """The sequences of ``kind`` ("videos": watch sequences, "tokens": search sessions) and the id count."""
    if kind == "videos":
        return ds.watch_sequences(), int(ds.meta["n_videos"])
    if kind == "tokens":
        if not ds.meta.get("has_searches", True) or len(ds.searches) == 0:
            raise ValueError(f"dataset {ds.meta.get('name')!r} has no searches: there are no token "
                             "sequences to pretrain on; use kind='videos' or random token embeddings")
        return ds.search_token_sequences(), int(ds.meta["n_tokens"])
    raise ValueError(f"kind must be 'videos' or 'tokens', got {kind!r}")


def id_table(model: Item2Vec, n_ids: int) -> np.ndarray:
    """The vectors of ``model`` as an (n_ids, dim) float32 table indexed by id; ids it never saw get a
    zero row. ``ValueError`` when the model holds an id outside ``0..n_ids-1``."""
    ids = model.ids
    if ids.size and (ids.min() < 0 or ids.max() >= n_ids):
        raise ValueError(f"item2vec ids run outside 0..{n_ids - 1}; the dataset's meta does not match "
                         "its tables")
    table = np.zeros((n_ids, model.vectors.shape[1]), np.float32)
    table[ids] = model.vectors
    return table
