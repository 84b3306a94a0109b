"""The classical baseline of item2vec: truncated SVD of a normalised item co-occurrence matrix.

Barkan & Koenigstein (2016) compare item2vec with this: count how often items i and j occur
together (here: in the same session, or within ``window`` positions), normalise each count by the
item frequencies, M[i, j] = C[i, j] / sqrt(c_i * c_j) with c_i the row sums of C, take the
top ``dim`` singular triplets M ~ U S V^T and use the rows of U S^1/2 as item vectors.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from ytrec_lib.models.item2vec import Embedding, encode_corpus, session_pairs, window_pairs


def cooccurrence_matrix(tokens: np.ndarray, lengths: np.ndarray, n: int,
                        window: int | None = None) -> sp.csr_matrix:
    """Symmetric co-occurrence counts (n, n) float64 CSR of rows ``tokens`` (N,) in sequences ``lengths``.

    C[i, j] counts ordered pairs of positions (p, q), p != q, in one sequence with token i at p and
    j at q, and |p - q| <= ``window`` (None: anywhere in the sequence).
    """
    if window is None:
        centers, contexts = session_pairs(tokens, lengths)
    else:
        centers, contexts = window_pairs(tokens, lengths, window)
    counts = sp.coo_matrix((np.ones(len(centers)), (centers, contexts)), shape=(n, n))
    return counts.tocsr()  # duplicates summed


def normalise(counts: sp.csr_matrix) -> sp.csr_matrix:
    """M[i, j] = C[i, j] / sqrt(c_i * c_j), c the row sums of C (rows without counts stay zero)."""
    totals = np.asarray(counts.sum(axis=1)).ravel()  # (n,)
    inv = np.where(totals > 0, 1.0 / np.sqrt(np.maximum(totals, 1e-300)), 0.0)
    scale = sp.diags(inv)
    return (scale @ counts @ scale).tocsr()


def cooccurrence_svd(sequences: Sequence[Any], dim: int = 64, window: int | None = None, min_count: int = 1,
                     seed: int = 0) -> Embedding:
    """Item vectors (rows of U S^1/2) from the truncated SVD of the normalised co-occurrence matrix.

    ``sequences``: list of 1-D integer id arrays (filtered like :class:`ytrec_lib.models.item2vec.Item2Vec`:
    one-item sequences skipped). ``dim`` must be below the vocabulary size. Returns an
    :class:`~ytrec_lib.models.item2vec.Embedding` with ids (n,) int64 and vectors (n, dim) float32.
    """
    if window is not None and window < 1:
        raise ValueError(f"window must be >= 1 (or None for the whole session), got {window}")
    corpus = encode_corpus(sequences, min_count)
    n = len(corpus.id_map)
    if not 1 <= dim < n:
        raise ValueError(f"dim must be between 1 and the vocabulary size - 1 = {n - 1}, got {dim}")
    t0 = time.perf_counter()
    matrix = normalise(cooccurrence_matrix(corpus.tokens, corpus.lengths, n, window))
    start = np.random.default_rng(seed).standard_normal(n)  # (n,) ARPACK's start vector, for determinism
    u, s, _ = svds(matrix, k=dim, v0=start)
    order = np.argsort(-s)  # svds returns ascending singular values
    vectors = (u[:, order] * np.sqrt(s[order])).astype(np.float32)  # (n, dim)
    seconds = time.perf_counter() - t0
    return Embedding("svd", corpus.id_map.ids.copy(), vectors, seconds,
                     extra={"singular_values": s[order].tolist(), "nnz": int(matrix.nnz)})
