"""Per-example inputs of the candidate model (paper §3.3-3.4), built only from history before the label.

One training or serving *example* is a pair (user, time). Its inputs are

- the bag of the user's last <= ``max_bag`` watched video ids strictly before ``time``;
- the bag of the user's last <= ``max_bag`` search tokens strictly before ``time``;
- demographics: region id, age scaled to [0, 1] with selectable transforms (age, age^2, sqrt(age),
  log, exp), a missing-age flag, gender (one-hot over female / male / unknown);
- example age: ``window_end - time`` in days, scaled by the training window's length; 0 at serving;
  optionally (``FeatureSpec.example_age_days``) also one-hot over its whole days, so the tower can give
  each day of the window its own input (a scalar through ReLU layers resolves a few days of a month-long
  window only with very steep weights);
- optionally (``FeatureSpec.occupation``) the user's occupation id, for an embedding (real datasets
  that publish one, e.g. MovieLens-100K's 21 occupations; unknown = the padding index ``n_occupations``).

Bags are stored as (begin, length) offsets into per-user time-sorted event arrays, so building the
features of a million examples costs a few ``np.searchsorted`` calls and O(n) memory; the padded
(B, L) index tensors are gathered per mini-batch by :meth:`ExampleFeatures.batch`.

Ids outside the vocabulary (negative, or >= the catalogue size) map to the *padding index*, which is
the last row of each embedding table (index ``n_videos`` for videos, ``n_tokens`` for tokens, ``n_regions``
for regions). Its embedding is zero and ``nn.EmbeddingBag(padding_idx=...)`` leaves it out of the
average, so an unknown id contributes nothing, and a bag with no known id averages to the zero vector.

Missing ages (NaN) are imputed with the median of the known ages (of the users the encoder was fitted
on) and flagged in the ``age_missing`` column, so the network can tell imputed from real ages. Any
other age must be a number of years in ``ytrec_lib.data.realtables.AGE_RANGE`` (0..120): a users table
with an age of 200 or -5 is refused with a ValueError naming the user, rather than letting one bad
value stretch the min-max age scaling so that every real age lands in a narrow band.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from ytrec_lib.data.realtables import check_ages

AGE_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "age": lambda x: x,
    "age2": lambda x: x**2,
    "sqrt": np.sqrt,
    "log": lambda x: np.log1p(x) / np.log(2.0),  # maps [0, 1] onto [0, 1]
    "exp": lambda x: np.expm1(x) / np.expm1(1.0),  # maps [0, 1] onto [0, 1]
}
"""Transforms of the [0, 1]-scaled age; each maps [0, 1] onto [0, 1]."""

N_GENDER_COLUMNS = 3  # one-hot: female (0), male (1), unknown (-1 or anything else)


@dataclass(frozen=True)
class FeatureSpec:
    """Which feature groups the candidate model sees (the paper's Figure 6 feature sets).

    ``watches``: bag of watched videos; ``searches``: bag of search tokens; ``example_age``: the
    example-age scalar; ``demographics``: region, age transforms, missing-age flag, gender.
    ``age_transforms``: names from :data:`AGE_TRANSFORMS`, applied to the [0, 1]-scaled age.
    ``max_bag``: the bag limit (the most recent ``max_bag`` events are kept). ``occupation``: the
    user's occupation id (an embedding in the model; off by default: the simulator has none).
    ``example_age_days``: 0 feeds example age as one scalar; ``N > 0`` adds N columns beside it, a
    one-hot of the whole days ``window_end - time`` (day 0 at serving, days >= N - 1 in the last column).
    """

    watches: bool = True
    searches: bool = True
    example_age: bool = True
    demographics: bool = True
    age_transforms: tuple[str, ...] = ("age", "age2", "sqrt")
    max_bag: int = 50
    occupation: bool = False
    example_age_days: int = 0

    def __post_init__(self) -> None:
        unknown = [t for t in self.age_transforms if t not in AGE_TRANSFORMS]
        if unknown:
            raise ValueError(
                f"FeatureSpec: unknown age transform(s) {unknown}; choose from {sorted(AGE_TRANSFORMS)}"
            )
        if len(set(self.age_transforms)) != len(self.age_transforms):
            raise ValueError(f"FeatureSpec: age_transforms {self.age_transforms} repeats a transform")
        if int(self.max_bag) < 1:
            raise ValueError(f"FeatureSpec: max_bag must be >= 1, got {self.max_bag}")
        days = self.example_age_days
        if isinstance(days, bool) or not isinstance(days, int | np.integer) or days < 0:
            raise ValueError(f"FeatureSpec: example_age_days must be an integer >= 0 (0: example age as one "
                             f"scalar; N: also a one-hot of its whole days), got {days!r}")
        object.__setattr__(self, "example_age_days", int(days))
        object.__setattr__(self, "age_transforms", tuple(self.age_transforms))

    @property
    def n_dense(self) -> int:
        """Width of the dense (float) input block: age transforms + missing flag + gender + example age
        (1 + ``example_age_days`` columns)."""
        demo = len(self.age_transforms) + 1 + N_GENDER_COLUMNS if self.demographics else 0
        return demo + (1 + self.example_age_days if self.example_age else 0)

    def dense_names(self) -> list[str]:
        """Names of the dense columns, in order."""
        names: list[str] = []
        if self.demographics:
            names += [f"age:{t}" for t in self.age_transforms]
            names += ["age_missing", "gender:female", "gender:male", "gender:unknown"]
        if self.example_age:
            names.append("example_age")
            names += [f"example_age:day{d}" for d in range(self.example_age_days)]
        return names

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for checkpoints and cache keys)."""
        d = asdict(self)
        d["age_transforms"] = list(self.age_transforms)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["age_transforms"] = tuple(d.get("age_transforms", ()))
        return cls(**d)


FEATURE_SETS: dict[str, FeatureSpec] = {
    "watches": FeatureSpec(searches=False, example_age=False, demographics=False),
    "watches+searches": FeatureSpec(example_age=False, demographics=False),
    "watches+searches+example_age": FeatureSpec(demographics=False),
    "all": FeatureSpec(),
}
"""The feature sets of the features x depth experiment (paper Figure 6), smallest first."""


def feature_set(name: str, **overrides: Any) -> FeatureSpec:
    """The :class:`FeatureSpec` named ``name`` in :data:`FEATURE_SETS`, with fields overridden."""
    if name not in FEATURE_SETS:
        raise KeyError(f"unknown feature set {name!r}; choose from {list(FEATURE_SETS)}")
    return replace(FEATURE_SETS[name], **overrides)


# ----------------------------------------------------------------------------------------------------
# Event logs: per-user time-sorted events, and vectorised "last L strictly before t" lookups
# ----------------------------------------------------------------------------------------------------


@dataclass
class EventLog:
    """Events (user, time, item) sorted by (user, time), for bag lookups.

    ``user`` (E,) int64, ``time`` (E,) float64, ``item`` (E,) int64 (already mapped: unknown ids are
    ``pad``), ``pad`` the padding index (= vocabulary size).
    """

    user: np.ndarray
    time: np.ndarray
    item: np.ndarray
    pad: int

    @classmethod
    def from_arrays(cls, user: Any, time: Any, item: Any, n_items: int) -> EventLog:
        """Sort the events by (user, time) (stable, so equal times keep their input order).

        Items outside ``[0, n_items)`` become the padding index ``n_items``.
        """
        user = np.asarray(user, dtype=np.int64).ravel()
        time = np.asarray(time, dtype=np.float64).ravel()
        item = np.asarray(item, dtype=np.int64).ravel()
        if not (len(user) == len(time) == len(item)):
            raise ValueError(
                f"EventLog: user, time and item must have the same length, got {len(user)}, "
                f"{len(time)}, {len(item)}"
            )
        if np.isnan(time).any():
            raise ValueError("EventLog: event times contain NaN; drop or fill those events first")
        order = np.lexsort((time, user))  # primary key user, then time; stable
        return cls(user[order], time[order], map_unknown(item[order], n_items), int(n_items))

    def __len__(self) -> int:
        return len(self.user)

    def bag_bounds(self, users: np.ndarray, times: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """For each query (user, time): the last <= ``max_len`` events of that user strictly before ``time``.

        ``users`` (n,) int64, ``times`` (n,) float64 -> ``begin`` (n,) int64 and ``length`` (n,) int64,
        so the bag is ``item[begin : begin + length]`` (oldest first). Exact: times are compared through
        their ranks in the union of event and query times, not through a float key.
        """
        users = np.asarray(users, dtype=np.int64)
        times = np.asarray(times, dtype=np.float64)
        uniq = np.unique(np.concatenate([self.time, times]))
        n_t = np.int64(len(uniq) + 1)
        ev_key = self.user * n_t + np.searchsorted(uniq, self.time)  # (E,) sorted, as events are
        q_key = users * n_t + np.searchsorted(uniq, times)  # (n,)
        end = np.searchsorted(ev_key, q_key, side="left")  # events with key < query key
        user_start = np.searchsorted(ev_key, users * n_t, side="left")  # first event of the user
        begin = np.maximum(user_start, end - max_len)
        return begin.astype(np.int64), (end - begin).astype(np.int64)

    def gather(self, begin: np.ndarray, length: np.ndarray, width: int | None = None) -> np.ndarray:
        """Padded bags: ``(n, width)`` int64 item ids, oldest first, padded at the end with ``pad``.

        ``width`` defaults to ``max(length)`` (at least 1).
        """
        width = max(1, int(length.max(initial=0))) if width is None else int(width)
        cols = np.arange(width, dtype=np.int64)  # (W,)
        idx = begin[:, None] + cols[None, :]  # (n, W)
        valid = cols[None, :] < length[:, None]  # (n, W)
        if len(self.item) == 0:
            return np.full(idx.shape, self.pad, dtype=np.int64)
        return np.where(valid, self.item[np.minimum(idx, len(self.item) - 1)], self.pad)


def map_unknown(ids: np.ndarray, n: int) -> np.ndarray:
    """Ids (any shape, int) with everything outside ``[0, n)`` replaced by the padding index ``n``."""
    ids = np.asarray(ids, dtype=np.int64)
    return np.where((ids >= 0) & (ids < n), ids, n)


def flatten_search_tokens(searches: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Searches table -> one row per token: ``user`` (T,) int64, ``time`` (T,) float64, ``token`` (T,) int64.

    Tokens of one search keep their order; empty searches contribute nothing.
    """
    if len(searches) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, np.zeros(0, dtype=np.float64), empty
    lengths = np.fromiter((len(t) for t in searches["tokens"]), dtype=np.int64, count=len(searches))
    tokens = np.concatenate([np.asarray(t, dtype=np.int64).ravel() for t in searches["tokens"]])
    user = np.repeat(searches["user_id"].to_numpy(np.int64), lengths)
    time = np.repeat(searches["time"].to_numpy(np.float64), lengths)
    return user, time, tokens


# ----------------------------------------------------------------------------------------------------
# The encoder: scalings fitted once (on the training users and window), reused for test and serving
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureEncoder:
    """Vocabulary sizes and the scalings fitted on training data; JSON-able (stored in checkpoints).

    Age is scaled as ``clip((age - age_lo) / (age_hi - age_lo), 0, 1)``; NaN ages become ``age_fill``
    (the median scaled age of the users fitted on) with the missing flag set. Example age is
    ``(window_end - time) / example_age_scale`` clipped to [-1, 1] (in [0, 1] inside the training
    window; negative only when asked for, e.g. "slightly in the future" at serving), with
    ``example_age_scale`` the training window's length in days.
    """

    n_videos: int
    n_tokens: int
    n_regions: int
    spec: FeatureSpec = field(default_factory=FeatureSpec)
    age_lo: float = 0.0
    age_hi: float = 100.0
    age_fill: float = 0.5
    example_age_scale: float = 1.0
    n_occupations: int = 0

    @classmethod
    def fit(
        cls,
        users: pd.DataFrame,
        n_videos: int,
        n_tokens: int,
        n_regions: int,
        spec: FeatureSpec | None = None,
        window: tuple[float, float] = (0.0, 1.0),
        n_occupations: int = 0,
    ) -> FeatureEncoder:
        """Fit the age scaling on ``users['age']``, the example-age scale on ``window`` (start, end) days.
        ``n_occupations``: the occupation vocabulary (0: none; ``spec.occupation`` then fails in the model).

        Raises ValueError for an age that is neither NaN nor in 0..120 years (naming the user).
        """
        for name, n in (("n_videos", n_videos), ("n_tokens", n_tokens), ("n_regions", n_regions)):
            if int(n) < 1:
                raise ValueError(f"FeatureEncoder.fit: {name} must be >= 1, got {n}")
        age = users["age"].to_numpy(np.float64) if "age" in users else np.zeros(0)
        check_ages(age, users["user_id"].to_numpy() if "user_id" in users else None,
                   "FeatureEncoder.fit: users table")
        known = age[np.isfinite(age)]
        lo, hi = (float(known.min()), float(known.max())) if len(known) else (0.0, 100.0)
        if hi <= lo:
            hi = lo + 1.0
        fill = float(np.clip((np.median(known) - lo) / (hi - lo), 0, 1)) if len(known) else 0.5
        span = float(window[1] - window[0])
        return cls(
            int(n_videos), int(n_tokens), int(n_regions), spec or FeatureSpec(), lo, hi, fill,
            span if span > 0 else 1.0, max(int(n_occupations), 0),
        )

    def with_spec(self, spec: FeatureSpec) -> FeatureEncoder:
        """The same scalings with another feature spec."""
        return replace(self, spec=spec)

    def dense_demographics(self, age: np.ndarray, gender: np.ndarray) -> np.ndarray:
        """Age (n,) float years (NaN = missing; else 0..120, ValueError otherwise) and gender (n,) int
        -> (n, len(transforms) + 4) float32."""
        age = np.asarray(age, dtype=np.float64)
        check_ages(age, source="FeatureEncoder.dense_demographics: ages")
        missing = ~np.isfinite(age)
        scaled = np.clip((np.where(missing, 0.0, age) - self.age_lo) / (self.age_hi - self.age_lo), 0, 1)
        scaled = np.where(missing, self.age_fill, scaled)  # (n,)
        cols = [AGE_TRANSFORMS[t](scaled) for t in self.spec.age_transforms]
        gender = np.asarray(gender, dtype=np.int64)
        g = np.where((gender == 0) | (gender == 1), gender, 2)  # (n,) in {0, 1, 2}
        onehot = np.eye(N_GENDER_COLUMNS)[g]  # (n, 3)
        return np.column_stack([*cols, missing.astype(np.float64), onehot]).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureEncoder:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["spec"] = FeatureSpec.from_dict(d["spec"])
        return cls(**d)


# ----------------------------------------------------------------------------------------------------
# Examples and the builder
# ----------------------------------------------------------------------------------------------------


@dataclass
class UserTable:
    """Demographics indexed by user id: ``region`` (U,) int64 (unknown = ``n_regions``), ``age`` (U,)
    float64 years (NaN = missing), ``gender`` (U,) int64 (0, 1; anything else unknown), ``occupation``
    (U,) int64 (-1 = unknown; all unknown when the table has no ``occupation`` column)."""

    region: np.ndarray
    age: np.ndarray
    gender: np.ndarray
    occupation: np.ndarray | None = None

    @classmethod
    def from_frame(cls, users: pd.DataFrame, n_regions: int) -> UserTable:
        """From the ``users`` table (``user_id``, ``region``, ``age``, ``gender``); ids need not be dense.

        Raises ValueError for a negative user id or an age that is neither NaN nor in 0..120 years.
        """
        ids = users["user_id"].to_numpy(np.int64)
        if len(ids) and ids.min() < 0:
            raise ValueError("UserTable: user ids must be >= 0")
        check_ages(users["age"].to_numpy(np.float64), ids, "UserTable: users table")
        n = int(ids.max()) + 1 if len(ids) else 0
        region = np.full(n, n_regions, dtype=np.int64)
        age = np.full(n, np.nan)
        gender = np.full(n, -1, dtype=np.int64)
        region[ids] = map_unknown(users["region"].to_numpy(np.int64), n_regions)
        age[ids] = users["age"].to_numpy(np.float64)
        gender[ids] = users["gender"].to_numpy(np.int64)
        occupation = np.full(n, -1, dtype=np.int64)
        if "occupation" in users:
            occupation[ids] = users["occupation"].to_numpy(np.int64)
        return cls(region, age, gender, occupation)

    def lookup(self, users: np.ndarray, n_regions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Region, age, gender of ``users`` (n,); users not in the table are unknown (pad, NaN, -1)."""
        known = (users >= 0) & (users < len(self.region))
        safe = np.where(known, users, 0)
        if len(self.region) == 0:
            n = len(users)
            return np.full(n, n_regions, np.int64), np.full(n, np.nan), np.full(n, -1, np.int64)
        region = np.where(known, self.region[safe], n_regions)
        age = np.where(known, self.age[safe], np.nan)
        gender = np.where(known, self.gender[safe], -1)
        return region, age, gender

    def lookup_occupation(self, users: np.ndarray, n_occupations: int) -> np.ndarray:
        """Occupation ids (n,) int64 of ``users``; unknown users or occupations -> ``n_occupations``."""
        occ = self.occupation if self.occupation is not None else np.zeros(0, np.int64)
        known = (users >= 0) & (users < len(occ))
        raw = np.where(known, occ[np.where(known, users, 0)] if len(occ) else -1, -1)
        return map_unknown(raw, n_occupations)


@dataclass
class ExampleFeatures:
    """The inputs of ``n`` examples, with bags kept as offsets; :meth:`batch` makes tensors.

    ``users`` (n,) int64, ``times`` (n,) float64, ``region`` (n,) int64, ``dense`` (n, spec.n_dense)
    float32, ``watch_begin``/``watch_len`` and ``search_begin``/``search_len`` (n,) int64 offsets into
    the builder's event logs; ``occupation`` (n,) int64 when the spec asks for it (else None).
    """

    encoder: FeatureEncoder
    users: np.ndarray
    times: np.ndarray
    region: np.ndarray
    dense: np.ndarray
    watch_begin: np.ndarray
    watch_len: np.ndarray
    search_begin: np.ndarray
    search_len: np.ndarray
    watch_log: EventLog
    search_log: EventLog
    watch_drop: np.ndarray | None = None
    occupation: np.ndarray | None = None
    _history_bounds: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.users)

    def _watch_bags(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Padded watch bags (b, W) int64 and their lengths (b,), with the dropped label removed."""
        ids = self.watch_log.gather(self.watch_begin[idx], self.watch_len[idx])
        if self.watch_drop is None:
            return ids, self.watch_len[idx].copy()
        return drop_and_trim(ids, self.watch_drop[idx], self.watch_log.pad, self.spec.max_bag)

    @property
    def spec(self) -> FeatureSpec:
        return self.encoder.spec

    def batch(self, idx: Any = None) -> dict[str, torch.Tensor]:
        """Tensors for examples ``idx`` (default: all), the model's input.

        Returns ``watch_ids`` (B, Lw) int64, ``search_ids`` (B, Ls) int64 (padded with the padding
        index; Lw, Ls = the longest bag in the batch, >= 1), ``watch_len`` / ``search_len`` (B,) int64,
        ``region`` (B,) int64, ``dense`` (B, n_dense) float32; ``occupation`` (B,) int64 too when the
        examples have it.
        """
        idx = np.arange(len(self)) if idx is None else np.asarray(idx, dtype=np.int64).ravel()
        watch_ids, watch_len = self._watch_bags(idx)
        out = {
            "watch_ids": torch.from_numpy(watch_ids),
            "search_ids": torch.from_numpy(
                self.search_log.gather(self.search_begin[idx], self.search_len[idx])
            ),
            "watch_len": torch.from_numpy(watch_len),
            "search_len": torch.from_numpy(self.search_len[idx].copy()),
            "region": torch.from_numpy(self.region[idx].copy()),
            "dense": torch.from_numpy(self.dense[idx].copy()),
        }
        if self.occupation is not None:
            out["occupation"] = torch.from_numpy(self.occupation[idx].copy())
        return out

    def subset(self, idx: Any) -> ExampleFeatures:
        """The examples ``idx`` (an index array or boolean mask) as a new ExampleFeatures."""
        idx = np.arange(len(self))[np.asarray(idx)] if np.asarray(idx).dtype == bool else np.asarray(idx)
        pick = {k: getattr(self, k)[idx] for k in ("users", "times", "region", "dense", "watch_begin",
                                                   "watch_len", "search_begin", "search_len")}
        drop = None if self.watch_drop is None else self.watch_drop[idx]
        occ = None if self.occupation is None else self.occupation[idx]
        return ExampleFeatures(self.encoder, **pick, watch_log=self.watch_log, search_log=self.search_log,
                               watch_drop=drop, occupation=occ)

    def watched_before(self, idx: Any = None) -> list[np.ndarray]:
        """Every video watched strictly before each example's time (not cut at the bag limit): a list
        of int64 arrays, unknown ids dropped; the usual "exclude already watched" sets."""
        begin, length = self._history(idx)
        ends = begin + length
        return [self.watch_log.item[b:e][self.watch_log.item[b:e] != self.watch_log.pad]
                for b, e in zip(begin, ends, strict=True)]

    def watched_pairs(self, idx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The sets of :meth:`watched_before` as two flat arrays, without a Python loop: ``rows`` (m,)
        int64 (positions in ``idx``) and ``videos`` (m,) int64, each (row, video) pair once, sorted."""
        begin, length = self._history(idx)
        rows = np.repeat(np.arange(len(begin), dtype=np.int64), length)  # (M,)
        offset = np.arange(int(length.sum()), dtype=np.int64) - np.repeat(np.cumsum(length) - length, length)
        items = self.watch_log.item[np.repeat(begin, length) + offset]  # (M,)
        width = np.int64(self.watch_log.pad + 1)
        known = items != self.watch_log.pad
        key = np.unique(rows[known] * width + items[known])  # (m,)
        return key // width, key % width

    def _history(self, idx: Any) -> tuple[np.ndarray, np.ndarray]:
        """(begin, length) (b,) int64 of each example's whole watch history before its time."""
        if self._history_bounds is None:
            everything = max(len(self.watch_log), 1)
            self._history_bounds = self.watch_log.bag_bounds(self.users, self.times, everything)
        idx = np.arange(len(self)) if idx is None else np.asarray(idx, dtype=np.int64).ravel()
        return self._history_bounds[0][idx], self._history_bounds[1][idx]


def drop_and_trim(ids: np.ndarray, drop: np.ndarray, pad: int, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove ``drop[i]`` from row i of padded bags (b, W), keep the last ``max_len`` ids of each row.

    Returns the compacted bags (b, W') int64 (oldest first, padded with ``pad``; W' = longest row,
    at least 1) and their lengths (b,) int64.
    """
    valid = (ids != pad) & (ids != drop[:, None])  # (b, W)
    rank = np.cumsum(valid, axis=1) - 1  # (b, W) position among the valid ids of the row
    keep = valid & (rank >= (valid.sum(axis=1) - max_len)[:, None])
    order = np.argsort(~keep, axis=1, kind="stable")  # kept ids first, in their order
    out = np.take_along_axis(np.where(keep, ids, pad), order, axis=1)
    length = keep.sum(axis=1).astype(np.int64)
    return out[:, : max(1, int(length.max(initial=0)))], length


class FeatureBuilder:
    """Builds :class:`ExampleFeatures` for (user, time) pairs from a watch log, a search log and users.

    Build it once per dataset (:meth:`from_dataset`), then call :meth:`examples` for the training
    examples (with ``window_end``) and for test or serving examples (``window_end=None``: example age 0).
    """

    def __init__(self, encoder: FeatureEncoder, watch_log: EventLog, search_log: EventLog, users: UserTable):
        self.encoder = encoder
        self.watch_log = watch_log
        self.search_log = search_log
        self.users = users

    @classmethod
    def from_tables(
        cls,
        encoder: FeatureEncoder,
        watches: pd.DataFrame,
        users: pd.DataFrame,
        searches: pd.DataFrame | None = None,
    ) -> FeatureBuilder:
        """From a watches table (``user_id``, ``video_id``, ``time``), users and searches (``user_id``,
        ``time``, ``tokens``) tables. Unknown video / token / region ids become padding."""
        wlog = EventLog.from_arrays(
            watches["user_id"].to_numpy(), watches["time"].to_numpy(), watches["video_id"].to_numpy(),
            encoder.n_videos,
        )
        su, st, tok = flatten_search_tokens(searches if searches is not None else _empty_searches())
        slog = EventLog.from_arrays(su, st, tok, encoder.n_tokens)
        return cls(encoder, wlog, slog, UserTable.from_frame(users, encoder.n_regions))

    @classmethod
    def from_dataset(
        cls,
        ds: Any,
        spec: FeatureSpec | None = None,
        window: tuple[float, float] | None = None,
    ) -> FeatureBuilder:
        """From a ``ytrec_lib.data`` Dataset; the encoder is fitted on ``ds.users`` and ``window``
        (the training window, days; default ``(min watch time, meta['t_end'])``)."""
        meta = ds.meta
        watches = ds.watches()
        if window is None:
            t0 = float(watches["time"].min()) if len(watches) else 0.0
            window = (t0, float(meta["t_end"]))
        enc = FeatureEncoder.fit(
            ds.users, meta["n_videos"], meta.get("n_tokens", 1) or 1, meta["n_regions"], spec, window,
            len(meta.get("occupation_names") or ()),
        )
        searches = ds.searches if getattr(ds, "searches", None) is not None else None
        return cls.from_tables(enc, watches, ds.users, searches)

    def with_spec(self, spec: FeatureSpec) -> FeatureBuilder:
        """The same logs and scalings with another feature spec (cheap: no copies)."""
        return FeatureBuilder(self.encoder.with_spec(spec), self.watch_log, self.search_log, self.users)

    def examples(
        self, user_ids: Any, times: Any, window_end: float | None = None, exclude: Any = None,
        context_times: Any = None,
    ) -> ExampleFeatures:
        """Features of examples (``user_ids`` (n,) int, ``times`` (n,) float days).

        Only events strictly before each example's time are used. ``window_end``: the end of the
        training window (training examples get example age ``window_end - time``); ``None`` for
        serving / evaluation (example age 0, as in the paper). ``exclude``: (n,) video ids to leave
        out of each example's watch bag (the label of a held-out-watch example), or None.
        ``context_times`` (n,) float days, with ``exclude``: cut each watch bag to as many watches as the
        user had before that time (the label's own time: the matched held-out control), keeping the
        latest ones before ``times``.
        """
        users = np.asarray(user_ids, dtype=np.int64).ravel()
        times = np.asarray(times, dtype=np.float64).ravel()
        if len(users) != len(times):
            raise ValueError(f"examples: {len(users)} user ids but {len(times)} times; give one per user")
        if np.isnan(times).any():
            raise ValueError("examples: example times contain NaN; every example needs a time")
        enc, spec = self.encoder, self.encoder.spec
        region, age, gender = self.users.lookup(users, enc.n_regions)
        blocks = [enc.dense_demographics(age, gender)] if spec.demographics else []
        if spec.example_age:
            ex_age = np.zeros(len(users))
            if window_end is not None:
                ex_age = (window_end - times) / enc.example_age_scale
            blocks.append(np.clip(ex_age, -1.0, 1.0).astype(np.float32)[:, None])
            if spec.example_age_days:
                blocks.append(example_age_onehot(ex_age * enc.example_age_scale, spec.example_age_days))
        dense = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(users), 0), dtype=np.float32)
        drop = None
        if exclude is not None:
            drop = np.asarray(exclude, dtype=np.int64).ravel()
            if drop.shape != users.shape:
                msg = f"examples: exclude needs one id per example, got {len(drop)} for {len(users)}"
                raise ValueError(msg)
        wb, wl = self.watch_log.bag_bounds(users, times, spec.max_bag + (drop is not None))
        if context_times is not None:
            if drop is None:
                raise ValueError("examples: context_times needs exclude (the label each bag leaves out)")
            wb, wl = self._matched_bags(users, np.asarray(context_times, np.float64).ravel(), wb, wl)
        sb, sl = self.search_log.bag_bounds(users, times, spec.max_bag)
        if not spec.watches:
            wl = np.zeros_like(wl)
        if not spec.searches:
            sl = np.zeros_like(sl)
        occupation = self.users.lookup_occupation(users, enc.n_occupations) if spec.occupation else None
        return ExampleFeatures(
            enc, users, times, region, dense.astype(np.float32), wb, wl, sb, sl,
            self.watch_log, self.search_log, drop, occupation,
        )

    def _matched_bags(self, users: np.ndarray, context_times: np.ndarray, begin: np.ndarray,
                      length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Watch bags ``(begin, length)`` (n,) int64 each, whose rows hold the label at its own time
        ``context_times``, cut to keep k watches once the label is left out, k = the user's watches
        before ``context_times`` (at most ``max_bag``): the latest k + 1 rows when the label lies among
        them, else the latest k."""
        if context_times.shape != users.shape:
            raise ValueError(f"examples: context_times needs one time per example, got {context_times.size} "
                             f"for {users.size}")
        c_begin, k = self.watch_log.bag_bounds(users, context_times, self.encoder.spec.max_bag)  # (n,) each
        label_row = c_begin + k                        # the first watch at the label's time: the label
        end = begin + length                           # one past the latest watch before the example time
        keep = np.minimum(k + (label_row >= end - k - 1), length)  # (n,) rows kept, the label among them
        return end - keep, keep


def example_age_onehot(days: np.ndarray, n_days: int) -> np.ndarray:
    """One-hot of the whole days of example age: ``days`` (n,) float days -> (n, ``n_days``) float32.

    Column ``d`` is 1 for ``d <= days < d + 1``; negative days (serving "slightly in the future") fall in
    column 0, days beyond the last column in column ``n_days - 1``.
    """
    day = np.clip(np.floor(np.asarray(days, dtype=np.float64)), 0, n_days - 1).astype(np.int64)  # (n,)
    out = np.zeros((len(day), n_days), dtype=np.float32)  # (n, n_days)
    out[np.arange(len(day)), day] = 1.0
    return out


def _empty_searches() -> pd.DataFrame:
    return pd.DataFrame({"user_id": np.zeros(0, np.int64), "time": np.zeros(0), "tokens": []})

