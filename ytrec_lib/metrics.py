"""Evaluation metrics: ranking quality, AUC, the paper's weighted per-user loss, catalogue spread.

Everything here is exact and vectorised with NumPy (no Python loop over rows or events).

Ranking metrics
    ``ranked`` is an ``(n, K)`` integer array of item ids, best first, one row per query. Negative
    ids are padding (a row with fewer than ``K`` candidates, as :func:`top_k` returns when exclusion
    leaves too few items) and never count as relevant. A row may not repeat an item.
    ``relevant`` says which items are relevant for each row, in one of three forms:

    * an ``(n,)`` integer array: one relevant item per row (single next-watch label);
    * a sequence of ``n`` 1-D integer arrays: a set per row (repeats are merged);
    * a ``scipy.sparse`` ``(n, n_items)`` matrix: the stored entries of row ``i`` are its set and
      their values are the gains for :func:`ndcg_at_k`.

    Every row needs at least one relevant item. With ``k`` the cut-off (``K`` when omitted),
    ``hits[i, j]`` = "``ranked[i, j]`` is relevant for row ``i``" and ``R_i`` the relevant set:

    ====================  ======================================================================
    ``hit_at_k``          ``1[any_j<k hits[i, j]]``
    ``recall_at_k``       ``sum_j<k hits[i, j] / |R_i|``  (with one label this equals hit@k)
    ``precision_at_k``    ``sum_j<k hits[i, j] / k``  (padding counts as a miss)
    ``map_at_k``          ``AP@k = sum_j<k P@(j+1) hits[i, j] / min(|R_i|, k)`` (``P@m``: precision@m)
    ``ndcg_at_k``         ``DCG@k / IDCG@k``, ``DCG@k = sum_j<k gain(ranked[i, j]) / log2(j + 2)``
                          (linear gain, binary when no gains are given; IDCG@k is the DCG of the
                          ``k`` largest gains of ``R_i``; a row whose gains are all 0 scores 0, as
                          in scikit-learn's ``ndcg_score``)
    ``mrr``               ``1 / (rank of the first hit)`` within the first ``k``, 0 without a hit
    ====================  ======================================================================

    Each returns the mean over rows (a float), or the ``(n,)`` float64 per-row values with
    ``average=False``.

Classification and pairwise metrics: :func:`auc`, :func:`per_group_auc`, :func:`grouped_auc`,
:func:`weighted_per_user_loss` (Covington et al. 2016, section 4.2).

Catalogue spread: :func:`coverage`, :func:`gini`, :func:`lorenz_curve`, :func:`top_share`.

Top-k selection shared by the model, the baselines and the tests: :func:`top_k`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
import scipy.sparse as sp

__all__ = [
    "auc",
    "coverage",
    "gini",
    "grouped_auc",
    "hit_at_k",
    "lorenz_curve",
    "map_at_k",
    "mrr",
    "ndcg_at_k",
    "per_group_auc",
    "precision_at_k",
    "recall_at_k",
    "top_k",
    "top_share",
    "weighted_per_user_loss",
]

Relevant = np.ndarray | Sequence[np.ndarray] | sp.spmatrix | sp.sparray
Exclude = Sequence[np.ndarray] | sp.spmatrix | sp.sparray


# ----------------------------------------------------------------------------------------------
# Input checks and the relevance structure
# ----------------------------------------------------------------------------------------------


def _int_array(x: object, name: str, ndim: int) -> np.ndarray:
    """``x`` as an int64 array of ``ndim`` dimensions, or a one-line ValueError."""
    arr = np.asarray(x)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array of integer ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check_ranked(ranked: np.ndarray, k: int | None) -> tuple[np.ndarray, int]:
    """Validate ``ranked`` (n, K) and the cut-off; return ``ranked[:, :k]`` and ``k``."""
    ranked = _int_array(ranked, "ranked", 2)
    n, width = ranked.shape
    if n == 0 or width == 0:
        raise ValueError(f"ranked is empty (shape {ranked.shape}); pass at least one row and one column")
    if k is None:
        k = width
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > width:
        raise ValueError(f"k={k} is larger than the {width} ranked columns; rank at least k items")
    ranked = ranked[:, :k]
    srt = np.sort(ranked, axis=1)  # (n, k)
    dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
    if dup.any():
        row = int(np.flatnonzero(dup.any(axis=1))[0])
        raise ValueError(f"ranked row {row} repeats an item id; each row must list distinct items")
    return ranked, int(k)


class _Rel(NamedTuple):
    """Relevant sets as CSR: row ``i`` owns ``items[indptr[i]:indptr[i+1]]`` (sorted, distinct)."""

    indptr: np.ndarray  # (n + 1,) int64
    items: np.ndarray  # (nnz,) int64
    gains: np.ndarray  # (nnz,) float64

    @property
    def rows(self) -> np.ndarray:
        """The row of every stored item, (nnz,) int64."""
        return np.repeat(np.arange(len(self.indptr) - 1), np.diff(self.indptr))


def _concat_rows(arrays: Sequence[np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """A sequence of 1-D arrays -> (row of each element (m,), elements (m,))."""
    arrays = [np.asarray(a) for a in arrays]
    if any(a.ndim != 1 for a in arrays):
        raise ValueError(f"each entry of {name} must be a 1-D array")
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
    values = np.concatenate(arrays) if arrays and lengths.sum() else np.zeros(0)
    return np.repeat(np.arange(len(arrays)), lengths), values


def _from_coo(n: int, rows: np.ndarray, items: np.ndarray, gains: np.ndarray) -> _Rel:
    """Sort (row, item) pairs, merge repeats (gains summed), build the CSR structure."""
    order = np.lexsort((items, rows))
    rows, items, gains = rows[order], items[order], gains[order]
    new = np.ones(rows.size, dtype=bool)
    new[1:] = (rows[1:] != rows[:-1]) | (items[1:] != items[:-1])
    starts = np.flatnonzero(new)
    gains = np.add.reduceat(gains, starts) if rows.size else gains
    rows, items = rows[starts], items[starts]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return _Rel(indptr, items, gains.astype(np.float64))


def _as_relevant(relevant: Relevant, n: int, gains: object = None) -> _Rel:
    """Normalise any accepted form of ``relevant`` (see the module docstring) for ``n`` rows."""
    if isinstance(relevant, (list, tuple)) and relevant and np.ndim(relevant[0]) == 0:
        relevant = np.asarray(relevant)  # a plain list of labels
    if sp.issparse(relevant):
        if gains is not None:
            raise ValueError("a sparse relevance matrix stores the gains itself; pass gains=None")
        coo = sp.coo_matrix(relevant)
        if coo.shape[0] != n:
            raise ValueError(f"relevant has {coo.shape[0]} rows but ranked has {n}; they must match")
        rows, items, g = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float64)
    elif isinstance(relevant, np.ndarray) and relevant.ndim == 1 and relevant.dtype != object:
        items = _int_array(relevant, "relevant", 1)
        if items.size != n:
            raise ValueError(f"relevant has {items.size} labels but ranked has {n} rows; they must match")
        rows = np.arange(n)
        g = np.ones(n) if gains is None else np.asarray(gains, dtype=np.float64)
        if g.shape != (n,):
            raise ValueError(f"gains must have shape ({n},) like the labels, got {g.shape}")
    elif isinstance(relevant, Sequence) or isinstance(relevant, np.ndarray):
        if len(relevant) != n:
            raise ValueError(f"relevant has {len(relevant)} sets but ranked has {n} rows; they must match")
        rows, items = _concat_rows(relevant, "relevant")
        items = _int_array(items, "relevant items", 1)
        if gains is None:
            g = np.ones(items.size)
        else:
            if len(gains) != n:
                raise ValueError(f"gains has {len(gains)} entries but relevant has {n}; they must match")
            grows, g = _concat_rows(gains, "gains")
            if grows.size != rows.size or np.any(grows != rows):
                raise ValueError("gains[i] must have the same length as relevant[i] for every row")
            g = g.astype(np.float64)
    else:
        raise ValueError(
            "relevant must be an (n,) label array, a list of id arrays, or a scipy.sparse matrix, "
            f"got {type(relevant).__name__}"
        )
    if items.size and items.min() < 0:
        raise ValueError("relevant item ids must be >= 0")
    if not np.all(np.isfinite(g)) or (g.size and g.min() < 0):
        raise ValueError("gains must be finite and >= 0")
    rel = _from_coo(n, rows, items, g)
    empty = np.flatnonzero(np.diff(rel.indptr) == 0)
    if empty.size:
        raise ValueError(
            f"{empty.size} row(s) have no relevant item (first: row {int(empty[0])}); "
            "drop those rows before evaluating"
        )
    return rel


def _match(ranked: np.ndarray, rel: _Rel) -> tuple[np.ndarray, np.ndarray]:
    """For each ranked cell: is it relevant, and its gain. Returns ((n, k) bool, (n, k) float64)."""
    n, k = ranked.shape
    width = int(max(ranked.max(), rel.items.max())) + 1
    keys = rel.rows * width + rel.items  # (nnz,) sorted: rows ascending, items sorted within row
    query = (np.arange(n)[:, None] * width + ranked).ravel()  # (n * k,)
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    hit = (keys[pos] == query) & (ranked.ravel() >= 0)
    gain = np.where(hit, rel.gains[pos], 0.0)
    return hit.reshape(n, k), gain.reshape(n, k)


def _prepare(
    ranked: np.ndarray, relevant: Relevant, k: int | None, gains: object = None
) -> tuple[np.ndarray, np.ndarray, _Rel, int]:
    ranked, k = _check_ranked(ranked, k)
    rel = _as_relevant(relevant, ranked.shape[0], gains)
    hits, hit_gains = _match(ranked, rel)
    return hits, hit_gains, rel, k


def _out(values: np.ndarray, average: bool) -> float | np.ndarray:
    return float(values.mean()) if average else values.astype(np.float64)


# ----------------------------------------------------------------------------------------------
# Ranking metrics
# ----------------------------------------------------------------------------------------------


def hit_at_k(
    ranked: np.ndarray, relevant: Relevant, k: int | None = None, *, average: bool = True
) -> float | np.ndarray:
    """Hit rate: share of rows with at least one relevant item among the first ``k``.

    ``ranked`` (n, K) int; ``relevant`` (n,) labels, list of n id arrays or sparse (n, n_items).
    Returns a float, or (n,) float64 of 0/1 with ``average=False``.
    """
    hits, _, _, _ = _prepare(ranked, relevant, k)
    return _out(hits.any(axis=1), average)


def recall_at_k(
    ranked: np.ndarray, relevant: Relevant, k: int | None = None, *, average: bool = True
) -> float | np.ndarray:
    """Recall@k: relevant items found in the first ``k`` over the number of relevant items.

    With one label per row this is hit@k. Shapes as in :func:`hit_at_k`.
    """
    hits, _, rel, _ = _prepare(ranked, relevant, k)
    return _out(hits.sum(axis=1) / np.diff(rel.indptr), average)


def precision_at_k(
    ranked: np.ndarray, relevant: Relevant, k: int | None = None, *, average: bool = True
) -> float | np.ndarray:
    """Precision@k: relevant items found in the first ``k`` over ``k``. Shapes as in :func:`hit_at_k`."""
    hits, _, _, k = _prepare(ranked, relevant, k)
    return _out(hits.sum(axis=1) / k, average)


def map_at_k(
    ranked: np.ndarray, relevant: Relevant, k: int | None = None, *, average: bool = True
) -> float | np.ndarray:
    """Mean average precision at ``k``, each row's AP normalised by ``min(|relevant|, k)``.

    ``AP@k = sum_{j<k} precision@(j+1) * hit_j / min(|R|, k)``, so a perfect ranking scores 1 even
    when there are more than ``k`` relevant items. With ``k >= |R|`` and a full ranking of the
    catalogue this equals scikit-learn's ``average_precision_score``. Shapes as in :func:`hit_at_k`.
    """
    hits, _, rel, k = _prepare(ranked, relevant, k)
    prec = np.cumsum(hits, axis=1) / np.arange(1, k + 1)  # (n, k) precision at each depth
    denom = np.minimum(np.diff(rel.indptr), k)
    return _out((prec * hits).sum(axis=1) / denom, average)


def ndcg_at_k(
    ranked: np.ndarray,
    relevant: Relevant,
    k: int | None = None,
    *,
    gains: np.ndarray | Sequence[np.ndarray] | None = None,
    average: bool = True,
) -> float | np.ndarray:
    """Normalised discounted cumulative gain at ``k`` (linear gains, ``log2(rank + 1)`` discount).

    ``gains`` grades the relevant items (e.g. watch time): an (n,) array beside (n,) labels, or a list
    of arrays parallel to the list of relevant sets; ``None`` gives binary relevance (gain 1). For a
    sparse ``relevant`` matrix the stored values are the gains. Gains must be >= 0; repeated items
    in a set have their gains summed. A row whose gains are all 0 scores 0. This equals
    scikit-learn's ``ndcg_score(y_true, y_score, k=k)`` when the scores have no ties.
    Returns a float, or (n,) float64 with ``average=False``.
    """
    _, hit_gains, rel, k = _prepare(ranked, relevant, k, gains)
    disc = 1.0 / np.log2(np.arange(2, k + 2))  # (k,)
    dcg = hit_gains @ disc  # (n,)
    rows = rel.rows
    order = np.lexsort((-rel.gains, rows))  # gains descending within each row
    depth = np.arange(rows.size) - rel.indptr[rows]  # rank of each stored item in its row's sort
    keep = depth < k
    ideal = np.bincount(rows[keep], weights=rel.gains[order][keep] * disc[depth[keep]], minlength=len(dcg))
    safe = np.where(ideal > 0, ideal, 1.0)
    return _out(np.where(ideal > 0, dcg / safe, 0.0), average)


def mrr(
    ranked: np.ndarray, relevant: Relevant, k: int | None = None, *, average: bool = True
) -> float | np.ndarray:
    """Mean reciprocal rank of the first relevant item within the first ``k`` (0 for a row without one).

    Shapes as in :func:`hit_at_k`.
    """
    hits, _, _, _ = _prepare(ranked, relevant, k)
    first = hits.argmax(axis=1)  # (n,) index of the first hit (0 when none)
    return _out(np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0), average)


# ----------------------------------------------------------------------------------------------
# Top-k selection
# ----------------------------------------------------------------------------------------------


def _exclusion_coo(exclude: Exclude, n: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Any accepted exclusion form -> (rows (m,), items (m,)) int64 with ids in [0, n_items)."""
    if sp.issparse(exclude):
        coo = sp.coo_matrix(exclude)
        if coo.shape != (n, n_items):
            raise ValueError(f"exclude has shape {coo.shape}, scores have ({n}, {n_items}); they must match")
        return coo.row.astype(np.int64), coo.col.astype(np.int64)
    if len(exclude) != n:
        raise ValueError(f"exclude has {len(exclude)} rows but scores have {n}; they must match")
    rows, items = _concat_rows(exclude, "exclude")
    items = _int_array(items, "exclude items", 1)
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"exclude holds ids outside [0, {n_items}); ids must index the score columns")
    return rows, items


def _first_per_row(mask: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the first ``count[i]`` True cells of each row of ``mask`` (lowest cols first)."""
    ri, ci = np.nonzero(mask)  # row-major: columns ascending within a row
    per_row = np.bincount(ri, minlength=mask.shape[0])
    rank = np.arange(ri.size) - np.repeat(np.cumsum(per_row) - per_row, per_row)  # position in its row
    keep = rank < count[ri]
    return ri[keep], ci[keep]


def _resolve_ties(
    s: np.ndarray, t: np.ndarray, cand: np.ndarray, cand_vals: np.ndarray, excluded: np.ndarray
) -> np.ndarray:
    """Exact top-k set of rows whose boundary value ``t`` is tied: ties go to the lower id.

    s (a, V) scores with excluded cells at -inf; t (a,) the k-th largest; cand, cand_vals (a, k) an
    unresolved top-k set and its scores; excluded (a, V) bool.
    Returns (a, k) ids (unsorted); excluded items only where valid ones run out (t == -inf).
    """
    a, k = cand.shape
    above_r, above_c = np.nonzero(cand_vals > t[:, None])  # the candidates strictly above t are sure
    need = k - np.bincount(above_r, minlength=a)  # (a,) slots left for boundary ties
    tied = s == t[:, None]  # (a, V)
    if excluded.any():
        tied &= ~excluded
    tie_r, tie_c = _first_per_row(tied, need)
    short = need - np.bincount(tie_r, minlength=a)  # (a,) > 0 only when valid items ran out
    ex_r, ex_c = _first_per_row(excluded, short) if short.any() else (tie_r[:0], tie_c[:0])
    rows = np.concatenate([above_r, tie_r, ex_r])
    cols = np.concatenate([cand[above_r, above_c], tie_c, ex_c])
    return cols[np.argsort(rows, kind="stable")].reshape(a, k)


def _top_k_block(s: np.ndarray, k: int, ex_rows: np.ndarray, ex_items: np.ndarray) -> np.ndarray:
    """Top-k of one block of score rows, excluded items already known. s (b, V) -> (b, k) int64."""
    b, n_items = s.shape
    dtype = s.dtype if np.issubdtype(s.dtype, np.floating) else np.float64
    if ex_rows.size or s.dtype != dtype:
        s = s.astype(dtype, copy=True)  # (b, V) private copy
        s[ex_rows, ex_items] = -np.inf
    r = np.arange(b)[:, None]
    chosen = np.argpartition(s, n_items - k, axis=1)[:, n_items - k :]  # (b, k) a top-k set
    vals = s[r, chosen]  # (b, k)
    t = vals.min(axis=1)  # (b,) k-th largest score
    # the set is exact unless some item tied with the boundary was left out; rows at -inf are
    # redone too, since they may hold excluded items in place of valid -inf ones.
    left_out = (s == t[:, None]).sum(axis=1) > (vals == t[:, None]).sum(axis=1)
    ambiguous = np.flatnonzero(left_out | np.isneginf(t))
    is_ex = np.zeros((b, k), dtype=bool)
    if ambiguous.size:
        excluded = np.zeros((ambiguous.size, n_items), dtype=bool)  # (a, V)
        pos = np.minimum(np.searchsorted(ambiguous, ex_rows), ambiguous.size - 1)
        hit = ambiguous[pos] == ex_rows
        excluded[pos[hit], ex_items[hit]] = True
        amb = (s[ambiguous], t[ambiguous], chosen[ambiguous], vals[ambiguous])
        chosen[ambiguous] = _resolve_ties(*amb, excluded)
        is_ex[ambiguous] = excluded[np.arange(ambiguous.size)[:, None], chosen[ambiguous]]
        vals = s[r, chosen]
    order = np.lexsort((chosen, -vals, is_ex), axis=1)  # excluded last, score desc, id asc
    chosen = np.take_along_axis(chosen, order, axis=1)
    return np.where(np.take_along_axis(is_ex, order, axis=1), -1, chosen).astype(np.int64)


def top_k(
    scores: np.ndarray,
    k: int,
    exclude: Exclude | None = None,
    *,
    batch_size: int | None = None,
) -> np.ndarray:
    """The ``k`` highest-scoring item ids of each row, best first; ties go to the lower id.

    scores: (n, V) float, finite or -inf (NaN and +inf are refused).
    exclude: items never to return, per row: a list of n id arrays, or a sparse (n, V) matrix whose
        stored entries are excluded (e.g. already watched).
    Returns (n, k) int64. When exclusion leaves a row fewer than ``k`` items, the row ends in -1
    padding (which every ranking metric here treats as a miss). Uses ``argpartition`` (O(V) per
    row) and sorts only the ``k`` chosen; rows are processed in blocks of ``batch_size``.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D (n, V) array, got shape {scores.shape}")
    n, n_items = scores.shape
    if n == 0 or n_items == 0:
        raise ValueError(f"scores is empty (shape {scores.shape}); pass at least one row and one item")
    if not np.issubdtype(scores.dtype, np.number) or np.issubdtype(scores.dtype, np.complexfloating):
        raise ValueError(f"scores must be real numbers, got dtype {scores.dtype}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > n_items:
        raise ValueError(f"k={k} is larger than the {n_items} items scored; lower k")
    if np.issubdtype(scores.dtype, np.floating) and not np.max(scores) < np.inf:  # one pass: NaN or +inf
        raise ValueError("scores contain NaN or +inf; fix the model output before ranking")
    if exclude is None:
        ex_rows, ex_items = np.zeros(0, np.int64), np.zeros(0, np.int64)
    else:
        ex_rows, ex_items = _exclusion_coo(exclude, n, n_items)
    if batch_size is None:
        batch_size = max(1, (1 << 22) // n_items)  # about 32 MiB of float64 per block
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    order = np.argsort(ex_rows, kind="stable")  # (m,) group the exclusions by row
    ex_rows, ex_items = ex_rows[order], ex_items[order]
    starts = np.arange(0, n, batch_size)
    bounds = np.searchsorted(ex_rows, np.append(starts, n))  # (n_blocks + 1,)
    out = np.empty((n, k), dtype=np.int64)
    for bi, start in enumerate(starts):
        stop = min(start + batch_size, n)
        rows, items = ex_rows[bounds[bi] : bounds[bi + 1]] - start, ex_items[bounds[bi] : bounds[bi + 1]]
        out[start:stop] = _top_k_block(scores[start:stop], k, rows, items)
    return out


# ----------------------------------------------------------------------------------------------
# AUC, grouped AUC, weighted per-user loss
# ----------------------------------------------------------------------------------------------


def _binary_inputs(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"y_true and y_score must be 1-D, got shapes {y.shape} and {s.shape}")
    if y.size != s.size:
        raise ValueError(f"y_true has {y.size} entries but y_score has {s.size}; they must match")
    if y.size == 0:
        raise ValueError("y_true is empty; pass at least one positive and one negative example")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("y_true must be binary (0/1 or bool)")
    if not np.all(np.isfinite(s)):
        raise ValueError("y_score contains NaN or infinite values")
    return y.astype(bool), s


def _factorize(*keys: np.ndarray) -> np.ndarray:
    """Dense ids 0..G-1 of the distinct key tuples (in sorted order). keys: equal-length 1-D."""
    order = np.lexsort(keys[::-1])
    change = np.zeros(order.size, dtype=bool)
    change[0] = True
    for key in keys:
        sk = key[order]
        change[1:] |= sk[1:] != sk[:-1]
    ids = np.empty(order.size, dtype=np.int64)
    ids[order] = np.cumsum(change) - 1
    return ids


def _pair_counts(group: np.ndarray, positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, ...]:
    """For each positive, negatives of its group scored below, tied and above it.

    group (m,) int64 dense ids, positive (m,) bool, score (m,) float64.
    Returns (below, tied, above) each (n_pos,) int64, in the order of ``np.flatnonzero(positive)``.
    """
    _, srank = np.unique(score, return_inverse=True)  # exact dense rank of every score
    span = int(srank.max()) + 1
    key = group * span + srank  # (m,) int64, ordered by (group, score)
    neg = np.sort(key[~positive])
    pkey, pgroup = key[positive], group[positive]
    lo = np.searchsorted(neg, pgroup * span, "left")
    hi = np.searchsorted(neg, (pgroup + 1) * span, "left")
    left = np.searchsorted(neg, pkey, "left")
    right = np.searchsorted(neg, pkey, "right")
    return left - lo, right - left, hi - right


def auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a random positive > that of a random negative), ties 1/2.

    y_true (m,) 0/1 or bool; y_score (m,) float. Equals ``sklearn.metrics.roc_auc_score``.
    Needs both classes present.
    """
    y, s = _binary_inputs(y_true, y_score)
    n_pos = int(y.sum())
    if n_pos in (0, y.size):
        raise ValueError("AUC needs both positive and negative examples in y_true")
    below, tied, _ = _pair_counts(np.zeros(y.size, dtype=np.int64), y, s)
    return float((below.sum() + 0.5 * tied.sum()) / (n_pos * (y.size - n_pos)))


def per_group_auc(
    groups: np.ndarray, y_true: np.ndarray, y_score: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUC within each group (e.g. a user or a page) that has both classes.

    groups (m,) any sortable ids; y_true (m,) 0/1; y_score (m,) float.
    Returns (group ids (G,), AUC (G,) float64, impressions per group (G,) int64) for the G groups
    that hold both a positive and a negative; groups with one class are left out.
    """
    y, s = _binary_inputs(y_true, y_score)
    groups = np.asarray(groups)
    if groups.shape != y.shape:
        raise ValueError(f"groups has shape {groups.shape} but y_true has {y.shape}; they must match")
    uniq, gid = np.unique(groups, return_inverse=True)  # (G,), (m,)
    n_groups = uniq.size
    size = np.bincount(gid, minlength=n_groups)
    n_pos = np.bincount(gid, weights=y, minlength=n_groups)
    below, tied, _ = _pair_counts(gid, y, s)
    won = np.bincount(gid[y], weights=below + 0.5 * tied, minlength=n_groups)
    both = (n_pos > 0) & (n_pos < size)
    values = won[both] / (n_pos[both] * (size[both] - n_pos[both]))
    return uniq[both], values, size[both].astype(np.int64)


def grouped_auc(
    groups: np.ndarray,
    y_true: np.ndarray,
    y_score: np.ndarray,
    *,
    weighting: Literal["impressions", "uniform"] = "impressions",
) -> float:
    """Mean of the per-group AUC (GAUC) over the groups that have both classes.

    With ``weighting="impressions"`` (default) each group weighs its number of impressions
    (``sum_g n_g AUC_g / sum_g n_g``); with ``"uniform"`` every group weighs the same. Groups with
    only positives or only negatives have no AUC and are left out of both sums.
    Shapes as in :func:`per_group_auc`.
    """
    _, values, sizes = per_group_auc(groups, y_true, y_score)
    if values.size == 0:
        raise ValueError("no group has both a positive and a negative example; grouped AUC is undefined")
    if weighting == "impressions":
        return float(np.average(values, weights=sizes))
    if weighting == "uniform":
        return float(values.mean())
    raise ValueError(f"weighting must be 'impressions' or 'uniform', got {weighting!r}")


def weighted_per_user_loss(
    users: np.ndarray,
    pages: np.ndarray,
    clicked: np.ndarray,
    watch_time: np.ndarray,
    scores: np.ndarray,
    *,
    ties: float = 0.5,
    average: Literal["pairs", "users"] = "pairs",
) -> float:
    """The weighted, per-user loss of Covington et al. 2016, section 4.2 (lower is better).

    The paper pairs, for each user, a positive (clicked) and a negative (not clicked) impression shown
    on the same page and scores both; when the negative scores higher, the positive's watch time is
    *mispredicted*. The loss is the mispredicted watch time as a fraction of the total watch time over
    the held-out pairs. Implemented exactly as:

        pairs    P = {(p, q): same user and page, clicked[p], not clicked[q]}
        wrong    = sum_{(p,q) in P} watch_time[p] * (1[s_q > s_p] + ties * 1[s_q == s_p])
        total    = sum_{(p,q) in P} watch_time[p]
        loss     = wrong / total                               (average="pairs", the paper's figure)

    so a positive's watch time is counted once per negative it is paired with. ``ties`` is the
    share of a tied pair counted as wrong (the paper is silent; 0.5 makes a constant scorer score
    0.5, as in AUC). With ``average="users"`` the same fraction is computed per user (users with
    some weight) and averaged with equal weight per user.

    users, pages (m,) ids; clicked (m,) 0/1; watch_time (m,) >= 0 (seconds; ignored for negatives);
    scores (m,) float (the model's output for each impression).
    """
    pos, s = _binary_inputs(clicked, scores)
    users, pages = np.asarray(users), np.asarray(pages)
    w = np.asarray(watch_time, dtype=np.float64)
    for name, arr in (("users", users), ("pages", pages), ("watch_time", w)):
        if arr.shape != pos.shape:
            raise ValueError(f"{name} has shape {arr.shape} but clicked has {pos.shape}; they must match")
    if not np.all(np.isfinite(w)) or w.min() < 0:
        raise ValueError("watch_time must be finite and >= 0")
    if not 0.0 <= ties <= 1.0:
        raise ValueError(f"ties must be in [0, 1], got {ties}")
    page_id = _factorize(users, pages)
    below, tied, above = _pair_counts(page_id, pos, s)
    wp = w[pos]  # (n_pos,)
    wrong = wp * (above + ties * tied)
    total = wp * (below + tied + above)
    if total.sum() <= 0:
        raise ValueError("no (clicked, not clicked) pair on a page carries watch time; the loss is undefined")
    if average == "pairs":
        return float(wrong.sum() / total.sum())
    if average == "users":
        uid = _factorize(users)[pos]
        n_users = int(uid.max()) + 1 if uid.size else 0
        u_wrong = np.bincount(uid, weights=wrong, minlength=n_users)
        u_total = np.bincount(uid, weights=total, minlength=n_users)
        has = u_total > 0
        return float(np.mean(u_wrong[has] / u_total[has]))
    raise ValueError(f"average must be 'pairs' or 'users', got {average!r}")


# ----------------------------------------------------------------------------------------------
# Catalogue spread
# ----------------------------------------------------------------------------------------------


def coverage(recommended: np.ndarray, n_items: int) -> float:
    """Catalogue coverage: distinct items recommended (ignoring -1 padding) over ``n_items``.

    recommended: any-shape int array of ids in [0, n_items), e.g. the (n, k) output of :func:`top_k`.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items <= 0:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    rec = np.asarray(recommended)
    if rec.size == 0:
        raise ValueError("recommended is empty; pass at least one recommendation")
    if not np.issubdtype(rec.dtype, np.integer):
        raise ValueError(f"recommended must hold integer ids, got dtype {rec.dtype}")
    rec = rec[rec >= 0]
    if rec.size and rec.max() >= n_items:
        raise ValueError(f"recommended holds id {int(rec.max())} >= n_items={n_items}")
    return float(np.unique(rec).size / n_items)


def _counts(counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"counts must be a non-empty 1-D array, got shape {c.shape}")
    if not np.all(np.isfinite(c)) or c.min() < 0:
        raise ValueError("counts must be finite and >= 0")
    if c.sum() <= 0:
        raise ValueError("counts sum to 0; there is nothing to measure the spread of")
    return c


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of per-item counts (e.g. views): 0 when equal, (n-1)/n -> 1 when one item has all.

    counts (n,) >= 0. ``G = sum_i (2i - n - 1) c_(i) / (n sum c)`` with ``c_(i)`` sorted ascending,
    i = 1..n; equal to ``1 - 2 * area under`` :func:`lorenz_curve`.
    """
    c = np.sort(_counts(counts))
    n = c.size
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * c) / (n * c.sum()))


def lorenz_curve(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve of per-item counts: items sorted from least to most popular.

    counts (n,) >= 0. Returns (x, y), each (n + 1,) float64 from (0, 0) to (1, 1): ``x`` the share of
    items, ``y`` the share of the total they hold.
    """
    c = np.sort(_counts(counts))
    x = np.arange(c.size + 1) / c.size
    y = np.concatenate([[0.0], np.cumsum(c) / c.sum()])
    return x, y


def top_share(counts: np.ndarray, frac: float) -> float:
    """Share of the total held by the top ``frac`` of items (at least one item: ``ceil(frac * n)``).

    counts (n,) >= 0; frac in (0, 1]. ``top_share(views, 0.01)`` is the top-1% view share.
    """
    c = _counts(counts)
    if not 0.0 < frac <= 1.0:
        raise ValueError(f"frac must be in (0, 1], got {frac}")
    m = max(1, int(np.ceil(frac * c.size - 1e-9)))
    top = -np.partition(-c, m - 1)[:m]
    return float(top.sum() / c.sum())


# ----------------------------------------------------------------------------------------------------
# Long-tail summary (notebook 01: UGC against a studio catalogue)
# ----------------------------------------------------------------------------------------------------


def long_tail(counts: np.ndarray) -> dict[str, float]:
    """How concentrated per-item counts (n,) >= 0 are, as three floats: ``top1pct_view_share``
    (:func:`top_share` at 1%), ``gini`` (:func:`gini`) and ``share_of_videos_never_watched`` (the
    share of zero counts)."""
    return {"top1pct_view_share": top_share(counts, 0.01), "gini": gini(counts),
            "share_of_videos_never_watched": float((np.asarray(counts) == 0).mean())}


__all__ += ["long_tail"]
