"""Negative samplers for sampled softmax, the logQ correction, and the streaming frequency estimate.

A retrieval model scores a user against every video; the full softmax over millions of videos is
too dear, so training scores the positive against a few *negatives* drawn from a proposal
distribution Q and corrects for Q (importance sampling; Bengio & Senecal 2008, Jean et al. 2015,
and for in-batch negatives Yi et al. 2019, "Sampling-bias-corrected neural modeling").

Every sampler has the same interface (ids are int64 video ids in ``[0, n_items)``)::

    neg = sampler.sample(pos_ids, n_neg, rng, user_ids=None)   # (B, n_neg) per row, or (K,) shared
    lq  = sampler.log_q(neg, pos_ids=..., user_ids=...)        # same shape: log Q(draw = id), float64

``log_q`` is the log probability that ONE draw of the sampler returns the id, under the same
conditions as the draw (the row's positive and user where the sampler depends on them). The loss
turns it into the log *expected count* ``log(K q)`` of the id among the row's K negatives.

Samplers:

* :class:`UniformSampler` -- uniform over the catalogue, optionally excluding the positive and
  the user's watched videos;
* :class:`PopularitySampler` -- ``q`` proportional to ``count**alpha`` (alpha=0 uniform, 0.75 as
  word2vec, 1 the unigram distribution);
* :class:`InBatchSampler` -- the other positives of the batch (q = how often an item is a
  positive: known probabilities, the streaming estimate, or the batch's own frequency);
* :class:`ExposedSampler` -- videos the user was shown but never clicked (impression log), with a
  fallback sampler for users who have none;
* :class:`MixedSampler` -- in-batch plus a second sampler, uniform by default (Yang et al. 2020,
  "Mixed negative sampling"); ``q`` is the mixture;
* :class:`HardNegativeSampler` -- uniform over ranks ``lo..hi`` of a previous model's ranking
  (Huang et al. 2020: ranks 101-500 are hard but rarely true positives);
* :class:`PooledSampler` -- per row, fixed counts from several samplers concatenated (hard + easy).

Accidental hits (a negative equal to the row's positive) are not removed by the samplers; the loss
masks them (:func:`sampled_softmax_loss`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch

_MAX_REJECTION_ROUNDS = 200  # then exact draws for what is left (see _reject)


# ====================================================================== helpers


def _as_rng(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")


def _ids(ids: object, n_items: int, name: str, ndim: tuple[int, ...] = (1,)) -> np.ndarray:
    """Validate integer ids in [0, n_items) with one of the allowed ndims; return int64."""
    arr = np.asarray(ids)
    if arr.ndim not in ndim:
        dims = " or ".join(str(d) for d in ndim)
        raise ValueError(f"{name} must have {dims} dimension(s), got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_items):
        bad = arr[(arr < 0) | (arr >= n_items)].ravel()[0]
        raise ValueError(f"{name} contains id {bad}, outside the catalogue [0, {n_items}); check the ids")
    return arr


def _unique_sorted(a: np.ndarray, return_counts: bool = False):
    """np.unique by sorting (numpy 2.4's hash-based np.unique is ~30x slower on millions of int64)."""
    s = np.sort(np.ravel(a))
    first = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, bool)
    if not return_counts:
        return s[first]
    starts = np.nonzero(first)[0]
    return s[first], np.diff(np.r_[starts, len(s)])


def _sorted_contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Bool mask: each of keys is in the sorted array sorted_keys."""
    if len(sorted_keys) == 0:
        return np.zeros(np.shape(keys), bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def _row_context(ctx: object, ids: np.ndarray, name: str, n_max: int | None = None) -> np.ndarray:
    """Per-row context (pos_ids or user_ids) shaped to broadcast against ``ids``.

    ids (B, K) with ctx (B,) -> (B, 1); ids (n,) with ctx (n,) -> (n,).
    """
    arr = np.asarray(ctx)
    if arr.ndim != 1 or ids.ndim == 0 or len(arr) != ids.shape[0]:
        raise ValueError(
            f"{name} must have shape ({ids.shape[0] if ids.ndim else 1},), one per row of ids {ids.shape}; "
            f"got shape {arr.shape}"
        )
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if n_max is not None and arr.size and (arr.min() < 0 or arr.max() >= n_max):
        raise ValueError(f"{name} must lie in [0, {n_max}), got {arr[(arr < 0) | (arr >= n_max)][0]}")
    return arr[:, None] if ids.ndim == 2 else arr


class _PairSet:
    """A multiset of (row, item) pairs as sorted int64 keys ``row * n_items + item``; vectorised lookups."""

    def __init__(self, rows: np.ndarray, items: np.ndarray, n_items: int, n_rows: int) -> None:
        self.n_items, self.n_rows = n_items, n_rows
        self.keys = np.sort(rows.astype(np.int64) * n_items + items.astype(np.int64))  # (P,)
        self.per_row = np.bincount(rows, minlength=n_rows).astype(np.int64)            # (n_rows,)
        self.indptr = np.concatenate([[0], np.cumsum(self.per_row)])                    # (n_rows + 1,)

    @classmethod
    def from_lists(cls, lists: Sequence[np.ndarray], n_items: int, *, unique: bool) -> _PairSet:
        rows = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
        items = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists] or [np.zeros(0, np.int64)])
        if unique and len(items):
            keys = _unique_sorted(rows * n_items + items)
            rows, items = keys // n_items, keys % n_items
        return cls(rows, _ids(items, n_items, "item ids"), n_items, len(lists))

    def count(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """How often each (row, item) pair occurs; rows broadcast against items."""
        keys = rows * self.n_items + items
        return np.searchsorted(self.keys, keys, side="right") - np.searchsorted(self.keys, keys, side="left")

    def items_sorted(self) -> np.ndarray:
        """(P,) the items, grouped by row (row r: ``[indptr[r], indptr[r+1])``)."""
        return self.keys % self.n_items


# ====================================================================== the interface


class NegativeSampler(ABC):
    """Common interface of the negative samplers (see the module docstring).

    Attributes:
        n_items: catalogue size V; ids lie in ``[0, V)``.
        shared: True when :meth:`sample` returns one (K,) set of negatives for the whole batch.
        needs_user: True when :meth:`sample` and :meth:`log_q` need ``user_ids``.
    """

    n_items: int
    shared: bool = False
    needs_user: bool = False

    @abstractmethod
    def sample(
        self,
        pos_ids: np.ndarray,
        n_neg: int,
        rng: np.random.Generator | int,
        *,
        user_ids: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw negatives for a batch of positives (B,): (B, n_neg) int64, or (n_neg,) when ``shared``."""

    @abstractmethod
    def log_q(
        self, ids: np.ndarray, *, pos_ids: np.ndarray | None = None, user_ids: np.ndarray | None = None
    ) -> np.ndarray:
        """log Q(one draw = id), float64, same shape as ``ids``; -inf for ids the sampler never draws.

        ``ids`` (B, K) pairs with ``pos_ids`` / ``user_ids`` of shape (B,) (one per row);
        ``ids`` (n,) pairs element-wise with (n,) ones.
        """

    def proposal(self, *, pos_id: int | None = None, user_id: int | None = None) -> np.ndarray:
        """The whole proposal distribution of one row: (V,) float64 summing to 1."""
        ids = np.arange(self.n_items)[None, :]                          # (1, V)
        ctx = {
            "pos_ids": None if pos_id is None else np.array([pos_id]),
            "user_ids": None if user_id is None else np.array([user_id]),
        }
        return np.exp(self.log_q(ids, **ctx))[0]                        # (V,)

    def _check_sample_args(
        self, pos_ids: object, n_neg: object, user_ids: object
    ) -> tuple[np.ndarray, int, np.ndarray | None]:
        pos = _ids(pos_ids, self.n_items, "pos_ids")
        if not isinstance(n_neg, (int, np.integer)) or isinstance(n_neg, bool) or n_neg < 1:
            raise ValueError(f"n_neg must be a positive int, got {n_neg!r}")
        users = None
        if user_ids is not None:
            users = _row_context(user_ids, pos, "user_ids")
        elif self.needs_user:
            raise ValueError(f"{type(self).__name__} draws per user: pass user_ids (B,) with pos_ids")
        return pos, int(n_neg), users


# ====================================================================== uniform and popularity


class _ExclusionMixin:
    """Rejection sampling and row-normalised q for samplers that may exclude the positive / watched set."""

    n_items: int
    exclude_positive: bool
    watched: _PairSet | None

    @property
    def excludes(self) -> bool:
        return self.exclude_positive or self.watched is not None

    def _excluded(self, ids: np.ndarray, pos: np.ndarray | None, users: np.ndarray | None) -> np.ndarray:
        """Bool mask, shape of ids: the id is excluded for its row."""
        mask = np.zeros(ids.shape, dtype=bool)
        if self.exclude_positive:
            mask |= ids == pos
        if self.watched is not None:
            mask |= self.watched.count(users, ids) > 0
        return mask

    def _check_context(self, ids: np.ndarray, pos_ids: object, user_ids: object):
        pos = users = None
        if self.exclude_positive:
            if pos_ids is None:
                raise ValueError("this sampler excludes the positive: pass pos_ids to log_q")
            pos = _row_context(pos_ids, ids, "pos_ids")
        if self.watched is not None:
            if user_ids is None:
                raise ValueError("this sampler excludes watched videos: pass user_ids to log_q")
            users = _row_context(user_ids, ids, "user_ids", self.watched.n_rows)
        return pos, users

    def _reject(self, draws: np.ndarray, pos: np.ndarray, users: np.ndarray | None, redraw,
                rng: np.random.Generator) -> np.ndarray:
        """Redraw excluded entries of draws (B, K) until none is left (vectorised rounds).

        Entries still excluded after ``_MAX_REJECTION_ROUNDS`` rounds (a row whose allowed videos hold
        almost no proposal mass, e.g. a positive with 99.9 % of it) are drawn exactly from the row's
        renormalised proposal instead: the same distribution, without waiting for rare acceptances.
        """
        pos_b = pos[:, None]
        users_b = None if users is None else users[:, None]
        bad = self._excluded(draws, pos_b, users_b)
        for _ in range(_MAX_REJECTION_ROUNDS):
            if not bad.any():
                return draws
            rows, cols = np.nonzero(bad)
            draws[rows, cols] = redraw(len(rows))
            sub = self._excluded(draws[rows, cols], pos[rows], None if users is None else users[rows])
            bad[rows, cols] = sub
        for r, c in zip(*np.nonzero(bad), strict=True):  # few entries: one exact draw each
            q = self.proposal(pos_id=int(pos[r]), user_id=None if users is None else int(users[r]))  # (V,)
            draws[r, c] = rng.choice(self.n_items, p=q / q.sum())
        return draws


class UniformSampler(_ExclusionMixin, NegativeSampler):
    """Uniform over the catalogue: q = 1 / V, or 1 / (V - excluded) per row with exclusions.

    Args:
        n_items: catalogue size V.
        exclude_positive: never draw the row's positive.
        watched: optional per-user watched videos (list of int arrays, index = user id, e.g.
            ``ds.watch_sequences()``); excluded for that user's rows (``sample`` then needs user_ids).
        shared: one (K,) set for the whole batch (only without exclusions).
    """

    def __init__(
        self,
        n_items: int,
        *,
        exclude_positive: bool = False,
        watched: Sequence[np.ndarray] | None = None,
        shared: bool = False,
    ) -> None:
        if n_items < 2:
            raise ValueError(f"n_items must be at least 2, got {n_items}")
        self.n_items = int(n_items)
        self.exclude_positive = exclude_positive
        self.watched = None if watched is None else _PairSet.from_lists(watched, self.n_items, unique=True)
        self.needs_user = self.watched is not None
        if shared and self.excludes:
            raise ValueError(
                "shared negatives cannot exclude a row's positive or watched set; pass shared=False"
            )
        self.shared = shared

    def sample(self, pos_ids, n_neg, rng, *, user_ids=None):
        pos, k, users = self._check_sample_args(pos_ids, n_neg, user_ids)
        if self.watched is not None:
            users = _row_context(users, pos, "user_ids", self.watched.n_rows)
        rng = _as_rng(rng)
        shape = (k,) if self.shared else (len(pos), k)
        draws = rng.integers(0, self.n_items, size=shape)                      # (B, K) or (K,)
        if self.excludes:
            n_allowed = self._n_allowed(pos, users)                              # (B,)
            if (n_allowed < 1).any():
                r = int(np.argmin(n_allowed))
                raise ValueError(
                    f"row {r} (positive {pos[r]}{'' if users is None else f', user {users[r]}'}) excludes "
                    "every video; drop that row or exclude fewer videos"
                )
            draws = self._reject(draws, pos, users, lambda n: rng.integers(0, self.n_items, size=n), rng)
        return draws.astype(np.int64)

    def _n_allowed(self, pos: np.ndarray | None, users: np.ndarray | None) -> np.ndarray:
        """How many videos a row may draw: V minus its watched set and its positive (shape of pos/users)."""
        ctx = pos if pos is not None else users
        n_excl = np.zeros(ctx.shape, dtype=np.int64)
        if self.watched is not None:
            n_excl = n_excl + self.watched.per_row[users]
        if self.exclude_positive:
            in_watched = self.watched.count(users, pos) > 0 if self.watched is not None else False
            n_excl = n_excl + (~np.asarray(in_watched)).astype(np.int64)
        return self.n_items - n_excl

    def log_q(self, ids, *, pos_ids=None, user_ids=None):
        ids = _ids(ids, self.n_items, "ids", (1, 2))
        if not self.excludes:
            return np.full(ids.shape, -math.log(self.n_items))
        pos, users = self._check_context(ids, pos_ids, user_ids)                 # (B, 1) or (n,) each
        with np.errstate(divide="ignore"):
            logq = -np.log(self._n_allowed(pos, users).astype(np.float64))
        return np.where(self._excluded(ids, pos, users), -np.inf, np.broadcast_to(logq, ids.shape))


class PopularitySampler(_ExclusionMixin, NegativeSampler):
    """q proportional to ``(count + smoothing) ** alpha``; alpha=0 is uniform.

    Args:
        counts: (V,) non-negative counts (e.g. watches per video in the training window).
        alpha: the exponent (0 uniform, 0.75 as word2vec's noise, 1 the unigram distribution).
        smoothing: pseudo-count added first; with 0, videos never watched are never drawn (alpha > 0).
        exclude_positive: never draw the row's positive (q renormalised per row).
        shared: one (K,) set for the whole batch (only without exclusion).
    """

    def __init__(
        self,
        counts: np.ndarray,
        alpha: float = 1.0,
        *,
        smoothing: float = 0.0,
        exclude_positive: bool = False,
        shared: bool = False,
    ) -> None:
        counts = np.asarray(counts, dtype=np.float64)
        if counts.ndim != 1 or len(counts) < 2:
            raise ValueError(f"counts must be a 1-D array over at least 2 videos, got shape {counts.shape}")
        if not np.isfinite(counts).all() or (counts < 0).any() or smoothing < 0 or alpha < 0:
            raise ValueError("counts and smoothing must be finite and >= 0, alpha >= 0")
        weights = np.power(counts + smoothing, alpha)                         # (V,); 0**0 = 1
        if weights.sum() <= 0:
            raise ValueError("all counts are zero: pass smoothing > 0 or alpha = 0")
        self.n_items, self.alpha = len(counts), float(alpha)
        self.q = weights / weights.sum()                                       # (V,)
        self._cdf = np.cumsum(self.q)
        self.exclude_positive, self.watched = exclude_positive, None
        if shared and exclude_positive:
            raise ValueError("shared negatives cannot exclude a row's positive; pass shared=False")
        self.shared = shared
        if exclude_positive and self.q.max() >= 1.0 - 1e-12:
            raise ValueError("one video holds all the probability mass; it cannot be excluded as a positive")

    def _draw(self, rng: np.random.Generator, shape) -> np.ndarray:
        u = rng.random(shape) * self._cdf[-1]
        return np.minimum(np.searchsorted(self._cdf, u, side="right"), self.n_items - 1)

    def sample(self, pos_ids, n_neg, rng, *, user_ids=None):
        pos, k, users = self._check_sample_args(pos_ids, n_neg, user_ids)
        rng = _as_rng(rng)
        draws = self._draw(rng, (k,) if self.shared else (len(pos), k))     # (B, K) or (K,)
        if self.exclude_positive:
            draws = self._reject(draws, pos, None, lambda n: self._draw(rng, n), rng)
        return draws.astype(np.int64)

    def log_q(self, ids, *, pos_ids=None, user_ids=None):
        ids = _ids(ids, self.n_items, "ids", (1, 2))
        with np.errstate(divide="ignore"):
            logq = np.log(self.q[ids])
            if not self.exclude_positive:
                return logq
            pos, _ = self._check_context(ids, pos_ids, user_ids)
            logq = logq - np.log1p(-self.q[pos])
        return np.where(ids == pos, -np.inf, logq)


# ====================================================================== in-batch and mixed


class InBatchSampler(NegativeSampler):
    """The batch's positives are every row's negatives (shared (B,)); the row's own positive is an
    accidental hit that the loss masks.

    q (how likely an id is to be one of the batch's draws) comes from, in order of preference:
    ``item_probs`` (known probability that a training example's positive is each video),
    ``estimator`` (a :class:`StreamingFrequencyEstimator`, updated by every :meth:`sample` call),
    or the frequency of the id in the last sampled batch.
    """

    shared = True

    def __init__(
        self,
        n_items: int,
        *,
        item_probs: np.ndarray | None = None,
        estimator: StreamingFrequencyEstimator | None = None,
    ) -> None:
        if item_probs is not None and estimator is not None:
            raise ValueError("pass item_probs or estimator, not both")
        self.n_items, self.estimator = int(n_items), estimator
        self.item_probs = None
        if item_probs is not None:
            p = np.asarray(item_probs, dtype=np.float64)
            if p.shape != (self.n_items,) or (p < 0).any() or not math.isclose(p.sum(), 1.0, rel_tol=1e-6):
                raise ValueError(f"item_probs must be ({self.n_items},) non-negative and sum to 1")
            self.item_probs = p
        self._batch_ids: np.ndarray | None = None
        self._batch_counts: np.ndarray | None = None
        self._batch_size = 0

    def sample(self, pos_ids, n_neg=None, rng=None, *, user_ids=None):
        """Return the batch's positives (B,) as shared negatives; ``n_neg`` must be None or B."""
        pos = _ids(pos_ids, self.n_items, "pos_ids")
        if len(pos) == 0:
            raise ValueError("in-batch sampling needs a non-empty batch of positives")
        if n_neg is not None and n_neg != len(pos):
            raise ValueError(
                f"in-batch negatives are the batch's {len(pos)} positives: pass n_neg=None or {len(pos)}"
            )
        self._batch_ids, self._batch_counts = _unique_sorted(pos, return_counts=True)   # (n_unique,) each
        self._batch_size = len(pos)
        if self.estimator is not None:
            self.estimator.update(pos)
        return pos.copy()

    def log_q(self, ids, *, pos_ids=None, user_ids=None):
        ids = _ids(ids, self.n_items, "ids", (1, 2))
        with np.errstate(divide="ignore"):
            if self.item_probs is not None:
                return np.log(self.item_probs[ids])
            if self.estimator is not None:
                return np.log(self.estimator.draw_probability(ids))
            if self._batch_ids is None:
                raise ValueError("log_q of the batch frequency needs a batch: call sample() first")
            at = np.minimum(np.searchsorted(self._batch_ids, ids), len(self._batch_ids) - 1)
            count = np.where(self._batch_ids[at] == ids, self._batch_counts[at], 0)
            return np.log(count / self._batch_size)


class MixedSampler(NegativeSampler):
    """Mixed negative sampling (Yang et al. 2020): the B in-batch negatives plus ``n_neg`` more
    from a second sampler (uniform over the catalogue by default, so fresh and long-tail videos
    get pushed down too).

    ``sample`` returns (B + n_neg,) when the second sampler is shared, else (B, B + n_neg).
    ``log_q`` is the mixture: ``q(j) = (B q_batch(j) + n_neg q_other(j)) / (B + n_neg)``, using the
    B and n_neg of the last :meth:`sample` call.
    """

    def __init__(self, in_batch: InBatchSampler, other: NegativeSampler | None = None) -> None:
        other = other if other is not None else UniformSampler(in_batch.n_items, shared=True)
        if other.n_items != in_batch.n_items:
            raise ValueError(
                f"both samplers need the same catalogue, got {in_batch.n_items} and {other.n_items}"
            )
        self.in_batch, self.other = in_batch, other
        self.n_items, self.shared, self.needs_user = in_batch.n_items, other.shared, other.needs_user
        self._counts: tuple[int, int] | None = None

    def sample(self, pos_ids, n_neg, rng, *, user_ids=None):
        pos, k, users = self._check_sample_args(pos_ids, n_neg, user_ids)
        batch = self.in_batch.sample(pos)                                       # (B,)
        extra = self.other.sample(pos, k, rng, user_ids=users)                  # (K,) or (B, K)
        self._counts = (len(pos), k)
        if extra.ndim == 1:
            return np.concatenate([batch, extra])                               # (B + K,)
        return np.concatenate([np.broadcast_to(batch, (len(pos), len(pos))), extra], axis=1)  # (B, B + K)

    def log_q(self, ids, *, pos_ids=None, user_ids=None):
        if self._counts is None:
            raise ValueError("MixedSampler.log_q uses the sizes of the last batch: call sample() first")
        return mixture_log_q(ids, [(self.in_batch, self._counts[0]), (self.other, self._counts[1])],
                             pos_ids=pos_ids, user_ids=user_ids)


def mixture_log_q(
    ids: np.ndarray,
    parts: Sequence[tuple[NegativeSampler, int]],
    *,
    pos_ids: np.ndarray | None = None,
    user_ids: np.ndarray | None = None,
) -> np.ndarray:
    """log q of one draw from negatives pooled from several samplers, ``K_c`` draws from part c.

    ``q(j) = sum_c K_c q_c(j) / sum_c K_c``, so ``K q(j)`` is j's expected count among the pooled K
    negatives, which is what the importance weights need. Returns float64, shape of ``ids``.
    """
    total = sum(k for _, k in parts)
    if total <= 0:
        raise ValueError("mixture_log_q needs at least one part with draws")
    terms = [np.log(k) + s.log_q(ids, pos_ids=pos_ids, user_ids=user_ids) for s, k in parts if k > 0]
    return np.logaddexp.reduce(np.stack(terms), axis=0) - np.log(total)


class PooledSampler(NegativeSampler):
    """Per row, ``k_c`` draws from each part sampler c, concatenated: (B, sum k_c) int64.

    ``log_q`` is the pooled mixture ``sum_c k_c q_c / sum_c k_c``
    (:func:`ytrec_lib.models.sampling.mixture_log_q`),
    so ``K q`` is an id's expected count among the row's K negatives. Huang et al. (2020) pool hard
    negatives (ranks 101-500 of a previous model) with easy random ones this way.

    Args:
        parts: (sampler, k) pairs; shared samplers' (k,) draws are repeated for every row.
    """

    def __init__(self, parts: Sequence[tuple[NegativeSampler, int]]) -> None:
        parts = [(s, int(k)) for s, k in parts]
        if not parts or any(k < 1 for _, k in parts):
            raise ValueError("PooledSampler needs at least one (sampler, k) part, each with k >= 1")
        sizes = {s.n_items for s, _ in parts}
        if len(sizes) != 1:
            raise ValueError(f"PooledSampler: the parts have different catalogue sizes {sorted(sizes)}")
        self.parts, self.n_items = parts, sizes.pop()
        self.needs_user = any(s.needs_user for s, _ in parts)
        self.n_per_row = sum(k for _, k in parts)

    def sample(self, pos_ids, n_neg=None, rng=None, *, user_ids=None):
        """(B, sum k_c) draws; ``n_neg`` must be None or ``sum k_c`` (the parts fix the counts)."""
        if n_neg is not None and n_neg != self.n_per_row:
            raise ValueError(f"PooledSampler draws {self.n_per_row} per row (set by its parts), "
                             f"got n_neg={n_neg}")
        pos, _, users = self._check_sample_args(pos_ids, self.n_per_row, user_ids)
        blocks = []
        for s, k in self.parts:
            d = s.sample(pos, k, rng, user_ids=users)                             # (k,) or (B, k)
            blocks.append(np.broadcast_to(d, (len(pos), k)) if d.ndim == 1 else d)
        return np.concatenate(blocks, axis=1).astype(np.int64)                    # (B, K)

    def log_q(self, ids, *, pos_ids=None, user_ids=None):
        return mixture_log_q(ids, self.parts, pos_ids=pos_ids, user_ids=user_ids)


def positive_in_draws(sampler: NegativeSampler) -> bool:
    """Whether the row's positive is itself one of the sampler's draws (in-batch, mixed): then the
    positive's logit gets the same ``- log(K q)`` correction (Yi et al. 2019, eq. 3)."""
    return isinstance(sampler, (InBatchSampler, MixedSampler))


# ====================================================================== exposed-not-clicked and hard


class ExposedSampler(NegativeSampler):
    """Exposed-but-not-clicked: uniform over the videos a user was shown and never clicked.

    Users with no such video (or user ids beyond the log) are served by ``fallback``
    (default: uniform over the catalogue, excluding the positive); ``log_q`` then is the fallback's.

    Args:
        n_items: catalogue size V.
        user_ids, video_ids, clicked: (N,) columns of the impression log (e.g. ``ds.impressions``).
        n_users: number of users (default: max user id + 1).
        fallback: the sampler for users without exposed-not-clicked videos.
    """

    needs_user = True

    def __init__(
        self,
        n_items: int,
        user_ids: np.ndarray,
        video_ids: np.ndarray,
        clicked: np.ndarray,
        *,
        n_users: int | None = None,
        fallback: NegativeSampler | None = None,
    ) -> None:
        self.n_items = int(n_items)
        users = np.asarray(user_ids, dtype=np.int64)
        videos = _ids(video_ids, self.n_items, "video_ids")
        clicked = np.asarray(clicked, dtype=bool)
        if not (users.shape == videos.shape == clicked.shape):
            raise ValueError(f"user_ids, video_ids, clicked must have the same shape, got "
                             f"{users.shape}, {videos.shape}, {clicked.shape}")
        if users.size and users.min() < 0:
            raise ValueError("user_ids must be >= 0")
        self.n_users = int(n_users if n_users is not None else (users.max() + 1 if users.size else 0))
        keys = users * self.n_items + videos
        shown = _unique_sorted(keys[~clicked])                                  # (S,) sorted
        never_clicked = shown[~_sorted_contains(np.sort(keys[clicked]), shown)]
        rows = never_clicked // self.n_items
        self.exposed = _PairSet(rows, never_clicked % self.n_items, self.n_items, self.n_users)
        if fallback is None:
            fallback = UniformSampler(self.n_items, exclude_positive=True)
        self.fallback = fallback
        if self.fallback.shared:
            raise ValueError("the fallback must draw per row (shared=False)")

    def n_exposed(self, user_ids: np.ndarray) -> np.ndarray:
        """(n,) how many exposed-not-clicked videos each user has (0: the fallback is used)."""
        users = np.asarray(user_ids, dtype=np.int64)
        inside = (users >= 0) & (users < self.n_users)
        return np.where(inside, self.exposed.per_row[np.clip(users, 0, max(self.n_users - 1, 0))], 0)

    def sample(self, pos_ids, n_neg, rng, *, user_ids=None):
        pos, k, users = self._check_sample_args(pos_ids, n_neg, user_ids)
        rng = _as_rng(rng)
        n_u = self.n_exposed(users)                                             # (B,)
        has = n_u > 0
        out = np.empty((len(pos), k), dtype=np.int64)                            # (B, K)
        start = self.exposed.indptr[users[has]]                                  # (B_has,)
        offset = np.floor(rng.random((int(has.sum()), k)) * n_u[has, None]).astype(np.int64)
        out[has] = self.exposed.items_sorted()[start[:, None] + offset]
        if (~has).any():
            out[~has] = self.fallback.sample(pos[~has], k, rng, user_ids=users[~has])
        return out

    def log_q(self, ids, *, pos_ids=None, user_ids=None):
        ids = _ids(ids, self.n_items, "ids", (1, 2))
        if user_ids is None:
            raise ValueError("ExposedSampler.log_q needs user_ids (one per row of ids)")
        users = _row_context(user_ids, ids, "user_ids")                         # (B, 1) or (n,)
        n_u = self.n_exposed(users)                                             # (B, 1) or (n,)
        in_set = self.exposed.count(np.clip(users, 0, max(self.n_users - 1, 0)), ids) > 0
        with np.errstate(divide="ignore"):
            out = np.where(in_set, -np.log(np.maximum(n_u, 1)), -np.inf)        # shape of ids
        rows = np.nonzero(n_u.reshape(-1) == 0)[0]                              # rows for the fallback
        if len(rows):
            ctx = {"user_ids": np.asarray(user_ids)[rows]}
            if pos_ids is not None:
                ctx["pos_ids"] = np.asarray(pos_ids)[rows]
            out[rows] = self.fallback.log_q(ids[rows], **ctx)
        return out


class HardNegativeSampler(NegativeSampler):
    """Hard negatives: uniform over ranks ``lo..hi-1`` (0-based) of a previous model's ranking.

    Huang et al. 2020 (Facebook EBR) take ranks 101-500 (``lo=100, hi=500``): close enough to the
    top to be hard, far enough to be rarely true positives; they mix them with easy negatives
    (use :class:`MixedSampler` with this as ``other``).

    Args:
        ranked: (U, R) int64, row u = user u's videos in the previous model's order (best first).
        n_items: catalogue size V.
        lo, hi: the rank band, 0-based, half-open.
    """

    needs_user = True

    def __init__(self, ranked: np.ndarray, n_items: int, *, lo: int = 100, hi: int = 500) -> None:
        self.n_items = int(n_items)
        ranked = _ids(ranked, self.n_items, "ranked", (2,))
        if not 0 <= lo < hi:
            raise ValueError(f"need 0 <= lo < hi, got lo={lo}, hi={hi}")
        if ranked.shape[1] < hi:
            raise ValueError(f"ranked has {ranked.shape[1]} ranks per user, the band needs {hi}; "
                             "rank more videos or lower hi")
        self.band = ranked[:, lo:hi]                                             # (U, W)
        self.lo, self.hi, self.n_users = lo, hi, len(ranked)
        rows = np.repeat(np.arange(self.n_users), hi - lo)
        self._pairs = _PairSet(rows, self.band.ravel(), self.n_items, self.n_users)

    def sample(self, pos_ids, n_neg, rng, *, user_ids=None):
        pos, k, users = self._check_sample_args(pos_ids, n_neg, user_ids)
        if users.min() < 0 or users.max() >= self.n_users:
            raise ValueError(f"user_ids must lie in [0, {self.n_users}) (rows of ranked)")
        rng = _as_rng(rng)
        col = rng.integers(0, self.hi - self.lo, size=(len(pos), k))            # (B, K)
        return self.band[users[:, None], col]

    def log_q(self, ids, *, pos_ids=None, user_ids=None):
        ids = _ids(ids, self.n_items, "ids", (1, 2))
        if user_ids is None:
            raise ValueError("HardNegativeSampler.log_q needs user_ids (one per row of ids)")
        users = _row_context(user_ids, ids, "user_ids", self.n_users)
        with np.errstate(divide="ignore"):
            return np.log(self._pairs.count(users, ids) / (self.hi - self.lo))


# ====================================================================== the loss


def sampled_softmax_loss(
    user_vec: torch.Tensor,
    item_weight: torch.Tensor,
    item_bias: torch.Tensor | None,
    pos: torch.Tensor | np.ndarray,
    neg: torch.Tensor | np.ndarray,
    log_q_pos: torch.Tensor | np.ndarray | None = None,
    log_q_neg: torch.Tensor | np.ndarray | None = None,
    remove_accidental_hits: bool = True,
    logq_correction: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """Sampled softmax cross-entropy with the logQ correction.

    Logits are ``s_j = u . w_j + b_j``. With ``K`` negatives per row drawn with probability ``q``,
    the corrected logit of a negative is ``s_j - log(K q_j)``: ``exp`` of it is the importance
    weight of the draw, so ``exp(s_pos) + sum_k exp(s_k - log(K q_k))`` is an unbiased estimate of
    the full softmax's denominator and the loss tends to the full softmax loss as K grows.

    The positive is left uncorrected when ``log_q_pos`` is None (it is always in the candidate set:
    the classic sampled softmax). For in-batch and mixed negatives, where the positive is itself one
    of the draws, pass ``log_q_pos`` and it gets the same ``- log(K q)`` (Yi et al. 2019, eq. 3).

    Args:
        user_vec: (B, m) user embeddings.
        item_weight: (V, m) output (video) embeddings.
        item_bias: (V,) output biases, or None.
        pos: (B,) int64 positive ids.
        neg: (B, K) per-row or (K,) shared negative ids.
        log_q_pos: (B,) log q of the positives, or None.
        log_q_neg: log q of ``neg``, same shape; required when ``logq_correction``.
        remove_accidental_hits: set negatives equal to the row's positive to -inf.
        logq_correction: subtract ``log(K q)``; False gives the plain (biased) sampled softmax.
        reduction: "mean" (scalar) or "none" ((B,) per-row losses).

    Returns:
        scalar tensor (or (B,) with ``reduction="none"``).
    """
    n_items, dim = _check_loss_inputs(user_vec, item_weight, item_bias)
    B = user_vec.shape[0]
    dev, dt = user_vec.device, user_vec.dtype
    pos_t = _index_tensor(pos, (B,), n_items, "pos", dev)                       # (B,)
    neg_t = torch.as_tensor(neg, device=dev)
    if neg_t.ndim not in (1, 2) or (neg_t.ndim == 2 and neg_t.shape[0] != B) or neg_t.shape[-1] < 1:
        raise ValueError(f"neg must be (B, K) = ({B}, K) or (K,) with K >= 1, got shape {tuple(neg_t.shape)}")
    neg_t = _index_tensor(neg_t, tuple(neg_t.shape), n_items, "neg", dev)
    K = neg_t.shape[-1]

    bias = item_bias if item_bias is not None else torch.zeros(n_items, dtype=dt, device=dev)
    s_pos = (user_vec * item_weight[pos_t]).sum(-1) + bias[pos_t]                # (B,)
    if neg_t.ndim == 1:
        s_neg = user_vec @ item_weight[neg_t].T + bias[neg_t]                    # (B, K)
    else:
        s_neg = torch.einsum("bm,bkm->bk", user_vec, item_weight[neg_t]) + bias[neg_t]  # (B, K)

    if logq_correction:
        if log_q_neg is None:
            raise ValueError("logq_correction=True needs log_q_neg (from sampler.log_q(neg, ...))")
        lq_neg = _float_tensor(log_q_neg, tuple(neg_t.shape), "log_q_neg", dt, dev)  # (B, K) or (K,)
        s_neg = s_neg - (math.log(K) + lq_neg)                                  # (B, K)
        if log_q_pos is not None:
            lq_pos = _float_tensor(log_q_pos, (B,), "log_q_pos", dt, dev)       # (B,)
            s_pos = s_pos - (math.log(K) + lq_pos)                              # (B,)
    if remove_accidental_hits:
        hit = neg_t.reshape(-1, K) == pos_t[:, None]                             # (B, K)
        s_neg = s_neg.masked_fill(hit, float("-inf"))
    logits = torch.cat([s_pos[:, None], s_neg], dim=1)                          # (B, 1 + K)
    loss = torch.logsumexp(logits, dim=1) - s_pos                               # (B,)
    return _reduce(loss, reduction)


def full_softmax_loss(
    user_vec: torch.Tensor,
    item_weight: torch.Tensor,
    item_bias: torch.Tensor | None,
    pos: torch.Tensor | np.ndarray,
    reduction: str = "mean",
) -> torch.Tensor:
    """The exact softmax cross-entropy over all V videos (the reference the sampled loss estimates)."""
    n_items, _ = _check_loss_inputs(user_vec, item_weight, item_bias)
    pos_t = _index_tensor(pos, (user_vec.shape[0],), n_items, "pos", user_vec.device)
    logits = user_vec @ item_weight.T                                           # (B, V)
    if item_bias is not None:
        logits = logits + item_bias                                             # (B, V)
    loss = torch.logsumexp(logits, dim=1) - logits.gather(1, pos_t[:, None])[:, 0]  # (B,)
    return _reduce(loss, reduction)


def _check_loss_inputs(user_vec, item_weight, item_bias) -> tuple[int, int]:
    for name, t in (("user_vec", user_vec), ("item_weight", item_weight)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or not t.is_floating_point():
            raise ValueError(f"{name} must be a 2-D float torch tensor, got {getattr(t, 'shape', type(t))}")
    if user_vec.shape[1] != item_weight.shape[1]:
        raise ValueError(f"user_vec has m={user_vec.shape[1]} but item_weight has m={item_weight.shape[1]}")
    n_items = item_weight.shape[0]
    bias_ok = item_bias is None or (
        isinstance(item_bias, torch.Tensor) and tuple(item_bias.shape) == (n_items,)
    )
    if not bias_ok:
        got = getattr(item_bias, "shape", type(item_bias).__name__)
        raise ValueError(f"item_bias must be a ({n_items},) tensor or None, got {got}")
    return n_items, user_vec.shape[1]


def _index_tensor(x, shape: tuple[int, ...], n_items: int, name: str, dev) -> torch.Tensor:
    t = torch.as_tensor(x, device=dev)
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    if t.is_floating_point() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer ids, got {t.dtype}")
    t = t.long()
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n_items):
        raise ValueError(f"{name} has ids outside [0, {n_items}); check the sampler's catalogue size")
    return t


def _float_tensor(x, shape: tuple[int, ...], name: str, dt, dev) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=dt, device=dev)
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape} (like the ids it belongs to), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} has -inf/NaN: an id was drawn that the proposal gives probability 0; "
                         "compute log_q with the sampler that drew the ids (and the same pos_ids/user_ids)")
    return t


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


# ====================================================================== streaming frequency estimate


class StreamingFrequencyEstimator:
    """Estimate how often each id shows up in a stream of batches (Yi et al. 2019, Algorithm 2).

    Two hash-indexed arrays: ``A[h(y)]`` the last step y was seen, ``B[h(y)]`` the estimated gap
    (steps between sightings), updated at each sighting as ``B <- (1 - alpha) B + alpha (t - A)``.
    The probability that a step contains y is about ``1 / B``. With ``n_hashes > 1`` independent
    hash arrays are kept and the largest gap is used, since hash collisions only shorten gaps.

    Deviation from the paper's zero initialisation (documented): the first observed gap sets B
    directly, and an id seen at most once is estimated as one sighting in all the steps so far.

    Limits: the relative noise of an estimate is about ``sqrt(alpha / 2)`` (gaps are averaged over
    ~1/alpha sightings), and the resolution is one step: an id that is in almost every batch has
    B ~ 1 whatever its true frequency, so :meth:`draw_probability` cannot tell 0.2 from 0.5 there.

    Args:
        n_buckets: size H of each hash array (memory is O(H), independent of the catalogue).
        n_hashes: number of independent hash arrays.
        alpha: learning rate of the gap average (larger tracks shifts faster but is noisier).
        seed: picks the hash functions.
    """

    def __init__(self, n_buckets: int, *, n_hashes: int = 1, alpha: float = 0.01, seed: int = 0) -> None:
        if n_buckets < 1 or n_hashes < 1 or not 0 < alpha <= 1:
            raise ValueError("need n_buckets >= 1, n_hashes >= 1 and 0 < alpha <= 1")
        self.n_buckets, self.n_hashes, self.alpha = int(n_buckets), int(n_hashes), float(alpha)
        salts = np.random.default_rng(seed).integers(1, 2**63 - 1, size=n_hashes, dtype=np.int64)
        self._salts = salts.astype(np.uint64)                                   # (n_hashes,)
        self.last_seen = np.full((n_hashes, n_buckets), -1, dtype=np.int64)     # A: (n_hashes, H)
        self.gap = np.full((n_hashes, n_buckets), np.nan)                       # B: (n_hashes, H)
        self.step = -1          # the step of the last update
        self.n_draws = 0        # ids seen in all updates (for the per-draw probability)

    def _buckets(self, ids: np.ndarray) -> np.ndarray:
        """(n_hashes, n) bucket of each id in each hash array (splitmix64 of id + salt)."""
        z = ids.astype(np.uint64)[None, :] + self._salts[:, None]               # (n_hashes, n)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        return (z % np.uint64(self.n_buckets)).astype(np.int64)

    def update(self, ids: np.ndarray, step: int | None = None) -> None:
        """Record one batch of ids (n,) seen at ``step`` (default: the step after the last one)."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"ids must be a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
        t = self.step + 1 if step is None else int(step)
        if t < self.step:
            raise ValueError(f"step {t} is before the last step {self.step}; steps must not go back")
        for h, buckets in enumerate(self._buckets(ids)):
            b = _unique_sorted(buckets)                                             # (n_unique,)
            last, gap = self.last_seen[h, b], self.gap[h, b]
            seen = (last >= 0) & (last < t)
            new_gap = (t - last).astype(np.float64)
            first = seen & np.isnan(gap)
            avg = seen & ~np.isnan(gap)
            gap[first] = new_gap[first]
            gap[avg] = (1 - self.alpha) * gap[avg] + self.alpha * new_gap[avg]
            self.gap[h, b] = gap
            self.last_seen[h, b] = t
        self.step = t
        self.n_draws += len(ids)

    def probability(self, ids: np.ndarray) -> np.ndarray:
        """(n,) estimated probability that a step (batch) contains each id: ``1 / B``, in (0, 1]."""
        ids = np.asarray(ids)
        flat = ids.reshape(-1)
        n_steps = max(self.step + 1, 1)
        gaps = np.where(np.isnan(self.gap), float(n_steps), self.gap)          # (n_hashes, H)
        g = np.take_along_axis(gaps, self._buckets(flat), axis=1).max(axis=0)   # (n,)
        return np.clip(1.0 / np.maximum(g, 1.0), 0.0, 1.0).reshape(ids.shape)

    def draw_probability(self, ids: np.ndarray) -> np.ndarray:
        """Estimated probability that ONE draw of the stream is each id (what logQ needs).

        A batch of b draws contains id y with probability ``1 - (1 - p)**b``; inverted with the
        mean batch size b seen so far.
        """
        if self.step < 0:
            raise ValueError("the estimator has seen no batch yet: call update() first")
        b = self.n_draws / (self.step + 1)
        p_step = np.minimum(self.probability(ids), 1.0 - 1e-12)
        return -np.expm1(np.log1p(-p_step) / b)
