"""Nearest-neighbour retrieval for serving: one interface over exact scan, Faiss and scikit-learn trees.

Serving the candidate model (paper §3.3 and §4) means: given a user vector ``q`` (d,), find the
``k`` videos whose embeddings ``x`` have the largest inner product ``q·x`` among N videos. Every index
here answers that question through the same two calls::

    index = build_index("hnsw", vectors, metric="ip", M=32, efSearch=64)   # vectors (N, d) float32
    scores, ids = index.search(queries, k=10)   # queries (n, d) -> scores (n, k) float32, ids (n, k) int64

Kinds: ``exact`` (NumPy: one GEMM per batch of queries + ``argpartition``), ``flat`` (Faiss brute
force), ``ivf`` (inverted file), ``hnsw`` (graph), ``ivfpq`` (inverted file + product quantisation),
``lsh`` (random hyperplanes), ``kdtree`` and ``balltree`` (scikit-learn). The trees have no inner
product, so they search after the exact MIPS-to-L2 transform of Bachrach et al. (2014)
(:func:`mips_transform_items`, :func:`mips_transform_queries`), and so does ``lsh`` by default (the
transform makes every item the same length, and then the angle orders items like the inner product).

Conventions: ``metric="ip"`` returns inner products, best (largest) first; ``metric="l2"`` returns
squared Euclidean distances, best (smallest) first. Scores are the true metric of the returned ids
for every kind except ``ivfpq`` without a shortlist (its scores are the PQ estimates). An approximate
index may find fewer than ``k`` candidates (e.g. IVF with a tiny ``nprobe``); the missing slots hold
id ``-1`` and score ``-inf`` (ip) or ``+inf`` (l2).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from typing import Any

# Faiss's OpenMP threads (GNU libgomp) spin for a while when they wait for work; on a machine shared
# with other jobs (more runnable threads than cores) that made small searches 50-100x slower here.
# PASSIVE makes waiting threads sleep (libgomp manual, OMP_WAIT_POLICY). It must be set before Faiss
# loads its OpenMP runtime, and an explicit setting of the variable wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.neighbors import BallTree, KDTree  # noqa: E402

from ytrec_lib.metrics import top_k  # noqa: E402

KINDS = ("exact", "flat", "ivf", "hnsw", "ivfpq", "lsh", "kdtree", "balltree")
METRICS = ("ip", "l2")

# Build-time parameters of each kind and their defaults (None: chosen from the data, see _resolve_params).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "exact": {"batch_size": None},
    "flat": {},
    "ivf": {"nlist": None, "nprobe": 16, "train_size": None, "niter": 20, "seed": 0},
    "hnsw": {"M": 32, "efConstruction": 80, "efSearch": 64},
    "ivfpq": {"nlist": None, "nprobe": 16, "m": None, "nbits": None, "shortlist": 0,
              "train_size": None, "niter": 20, "seed": 0},
    "lsh": {"nbits": None, "shortlist": 0, "transform": True},
    "kdtree": {"leaf_size": 40},
    "balltree": {"leaf_size": 40},
}
# Parameters that can change after the build (index.set_params).
SEARCH_PARAMS: dict[str, tuple[str, ...]] = {
    "exact": ("batch_size",),
    "flat": (),
    "ivf": ("nprobe",),
    "hnsw": ("efSearch",),
    "ivfpq": ("nprobe", "shortlist"),
    "lsh": ("shortlist",),
    "kdtree": (),
    "balltree": (),
}
_SCORE_BUDGET = 2**25  # floats of scores held at once by the exact scan (128 MiB)


# ----------------------------------------------------------------------------- MIPS -> L2 transform
def mips_max_norm(items: np.ndarray) -> float:
    """The largest Euclidean norm ``M`` among ``items`` (N, d): the radius of the transform."""
    items = np.asarray(items, dtype=np.float64)
    return float(np.sqrt(np.max(np.einsum("nd,nd->n", items, items)))) if len(items) else 0.0


def mips_transform_items(items: np.ndarray, max_norm: float | None = None) -> np.ndarray:
    """Items (N, d) -> (N, d + 1) float64: ``x -> [x, sqrt(M^2 - |x|^2)]`` (Bachrach et al. 2014, §3).

    Every transformed item has norm ``M`` (default: :func:`mips_max_norm` of ``items``; a larger value
    is allowed, a smaller one is an error). Then for a query transformed by
    :func:`mips_transform_queries`, ``|q' - x'|^2 = |q|^2 + M^2 - 2 q·x``: the L2 order of the items
    is exactly their inner-product order, and the angle order is too.
    """
    items = np.asarray(items, dtype=np.float64)
    if items.ndim != 2:
        raise ValueError(f"mips_transform_items expects items of shape (N, d), got shape {items.shape}")
    sq = np.einsum("nd,nd->n", items, items)  # (N,)
    m = mips_max_norm(items) if max_norm is None else float(max_norm)
    if len(sq) and m * m < sq.max() * (1 - 1e-12):
        raise ValueError(f"max_norm={m} is smaller than the largest item norm {math.sqrt(sq.max())}; "
                         "pass max_norm=None to use the largest norm")
    extra = np.sqrt(np.clip(m * m - sq, 0.0, None))  # (N,)
    return np.concatenate([items, extra[:, None]], axis=1)


def mips_transform_queries(queries: np.ndarray) -> np.ndarray:
    """Queries (n, d) -> (n, d + 1) float64: ``q -> [q, 0]`` (the partner of :func:`mips_transform_items`)."""
    queries = np.asarray(queries, dtype=np.float64)
    if queries.ndim != 2:
        raise ValueError(f"mips_transform_queries expects queries of shape (n, d), got shape {queries.shape}")
    return np.concatenate([queries, np.zeros((len(queries), 1))], axis=1)


# ----------------------------------------------------------------------------- helpers
def recall_at_k(ids: np.ndarray, true_ids: np.ndarray, k: int | None = None) -> float:
    """Mean over queries of ``|ids[:, :k] ∩ true_ids[:, :k]| / k`` (ids (n, >=k) int; -1 never matches)."""
    ids, true_ids = np.asarray(ids), np.asarray(true_ids)
    if ids.ndim != 2 or true_ids.ndim != 2 or len(ids) != len(true_ids):
        raise ValueError(f"recall_at_k expects two (n, k) id arrays with the same n, got {ids.shape} "
                         f"and {true_ids.shape}")
    k = true_ids.shape[1] if k is None else int(k)
    if k < 1 or k > min(ids.shape[1], true_ids.shape[1]):
        raise ValueError(f"k={k} must be between 1 and the number of columns of both arrays")
    if len(ids) == 0:
        raise ValueError("recall_at_k needs at least one query")
    a, t = ids[:, :k], true_ids[:, :k]
    hits = (a[:, :, None] == t[:, None, :]) & (a[:, :, None] >= 0)  # (n, k, k)
    return float(hits.any(axis=2).sum() / (len(a) * k))


def valid_answer(scores: np.ndarray, ids: np.ndarray, n: int, metric: str = "ip", tol: float = 1e-6) -> bool:
    """True when an answer (scores (q, k), ids (q, k)) over ``n`` items is well formed: every id in
    ``[0, n)``, distinct within its row, every score finite and each row sorted best first (largest
    for ``"ip"``, smallest for ``"l2"``, up to ``tol``)."""
    scores, ids = np.asarray(scores), np.asarray(ids)
    ok_ids = bool(((ids >= 0) & (ids < n)).all()) and all(len(set(r)) == len(r) for r in ids.tolist())
    step = np.diff(scores, axis=1) * (1 if metric == "ip" else -1)  # (q, k - 1) <= 0 when sorted
    return ok_ids and bool(np.isfinite(scores).all() and (step <= tol).all())


def _as_matrix(x: np.ndarray, what: str, d: int | None = None) -> np.ndarray:
    """Validate and return ``x`` as a C-contiguous float32 (n, d) array (1-D -> one row)."""
    arr = np.asarray(x)
    if arr.ndim == 1 and what == "queries":
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (n, d), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {arr.shape}); pass at least one vector of dimension >= 1")
    if d is not None and arr.shape[1] != d:
        raise ValueError(f"{what} have dimension {arr.shape[1]} but the index was built with d={d}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contain NaN or infinite values; clean them before indexing/searching")
    return arr


def _topk_rows(scores: np.ndarray, k: int, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Largest ``k`` of each row of ``scores`` (b, N) -> (values (b, k), ids (b, k) int64), best first.

    Plain ``argpartition`` of N scores costs several times the scan that produced them, so for long
    rows a threshold is found first: the k-th largest of the maxima of blocks of ``block`` scores.
    At least k scores reach it (one in each of those blocks), so every top-k score does too; only the
    few candidates at or above it are partitioned. Exact, ties included.
    """
    b, n = scores.shape
    n_blocks = n // block
    if n_blocks < 4 * k:
        return _topk_partition(scores, np.broadcast_to(np.arange(n), scores.shape), k)
    block_max = scores[:, : n_blocks * block].reshape(b, n_blocks, block).max(axis=2)  # (b, n_blocks)
    thr = np.partition(block_max, n_blocks - k, axis=1)[:, n_blocks - k]  # (b,)
    flat = np.flatnonzero(scores >= thr[:, None])  # (c,) row-major, each row has >= k
    rows, cols = np.divmod(flat, n)
    counts = np.bincount(rows, minlength=b)  # (b,)
    pos = np.arange(len(flat)) - (np.cumsum(counts) - counts)[rows]  # rank within its row
    vals = np.full((b, counts.max()), -np.inf, dtype=scores.dtype)  # (b, width), padded with -inf
    cand = np.zeros((b, counts.max()), dtype=np.int64)
    vals[rows, pos] = scores.ravel()[flat]
    cand[rows, pos] = cols
    return _topk_partition(vals, cand, k)


def _topk_partition(vals: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest ``k`` of each row of ``vals`` (b, c) with their ``ids`` (b, c), best first."""
    c = vals.shape[1]
    part = np.argpartition(vals, c - k, axis=1)[:, c - k:]  # (b, k) unordered
    top = np.take_along_axis(vals, part, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    part = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(ids, part, axis=1).astype(np.int64)


def _positive_int(kind: str, name: str, value: Any, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{kind}: parameter {name}={value!r} must be an integer {rng}")
    return int(value)


def default_nlist(n: int, per_sqrt_n: float = 4.0) -> int:
    """Inverted-file lists for N items: the power of two nearest ``per_sqrt_n * sqrt(N)``, at most ``N // 39``
    (Faiss wants at least 39 training points per list)."""
    nlist = 2 ** round(math.log2(max(1.0, per_sqrt_n * math.sqrt(n))))
    return int(max(1, min(nlist, n // 39)))


def _largest_divisor_at_most(d: int, cap: int) -> int:
    return max(m for m in range(1, max(1, cap) + 1) if d % m == 0)


# ----------------------------------------------------------------------------- the interface
class Index:
    """A searchable index over N vectors of dimension d (build it with :func:`build_index`).

    Attributes: ``name`` (the kind, e.g. ``"hnsw"``), ``metric``, ``n``, ``d``, ``params`` (the
    parameters in effect, defaults resolved).
    """

    kind = "base"

    def __init__(self, vectors: np.ndarray, metric: str, params: dict[str, Any]) -> None:
        self.n, self.d = vectors.shape
        self.metric = metric
        self.params = dict(params)
        self._vectors = vectors  # (N, d) float32, kept for exact re-scoring

    @property
    def name(self) -> str:
        return self.kind

    def describe(self) -> str:
        """``kind(param=value, ...)``: a label for tables and plots."""
        inner = ", ".join(f"{k}={v}" for k, v in self.params.items() if k not in ("seed",))
        return f"{self.kind}({inner})"

    def __repr__(self) -> str:
        return f"<{self.describe()} over N={self.n}, d={self.d}, metric={self.metric}>"

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` per query: queries (n, d) -> scores (n, k) float32, ids (n, k) int64, best first."""
        q = _as_matrix(queries, "queries", self.d)
        k = _positive_int(self.kind, "k", k, 1, self.n)
        scores, ids = self._search(q, k)
        return np.ascontiguousarray(scores, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64)

    def set_params(self, **params: Any) -> Index:
        """Change search-time parameters (see ``SEARCH_PARAMS[kind]``) without rebuilding; returns self."""
        allowed = SEARCH_PARAMS[self.kind]
        for key, value in params.items():
            if key not in allowed:
                raise ValueError(f"{self.kind}: cannot set {key!r} after the build; settable: "
                                 f"{', '.join(allowed) or 'none'}")
            self._set(key, value)
            self.params[key] = self._get(key)
        return self

    def memory_bytes(self) -> int:
        """Bytes the index holds (its structure plus any stored vectors it needs to answer)."""
        raise NotImplementedError

    # subclass hooks
    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _set(self, key: str, value: Any) -> None:
        raise NotImplementedError

    def _get(self, key: str) -> Any:
        return self.params[key]

    # shared by subclasses
    def _best_first(self) -> int:
        """+1 when larger scores are better (ip), -1 when smaller are (l2)."""
        return 1 if self.metric == "ip" else -1

    def _rescore(self, q: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """True scores of candidates ``ids`` (n, c) for queries ``q`` (n, d), best first; -1 ids last."""
        valid = ids >= 0
        cand = self._vectors[np.where(valid, ids, 0)]  # (n, c, d)
        ip = np.einsum("nd,ncd->nc", q, cand, dtype=np.float64)  # (n, c)
        if self.metric == "ip":
            scores = np.where(valid, ip, -np.inf)
        else:
            qq = np.einsum("nd,nd->n", q, q, dtype=np.float64)[:, None]
            xx = np.einsum("ncd,ncd->nc", cand, cand, dtype=np.float64)
            scores = np.where(valid, np.maximum(qq + xx - 2 * ip, 0.0), np.inf)
        order = np.argsort(-self._best_first() * scores, axis=1, kind="stable")
        ids = np.where(valid, ids, -1)
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


class InvalidIdError(KeyError, ValueError):
    """A user or video id that is not an integer, or not one the server knows.

    A ``ValueError`` (a bad argument) and, as unknown ids always were here, a ``KeyError``.
    """

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


def ordered_inner_products(queries: np.ndarray, vectors_t: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``queries @ vectors_t`` in float64, each sum accumulated over the coordinates in index order.

    queries: (B, d) float; vectors_t: (d, n) float64, the vectors as columns (C-contiguous).
    Returns (B, n) float64. Every score is ``((q0 v0 + q1 v1) + q2 v2) + ...``: the same operations for
    every (query, vector) pair whatever its position or the BLAS library, so equal inputs give
    bit-identical scores. Rows are processed ``chunk`` at a time to bound memory.
    """
    q = np.asarray(queries, dtype=np.float64)
    if q.ndim != 2 or vectors_t.ndim != 2 or q.shape[1] != vectors_t.shape[0]:
        raise ValueError(f"ordered_inner_products: need (B, d) queries and (d, n) vectors, got {q.shape} and "
                         f"{vectors_t.shape}; the user and video embeddings must have the same dimension")
    out = np.empty((q.shape[0], vectors_t.shape[1]), dtype=np.float64)  # (B, n)
    for start in range(0, q.shape[0], chunk):
        rows = q[start : start + chunk]  # (c, d)
        acc = np.zeros((rows.shape[0], vectors_t.shape[1]), dtype=np.float64)  # (c, n)
        for i in range(q.shape[1]):
            acc += rows[:, i, None] * vectors_t[None, i, :]  # (c, n)
        out[start : start + chunk] = acc
    return out


class ExactIndex(Index):
    """Exact search over ``n`` vectors of dimension ``d`` in NumPy, asked in one of two ways.

    * :meth:`search` (the :class:`Index` interface, what ``build_index("exact", ...)`` returns):
      brute force, one GEMM per batch of queries (GEMV for one query), then the top k by a
      block-maximum threshold and ``argpartition`` of the few candidates left (:func:`_topk_rows`).
      Float32 scores, ``metric`` "ip" or "l2". A single query reads all n·d·4 bytes of the matrix
      once: it is bound by memory bandwidth. The reference of the approximate kinds.
    * :meth:`scores`, :meth:`select` and :meth:`top_ids` (the store server,
      :mod:`ytrec_lib.serving.server`): inner products as float64 sums accumulated coordinate by
      coordinate (:func:`ordered_inner_products`, the same operations as the candidate model's
      ``logits64``), so equal vectors get equal scores and the served top-k equals the model's bit for
      bit; ties go to the lower id, and whole ids can be excluded per query.

    Args:
        vectors: (n, d) float32 or float64, finite (e.g. the augmented video embeddings ``[v, b]``).
        ids: (n,) distinct integer ids of the rows (default ``arange(n)``). Rows are kept in ascending
            id order, so ties are broken to the lower id; both ways of searching return these ids.
        metric: "ip" or "l2" (for :meth:`search`; the other methods are inner products).
        params: the build parameters (default ``DEFAULT_PARAMS["exact"]``).
    """

    kind = "exact"

    def __init__(self, vectors: np.ndarray, ids: Sequence[int] | np.ndarray | None = None, *,
                 metric: str = "ip", params: dict[str, Any] | None = None) -> None:
        v = np.asarray(vectors)
        if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
            raise ValueError(f"ExactIndex: vectors must be a non-empty (n, d) array, got shape {v.shape}")
        if v.dtype.kind != "f" or not np.isfinite(v).all():
            raise ValueError(f"ExactIndex: vectors must be finite floats, got dtype {v.dtype} (or NaN/inf)")
        ids = np.arange(len(v), dtype=np.int64) if ids is None else np.asarray(ids)
        if ids.shape != (len(v),) or (len(ids) and ids.dtype.kind not in "iu"):
            raise ValueError(f"ExactIndex: ids must be ({len(v)},) integers, got shape {ids.shape}, "
                             f"dtype {ids.dtype}")
        order = np.argsort(ids, kind="stable")
        self.ids = ids[order].astype(np.int64)  # (n,) ascending
        if (self.ids[1:] == self.ids[:-1]).any():
            raise ValueError("ExactIndex: ids must be distinct")
        self._identity = bool(np.array_equal(self.ids, np.arange(len(v))))
        # rows in id order; no copy when the ids are 0..n-1 (build_index keeps a reference)
        super().__init__(v if self._identity else v[order], metric,
                         dict(DEFAULT_PARAMS["exact"]) if params is None else params)
        x = self._vectors
        self._half_sq = 0.5 * np.einsum("nd,nd->n", x, x) if metric == "l2" else None  # (N,)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return self.d

    @functools.cached_property
    def vectors_t(self) -> np.ndarray:
        """The vectors as float64 columns, (d, n) C-contiguous: what :meth:`scores` reads (made on first
        use)."""
        return np.ascontiguousarray(self._vectors.astype(np.float64).T)

    def memory_bytes(self) -> int:
        held = [self._vectors, self._half_sq, self.__dict__.get("vectors_t"),
                None if self._identity else self.ids]  # ids 0..n-1 are implicit, as in every other kind
        return int(sum(a.nbytes for a in held if a is not None))

    # ------------------------------------------------------------------ the Index interface
    def _set(self, key: str, value: Any) -> None:
        self.params[key] = None if value is None else _positive_int(self.kind, key, value)

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if len(q) == 1:  # GEMV: (N, d) @ (d,) -> (N,)
            s = (self._vectors @ q[0])[None, :]  # (1, N)
            return self._finish(q, *self._select(s, k))
        bs = self.params["batch_size"] or max(1, _SCORE_BUDGET // self.n)
        outs = [self._select(q[i:i + bs] @ self._vectors.T, k) for i in range(0, len(q), bs)]  # (b, N) each
        return self._finish(q, np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs]))

    def _select(self, s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._half_sq is not None:  # l2: maximise q·x - |x|^2 / 2
            s -= self._half_sq
        return _topk_rows(s, k)

    def _finish(self, q: np.ndarray, vals: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = cols if self._identity else self.ids[cols]
        if self._half_sq is None:
            return vals, ids
        qq = np.einsum("nd,nd->n", q, q)[:, None]  # (n, 1)
        return np.maximum(qq - 2 * vals, 0.0), ids

    # ------------------------------------------------------------------ bit-exact serving
    def scores(self, queries: np.ndarray) -> np.ndarray:
        """Inner products of (B, d) queries with every vector: (B, n) float64, columns in id order."""
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"ExactIndex: queries must have d={self.dim} columns, got shape {q.shape}; "
                             "fold the bias into both users and videos, or into neither")
        return ordered_inner_products(q, self.vectors_t)

    def select(self, scores: np.ndarray, k: int, exclude: Sequence[Any] | None = None) -> np.ndarray:
        """Top-``k`` ids of each row of (B, n) ``scores``: (B, k) int64, best first, ties to the lower id.

        ``exclude``: per row, ids never to return (a list of B int arrays); unknown ids are ignored.
        Rows that run out of items end in -1.
        """
        cols = top_k(scores, min(int(k), len(self)), exclude=self._columns(exclude, len(scores)))
        return np.where(cols >= 0, self.ids[np.maximum(cols, 0)], -1)  # (B, k)

    def top_ids(self, queries: np.ndarray, k: int, exclude: Sequence[Any] | None = None) -> np.ndarray:
        """Exact top-``k`` ids by inner product for (B, d) queries: (B, k) int64 (see :meth:`select`)."""
        return self.select(self.scores(queries), k, exclude)

    def _columns(self, exclude: Sequence[Any] | None, n_rows: int) -> list[np.ndarray] | None:
        """Per-row excluded ids -> column positions (ids not in the index dropped)."""
        if exclude is None:
            return None
        if len(exclude) != n_rows:
            raise ValueError(f"exclude must hold one id array per query ({n_rows}), got {len(exclude)}")
        out = []
        for row in exclude:
            row = _excluded_ids(row)
            if self._identity:
                out.append(row[(row >= 0) & (row < len(self))])
                continue
            pos = np.clip(np.searchsorted(self.ids, row), 0, len(self) - 1)
            out.append(pos[self.ids[pos] == row])
        return out


def _excluded_ids(row: Any) -> np.ndarray:
    """One row of ``exclude`` as (n,) int64: integers only (a float or bool array is refused rather
    than silently truncated); ids absent from the index are the caller's to ignore."""
    arr = np.asarray(row)
    if arr.size and arr.dtype.kind not in "iu":
        raise InvalidIdError(f"excluded video ids must be integers, got dtype {arr.dtype} "
                             f"(first value {arr.ravel()[0]!r})")
    return arr.astype(np.int64).ravel()


class FaissIndex(Index):
    """A Faiss index (flat, ivf, hnsw, ivfpq, lsh) with optional exact re-ranking of a shortlist."""

    def __init__(self, kind: str, vectors: np.ndarray, metric: str, params: dict[str, Any],
                 index: faiss.Index, transform_radius: float | None = None) -> None:
        self.kind = kind
        super().__init__(vectors, metric, params)
        self._index = index
        self._radius = transform_radius  # queries are transformed when the items were
        self._memory: int | None = None

    def memory_bytes(self) -> int:
        if self._memory is None:
            self._memory = int(faiss.serialize_index(self._index).nbytes)
        stored = self._vectors.nbytes if self.params.get("shortlist", 0) else 0
        return self._memory + int(stored)

    def _ivf(self) -> Any:
        return faiss.extract_index_ivf(self._index)

    def _get(self, key: str) -> Any:
        if key == "nprobe":
            return int(self._ivf().nprobe)
        if key == "efSearch":
            return int(self._index.hnsw.efSearch)
        return self.params[key]

    def _set(self, key: str, value: Any) -> None:
        if key == "nprobe":
            self._ivf().nprobe = _positive_int(self.kind, key, value, 1, self._ivf().nlist)
        elif key == "efSearch":
            self._index.hnsw.efSearch = _positive_int(self.kind, key, value)
        elif key == "shortlist":
            self.params[key] = _positive_int(self.kind, key, value, 0)

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        shortlist = int(self.params.get("shortlist", 0))
        n_cand = min(self.n, max(k, shortlist)) if shortlist else k
        fq = q if self._radius is None else np.ascontiguousarray(mips_transform_queries(q), np.float32)
        dist, ids = self._index.search(fq, n_cand)
        if shortlist or self.kind == "lsh":  # lsh's distances are Hamming: give the true scores
            dist, ids = self._rescore(q, ids)
            return dist[:, :k], ids[:, :k]
        bad = ids < 0
        if bad.any():
            dist = np.where(bad, -np.inf if self.metric == "ip" else np.inf, dist)
        return dist, ids


class TreeIndex(Index):
    """scikit-learn KDTree / BallTree (Euclidean); for ``ip`` they search the transformed vectors."""

    def __init__(self, kind: str, vectors: np.ndarray, metric: str, params: dict[str, Any]) -> None:
        self.kind = kind
        super().__init__(vectors, metric, params)
        data = mips_transform_items(vectors) if metric == "ip" else vectors.astype(np.float64)  # (N, d[+1])
        cls = KDTree if kind == "kdtree" else BallTree
        self._tree = cls(data, leaf_size=params["leaf_size"])

    def memory_bytes(self) -> int:
        """The tree's arrays (its float64 copy of the (transformed) vectors, index and node bounds)."""
        return int(sum(np.asarray(a).nbytes for a in self._tree.get_arrays()))

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        tq = mips_transform_queries(q) if self.metric == "ip" else q.astype(np.float64)  # (n, d[+1])
        ids = self._tree.query(tq, k=k, return_distance=False, sort_results=True).astype(np.int64)  # (n, k)
        return self._rescore(q, ids)


# ----------------------------------------------------------------------------- building
def _resolve_params(kind: str, n: int, d: int, metric: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check the user's parameters for ``kind`` and fill in the defaults that depend on N and d."""
    allowed = DEFAULT_PARAMS[kind]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"{kind}: unknown parameter(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(allowed) or 'none'}")
    p = {**allowed, **params}

    def fill(key: str, default: Any) -> None:
        if p[key] is None:
            p[key] = default

    if kind in ("ivf", "ivfpq"):
        fill("nlist", default_nlist(n))
        p["nlist"] = _positive_int(kind, "nlist", p["nlist"], 1, n)
        p["nprobe"] = min(_positive_int(kind, "nprobe", p["nprobe"]), p["nlist"])  # at most every list
        if kind == "ivfpq" and p["nbits"] is not None:
            p["nbits"] = _positive_int(kind, "nbits", p["nbits"], 1, 16)
        pq_bits = (p["nbits"] or 8) if kind == "ivfpq" else 0
        fill("train_size", min(n, max(64 * p["nlist"], 64 * 2**pq_bits)))
        p["train_size"] = _positive_int(kind, "train_size", p["train_size"], p["nlist"], n)
        p["niter"] = _positive_int(kind, "niter", p["niter"])
        p["seed"] = _positive_int(kind, "seed", p["seed"], 0)
    if kind == "ivfpq":
        fill("m", _largest_divisor_at_most(d, d // 4))
        p["m"] = _positive_int(kind, "m", p["m"], 1, d)
        if d % p["m"]:
            raise ValueError(f"ivfpq: m={p['m']} sub-quantisers must divide d={d}")
        fill("nbits", int(np.clip(math.floor(math.log2(max(2, p["train_size"] // 39))), 1, 8)))
        p["nbits"] = _positive_int(kind, "nbits", p["nbits"], 1, 16)
        if 2 ** p["nbits"] > p["train_size"]:
            raise ValueError(f"ivfpq: nbits={p['nbits']} needs at least {2 ** p['nbits']} training "
                             f"vectors, have {p['train_size']}; lower nbits")
    if kind == "hnsw":
        p["M"] = _positive_int(kind, "M", p["M"], 2)
        p["efConstruction"] = _positive_int(kind, "efConstruction", p["efConstruction"])
        p["efSearch"] = _positive_int(kind, "efSearch", p["efSearch"])
    if kind == "lsh":
        fill("nbits", 2 * d + (-2 * d) % 8)
        p["nbits"] = _positive_int(kind, "nbits", p["nbits"])
        if not isinstance(p["transform"], bool):
            raise ValueError(f"lsh: transform must be True or False, got {p['transform']!r}")
        p["transform"] = p["transform"] and metric == "ip"  # the transform only exists for inner products
    if kind in ("ivfpq", "lsh"):
        p["shortlist"] = _positive_int(kind, "shortlist", p["shortlist"], 0)
    if kind in ("kdtree", "balltree"):
        p["leaf_size"] = _positive_int(kind, "leaf_size", p["leaf_size"])
    if kind == "exact" and p["batch_size"] is not None:
        p["batch_size"] = _positive_int(kind, "batch_size", p["batch_size"])
    return p


def _faiss_metric(metric: str) -> int:
    return faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2


def _train_sample(x: np.ndarray, size: int, seed: int) -> np.ndarray:
    if size >= len(x):
        return x
    pick = np.sort(np.random.default_rng(seed).choice(len(x), size=size, replace=False))
    return np.ascontiguousarray(x[pick])


def _build_faiss(kind: str, x: np.ndarray, metric: str, p: dict[str, Any]) -> FaissIndex:
    n, d = x.shape
    fm = _faiss_metric(metric)
    radius = None
    if kind == "flat":
        index = faiss.IndexFlatIP(d) if metric == "ip" else faiss.IndexFlatL2(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, p["M"], fm)
        index.hnsw.efConstruction = p["efConstruction"]
        index.hnsw.efSearch = p["efSearch"]
    elif kind in ("ivf", "ivfpq"):
        quantizer = faiss.IndexFlatIP(d) if metric == "ip" else faiss.IndexFlatL2(d)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, p["nlist"], fm)
        else:
            index = faiss.IndexIVFPQ(quantizer, d, p["nlist"], p["m"], p["nbits"], fm)
        index.cp.niter, index.cp.seed = p["niter"], p["seed"]
        index.cp.max_points_per_centroid = max(1, -(-p["train_size"] // p["nlist"]))
        index.train(_train_sample(x, p["train_size"], p["seed"]))
        index.nprobe = p["nprobe"]
    else:  # lsh: random hyperplanes (a random rotation to nbits, then sign bits)
        if p["transform"]:
            radius = mips_max_norm(x)
            data = np.ascontiguousarray(mips_transform_items(x, radius), dtype=np.float32)
        else:
            data = x
        index = faiss.IndexLSH(data.shape[1], p["nbits"], True, False)
        index.train(data[: min(len(data), 1000)])
        index.add(data)
        return FaissIndex(kind, x, metric, p, index, radius)
    index.add(x)
    return FaissIndex(kind, x, metric, p, index, radius)


def build_index(kind: str, vectors: np.ndarray, metric: str = "ip", **params: Any) -> Index:
    """Build an index of ``kind`` over ``vectors`` (N, d) float32 for ``metric`` ("ip" or "l2").

    Parameters by kind (defaults in ``DEFAULT_PARAMS``; None means chosen from N and d):
    ``exact``: batch_size (queries per GEMM; default fits 128 MiB of scores).
    ``ivf``: nlist (default :func:`default_nlist`), nprobe, train_size (k-means sample, default
    64 per list; for ivfpq also 64 per PQ centroid), niter, seed.
    ``hnsw``: M, efConstruction, efSearch. ``ivfpq``: as ivf plus m
    (sub-quantisers, must divide d; default about d/4), nbits (per code, default 8 when there are
    enough training vectors), shortlist (0: off; else re-rank this many candidates exactly).
    ``lsh``: nbits (default 2d), shortlist, transform (search the MIPS-transformed vectors, ip only).
    ``kdtree`` / ``balltree``: leaf_size. Raises ValueError for an unknown kind, metric or parameter.

    The index keeps a reference to ``vectors`` (no copy when they are already float32 and
    contiguous) for exact re-scoring; do not modify them afterwards.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose 'ip' (inner product) or 'l2' (Euclidean)")
    x = _as_matrix(vectors, "vectors")
    p = _resolve_params(kind, x.shape[0], x.shape[1], metric, params)
    if kind == "exact":
        return ExactIndex(x, metric=metric, params=p)
    if kind in ("kdtree", "balltree"):
        return TreeIndex(kind, x, metric, p)
    return _build_faiss(kind, x, metric, p)


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int,
                 metric: str = "ip") -> tuple[np.ndarray, np.ndarray]:
    """The exact top ``k`` (ground truth): scores (n, k) float32 and ids (n, k) int64, best first."""
    return build_index("exact", vectors, metric).search(queries, k)
